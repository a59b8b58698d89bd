/*
 * udt_area.c - the udt kind area's layout and the clients' side of its buffers
 * (proto/udt_area.h says who writes what).  Compiled into the worker and the cffi
 * extension.  Everything a client reads of the worker's lines is bounds-checked
 * before it indexes anything: a worker's garbage can fail a call, never make a
 * client write outside the area.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kinds.h"
#include "segment.h"
#include "proto/udt_area.h"
#include "proto/udt_conn.h"
#include "ring.h"
#include "shm_access.h"

static int check_area(const void *area, uint64_t area_bytes, struct rtudp_check *why);

/* the udt kind area, for kinds.c (what Python reads of it): its counters, and a row
 * per connection (udt_rows.c) */
extern const struct rtudp_counter_desc rtudp_udt_row_counters[];
RTUDP_KIND_AREA_ROWS(udt, struct rtudp_udt_area, RTUDP_UDT_AREA_COUNTERS, check_area, "connections",
                     struct rtudp_udt_conn_row, RTUDP_UDT_CONN_ROW_COUNTERS, rtudp_udt_row_counters,
                     rtudp_udt_conn_row);

#define SLOT_HDR ((uint64_t)sizeof(struct rtudp_udt_slot))
#define MAX_SOCKS 4096u
#define MAX_BUF_PKTS (1u << 20)

static uint64_t up64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

int rtudp_udt_layout(struct rtudp_udt_config *cfg, uint32_t max_socks, uint32_t buf_pkts,
                     uint32_t mss)
{
    if (!cfg || max_socks < 1 || max_socks > MAX_SOCKS || buf_pkts < 16 ||
        buf_pkts > MAX_BUF_PKTS || mss < UDT_MIN_MSS || mss > 1500)
        return RTUDP_EINVAL;
    cfg->max_socks = max_socks;
    cfg->buf_pkts = buf_pkts;
    cfg->mss = mss;
    cfg->slot_bytes = (uint32_t)up64(SLOT_HDR + RTUDP_UDT_PAYLOAD_MAX);
    cfg->socks_off = up64(sizeof(struct rtudp_udt_area));
    cfg->conn_off = up64(sizeof(struct rtudp_udt_sock));
    cfg->snd_off = cfg->conn_off + up64(udt_conn_bytes(buf_pkts));
    cfg->rcv_off = cfg->snd_off + (uint64_t)buf_pkts * cfg->slot_bytes;
    cfg->sock_stride = cfg->rcv_off + (uint64_t)buf_pkts * cfg->slot_bytes;
    return RTUDP_OK;
}

uint64_t rtudp_udt_area_bytes(const struct rtudp_udt_config *cfg)
{
    return cfg->socks_off + (uint64_t)cfg->max_socks * cfg->sock_stride;
}

/* the configuration is the supervisor's, but the area is shared memory: the
 * worker copies it after this check, clients check it when they attach */
static int check_area(const void *area, uint64_t area_bytes, struct rtudp_check *why)
{
    const struct rtudp_udt_area *a = area;
    int rc = RTUDP_KIND_AREA_HEAD("udt", a, area_bytes, RTUDP_UDT_MAGIC, why);
    if (rc != RTUDP_OK)
        return rc;
    const struct rtudp_udt_config *c = &a->config;
    struct rtudp_udt_config want;
    if (rtudp_udt_layout(&want, c->max_socks, c->buf_pkts, c->mss) != RTUDP_OK ||
        want.sock_stride != c->sock_stride || want.socks_off != c->socks_off ||
        want.conn_off != c->conn_off || want.snd_off != c->snd_off || want.rcv_off != c->rcv_off ||
        want.slot_bytes != c->slot_bytes || rtudp_udt_area_bytes(&want) > area_bytes)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "udt layout (%u sockets, %u packets, MSS %u) does not match "
                               "the area of %llu bytes",
                               c->max_socks, c->buf_pkts, c->mss, (unsigned long long)area_bytes);
    return RTUDP_OK;
}

int rtudp_udt_check(const struct rtudp_udt_area *a, uint64_t area_bytes, struct rtudp_check *why)
{
    return check_area(a, area_bytes, why);
}

