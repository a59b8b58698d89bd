/*
 * test_netio.c - unit tests for the worker's socket I/O (csrc/worker/netio.c).
 *
 * Same harness as test_ring.c: CHECK() prints file:line and the failing
 * expression and exits non-zero; each test runs in its own forked child (a crash
 * or hang caught by the watchdog names its test); the last line is
 * "N passed, M failed, K skipped".
 *
 *   test_netio                 run every test
 *   test_netio NAME...         run only the tests whose names contain a NAME
 *   test_netio --no-fork ...   run in-process (for a debugger)
 *
 * All traffic is between sockets bound to 127.0.0.1 / ::1 in this process.
 * IPv6 tests are skipped (saying why) when ::1 cannot be bound, the GSO test when
 * the kernel refuses the UDP_SEGMENT option.  Every wait is a
 * poll() with a deadline, so a lost datagram or stamp fails a CHECK, never hangs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netio.h"

#define TEST_TIMEOUT_S 20u
#include "harness.h"

/* ------------------------------------------------------------------ helpers */

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT /* Linux 4.18 */
#define UDP_SEGMENT 103
#endif

#define MAX_DGRAM 65507u /* largest UDP payload over IPv4 */
#define WAIT_NS (2000 * NS_PER_MS)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}




/* A UDP socket bound to the loopback address of `family`, port chosen by the
 * kernel; *addr gets the bound address.  -1 (errno) if the family is unusable. */
static int lo_socket(int family, struct sockaddr_storage *addr, socklen_t *len)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(addr, 0, sizeof *addr);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)addr;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        *len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)addr, *len) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* skip the test (saying why) when ::1 cannot be bound here */
static void need_ipv6(void)
{
    struct sockaddr_storage a;
    socklen_t l;
    int fd = lo_socket(AF_INET6, &a, &l);
    if (fd < 0)
        SKIP("IPv6 loopback ::1 unavailable (%s)", strerror(errno));
    close(fd);
}

/* skip the test when this kernel has no UDP_SEGMENT (asked of the kernel itself,
 * not of netio.c, whose answer is what the test checks) */
static void need_gso(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    int seg = 0;
    socklen_t l = sizeof seg;
    int rc = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, &l);
    int e = errno;
    close(fd);
    if (rc != 0)
        SKIP("this kernel has no UDP_SEGMENT (getsockopt: %s)", strerror(e));
}

static struct rtudp_net_caps setup_ok(int fd)
{
    struct rtudp_net_caps caps;
    struct rtudp_check why = {0, ""};
    int rc = rtudp_net_setup(fd, 0, &caps, &why);
    if (rc != RTUDP_OK)
        fprintf(stderr, "setup: %s\n", why.msg);
    CHECK_EQ(rc, RTUDP_OK);
    return caps;
}

static void big_buffers(int fd)
{
    struct rtudp_net_bufs b;
    struct rtudp_check why = {0, ""};
    CHECK_EQ(rtudp_net_size_buffers(fd, 8 << 20, 8 << 20, &b, &why), RTUDP_OK);
}

/* wait until fd has `events` (POLLERR is always reported: the error queue) */
static bool wait_ready(int fd, short events, int64_t deadline);

/* The kernel turns RX software stamps on for all sockets a moment after the first one
 * asks (a deferred static key), so on a machine where no socket had them yet the first
 * datagrams arrive unstamped.  Send to rx from a plain socket until one arrives stamped
 * (rx, open, keeps them on), draining what came before. */
static void rx_stamps_on(int rx, const struct sockaddr *ra, socklen_t rl)
{
    int s = socket(ra->sa_family, SOCK_DGRAM, 0);
    CHECK(s >= 0);
    int64_t deadline = now_ns() + 2000 * NS_PER_MS;
    bool stamped = false;
    while (!stamped && now_ns() < deadline) {
        char b = 0;
        CHECK_EQ(sendto(s, &b, 1, 0, ra, rl), 1);
        wait_ready(rx, POLLIN, now_ns() + 100 * NS_PER_MS);
        uint8_t in[8];
        struct rtudp_rx_pkt p;
        for (;;) {
            memset(&p, 0, sizeof p);
            p.buf = in;
            p.cap = sizeof in;
            if (rtudp_net_recv_batch(rx, &p, 1) != 1)
                break;
            stamped |= (p.flags & RTUDP_RX_KERNEL_TS) != 0;
        }
        if (!stamped)
            usleep(1000);
    }
    close(s);
    CHECK(stamped);
}

static bool wait_ready(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ns();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(left / NS_PER_MS) + 1);
        if (r > 0)
            return true;
        CHECK(r == 0 || errno == EINTR);
    }
}

struct stamps {
    unsigned n;
    uint32_t key[1024];
    int64_t ns[1024];
};

static void stamp_cb(void *ctx, uint32_t key, int64_t ns)
{
    struct stamps *s = ctx;
    CHECK(s->n < 1024);
    s->key[s->n] = key;
    s->ns[s->n] = ns;
    s->n++;
}

/* read TX stamps until `want` in total have come, or the deadline */
static void collect_stamps(int fd, struct stamps *s, unsigned want)
{
    int64_t deadline = now_ns() + WAIT_NS;
    while (s->n < want) {
        int r = rtudp_net_read_tx_stamps(fd, stamp_cb, s);
        CHECK(r >= 0);
        if (s->n >= want || !wait_ready(fd, 0, deadline))
            break;
    }
}

