/*
 * netflux.c - the netflux channel kind: cyclic exchange of process images with a
 * partner (wire format and who writes what: netflux_shm.h).
 *
 *   TX thread (tx_timer): packet n leaves at start + n x send_interval (an absolute
 *     schedule: no drift), carrying the latest consistent send image, our sequence
 *     byte and the feedback byte the RX thread last accepted.
 *   RX thread (rx_batch, rx_timer): validate, count rejects and gaps, measure RTT and
 *     the partner's interval, publish the received image with its kernel stamp;
 *     the watchdog trips after watch_interval without a valid packet.
 *
 *   Standby (nf_standby_timer): a second worker, on another CPU, guards the schedule.
 *     It wakes `lag` after each cycle is due (a quarter of the interval, at most
 *     STANDBY_LAG_MAX_NS) and sends the cycle itself if the serving worker has not
 *     claimed it by then.  Both claim a cycle in tx.claim by compare-and-swap before
 *     sending it (rtudp_nf_claim), so exactly one of them sends it and the sequence
 *     byte goes on without a gap, and each holds its claim until its send has
 *     returned, so that neither hands the kernel a later sequence byte before an
 *     earlier one (a worker stopped between claim and send makes the other wait).
 *     Why: a virtual machine's host stops one vCPU for
 *     0.2-2.5 ms now and then (measured on a 2-vCPU VM, two parked loops on a 1 ms
 *     schedule, 20-30 s: 7-10 wake-ups over 200 us late on one vCPU, none on both at
 *     once); a cycle that late shares the next one's slot, a cycle lost to the partner.
 *     It cannot cover the host's spells that wake every halted vCPU 0.3-0.9 ms late
 *     (traced at 1 ms: its own turns came 230-630 us late in the same cycles), in which
 *     a C loop parking between cycles misses as much (docs/netflux.md).
 *     The standby needs no precise timing (its timer is not spun for: worker.h,
 *     c->standby), sends on the channel socket without a TX stamp (the error queue is
 *     the serving worker's), and neither receives nor reads the TX ring.
 *
 * Everything the worker decides on (sizes, intervals, link state) is kept in its
 * private state; the area only publishes it, so a client scribbling on the area can
 * garble numbers but never steer the worker out of bounds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "direct_send.h"
#include "hist.h"
#include "netflux_shm.h"
#include "prefault.h"
#include "sock_cmsg.h"
#include "worker.h"

#define BUSY_READ_TRIES 8   /* the TX thread's looks at a send image being written */
/* the standby steps in this late at most: past the serving worker's own p99.9 lateness
 * on a VM (~40-100 us), so that nearly every packet still leaves from the serving
 * worker, TX-stamped and impaired as configured; well before half an interval at 1 ms
 * (past that the partner takes the packet for the next cycle's).  1 ms cycles, 5 s
 * rounds interleaved, lags of 200 / 50 / 25 us: no cycle missed in 11 of 12 rounds
 * whatever the lag (without the standby, 3 of 4 rounds missed 17-74), p99 decided by
 * the host's noise, not the lag */
#define STANDBY_LAG_MAX_NS 100000LL
#define RTT_WINDOW 128      /* an echo older than this many of our packets is not an RTT */
/* the serving worker finding the standby mid-send looks again this soon: a send
 * returns within microseconds unless the standby's CPU was taken away */
#define HELD_RETRY_NS 20000LL

/* a stream of intervals (our sends, the partner's packets): the last one and the
 * RFC 3550-style jitter of consecutive ones */
struct nf_interval {
    int64_t last_iv, jitter;
};

struct nf_state {
    struct rtudp_nf_area *a;
    int64_t interval, watch;
    uint32_t send_size, recv_size;
    int keep;
    _Atomic uint32_t feedback;   /* RX -> TX: the partner's last accepted sequence byte */
    /* TX thread */
    int64_t start;
    uint64_t cycle;              /* the next cycle to send (standby: to look at) */
    uint64_t counted;            /* serving: cycles counted sent, failed, yielded or missed */
    uint64_t yielded;            /* serving: the standby's claims counted as yielded */
    int64_t lag;                 /* standby: how long after a cycle is due it steps in */
    int64_t last_sent;
    struct nf_interval own;      /* between our sends */
    uint8_t pkt[2 + RTUDP_NF_MAX_PAYLOAD]; /* also keeps the last consistent image */
    /* RX thread */
    int link;
    int have_seq, have_fb;
    uint8_t last_seq, last_fb;
    int64_t last_valid;
    struct nf_interval partner;  /* between the partner's valid packets */
    int64_t deferred_due;        /* the watchdog deadline already put off once (see rx_timer) */
};