struct rtudp_udt_sock *rtudp_udt_sock_at(struct rtudp_udt_area *a, uint32_t i)
{
    if (i >= a->config.max_socks)
        return NULL;
    return (struct rtudp_udt_sock *)((uint8_t *)a + a->config.socks_off +
                                     (uint64_t)i * a->config.sock_stride);
}

static struct rtudp_udt_slot *slot_at(struct rtudp_udt_area *a, uint32_t i, uint64_t off,
                                      uint64_t k)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
    if (!s)
        return NULL;
    return (struct rtudp_udt_slot *)((uint8_t *)s + off +
                                     (k % a->config.buf_pkts) * a->config.slot_bytes);
}

struct rtudp_udt_slot *rtudp_udt_snd_slot(struct rtudp_udt_area *a, uint32_t i, uint64_t k)
{
    return slot_at(a, i, a->config.snd_off, k);
}

struct rtudp_udt_slot *rtudp_udt_rcv_slot(struct rtudp_udt_area *a, uint32_t i, uint64_t k)
{
    return slot_at(a, i, a->config.rcv_off, k);
}

int rtudp_udt_claim(struct rtudp_udt_area *a, uint32_t sock_type)
{
    if (sock_type != RTUDP_UDT_STREAM && sock_type != RTUDP_UDT_DGRAM)
        return RTUDP_EINVAL;
    for (uint32_t i = 0; i < a->config.max_socks; i++) {
        struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
        uint32_t want = RTUDP_UDT_FREE;
        if (load_relaxed(&s->wrk.state) != 0 && load_relaxed(&s->wrk.state) != RTUDP_UDT_CLOSED)
            continue; /* the worker still winds it down */
        if (!atomic_compare_exchange_strong_explicit(SHARED(&s->cli.claim), &want,
                                                     (uint32_t)RTUDP_UDT_CLAIMED,
                                                     memory_order_acq_rel, memory_order_relaxed))
            continue;
        store_relaxed(&s->cli.sock_type, sock_type);
        store_relaxed(&s->cli.rendezvous, 0u);
        store_relaxed(&s->cli.close_req, 0u);
        store_relaxed(&s->cli.acc_tail, load_relaxed(&s->wrk.acc_head));
        store_relaxed(&s->cli.owner_pid, (int32_t)getpid());
        store_release(&s->wrk.state, (uint32_t)RTUDP_UDT_OPENED); /* not the worker's yet */
        return (int)i;
    }
    return RTUDP_EFULL;
}

/* payload bytes per packet of a connected socket, 0 when not connected */
static uint32_t payload_of(const struct rtudp_udt_sock *s)
{
    uint32_t p = load_acquire(&s->wrk.payload);
    return p <= RTUDP_UDT_PAYLOAD_MAX ? p : 0;
}

/* packets free in the send buffer */
static uint64_t snd_room(const struct rtudp_udt_area *a, const struct rtudp_udt_sock *s)
{
    uint64_t used = load_relaxed(&s->cli.snd_head) - load_acquire(&s->wrk.snd_acked);
    return used >= a->config.buf_pkts ? 0 : a->config.buf_pkts - used;
}

static uint32_t msg_word(uint32_t boundary, uint32_t inorder, uint32_t msgno)
{
    return boundary << 30 | (inorder ? 1u : 0u) << 29 | (msgno & 0x1FFFFFFFu);
}

/* write n packets of buf (the last one short) as one message; snd_head published */
static void put_packets(struct rtudp_udt_area *a, uint32_t i, struct rtudp_udt_sock *s,
                        const uint8_t *buf, uint64_t len, uint64_t n, uint32_t payload,
                        uint32_t ttl_ms, uint32_t inorder, uint64_t now_us)
{
    uint64_t head = load_relaxed(&s->cli.snd_head);
    uint32_t msgno = load_relaxed(&s->cli.msgno);
    if (msgno == 0)
        msgno = 1; /* libudt numbers messages from 1 */
    for (uint64_t p = 0; p < n; p++) {
        struct rtudp_udt_slot *sl = rtudp_udt_snd_slot(a, i, head + p);
        uint64_t off = p * payload;
        uint32_t part = (uint32_t)(len - off < payload ? len - off : payload);
        uint32_t b = (p == 0 ? 2u : 0u) | (p == n - 1 ? 1u : 0u);
        store_bytes_relaxed(sl + 1, buf + off, part);
        store_relaxed(&sl->len, part);
        store_relaxed(&sl->msg, msg_word(b, inorder, msgno));
        store_relaxed(&sl->born_us, now_us);
        store_relaxed(&sl->ttl_ms, ttl_ms);
        store_relaxed(&sl->flags, 0u);
    }
    store_relaxed(&s->cli.msgno, (msgno + 1) & 0x1FFFFFFFu);
    store_release(&s->cli.snd_head, head + n);
}

