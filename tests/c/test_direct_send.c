/*
 * test_direct_send.c - a client's immediate send on the channel socket (direct_send.h):
 * what it accepts as the socket, when it sends and when it leaves the packet to the
 * ring, how it counts, and that a revoked channel's duplicate is closed.
 *
 * The "worker" here is a doorbell whose waiters count says parked or not, and the
 * "channel socket" a UDP socket of this process connected to a sink socket.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "direct_send.h"
#include "harness.h"
#include "ring.h"
#include "rtudp_shm.h"

#define CAP 4096u
#define QUIET_NS 5000

struct rig {
    int sink, chan;                 /* the channel socket is connected to the sink */
    uint16_t port;                  /* the channel socket's */
    struct rtudp_mpsc m;
    struct rtudp_doorbell *bell;    /* the worker's: waiters 1 = parked */
    struct rtudp_channel_block *block; /* the direct line's channel block */
    struct rtudp_direct_tx *line;
    struct rtudp_direct d;
};

static uint16_t bound_port(int fd)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    return ntohs(a.sin_port);
}

static int udp_bound(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void connect_to(int fd, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void rig_up(struct rig *r, int64_t quiet_ns)
{
    memset(r, 0, sizeof *r);
    r->sink = udp_bound();
    r->chan = udp_bound();
    connect_to(r->chan, bound_port(r->sink));
    r->port = bound_port(r->chan);
    uint64_t fp = rtudp_mpsc_footprint(CAP);
    void *mem = zalloc64(fp);
    CHECK_EQ(rtudp_mpsc_init(mem, CAP), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_attach(&r->m, mem, fp, NULL), RTUDP_OK);
    r->bell = zalloc64(sizeof *r->bell);
    r->bell->waiters = 1;
    rtudp_mpsc_set_wake(&r->m, r->bell);
    r->block = zalloc64(sizeof *r->block);
    r->line = &r->block->direct;
    r->line->state = RTUDP_DIRECT_ON;
    struct rtudp_check why = {0, ""};
    int rc = rtudp_direct_open(&r->d, (int)getpid(), r->chan, AF_INET, r->port, r->line,
                               quiet_ns, &why);
    if (rc != RTUDP_OK)
        fprintf(stderr, "open: %s\n", why.msg);
    CHECK_EQ(rc, RTUDP_OK);
}

static void rig_down(struct rig *r)
{
    rtudp_direct_close(&r->d);
    close(r->sink);
    close(r->chan);
    free(r->m.ring);
    free(r->bell);
    free(r->block);
}

/* the next datagram at the sink, or -1 if none is there */
static ssize_t sink_read(struct rig *r, char *buf, size_t len)
{
    return recv(r->sink, buf, len, MSG_DONTWAIT);
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    nanosleep(&ts, NULL);
}

static void test_open_checks_the_socket(void)
{
    struct rig r;
    rig_up(&r, QUIET_NS);
    CHECK(rtudp_direct_on(&r.d));
    CHECK(r.d.fd != r.chan); /* our own duplicate */
    struct rtudp_direct d;
    struct rtudp_check why = {0, ""};
    CHECK_EQ(rtudp_direct_open(&d, 0, r.chan, AF_INET, r.port, r.line, 0, &why), RTUDP_EINVAL);
    CHECK(!rtudp_direct_on(&d));
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(rtudp_direct_open(&d, (int)getpid(), p[0], AF_INET, r.port, r.line, 0, &why),
             RTUDP_EINVAL);
    CHECK(strstr(why.msg, "not a datagram socket") != NULL);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(rtudp_direct_open(&d, (int)getpid(), r.chan, AF_INET, (uint16_t)(r.port + 1),
                               r.line, 0, &why), RTUDP_EINVAL);
    CHECK(strstr(why.msg, "port") != NULL);
    CHECK_EQ(rtudp_direct_open(&d, (int)getpid(), r.chan, AF_INET6, r.port, r.line, 0, &why),
             RTUDP_EINVAL);
    int loose = udp_bound();
    CHECK_EQ(rtudp_direct_open(&d, (int)getpid(), loose, AF_INET, bound_port(loose), r.line, 0,
                               &why), RTUDP_EINVAL);
    CHECK(strstr(why.msg, "not connected") != NULL);
    close(loose);
    CHECK(rtudp_direct_open(&d, (int)getpid(), 1 << 20, AF_INET, r.port, r.line, 0, &why) !=
          RTUDP_OK);
    CHECK(strstr(why.msg, "pidfd_getfd") != NULL);
    rig_down(&r);
}

static void test_sends_when_idle_and_counts(void)
{
    struct rig r;
    rig_up(&r, QUIET_NS);
    CHECK(rtudp_direct_try(&r.d, &r.m, "hello", 5));
    char buf[64];
    CHECK_EQ(sink_read(&r, buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(r.line->packets, 1u);
    CHECK_EQ(r.line->bytes, 5u);
    CHECK_EQ(r.line->fallbacks, 0u);
    CHECK_EQ(rtudp_mpsc_pending_bytes(&r.m), 0u); /* the ring was never used */
    rig_down(&r);
}

static void test_not_while_queued_awake_or_held(void)
{
    struct rig r;
    rig_up(&r, 0);
    char buf[64];
    /* something queued: it must leave first */
    CHECK_EQ(rtudp_mpsc_try_put_quiet(&r.m, "q", 1, 0, 0), RTUDP_OK);
    CHECK(!rtudp_direct_try(&r.d, &r.m, "x", 1));
    uint32_t len;
    CHECK_EQ(rtudp_mpsc_get(&r.m, (uint8_t *)buf, sizeof buf, &len, NULL, NULL), RTUDP_OK);
    CHECK(rtudp_direct_try(&r.d, &r.m, "x", 1));
    /* the worker awake: it takes the ring at once */
    r.bell->waiters = 0;
    CHECK(!rtudp_direct_try(&r.d, &r.m, "x", 1));
    r.bell->waiters = 1;
    /* paused: nothing leaves, but the duplicate is kept for when it resumes */
    r.line->state = RTUDP_DIRECT_NOT_NOW;
    CHECK(!rtudp_direct_try(&r.d, &r.m, "x", 1));
    CHECK(rtudp_direct_on(&r.d));
    r.line->state = RTUDP_DIRECT_ON;
    /* a tap attached: the worker sends, so that the tap gets it with its TX stamp */
    r.block->tap.attached = 1;
    CHECK(!rtudp_direct_try(&r.d, &r.m, "x", 1));
    r.block->tap.attached = 0;
    CHECK(rtudp_direct_try(&r.d, &r.m, "x", 1));
    CHECK_EQ(r.line->packets, 2u);
    CHECK_EQ(sink_read(&r, buf, sizeof buf), 1);
    CHECK_EQ(sink_read(&r, buf, sizeof buf), 1);
    CHECK_EQ(sink_read(&r, buf, sizeof buf), -1);
    rig_down(&r);
}

static void test_a_burst_is_left_to_the_ring(void)
{
    struct rig r;
    rig_up(&r, 50 * 1000 * 1000); /* 50 ms: no machine is that slow between two calls */
    CHECK(rtudp_direct_try(&r.d, &r.m, "a", 1));
    CHECK(!rtudp_direct_try(&r.d, &r.m, "b", 1)); /* found idle again at once: queue */
    CHECK(!rtudp_direct_try(&r.d, &r.m, "c", 1)); /* and the clock restarted */
    sleep_ns(60 * NS_PER_MS);
    CHECK(rtudp_direct_try(&r.d, &r.m, "d", 1));
    CHECK_EQ(r.line->packets, 2u);
    rig_down(&r);
}

static void test_revoked_closes_the_duplicate(void)
{
    struct rig r;
    rig_up(&r, 0);
    int dup = r.d.fd;
    r.line->state = RTUDP_DIRECT_REVOKED;
    CHECK(!rtudp_direct_try(&r.d, &r.m, "x", 1));
    CHECK(!rtudp_direct_on(&r.d));
    CHECK(fcntl(dup, F_GETFD) == -1 && errno == EBADF); /* the port is not held by us */
    r.line->state = RTUDP_DIRECT_ON;
    CHECK(!rtudp_direct_try(&r.d, &r.m, "x", 1)); /* off for good */
    rig_down(&r);
}

static void test_a_refused_send_is_left_to_the_ring(void)
{
    struct rig r;
    rig_up(&r, 0);
    close(r.sink); /* the peer's port closes: its ICMP error fails our next send */
    r.sink = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(rtudp_direct_try(&r.d, &r.m, "x", 1));
    bool refused = false;
    for (int i = 0; i < 100 && !refused; i++)
        refused = !rtudp_direct_try(&r.d, &r.m, "x", 1);
    CHECK(refused);
    CHECK_EQ(r.line->fallbacks, 1u);
    CHECK(rtudp_direct_on(&r.d)); /* a refusal is the packet's, not the channel's */
    rig_down(&r);
}

static const struct test tests[] = {
    T(test_open_checks_the_socket),
    T(test_sends_when_idle_and_counts),
    T(test_not_while_queued_awake_or_held),
    T(test_a_burst_is_left_to_the_ring),
    T(test_revoked_closes_the_duplicate),
    T(test_a_refused_send_is_left_to_the_ring),
};

HARNESS_MAIN(tests)
