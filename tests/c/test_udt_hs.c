/*
 * test_udt_hs.c - the handshake state machines (csrc/udt/udt_hs.c): a client
 * and a listener exchange packets (as bytes, parsed by udt_wire) until both
 * are connected; wrong, stale and foreign cookies are ignored; a socket type
 * or version mismatch is rejected with 1002; resend and timeout timing;
 * rendezvous in both start orders and simultaneous, with lost packets; the
 * replies of a connected socket; the SipHash reference vector.
 */
#include "udt/udt_hs.h"
#include "udt/udt_seq.h"
#include "udt/udt_timers.h"

#include "harness.h"

static const uint8_t SECRET[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const struct udt_addr CLIENT = {4, {10, 0, 0, 1}, 5000};
static const struct udt_addr SERVER = {4, {10, 0, 0, 2}, 9000};

/* parse what a state machine produced, from an exact-size copy */
static struct udt_pkt wire(const uint8_t *b, int n)
{
    CHECK(n > 0);
    uint8_t *q = malloc((size_t)n);
    CHECK(q != NULL);
    memcpy(q, b, (size_t)n);
    struct udt_pkt p;
    CHECK_EQ(udt_parse(q, (size_t)n, &p), UDT_OK);
    free(q);
    CHECK(p.is_ctrl);
    CHECK_EQ(p.ctrl.type, UDT_CT_HANDSHAKE);
    return p;
}

static struct udt_hs_config client_cfg(uint32_t type)
{
    return (struct udt_hs_config){.sock_type = type, .mss = 1500, .flow_window = 8192,
                                  .sock_id = 0x1111, .isn = 0x7FFFFF00};
}

static struct udt_hs_listener listener(uint32_t type, uint64_t now)
{
    struct udt_hs_config c = {.sock_type = type, .mss = 1400, .flow_window = 25600,
                              .max_flow_window = 100000};
    struct udt_hs_listener l;
    CHECK_EQ(udt_hs_listener_init(&l, &c, SECRET, now), UDT_OK);
    return l;
}

static void words_of(const struct udt_addr *a, uint32_t w[4])
{
    CHECK_EQ(udt_hs_ip_from_addr(a->family, a->ip, w), UDT_OK);
}

/* The client side up to its -1 request; returns that request. */
static struct udt_pkt to_cookie_step(struct udt_hs_conn *c, const struct udt_hs_listener *l,
                                     uint32_t type, uint64_t now)
{
    uint8_t b[64], r[64];
    struct udt_hs_config cfg = client_cfg(type);
    int n = udt_hs_connect(c, &cfg, false, &SERVER, now, b, sizeof b);
    struct udt_pkt req = wire(b, n);
    CHECK_EQ(req.ctrl.dst_id, 0);
    CHECK_EQ(req.ctrl.u.hs.conn_type, UDT_HS_REQUEST);
    CHECK_EQ(req.ctrl.u.hs.cookie, 0);
    CHECK_EQ(req.ctrl.u.hs.version, 4);
    CHECK_EQ(req.ctrl.u.hs.isn, 0x7FFFFF00);
    uint32_t w[4];
    words_of(&SERVER, w);
    CHECK(memcmp(req.ctrl.u.hs.peer_ip, w, sizeof w) == 0);
    CHECK_EQ(c->state, UDT_HSS_REQUEST);

    int rn = 0;
    struct udt_hs_accept acc;
    CHECK_EQ(udt_hs_listen(l, &req.ctrl, &CLIENT, now + 100, r, sizeof r, &rn, &acc), UDT_LS_COOKIE);
    struct udt_pkt ck = wire(r, rn);
    CHECK_EQ(ck.ctrl.dst_id, 0x1111);
    CHECK_EQ(ck.ctrl.u.hs.conn_type, UDT_HS_REQUEST);
    CHECK_EQ(ck.ctrl.u.hs.cookie, udt_hs_cookie(l, &CLIENT, now));

    n = udt_hs_on_packet(c, &ck, now + 200, b, sizeof b);
    struct udt_pkt rep = wire(b, n);
    CHECK_EQ(c->state, UDT_HSS_RESPONSE);
    CHECK_EQ(rep.ctrl.u.hs.conn_type, UDT_HS_RESPONSE);
    CHECK_EQ(rep.ctrl.u.hs.cookie, ck.ctrl.u.hs.cookie);
    CHECK_EQ(rep.ctrl.dst_id, 0);
    return rep;
}

static void client_server_connect(void)
{
    uint64_t t0 = 1000000;
    struct udt_hs_listener l = listener(UDT_SOCK_STREAM, t0);
    struct udt_hs_conn c;
    struct udt_pkt rep = to_cookie_step(&c, &l, UDT_SOCK_STREAM, t0);

    uint8_t r[64];
    int rn = -1;
    struct udt_hs_accept acc;
    CHECK_EQ(udt_hs_listen(&l, &rep.ctrl, &CLIENT, t0 + 300, r, sizeof r, &rn, &acc), UDT_LS_ACCEPT);
    CHECK_EQ(rn, 0);
    CHECK_EQ(acc.peer_id, 0x1111);
    CHECK_EQ(acc.isn, 0x7FFFFF00);
    CHECK_EQ(acc.mss, 1400);
    CHECK_EQ(acc.peer_flow_window, 8192);
    /* the server side's connection */
    struct udt_hs_result srv;
    udt_hs_accept_result(&l, &acc, &srv);
    CHECK_EQ(srv.isn_send, 0x7FFFFF00); /* adopts the client's ISN */
    CHECK_EQ(srv.isn_recv, 0x7FFFFF00);
    CHECK_EQ(srv.peer_id, 0x1111);
    uint32_t w[4];
    words_of(&SERVER, w);
    CHECK(memcmp(srv.self_ip, w, sizeof w) == 0);

    rn = udt_hs_build_response(r, sizeof r, &l, 0x2222, &acc);
    struct udt_pkt res = wire(r, rn);
    CHECK_EQ(res.ctrl.dst_id, 0x1111);
    CHECK_EQ(res.ctrl.u.hs.conn_type, UDT_HS_RESPONSE);
    CHECK_EQ(res.ctrl.u.hs.sock_id, 0x2222);
    CHECK_EQ(res.ctrl.u.hs.flow_window, 25600);
    words_of(&CLIENT, w);
    CHECK(memcmp(res.ctrl.u.hs.peer_ip, w, sizeof w) == 0);

    uint8_t b[64];
    CHECK_EQ(udt_hs_on_packet(&c, &res, t0 + 400, b, sizeof b), 0);
    CHECK_EQ(c.state, UDT_HSS_CONNECTED);
    CHECK_EQ(c.result.peer_id, 0x2222);
    CHECK_EQ(c.result.isn_send, 0x7FFFFF00);
    CHECK_EQ(c.result.isn_recv, 0x7FFFFF00);
    CHECK_EQ(c.result.mss, 1400);
    CHECK_EQ(c.result.peer_flow_window, 25600);
    CHECK(memcmp(c.result.self_ip, w, sizeof w) == 0); /* the client learns its address */
    CHECK_EQ(udt_hs_next_timer_us(&c), UINT64_MAX);
    CHECK_EQ(udt_hs_on_timer(&c, t0 + 10000000, b, sizeof b), 0);

    /* the response was lost: the client's repeat is accepted again and gets
     * the same response from the existing connection */
    struct udt_hs_accept acc2;
    CHECK_EQ(udt_hs_listen(&l, &rep.ctrl, &CLIENT, t0 + 500000, r, sizeof r, &rn, &acc2),
             UDT_LS_ACCEPT);
    CHECK(memcmp(&acc, &acc2, sizeof acc) == 0);
    uint8_t r2[64];
    CHECK_EQ(udt_hs_build_response(r2, sizeof r2, &l, 0x2222, &acc2), 64);
    udt_hs_build_response(r, sizeof r, &l, 0x2222, &acc);
    CHECK(memcmp(r, r2, 64) == 0);
    /* a duplicate response after connecting changes nothing */
    CHECK_EQ(udt_hs_on_packet(&c, &res, t0 + 600, b, sizeof b), 0);
    CHECK_EQ(c.state, UDT_HSS_CONNECTED);
}

static void wrong_cookie_ignored(void)
{
    uint64_t t0 = 5000000;
    struct udt_hs_listener l = listener(UDT_SOCK_STREAM, t0);
    struct udt_hs_conn c;
    struct udt_pkt rep = to_cookie_step(&c, &l, UDT_SOCK_STREAM, t0);
    uint8_t r[64];
    int rn = -1;
    struct udt_hs_accept acc;

    struct udt_pkt bad = rep;
    bad.ctrl.u.hs.cookie ^= 1;
    CHECK_EQ(udt_hs_listen(&l, &bad.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    CHECK_EQ(rn, 0);
    /* the right cookie from another address or port */
    struct udt_addr other = CLIENT;
    other.port++;
    CHECK_EQ(udt_hs_listen(&l, &rep.ctrl, &other, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    other = CLIENT;
    other.ip[3] = 7;
    CHECK_EQ(udt_hs_listen(&l, &rep.ctrl, &other, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    /* a cookie without the request: type 0 or -2 with a valid cookie is not a request */
    bad = rep;
    bad.ctrl.u.hs.conn_type = UDT_HS_RENDEZVOUS;
    CHECK_EQ(udt_hs_listen(&l, &bad.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    /* the time slice: the previous one still counts, the one before not */
    CHECK_EQ(udt_hs_listen(&l, &rep.ctrl, &CLIENT, t0 + UDT_COOKIE_SLICE_US + 5, r, sizeof r, &rn,
                           &acc),
             UDT_LS_ACCEPT);
    CHECK_EQ(udt_hs_listen(&l, &rep.ctrl, &CLIENT, t0 + 2 * UDT_COOKIE_SLICE_US + 5, r, sizeof r,
                           &rn, &acc),
             UDT_LS_IGNORE);
    /* another listener secret: another cookie */
    struct udt_hs_listener l2 = l;
    l2.secret[0] ^= 0x80;
    CHECK(udt_hs_cookie(&l2, &CLIENT, t0) != udt_hs_cookie(&l, &CLIENT, t0));
    CHECK_EQ(udt_hs_listen(&l2, &rep.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    /* the client is still waiting */
    CHECK_EQ(c.state, UDT_HSS_RESPONSE);
}

static void type_mismatch_rejected(void)
{
    uint64_t t0 = 1;
    struct udt_hs_listener l = listener(UDT_SOCK_STREAM, t0);
    struct udt_hs_conn c;
    struct udt_pkt rep = to_cookie_step(&c, &l, UDT_SOCK_DGRAM, t0); /* cookie first, as libudt */
    uint8_t r[64], b[64];
    int rn = 0;
    struct udt_hs_accept acc;
    CHECK_EQ(udt_hs_listen(&l, &rep.ctrl, &CLIENT, t0 + 10, r, sizeof r, &rn, &acc), UDT_LS_REJECT);
    struct udt_pkt rej = wire(r, rn);
    CHECK_EQ(rej.ctrl.u.hs.conn_type, UDT_HS_REJECT);
    CHECK_EQ(rej.ctrl.dst_id, 0x1111);
    CHECK_EQ(udt_hs_on_packet(&c, &rej, t0 + 20, b, sizeof b), 0);
    CHECK_EQ(c.state, UDT_HSS_REJECTED);
    CHECK_EQ(udt_hs_on_timer(&c, t0 + 1000000, b, sizeof b), 0); /* no more requests */

    /* a version other than 4 is rejected the same way */
    l = listener(UDT_SOCK_DGRAM, t0);
    rep = to_cookie_step(&c, &l, UDT_SOCK_DGRAM, t0);
    rep.ctrl.u.hs.version = 5;
    CHECK_EQ(udt_hs_listen(&l, &rep.ctrl, &CLIENT, t0 + 10, r, sizeof r, &rn, &acc), UDT_LS_REJECT);
}

static void hostile_handshakes_ignored(void)
{
    uint64_t t0 = 1;
    struct udt_hs_listener l = listener(UDT_SOCK_STREAM, t0);
    struct udt_hs_conn c;
    uint8_t b[64], r[64];
    struct udt_hs_config cfg = client_cfg(UDT_SOCK_STREAM);
    int n = udt_hs_connect(&c, &cfg, false, &SERVER, t0, b, sizeof b);
    struct udt_pkt req = wire(b, n);
    int rn;
    struct udt_hs_accept acc;
    /* the listener spends nothing on requests with impossible fields */
    struct udt_pkt x = req;
    x.ctrl.u.hs.mss = 75;
    CHECK_EQ(udt_hs_listen(&l, &x.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    x = req;
    x.ctrl.u.hs.mss = 70000;
    CHECK_EQ(udt_hs_listen(&l, &x.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    x = req;
    x.ctrl.u.hs.flow_window = 0;
    CHECK_EQ(udt_hs_listen(&l, &x.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    x = req;
    x.ctrl.u.hs.sock_id = 0;
    CHECK_EQ(udt_hs_listen(&l, &x.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    x = req;
    x.ctrl.type = UDT_CT_KEEPALIVE;
    CHECK_EQ(udt_hs_listen(&l, &x.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_IGNORE);
    /* a huge flow window is clamped */
    x = req;
    CHECK_EQ(udt_hs_listen(&l, &x.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_COOKIE);
    x.ctrl.u.hs.conn_type = UDT_HS_RESPONSE;
    x.ctrl.u.hs.cookie = udt_hs_cookie(&l, &CLIENT, t0);
    x.ctrl.u.hs.flow_window = 0x7FFFFFFF;
    CHECK_EQ(udt_hs_listen(&l, &x.ctrl, &CLIENT, t0, r, sizeof r, &rn, &acc), UDT_LS_ACCEPT);
    CHECK_EQ(acc.peer_flow_window, 100000);

    /* the client ignores replies that do not carry its ISN, are for another
     * socket, have impossible fields, or are not handshakes */
    struct udt_pkt res = req;
    res.ctrl.dst_id = 0x1111;
    res.ctrl.u.hs.conn_type = UDT_HS_RESPONSE;
    res.ctrl.u.hs.sock_id = 0x2222;
    struct udt_pkt y = res;
    y.ctrl.u.hs.isn = 5;
    CHECK_EQ(udt_hs_on_packet(&c, &y, t0, b, sizeof b), 0);
    y = res;
    y.ctrl.dst_id = 0x3333;
    CHECK_EQ(udt_hs_on_packet(&c, &y, t0, b, sizeof b), 0);
    y = res;
    y.ctrl.u.hs.mss = 10;
    CHECK_EQ(udt_hs_on_packet(&c, &y, t0, b, sizeof b), 0);
    y = res;
    y.ctrl.u.hs.conn_type = UDT_HS_REJECT;
    y.ctrl.dst_id = 0; /* a reject must name us */
    CHECK_EQ(udt_hs_on_packet(&c, &y, t0, b, sizeof b), 0);
    y = res;
    y.ctrl.u.hs.conn_type = UDT_HS_RENDEZVOUS; /* not for a client */
    CHECK_EQ(udt_hs_on_packet(&c, &y, t0, b, sizeof b), 0);
    struct udt_pkt data = {.is_ctrl = false, .data = {.seq = 1, .dst_id = 0x1111}};
    CHECK_EQ(udt_hs_on_packet(&c, &data, t0, b, sizeof b), 0);
    CHECK_EQ(c.state, UDT_HSS_REQUEST);
    CHECK_EQ(c.ignored, 6);
    /* and the real one still works; MSS is never raised above ours */
    res.ctrl.u.hs.mss = 9000;
    CHECK_EQ(udt_hs_on_packet(&c, &res, t0, b, sizeof b), 0);
    CHECK_EQ(c.state, UDT_HSS_CONNECTED);
    CHECK_EQ(c.result.mss, 1500);

    /* bad configurations */
    struct udt_hs_config bad = client_cfg(3);
    CHECK_EQ(udt_hs_connect(&c, &bad, false, &SERVER, 0, b, sizeof b), UDT_E_ARG);
    bad = client_cfg(1);
    bad.sock_id = 0;
    CHECK_EQ(udt_hs_connect(&c, &bad, false, &SERVER, 0, b, sizeof b), UDT_E_ARG);
    bad = client_cfg(1);
    bad.mss = 75;
    CHECK_EQ(udt_hs_listener_init(&l, &bad, SECRET, 0), UDT_E_ARG);
    bad = client_cfg(1);
    CHECK_EQ(udt_hs_connect(&c, &bad, false, &SERVER, 0, b, 63), UDT_E_NOSPACE);
}

static void resend_and_timeout(void)
{
    struct udt_hs_conn c;
    uint8_t b[64], b2[64];
    struct udt_hs_config cfg = client_cfg(UDT_SOCK_STREAM);
    uint64_t t0 = 777;
    int n = udt_hs_connect(&c, &cfg, false, &SERVER, t0, b, sizeof b);
    CHECK_EQ(udt_hs_next_timer_us(&c), t0 + UDT_CONNECT_RETRY_US);
    CHECK_EQ(udt_hs_on_timer(&c, t0 + UDT_CONNECT_RETRY_US - 1, b2, sizeof b2), 0);
    CHECK_EQ(udt_hs_on_timer(&c, t0 + UDT_CONNECT_RETRY_US, b2, sizeof b2), n);
    CHECK(memcmp(b, b2, (size_t)n) == 0);
    uint64_t t = t0 + UDT_CONNECT_RETRY_US;
    int sent = 2; /* the first request and this repeat */
    while (c.state == UDT_HSS_REQUEST) {
        t += 1000;
        if (udt_hs_on_timer(&c, t, b2, sizeof b2) > 0)
            sent++;
    }
    CHECK_EQ(c.state, UDT_HSS_TIMEOUT);
    CHECK_EQ(t, t0 + UDT_CONNECT_TIMEOUT_US);
    CHECK_EQ(sent, 12); /* every 250 ms for 3 s */
    /* rendezvous waits ten times longer; a configured timeout wins */
    udt_hs_connect(&c, &cfg, true, &SERVER, 0, b, sizeof b);
    CHECK_EQ(c.deadline_us, 10 * UDT_CONNECT_TIMEOUT_US);
    cfg.timeout_us = 1234;
    udt_hs_connect(&c, &cfg, false, &SERVER, 0, b, sizeof b);
    CHECK_EQ(udt_hs_next_timer_us(&c), 1234);
}

/* ------------------------------------------------------------------ rendezvous */

struct peer {
    struct udt_hs_conn c;
    struct udt_hs_config cfg;
    const struct udt_addr *other;
    uint8_t out[64];
    int n; /* what it wants to send now (0: nothing) */
};

static void rv_start(struct peer *p, uint32_t id, uint32_t isn, uint32_t type,
                     const struct udt_addr *other, uint64_t now)
{
    p->cfg = (struct udt_hs_config){.sock_type = type, .mss = 1500, .flow_window = 8192,
                                    .sock_id = id, .isn = isn};
    p->other = other;
    p->n = udt_hs_connect(&p->c, &p->cfg, true, other, now, p->out, sizeof p->out);
    CHECK_EQ(p->n, 64);
    struct udt_pkt q = wire(p->out, p->n);
    CHECK_EQ(q.ctrl.u.hs.conn_type, UDT_HS_RENDEZVOUS);
    CHECK_EQ(q.ctrl.dst_id, 0);
}

/* deliver from's pending packet to `to` (a connected `to` answers as libudt's
 * processCtrl does) */
static void rv_deliver(struct peer *from, struct peer *to, uint64_t now)
{
    CHECK(from->n > 0);
    struct udt_pkt q = wire(from->out, from->n);
    from->n = 0;
    if (to->c.state == UDT_HSS_CONNECTED) {
        to->n = udt_hs_connected_reply(&to->cfg, true, &to->c.result, &q.ctrl.u.hs, to->out,
                                       sizeof to->out);
        return;
    }
    to->n = udt_hs_on_packet(&to->c, &q, now, to->out, sizeof to->out);
    CHECK(to->n >= 0);
}

static void rv_check_connected(const struct peer *a, const struct peer *b)
{
    CHECK_EQ(a->c.state, UDT_HSS_CONNECTED);
    CHECK_EQ(b->c.state, UDT_HSS_CONNECTED);
    CHECK_EQ(a->c.result.peer_id, b->cfg.sock_id);
    CHECK_EQ(b->c.result.peer_id, a->cfg.sock_id);
    /* each sends from its own ISN and receives from the other's */
    CHECK_EQ(a->c.result.isn_send, a->cfg.isn);
    CHECK_EQ(a->c.result.isn_recv, b->cfg.isn);
    CHECK_EQ(b->c.result.isn_recv, a->cfg.isn);
}

static void rendezvous_simultaneous(void)
{
    struct peer a, b;
    rv_start(&a, 0xAAAA, 100, UDT_SOCK_DGRAM, &SERVER, 0);
    rv_start(&b, 0xBBBB, 0x7FFFFFFF, UDT_SOCK_DGRAM, &CLIENT, 0);
    /* the two 0s cross: each answers -1 */
    struct peer a0 = a, b0 = b;
    rv_deliver(&b0, &a, 10);
    rv_deliver(&a0, &b, 10);
    CHECK_EQ(a.c.state, UDT_HSS_RESPONSE);
    CHECK_EQ(b.c.state, UDT_HSS_RESPONSE);
    struct udt_pkt q = wire(a.out, a.n);
    CHECK_EQ(q.ctrl.u.hs.conn_type, UDT_HS_RESPONSE);
    CHECK_EQ(q.ctrl.dst_id, 0xBBBB); /* the peer's id is known now */
    /* the two -1s cross: both connected */
    struct peer a1 = a, b1 = b;
    rv_deliver(&a1, &b, 20);
    rv_deliver(&b1, &a, 20);
    CHECK_EQ(a.n, 0);
    CHECK_EQ(b.n, 0);
    rv_check_connected(&a, &b);
}

/* first starts, its 0s are lost until second starts; then normal */
static void rendezvous_order(bool a_first)
{
    struct peer a, b;
    struct peer *first = a_first ? &a : &b, *second = a_first ? &b : &a;
    rv_start(&a, 0xAAAA, 5000, UDT_SOCK_STREAM, &SERVER, 0);
    rv_start(&b, 0xBBBB, 9000, UDT_SOCK_STREAM, &CLIENT, 0);
    second->n = 0;
    second->c.state = UDT_HSS_IDLE; /* not started yet */
    /* first's requests go nowhere for a second */
    uint64_t t = 0;
    for (int i = 0; i < 4; i++) {
        t += UDT_CONNECT_RETRY_US;
        first->n = udt_hs_on_timer(&first->c, t, first->out, sizeof first->out);
        CHECK(first->n > 0);
        first->n = 0; /* lost */
    }
    rv_start(second, second->cfg.sock_id, second->cfg.isn, UDT_SOCK_STREAM, second->other, t);
    rv_deliver(second, first, t + 1); /* first: 0 received -> -1 */
    CHECK_EQ(first->c.state, UDT_HSS_RESPONSE);
    rv_deliver(first, second, t + 2); /* second: ours 0, -1 received -> -1 */
    CHECK_EQ(second->c.state, UDT_HSS_RESPONSE);
    rv_deliver(second, first, t + 3); /* first: both -1 -> connected */
    CHECK_EQ(first->c.state, UDT_HSS_CONNECTED);
    CHECK_EQ(first->n, 0);
    /* second completes on first's traffic (a keep-alive), as libudt */
    struct udt_pkt ka = {.is_ctrl = true,
                         .ctrl = {.type = UDT_CT_KEEPALIVE, .dst_id = second->cfg.sock_id}};
    uint8_t o[64];
    CHECK_EQ(udt_hs_on_packet(&second->c, &ka, t + 4, o, sizeof o), 0);
    rv_check_connected(&a, &b);
}

static void rendezvous_a_first(void) { rendezvous_order(true); }
static void rendezvous_b_first(void) { rendezvous_order(false); }

static void rendezvous_last_reply_lost(void)
{
    /* like a_first, but second completes through its retry and first's -2 */
    struct peer a, b;
    rv_start(&a, 0xAAAA, 1, UDT_SOCK_STREAM, &SERVER, 0);
    rv_start(&b, 0xBBBB, 2, UDT_SOCK_STREAM, &CLIENT, 0);
    a.n = 0; /* lost */
    rv_deliver(&b, &a, 1);
    rv_deliver(&a, &b, 2);
    rv_deliver(&b, &a, 3);
    CHECK_EQ(a.c.state, UDT_HSS_CONNECTED);
    CHECK_EQ(b.c.state, UDT_HSS_RESPONSE);
    b.n = udt_hs_on_timer(&b.c, 2 + UDT_CONNECT_RETRY_US, b.out, sizeof b.out);
    rv_deliver(&b, &a, 300000);
    struct udt_pkt q = wire(a.out, a.n);
    CHECK_EQ(q.ctrl.u.hs.conn_type, UDT_HS_RENDEZVOUS_REPLY);
    CHECK_EQ(q.ctrl.u.hs.version, 4);
    rv_deliver(&a, &b, 300001);
    rv_check_connected(&a, &b);
    /* a libudt -2 reply leaves version and type 0: also completes */
    struct peer c, d;
    rv_start(&c, 0xCCCC, 1, UDT_SOCK_STREAM, &SERVER, 0);
    rv_start(&d, 0xDDDD, 2, UDT_SOCK_STREAM, &CLIENT, 0);
    rv_deliver(&d, &c, 1); /* c sends -1 */
    struct udt_pkt reply = wire(c.out, c.n);
    reply.ctrl.u.hs.conn_type = UDT_HS_RENDEZVOUS_REPLY;
    reply.ctrl.u.hs.version = 0;
    reply.ctrl.u.hs.sock_type = 0;
    uint8_t o[64];
    CHECK_EQ(udt_hs_on_packet(&d.c, &reply, 2, o, sizeof o), 64); /* d: ours was 0 -> -1 first */
    CHECK_EQ(d.c.state, UDT_HSS_RESPONSE);
    CHECK_EQ(udt_hs_on_packet(&d.c, &reply, 3, o, sizeof o), 0);
    CHECK_EQ(d.c.state, UDT_HSS_CONNECTED);
}

static void rendezvous_type_mismatch(void)
{
    struct peer a, b;
    rv_start(&a, 0xAAAA, 1, UDT_SOCK_STREAM, &SERVER, 0);
    rv_start(&b, 0xBBBB, 2, UDT_SOCK_DGRAM, &CLIENT, 0);
    rv_deliver(&a, &b, 1);
    CHECK_EQ(b.c.state, UDT_HSS_REJECTED);
    struct udt_pkt q = wire(b.out, b.n);
    CHECK_EQ(q.ctrl.u.hs.conn_type, UDT_HS_REJECT);
    CHECK_EQ(q.ctrl.dst_id, 0xAAAA);
    rv_deliver(&b, &a, 2);
    CHECK_EQ(a.c.state, UDT_HSS_REJECTED);
    /* a regular client's request (type 1) is not for a rendezvous socket */
    struct peer c;
    rv_start(&c, 0xCCCC, 1, UDT_SOCK_STREAM, &SERVER, 0);
    struct udt_hs_conn cl;
    struct udt_hs_config cfg = client_cfg(UDT_SOCK_STREAM);
    uint8_t o[64];
    int n = udt_hs_connect(&cl, &cfg, false, &CLIENT, 0, o, sizeof o);
    struct udt_pkt r = wire(o, n);
    CHECK_EQ(udt_hs_on_packet(&c.c, &r, 1, o, sizeof o), 0);
    CHECK_EQ(c.c.state, UDT_HSS_REQUEST);
    CHECK_EQ(c.c.ignored, 1);
}

static void connected_replies(void)
{
    struct udt_hs_config cfg = client_cfg(UDT_SOCK_STREAM);
    struct udt_hs_result res = {.peer_id = 0x9999, .isn_send = 42, .isn_recv = 43, .mss = 1400,
                                .peer_flow_window = 100};
    struct udt_handshake in = {.version = 4, .sock_type = 1, .conn_type = UDT_HS_REQUEST};
    uint8_t o[64];
    int n = udt_hs_connected_reply(&cfg, false, &res, &in, o, sizeof o);
    struct udt_pkt q = wire(o, n);
    CHECK_EQ(q.ctrl.dst_id, 0x9999);
    CHECK_EQ(q.ctrl.u.hs.conn_type, UDT_HS_RESPONSE);
    CHECK_EQ(q.ctrl.u.hs.isn, 42);
    CHECK_EQ(q.ctrl.u.hs.sock_id, 0x1111);
    in.conn_type = UDT_HS_RESPONSE;
    CHECK_EQ(udt_hs_connected_reply(&cfg, false, &res, &in, o, sizeof o), 0);
    CHECK_EQ(udt_hs_connected_reply(&cfg, true, &res, &in, o, sizeof o), 64);
    in.conn_type = UDT_HS_RENDEZVOUS_REPLY;
    CHECK_EQ(udt_hs_connected_reply(&cfg, true, &res, &in, o, sizeof o), 0);
    in.conn_type = UDT_HS_REJECT;
    CHECK_EQ(udt_hs_connected_reply(&cfg, true, &res, &in, o, sizeof o), 0);
}

static void siphash_reference_vector(void)
{
    /* SipHash paper, appendix A: key 00..0f, message 00..0e */
    uint8_t k[16], m[64];
    for (int i = 0; i < 16; i++)
        k[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        m[i] = (uint8_t)i;
    CHECK(udt_siphash24(k, m, 15) == 0xa129ca6149be45e5ull);
    CHECK(udt_siphash24(k, m, 0) == 0x726fdb47dd0e0e31ull);
    CHECK(udt_siphash24(k, m, 8) == 0x93f5f5799a932462ull);
}

static const struct test tests[] = {
    T(client_server_connect),
    T(wrong_cookie_ignored),
    T(type_mismatch_rejected),
    T(hostile_handshakes_ignored),
    T(resend_and_timeout),
    T(rendezvous_simultaneous),
    T(rendezvous_a_first),
    T(rendezvous_b_first),
    T(rendezvous_last_reply_lost),
    T(rendezvous_type_mismatch),
    T(connected_replies),
    T(siphash_reference_vector),
};

HARNESS_MAIN(tests)