/* RFC 3550 style: J += (|D| - J) / 16 */
static int64_t smooth_jitter(int64_t j, int64_t d)
{
    if (d < 0)
        d = -d;
    return j + (d - j) / 16;
}

/* one more interval of a stream: into its histogram h, and its jitter (also published
 * to *shared for the readers) */
static void track_interval(struct nf_interval *t, struct rtudp_hist *h, int64_t iv,
                           int64_t *shared)
{
    rtudp_hist_record(h, iv);
    if (t->last_iv)
        t->jitter = smooth_jitter(t->jitter, iv - t->last_iv);
    t->last_iv = iv;
    store_relaxed(shared, t->jitter);
}

static int nf_open(struct rtudp_worker *w, struct rtudp_chan *c, char *msg, size_t msglen)
{
    (void)w;
    struct rtudp_nf_area *a = c->area;
    struct rtudp_check why = {0};
    if (rtudp_nf_check_area(a, c->area_bytes, &why) != RTUDP_OK) {
        snprintf(msg, msglen, "%s", why.msg);
        return RTUDP_ECORRUPT;
    }
    struct nf_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(msg, msglen, "out of memory for netflux state");
        return RTUDP_ESYS;
    }
    rtudp_prefault(st, sizeof *st); /* both threads use it on their hot paths */
    const struct rtudp_nf_config *cfg = &a->config;
    st->a = a;
    st->interval = load_relaxed(&cfg->send_interval_ns);
    st->watch = load_relaxed(&cfg->watch_interval_ns);
    st->send_size = load_relaxed(&cfg->send_size);
    st->recv_size = load_relaxed(&cfg->recv_size);
    st->keep = (load_relaxed(&cfg->flags) & RTUDP_NF_KEEP_VALUES) != 0;
    uint32_t rx_cap = rtudp_rx_cap_for(&c->rx.ring, c->block->max_datagram);
    if (2 + st->send_size > c->block->max_datagram || (c->recvs && 2 + st->recv_size > rx_cap)) {
        snprintf(msg, msglen, "netflux images of %u/%u bytes + 2 do not fit max_datagram %u",
                 st->send_size, st->recv_size, c->block->max_datagram);
        free(st);
        return RTUDP_EINVAL;
    }
    if (c->standby) {
        if (st->interval <= 0) {
            snprintf(msg, msglen, "a netflux standby needs a channel that sends cyclically");
            free(st);
            return RTUDP_EINVAL;
        }
        /* the serving worker's state and the link are its own: nothing written here
         * but a claim a dead predecessor of this standby held */
        rtudp_nf_claim_recover(&a->tx, RTUDP_NF_ROLE_STANDBY);
        st->lag = st->interval / 4 < STANDBY_LAG_MAX_NS ? st->interval / 4 : STANDBY_LAG_MAX_NS;
        c->tx_timer_ns = 0; /* its first turn finds the schedule */
        c->state = st;
        return RTUDP_OK;
    }
    st->link = RTUDP_NF_WAITING;
    store_relaxed(&a->rx.link, (uint32_t)RTUDP_NF_WAITING);
    int64_t now = rtudp_now_ns();
    if (c->sends && st->interval > 0) {
        /* a restarted worker keeps the sequence (tx.claim: the partner would reject a
         * jump back) and the schedule's phase */
        int64_t start = load_relaxed(&a->tx.start_ns);
        if (start <= 0 || start > now)
            start = load_relaxed(&cfg->start_ns) > 0 ? load_relaxed(&cfg->start_ns) : now;
        st->start = start;
        st->cycle = start >= now ? 0 : (uint64_t)((now - start + st->interval - 1) / st->interval);
        /* the count goes on where it stood: cycles due before this open (a late open, a
         * restart, a pause) are counted with the next claim, as the standby's or missed */
        st->counted = load_relaxed(&a->tx.cycle);
        st->yielded = load_relaxed(&a->tx.yielded);
        store_relaxed(&a->tx.start_ns, start);
        rtudp_nf_claim_recover(&a->tx, RTUDP_NF_ROLE_SERVING); /* died mid-send */
        c->tx_timer_ns = start + (int64_t)st->cycle * st->interval;
        /* a cycle is a deadline like a timed send's: it may leave with a group, early by
         * at most tx_coalesce_us (the claim and the sequence follow the cycle number,
         * not the clock; a standby steps in only a lag after a cycle's due time) */
        c->timer_may_lead = 1;
    }
    c->state = st;
    return RTUDP_OK;
}

