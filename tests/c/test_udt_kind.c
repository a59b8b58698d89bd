/*
 * test_udt_kind.c - the udt channel kind's hooks (csrc/proto/udt.c, udt_conn.c) on
 * two channels built in memory, no worker process: a listener in area A and a
 * client in area B, each channel sending on its own loopback UDP socket.  The test
 * is the wire: it reads what each side sent and hands it to the other side's
 * tx_record as the RX thread would (a REQ_RX record), or drops it.  The clock is
 * the test's (the hooks take their time from their `now` argument), so EXP and the
 * broken-link timeout run in simulated seconds.
 *
 * Covered: the cookie handshake, STREAM and DGRAM data both ways, chosen losses ->
 * NAK -> retransmission, ACK / ACK2, EXP retransmission and keep-alive, the broken
 * link, the lingering close and the peer's shutdown, TTL message drop (DROPREQ),
 * and hostile input: truncated / foreign / misaddressed packets, out-of-window
 * sequence numbers, bogus control packets, bad requests, a scribbled area.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <linux/net_tstamp.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

/* harness.h and the worker's shm_access.h both define align8(): the harness's is
 * renamed here, this test uses the engine's */
#define align8 harness_align8
#include "harness.h"
#undef align8
#include "ring_fixture.h"
#include "proto/udt_area.h"
#include "proto/udt_conn.h"
#include "udt/udt_seq.h"
#include "udt/udt_wire.h"
#include "worker.h"

#define REQ ((uint32_t)sizeof(struct rtudp_udt_req))
#define MS 1000000LL
#define STEP_NS 100000LL /* the simulated loop's tick: 100 µs */
#define BUF_PKTS 64u
#define BROKEN_US 2000000u

struct side {
    struct rtudp_chan c;
    struct rtudp_channel_block block;
    struct rtudp_udt_area *a;
    uint64_t area_bytes;
    struct rtudp_mpsc tx;
    struct rtudp_bcast rx;
    int fd;
    struct rtudp_sockaddr addr; /* where the other side reaches this one */
};

/* which datagrams the wire loses: from B (client) to A, or A to B */
typedef bool (*drop_fn)(int from_b, const uint8_t *p, uint32_t len, void *arg);

struct net {
    struct side A, B;
    struct rtudp_worker *w;
    struct rtudp_worker_slot *me;
    int64_t now;
    drop_fn drop;
    void *drop_arg;
    uint64_t delivered[2]; /* datagrams handed over, [from B] */
    int64_t step_ns;       /* the loop's tick; 0: STEP_NS */
};

static void side_init(struct net *n, struct side *s)
{
    memset(s, 0, sizeof *s);
    struct rtudp_udt_config cfg = {0};
    CHECK_EQ(rtudp_udt_layout(&cfg, 4, BUF_PKTS, 1500), RTUDP_OK);
    cfg.cc = RTUDP_UDT_CC_DAIMD;
    cfg.broken_us = BROKEN_US;
    cfg.nak_floor_us = 20000;
    s->area_bytes = (rtudp_udt_area_bytes(&cfg) + 63) & ~(uint64_t)63;
    s->a = zalloc64(s->area_bytes);
    cfg.magic = RTUDP_UDT_MAGIC;
    s->a->config = cfg;
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    CHECK(s->fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(s->fd, (struct sockaddr *)&sin, sizeof sin), 0);
    struct rtudp_rx_pkt p = {0};
    p.src_len = sizeof p.src;
    CHECK_EQ(getsockname(s->fd, (struct sockaddr *)&p.src, &p.src_len), 0);
    rtudp_rx_source(&p, &s->addr);
    /* the worker's socket setup (send_raw needs it), without what a worker has and
     * this test does not: no TX stamps to read (they would fill the error queue;
     * OPT_ID stays: sends carry their key),
     * no GRO (recvfrom here reads one datagram at a time) */
    struct rtudp_check why = {0};
    CHECK_EQ(rtudp_net_setup(s->fd, 0, &s->c.caps, &why), RTUDP_OK);
    int zero = 0, ids_only = SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
    CHECK_EQ(setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPING, &ids_only, sizeof ids_only), 0);
    setsockopt(s->fd, SOL_UDP, UDP_GRO, &zero, sizeof zero); /* (may be unknown: fine) */
    s->c.caps.sw_tx = 0;
    s->c.caps.gro = 0;
    s->block.max_datagram = 1500;
    s->tx = mpsc_new(1 << 16);
    s->rx = bcast_new(1 << 16);
    struct rtudp_chan *c = &s->c;
    c->block = &s->block;
    c->area = s->a;
    c->area_bytes = s->area_bytes;
    c->fd = c->tx_fd = s->fd;
    c->sends = c->recvs = 1;
    c->tx = s->tx;
    c->rx.ring = s->rx;
    c->proto = rtudp_proto_find(RTUDP_KIND_UDT);
    CHECK(c->proto != NULL);
    char msg[200] = "";
    int rc = c->proto->open(n->w, c, msg, sizeof msg);
    if (rc != RTUDP_OK)
        fprintf(stderr, "open: %s\n", msg);
    CHECK_EQ(rc, RTUDP_OK);
}

static void net_init(struct net *n)
{
    memset(n, 0, sizeof *n);
    n->w = calloc(1, sizeof *n->w);
    n->me = calloc(1, sizeof *n->me);
    CHECK(n->w && n->me);
    n->w->me = n->me;
    n->now = 1000 * 1000 * MS; /* 1000 s: any fixed start will do */
    side_init(n, &n->A);
    side_init(n, &n->B);
}

static void side_free(struct side *s)
{
    s->c.proto->close(NULL, &s->c);
    rtudp_net_forget(s->fd);
    close(s->fd);
    free(s->a);
    free(s->tx.ring);
    free(s->rx.ring);
}

static void net_free(struct net *n)
{
    side_free(&n->A);
    side_free(&n->B);
    free(n->w);
    free(n->me);
}

/* hand one record to side s's tx_record as the worker would: header, request, data */
static int record(struct net *n, struct side *s, const struct rtudp_udt_req *r, const void *data,
                  uint32_t len)
{
    static _Alignas(8) uint8_t mem[sizeof(struct rtudp_tx_record) + sizeof(struct rtudp_udt_req) +
                                   65536];
    struct rtudp_tx_record *rec = (struct rtudp_tx_record *)mem;
    memset(rec, 0, sizeof *rec);
    rec->length = (int32_t)(REQ + len);
    memcpy(rec + 1, r, REQ);
    if (len)
        memcpy(mem + sizeof *rec + REQ, data, len);
    struct rtudp_timer t = {0};
    return s->c.proto->tx_record(&s->c, rec, REQ + len, n->now, &t);
}

static int request(struct net *n, struct side *s, uint32_t op, uint32_t sock)
{
    struct rtudp_udt_req r = {.op = op, .sock = sock};
    return record(n, s, &r, NULL, 0);
}

/* a datagram from `from` arriving at s */
static void inject(struct net *n, struct side *s, const struct rtudp_sockaddr *from,
                   const void *p, uint32_t len)
{
    struct rtudp_udt_req r = {.op = RTUDP_UDT_REQ_RX, .src = *from};
    CHECK_EQ(record(n, s, &r, p, len), RTUDP_PROTO_TAKEN);
}

/* what arrived on `to`'s socket goes to its tx_record (unless the wire drops it) */
static int deliver(struct net *n, struct side *to, int from_b)
{
    uint8_t buf[2048];
    int got = 0;
    for (;;) {
        struct rtudp_rx_pkt p = {0};
        p.src_len = sizeof p.src;
        ssize_t r = recvfrom(to->fd, buf, sizeof buf, 0, (struct sockaddr *)&p.src, &p.src_len);
        if (r < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            return got;
        }
        got++;
        if (n->drop && n->drop(from_b, buf, (uint32_t)r, n->drop_arg))
            continue;
        struct rtudp_sockaddr src;
        rtudp_rx_source(&p, &src);
        inject(n, to, &src, buf, (uint32_t)r);
        n->delivered[from_b]++;
    }
}

/* run both sides for `ns` of simulated time: wire, then timers, each tick */
static void run(struct net *n, int64_t ns)
{
    for (int64_t end = n->now + ns; n->now < end; n->now += n->step_ns ? n->step_ns : STEP_NS) {
        for (int k = 0; k < 4; k++) {
            /* a few rounds per tick: an answer may call for an answer */
            int moved = deliver(n, &n->A, 1) + deliver(n, &n->B, 0);
            n->A.c.proto->tx_timer(n->w, &n->A.c, n->now);
            n->B.c.proto->tx_timer(n->w, &n->B.c, n->now);
            if (!moved)
                break;
        }
    }
}