/* index of key in s, or -1 (and: never twice) */
static int find_stamp(const struct stamps *s, uint32_t key)
{
    int at = -1;
    for (unsigned i = 0; i < s->n; i++)
        if (s->key[i] == key) {
            CHECK(at < 0);
            at = (int)i;
        }
    return at;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* receive exactly `want` datagrams into pkts (buffers set by the caller) */
static unsigned recv_n(int fd, struct rtudp_rx_pkt *pkts, unsigned want)
{
    unsigned got = 0;
    int64_t deadline = now_ns() + WAIT_NS;
    while (got < want) {
        int r = rtudp_net_recv_batch(fd, pkts + got, want - got);
        CHECK(r >= 0);
        got += (unsigned)r;
        if (got < want && !wait_ready(fd, POLLIN, deadline))
            break;
    }
    return got;
}

/* n receive slots over consecutive buffers of `each` bytes from bufs */
static void rx_pkts_over(struct rtudp_rx_pkt *rp, unsigned n, uint8_t *bufs, size_t each)
{
    memset(rp, 0, n * sizeof *rp);
    for (unsigned i = 0; i < n; i++) {
        rp[i].buf = bufs + i * each;
        rp[i].cap = (uint32_t)each;
    }
}

/* ------------------------------------------------------------------ tests */

/* A sender and a receiver on loopback, both through rtudp_net_setup (rx_stamps: and
 * RX stamps already flowing); returns the sender's capabilities. */
struct lo_pair {
    int tx, rx;
    struct sockaddr_storage ta, ra;
    socklen_t tl, rl;
};

static struct rtudp_net_caps pair_open(struct lo_pair *p, int family, bool rx_stamps)
{
    p->tx = lo_socket(family, &p->ta, &p->tl);
    p->rx = lo_socket(family, &p->ra, &p->rl);
    CHECK(p->tx >= 0 && p->rx >= 0);
    struct rtudp_net_caps caps = setup_ok(p->tx);
    setup_ok(p->rx);
    if (rx_stamps)
        rx_stamps_on(p->rx, (struct sockaddr *)&p->ra, p->rl);
    return caps;
}

static void pair_close(struct lo_pair *p)
{
    close(p->tx);
    close(p->rx);
}

static void test_setup_caps(void)
{
    struct sockaddr_storage a;
    socklen_t al;
    int fd = lo_socket(AF_INET, &a, &al);
    CHECK(fd >= 0);
    /* an fd never set up has no key counter: sending is refused */
    struct rtudp_tx_pkt p = {.data = "x", .len = 1};
    CHECK_EQ(rtudp_net_send_batch(fd, &p, 1, (struct sockaddr *)&a, al), RTUDP_EINVAL);

    struct rtudp_net_caps c = setup_ok(fd);
    CHECK_EQ(c.family, AF_INET);
    CHECK(c.sw_tx && c.sw_rx && c.rxq_ovfl);
    CHECK(!c.hw);
    CHECK_EQ(c.phc_index, -1);
    uint32_t need = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
                    SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
    CHECK_EQ(c.tsflags & need, need);
    /* the socket stamps every send only where keys are counted; with a key per send,
     * each send that wants a stamp asks for it */
    CHECK_EQ(!!(c.tsflags & SOF_TIMESTAMPING_TX_SOFTWARE), !c.tskey_cmsg);
    CHECK_EQ(rtudp_net_send_batch(fd, &p, 1, (struct sockaddr *)&a, al), 1);
    rtudp_net_forget(fd); /* as before a close: refused again */
    CHECK_EQ(rtudp_net_send_batch(fd, &p, 1, (struct sockaddr *)&a, al), RTUDP_EINVAL);
    c = setup_ok(fd);
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    int ov = 0;
    socklen_t l = sizeof ov;
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &ov, &l), 0);
    CHECK(ov);
    printf("# setup: tsflags=0x%x tskey_cmsg=%d\n", c.tsflags, c.tskey_cmsg);
    close(fd);

    /* not a UDP socket: refused, naming the fd */
    struct rtudp_check why = {0, ""};
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(tcp >= 0);
    CHECK_EQ(rtudp_net_setup(tcp, 0, NULL, &why), RTUDP_EINVAL);
    char want[32];
    snprintf(want, sizeof want, "fd %d", tcp);
    CHECK(strstr(why.msg, want) != NULL);
    CHECK(strstr(why.msg, "UDP") != NULL);
    close(tcp);
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    CHECK_EQ(rtudp_net_setup(pfd[0], 0, NULL, &why), RTUDP_EINVAL);
    CHECK(strstr(why.msg, "not a socket") != NULL);
    close(pfd[0]);
    close(pfd[1]);
    CHECK_EQ(rtudp_net_setup(-1, 0, NULL, &why), RTUDP_EINVAL);
}

#define NPKT 64

