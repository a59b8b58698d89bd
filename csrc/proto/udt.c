/*
 * udt.c - the udt channel kind: UDT4 sockets on one UDP port (proto/udt_area.h has
 * the layout and who writes what; docs/udt.md the design).
 *
 *   RX thread (rx_batch): each datagram goes, with its source address, onto the
 *     channel's own TX ring, as any client's request does.  So every UDT packet and
 *     every request is handled by the TX thread alone, in order, with no lock.
 *   TX thread (tx_record): requests (listen, connect, close, data queued) and
 *     received packets, demultiplexed by destination socket id (0: the listener, or
 *     a connecting socket of that peer address); (tx_timer): each socket's timers
 *     and paced sending (udt_conn.c).
 *
 * All of a socket's state is in the area, so open() finds the connections a dead
 * worker left and carries them on (counted in `takeovers`).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "procstat.h"
#include "proto/udt_area.h"
#include "proto/udt_conn.h"
#include "udt/udt_seq.h"
#include "worker.h"

#define REQ ((uint32_t)sizeof(struct rtudp_udt_req))
#define RX_MAX (REQ + 65536u)

#define SWEEP_US 1000000u  /* sockets of dead processes are looked for this often */
#define RX_STAMP_MAX_AGE_US 10000000u /* an older arrival stamp is not believed */

struct udt_kind {
    struct rtudp_udt_area *a;
    uint64_t next_sweep_us;        /* TX thread: the next look for dead owners */
    uint32_t walk_from;            /* TX thread: where the next timer walk starts */
    uint64_t *due_us;              /* TX thread: each socket's next timer, µs (0: at
                                    * once; UINT64_MAX: none until a record for it) */
    struct rtudp_udt_config cfg;   /* checked copy: what the worker indexes with */
    struct rtudp_mpsc tx;          /* RX thread: the TX ring as a producer */
    uint8_t *rx_rec;               /* RX thread: one record being built */
};

static void random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r <= 0) {
            /* cannot happen on Linux >= 3.17 for <= 256 bytes; never leave it zero */
            uint64_t t = (uint64_t)rtudp_now_ns() * 0x9E3779B97F4A7C15ull;
            memcpy(b, &t, n < 8 ? n : 8);
            r = (ssize_t)(n < 8 ? n : 8);
        }
        b += r;
        n -= (size_t)r;
    }
}

/* now_ns: the worker loop's clock as the hook was given it (not read here, so every
 * time the socket code sees comes from one clock: the worker's, or a test's) */
static struct udt_ctx ctx_of(struct rtudp_chan *c, int64_t now_ns)
{
    struct udt_kind *k = c->state;
    return (struct udt_ctx){.c = c, .a = k->a, .cfg = &k->cfg,
                            .now_us = (uint64_t)now_ns / 1000u};
}

/* socket i has news (a request, a packet, a new connection): its timers and sending
 * run in the next walk, whatever time they asked for */
static void touch(struct udt_ctx *x, uint32_t i)
{
    struct udt_kind *k = x->c->state;
    if (i < k->cfg.max_socks)
        k->due_us[i] = 0;
}

static void ring_clients(struct udt_ctx *x)
{
    if (!x->moved)
        return;
    store_release(&x->a->events, load_relaxed(&x->a->events) + 1);
    rtudp_bell_ring(&x->a->bell);
    /* and event loops waiting on a socket (rtudp.udt.aio): the hooks that call this
     * run in the TX thread, whose copies of their eventfds tx_waiters holds */
    rtudp_async_wake(&x->c->block->async_wait, RTUDP_ASYNC_TX, &x->c->tx_waiters);
    x->moved = 0;
}

static void to_udt_addr(const struct rtudp_sockaddr *s, struct udt_addr *u)
{
    memset(u, 0, sizeof *u);
    u->family = s->family == AF_INET6 ? 6 : 4;
    memcpy(u->ip, s->addr, s->family == AF_INET6 ? 16 : 4);
    u->port = s->port;
}

static bool same_addr(const struct rtudp_sockaddr *a, const struct rtudp_sockaddr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->addr, b->addr, a->family == AF_INET6 ? 16 : 4) == 0;
}