int64_t rtudp_udt_put_stream(struct rtudp_udt_area *a, uint32_t i, const uint8_t *buf,
                             uint64_t len)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
    uint32_t payload;
    if (!s || !(payload = payload_of(s)))
        return RTUDP_EINVAL;
    uint64_t room = snd_room(a, s), n = (len + payload - 1) / payload;
    if (n > room)
        n = room;
    if (!n)
        return 0;
    uint64_t bytes = n * payload < len ? n * payload : len;
    put_packets(a, i, s, buf, bytes, n, payload, 0, 0, 0);
    return (int64_t)bytes;
}

int64_t rtudp_udt_put_msg(struct rtudp_udt_area *a, uint32_t i, const uint8_t *buf, uint64_t len,
                          uint32_t ttl_ms, uint32_t inorder, uint64_t now_us)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
    uint32_t payload;
    if (!s || !(payload = payload_of(s)) || len == 0)
        return RTUDP_EINVAL;
    uint64_t n = (len + payload - 1) / payload;
    if (n > a->config.buf_pkts)
        return RTUDP_EINVAL;
    if (n > snd_room(a, s))
        return 0;
    put_packets(a, i, s, buf, len, n, payload, ttl_ms, inorder, now_us);
    return (int64_t)len;
}

/* the payload of receive slot k, its length bounds-checked; NULL when dropped or
 * already read out of order */
static const uint8_t *rcv_payload(struct rtudp_udt_area *a, uint32_t i, uint64_t k, uint32_t *len,
                                  uint32_t *msg)
{
    struct rtudp_udt_slot *sl = rtudp_udt_rcv_slot(a, i, k);
    uint32_t n = load_relaxed(&sl->len);
    *msg = load_relaxed(&sl->msg);
    if ((load_relaxed(&sl->flags) & (RTUDP_UDT_SLOT_DROPPED | RTUDP_UDT_SLOT_TAKEN)) ||
        n > RTUDP_UDT_PAYLOAD_MAX) {
        *len = 0;
        return NULL;
    }
    *len = n;
    return (const uint8_t *)(sl + 1);
}

/* receivable packets from rcv_read, at most buf_pkts (a worker's garbage cannot
 * make a client read a slot twice over) */
static uint64_t rcv_avail(const struct rtudp_udt_area *a, const struct rtudp_udt_sock *s)
{
    uint64_t n = load_acquire(&s->wrk.rcv_ready) - load_relaxed(&s->cli.rcv_read);
    return n > a->config.buf_pkts ? 0 : n;
}

int64_t rtudp_udt_get_stream(struct rtudp_udt_area *a, uint32_t i, uint8_t *buf, uint64_t cap)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
    if (!s)
        return RTUDP_EINVAL;
    uint64_t k = load_relaxed(&s->cli.rcv_read), end = k + rcv_avail(a, s), got = 0;
    uint32_t off = load_relaxed(&s->cli.rcv_off);
    while (k < end && got < cap) {
        uint32_t len, msg;
        const uint8_t *p = rcv_payload(a, i, k, &len, &msg);
        if (off > len)
            off = len;
        uint64_t take = len - off < cap - got ? len - off : cap - got;
        if (p && take)
            load_bytes_relaxed(buf + got, p + off, take);
        got += take;
        off += (uint32_t)take;
        if (off >= len) {
            k++;
            off = 0;
        }
    }
    store_relaxed(&s->cli.rcv_off, off);
    store_release(&s->cli.rcv_read, k);
    return (int64_t)got;
}

/* where the message at or after k starts (dropped packets, a message's tail skipped) */
static uint64_t msg_start(struct rtudp_udt_area *a, uint32_t i, uint64_t k, uint64_t end)
{
    for (; k < end; k++) {
        uint32_t len, msg;
        if (rcv_payload(a, i, k, &len, &msg) && (msg >> 31))
            break;
    }
    return k;
}