/* 64 datagrams of sizes 0..65507 from tx to rx and back checks; tx stamps too */
static void roundtrip(int family, bool counted)
{
    struct lo_pair p;
    pair_open(&p, family, true);
    if (counted)
        CHECK_EQ(rtudp_net_use_tskey_cmsg(p.tx, 0), RTUDP_OK);
    big_buffers(p.tx);
    big_buffers(p.rx);
    struct rtudp_clockmap *map = rtudp_net_clockmap();
    const int64_t bound = map->bound_ns;
    CHECK_IN(bound, 1, 1000000);

    static const uint32_t fixed[] = {0, 1, 2, 7, 8, 100, 1472, 1473, 8192, 65000, MAX_DGRAM};
    uint32_t lens[NPKT];
    uint64_t seed = 0x5eed0000u + (unsigned)family;
    for (unsigned i = 0; i < NPKT; i++)
        lens[i] = i < sizeof fixed / sizeof fixed[0] ? fixed[i]
                                                     : (uint32_t)(splitmix64(&seed) % (MAX_DGRAM + 1));
    uint8_t *out = malloc((size_t)NPKT * MAX_DGRAM);
    uint8_t *in = malloc((size_t)NPKT * 65536);
    CHECK(out && in);
    struct rtudp_tx_pkt tp[NPKT];
    for (unsigned i = 0; i < NPKT; i++) {
        fill(out + (size_t)i * MAX_DGRAM, lens[i], 1000 + i);
        tp[i] = (struct rtudp_tx_pkt){.data = out + (size_t)i * MAX_DGRAM, .len = lens[i],
                                      .tskey = 0xdead, .sent_ns = -1};
    }

    int64_t t0 = now_ns();
    /* all in one call: loopback delivers inside the send, so no EAGAIN */
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, NPKT, (struct sockaddr *)&p.ra, p.rl), NPKT);
    int64_t t1 = now_ns();
    for (unsigned i = 0; i < NPKT; i++) {
        CHECK_EQ(tp[i].tskey, i);
        CHECK_IN(tp[i].sent_ns, t0, t1);
        CHECK_EQ(tp[i].sent_ns, tp[0].sent_ns);
    }

    struct rtudp_rx_pkt rp[NPKT];
    rx_pkts_over(rp, NPKT, in, 65536);
    g_step = "receive 64";
    CHECK_EQ(recv_n(p.rx, rp, NPKT), NPKT);
    int64_t t2 = now_ns();
    int64_t prev = 0;
    for (unsigned i = 0; i < NPKT; i++) {
        CHECK_EQ(rp[i].len, lens[i]);
        CHECK_EQ(rp[i].wire_len, lens[i]);
        CHECK(verify(rp[i].buf, lens[i], 1000 + i));
        CHECK_EQ(rp[i].flags & (RTUDP_RX_TRUNC | RTUDP_RX_HW_TS | RTUDP_RX_DROPS), 0);
        CHECK(rp[i].flags & RTUDP_RX_KERNEL_TS);
        CHECK_EQ(rp[i].hw_raw_ns, 0);
        CHECK_EQ(rp[i].drops, 0);
        CHECK_EQ(rp[i].src_len, p.tl);
        CHECK(same_addr(&rp[i].src, &p.ta));
        /* stamped between the send call's start and now, in CLOCK_MONOTONIC */
        CHECK_IN(rp[i].rx_ns, t0 - bound, t2 + bound);
        CHECK(rp[i].rx_ns >= prev);
        prev = rp[i].rx_ns;
    }
    CHECK_EQ(rtudp_net_recv_batch(p.rx, rp, NPKT), 0); /* nothing more */

    g_step = "tx stamps";
    struct stamps *s = calloc(1, sizeof *s);
    CHECK(s);
    collect_stamps(p.tx, s, NPKT);
    CHECK_EQ(s->n, NPKT);
    for (unsigned i = 0; i < NPKT; i++) {
        int at = find_stamp(s, i);
        CHECK(at >= 0);
        /* the stamp is taken inside the send call, so before sent_ns */
        CHECK_IN(s->ns[at], t0 - bound, tp[i].sent_ns + bound + 1000);
        /* the datagram is received after it left */
        CHECK(rp[i].rx_ns >= s->ns[at] - 2 * bound);
    }

    /* keys continue across calls */
    s->n = 0;
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 8, (struct sockaddr *)&p.ra, p.rl), 8);
    for (unsigned i = 0; i < 8; i++)
        CHECK_EQ(tp[i].tskey, NPKT + i);
    collect_stamps(p.tx, s, 8);
    CHECK_EQ(s->n, 8);
    for (unsigned i = 0; i < 8; i++)
        CHECK(find_stamp(s, NPKT + i) >= 0);
    CHECK_EQ(recv_n(p.rx, rp, 8), 8);

    /* setup again resets the key counter to 0, also in the kernel */
    setup_ok(p.tx);
    if (counted)
        CHECK_EQ(rtudp_net_use_tskey_cmsg(p.tx, 0), RTUDP_OK);
    s->n = 0;
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 3, (struct sockaddr *)&p.ra, p.rl), 3);
    CHECK_EQ(tp[2].tskey, 2);
    collect_stamps(p.tx, s, 3);
    CHECK_EQ(s->n, 3);
    for (unsigned i = 0; i < 3; i++)
        CHECK(find_stamp(s, i) >= 0);
    CHECK_EQ(recv_n(p.rx, rp, 3), 3);

    free(s);
    free(out);
    free(in);
    pair_close(&p);
}

static void test_roundtrip_ipv4(void) { AT_LINE(roundtrip(AF_INET, false)); }

static void test_roundtrip_ipv6(void)
{
    need_ipv6();
    AT_LINE(roundtrip(AF_INET6, false));
}

/* keys mirrored from the kernel's counter (kernels without SCM_TS_OPT_ID) */
static void test_roundtrip_counted(void)
{
    AT_LINE(roundtrip(AF_INET, true));
    need_ipv6();
    AT_LINE(roundtrip(AF_INET6, true));
}