static uint32_t new_sock_id(uint32_t i)
{
    uint16_t r;
    random_bytes(&r, sizeof r);
    return ((uint32_t)(r & 0x7FFF) << 16 | i) | (i == 0 && r == 0 ? 0x10000u : 0);
}

static uint32_t new_isn(void)
{
    uint32_t r;
    random_bytes(&r, sizeof r);
    return r & UDT_SEQ_MAX;
}

static void hs_config(struct udt_ctx *x, uint32_t sock_type, uint32_t sock_id,
                      struct udt_hs_config *h)
{
    *h = (struct udt_hs_config){.sock_type = sock_type, .mss = x->cfg->mss,
                                .flow_window = x->cfg->buf_pkts,
                                .max_flow_window = x->cfg->buf_pkts, .sock_id = sock_id,
                                .isn = new_isn()};
}

/* ------------------------------------------------------------ requests */

static uint32_t sock_type_of(const struct rtudp_udt_sock *s)
{
    uint32_t t = load_relaxed(&s->cli.sock_type);
    return t == RTUDP_UDT_DGRAM ? RTUDP_UDT_DGRAM : RTUDP_UDT_STREAM;
}

/* Socket i, OPENED by its client, starts to listen or connect: its connection state
 * cleared, a new socket id (published) and its handshake configuration, counted open.
 * NULL (nothing done) if it is not OPENED. */
static struct udt_conn *start_sock(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    if (load_relaxed(&s->wrk.state) != RTUDP_UDT_OPENED)
        return NULL;
    struct udt_conn *k = udt_conn_of(x, i);
    memset(k, 0, sizeof *k);
    uint32_t id = new_sock_id(i);
    hs_config(x, sock_type_of(s), id, &k->cfg);
    store_relaxed(&s->wrk.sock_id, id);
    bump(&x->a->cnt.open_socks, 1);
    return k;
}

static void req_listen(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = start_sock(x, i);
    if (!k)
        return;
    udt_hs_listener_init(&k->ls, &k->cfg, x->a->secret, x->now_us);
    k->role = UDT_ROLE_LISTENER;
    store_relaxed(&s->wrk.acc_head, load_relaxed(&s->cli.acc_tail));
    store_release(&s->wrk.state, (uint32_t)RTUDP_UDT_LISTENING);
    udt_moved(x, i);
}

static void req_connect(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = start_sock(x, i);
    if (!k)
        return;
    struct rtudp_sockaddr peer;
    load_bytes_relaxed(&peer, &s->cli.peer, sizeof peer);
    k->rendezvous = load_relaxed(&s->cli.rendezvous) != 0;
    to_udt_addr(&peer, &k->peer);
    store_bytes_relaxed(&s->wrk.peer, &peer, sizeof peer);
    store_relaxed(&s->wrk.error, 0u);
    uint8_t out[UDT_HS_OUT_MAX];
    int n = udt_hs_connect(&k->hs, &k->cfg, k->rendezvous, &k->peer, x->now_us, out, sizeof out);
    if (n <= 0 || udt_send_pkt(x, i, out, n) != 0) {
        udt_sock_finish(x, i, RTUDP_UDT_BROKEN, RTUDP_UDT_ENOSERVER);
        return;
    }
    k->role = UDT_ROLE_CONNECTING;
    store_release(&s->wrk.state, (uint32_t)RTUDP_UDT_CONNECTING);
    udt_moved(x, i);
}

