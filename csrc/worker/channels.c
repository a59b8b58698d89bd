/*
 * channels.c - the worker's channel table: add a channel (map its segment, attach the
 * ring views, set up its socket, open its kind, hand it to the RX thread, make room
 * for its packets in the timer queue) and drop one again.  Called by the TX thread
 * only (it owns the table): from the commands (control.c) and at exit (main.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* snprintf into fixed buffers, IPv6 structs */
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "readyset.h"
#include "segment.h"
#include "shm_access.h"
#include "txjournal.h"
#include "worker.h"

/* a sending socket's room for TX stamps, besides what it receives: the kernel counts
 * each stamp against SO_RCVBUF and drops those past it (a stamp's size:
 * docs/measurements.md) */
#define TX_STAMP_RCVBUF (1u << 20)
#define TX_STAMP_COST 1024u /* bytes of SO_RCVBUF a waiting TX stamp takes, rounded up */
#define STAMP_WAITERS 4096 /* packets waiting for a TX stamp at once, per channel, at most */
#define STAMP_WAITERS_MIN 256
#define STAMP_WAITERS_PER_PACKET 4 /* of the channel's capacity: what a ring's worth sent
                                    * again and again within a stamp read's wait needs */

/* TX stamp waiters for c: with its capacity, so a small channel's locked memory is
 * small; a burst past them resolves the oldest by the send call's time (txstamp.h) */
static uint32_t stamp_waiters(const struct rtudp_chan *c)
{
    if (!c->caps.sw_tx)
        return 1;
    uint64_t want = (uint64_t)c->block->capacity_packets * STAMP_WAITERS_PER_PACKET;
    return want < STAMP_WAITERS_MIN ? STAMP_WAITERS_MIN
           : want > STAMP_WAITERS  ? STAMP_WAITERS
                                   : (uint32_t)want;
}