/* a connected sender: dst NULL */
static void test_connected(void)
{
    struct lo_pair p;
    pair_open(&p, AF_INET, false);
    CHECK_EQ(connect(p.tx, (struct sockaddr *)&p.ra, p.rl), 0);
    struct rtudp_tx_pkt tp[4];
    for (unsigned i = 0; i < 4; i++)
        tp[i] = (struct rtudp_tx_pkt){.data = "abcd", .len = i + 1};
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 4, NULL, 0), 4);
    uint8_t buf[4][16];
    struct rtudp_rx_pkt rp[4];
    rx_pkts_over(rp, 4, &buf[0][0], sizeof buf[0]);
    CHECK_EQ(recv_n(p.rx, rp, 4), 4);
    for (unsigned i = 0; i < 4; i++) {
        CHECK_EQ(rp[i].len, i + 1);
        CHECK(memcmp(buf[i], "abcd", i + 1) == 0);
        CHECK(same_addr(&rp[i].src, &p.ta));
    }
    struct stamps s = {0};
    collect_stamps(p.tx, &s, 4);
    CHECK_EQ(s.n, 4);
    pair_close(&p);
}

/* A connected sender with a key per send: a call of one packet leaves with no control
 * message (the kernel's route cached on the socket serves it) and unstamped; a call
 * of two asks for both stamps, under its own keys.  Counted keys stamp every call. */
static void test_lone_packets_ask_for_no_stamp(void)
{
    struct lo_pair p;
    struct rtudp_net_caps caps = pair_open(&p, AF_INET, false);
    if (!caps.sw_tx || !caps.tskey_cmsg)
        SKIP("no software TX stamps with a key per send here");
    CHECK_EQ(connect(p.tx, (struct sockaddr *)&p.ra, p.rl), 0);
    struct rtudp_tx_pkt tp[2];
    for (unsigned i = 0; i < 2; i++)
        tp[i] = (struct rtudp_tx_pkt){.data = "ab", .len = 2};
    for (unsigned k = 0; k < 3; k++) {
        CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 1, NULL, 0), 1);
        CHECK(!tp[0].stamped);
    }
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 2, NULL, 0), 2);
    CHECK(tp[0].stamped && tp[1].stamped);
    CHECK_EQ(tp[0].tskey, 0); /* the lone ones took no key */
    CHECK_EQ(tp[1].tskey, 1);
    struct stamps s = {0};
    collect_stamps(p.tx, &s, 2);
    CHECK_EQ(s.n, 2);
    CHECK(find_stamp(&s, 0) >= 0 && find_stamp(&s, 1) >= 0);
    CHECK_EQ(rtudp_net_read_tx_stamps(p.tx, stamp_cb, &s), 0); /* none for the lone ones */
    uint8_t buf[5][16];
    struct rtudp_rx_pkt rp[5];
    rx_pkts_over(rp, 5, &buf[0][0], sizeof buf[0]);
    CHECK_EQ(recv_n(p.rx, rp, 5), 5);

    CHECK_EQ(rtudp_net_use_tskey_cmsg(p.tx, 0), RTUDP_OK); /* counted: every call stamped */
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 1, NULL, 0), 1);
    CHECK(tp[0].stamped);
    s.n = 0;
    collect_stamps(p.tx, &s, 1);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(rtudp_net_use_tskey_cmsg(p.tx, 1), RTUDP_OK); /* and back */
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 1, NULL, 0), 1);
    CHECK(!tp[0].stamped);
    CHECK_EQ(rtudp_net_read_tx_stamps(p.tx, stamp_cb, &s), 0);
    CHECK_EQ(recv_n(p.rx, rp, 2), 2);
    pair_close(&p);
}

/* a read for the stamps awaited takes no more than those; the rest wait in the queue */
static void test_stamps_read_as_many_as_awaited(void)
{
    struct lo_pair p;
    struct rtudp_net_caps caps = pair_open(&p, AF_INET, false);
    if (!caps.sw_tx)
        SKIP("this kernel gives loopback no software TX stamps");
    struct rtudp_tx_pkt tp[3];
    for (unsigned i = 0; i < 3; i++)
        tp[i] = (struct rtudp_tx_pkt){.data = "abc", .len = 3};
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 3, (struct sockaddr *)&p.ra, p.rl), 3);
    CHECK(wait_ready(p.tx, 0, now_ns() + WAIT_NS)); /* the stamps are queued */
    struct stamps s = {0};
    CHECK_EQ(rtudp_net_read_tx_stamps_n(p.tx, 1, stamp_cb, &s), 1);
    CHECK_EQ(s.n, 1);
    collect_stamps(p.tx, &s, 3);
    CHECK_EQ(s.n, 3); /* the other two were left, not lost */
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(s.key[i], s.key[0] + i);
    pair_close(&p);
}

/* a GSO send: n datagrams on the wire, one TX stamp under one key; packets that
 * do not qualify are refused before anything is sent */