static void req_close(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    touch(x, i);
    uint32_t st = load_relaxed(&s->wrk.state);
    if (st == RTUDP_UDT_CLOSED || st == 0 || k->role == UDT_ROLE_CLOSING)
        return; /* (the close flag and the close request both come: once is enough) */
    if (k->role == UDT_ROLE_CONNECTED) {
        /* linger: what is queued still goes, then the shutdown (UDT_LINGER) */
        k->role = UDT_ROLE_CLOSING;
        k->close_at_us = x->now_us + 30000000u;
        store_release(&s->wrk.state, (uint32_t)RTUDP_UDT_CLOSING);
        x->c->tx_timer_ns = 0;
        return;
    }
    if (k->role == UDT_ROLE_LISTENER) {
        /* accepted sockets nobody took go with it (at most a queue's worth: acc_tail
         * is a client's, and garbage there must not make this loop 2^32 long) */
        uint32_t t = load_relaxed(&s->cli.acc_tail), h = load_relaxed(&s->wrk.acc_head);
        if (h - t > RTUDP_UDT_ACCEPT_Q)
            t = h - RTUDP_UDT_ACCEPT_Q;
        for (; t != h; t++) {
            uint32_t j = load_relaxed(&s->wrk.accept_q[t % RTUDP_UDT_ACCEPT_Q]);
            struct rtudp_udt_sock *q = rtudp_udt_sock_at(x->a, j);
            if (q && udt_conn_of(x, j)->role == UDT_ROLE_CONNECTED) {
                udt_conn_of(x, j)->role = UDT_ROLE_CLOSING;
                udt_conn_of(x, j)->close_at_us = x->now_us;
                touch(x, j);
            }
        }
    }
    udt_sock_finish(x, i, RTUDP_UDT_CLOSED, 0);
}

/* ------------------------------------------------------------ packets */

/* the listener of this port, if any (libudt: one a port) */
static int find_listener(struct udt_ctx *x)
{
    for (uint32_t i = 0; i < x->cfg->max_socks; i++)
        if (udt_conn_of(x, i)->role == UDT_ROLE_LISTENER &&
            load_relaxed(&rtudp_udt_sock_at(x->a, i)->wrk.state) == RTUDP_UDT_LISTENING)
            return (int)i;
    return -1;
}

/* a connecting socket (or, rendezvous, a connected one) of this peer */
static int find_by_peer(struct udt_ctx *x, const struct rtudp_sockaddr *src, bool connected_too)
{
    for (uint32_t i = 0; i < x->cfg->max_socks; i++) {
        struct udt_conn *k = udt_conn_of(x, i);
        bool ok = k->role == UDT_ROLE_CONNECTING ||
                  (connected_too && k->rendezvous && k->role == UDT_ROLE_CONNECTED);
        if (ok && same_addr(&rtudp_udt_sock_at(x->a, i)->wrk.peer, src))
            return (int)i;
    }
    return -1;
}

/* a socket a client may have or the worker may make: free and wound down */
static int claim_for_accept(struct udt_ctx *x)
{
    for (uint32_t i = 0; i < x->cfg->max_socks; i++) {
        struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
        uint32_t st = load_relaxed(&s->wrk.state), want = RTUDP_UDT_FREE;
        if (st != 0 && st != RTUDP_UDT_CLOSED)
            continue;
        if (atomic_compare_exchange_strong_explicit(SHARED(&s->cli.claim), &want,
                                                    (uint32_t)RTUDP_UDT_ACCEPTED,
                                                    memory_order_acq_rel, memory_order_relaxed))
            return (int)i;
    }
    return -1;
}