static struct rtudp_udt_sock *sock(struct side *s, uint32_t i)
{
    struct rtudp_udt_sock *k = rtudp_udt_sock_at(s->a, i);
    CHECK(k != NULL);
    return k;
}

static uint32_t state(struct side *s, uint32_t i) { return sock(s, i)->wrk.state; }

/* a listener on A and a client of type t on B, connected; *la, *acc on A, *cl on B */
static void connect_pair(struct net *n, uint32_t t, int *la, int *acc, int *cl)
{
    *la = rtudp_udt_claim(n->A.a, t);
    CHECK(*la >= 0);
    CHECK_EQ(request(n, &n->A, RTUDP_UDT_REQ_LISTEN, (uint32_t)*la), RTUDP_PROTO_TAKEN);
    CHECK_EQ(state(&n->A, (uint32_t)*la), RTUDP_UDT_LISTENING);
    *cl = rtudp_udt_claim(n->B.a, t);
    CHECK(*cl >= 0);
    sock(&n->B, (uint32_t)*cl)->cli.peer = n->A.addr;
    CHECK_EQ(request(n, &n->B, RTUDP_UDT_REQ_CONNECT, (uint32_t)*cl), RTUDP_PROTO_TAKEN);
    CHECK_EQ(state(&n->B, (uint32_t)*cl), RTUDP_UDT_CONNECTING);
    run(n, 5 * MS);
    CHECK_EQ(state(&n->B, (uint32_t)*cl), RTUDP_UDT_CONNECTED);
    *acc = rtudp_udt_accept_take(n->A.a, (uint32_t)*la);
    CHECK(*acc >= 0 && *acc != *la);
    CHECK_EQ(state(&n->A, (uint32_t)*acc), RTUDP_UDT_CONNECTED);
    /* the cookie round: request, cookie, request with cookie, answer */
    CHECK(n->A.a->cnt.handshakes >= 2);
    CHECK_EQ(n->A.a->cnt.accepted, 1u);
    CHECK_EQ(sock(&n->A, (uint32_t)*acc)->wrk.peer_id, sock(&n->B, (uint32_t)*cl)->wrk.sock_id);
    CHECK_EQ(sock(&n->B, (uint32_t)*cl)->wrk.peer_id, sock(&n->A, (uint32_t)*acc)->wrk.sock_id);
}

/* stream bytes from (src, i) to (dst, j), all of them, within `budget` */
static void stream_through(struct net *n, struct side *src, uint32_t i, struct side *dst,
                           uint32_t j, uint32_t len, uint64_t key)
{
    uint8_t *out = malloc(len), *in = malloc(len);
    CHECK(out && in);
    fill(out, len, key);
    uint32_t put = 0, got = 0;
    for (int round = 0; round < 20000 && got < len; round++) {
        if (put < len) {
            int64_t r = rtudp_udt_put_stream(src->a, i, out + put, len - put);
            CHECK(r >= 0);
            put += (uint32_t)r;
            if (r)
                CHECK_EQ(request(n, src, RTUDP_UDT_REQ_KICK, i), RTUDP_PROTO_TAKEN);
        }
        run(n, 1 * MS);
        int64_t r = rtudp_udt_get_stream(dst->a, j, in + got, len - got);
        CHECK(r >= 0);
        if (r)
            request(n, dst, RTUDP_UDT_REQ_RECV_FREED, j);
        got += (uint32_t)r;
    }
    CHECK_EQ(got, len);
    CHECK(memcmp(in, out, len) == 0);
    free(in);
    free(out);
}

static void test_handshake_and_stream_both_ways(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_STREAM, &la, &acc, &cl);
    CHECK_EQ(n.A.a->cnt.connected, 1u);
    CHECK_EQ(n.B.a->cnt.connected, 1u);
    /* more than a buffer's worth: the receiver's reads must reopen the window */
    stream_through(&n, &n.B, (uint32_t)cl, &n.A, (uint32_t)acc, 300000, 1);
    stream_through(&n, &n.A, (uint32_t)acc, &n.B, (uint32_t)cl, 100000, 2);
    run(&n, 100 * MS);
    CHECK(n.A.a->cnt.acks_sent > 0 && n.B.a->cnt.acks_recv > 0);
    CHECK_EQ(rtudp_udt_snd_pending(n.B.a, (uint32_t)cl), 0u); /* ACKs freed it all */
    CHECK_EQ(rtudp_udt_snd_pending(n.A.a, (uint32_t)acc), 0u);
    CHECK_EQ(n.A.a->cnt.tx_retrans + n.B.a->cnt.tx_retrans, 0u); /* nothing was lost */
    CHECK_EQ(n.A.a->cnt.rx_malformed + n.B.a->cnt.rx_malformed, 0u);
    /* ACK2 came back: the RTT is measured (loopback, simulated time: about a tick) */
    CHECK(sock(&n.A, (uint32_t)acc)->wrk.rtt_ms < 50.0);
    net_free(&n);
}

/* lose the first transmission of the data packets from B whose offset from B's
 * first sequence number (isn) is listed */
struct losses {
    uint32_t isn;
    uint64_t seen;  /* offsets (< 64) seen once */
    const uint32_t *which;
    int n;
    uint32_t lost;
    bool every; /* lose every transmission of them (retransmissions too) */
};

static bool drop_listed(int from_b, const uint8_t *p, uint32_t len, void *arg)
{
    struct losses *l = arg;
    if (!from_b || len < UDT_HDR_LEN || (p[0] & 0x80))
        return false; /* control, or from A */
    uint32_t off = (udt_be32(p) - l->isn) & UDT_SEQ_MAX;
    if (off >= 64 || (!l->every && (l->seen >> off & 1)))
        return false;
    l->seen |= 1ull << off;
    for (int j = 0; j < l->n; j++)
        if (l->which[j] == off) {
            l->lost++;
            return true;
        }
    return false;
}

/* B's first sequence number, as its handshake settled it */
static uint32_t isn_of(struct side *s, int i)
{
    return udt_conn_of(&(struct udt_ctx){.a = s->a, .cfg = &s->a->config}, (uint32_t)i)
        ->res.isn_send;
}

static void test_dgram_loss_nak_retransmission(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_DGRAM, &la, &acc, &cl);
    const uint32_t which[] = {2, 5, 6, 11};
    struct losses l = {.isn = isn_of(&n.B, cl), .which = which, .n = 4};
    n.drop = drop_listed;
    n.drop_arg = &l;
    uint8_t msg[3000], in[4000];
    for (uint32_t m = 0; m < 8; m++) {
        fill(msg, sizeof msg, 100 + m); /* 3 packets each */
        CHECK_EQ(rtudp_udt_put_msg(n.B.a, (uint32_t)cl, msg, sizeof msg, 0, 1, n.now / 1000),
                 (int64_t)sizeof msg);
    }
    request(&n, &n.B, RTUDP_UDT_REQ_KICK, (uint32_t)cl);
    /* (after the first loss DAIMD paces at the delivery rate it starts from, 16
     * packets/s, as libudt: seconds of simulated time) */
    run(&n, 3000 * MS);
    CHECK_EQ(l.lost, 4u);
    for (uint32_t m = 0; m < 8; m++) {
        int64_t r = rtudp_udt_get_msg(n.A.a, (uint32_t)acc, in, sizeof in);
        CHECK_EQ(r, (int64_t)sizeof msg);
        CHECK(verify(in, sizeof msg, 100 + m));
    }
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, (uint32_t)acc, in, sizeof in), RTUDP_EMPTY);
    /* the gaps at 2, 5-6 and 11: held for the receive rate (first_nak_after_the_rate),
     * they go in one NAK or more */
    CHECK(n.A.a->cnt.naks_sent >= 1);
    CHECK(n.B.a->cnt.naks_recv >= 1);
    CHECK(n.B.a->cnt.tx_retrans >= 4);     /* each loss sent again */
    CHECK_EQ(sock(&n.A, (uint32_t)acc)->wrk.pkt_rcv_loss, 4u);
    CHECK_EQ(rtudp_udt_snd_pending(n.B.a, (uint32_t)cl), 0u);
    /* and back the other way, no loss */
    fill(msg, 100, 7);
    CHECK_EQ(rtudp_udt_put_msg(n.A.a, (uint32_t)acc, msg, 100, 0, 1, n.now / 1000), 100);
    request(&n, &n.A, RTUDP_UDT_REQ_KICK, (uint32_t)acc);
    run(&n, 20 * MS);
    CHECK_EQ(rtudp_udt_get_msg(n.B.a, (uint32_t)cl, in, sizeof in), 100);
    CHECK(verify(in, 100, 7));
    net_free(&n);
}