static void test_gso_send(void)
{
    need_gso();
    struct lo_pair p;
    struct rtudp_net_caps caps = pair_open(&p, AF_INET, false);
    CHECK(caps.gso); /* the kernel takes UDP_SEGMENT: netio.c must say so */
    char data[4][100];
    struct rtudp_tx_pkt tp[4];
    for (unsigned i = 0; i < 4; i++) {
        memset(data[i], 'a' + (int)i, sizeof data[i]);
        tp[i] = (struct rtudp_tx_pkt){.data = data[i], .len = sizeof data[i]};
    }
    uint32_t key;
    CHECK_EQ(rtudp_net_next_key(p.tx, &key), RTUDP_OK);
    CHECK_EQ(rtudp_net_send_gso(p.tx, tp, 4, (struct sockaddr *)&p.ra, p.rl), 4);
    for (unsigned i = 0; i < 4; i++)
        CHECK_EQ(tp[i].tskey, key);
    uint32_t next;
    CHECK_EQ(rtudp_net_next_key(p.tx, &next), RTUDP_OK);
    CHECK_EQ(next, key + 1);
    /* setup turned UDP_GRO on for rx: the 4 datagrams may come as one receive that
     * says its segment size, or one by one; either way 4 of 100 bytes */
    unsigned datagrams = 0;
    int64_t deadline = now_ns() + WAIT_NS;
    while (datagrams < 4) {
        uint8_t buf[512];
        struct rtudp_rx_pkt rp = {.buf = buf, .cap = sizeof buf};
        int r = rtudp_net_recv_batch(p.rx, &rp, 1);
        CHECK(r >= 0);
        if (r == 1) {
            CHECK(rp.gso_size == 0 || rp.gso_size == 100);
            CHECK_EQ(rp.wire_len % 100, 0);
            datagrams += rp.wire_len / 100;
        } else if (!wait_ready(p.rx, POLLIN, deadline)) {
            break;
        }
    }
    CHECK_EQ(datagrams, 4);
    struct stamps st = {0};
    collect_stamps(p.tx, &st, 1);
    CHECK_EQ(st.n, 1);
    CHECK_EQ(st.key[0], key);
    /* refused: sizes differ, 0 bytes, too many */
    tp[1].len = 99;
    CHECK_EQ(rtudp_net_send_gso(p.tx, tp, 4, (struct sockaddr *)&p.ra, p.rl), RTUDP_EINVAL);
    tp[0].len = tp[1].len = 0;
    CHECK_EQ(rtudp_net_send_gso(p.tx, tp, 2, (struct sockaddr *)&p.ra, p.rl), RTUDP_EINVAL);
    CHECK_EQ(rtudp_net_send_gso(p.tx, tp, RTUDP_NET_GSO_MAX + 1, (struct sockaddr *)&p.ra, p.rl),
             RTUDP_EINVAL);
    CHECK_EQ(rtudp_net_next_key(p.tx, &next), RTUDP_OK);
    CHECK_EQ(next, key + 1);
    pair_close(&p);
}

static void test_truncation(void)
{
    struct lo_pair p;
    pair_open(&p, AF_INET, true);
    static uint8_t out[3000];
    fill(out, sizeof out, 77);
    struct rtudp_tx_pkt tp[3] = {{.data = out, .len = 1000}, {.data = out, .len = 100},
                                 {.data = out, .len = 3000}};
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 3, (struct sockaddr *)&p.ra, p.rl), 3);
    uint8_t small[3][100];
    struct rtudp_rx_pkt rp[3];
    rx_pkts_over(rp, 3, &small[0][0], sizeof small[0]);
    rp[2].cap = 0; /* nothing kept at all */
    CHECK_EQ(recv_n(p.rx, rp, 3), 3);
    CHECK_EQ(rp[0].len, 100);
    CHECK_EQ(rp[0].wire_len, 1000);
    CHECK(rp[0].flags & RTUDP_RX_TRUNC);
    CHECK(verify(small[0], 100, 77)); /* the prefix */
    CHECK_EQ(rp[1].len, 100);         /* exactly fits: not truncated */
    CHECK_EQ(rp[1].wire_len, 100);
    CHECK_EQ(rp[1].flags & RTUDP_RX_TRUNC, 0);
    CHECK(verify(small[1], 100, 77));
    CHECK_EQ(rp[2].len, 0);
    CHECK_EQ(rp[2].wire_len, 3000);
    CHECK(rp[2].flags & RTUDP_RX_TRUNC);
    for (unsigned i = 0; i < 3; i++) {
        CHECK(rp[i].flags & RTUDP_RX_KERNEL_TS);
        CHECK(same_addr(&rp[i].src, &p.ta));
    }
    pair_close(&p);
}

/* a packet the kernel refuses mid-batch: the ones before it went, its error is
 * reported (not left to fail the next send), keys stay in step with the kernel */
static void partial_send(bool counted)
{
    struct lo_pair p;
    pair_open(&p, AF_INET, false);
    if (counted)
        CHECK_EQ(rtudp_net_use_tskey_cmsg(p.tx, 0), RTUDP_OK);
    big_buffers(p.rx);
    uint8_t *big = calloc(1, MAX_DGRAM + 2);
    CHECK(big);
    struct rtudp_tx_pkt tp[4] = {{.data = "a", .len = 1}, {.data = "bb", .len = 2},
                                 {.data = big, .len = MAX_DGRAM + 1}, {.data = "d", .len = 1}};
    errno = 0;
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 4, (struct sockaddr *)&p.ra, p.rl), 2);
    CHECK_EQ(errno, EMSGSIZE);
    CHECK_EQ(tp[1].tskey, 1);
    /* the oversized one first: refused outright */
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp + 2, 2, (struct sockaddr *)&p.ra, p.rl), RTUDP_ESYS);
    CHECK_EQ(errno, EMSGSIZE);
    /* the next good packet goes and gets the next key; alone in its call it is
     * stamped only where keys are counted */
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp + 3, 1, (struct sockaddr *)&p.ra, p.rl), 1);
    CHECK_EQ(tp[3].tskey, 2);
    CHECK_EQ(tp[3].stamped, counted);
    CHECK(tp[0].stamped && tp[1].stamped);
    int e = -1;
    socklen_t l = sizeof e;
    CHECK_EQ(getsockopt(p.tx, SOL_SOCKET, SO_ERROR, &e, &l), 0);
    CHECK_EQ(e, 0);
    unsigned want = counted ? 3 : 2;
    struct stamps s = {0};
    collect_stamps(p.tx, &s, want);
    CHECK_EQ(s.n, want);
    for (unsigned k = 0; k < want; k++)
        CHECK(find_stamp(&s, k) >= 0);
    uint8_t buf[3][8];
    struct rtudp_rx_pkt rp[3];
    rx_pkts_over(rp, 3, &buf[0][0], sizeof buf[0]);
    CHECK_EQ(recv_n(p.rx, rp, 3), 3);
    CHECK_EQ(rp[0].len, 1);
    CHECK_EQ(rp[1].len, 2);
    CHECK_EQ(rp[2].len, 1);
    CHECK_EQ(buf[2][0], 'd');
    /* bad arguments */
    CHECK_EQ(rtudp_net_send_batch(p.tx, NULL, 1, (struct sockaddr *)&p.ra, p.rl), RTUDP_EINVAL);
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 0, (struct sockaddr *)&p.ra, p.rl), 0);
    CHECK_EQ(rtudp_net_recv_batch(p.rx, NULL, 1), RTUDP_EINVAL);
    CHECK_EQ(rtudp_net_recv_batch(p.rx, rp, 0), 0);
    free(big);
    pair_close(&p);
}