/*
 * Out-of-order delivery (UDT4's CRcvBuffer::scanMsg): past the in-order point
 * (rcv_ready, the first gap) a DGRAM socket may read a message that is whole and was
 * sent with its in-order bit clear.  The worker fills a slot only while its tag is
 * not the slot's (on_data, on_dropreq), so a filled slot past rcv_ready stays as it
 * is until rcv_read passes it: the client may read it, and marks it TAKEN so that the
 * in-order read skips it later, as it skips a dropped message.
 */
/* the first whole out-of-order message past rcv_ready: its slots [*first, *last] */
static bool ooo_msg(struct rtudp_udt_area *a, uint32_t i, const struct rtudp_udt_sock *s,
                    uint64_t *first, uint64_t *last)
{
    if (load_relaxed(&s->cli.sock_type) != RTUDP_UDT_DGRAM)
        return false;
    uint64_t read = load_relaxed(&s->cli.rcv_read), ready = load_acquire(&s->wrk.rcv_ready);
    if (ready - read > a->config.buf_pkts)
        return false; /* a worker's garbage */
    bool open = false; /* a message's first packet seen, and all since */
    for (uint64_t k = ready, end = read + a->config.buf_pkts; k < end; k++) {
        const struct rtudp_udt_slot *sl = rtudp_udt_rcv_slot(a, i, k);
        uint32_t len, msg;
        if (load_acquire(&sl->tag) != k + 1 || !rcv_payload(a, i, k, &len, &msg)) {
            open = false; /* a gap, dropped or taken: no message across it */
            continue;
        }
        if (msg >> 31) {
            open = true;
            *first = k;
        }
        if (open && (msg >> 30 & 1)) {
            if (!(msg >> 29 & 1)) {
                *last = k;
                return true;
            }
            open = false; /* whole, but it waits for its turn */
        }
    }
    return false;
}

/* read the message in slots [first, last] (cap bytes of it) and mark it taken */
static int64_t take_ooo(struct rtudp_udt_area *a, uint32_t i, uint64_t first, uint64_t last,
                        uint8_t *buf, uint64_t cap)
{
    uint64_t got = 0, total = 0;
    for (uint64_t k = first; k <= last; k++) {
        uint32_t len, msg;
        const uint8_t *p = rcv_payload(a, i, k, &len, &msg);
        uint64_t take = got < cap ? (len < cap - got ? len : cap - got) : 0;
        if (p && take)
            load_bytes_relaxed(buf + got, p, take);
        got += take;
        total += len;
    }
    for (uint64_t k = first; k <= last; k++) {
        struct rtudp_udt_slot *sl = rtudp_udt_rcv_slot(a, i, k);
        store_release(&sl->flags, load_relaxed(&sl->flags) | RTUDP_UDT_SLOT_TAKEN);
    }
    return (int64_t)total;
}

int64_t rtudp_udt_get_msg(struct rtudp_udt_area *a, uint32_t i, uint8_t *buf, uint64_t cap)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
    if (!s)
        return RTUDP_EINVAL;
    uint64_t end = load_relaxed(&s->cli.rcv_read) + rcv_avail(a, s);
    uint64_t k = msg_start(a, i, load_relaxed(&s->cli.rcv_read), end);
    uint64_t got = 0, total = 0;
    for (uint64_t j = k; j < end; j++) {
        uint32_t len, msg;
        const uint8_t *p = rcv_payload(a, i, j, &len, &msg);
        if (!p || (j > k && (msg >> 31))) {
            /* dropped in the middle, or a new message before this one's end: this
             * one is gone; the next starts after */
            k = msg_start(a, i, j + (p ? 0 : 1), end);
            j = k - 1;
            got = total = 0;
            continue;
        }
        uint64_t take = got < cap ? (len < cap - got ? len : cap - got) : 0;
        if (take)
            load_bytes_relaxed(buf + got, p, take);
        got += take;
        total += len;
        if ((msg >> 30) & 1) {
            store_relaxed(&s->cli.rcv_off, 0u);
            store_release(&s->cli.rcv_read, j + 1);
            return (int64_t)total;
        }
    }
    store_relaxed(&s->cli.rcv_off, 0u);
    store_release(&s->cli.rcv_read, k);
    uint64_t first, last;
    if (ooo_msg(a, i, s, &first, &last))
        return take_ooo(a, i, first, last, buf, cap);
    return RTUDP_EMPTY; /* not complete yet */
}