/* B's data packet at offset `off` (from B's isn) is lost `times` times; with `naks`
 * false every NAK from A is lost too */
struct lose_again {
    uint32_t isn, off, times, lost;
    bool naks;
};

static bool drop_again(int from_b, const uint8_t *p, uint32_t len, void *arg)
{
    struct lose_again *l = arg;
    if (len < UDT_HDR_LEN)
        return false;
    if (p[0] & 0x80)
        return !from_b && !l->naks && (udt_be32(p) >> 16 & 0x7FFF) == UDT_CT_NAK;
    if (!from_b || ((udt_be32(p) - l->isn) & UDT_SEQ_MAX) != l->off || l->lost >= l->times)
        return false;
    l->lost++;
    return true;
}

/* two 3-packet messages from B (on the DGRAM pair), B's packet 2 lost `times` times,
 * the RTT both sides know set to 1 ms (guard: RTT + 4 RTTVar = 1.4 ms) */
static struct udt_conn *lossy_pair(struct net *n, struct lose_again *l, int *acc, int *cl)
{
    int la;
    connect_pair(n, RTUDP_UDT_DGRAM, &la, acc, cl);
    l->isn = isn_of(&n->B, *cl);
    n->drop = drop_again;
    n->drop_arg = l;
    struct udt_conn *kb = udt_conn_of(&(struct udt_ctx){.a = n->B.a, .cfg = &n->B.a->config},
                                      (uint32_t)*cl);
    struct udt_conn *ka = udt_conn_of(&(struct udt_ctx){.a = n->A.a, .cfg = &n->A.a->config},
                                      (uint32_t)*acc);
    ka->srtt = kb->srtt = 1000;
    ka->srtt_var = kb->srtt_var = 100;
    uint8_t msg[3000];
    for (uint32_t m = 0; m < 2; m++) {
        fill(msg, sizeof msg, 200 + m);
        CHECK_EQ(rtudp_udt_put_msg(n->B.a, (uint32_t)*cl, msg, sizeof msg, 0, 1, n->now / 1000),
                 (int64_t)sizeof msg);
    }
    request(n, &n->B, RTUDP_UDT_REQ_KICK, (uint32_t)*cl);
    return kb;
}

static void check_both_messages(struct net *n, int acc)
{
    uint8_t in[4000];
    for (uint32_t m = 0; m < 2; m++) {
        CHECK_EQ(rtudp_udt_get_msg(n->A.a, (uint32_t)acc, in, sizeof in), 3000);
        CHECK(verify(in, 3000, 200 + m));
    }
}

/* a NAK about B's packet 2, as A would send it */
static void nak_packet_2(struct net *n, int cl, uint32_t isn)
{
    uint8_t p[64];
    uint32_t word = (isn + 2) & UDT_SEQ_MAX;
    int nl = udt_build_nak(p, sizeof p, sock(&n->B, (uint32_t)cl)->wrk.sock_id, 0, &word, 1);
    CHECK(nl > 0);
    inject(n, &n->B, &n->A.addr, p, (uint32_t)nl);
}

/* a loss is resent once per round trip, not once per NAK: a NAK that comes within
 * RTT + 4 RTTVar of the retransmission (sent before it could have arrived) resends
 * nothing; one after that does */
static void test_resend_once_per_round_trip(void)
{
    struct net n;
    net_init(&n);
    int acc, cl;
    struct lose_again l = {.off = 2, .times = 2, .naks = false};
    struct udt_conn *kb = lossy_pair(&n, &l, &acc, &cl);
    run(&n, 1 * MS);
    CHECK_EQ(l.lost, 1u);
    CHECK_EQ(n.B.a->cnt.tx_retrans, 0u); /* A's NAK was lost */
    nak_packet_2(&n, cl, l.isn);
    run(&n, STEP_NS);
    CHECK_EQ(n.B.a->cnt.tx_retrans, 1u); /* resent (and lost again) */
    kb->srtt = 1000;
    kb->srtt_var = 100;
    nak_packet_2(&n, cl, l.isn);         /* stale: 100 µs after the retransmission */
    run(&n, STEP_NS);
    CHECK_EQ(n.B.a->cnt.tx_retrans, 1u);
    CHECK_EQ(l.lost, 2u);
    run(&n, 2 * MS);
    kb->srtt = 1000;
    kb->srtt_var = 100;
    nak_packet_2(&n, cl, l.isn);         /* 2.2 ms after: that one was lost */
    run(&n, 2 * MS);
    CHECK_EQ(n.B.a->cnt.tx_retrans, 2u);
    check_both_messages(&n, acc);
    net_free(&n);
}

/* every NAK lost, and the retransmission too: the sender resends the packet at the
 * ACK point alone once it is RTT + 4 RTTVar + SYN old, long before EXP (300 ms; a
 * libudt receiver sends neither a periodic NAK nor a repeated ACK) */
static void test_stuck_head_resent_before_exp(void)
{
    struct net n;
    net_init(&n);
    int acc, cl;
    struct lose_again l = {.off = 2, .times = 2, .naks = false};
    lossy_pair(&n, &l, &acc, &cl);
    run(&n, 60 * MS);
    CHECK_EQ(l.lost, 2u);
    CHECK_EQ(n.B.a->cnt.tx_retrans, 2u); /* the head twice, nothing else */
    check_both_messages(&n, acc);
    CHECK_EQ(rtudp_udt_snd_pending(n.B.a, (uint32_t)cl), 0u);
    net_free(&n);
}

/* the first data packet from B is lost; its message's TTL has passed when the NAK
 * for it comes, so the sender drops it (DROPREQ) instead of sending it again */
static void test_ttl_message_drop(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_DGRAM, &la, &acc, &cl);
    const uint32_t which[] = {0};
    struct losses l = {.isn = isn_of(&n.B, cl), .which = which, .n = 1};
    n.drop = drop_listed;
    n.drop_arg = &l;
    uint8_t msg[100], in[200];
    fill(msg, sizeof msg, 1);
    /* queued 50 ms "ago" with a 10 ms TTL */
    CHECK_EQ(rtudp_udt_put_msg(n.B.a, (uint32_t)cl, msg, sizeof msg, 10, 0,
                               (uint64_t)(n.now - 50 * MS) / 1000), 100);
    fill(msg, sizeof msg, 2);
    CHECK_EQ(rtudp_udt_put_msg(n.B.a, (uint32_t)cl, msg, sizeof msg, 0, 0, n.now / 1000), 100);
    request(&n, &n.B, RTUDP_UDT_REQ_KICK, (uint32_t)cl);
    run(&n, 200 * MS);
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, (uint32_t)acc, in, sizeof in), 100);
    CHECK(verify(in, 100, 2)); /* the second; the first is gone */
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, (uint32_t)acc, in, sizeof in), RTUDP_EMPTY);
    CHECK_EQ(sock(&n.B, (uint32_t)cl)->wrk.snd_drop, 1u);
    CHECK_EQ(sock(&n.A, (uint32_t)acc)->wrk.rcv_drop, 1u);
    CHECK_EQ(n.B.a->cnt.tx_retrans, 0u);
    CHECK_EQ(rtudp_udt_snd_pending(n.B.a, (uint32_t)cl), 0u);
    net_free(&n);
}

static bool drop_all(int from_b, const uint8_t *p, uint32_t len, void *arg)
{
    (void)from_b, (void)p, (void)len, (void)arg;
    return true;
}