static void test_partial_send(void) { AT_LINE(partial_send(false)); }
static void test_partial_send_counted(void) { AT_LINE(partial_send(true)); }

/* SO_RXQ_OVFL: after the receive buffer overflowed, the next datagram carries the
 * socket's drop count */
static void test_drop_count(void)
{
    struct lo_pair p;
    pair_open(&p, AF_INET, false);
    struct rtudp_net_bufs b;
    CHECK_EQ(rtudp_net_size_buffers(p.rx, 4096, 0, &b, NULL), RTUDP_OK);
    static uint8_t out[1000];
    struct rtudp_tx_pkt tp[NPKT];
    for (unsigned i = 0; i < NPKT; i++)
        tp[i] = (struct rtudp_tx_pkt){.data = out, .len = sizeof out};
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, NPKT, (struct sockaddr *)&p.ra, p.rl), NPKT);
    static uint8_t in[NPKT][1000];
    struct rtudp_rx_pkt rp[NPKT];
    rx_pkts_over(rp, NPKT, &in[0][0], sizeof in[0]);
    int got = rtudp_net_recv_batch(p.rx, rp, NPKT);
    CHECK_IN(got, 1, NPKT - 1); /* a 4 KiB buffer holds a few */
    for (int i = 0; i < got; i++)
        CHECK_EQ(rp[i].drops, 0); /* queued before any drop */
    CHECK_EQ(rtudp_net_send_batch(p.tx, tp, 1, (struct sockaddr *)&p.ra, p.rl), 1);
    CHECK_EQ(recv_n(p.rx, rp, 1), 1);
    CHECK(rp[0].flags & RTUDP_RX_DROPS);
    CHECK_EQ(rp[0].drops, NPKT - got);
    pair_close(&p);
}

static void test_hw_on_loopback(void)
{
    struct sockaddr_storage a;
    socklen_t al;
    int fd = lo_socket(AF_INET, &a, &al);
    CHECK(fd >= 0);
    struct rtudp_check why = {0, ""};
    struct rtudp_net_caps c;
    CHECK(rtudp_net_setup(fd, 1, &c, &why) != RTUDP_OK);
    printf("# hw on 127.0.0.1: %s\n", why.msg);
    char want[32];
    snprintf(want, sizeof want, "fd %d", fd);
    CHECK(strstr(why.msg, want) != NULL);
    CHECK(strstr(why.msg, "interface lo") != NULL);
    CHECK(strstr(why.msg, "hardware") != NULL);
    /* nothing was changed on the socket */
    int f = -1;
    socklen_t l = sizeof f;
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &f, &l), 0);
    CHECK_EQ(f, 0);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    /* the socket still works in software */
    struct rtudp_net_caps sw = setup_ok(fd);
    CHECK(!sw.hw);
    close(fd);

    /* bound to the wildcard: no one interface to ask */
    int w = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(w >= 0);
    why.msg[0] = '\0';
    CHECK(rtudp_net_setup(w, 1, NULL, &why) != RTUDP_OK);
    CHECK(strstr(why.msg, "wildcard") != NULL);
    close(w);

    /* ::1 names lo too */
    need_ipv6();
    int v6 = lo_socket(AF_INET6, &a, &al);
    CHECK(v6 >= 0);
    CHECK(rtudp_net_setup(v6, 1, NULL, &why) != RTUDP_OK);
    CHECK(strstr(why.msg, "interface lo") != NULL);
    close(v6);
}

static uint64_t read_u64(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f);
    unsigned long long v = 0;
    CHECK(fscanf(f, "%llu", &v) == 1);
    fclose(f);
    return v;
}

/* drop CAP_NET_ADMIN from this (child) process; false if we cannot */
static bool drop_net_admin(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capget, &h, d) != 0)
        return false;
    d[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    d[CAP_NET_ADMIN / 32].permitted &= ~(1u << (CAP_NET_ADMIN % 32));
    d[CAP_NET_ADMIN / 32].inheritable &= ~(1u << (CAP_NET_ADMIN % 32));
    return syscall(SYS_capset, &h, d) == 0;
}