int rtudp_udt_accept_take(struct rtudp_udt_area *a, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
    if (!s)
        return RTUDP_EINVAL;
    for (;;) {
        uint32_t tail = load_acquire(&s->cli.acc_tail), head = load_acquire(&s->wrk.acc_head);
        if (tail == head)
            return RTUDP_EMPTY;
        if (head - tail > RTUDP_UDT_ACCEPT_Q)
            return RTUDP_ECORRUPT; /* the worker's line is garbage */
        uint32_t j = load_relaxed(&s->wrk.accept_q[tail % RTUDP_UDT_ACCEPT_Q]);
        if (!atomic_compare_exchange_weak_explicit(SHARED(&s->cli.acc_tail), &tail, tail + 1,
                                                   memory_order_acq_rel, memory_order_relaxed))
            continue;
        struct rtudp_udt_sock *q = rtudp_udt_sock_at(a, j);
        if (!q)
            return RTUDP_ECORRUPT;
        store_release(&q->cli.owner_pid, (int32_t)getpid());
        return (int)j;
    }
}

uint64_t rtudp_udt_snd_pending(struct rtudp_udt_area *a, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
    if (!s)
        return 0;
    uint64_t used = load_relaxed(&s->cli.snd_head) - load_acquire(&s->wrk.snd_acked);
    return used > a->config.buf_pkts ? 0 : used;
}

uint64_t rtudp_udt_rcv_pending(struct rtudp_udt_area *a, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
    if (!s)
        return 0;
    uint64_t k = load_relaxed(&s->cli.rcv_read), end = k + rcv_avail(a, s), bytes = 0;
    for (; k < end; k++) {
        uint32_t len, msg;
        rcv_payload(a, i, k, &len, &msg);
        bytes += len;
    }
    uint32_t off = load_relaxed(&s->cli.rcv_off);
    bytes = bytes > off ? bytes - off : 0;
    uint64_t first, last;
    if (ooo_msg(a, i, s, &first, &last)) {
        for (k = first; k <= last; k++) {
            uint32_t len, msg;
            rcv_payload(a, i, k, &len, &msg);
            bytes += len;
        }
    }
    return bytes;
}

struct events_wait {
    const struct rtudp_udt_area *a;
    uint64_t seen;
};

static bool events_moved(const void *ctx)
{
    const struct events_wait *e = ctx;
    return load_acquire(&e->a->events) != e->seen;
}

uint64_t rtudp_udt_wait(struct rtudp_udt_area *a, uint64_t seen, int64_t deadline_ns)
{
    struct events_wait e = {a, seen};
    rtudp_bell_wait(&a->bell, events_moved, &e, deadline_ns, 0);
    return load_acquire(&a->events);
}

struct sock_wait {
    const struct rtudp_udt_sock *s;
    uint64_t seen;
    const uint32_t *cancel;
};

static bool sock_moved(const void *ctx)
{
    const struct sock_wait *e = ctx;
    return load_acquire(&e->s->wrk.events) != e->seen ||
           (e->cancel && load_acquire(e->cancel));
}

uint64_t rtudp_udt_sock_wait(struct rtudp_udt_area *a, uint32_t i, uint64_t seen,
                             int64_t deadline_ns, const uint32_t *cancel)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(a, i);
    if (!s)
        return UINT64_MAX;
    struct sock_wait e = {s, seen, cancel};
    rtudp_bell_wait(&s->bell, sock_moved, &e, deadline_ns, 0);
    return load_acquire(&s->wrk.events);
}

void rtudp_udt_cancel_waits(struct rtudp_udt_area *a, uint32_t *cancel)
{
    store_release(cancel, 1u);
    for (uint32_t i = 0; i < a->config.max_socks; i++)
        rtudp_bell_ring(&rtudp_udt_sock_at(a, i)->bell);
    rtudp_bell_ring(&a->bell);
}