static void test_exp_keepalive_and_broken_link(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_STREAM, &la, &acc, &cl);
    /* idle for longer than the broken timeout: keep-alives hold it up */
    uint64_t ctrl0 = n.B.a->cnt.tx_ctrl;
    run(&n, 3 * (int64_t)BROKEN_US * 1000);
    CHECK_EQ(state(&n.B, (uint32_t)cl), RTUDP_UDT_CONNECTED);
    CHECK_EQ(state(&n.A, (uint32_t)acc), RTUDP_UDT_CONNECTED);
    CHECK(n.B.a->cnt.tx_ctrl > ctrl0 + 2);
    /* the wire goes dead with data in flight: EXP sends it again, then the link breaks */
    n.drop = drop_all;
    uint8_t data[5000];
    fill(data, sizeof data, 3);
    CHECK_EQ(rtudp_udt_put_stream(n.B.a, (uint32_t)cl, data, sizeof data), (int64_t)sizeof data);
    request(&n, &n.B, RTUDP_UDT_REQ_KICK, (uint32_t)cl);
    run(&n, (int64_t)BROKEN_US * 1000 / 2);
    CHECK_EQ(state(&n.B, (uint32_t)cl), RTUDP_UDT_CONNECTED);
    CHECK(n.B.a->cnt.tx_retrans > 0);
    run(&n, 2 * (int64_t)BROKEN_US * 1000);
    CHECK_EQ(state(&n.B, (uint32_t)cl), RTUDP_UDT_BROKEN);
    CHECK_EQ(sock(&n.B, (uint32_t)cl)->wrk.error, RTUDP_UDT_ECONNLOST);
    CHECK_EQ(state(&n.A, (uint32_t)acc), RTUDP_UDT_BROKEN);
    CHECK_EQ(n.B.a->cnt.broken, 1u);
    CHECK_EQ(n.A.a->cnt.broken, 1u);
    net_free(&n);
}

static void test_close_lingers_then_shutdown(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_STREAM, &la, &acc, &cl);
    uint8_t data[20000], in[20000];
    fill(data, sizeof data, 4);
    CHECK_EQ(rtudp_udt_put_stream(n.B.a, (uint32_t)cl, data, sizeof data), (int64_t)sizeof data);
    /* closed at once: what is queued still goes, then the shutdown */
    CHECK_EQ(request(&n, &n.B, RTUDP_UDT_REQ_CLOSE, (uint32_t)cl), RTUDP_PROTO_TAKEN);
    CHECK_EQ(state(&n.B, (uint32_t)cl), RTUDP_UDT_CLOSING);
    CHECK_EQ(request(&n, &n.B, RTUDP_UDT_REQ_CLOSE, (uint32_t)cl), RTUDP_PROTO_TAKEN); /* twice */
    run(&n, 200 * MS);
    CHECK_EQ(state(&n.B, (uint32_t)cl), RTUDP_UDT_CLOSED);
    CHECK_EQ(sock(&n.B, (uint32_t)cl)->cli.claim, RTUDP_UDT_FREE); /* reusable */
    CHECK_EQ(rtudp_udt_get_stream(n.A.a, (uint32_t)acc, in, sizeof in), (int64_t)sizeof data);
    CHECK(memcmp(in, data, sizeof data) == 0);
    CHECK_EQ(sock(&n.A, (uint32_t)acc)->wrk.peer_closed, 1u);
    CHECK_EQ(state(&n.A, (uint32_t)acc), RTUDP_UDT_BROKEN);
    CHECK_EQ(sock(&n.A, (uint32_t)acc)->wrk.error, RTUDP_UDT_ECONNLOST);
    CHECK_EQ(n.B.a->cnt.open_socks, 0u);
    /* the listener closes: nothing is left open on A either */
    CHECK_EQ(request(&n, &n.A, RTUDP_UDT_REQ_CLOSE, (uint32_t)la), RTUDP_PROTO_TAKEN);
    CHECK_EQ(state(&n.A, (uint32_t)la), RTUDP_UDT_CLOSED);
    net_free(&n);
}

/* a data packet for socket `id` with sequence number seq */
static uint32_t data_pkt(uint8_t *out, uint32_t cap, uint32_t id, uint32_t seq, uint32_t len)
{
    uint8_t pay[64] = {0};
    struct udt_data d = {.seq = seq, .boundary = 3, .msgno = 1, .dst_id = id};
    int r = udt_build_data(out, cap, &d, pay, len < sizeof pay ? len : sizeof pay);
    CHECK(r > 0);
    return (uint32_t)r;
}

static void test_hostile_packets_and_requests(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_STREAM, &la, &acc, &cl);
    struct udt_conn *k = udt_conn_of(&(struct udt_ctx){.a = n.A.a, .cfg = &n.A.a->config},
                                     (uint32_t)acc);
    uint32_t id = sock(&n.A, (uint32_t)acc)->wrk.sock_id, next = k->rcv_next;
    uint8_t p[256];
    /* truncated: every length below a header */
    data_pkt(p, sizeof p, id, next, 10);
    uint64_t mal = n.A.a->cnt.rx_malformed;
    for (uint32_t l = 0; l < UDT_HDR_LEN; l++)
        inject(&n, &n.A, &n.B.addr, p, l);
    CHECK_EQ(n.A.a->cnt.rx_malformed - mal, (uint64_t)UDT_HDR_LEN);
    /* wrong socket id, an index out of range, the right id from another address */
    uint64_t unk = n.A.a->cnt.rx_unknown;
    inject(&n, &n.A, &n.B.addr, p, data_pkt(p, sizeof p, id ^ 0x10000u, next, 10));
    inject(&n, &n.A, &n.B.addr, p, data_pkt(p, sizeof p, 0xFFFFu, next, 10));
    inject(&n, &n.A, &n.B.addr, p, data_pkt(p, sizeof p, 0, next, 10)); /* data to id 0 */
    struct rtudp_sockaddr other = n.B.addr;
    other.port ^= 1;
    inject(&n, &n.A, &other, p, data_pkt(p, sizeof p, id, next, 10));
    CHECK_EQ(n.A.a->cnt.rx_unknown - unk, 4u);
    CHECK_EQ(n.A.a->cnt.rx_data, 0u);
    /* a -1 request with a forged cookie, and one with MSS 0, to the listener: refused
     * and counted, no socket made (a forged cookie is right once in 2^32) */
    struct udt_handshake fh = {.version = UDT_VERSION, .sock_type = UDT_SOCK_STREAM, .isn = 5,
                               .mss = 1500, .flow_window = 8192, .conn_type = UDT_HS_RESPONSE,
                               .sock_id = 77, .cookie = 0xDEADBEEFu};
    uint64_t refused = n.A.a->cnt.hs_refused, accepted = n.A.a->cnt.accepted;
    inject(&n, &n.A, &other, p, (uint32_t)udt_build_handshake(p, sizeof p, 0, 0, &fh));
    fh.mss = 0;
    inject(&n, &n.A, &other, p, (uint32_t)udt_build_handshake(p, sizeof p, 0, 0, &fh));
    CHECK_EQ(n.A.a->cnt.hs_refused - refused, 2u);
    CHECK_EQ(n.A.a->cnt.accepted, accepted);
    /* sequence numbers behind, and far ahead of, the window: counted, not stored */
    uint64_t dup = n.A.a->cnt.rx_dup, room = n.A.a->cnt.rx_no_room;
    inject(&n, &n.A, &n.B.addr, p, data_pkt(p, sizeof p, id, (next - 5) & 0x7FFFFFFF, 10));
    inject(&n, &n.A, &n.B.addr, p, data_pkt(p, sizeof p, id, (next + 1000) & 0x7FFFFFFF, 10));
    inject(&n, &n.A, &n.B.addr, p, data_pkt(p, sizeof p, id, (next + 0x3FFFFFFF) & 0x7FFFFFFF, 10));
    CHECK_EQ(n.A.a->cnt.rx_dup - dup + n.A.a->cnt.rx_no_room - room, 3u);
    CHECK_EQ(sock(&n.A, (uint32_t)acc)->wrk.rcv_ready, 0u);
    /* control packets about what was never sent: an ACK, a NAK, a huge DROPREQ */
    uint32_t bid = sock(&n.B, (uint32_t)cl)->wrk.sock_id;
    struct udt_conn *kb = udt_conn_of(&(struct udt_ctx){.a = n.B.a, .cfg = &n.B.a->config},
                                      (uint32_t)cl);
    uint32_t snd_curr = kb->snd_curr;
    struct udt_ack ack = {.kind = UDT_ACK_FULL, .ack_seq = (snd_curr + 500) & 0x7FFFFFFF,
                          .rtt_us = 1, .avail_buf = 7};
    int al = udt_build_ack(p, sizeof p, bid, 0, 1, &ack);
    CHECK(al > 0);
    inject(&n, &n.B, &n.A.addr, p, (uint32_t)al);
    uint32_t words[2];
    size_t nw = udt_nak_encode_range((snd_curr + 10) & 0x7FFFFFFF, (snd_curr + 20) & 0x7FFFFFFF,
                                     words);
    int nl = udt_build_nak(p, sizeof p, bid, 0, words, nw);
    CHECK(nl > 0);
    inject(&n, &n.B, &n.A.addr, p, (uint32_t)nl);
    /* DROPREQs: a range longer than the buffer, an inverted one (written by hand:
     * the builder refuses it), one of two packets nobody sent yet: all refused, this
     * is a STREAM socket (tests/c: test_forged_dropreq for DGRAM's rules) */
    uint64_t dropped = n.A.a->cnt.msgs_dropped, ignored = n.A.a->cnt.drops_ignored;
    int dl = udt_build_dropreq(p, sizeof p, id, 0, 1, next, (next + 0x10000) & 0x7FFFFFFF);
    CHECK(dl > 0);
    inject(&n, &n.A, &n.B.addr, p, (uint32_t)dl);
    udt_put32(p + UDT_HDR_LEN + 4, (next - 1) & 0x7FFFFFFF);
    inject(&n, &n.A, &n.B.addr, p, (uint32_t)dl);
    dl = udt_build_dropreq(p, sizeof p, id, 0, 1, next, (next + 1) & 0x7FFFFFFF);
    CHECK(dl > 0);
    inject(&n, &n.A, &n.B.addr, p, (uint32_t)dl);
    CHECK_EQ(n.A.a->cnt.msgs_dropped, dropped);
    CHECK_EQ(n.A.a->cnt.drops_ignored, ignored + 2); /* (the inverted one does not parse) */
    CHECK_EQ(sock(&n.A, (uint32_t)acc)->wrk.rcv_ready, 0u); /* no stream byte given up */
    CHECK_EQ(k->rcv_curr, (next - 1) & 0x7FFFFFFF);
    /* a NAK whose length cuts a range in half */
    nl = udt_build_nak(p, sizeof p, bid, 0, words, nw);
    inject(&n, &n.B, &n.A.addr, p, (uint32_t)nl - 4);
    CHECK_EQ(kb->snd_curr, snd_curr);
    CHECK_EQ(sock(&n.B, (uint32_t)cl)->wrk.snd_acked, 0u);
    CHECK_EQ(sock(&n.B, (uint32_t)cl)->wrk.pkt_snd_loss, 0u);
    /* bad requests: too short, a socket out of range, an unknown op */
    struct rtudp_tx_record rec = {0};
    struct rtudp_timer t = {0};
    CHECK(n.A.c.proto->tx_record(&n.A.c, &rec, REQ - 1, n.now, &t) < 0);
    CHECK(request(&n, &n.A, RTUDP_UDT_REQ_CLOSE, 4) < 0);
    CHECK(request(&n, &n.A, RTUDP_UDT_REQ_KICK, 0xFFFFFFFFu) < 0);
    CHECK(request(&n, &n.A, 77, 0) < 0);
    /* requests in the wrong state are ignored */
    CHECK_EQ(request(&n, &n.A, RTUDP_UDT_REQ_LISTEN, (uint32_t)acc), RTUDP_PROTO_TAKEN);
    CHECK_EQ(request(&n, &n.A, RTUDP_UDT_REQ_CONNECT, (uint32_t)acc), RTUDP_PROTO_TAKEN);
    CHECK_EQ(state(&n.A, (uint32_t)acc), RTUDP_UDT_CONNECTED);
    /* the connection still works, both ways (the refused DROPREQs cost nothing) */
    run(&n, 10 * MS);
    stream_through(&n, &n.A, (uint32_t)acc, &n.B, (uint32_t)cl, 5000, 9);
    stream_through(&n, &n.B, (uint32_t)cl, &n.A, (uint32_t)acc, 5000, 10);
    CHECK_EQ(state(&n.B, (uint32_t)cl), RTUDP_UDT_CONNECTED);
    net_free(&n);
}