/* the send image into st->pkt + 2; a torn image keeps the previous one there */
static void load_send_image(struct nf_state *st)
{
    struct rtudp_nf_image_meta meta;
    int n = rtudp_nf_image_read(&st->a->send_image, st->pkt + 2, st->send_size, &meta,
                                BUSY_READ_TRIES);
    if (n == RTUDP_NF_BUSY) {
        bump(&st->a->tx.image_busy, 1);
        return;
    }
    if (n >= 0 && (uint32_t)n < st->send_size)
        memset(st->pkt + 2 + n, 0, st->send_size - (uint32_t)n);
}

/* images are latest-value slots, not queued: a TX-ring record is refused (counted) */
static int nf_tx_record(struct rtudp_chan *c, struct rtudp_tx_record *rec, uint32_t len,
                        int64_t now, struct rtudp_timer *t)
{
    (void)c, (void)rec, (void)len, (void)now, (void)t;
    return -1;
}

/* claim cycle n as `role` (rtudp_nf_claim), with `upto` every cycle that may have been
 * claimed so far: those due, and those the serving worker may have run early (by
 * RTUDP_NF_LEAD_MAX_NS at most).  A fresh clock read: the other worker may have
 * claimed cycles while this one was stopped since its own last read. */
static int claim_cycle(const struct nf_state *st, int64_t start, uint64_t n, int role,
                       uint64_t *held)
{
    int64_t now = rtudp_now_ns();
    int64_t by = now + RTUDP_NF_LEAD_MAX_NS;
    uint64_t upto = by < start ? 0 : (uint64_t)((by - start) / st->interval) + 1;
    return rtudp_nf_claim(&st->a->tx, n, upto, role, now, held);
}

/*
 * Counting cycles as what happened to them on the wire.  Every cycle the claim word has
 * passed is over: sent (or failed) by the serving worker, by the standby, or by nobody.
 * The serving worker keeps the count (tx.cycle = sent + send_errors + yielded +
 * missed): yielded are the standby's claims (it counts each, sent or failed, before it
 * lets go of the claim), missed the rest.  A cycle the serving worker skips while a
 * whole interval late may be one the standby sent, so cycles are counted from the
 * claim word, never from the skip.
 */

/* the standby's claims so far */
static uint64_t standby_claims(const struct rtudp_nf_tx *tx)
{
    return load_relaxed(&tx->standby_sent) + load_relaxed(&tx->standby_errors);
}

/* cycles counted up to `upto` (exclusive): no claim of one of them is held, and the
 * standby had made `claims` claims when they were passed */
static void count_passed(struct nf_state *st, uint64_t upto, uint64_t claims)
{
    struct rtudp_nf_tx *tx = &st->a->tx;
    if (upto <= st->counted)
        return;
    uint64_t n = upto - st->counted;
    /* more than n only where a claim was counted late (its hold broken after
     * RTUDP_NF_HOLD_MAX_NS) or a client scribbled on the counters: the rest goes to
     * the next count */
    uint64_t y = claims > st->yielded ? claims - st->yielded : 0;
    if (y > n)
        y = n;
    st->yielded += y;
    bump(&tx->yielded, y);
    bump(&tx->missed, n - y);
    st->counted = upto;
    store_relaxed(&tx->cycle, upto);
}

/* cycles counted up to what the claim word `seen` (read with acquire) has passed, if
 * the standby's counters can be matched with it: no claim held (its claimer counts it
 * before letting go), and the word unchanged once they are read (a claim since may
 * be counted in them already).  Else later, at a claim of our own. */
static void count_claimed(struct nf_state *st, uint64_t seen)
{
    struct rtudp_nf_tx *tx = &st->a->tx;
    if (seen & RTUDP_NF_CLAIM_HELD)
        return;
    uint64_t claims = standby_claims(tx);
    /* the counters before the second look: a count read from a claim made after
     * `seen` (stored with release after its claim) shows that claim here */
    atomic_thread_fence(memory_order_acquire);
    if (load_relaxed(&tx->claim) == seen)
        count_passed(st, seen >> RTUDP_NF_CLAIM_SHIFT, claims);
}