static void on_listener(struct udt_ctx *x, int li, const struct udt_pkt *pkt,
                        const struct rtudp_sockaddr *src)
{
    struct rtudp_udt_sock *ls = rtudp_udt_sock_at(x->a, (uint32_t)li);
    struct udt_conn *lk = udt_conn_of(x, (uint32_t)li);
    struct udt_addr from;
    to_udt_addr(src, &from);
    uint8_t out[UDT_HS_OUT_MAX];
    int out_len = 0;
    struct udt_hs_accept acc;
    int r = udt_hs_listen(&lk->ls, &pkt->ctrl, &from, x->now_us, out, sizeof out, &out_len, &acc);
    if (r == UDT_LS_COOKIE || r == UDT_LS_REJECT) {
        if (out_len > 0 && udt_send_to(x, src, out, out_len) == 0)
            bump(&x->a->cnt.tx_ctrl, 1);
        return;
    }
    if (r != UDT_LS_ACCEPT) {
        /* a forged or stale cookie, or fields out of range: no state, only counted */
        bump(&x->a->cnt.hs_refused, 1);
        return;
    }
    /* a repeated request: the connection exists, its answer was lost */
    for (uint32_t i = 0; i < x->cfg->max_socks; i++) {
        struct udt_conn *k = udt_conn_of(x, i);
        struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
        if ((k->role == UDT_ROLE_CONNECTED || k->role == UDT_ROLE_CLOSING) &&
            load_relaxed(&s->wrk.parent) == (uint32_t)li + 1 && k->acc.peer_id == acc.peer_id &&
            k->acc.isn == acc.isn && same_addr(&s->wrk.peer, src)) {
            int n = udt_hs_build_response(out, sizeof out, &lk->ls, s->wrk.sock_id, &acc);
            if (n > 0 && udt_send_to(x, src, out, n) == 0)
                bump(&x->a->cnt.tx_ctrl, 1);
            return;
        }
    }
    uint32_t head = load_relaxed(&ls->wrk.acc_head), tail = load_acquire(&ls->cli.acc_tail);
    uint32_t backlog = load_relaxed(&ls->cli.backlog);
    if (backlog == 0 || backlog > RTUDP_UDT_ACCEPT_Q)
        backlog = RTUDP_UDT_ACCEPT_Q;
    if (head - tail >= backlog)
        return; /* the client retries; libudt drops it too */
    int ni = claim_for_accept(x);
    if (ni < 0)
        return;
    uint32_t i = (uint32_t)ni;
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    memset(k, 0, sizeof *k);
    uint32_t id = new_sock_id(i);
    k->cfg = lk->cfg;
    k->cfg.sock_id = id;
    k->acc = acc;
    to_udt_addr(src, &k->peer);
    store_relaxed(&s->cli.sock_type, lk->cfg.sock_type);
    store_relaxed(&s->cli.close_req, 0u);
    store_bytes_relaxed(&s->wrk.peer, src, sizeof *src);
    store_relaxed(&s->wrk.sock_id, id);
    store_relaxed(&s->wrk.parent, (uint32_t)li + 1);
    struct udt_hs_result res;
    udt_hs_accept_result(&lk->ls, &acc, &res);
    bump(&x->a->cnt.open_socks, 1);
    touch(x, i);
    udt_conn_established(x, i, &res);
    int n = udt_hs_build_response(out, sizeof out, &lk->ls, id, &acc);
    if (n > 0 && udt_send_to(x, src, out, n) == 0)
        bump(&x->a->cnt.tx_ctrl, 1);
    /* counted before it is published: an accept() that takes it then sees the count */
    bump(&x->a->cnt.accepted, 1);
    store_relaxed(&ls->wrk.accept_q[head % RTUDP_UDT_ACCEPT_Q], i);
    store_release(&ls->wrk.acc_head, head + 1);
    udt_moved(x, (uint32_t)li);
}

static void on_connecting(struct udt_ctx *x, uint32_t i, const struct udt_pkt *pkt,
                          const uint8_t *raw, uint32_t len)
{
    struct udt_conn *k = udt_conn_of(x, i);
    uint8_t out[UDT_HS_OUT_MAX];
    int n = udt_hs_on_packet(&k->hs, pkt, x->now_us, out, sizeof out);
    if (n > 0 && udt_send_pkt(x, i, out, n) == 0)
        bump(&x->a->cnt.tx_ctrl, 1);
    if (k->hs.state == UDT_HSS_CONNECTED) {
        udt_conn_established(x, i, &k->hs.result);
        if (!pkt->is_ctrl || pkt->ctrl.type != UDT_CT_HANDSHAKE)
            udt_conn_on_packet(x, i, pkt, raw, len); /* rendezvous: the peer's first data */
    } else if (k->hs.state == UDT_HSS_REJECTED) {
        udt_sock_finish(x, i, RTUDP_UDT_BROKEN, RTUDP_UDT_ECONNREJ);
    }
}