/* a rx_batch datagram cut short by the kernel, or larger than a record, is lost and
 * counted; a fine one becomes a REQ_RX record on the TX ring */
static void test_rx_batch_truncated(void)
{
    struct net n;
    net_init(&n);
    static uint8_t room[RTUDP_RX_META_ROOM + 70000];
    struct rtudp_rx_pkt p[3] = {0};
    for (int j = 0; j < 3; j++) {
        p[j].buf = room + RTUDP_RX_META_ROOM;
        p[j].cap = 70000;
        p[j].len = 40;
        struct sockaddr_in *s = (struct sockaddr_in *)&p[j].src;
        s->sin_family = AF_INET;
        s->sin_port = htons(9);
        p[j].src_len = sizeof *s;
    }
    p[1].flags = RTUDP_RX_TRUNC;
    p[2].len = 66000;
    memcpy(p[0].buf, "udt?", 4);
    n.A.c.proto->rx_batch(&n.A.c, p, 3);
    CHECK_EQ(n.A.a->cnt.rx_dropped, 2u);
    CHECK_EQ(n.A.block.rx_packets, 3u);
    /* the fine one was queued: the request, its source, the datagram */
    CHECK_EQ(n.A.tx.ring->tail, (sizeof(struct rtudp_tx_record) + REQ + 40 + 7) & ~7ull);
    const struct rtudp_tx_record *rec = (const struct rtudp_tx_record *)n.A.tx.data;
    struct rtudp_udt_req r;
    memcpy(&r, rec + 1, REQ);
    CHECK_EQ(rec->length, (int32_t)(sizeof *rec + REQ + 40)); /* (header included) */
    CHECK_EQ(r.op, RTUDP_UDT_REQ_RX);
    CHECK(r.src.family == AF_INET && r.src.port == 9);
    CHECK(memcmp((const uint8_t *)(rec + 1) + REQ, "udt?", 4) == 0);
    net_free(&n);
}

/* a client scribbles over every socket's worker state and lines: the worker may
 * break the connections, never index outside the area or hang */