/* the standby's send: on the channel socket, asking for no TX stamp (its error queue
 * and stamp keys are the serving worker's: direct_send.h) */
static int standby_send(struct rtudp_chan *c, const uint8_t *pkt, uint32_t len)
{
    union rtudp_cmsg_u32 ctl;
    struct iovec iov = {.iov_base = (void *)pkt, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (c->dst_len) {
        mh.msg_name = &c->dst;
        mh.msg_namelen = c->dst_len;
    }
    rtudp_cmsg_u32_set(&mh, &ctl, SO_TIMESTAMPING, 0);
    ssize_t sent = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    /* ECONNREFUSED on a connected socket reports an ICMP error of an earlier packet
     * (the partner not yet bound) and consumes it; this packet has not left: once more,
     * as the serving worker's send does (netio.h), or its sequence byte is a gap */
    if (sent < 0 && errno == ECONNREFUSED)
        sent = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    return sent == (ssize_t)len ? 0 : -1;
}

/*
 * The standby's turn, `lag` after cycle st->cycle was due: send the cycle if nobody
 * claimed it.  Cycle numbers are the serving worker's (start + n x interval; start
 * from the area, where the serving worker put it at open).  Returns when to look
 * next: the next cycle's due time + lag.
 */
static int64_t nf_standby_timer(struct rtudp_chan *c, int64_t now)
{
    struct nf_state *st = c->state;
    struct rtudp_nf_tx *tx = &st->a->tx;
    int64_t start = load_relaxed(&tx->start_ns);
    if (start <= 0)
        return now + st->interval; /* no schedule yet: look again later */
    if (start > now) /* not begun */
        return start < INT64_MAX - st->lag ? start + st->lag : now + st->interval;
    uint64_t current = (uint64_t)((now - start) / st->interval); /* due most recently */
    uint64_t done = load_acquire(&tx->claim) >> RTUDP_NF_CLAIM_SHIFT;
    uint64_t n = st->cycle;
    if (done > n && done <= current + 1)
        n = done; /* the serving worker is on time: the first cycle it has not claimed */
    if (n < current)
        n = current; /* an interval late or more: as the serving worker, skip it */
    int64_t due = start + (int64_t)n * st->interval;
    int its_turn = now >= due + st->lag;
    uint64_t held;
    /* on a client's direct-send terms (direct_send.h), since it too sends beside the
     * serving worker; otherwise late cycles stay late, as without a standby.  A cycle
     * the serving worker holds (mid-send of an earlier one) is left to it. */
    int claim = its_turn && rtudp_direct_terms(c->block)
                    ? claim_cycle(st, start, n, RTUDP_NF_ROLE_STANDBY, &held)
                    : RTUDP_NF_TAKEN;
    if (claim == RTUDP_NF_WAIT)
        bump(&tx->standby_held, 1); /* stopped between its claim and its send */
    if (claim == RTUDP_NF_MINE) {
        uint8_t seq = (uint8_t)held;
        load_send_image(st);
        st->pkt[0] = seq;
        st->pkt[1] = (uint8_t)load_relaxed(&st->a->rx.partner_seq);
        store_release(&st->a->sent_ns[seq], rtudp_now_ns());
        int rc = standby_send(c, st->pkt, 2 + st->send_size);
        /* counted while the claim is held, with release: the serving worker counts this
         * cycle as the standby's from these counters (count_claimed) */
        uint64_t *count = rc == 0 ? &tx->standby_sent : &tx->standby_errors;
        store_release(count, load_relaxed(count) + 1);
        rtudp_nf_claim_done(tx, held);
    }
    if (its_turn)
        n++;
    st->cycle = n;
    return start + (int64_t)n * st->interval + st->lag;
}

static int64_t nf_tx_timer(struct rtudp_worker *w, struct rtudp_chan *c, int64_t now)
{
    (void)w;
    struct nf_state *st = c->state;
    if (!st || st->interval <= 0)
        return RTUDP_PROTO_NEVER;
    if (c->standby)
        return nf_standby_timer(c, now);
    struct rtudp_nf_tx *tx = &st->a->tx;
    int64_t due = st->start + (int64_t)st->cycle * st->interval;
    if (now < due)
        return due;
    if (now - due >= st->interval) {
        /* a whole cycle late (a stall): skip to the current slot, never a burst of
         * stale images; the schedule keeps its phase.  The standby may have sent the
         * cycles skipped: they are counted from the claim word (count_passed) */
        uint64_t skip = (uint64_t)((now - due) / st->interval);
        st->cycle += skip;
        due += (int64_t)skip * st->interval;
    }
    uint64_t held;
    int claim = claim_cycle(st, st->start, st->cycle, RTUDP_NF_ROLE_SERVING, &held);
    if (claim == RTUDP_NF_WAIT)
        return now + HELD_RETRY_NS; /* the standby is sending an earlier cycle */
    if (claim == RTUDP_NF_TAKEN) {
        /* the standby claimed this cycle or a later one: we were later than its lag.
         * On from the first cycle it has not claimed */
        count_claimed(st, held);
        st->cycle = held >> RTUDP_NF_CLAIM_SHIFT;
        return st->start + (int64_t)st->cycle * st->interval;
    }
    /* ours: no cycle before it can be claimed now, and the standby's claims of them
     * are counted (it counts before letting go of a claim; ours took the word after) */
    count_passed(st, st->cycle, standby_claims(tx));
    uint8_t seq = (uint8_t)held;
    load_send_image(st);
    uint8_t fb = (uint8_t)atomic_load_explicit(&st->feedback, memory_order_relaxed);
    st->pkt[0] = seq;
    st->pkt[1] = fb;
    int64_t t0 = rtudp_now_ns();
    /* before the send: the echo may come back before the call returns */
    store_release(&st->a->sent_ns[seq], t0);
    int rc = rtudp_tx_send_now(c, st->pkt, 2 + st->send_size, due);
    rtudp_nf_claim_done(tx, held);
    if (rc == 0) {
        bump(&tx->sent, 1);
        if (st->last_sent)
            track_interval(&st->own, &st->a->own_interval, t0 - st->last_sent,
                           &tx->own_jitter_ns);
        st->last_sent = t0;
        store_relaxed(&tx->last_sent_ns, t0);
    } else {
        bump(&tx->send_errors, 1);
    }
    if (t0 - due > load_relaxed(&tx->max_lateness_ns))
        store_relaxed(&tx->max_lateness_ns, t0 - due);
    store_relaxed(&tx->seq, (uint32_t)seq);
    store_relaxed(&tx->feedback, (uint32_t)fb);
    st->cycle++;
    st->counted = st->cycle;
    store_relaxed(&tx->cycle, st->cycle);
    return st->start + (int64_t)st->cycle * st->interval;
}

/* The channel leaves this worker (pause, close): the cycles the claim word has passed
 * are counted, so that the counters, standing still, add up.  (The standby is taken
 * off first.) */
static void nf_close(struct rtudp_worker *w, struct rtudp_chan *c)
{
    struct nf_state *st = c->state;
    if (st && !c->standby && c->sends && st->interval > 0)
        count_claimed(st, load_acquire(&st->a->tx.claim));
    rtudp_proto_free_state(w, c);
}

/* a link transition: counted, stamped, readers woken by the caller */
static void set_link(struct rtudp_chan *c, struct nf_state *st, int link, int64_t at)
{
    struct rtudp_nf_rx *rx = &st->a->rx;
    if (link == RTUDP_NF_LOST) {
        bump(&rx->watchdog_trips, 1);
        store_relaxed(&rx->lost_at_ns, at);
        if (!st->keep)
            rtudp_nf_image_publish(&st->a->recv_image, NULL, st->recv_size, at, 0);
    } else if (st->link == RTUDP_NF_LOST) {
        bump(&rx->recoveries, 1);
        store_relaxed(&rx->recovered_at_ns, at);
    }
    if (link == RTUDP_NF_UP)
        c->rx.timer_ns = at + st->watch < c->rx.timer_ns ? at + st->watch : c->rx.timer_ns;
    st->link = link;
    store_relaxed(&rx->link, (uint32_t)link);
    bump(&rx->events, 1);
}

/* the feedback byte of an accepted packet: feedback loss and RTT */
static void on_feedback(struct nf_state *st, uint8_t fb, int64_t rx_ns)
{
    struct rtudp_nf_rx *rx = &st->a->rx;
    uint8_t d = (uint8_t)(fb - st->last_fb);
    if (st->have_fb && d == 0)
        return; /* the same echo again: the partner has nothing newer of ours */
    int64_t sent = load_acquire(&st->a->sent_ns[fb]);
    if (!st->have_fb && sent == 0)
        return; /* echoes a sequence we never sent: the partner has none of ours yet */
    if (st->have_fb && d > 1 && d <= 127)
        bump(&rx->feedback_lost, (uint64_t)(d - 1));
    st->have_fb = 1;
    st->last_fb = fb;
    int64_t rtt = rx_ns - sent;
    if (sent > 0 && rtt > 0 && (st->interval <= 0 || rtt < RTT_WINDOW * st->interval)) {
        rtudp_hist_record(&st->a->rtt, rtt);
        store_relaxed(&rx->last_rtt_ns, rtt);
    }
}

/* is this sequence byte new?  1 accept, 0 reject (counted) */
static int accept_seq(struct nf_state *st, uint8_t s, int64_t rx_ns)
{
    struct rtudp_nf_rx *rx = &st->a->rx;
    if (!st->have_seq)
        return 1;
    uint8_t d = (uint8_t)(s - st->last_seq);
    if (d == 0) {
        bump(&rx->duplicate, 1);
        return 0;
    }
    if (d >= 128) {
        if (st->link != RTUDP_NF_LOST) {
            bump(&rx->old, 1);
            return 0;
        }
        /* after a loss a partner may have restarted: take its new numbering */
        bump(&rx->resyncs, 1);
        return 1;
    }
    if (d > 1)
        bump(&rx->partner_lost, (uint64_t)(d - 1));
    else if (st->last_valid && st->link == RTUDP_NF_UP)
        track_interval(&st->partner, &st->a->partner_interval, rx_ns - st->last_valid,
                       &rx->partner_jitter_ns);
    return 1;
}

static void nf_rx_batch(struct rtudp_chan *c, struct rtudp_rx_pkt *pkts, int n)
{
    struct nf_state *st = c->state;
    struct rtudp_nf_rx *rx = &st->a->rx;
    uint64_t bytes = 0, events = 0;
    for (int i = 0; i < n; i++)
        bytes += pkts[i].len;
    bump(&c->block->rx_packets, (uint64_t)n);
    bump(&c->block->rx_bytes, bytes);
    for (int i = 0; i < n; i++) {
        const struct rtudp_rx_pkt *p = &pkts[i];
        if (p->len < 2 + st->recv_size) {
            bump(&rx->short_pkts, 1);
            continue;
        }
        const uint8_t *d = p->buf;
        uint8_t s = d[0], fb = d[1];
        int64_t at = p->rx_ns ? p->rx_ns : rtudp_now_ns();
        if (!accept_seq(st, s, at))
            continue;
        st->have_seq = 1;
        st->last_seq = s;
        atomic_store_explicit(&st->feedback, s, memory_order_relaxed);
        on_feedback(st, fb, at);
        bump(&rx->valid, 1);
        store_relaxed(&rx->partner_seq, (uint32_t)s);
        store_relaxed(&rx->partner_feedback, (uint32_t)fb);
        store_relaxed(&rx->last_valid_ns, at);
        st->last_valid = at;
        rtudp_nf_image_publish(&st->a->recv_image, d + 2, st->recv_size, at,
                               (uint64_t)s | (uint64_t)fb << 8);
        if (st->link != RTUDP_NF_UP)
            set_link(c, st, RTUDP_NF_UP, at);
        bump(&rx->events, 1);
        events++;
    }
    if (events)
        rtudp_bell_ring(&st->a->bell);
}

static int64_t nf_rx_timer(struct rtudp_chan *c, int64_t now)
{
    struct nf_state *st = c->state;
    if (!st || st->link != RTUDP_NF_UP)
        return RTUDP_PROTO_NEVER; /* armed again by the next valid packet */
    int64_t due = st->last_valid + st->watch;
    if (now < due)
        return due;
    /* datagrams waiting unread mean this thread was late (the worker stalled), not the
     * partner: read them first and look again.  Once per deadline, so that a stream of
     * invalid packets cannot hold off the trip. */
    int queued = 0;
    if (st->deferred_due != due && ioctl(c->fd, FIONREAD, &queued) == 0 && queued > 0) {
        st->deferred_due = due;
        return now;
    }
    set_link(c, st, RTUDP_NF_LOST, now);
    rtudp_bell_ring(&st->a->bell);
    return RTUDP_PROTO_NEVER;
}

RTUDP_PROTO_DEFINE(NETFLUX, netflux, struct rtudp_nf_area, .standby = 1,
                   .open = nf_open, .tx_record = nf_tx_record, .tx_timer = nf_tx_timer,
                   .rx_batch = nf_rx_batch, .rx_timer = nf_rx_timer,
                   .close = nf_close);