static void on_datagram(struct udt_ctx *x, const struct rtudp_sockaddr *src, const uint8_t *p,
                        uint32_t len)
{
    struct udt_pkt pkt;
    if (udt_parse(p, len, &pkt) != UDT_OK) {
        bump(&x->a->cnt.rx_malformed, 1);
        return;
    }
    bump(&x->a->cnt.rx_datagrams, 1);
    bool hs = pkt.is_ctrl && pkt.ctrl.type == UDT_CT_HANDSHAKE;
    if (hs)
        bump(&x->a->cnt.handshakes, 1);
    uint32_t dst = pkt.is_ctrl ? pkt.ctrl.dst_id : pkt.data.dst_id;
    int i = -1;
    if (dst == 0) {
        if (!hs) {
            bump(&x->a->cnt.rx_unknown, 1);
            return;
        }
        i = find_by_peer(x, src, true);
        if (i < 0) {
            int li = find_listener(x);
            if (li >= 0) {
                udt_conn_sane(x, (uint32_t)li);
                on_listener(x, li, &pkt, src);
            }
            else
                bump(&x->a->cnt.rx_unknown, 1);
            return;
        }
    } else {
        uint32_t j = dst & 0xFFFFu;
        struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, j);
        if (!s || load_relaxed(&s->wrk.sock_id) != dst || !same_addr(&s->wrk.peer, src)) {
            bump(&x->a->cnt.rx_unknown, 1);
            return;
        }
        i = (int)j;
    }
    struct udt_conn *k = udt_conn_of(x, (uint32_t)i);
    udt_conn_sane(x, (uint32_t)i);
    touch(x, (uint32_t)i);
    if (k->role == UDT_ROLE_CONNECTING)
        on_connecting(x, (uint32_t)i, &pkt, p, len);
    else if (k->role == UDT_ROLE_CONNECTED || k->role == UDT_ROLE_CLOSING)
        udt_conn_on_packet(x, (uint32_t)i, &pkt, p, len);
    else
        bump(&x->a->cnt.rx_unknown, 1);
}

/* ------------------------------------------------------------ hooks */

/* UDT's sends are its own (no ring record waits for its departure): the kernel's TX
 * stamp of each packet would only cost an error-queue skb, a wake-up and a read per
 * packet (a fifth of the worker's time at 50 kpps).  RX stamps stay: they time the
 * arrivals (receive speed, RTT). */
static void tx_stamps_off(struct rtudp_chan *c)
{
    if (!c->caps.sw_tx || c->tx_fd != c->fd)
        return;
    if (rtudp_net_tx_stamps_off(c->tx_fd, &c->caps.tsflags) == RTUDP_OK)
        c->caps.sw_tx = 0;
}

static int udt_open(struct rtudp_worker *w, struct rtudp_chan *c, char *msg, size_t msglen)
{
    struct rtudp_udt_area *a = c->area;
    struct rtudp_check why = {0};
    if (rtudp_udt_check(a, c->area_bytes, &why) != RTUDP_OK) {
        snprintf(msg, msglen, "%s", why.msg);
        return RTUDP_ECORRUPT;
    }
    if (!c->sends || !c->recvs) {
        snprintf(msg, msglen, "a udt channel sends and receives (direction both)");
        return RTUDP_EINVAL;
    }
    uint32_t dgram = a->config.mss - UDT_MSS_OVERHEAD;
    if (c->tx.max_payload < REQ + dgram ||
        rtudp_rx_cap_for(&c->rx.ring, c->block->max_datagram) < dgram) {
        snprintf(msg, msglen, "udt with MSS %u needs max_datagram >= %u (TX records of %u bytes)",
                 a->config.mss, REQ + dgram, REQ + dgram);
        return RTUDP_EINVAL;
    }
    struct udt_kind *k = calloc(1, sizeof *k);
    uint8_t *rec = malloc(RX_MAX);
    if (k)
        k->cfg = a->config; /* the copy the worker indexes with: due_us is sized by it */
    uint64_t *due = k ? calloc(k->cfg.max_socks, sizeof *due) : NULL; /* all due at once */
    if (!k || !rec || !due) {
        free(k);
        free(rec);
        free(due);
        snprintf(msg, msglen, "out of memory");
        return RTUDP_ESYS;
    }
    tx_stamps_off(c);
    k->a = a;
    k->rx_rec = rec;
    k->due_us = due;
    rtudp_chan_tx_producer(w, c, &k->tx);
    c->state = k;
    if (!load_acquire(&a->secret_set)) {
        uint8_t secret[16];
        random_bytes(secret, sizeof secret);
        store_bytes_relaxed(a->secret, secret, sizeof secret);
        store_release(&a->secret_set, (uint64_t)1);
    }
    /* connections a dead worker left: carried on */
    struct udt_ctx x = ctx_of(c, rtudp_now_ns());
    for (uint32_t i = 0; i < k->cfg.max_socks; i++) {
        uint32_t role = udt_conn_of(&x, i)->role;
        if (role != UDT_ROLE_NONE && role != UDT_ROLE_DONE) {
            bump(&a->cnt.restarts, 1);
            break;
        }
    }
    c->tx_timer_ns = rtudp_now_ns();
    return RTUDP_OK;
}