static void test_scribbled_area(void)
{
    /* UDT_SCRIBBLE_SEED=n tries another garbage (a failure reproduces with its seed) */
    const char *env = getenv("UDT_SCRIBBLE_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : 42;
    for (int round = 0; round < 16; round++) {
        struct net n;
        net_init(&n);
        int la, acc, cl;
        connect_pair(&n, round & 1 ? RTUDP_UDT_DGRAM : RTUDP_UDT_STREAM, &la, &acc, &cl);
        uint8_t data[3000];
        fill(data, sizeof data, 5);
        rtudp_udt_put_stream(n.B.a, (uint32_t)cl, data, sizeof data);
        run(&n, 2 * MS);
        struct side *sides[2] = {&n.A, &n.B};
        for (int s = 0; s < 2; s++) {
            struct rtudp_udt_area *a = sides[s]->a;
            for (uint32_t i = 0; i < a->config.max_socks; i++) {
                uint8_t *base = (uint8_t *)rtudp_udt_sock_at(a, i);
                uint64_t span = a->config.snd_off + 2 * sizeof(struct rtudp_udt_slot);
                /* the lines and the worker's state: a few hundred random bytes */
                for (int j = 0; j < 300; j++)
                    base[rnd(&seed, span)] = (uint8_t)splitmix64(&seed);
                if (round >= 8) { /* every role over garbage, whatever it was */
                    struct udt_ctx x = {.a = a, .cfg = &a->config};
                    udt_conn_of(&x, i)->role = 1 + (uint32_t)(round + (int)i) % 5;
                }
                if (round % 4 == 3) { /* and the indexes, to their extremes */
                    struct rtudp_udt_sock *k = (struct rtudp_udt_sock *)base;
                    k->wrk.acc_head = k->cli.acc_tail + (round & 4 ? 0x80000000u : 63u);
                    for (int q = 0; q < RTUDP_UDT_ACCEPT_Q; q++)
                        k->wrk.accept_q[q] = 0xFFFF0000u + (uint32_t)q;
                    k->cli.snd_head = ~0ull;
                    k->wrk.snd_acked = 5;
                    k->cli.rcv_read = ~0ull - 3;
                }
            }
        }
        /* and packets for them: random bodies behind each socket's id, and id 0 */
        for (int j = 0; j < 200; j++) {
            uint8_t p[200];
            uint32_t len = (uint32_t)rnd(&seed, sizeof p + 1);
            for (uint32_t b = 0; b < len; b++)
                p[b] = (uint8_t)splitmix64(&seed);
            uint32_t i = (uint32_t)rnd(&seed, n.A.a->config.max_socks);
            uint32_t id = j % 3 ? sock(&n.A, i)->wrk.sock_id : 0;
            if (len >= UDT_HDR_LEN)
                udt_put32(p + 12, id);
            if (len >= UDT_HDR_LEN && j % 2)
                p[0] = 0x80 | (uint8_t)rnd(&seed, 8); /* control types 0-7 */
            inject(&n, &n.A, &n.B.addr, p, len);
            if (j % 10 == 0)
                run(&n, 1 * MS);
        }
        run(&n, 50 * MS);
        for (uint32_t i = 0; i < n.A.a->config.max_socks; i++)
            request(&n, &n.A, RTUDP_UDT_REQ_CLOSE, i);
        n.step_ns = 5 * MS; /* to past the broken timeout, coarsely */
        run(&n, 3 * (int64_t)BROKEN_US * 1000);
        net_free(&n);
    }
}

/* how far past its first sequence number socket i of s received */
static uint32_t k_rcv_curr_off(struct side *s, uint32_t i)
{
    struct udt_conn *k = udt_conn_of(&(struct udt_ctx){.a = s->a, .cfg = &s->a->config}, i);
    return (k->rcv_curr - k->res.isn_recv) & UDT_SEQ_MAX;
}

/* UDT4's in-order bit: a whole message sent with it clear is read past a gap before
 * the messages in front of it; one with it set waits for its turn; nothing is read
 * twice, and the in-order read skips what was taken */
static void test_out_of_order_messages(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_DGRAM, &la, &acc, &cl);
    const uint32_t which[] = {1}; /* the middle packet of message 1 */
    struct losses h = {.isn = isn_of(&n.B, cl), .which = which, .n = 1, .every = true};
    n.drop = drop_listed;
    n.drop_arg = &h;
    uint8_t m1[3000], m2[2000], m3[100], m4[50], in[4000];
    fill(m1, sizeof m1, 31);
    fill(m2, sizeof m2, 32);
    fill(m3, sizeof m3, 33);
    fill(m4, sizeof m4, 34);
    uint32_t B = (uint32_t)cl, A = (uint32_t)acc;
    /* packets 0-2, 3-4, 5, 6 */
    CHECK_EQ(rtudp_udt_put_msg(n.B.a, B, m1, sizeof m1, 0, 0, n.now / 1000), (int64_t)sizeof m1);
    CHECK_EQ(rtudp_udt_put_msg(n.B.a, B, m2, sizeof m2, 0, 0, n.now / 1000), (int64_t)sizeof m2);
    CHECK_EQ(rtudp_udt_put_msg(n.B.a, B, m3, sizeof m3, 0, 1, n.now / 1000), (int64_t)sizeof m3);
    CHECK_EQ(rtudp_udt_put_msg(n.B.a, B, m4, sizeof m4, 0, 0, n.now / 1000), (int64_t)sizeof m4);
    request(&n, &n.B, RTUDP_UDT_REQ_KICK, B);
    /* (after the first NAK DAIMD paces at 16 packets/s: simulated seconds) */
    run(&n, 1500 * MS);
    CHECK(h.lost >= 2); /* retransmissions lost too */
    CHECK_EQ(k_rcv_curr_off(&n.A, A), 6u);  /* all the others are here */
    CHECK_EQ(sock(&n.A, A)->wrk.rcv_ready, 1u); /* the gap at 1 holds the sequence */
    CHECK(rtudp_udt_rcv_pending(n.A.a, A) >= sizeof m2);
    /* message 2 and message 4 jump the gap; message 3 (in-order) waits */
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, A, in, sizeof in), (int64_t)sizeof m2);
    CHECK(verify(in, sizeof m2, 32));
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, A, in, 10), (int64_t)sizeof m4); /* cut to 10 */
    CHECK(verify(in, 10, 34));
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, A, in, sizeof in), RTUDP_EMPTY);
    CHECK_EQ(rtudp_udt_rcv_pending(n.A.a, A), 1456u); /* message 1's first packet only */
    /* the gap is filled: message 1, then 3, and 2 and 4 are not read again */
    h.every = false; /* (its first transmission was seen: no more losses) */
    run(&n, 1000 * MS);
    CHECK_EQ(sock(&n.A, A)->wrk.rcv_ready, 7u);
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, A, in, sizeof in), (int64_t)sizeof m1);
    CHECK(verify(in, sizeof m1, 31));
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, A, in, sizeof in), (int64_t)sizeof m3);
    CHECK(verify(in, sizeof m3, 33));
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, A, in, sizeof in), RTUDP_EMPTY);
    CHECK_EQ(sock(&n.A, A)->cli.rcv_read, 7u); /* all of it consumed */
    /* a STREAM socket never reads ahead (libudt sends stream data with the bit clear) */
    net_free(&n);
    net_init(&n);
    connect_pair(&n, RTUDP_UDT_STREAM, &la, &acc, &cl);
    h = (struct losses){.isn = isn_of(&n.B, cl), .which = which, .n = 1, .every = true};
    n.drop = drop_listed;
    n.drop_arg = &h;
    fill(m1, sizeof m1, 35);
    CHECK_EQ(rtudp_udt_put_stream(n.B.a, (uint32_t)cl, m1, sizeof m1), (int64_t)sizeof m1);
    request(&n, &n.B, RTUDP_UDT_REQ_KICK, (uint32_t)cl);
    run(&n, 30 * MS);
    CHECK_EQ(rtudp_udt_get_msg(n.A.a, (uint32_t)acc, in, sizeof in), RTUDP_EMPTY);
    CHECK_EQ(rtudp_udt_get_stream(n.A.a, (uint32_t)acc, in, sizeof in), 1456);
    CHECK_EQ(rtudp_udt_get_stream(n.A.a, (uint32_t)acc, in, sizeof in), 0);
    net_free(&n);
}

/* a DGRAM receiver's rules for DROPREQ (libudt's processCtrl, case 7): a range
 * starting past rcv_curr + 1 or reaching past the receive window is refused, and
 * the real packets it named are received as they come; a late copy of an honoured
 * one does nothing */
static void test_forged_dropreq(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_DGRAM, &la, &acc, &cl);
    uint32_t A = (uint32_t)acc, B = (uint32_t)cl;
    struct udt_conn *k = udt_conn_of(&(struct udt_ctx){.a = n.A.a, .cfg = &n.A.a->config}, A);
    uint32_t id = sock(&n.A, A)->wrk.sock_id, next = k->rcv_next;
    uint8_t p[64], msg[1000], in[2000];
    uint64_t ignored = n.A.a->cnt.drops_ignored, dropped = n.A.a->cnt.msgs_dropped;
    /* ahead of what was seen: packets 3-5 before anything came */
    int dl = udt_build_dropreq(p, sizeof p, id, 0, 1, (next + 3) & UDT_SEQ_MAX,
                               (next + 5) & UDT_SEQ_MAX);
    CHECK(dl > 0);
    inject(&n, &n.A, &n.B.addr, p, (uint32_t)dl);
    /* from the next one, but past the window (64 packets) */
    dl = udt_build_dropreq(p, sizeof p, id, 0, 1, next, (next + BUF_PKTS) & UDT_SEQ_MAX);
    CHECK(dl > 0);
    inject(&n, &n.A, &n.B.addr, p, (uint32_t)dl);
    CHECK_EQ(n.A.a->cnt.drops_ignored, ignored + 2);
    CHECK_EQ(n.A.a->cnt.msgs_dropped, dropped);
    CHECK_EQ(k->rcv_curr, (next - 1) & UDT_SEQ_MAX);
    /* the real messages (packets 0-7, one each) all arrive */
    for (uint32_t m = 0; m < 8; m++) {
        fill(msg, sizeof msg, 40 + m);
        CHECK_EQ(rtudp_udt_put_msg(n.B.a, B, msg, sizeof msg, 0, 1, n.now / 1000), 1000);
    }
    request(&n, &n.B, RTUDP_UDT_REQ_KICK, B);
    run(&n, 50 * MS);
    for (uint32_t m = 0; m < 8; m++) {
        CHECK_EQ(rtudp_udt_get_msg(n.A.a, A, in, sizeof in), 1000);
        CHECK(verify(in, 1000, 40 + m));
    }
    CHECK_EQ(n.A.a->cnt.rx_dup, 0u);
    /* a late copy of a drop for what is behind: nothing, not even counted */
    dl = udt_build_dropreq(p, sizeof p, id, 0, 1, next, (next + 2) & UDT_SEQ_MAX);
    inject(&n, &n.A, &n.B.addr, p, (uint32_t)dl);
    CHECK_EQ(n.A.a->cnt.drops_ignored, ignored + 2);
    CHECK_EQ(n.A.a->cnt.msgs_dropped, dropped);
    /* an honest one at the edge (the next packet, not yet here) is honoured */
    uint32_t nx = k->rcv_next;
    dl = udt_build_dropreq(p, sizeof p, id, 0, 9, nx, nx);
    inject(&n, &n.A, &n.B.addr, p, (uint32_t)dl);
    CHECK_EQ(n.A.a->cnt.msgs_dropped, dropped + 1);
    CHECK_EQ(sock(&n.A, A)->wrk.rcv_ready, 9u);
    CHECK_EQ(k->rcv_curr, nx);
    net_free(&n);
}