static void test_buffers(void)
{
    struct sockaddr_storage a;
    socklen_t al;
    int fd = lo_socket(AF_INET, &a, &al);
    CHECK(fd >= 0);
    uint64_t rmax = read_u64("/proc/sys/net/core/rmem_max");
    uint64_t wmax = read_u64("/proc/sys/net/core/wmem_max");
    struct rtudp_net_bufs b;
    struct rtudp_check why = {0, ""};
    /* 0, 0: only report */
    CHECK_EQ(rtudp_net_size_buffers(fd, 0, 0, &b, &why), RTUDP_OK);
    CHECK(b.rcvbuf > 0 && b.sndbuf > 0);
    CHECK_EQ(b.rmem_max, 0); /* the sysctl maxima are read only where they bind */
    CHECK_EQ(b.wmem_max, 0);
    uint64_t want = 2 * (rmax > wmax ? rmax : wmax) + 4096; /* above both maxima */
    CHECK_EQ(rtudp_net_size_buffers(fd, want, want, &b, &why), RTUDP_OK);
    int admin = !b.rcv_limited;
    printf("# buffers: asked %llu, got rcv %llu snd %llu (rmem_max %llu wmem_max %llu)%s\n",
           (unsigned long long)want, (unsigned long long)b.rcvbuf, (unsigned long long)b.sndbuf,
           (unsigned long long)rmax, (unsigned long long)wmax,
           admin ? " with CAP_NET_ADMIN" : "");
    if (admin) { /* FORCE: the kernel doubles what it is given */
        CHECK_EQ(b.rcvbuf, 2 * want);
        CHECK_EQ(b.sndbuf, 2 * want);
        CHECK(!b.snd_limited);
        CHECK(b.rmem_max == 0 && b.wmem_max == 0);
    }
    /* a huge request is capped by the kernel, not an error */
    CHECK_EQ(rtudp_net_size_buffers(fd, UINT64_MAX, 0, &b, &why), RTUDP_OK);
    CHECK(b.rcvbuf > 0);
    CHECK_EQ(rtudp_net_size_buffers(-1, 1, 1, &b, &why), RTUDP_EINVAL);
    CHECK(strstr(why.msg, "fd -1") != NULL);

    /* without CAP_NET_ADMIN: clipped at the sysctl and said so */
    if (!drop_net_admin()) {
        printf("# buffers: cannot drop CAP_NET_ADMIN (%s); limited path not tested\n",
               strerror(errno));
    } else {
        int fd2 = lo_socket(AF_INET, &a, &al);
        CHECK(fd2 >= 0);
        CHECK_EQ(rtudp_net_size_buffers(fd2, want, want, &b, &why), RTUDP_OK);
        CHECK(b.rcv_limited && b.snd_limited);
        CHECK(b.rmem_max == rmax && b.wmem_max == wmax);
        CHECK_EQ(b.rcvbuf, 2 * rmax);
        CHECK_EQ(b.sndbuf, 2 * wmax);
        /* below the maximum: not limited */
        CHECK_EQ(rtudp_net_size_buffers(fd2, rmax / 2, wmax / 2, &b, &why), RTUDP_OK);
        CHECK(!b.rcv_limited && !b.snd_limited);
        CHECK_EQ(b.rcvbuf, rmax / 2 * 2);
        close(fd2);
    }
    close(fd);
}

static void fresh_bracket(int64_t *off, int64_t *half)
{
    struct timespec x, y, z;
    clock_gettime(CLOCK_MONOTONIC, &x);
    clock_gettime(CLOCK_REALTIME, &y);
    clock_gettime(CLOCK_MONOTONIC, &z);
    int64_t a = (int64_t)x.tv_sec * 1000000000 + x.tv_nsec;
    int64_t r = (int64_t)y.tv_sec * 1000000000 + y.tv_nsec;
    int64_t b = (int64_t)z.tv_sec * 1000000000 + z.tv_nsec;
    *off = r - (a + b) / 2;
    *half = (b - a + 1) / 2 + 1;
}