static int failf(char *msg, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int failf(char *msg, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return code;
}

static void appendf(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void appendf(char *msg, size_t len, const char *fmt, ...)
{
    size_t used = strnlen(msg, len);
    if (used + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + used, len - used, fmt, ap);
    va_end(ap);
}

/* setsockopt values the rings' worth of packets fit in: the kernel charges a
 * datagram its skb truesize (hundreds of bytes over the payload), so ask for twice
 * the ring's bytes, with a floor for tiny rings */
static uint64_t buffer_for(uint64_t ring_bytes)
{
    uint64_t want = ring_bytes * 2;
    return want < (256u << 10) ? (256u << 10) : want;
}

/* timers an in-flight record may have: two when the impairment duplicates it */
#define TIMERS_PER_RECORD 2u

/* make room in the timer queue for channel c's `more` in-flight records besides the
 * other channels' (w->tq_need: what they reserved) */
static int reserve_timers(struct rtudp_worker *w, struct rtudp_chan *c, uint32_t more)
{
    uint64_t add = (uint64_t)more * TIMERS_PER_RECORD, need = w->tq_need + add;
    if (need > UINT32_MAX / 4)
        return RTUDP_EINVAL;
    if (need > w->tq.capacity) {
        /* doubled, so a worker given thousands of channels one by one remaps its
         * queue O(log n) times, not at every add */
        uint64_t cap = (uint64_t)w->tq.capacity * 2;
        if (cap < need || cap > UINT32_MAX / 4)
            cap = need;
        int rc = rtudp_timerq_grow(&w->tq, (uint32_t)cap);
        if (rc != RTUDP_OK)
            return rc;
    }
    w->tq_need = need;
    c->tq_reserved = add;
    return RTUDP_OK;
}



/* an unconnected socket `fd` of a channel with a remote: every send names it (c->dst) */
static int set_destination(struct rtudp_chan *c, int fd, const char *path, char *msg,
                           size_t msglen)
{
    const struct rtudp_channel_block *b = c->block;
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    if (b->remote.family == 0 || getpeername(fd, (struct sockaddr *)&peer, &pl) == 0)
        return RTUDP_OK;
    c->dst_len = rtudp_to_sockaddr(&b->remote, &c->dst);
    if (!c->dst_len)
        return failf(msg, msglen, RTUDP_EINVAL, "%s: remote address family %u unknown", path,
                     b->remote.family);
    return RTUDP_OK;
}

/* the kind's own open (proto.h), its refusal told in msg */
static int open_kind(struct rtudp_worker *w, struct rtudp_chan *c, const char *path, char *msg,
                     size_t msglen)
{
    char why_kind[160] = "";
    int rc = c->proto->open(w, c, why_kind, sizeof why_kind);
    if (rc != RTUDP_OK)
        return failf(msg, msglen, rc, "%s: %s", path, why_kind);
    return RTUDP_OK;
}

/* a standby copy (proto.h): the kind's own open, after the common checks; nothing of the
 * socket is touched (its options, buffers and TX stamps are the serving worker's) but its
 * peer, and neither ring is read */
static int standby_open(struct rtudp_worker *w, struct rtudp_chan *c, const char *path,
                        char *msg, size_t msglen)
{
    const struct rtudp_channel_block *b = c->block;
    if (!c->proto->standby || !c->proto->tx_timer)
        return failf(msg, msglen, RTUDP_EINVAL, "%s: a %s channel has no standby", path,
                     c->proto->name);
    if (b->direction == RTUDP_DIR_RECV)
        return failf(msg, msglen, RTUDP_EINVAL, "%s: a standby of a channel that only "
                     "receives has nothing to do", path);
    /* its sends must not shift the serving worker's TX stamp keys (direct_send.h): only
     * where that worker's stamps carry keys of their own */
    if (load_relaxed(&b->direct.state) == RTUDP_DIRECT_NEVER)
        return failf(msg, msglen, RTUDP_EINVAL, "%s: the serving worker's TX stamps are "
                     "keyed by the kernel's count of sends here: a standby's sends would "
                     "shift them", path);
    int rc = set_destination(c, c->fd, path, msg, msglen);
    if (rc != RTUDP_OK)
        return rc;
    if ((rc = open_kind(w, c, path, msg, msglen)) != RTUDP_OK)
        return rc;
    c->kind_open = 1;
    snprintf(msg, msglen, "standby of fd %d", c->fd);
    return RTUDP_OK;
}

/* a new, empty channel that owns fd and tx_fd (-1: send on fd); on failure they are
 * closed, as they would be with the channel */
static int chan_new(uint32_t slot, const char *name, int fd, int tx_fd, struct rtudp_chan **out,
                    char *msg, size_t msglen)
{
    struct rtudp_chan *c = NULL;
    int rc = RTUDP_OK;
    if (!rtudp_name_valid(name))
        rc = failf(msg, msglen, RTUDP_EINVAL, "channel name must match [A-Za-z0-9_.-]{1,%d}",
                   RTUDP_NAME_MAX);
    else if (!(c = calloc(1, sizeof *c)))
        rc = failf(msg, msglen, RTUDP_ESYS, "out of memory");
    if (rc != RTUDP_OK) {
        close(fd);
        if (tx_fd >= 0)
            close(tx_fd);
        return rc;
    }
    c->slot = slot;
    c->timer_node.at = c->standby_node.at = c->stamp_node.at = RTUDP_CHANHEAP_NONE;
    rtudp_async_fds_init(&c->tx_waiters);
    rtudp_async_fds_init(&c->rx.waiters);
    c->fd = fd; /* ours from here on, even on failure: closed with the channel */
    c->tx_fd = tx_fd >= 0 ? tx_fd : fd;
    snprintf(c->name, sizeof c->name, "%s", name);
    *out = c;
    return RTUDP_OK;
}

/* the channel's segment `path` mapped and made resident */
static int map_segment(struct rtudp_chan *c, const char *path, char *msg, size_t msglen)
{
    int sfd = shm_open(path, O_RDWR, 0);
    if (sfd < 0)
        return failf(msg, msglen, RTUDP_ESYS, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(sfd, &st) != 0 || st.st_size <= 0) {
        int rc = failf(msg, msglen, RTUDP_ECORRUPT, "%s: cannot size it (%s)", path,
                       st.st_size <= 0 ? "empty" : strerror(errno));
        close(sfd);
        return rc;
    }
    c->size = (uint64_t)st.st_size;
    /* the supervisor allocated every page (posix_fallocate): the pages made resident
     * (attach_rings) only fill our page tables, nothing is allocated (sched.c,
     * rtudp_w_lock_on_fault) */
    c->base = rtudp_map_populate(sfd, c->size);
    close(sfd);
    if (!c->base)
        return failf(msg, msglen, RTUDP_ESYS, "%s: mmap: %s", path, strerror(errno));
    return RTUDP_OK;
}

/*
 * The segment made resident up to its tap rings, which come last: everything the
 * channel touches whether or not a tap is attached.  The tap rings, more than half of
 * a small channel's segment, are written only while a tap is attached; their pages
 * (allocated already) are mapped as the first tap fills them, a minor fault per page
 * once, and stay locked.
 */
static void make_resident(struct rtudp_chan *c, const void *taps)
{
    uint64_t len = (uint64_t)((const uint8_t *)taps - (const uint8_t *)c->base);
    rtudp_w_make_resident(c->base, len < c->size ? len : c->size);
}

/* the segment validated and its TX, RX and tap rings attached */
static int attach_rings(struct rtudp_chan *c, const char *path, char *msg, size_t msglen)
{
    struct rtudp_check why = {0};
    void *tx, *rx;
    uint64_t tx_avail, rx_avail;
    int rc;
    if ((rc = rtudp_channel_segment_validate(c->base, c->size, &c->block, &tx, &tx_avail, &rx,
                                             &rx_avail, &why)) != RTUDP_OK ||
        (rc = rtudp_mpsc_attach(&c->tx, tx, tx_avail, &why)) != RTUDP_OK ||
        (rc = rtudp_bcast_attach(&c->rx.ring, rx, rx_avail, &why)) != RTUDP_OK)
        return failf(msg, msglen, rc, "%s: %s", path, why.msg);
    void *tap_tx, *tap_rx;
    uint64_t tap_tx_avail, tap_rx_avail;
    if ((rc = rtudp_channel_tap_rings(c->base, c->size, &tap_tx, &tap_tx_avail, &tap_rx,
                                      &tap_rx_avail, &why)) != RTUDP_OK ||
        (rc = rtudp_tap_init(&c->tap, c->block, tap_tx, tap_tx_avail, 1, &why)) != RTUDP_OK ||
        (rc = rtudp_tap_init(&c->rx.tap, c->block, tap_rx, tap_rx_avail, 0, &why)) != RTUDP_OK)
        return failf(msg, msglen, rc, "%s: %s", path, why.msg);
    make_resident(c, tap_tx < tap_rx ? tap_tx : tap_rx);
    return RTUDP_OK;
}

/* the channel's kind, and its area big enough for it; the kind's timers not yet due */
static int find_kind(struct rtudp_chan *c, const char *path, char *msg, size_t msglen)
{
    /* configuration is read once, here: the supervisor writes it before the ADD */
    uint32_t kind = c->block->kind;
    c->proto = rtudp_proto_find(kind);
    if (!c->proto)
        return failf(msg, msglen, RTUDP_EINVAL,
                     "%s: channel kind %u is not one this worker serves", path, kind);
    struct rtudp_check why = {0};
    int rc = rtudp_channel_area(c->base, c->size, &c->area, &c->area_bytes, &why);
    if (rc != RTUDP_OK)
        return failf(msg, msglen, rc, "%s: %s", path, why.msg);
    if (c->area_bytes < c->proto->area_min)
        return failf(msg, msglen, RTUDP_ECORRUPT, "%s: %s channel's kind area is %llu bytes, "
                     "needs %llu", path, c->proto->name, (unsigned long long)c->area_bytes,
                     (unsigned long long)c->proto->area_min);
    c->tx_timer_ns = RTUDP_PROTO_NEVER;
    c->rx.timer_ns = c->proto->rx_timer ? 0 : RTUDP_PROTO_NEVER; /* 0: its first turn */
    return RTUDP_OK;
}

static int read_direction(struct rtudp_chan *c, const char *path, char *msg, size_t msglen)
{
    uint32_t dir = c->block->direction;
    if (dir != RTUDP_DIR_SEND && dir != RTUDP_DIR_RECV && dir != RTUDP_DIR_BOTH)
        return failf(msg, msglen, RTUDP_EINVAL, "%s: direction %u is none of send/recv/both",
                     path, dir);
    c->sends = dir != RTUDP_DIR_RECV;
    c->recvs = dir != RTUDP_DIR_SEND;
    return RTUDP_OK;
}

/* the sockets' options (timestamps, GRO/GSO) set, and what they can do in c->caps */
static int set_up_sockets(struct rtudp_chan *c, char *msg, size_t msglen)
{
    struct rtudp_check why = {0};
    int want_hw = (c->block->flags & RTUDP_CHAN_HW_TIMESTAMPS) != 0;
    int (*set_up)(int, int, struct rtudp_net_caps *, struct rtudp_check *) =
        c->adopt ? rtudp_net_adopt : rtudp_net_setup;
    int rc = set_up(c->fd, want_hw, &c->caps, &why);
    if (rc != RTUDP_OK)
        return failf(msg, msglen, rc, "%s", why.msg);
    if (c->tx_fd != c->fd) {
        /* the send-only socket: what it can do for sends is what counts */
        struct rtudp_net_caps txc;
        if ((rc = set_up(c->tx_fd, want_hw, &txc, &why)) != RTUDP_OK)
            return failf(msg, msglen, rc, "send socket: %s", why.msg);
        c->caps.sw_tx = txc.sw_tx;
        c->caps.tskey_cmsg = txc.tskey_cmsg;
        c->caps.gso = txc.gso;
    }
    rtudp_chan_allow_direct(c);
    return RTUDP_OK;
}

void rtudp_chan_allow_direct(struct rtudp_chan *c)
{
    /* clients may send immediates on the socket themselves only while our TX stamps
     * carry their own keys: their unstamped sends then cannot shift the keys */
    store_release(&c->block->direct.state, c->sends && c->caps.tskey_cmsg
                                               ? (uint32_t)RTUDP_DIRECT_ON
                                               : (uint32_t)RTUDP_DIRECT_NEVER);
}

/* what the socket buffers came to, and where a sysctl limits them, into msg */
static void tell_buffers(const struct rtudp_chan *c, const struct rtudp_net_bufs *bufs,
                         char *msg, size_t msglen)
{
    appendf(msg, msglen, "fd %d: sndbuf %llu, rcvbuf %llu", c->fd,
            (unsigned long long)bufs->sndbuf, (unsigned long long)bufs->rcvbuf);
    if (bufs->snd_limited)
        appendf(msg, msglen, "; SO_SNDBUF limited by net.core.wmem_max %llu",
                (unsigned long long)bufs->wmem_max);
    if (bufs->rcv_limited)
        appendf(msg, msglen, "; SO_RCVBUF limited by net.core.rmem_max %llu",
                (unsigned long long)bufs->rmem_max);
    if (c->caps.hw)
        appendf(msg, msglen, "; hardware stamps on %s", c->caps.ifname);
}

/* the sockets' buffers sized for the rings and the TX stamps, and c->stamp_room set */
static int size_buffers(struct rtudp_chan *c, char *msg, size_t msglen)
{
    struct rtudp_check why = {0};
    struct rtudp_net_bufs bufs;
    uint64_t rcv = c->recvs ? buffer_for(c->rx.ring.capacity) : 0;
    uint64_t snd = c->sends ? buffer_for(c->tx.capacity) : 0;
    int split = c->tx_fd != c->fd, rc;
    if (c->sends && !split)
        rcv += TX_STAMP_RCVBUF;
    struct rtudp_net_bufs txb;
    memset(&txb, 0, sizeof txb);
    if (split) {
        /* its receive buffer holds only TX stamps, up to TX_STAMP_COST each in the
         * kernel's count, read every 32 or every ms: room for a few hundred sends in
         * one call */
        if ((rc = rtudp_net_size_buffers(c->tx_fd, TX_STAMP_RCVBUF, snd, &txb, &why)) != RTUDP_OK)
            return failf(msg, msglen, rc, "send socket: %s", why.msg);
        snd = 0;
    }
    if ((rc = rtudp_net_size_buffers(c->fd, rcv, snd, &bufs, &why)) != RTUDP_OK)
        return failf(msg, msglen, rc, "%s", why.msg);
    /* stamps the error queue keeps for sure (rtudp_tx_send_group reads before more);
     * a socket that also receives keeps its stamps' share of the buffer */
    uint64_t stamp_bytes = split ? txb.rcvbuf : bufs.rcvbuf;
    if (!split && stamp_bytes > TX_STAMP_RCVBUF)
        stamp_bytes = TX_STAMP_RCVBUF;
    c->stamp_room = (uint32_t)(stamp_bytes / TX_STAMP_COST);
    if (split) {
        bufs.sndbuf = txb.sndbuf;
        bufs.snd_limited = txb.snd_limited;
        bufs.wmem_max = txb.wmem_max;
    }
    tell_buffers(c, &bufs, msg, msglen);
    return RTUDP_OK;
}

/* a sending channel's in-flight tracker and TX stamp waiters (any thread) */
static int alloc_tx_state(struct rtudp_chan *c, char *msg, size_t msglen)
{
    /* a record takes >= 16 ring bytes: capacity/16 in flight can never overflow */
    uint64_t n = c->tx.capacity / sizeof(struct rtudp_tx_record);
    if (n > UINT32_MAX / 4)
        n = UINT32_MAX / 4;
    int rc;
    if ((rc = rtudp_inflight_init(&c->inflight, (uint32_t)n)) != RTUDP_OK ||
        (rc = rtudp_txstamps_init(&c->stamps, stamp_waiters(c),
                                  RTUDP_W_STAMP_WAIT_NS)) != RTUDP_OK)
        return failf(msg, msglen, rc, "out of memory for %llu in-flight packets",
                     (unsigned long long)n);
    c->stamps.tap = &c->tap;
    return RTUDP_OK;
}

/* a sending channel's timer room, and its cursor where the previous worker's journal
 * says the ring is to be read again (TX thread: the previous worker has let go) */
static int start_tx_state(struct rtudp_worker *w, struct rtudp_chan *c, char *msg, size_t msglen)
{
    int rc = reserve_timers(w, c, c->inflight.capacity);
    if (rc != RTUDP_OK)
        return failf(msg, msglen, rc, "out of memory for %u timers", c->inflight.capacity);
    /* records a previous worker did not release are read (and sent) again, but
     * for those its journal and the socket's TX stamps prove gone */
    struct rtudp_txj_result found;
    rtudp_txj_recover(&c->block->tx_journal, &c->tx, c->tx_fd, &found);
    if (found.journalled)
        appendf(msg, msglen, "; %u packets were in flight: %u had left, %u sent again%s",
                found.journalled, found.left, found.resent,
                found.invalid ? " (journal entries not in the ring ignored)" : "");
    c->cursor = atomic_load_explicit(SHARED(&c->tx.ring->head), memory_order_acquire);
    c->gso_ok = c->caps.gso;
    c->stamps.worker = w->me; /* this worker's departures, the packing's measure */
    c->stamps.late_batch = &w->late_batch;
    rtudp_inflight_reset(&c->inflight, c->cursor);
    return RTUDP_OK;
}

/* a receiving channel handed to the RX thread, which reads its socket from then on */
static int hand_to_rx(struct rtudp_worker *w, struct rtudp_chan *c, char *msg, size_t msglen)
{
    c->rx.fd = c->fd;
    c->rx.block = c->block;
    c->rx.cap = rtudp_rx_cap_for(&c->rx.ring, c->block->max_datagram);
    c->rx.gro = c->caps.gro;
    rtudp_drx_worker_reset(c->block); /* a token the last worker held is free again */
    int rc = rtudp_rx_add(&w->rx, &c->rx);
    if (rc != RTUDP_OK)
        return failf(msg, msglen, rc, "RX thread refused the channel (epoll: %s)",
                     strerror(errno));
    /* readers may read a udp socket themselves: each datagram is published as it came,
     * which they do the same way (a kind's own receive work stays here) */
    store_release(&c->block->direct_rx.allowed, c->block->kind == RTUDP_KIND_UDP ? 1u : 0u);
    return RTUDP_OK;
}

/* a serving channel's half that needs no worker table (any thread): its sockets, TX
 * memory and impairment, in that order (each step may use what the ones before set up) */
static int serving_prepare(struct rtudp_chan *c, const char *path, char *msg, size_t msglen)
{
    int rc;
    if ((rc = read_direction(c, path, msg, msglen)) != RTUDP_OK ||
        (rc = set_up_sockets(c, msg, msglen)) != RTUDP_OK ||
        (rc = size_buffers(c, msg, msglen)) != RTUDP_OK ||
        (rc = set_destination(c, c->tx_fd, path, msg, msglen)) != RTUDP_OK)
        return rc;
    if (c->sends && (rc = alloc_tx_state(c, msg, msglen)) != RTUDP_OK)
        return rc;
    /* the impairment's hold queues, before anything may use them */
    if ((rc = rtudp_impair_holds_init(c)) != RTUDP_OK)
        return failf(msg, msglen, rc, "out of memory for the impairment's hold queues");
    return RTUDP_OK;
}

/* the rest (TX thread): TX timers and cursor, kind, RX thread */
static int serving_activate(struct rtudp_worker *w, struct rtudp_chan *c, const char *path,
                            char *msg, size_t msglen)
{
    int rc;
    if (c->sends && (rc = start_tx_state(w, c, msg, msglen)) != RTUDP_OK)
        return rc;
    /* the kind's setup: after the common one, before the RX thread sees the channel */
    if (c->proto->open && (rc = open_kind(w, c, path, msg, msglen)) != RTUDP_OK)
        return rc;
    c->kind_open = 1;
    if (c->recvs && (rc = hand_to_rx(w, c, msg, msglen)) != RTUDP_OK)
        return rc;
    /* event loops that registered while no worker had the channel wait for an answer */
    rtudp_async_answer(&c->block->async_wait, &c->tx_waiters);
    return RTUDP_OK;
}

#define PATH_LEN (8 + 2 * RTUDP_NAME_MAX + 8)

static void segment_path(char *path, size_t len, const char *pool, const char *name)
{
    snprintf(path, len, "/rtudp.%s.%s", pool, name);
}

int rtudp_chan_prepare(const char *pool_name, uint32_t slot, const char *name, int fd,
                       int tx_fd, unsigned how, struct rtudp_chan **out, char *msg,
                       size_t msglen)
{
    *out = NULL;
    msg[0] = '\0';
    struct rtudp_chan *c;
    int rc = chan_new(slot, name, fd, tx_fd, &c, msg, msglen);
    if (rc != RTUDP_OK)
        return rc;
    char path[PATH_LEN];
    segment_path(path, sizeof path, pool_name, name);
    if ((rc = map_segment(c, path, msg, msglen)) == RTUDP_OK &&
        (rc = attach_rings(c, path, msg, msglen)) == RTUDP_OK &&
        (rc = find_kind(c, path, msg, msglen)) == RTUDP_OK) {
        c->standby = (how & RTUDP_PREP_STANDBY) != 0; /* c->sends, c->recvs stay 0: no ring read */
        c->adopt = (how & RTUDP_PREP_ADOPT) != 0;
        if (!c->standby)
            rc = serving_prepare(c, path, msg, msglen);
    }
    if (rc != RTUDP_OK) {
        rtudp_chan_release(c);
        return rc;
    }
    *out = c;
    return RTUDP_OK;
}

/* c let go by the worker (TX thread): out of the RX thread, its kind, timers and
 * sockets; what is left of it is memory (rtudp_chan_release).  `served`: it was in
 * the table (its slot's timers in the queue are its own; one that failed to activate
 * has none, and may share its slot with the channel that serves there) */
static void chan_detach(struct rtudp_worker *w, struct rtudp_chan *c, int served)
{
    if (c->recvs) {
        /* readers stop taking the socket; one that holds it lets go at its next look */
        store_release(&c->block->direct_rx.allowed, 0u);
        rtudp_rx_remove(&w->rx, &c->rx); /* returns once the RX thread let go */
    }
    if (c->kind_open && c->proto->close)
        c->proto->close(w, c);
    c->kind_open = 0;
    if (c->sends) {
        if (served) { /* its timers go with those of the channels dropped with it, in one pass */
            rtudp_slotbits_add(w->tq_gone, c->slot);
            w->tq_gone_n++;
        }
        if (c->block)
            rtudp_txstamps_flush(&c->stamps, c->block);
    }
    w->tq_need -= c->tq_reserved;
    c->tq_reserved = 0;
    rtudp_chan_times_clear(w, c);
    /* unsent records stay in the TX ring: whoever serves the channel next sends them */
    rtudp_async_fds_close(&c->tx_waiters);
    rtudp_async_fds_close(&c->rx.waiters); /* the RX thread has let go of the channel */
    /* the sockets here, not with the memory: a closed channel's port is free when the
     * supervisor's close returns */
    if (c->tx_fd >= 0 && c->tx_fd != c->fd) {
        rtudp_net_forget(c->tx_fd);
        close(c->tx_fd);
    }
    if (c->fd >= 0) {
        rtudp_net_forget(c->fd);
        close(c->fd);
    }
    c->fd = c->tx_fd = -1;
}

void rtudp_chan_release(struct rtudp_chan *c)
{
    if (!c)
        return;
    rtudp_async_fds_close(&c->tx_waiters);
    rtudp_async_fds_close(&c->rx.waiters);
    rtudp_inflight_free(&c->inflight);
    rtudp_txstamps_free(&c->stamps);
    rtudp_impair_holds_free(c);
    if (c->tx_fd >= 0 && c->tx_fd != c->fd) { /* prepared, never served */
        rtudp_net_forget(c->tx_fd);
        close(c->tx_fd);
    }
    if (c->fd >= 0) {
        rtudp_net_forget(c->fd);
        close(c->fd);
    }
    if (c->base)
        rtudp_unmap(c->base, c->size);
    free(c);
}

/* c counted in (sign 1) or out (-1) of the table's size, published where the
 * supervisor and the idle-latency request see it */
static void count_channel(struct rtudp_worker *w, const struct rtudp_chan *c, int sign)
{
    w->n_receiving += (uint32_t)sign * (c->recvs != 0);
    w->n_serving += (uint32_t)sign * !c->standby;
    w->n_prompt += (uint32_t)sign * (!c->standby && (c->sends || (c->recvs && !c->rx.may_gather)));
    store_relaxed(&w->me->channels, w->n_active);
    /* not for standbys alone: they step in only after their lag anyway, and a poller
     * beside a standby costs a large share of a CPU that it does not otherwise use
     * (docs/measurements.md).  Nor for receivers that gather (rxloop.c, rx_gather)
     * alone: their reads wait on purpose, a prompt wake-up buys them nothing. */
    rtudp_w_idle_poll(w, w->n_prompt > 0);
}

void rtudp_chan_forget_timers(struct rtudp_worker *w)
{
    if (!w->tq_gone_n)
        return;
    rtudp_timerq_remove_channels(&w->tq, w->tq_gone, RTUDP_MAX_CHANNELS);
    memset(w->tq_gone, 0, sizeof w->tq_gone);
    w->tq_gone_n = 0;
}

int rtudp_chan_activate(struct rtudp_worker *w, struct rtudp_chan *c, char *msg, size_t msglen)
{
    /* the slot's last channel's timers must not become this one's */
    if (rtudp_slotbits_has(w->tq_gone, c->slot))
        rtudp_chan_forget_timers(w);
    char path[PATH_LEN];
    segment_path(path, sizeof path, w->pool_name, c->name);
    int rc;
    if (w->chans[c->slot])
        rc = failf(msg, msglen, RTUDP_EINVAL, "slot %u already serves channel '%s'", c->slot,
                   w->chans[c->slot]->name);
    else if (rtudp_chan_times_reserve(w, w->n_active + 1) != RTUDP_OK)
        rc = failf(msg, msglen, RTUDP_ESYS, "out of memory for the timer heaps");
    else
        rc = c->standby ? standby_open(w, c, path, msg, msglen)
                        : serving_activate(w, c, path, msg, msglen);
    if (rc != RTUDP_OK) {
        c->recvs = 0; /* never handed to the RX thread, or refused by it */
        chan_detach(w, c, 0);
        return rc;
    }
    w->chans[c->slot] = c;
    c->active_at = w->n_active;
    w->active[w->n_active++] = c;
    count_channel(w, c, 1);
    rtudp_chan_rekey(w, c); /* the kind's first timer */
    /* records queued while no worker served it are read at once; when they came
     * is not known (a restart, a move), so none of them, nor what the next look
     * finds, is judged late on arrival (rtudp_tx_in_time_by) */
    rtudp_ready_mark(w->ready, c->slot);
    if (c->sends && !c->tx_broken && c->tx.ring && rtudp_mpsc_pending_bytes(&c->tx))
        w->look_ns = 0;
    return RTUDP_OK;
}

void rtudp_chan_answer_waiters(struct rtudp_worker *w)
{
    /* read before answering: registrations posted later bump it again */
    w->async_seen = load_acquire(&w->me->async_posted);
    for (uint32_t i = 0; i < w->n_active; i++)
        if (!w->active[i]->standby) /* the serving worker answers for the channel */
            rtudp_async_answer(&w->active[i]->block->async_wait, &w->active[i]->tx_waiters);
}

void rtudp_chan_drop(struct rtudp_worker *w, struct rtudp_chan *c)
{
    w->chans[c->slot] = NULL;
    struct rtudp_chan *last = w->active[--w->n_active];
    w->active[c->active_at] = last;
    last->active_at = c->active_at;
    count_channel(w, c, -1);
    chan_detach(w, c, 1);
}