/* issue 55: what a sender waits for, and since when it has not moved (a row's
 * waits_on and stalled_ms) */
static bool drop_from_a(int from_b, const uint8_t *p, uint32_t len, void *arg)
{
    (void)p, (void)len, (void)arg;
    return !from_b;
}

static struct udt_conn *conn_of(struct side *s, uint32_t i)
{
    return udt_conn_of(&(struct udt_ctx){.a = s->a, .cfg = &s->a->config}, i);
}

/* the sender (B, cl) has not moved for at least `us` of simulated time */
static bool still_for(struct net *n, int cl, uint64_t us)
{
    uint64_t now_us = (uint64_t)n->now / 1000u;
    return now_us - conn_of(&n->B, (uint32_t)cl)->snd_progress_us >= us;
}

static void queue(struct net *n, int cl, uint32_t len)
{
    static uint8_t data[BUF_PKTS * 1456];
    CHECK(len <= sizeof data);
    fill(data, len, 9);
    CHECK_EQ(rtudp_udt_put_stream(n->B.a, (uint32_t)cl, data, len), (int64_t)len);
    request(n, &n->B, RTUDP_UDT_REQ_KICK, (uint32_t)cl);
}

static void test_sender_waits_and_stalls(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_STREAM, &la, &acc, &cl);
    struct udt_conn *kb = conn_of(&n.B, (uint32_t)cl);
    CHECK_EQ(kb->snd_wait, (uint32_t)RTUDP_UDT_WAIT_NONE);
    run(&n, 3000 * MS); /* idle is no stall */
    CHECK(!still_for(&n, cl, 100000)); /* (its timer refreshes it every ACK period) */
    /* the receiver's reader does not read: its buffer fills, the sender waits on it */
    for (int k = 0; k < 3; k++) {
        queue(&n, cl, 30 * 1456);
        run(&n, 20 * MS);
    }
    run(&n, 1500 * MS);
    CHECK_EQ(kb->snd_wait, (uint32_t)RTUDP_UDT_WAIT_RCVBUF);
    CHECK(still_for(&n, cl, 1000000));
    /* it reads: the sender moves again, and waits for nothing once all is through */
    uint8_t in[BUF_PKTS * 1456];
    for (int k = 0; k < 20; k++) {
        if (rtudp_udt_get_stream(n.A.a, (uint32_t)acc, in, sizeof in) > 0)
            request(&n, &n.A, RTUDP_UDT_REQ_RECV_FREED, (uint32_t)acc);
        run(&n, 50 * MS);
    }
    CHECK_EQ(rtudp_udt_snd_pending(n.B.a, (uint32_t)cl), 0u);
    CHECK_EQ(kb->snd_wait, (uint32_t)RTUDP_UDT_WAIT_NONE);
    CHECK(!still_for(&n, cl, 100000));
    /* no ACK comes back (so neither window changes): the peer's flow window fills
     * when it is the smaller ... */
    n.drop = drop_from_a;
    kb->cc.cwnd = 8;
    kb->peer_fw = 4;
    queue(&n, cl, 40 * 1456);
    run(&n, 2 * MS);
    CHECK_EQ(kb->snd_wait, (uint32_t)RTUDP_UDT_WAIT_FLOW);
    /* ... the congestion window when it is (before the head is resent) */
    kb->peer_fw = BUF_PKTS;
    request(&n, &n.B, RTUDP_UDT_REQ_KICK, (uint32_t)cl);
    run(&n, 2 * MS);
    CHECK_EQ(kb->snd_wait, (uint32_t)RTUDP_UDT_WAIT_CWND);
    /* and once the packet at the ACK point went again (EXP), the loss holds it */
    run(&n, 1200 * MS);
    CHECK(n.B.a->cnt.tx_retrans > 0);
    CHECK_EQ(kb->snd_wait, (uint32_t)RTUDP_UDT_WAIT_LOSS);
    CHECK(still_for(&n, cl, 1000000));
    net_free(&n);
}

/* datagrams arriving at s from `from` through its RX thread's rx_batch, with the
 * kernel's arrival stamps rx_ns[], then the records it queued handed to tx_record as
 * the TX thread does */
static void rx_through_batch(struct net *n, struct side *s, const struct side *from,
                             uint8_t (*dgrams)[2048], const uint32_t *lens, const int64_t *rx_ns,
                             int count)
{
    struct rtudp_rx_pkt p[32];
    CHECK(count <= 32);
    memset(p, 0, sizeof p);
    for (int j = 0; j < count; j++) {
        p[j].buf = dgrams[j];
        p[j].cap = 2048;
        p[j].len = p[j].wire_len = lens[j];
        p[j].rx_ns = rx_ns[j];
        p[j].src_len = sizeof p[j].src;
        CHECK_EQ(getsockname(from->fd, (struct sockaddr *)&p[j].src, &p[j].src_len), 0);
    }
    s->c.proto->rx_batch(&s->c, p, count);
    uint64_t cursor = s->tx.ring->head, taken = 0;
    struct rtudp_tx_record *rec;
    uint32_t len;
    while (rtudp_mpsc_next(&s->tx, &cursor, &rec, &len) == RTUDP_OK) {
        struct rtudp_timer t = {0};
        CHECK_EQ(s->c.proto->tx_record(&s->c, rec, len, n->now, &t), RTUDP_PROTO_TAKEN);
        taken++;
    }
    CHECK_EQ(taken, (uint64_t)count);
    CHECK_EQ(rtudp_mpsc_release(&s->tx, cursor), RTUDP_OK);
}

/* the next control packet waiting on `to`'s socket (nothing is handed to `to`), parsed
 * from buf; false when none is left */
static bool next_ctrl_at(struct side *to, uint8_t *buf, size_t len, struct udt_pkt *pk)
{
    ssize_t r;
    while ((r = recv(to->fd, buf, len, 0)) > 0)
        if (udt_parse(buf, (size_t)r, pk) == UDT_OK && pk->is_ctrl)
            return true;
    return false;
}

/* the ACKs that arrived on `to`'s socket; their count */
static int acks_at(struct side *to, struct udt_ack *out, int cap)
{
    int got = 0;
    uint8_t buf[2048];
    struct udt_pkt pk;
    while (next_ctrl_at(to, buf, sizeof buf, &pk))
        if (pk.ctrl.type == UDT_CT_ACK) {
            CHECK(got < cap);
            out[got++] = pk.ctrl.u.ack;
        }
    return got;
}

/* What a libudt sender steers by: after an idle start, bursts of full-size packets
 * 1 µs apart (as a relay's sendmmsg hands them over), one burst per SYN.  UDT4's
 * receiver answers each with a full ACK: its ACK timer finds more than a SYN since
 * the last full ACK it sent (idle timer runs send nothing), and its window of 1 µs
 * intervals gives 10^6 packets/s (the median of the first 15 slots is 1, fifteen
 * survivors of mean 1), with the probe window still at its 1 ms start (1000/s).
 * Short ACKs here (no rates) leave a libudt sender at its initial 16 packets/s when
 * its first loss ends the slow start. */