static void test_clockmap(void)
{
    struct rtudp_clockmap m;
    rtudp_clockmap_init(&m);
    CHECK_EQ(m.refreshes, 1);
    printf("# clockmap: bound %lld ns\n", (long long)m.bound_ns);
    CHECK_IN(m.bound_ns, 1, 1000000); /* a VM exit may widen it, but not to 1 ms 5 times */
    for (int i = 0; i < 100; i++) {
        int64_t off, half;
        fresh_bracket(&off, &half);
        long long diff = (long long)(off - m.offset_ns);
        CHECK_IN(diff, -(m.bound_ns + half), m.bound_ns + half);
    }
    /* conversion of a REALTIME read taken between two MONOTONIC reads */
    struct timespec r;
    int64_t a = now_ns();
    clock_gettime(CLOCK_REALTIME, &r);
    int64_t b = now_ns();
    int64_t mono = rtudp_clockmap_to_mono(&m, (int64_t)r.tv_sec * 1000000000 + r.tv_nsec);
    CHECK_IN(mono, a - m.bound_ns, b + m.bound_ns);
    /* refresh is rate limited unless forced */
    CHECK_EQ(rtudp_clockmap_refresh(&m, 0, 0), 0);
    CHECK_EQ(rtudp_clockmap_refresh(&m, now_ns() + RTUDP_CLOCKMAP_MAX_AGE_NS + 1, 0), 1);
    CHECK_EQ(rtudp_clockmap_refresh(&m, 0, 1), 1);
    CHECK_EQ(m.refreshes, 3);
    /* the shared map is measured on first use */
    struct rtudp_clockmap *g = rtudp_net_clockmap();
    CHECK(g && g->refreshes >= 1);
    int64_t off, half;
    fresh_bracket(&off, &half);
    CHECK_IN(off - g->offset_ns, -(g->bound_ns + half), g->bound_ns + half);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

#define TIMING_N 10000
#define TIMING_BATCH 16

/* what the kernel gives here: prints median / p99 of (TX stamp - sent_ns) and
 * (rx_ns - TX stamp); checks only that every packet got both stamps in order */
static void test_loopback_timing(void)
{
    struct lo_pair p;
    pair_open(&p, AF_INET, true);
    /* counted keys: a call of one packet is stamped too */
    CHECK_EQ(rtudp_net_use_tskey_cmsg(p.tx, 0), RTUDP_OK);
    big_buffers(p.tx);
    big_buffers(p.rx);
    int64_t *sent = malloc(TIMING_N * sizeof *sent), *txs = malloc(TIMING_N * sizeof *txs);
    int64_t *rxs = malloc(TIMING_N * sizeof *rxs);
    int64_t *d1 = malloc(TIMING_N * sizeof *d1), *d2 = malloc(TIMING_N * sizeof *d2);
    CHECK(sent && txs && rxs && d1 && d2);
    for (unsigned i = 0; i < TIMING_N; i++)
        txs[i] = rxs[i] = INT64_MIN;
    struct stamps *s = calloc(1, sizeof *s);
    CHECK(s);
    uint8_t payload[64] = {0};
    uint8_t in[TIMING_BATCH][64];
    struct rtudp_rx_pkt rp[TIMING_BATCH];
    memset(rp, 0, sizeof rp);
    unsigned got_rx = 0, got_tx = 0;
    for (unsigned base = 0; base < TIMING_N; base++) {
        /* one packet per call, as a timed send mostly is */
        struct rtudp_tx_pkt tp = {.data = payload, .len = sizeof payload};
        memcpy(payload, &base, sizeof base);
        CHECK_EQ(rtudp_net_send_batch(p.tx, &tp, 1, (struct sockaddr *)&p.ra, p.rl), 1);
        CHECK_EQ(tp.tskey, base);
        sent[base] = tp.sent_ns;
        if (base % TIMING_BATCH == TIMING_BATCH - 1 || base == TIMING_N - 1) {
            int64_t deadline = now_ns() + WAIT_NS;
            while (got_rx <= base) {
                for (unsigned i = 0; i < TIMING_BATCH; i++) {
                    rp[i].buf = in[i];
                    rp[i].cap = sizeof in[i];
                }
                int r = rtudp_net_recv_batch(p.rx, rp, TIMING_BATCH);
                CHECK(r >= 0);
                for (int i = 0; i < r; i++) {
                    unsigned k;
                    memcpy(&k, in[i], sizeof k);
                    CHECK(k < TIMING_N);
                    CHECK(rp[i].flags & RTUDP_RX_KERNEL_TS);
                    rxs[k] = rp[i].rx_ns;
                    got_rx++;
                }
                if (got_rx <= base)
                    CHECK(wait_ready(p.rx, POLLIN, deadline));
            }
            while (got_tx <= base) {
                s->n = 0;
                CHECK(rtudp_net_read_tx_stamps(p.tx, stamp_cb, s) >= 0);
                for (unsigned i = 0; i < s->n; i++) {
                    CHECK(s->key[i] < TIMING_N);
                    txs[s->key[i]] = s->ns[i];
                    got_tx++;
                }
                if (got_tx <= base)
                    CHECK(wait_ready(p.tx, 0, deadline));
            }
        }
    }
    CHECK_EQ(got_rx, TIMING_N);
    CHECK_EQ(got_tx, TIMING_N);
    int64_t bound = rtudp_net_clockmap()->bound_ns;
    for (unsigned i = 0; i < TIMING_N; i++) {
        CHECK(txs[i] != INT64_MIN && rxs[i] != INT64_MIN);
        d1[i] = txs[i] - sent[i];
        d2[i] = rxs[i] - txs[i];
        CHECK(d1[i] <= bound + 1000);
        CHECK(d2[i] >= -2 * bound);
    }
    qsort(d1, TIMING_N, sizeof *d1, cmp_i64);
    qsort(d2, TIMING_N, sizeof *d2, cmp_i64);
    printf("# loopback, %d packets of 64 B, one per sendmmsg: TX stamp - sent_ns: median %lld "
           "ns, p1 %lld, p99 %lld; rx_ns - TX stamp: median %lld ns, p99 %lld (clock map "
           "bound %lld ns)\n",
           TIMING_N, (long long)d1[TIMING_N / 2], (long long)d1[TIMING_N / 100],
           (long long)d1[TIMING_N * 99 / 100], (long long)d2[TIMING_N / 2],
           (long long)d2[TIMING_N * 99 / 100], (long long)bound);
    free(s);
    free(sent);
    free(txs);
    free(rxs);
    free(d1);
    free(d2);
    pair_close(&p);
}

/* ------------------------------------------------------------------ main */


static const struct test tests[] = {
    T(test_setup_caps),
    T(test_roundtrip_ipv4),
    T(test_roundtrip_ipv6),
    T(test_roundtrip_counted),
    T(test_connected),
    T(test_lone_packets_ask_for_no_stamp),
    T(test_stamps_read_as_many_as_awaited),
    T(test_gso_send),
    T(test_truncation),
    T(test_partial_send),
    T(test_partial_send_counted),
    T(test_drop_count),
    T(test_hw_on_loopback),
    T(test_buffers),
    T(test_clockmap),
    T(test_loopback_timing),
};

HARNESS_MAIN(tests)