static void udt_rx_batch(struct rtudp_chan *c, struct rtudp_rx_pkt *pkts, int n)
{
    struct udt_kind *k = c->state;
    struct rtudp_channel_block *b = c->block;
    uint64_t bytes = 0, lost = 0;
    for (int i = 0; i < n; i++) {
        struct rtudp_rx_pkt *p = &pkts[i];
        bytes += p->len;
        if (p->len > RX_MAX - REQ || (p->flags & RTUDP_RX_TRUNC)) {
            lost++;
            continue;
        }
        struct rtudp_udt_req *r = (struct rtudp_udt_req *)k->rx_rec;
        r->op = RTUDP_UDT_REQ_RX;
        /* µs mod 2^32, to the µs (the probe pairs' spacing is a few µs); 0 is
         * "none", so the one µs in 2^32 that is 0 becomes 1 */
        uint32_t us = (uint32_t)((uint64_t)p->rx_ns / 1000u);
        r->sock = us + (us == 0);
        rtudp_rx_source(p, &r->src);
        memcpy(k->rx_rec + REQ, p->buf, p->len);
        if (rtudp_mpsc_try_put(&k->tx, k->rx_rec, REQ + p->len, 0, 0) != RTUDP_OK)
            lost++;
    }
    bump(&b->rx_packets, (uint64_t)n);
    bump(&b->rx_bytes, bytes);
    if (lost)
        bump(&k->a->cnt.rx_dropped, lost);
}

static int udt_tx_record(struct rtudp_chan *c, struct rtudp_tx_record *rec, uint32_t len,
                         int64_t now, struct rtudp_timer *t)
{
    (void)t;
    if (len < REQ)
        return -1;
    struct rtudp_udt_req r;
    memcpy(&r, rec + 1, REQ);
    struct udt_ctx x = ctx_of(c, now);
    if (r.op == RTUDP_UDT_REQ_RX) {
        /* the arrival stamp (µs mod 2^32): records wait in the ring at most seconds */
        uint32_t ago = (uint32_t)x.now_us - r.sock;
        if (r.sock && ago < RX_STAMP_MAX_AGE_US && ago <= x.now_us)
            x.rx_us = x.now_us - ago;
        on_datagram(&x, &r.src, (const uint8_t *)(rec + 1) + REQ, len - REQ);
    } else {
        if (r.sock >= x.cfg->max_socks)
            return -1;
        touch(&x, r.sock);
        switch (r.op) {
        case RTUDP_UDT_REQ_KICK:
            break; /* the timer below looks at every socket */
        case RTUDP_UDT_REQ_RECV_FREED: {
            /* a client read from a (nearly) full receive buffer: ACK now with the room */
            struct udt_conn *k = udt_conn_of(&x, r.sock);
            if (k->role == UDT_ROLE_CONNECTED || k->role == UDT_ROLE_CLOSING)
                k->tm.next_ack_us = x.now_us;
            break;
        }
        case RTUDP_UDT_REQ_LISTEN:
            req_listen(&x, r.sock);
            break;
        case RTUDP_UDT_REQ_CONNECT:
            req_connect(&x, r.sock);
            break;
        case RTUDP_UDT_REQ_CLOSE:
            req_close(&x, r.sock);
            break;
        default:
            return -1;
        }
    }
    ring_clients(&x);
    c->tx_timer_ns = 0; /* run the sockets' timers and sending next */
    return RTUDP_PROTO_TAKEN;
}