static void acks_after_bursts_as_udt4(void)
{
    struct net n;
    net_init(&n);
    int la, acc, cl;
    connect_pair(&n, RTUDP_UDT_STREAM, &la, &acc, &cl);
    run(&n, 35 * MS); /* idle: A's ACK timer runs every SYN with nothing to acknowledge */
    struct udt_ack acks[16];
    acks_at(&n.B, acks, 16);
    struct udt_conn *k = conn_of(&n.A, (uint32_t)acc);
    uint32_t id = sock(&n.A, (uint32_t)acc)->wrk.sock_id, seq = k->rcv_next, isn = seq;
    static uint8_t dg[16][2048];
    uint32_t lens[16];
    int64_t stamps[16];
    uint8_t pay[RTUDP_UDT_PAYLOAD_MAX] = {0};
    n.now += 3 * MS + 300 * 1000; /* between two timer runs */
    for (int b = 1; b <= 3; b++) {
        for (int j = 0; j < 16; j++) {
            struct udt_data d = {.seq = seq, .boundary = 0, .msgno = 1, .dst_id = id};
            int r = udt_build_data(dg[j], sizeof dg[j], &d, pay, k->payload);
            CHECK(r > 0);
            lens[j] = (uint32_t)r;
            stamps[j] = n.now - (15 - j) * 1000; /* 1 µs apart, the last one now */
            seq = udt_seq_inc(seq);
        }
        rx_through_batch(&n, &n.A, &n.B, dg, lens, stamps, 16);
        /* the timer runs of the next SYN (B hears, does not answer); the next
         * burst comes a SYN after this one */
        for (int64_t end = n.now + 10 * MS; n.now < end; n.now += STEP_NS)
            n.A.c.proto->tx_timer(n.w, &n.A.c, n.now);
        int got = acks_at(&n.B, acks, 16);
        CHECK_EQ(got, 1);
        CHECK_EQ(acks[0].kind, UDT_ACK_FULL);
        CHECK_EQ(acks[0].ack_seq, (isn + 16u * (uint32_t)b) & 0x7FFFFFFFu);
        CHECK_EQ(acks[0].rtt_us, 100000u); /* no ACK2 yet: UDT4's start values */
        CHECK_EQ(acks[0].rtt_var_us, 50000u);
        CHECK_EQ(acks[0].avail_buf, BUF_PKTS - 16u * (uint32_t)b);
        CHECK_EQ(acks[0].rcv_rate, 1000000u);
        CHECK_EQ(acks[0].capacity, 1000u);
    }
    net_free(&n);
}

/* the ACKs and NAKs that arrived on `to`'s socket, in order: kinds[j] is 'F' (full
 * ACK), 'S' (short), 'L' (light) or 'N' (NAK); a full ACK's rate in rates[j], a NAK's
 * first word in rates[j]; their count */
static int ctrl_at(struct side *to, char *kinds, uint32_t *rates, int cap)
{
    int got = 0;
    uint8_t buf[2048];
    struct udt_pkt pk;
    while (next_ctrl_at(to, buf, sizeof buf, &pk)) {
        if (pk.ctrl.type == UDT_CT_ACK) {
            CHECK(got < cap);
            const struct udt_ack *a = &pk.ctrl.u.ack;
            kinds[got] = a->kind == UDT_ACK_FULL ? 'F' : a->kind == UDT_ACK_SHORT ? 'S' : 'L';
            rates[got++] = a->kind == UDT_ACK_FULL ? a->rcv_rate : 0;
        } else if (pk.ctrl.type == UDT_CT_NAK) {
            CHECK(got < cap);
            CHECK(pk.ctrl.u.nak.nwords >= 1);
            kinds[got] = 'N';
            rates[got++] = udt_nak_word(buf, &pk.ctrl, 0) & 0x7FFFFFFFu;
        }
    }
    return got;
}

/* one burst of `count` data packets 1 us apart (the last one now) into A's accepted
 * socket, numbered from *seq on, except the one at index `skip` (-1: none) */
static void burst_to(struct net *n, int acc, uint32_t *seq, int count, int skip)
{
    struct udt_conn *k = conn_of(&n->A, (uint32_t)acc);
    uint32_t id = sock(&n->A, (uint32_t)acc)->wrk.sock_id;
    static uint8_t dg[32][2048];
    uint32_t lens[32];
    int64_t stamps[32];
    uint8_t pay[RTUDP_UDT_PAYLOAD_MAX] = {0};
    int m = 0;
    CHECK(count <= 32);
    for (int j = 0; j < count; j++, *seq = udt_seq_inc(*seq)) {
        if (j == skip)
            continue;
        struct udt_data d = {.seq = *seq, .boundary = 0, .msgno = 1, .dst_id = id};
        int r = udt_build_data(dg[m], sizeof dg[m], &d, pay, k->payload);
        CHECK(r > 0);
        lens[m] = (uint32_t)r;
        stamps[m] = n->now - (count - 1 - j) * 1000;
        m++;
    }
    rx_through_batch(n, &n->A, &n->B, dg, lens, stamps, m);
}

/* a connection that idled 35 ms (what its ACK timer sent drained from B), the clock
 * between two timer runs: A's accepted socket in *acc, the sequence number it expects */
static uint32_t idle_connection(struct net *n, int *acc)
{
    int la, cl;
    connect_pair(n, RTUDP_UDT_STREAM, &la, acc, &cl);
    run(n, 35 * MS);
    char kinds[64];
    uint32_t vals[64];
    ctrl_at(&n->B, kinds, vals, 64);
    n->now += 3 * MS + 300 * 1000;
    return conn_of(&n->A, (uint32_t)*acc)->rcv_next;
}

/* A libudt sender ends its slow start on the first NAK at the receive rate it last
 * heard, its start value (16 packets/s) when none came: so the first loss report goes
 * after a full ACK that carries the rate.  A gap at the 13th packet (rate known): the
 * full ACK, then the NAK, at once.  A gap at the 3rd (rate not known yet): nothing
 * until the rate is, then the full ACK and the NAK.  Later losses are reported at once
 * as UDT4 does. */
static void first_nak_after_the_rate(void)
{
    for (int c = 0; c < 2; c++) {
        struct net n;
        net_init(&n);
        int acc;
        uint32_t isn = idle_connection(&n, &acc), seq = isn;
        char kinds[64];
        uint32_t vals[64];
        if (c == 0) {
            burst_to(&n, acc, &seq, 16, 12);
        } else {
            burst_to(&n, acc, &seq, 4, 2);
            CHECK_EQ(ctrl_at(&n.B, kinds, vals, 64), 0); /* held: 3 arrivals, no rate */
            n.now += 100 * 1000;
            burst_to(&n, acc, &seq, 12, -1);
        }
        CHECK_EQ(ctrl_at(&n.B, kinds, vals, 64), 2);
        CHECK_EQ(kinds[0], 'F');
        CHECK(vals[0] > 0);
        CHECK_EQ(kinds[1], 'N');
        CHECK_EQ(vals[1], (isn + (c == 0 ? 12u : 2u)) & 0x7FFFFFFFu);
        /* the next loss: reported at once */
        n.now += 100 * 1000;
        burst_to(&n, acc, &seq, 4, 1);
        int got = ctrl_at(&n.B, kinds, vals, 64);
        CHECK_EQ(got, 1);
        CHECK_EQ(kinds[0], 'N');
        net_free(&n);
    }
}

/* A loss held for the rate is reported by the next ACK timer run at the latest. */
static void held_nak_within_a_syn(void)
{
    struct net n;
    net_init(&n);
    int acc;
    uint32_t isn = idle_connection(&n, &acc), seq = isn;
    char kinds[64];
    uint32_t vals[64];
    burst_to(&n, acc, &seq, 4, 2);
    CHECK_EQ(ctrl_at(&n.B, kinds, vals, 64), 0);
    for (int64_t end = n.now + 10 * MS; n.now < end; n.now += STEP_NS)
        n.A.c.proto->tx_timer(n.w, &n.A.c, n.now);
    int got = ctrl_at(&n.B, kinds, vals, 64);
    CHECK_EQ(got, 2);
    CHECK_EQ(kinds[0], 'F'); /* the timer's ACK (no rate yet), then the NAK */
    CHECK_EQ(kinds[1], 'N');
    CHECK_EQ(vals[1], (isn + 2u) & 0x7FFFFFFFu);
    net_free(&n);
}

static const struct test tests[] = {
    T(test_handshake_and_stream_both_ways),
    T(test_dgram_loss_nak_retransmission),
    T(test_resend_once_per_round_trip),
    T(test_stuck_head_resent_before_exp),
    T(test_ttl_message_drop),
    T(test_exp_keepalive_and_broken_link),
    T(test_close_lingers_then_shutdown),
    T(test_hostile_packets_and_requests),
    T(test_out_of_order_messages),
    T(test_forged_dropreq),
    T(test_rx_batch_truncated),
    T(test_scribbled_area),
    T(test_sender_waits_and_stalls),
    T(acks_after_bursts_as_udt4),
    T(first_nak_after_the_rate),
    T(held_nak_within_a_syn),
};

HARNESS_MAIN(tests)