/* a process that died with sockets open: they are closed for it (a connected one
 * still delivers what it queued), so max_sockets is not used up by the dead */
static void sweep_dead_owners(struct udt_ctx *x)
{
    for (uint32_t i = 0; i < x->cfg->max_socks; i++) {
        struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
        uint32_t st = load_relaxed(&s->wrk.state);
        int32_t pid = load_relaxed(&s->cli.owner_pid);
        if (load_relaxed(&s->cli.claim) == RTUDP_UDT_FREE || st == 0 ||
            st == RTUDP_UDT_CLOSED || st == RTUDP_UDT_CLOSING || pid <= 0)
            continue;
        if (!rtudp_pid_exited(pid))
            continue;
        bump(&x->a->cnt.orphans, 1);
        store_relaxed(&s->cli.owner_pid, 0);
        req_close(x, i);
    }
}

static int64_t udt_tx_timer(struct rtudp_worker *w, struct rtudp_chan *c, int64_t now_ns)
{
    (void)w;
    struct udt_kind *kind = c->state;
    struct udt_ctx x = ctx_of(c, now_ns);
    if (x.now_us >= kind->next_sweep_us) {
        kind->next_sweep_us = x.now_us + SWEEP_US;
        sweep_dead_owners(&x);
    }
    uint64_t next = kind->next_sweep_us;
    /* each call starts one socket further on: when the socket buffer refuses packets
     * (EAGAIN) late in a walk, the same sockets must not always be the ones late */
    uint32_t socks = x.cfg->max_socks, first = kind->walk_from++ % socks;
    for (uint32_t step = 0; step < socks; step++) {
        uint32_t i = first + step < socks ? first + step : first + step - socks;
        if (kind->due_us[i] > x.now_us) { /* nothing for it yet: a compare, not a look */
            if (kind->due_us[i] < next)
                next = kind->due_us[i];
            continue;
        }
        struct udt_conn *k = udt_conn_of(&x, i);
        uint64_t at = UINT64_MAX;
        if (k->role == UDT_ROLE_CONNECTING) {
            udt_conn_sane(&x, i);
            uint8_t out[UDT_HS_OUT_MAX];
            int n = udt_hs_on_timer(&k->hs, x.now_us, out, sizeof out);
            if (n > 0 && udt_send_pkt(&x, i, out, n) == 0)
                bump(&x.a->cnt.tx_ctrl, 1);
            if (k->hs.state == UDT_HSS_TIMEOUT)
                udt_sock_finish(&x, i, RTUDP_UDT_BROKEN, RTUDP_UDT_ENOSERVER);
            else
                at = udt_hs_next_timer_us(&k->hs);
        } else if (k->role == UDT_ROLE_CONNECTED || k->role == UDT_ROLE_CLOSING) {
            struct rtudp_udt_sock *s = rtudp_udt_sock_at(x.a, i);
            if (k->role == UDT_ROLE_CONNECTED && load_acquire(&s->cli.close_req))
                req_close(&x, i);
            at = udt_conn_timer(&x, i);
        }
        kind->due_us[i] = at;
        if (at < next)
            next = at;
    }
    ring_clients(&x);
    if (next == UINT64_MAX || next > (uint64_t)INT64_MAX / 1000u)
        return RTUDP_PROTO_NEVER;
    return (int64_t)(next * 1000u);
}

static void udt_close(struct rtudp_worker *w, struct rtudp_chan *c)
{
    (void)w;
    struct udt_kind *k = c->state;
    if (k) {
        free(k->rx_rec);
        free(k->due_us);
    }
    free(k);
    c->state = NULL;
}

RTUDP_PROTO_DEFINE(UDT, udt, struct rtudp_udt_area, .open = udt_open,
                   .tx_record = udt_tx_record, .tx_timer = udt_tx_timer,
                   .rx_batch = udt_rx_batch, .close = udt_close);
