/*
 * test_direct_recv.c - a reader's wait on the channel socket itself (direct_recv.h) and
 * the token it shares with the worker (rx_publish.h): who may read the socket when,
 * that what a reader reads is published as the worker publishes it, and that a lease,
 * a stale hold or a dead holder gives the socket back to the worker.
 *
 * The "channel socket" is a UDP socket of this process, a sender socket sends to it;
 * the channel block and the RX ring are plain memory.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "direct_recv.h"
#include "harness.h"
#include "ring.h"
#include "rtudp_shm.h"
#include "rx_publish.h"
#include "worker/netio.h"

#define CAP 65536u

struct rig {
    int chan, sender;
    struct rtudp_bcast ring;
    struct rtudp_bcast_reader rd;
    struct rtudp_channel_block *block;
    struct rtudp_drx_reader r;
    void *mem;
};

static int udp_bound(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* The kernel turns RX stamping on for everyone a moment after the first socket asks
 * (a deferred static key): probe until a datagram comes stamped. */
static void wait_for_stamps(struct rig *r)
{
    uint8_t buf[16];
    for (int i = 0; i < 500; i++) {
        uint32_t v = 0;
        CHECK_EQ(send(r->sender, &v, sizeof v, 0), (ssize_t)sizeof v);
        struct rtudp_rx_pkt p = {.buf = buf, .cap = sizeof buf};
        int n = 0;
        for (int k = 0; k < 1000 && n == 0; k++)
            n = rtudp_net_recv_batch(r->chan, &p, 1);
        CHECK_EQ(n, 1);
        if (p.flags & RTUDP_RX_KERNEL_TS)
            return;
        usleep(1000);
    }
    CHECK(!"the kernel never stamped a datagram");
}

static void rig_up(struct rig *r)
{
    memset(r, 0, sizeof *r);
    uint16_t port, unused;
    r->chan = udp_bound(&port);
    r->sender = udp_bound(&unused);
    /* as the worker sets a channel socket up: kernel RX stamps, drop counts */
    struct rtudp_net_caps caps;
    struct rtudp_check nwhy = {0, ""};
    CHECK_EQ(rtudp_net_setup(r->chan, 0, &caps, &nwhy), RTUDP_OK);
    CHECK(caps.sw_rx);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(connect(r->sender, (struct sockaddr *)&to, sizeof to), 0);
    uint64_t fp = rtudp_bcast_footprint(CAP);
    r->mem = zalloc64(fp);
    CHECK_EQ(rtudp_bcast_init(r->mem, CAP), RTUDP_OK);
    CHECK_EQ(rtudp_bcast_attach(&r->ring, r->mem, fp, NULL), RTUDP_OK);
    rtudp_bcast_reader_init(&r->ring, &r->rd, 0);
    wait_for_stamps(r);
    r->block = zalloc64((sizeof *r->block + 63) & ~(size_t)63);
    r->block->kind = RTUDP_KIND_UDP;
    r->block->max_datagram = 256;
    r->block->direct.state = RTUDP_DIRECT_ON;
    r->block->direct_rx.allowed = 1;
    struct rtudp_check why = {0, ""};
    int rc = rtudp_drx_open(&r->r, (int)getpid(), r->chan, AF_INET, port, r->block, &r->ring,
                            0, &why);
    if (rc != RTUDP_OK)
        fprintf(stderr, "open: %s\n", why.msg);
    CHECK_EQ(rc, RTUDP_OK);
}

static void rig_down(struct rig *r)
{
    rtudp_drx_close(&r->r);
    rtudp_net_forget(r->chan);
    close(r->chan);
    close(r->sender);
    free(r->block);
    free(r->mem);
}

static void send_u32(struct rig *r, uint32_t v)
{
    CHECK_EQ(send(r->sender, &v, sizeof v, 0), (ssize_t)sizeof v);
}

/* the next record's datagram as a u32 and its meta */
static uint32_t read_u32(struct rig *r, struct rtudp_rx_meta *m)
{
    uint8_t buf[512];
    uint32_t len = 0;
    CHECK_EQ(rtudp_bcast_read(&r->ring, &r->rd, buf, sizeof buf, &len, NULL, NULL, NULL, NULL),
             RTUDP_OK);
    CHECK_EQ(len, (uint32_t)(sizeof *m + sizeof(uint32_t)));
    memcpy(m, buf, sizeof *m);
    uint32_t v;
    memcpy(&v, buf + sizeof *m, sizeof v);
    return v;
}

static int64_t in_ms(int ms)
{
    return rtudp_now_ns() + ms * NS_PER_MS;
}

static void test_a_waiting_reader_publishes_as_the_worker_does(void)
{
    struct rig r;
    rig_up(&r);
    for (uint32_t i = 0; i < 3; i++)
        send_u32(&r, 100 + i);
    int rc;
    BOUNDED("a wait with a datagram there", rc = rtudp_drx_wait(&r.r, &r.ring, &r.rd, in_ms(2000)));
    CHECK_EQ(rc, RTUDP_OK);
    /* all three read in one go (nothing left under the lease), in order, counted */
    for (uint32_t i = 0; i < 3; i++) {
        struct rtudp_rx_meta m;
        CHECK_EQ(read_u32(&r, &m), 100 + i);
        CHECK_EQ(m.rx_seq, (uint64_t)i);
        CHECK(m.flags & RTUDP_RX_SOFTWARE_STAMP);
        CHECK(m.rx_ns > 0 && m.rx_ns <= rtudp_now_ns());
        CHECK_EQ(m.source.family, (uint32_t)AF_INET);
    }
    CHECK_EQ(r.block->rx_packets, 3u);
    CHECK_EQ(r.block->rx_bytes, 12u);
    CHECK_EQ(r.block->direct_rx.packets, 3u);
    CHECK_EQ(r.block->direct_rx.takes, 1u);
    CHECK_EQ(r.block->rx_delay.count, 3u);
    CHECK_EQ(r.block->direct_rx.next_seq, 3u);
    /* kept between calls, by us */
    CHECK_EQ(r.block->direct_rx.state, (uint32_t)RTUDP_DRX_LEASE);
    CHECK_EQ(r.block->direct_rx.holder_pid, (uint32_t)getpid());
    /* a wait that times out keeps it too, and reads nothing */
    BOUNDED("a wait that times out", rc = rtudp_drx_wait(&r.r, &r.ring, &r.rd, in_ms(20)));
    CHECK_EQ(rc, RTUDP_ETIMEDOUT);
    CHECK_EQ(r.block->rx_packets, 3u);
    rig_down(&r);
}

static void test_the_worker_and_a_reader_take_turns(void)
{
    struct rig r;
    rig_up(&r);
    struct rtudp_channel_block *b = r.block;
    int64_t now = rtudp_now_ns();
    /* the worker drains: a reader cannot take the socket meanwhile */
    CHECK(rtudp_drx_worker_take(b, now));
    CHECK_EQ(rtudp_drx_wait(&r.r, &r.ring, &r.rd, in_ms(10)), RTUDP_EMPTY);
    rtudp_drx_worker_give(b);
    CHECK_EQ(b->direct_rx.state, (uint32_t)RTUDP_DRX_FREE);
    /* a reader's lease keeps the worker off until it passes */
    send_u32(&r, 7);
    CHECK_EQ(rtudp_drx_wait(&r.r, &r.ring, &r.rd, in_ms(2000)), RTUDP_OK);
    CHECK(!rtudp_drx_worker_take(b, rtudp_now_ns()));
    int64_t check = rtudp_drx_check_at(b, rtudp_now_ns());
    CHECK(check > rtudp_now_ns() && check <= rtudp_now_ns() + RTUDP_DRX_LEASE_NS);
    CHECK(rtudp_drx_worker_take(b, b->direct_rx.lease_until_ns + 1));
    CHECK_EQ(b->direct_rx.reclaims, 1u);
    rtudp_drx_worker_give(b);
    /* a look without a wait never takes a free socket */
    send_u32(&r, 8);
    usleep(2000);
    CHECK_EQ(rtudp_drx_wait(&r.r, &r.ring, &r.rd, 0), RTUDP_EMPTY);
    CHECK_EQ(b->direct_rx.state, (uint32_t)RTUDP_DRX_FREE);
    rig_down(&r);
}

static void test_a_dead_holder_and_a_stale_hold_lose_the_socket(void)
{
    struct rig r;
    rig_up(&r);
    struct rtudp_channel_block *b = r.block;
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0)
        _exit(0);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    /* a reader that exited inside a read: only its exit frees the socket */
    b->direct_rx.state = RTUDP_DRX_READING;
    b->direct_rx.holder_pid = (uint32_t)child;
    b->direct_rx.lease_until_ns = INT64_MAX / 2;
    CHECK(rtudp_drx_worker_take(b, rtudp_now_ns()));
    rtudp_drx_worker_give(b);
    /* a live reader reading keeps it, whatever its lease says */
    b->direct_rx.state = RTUDP_DRX_READING;
    b->direct_rx.holder_pid = (uint32_t)getpid();
    b->direct_rx.lease_until_ns = 0;
    CHECK(!rtudp_drx_worker_take(b, rtudp_now_ns()));
    /* one waiting that stopped renewing its hold (a stopped process) loses it */
    b->direct_rx.state = RTUDP_DRX_WAIT;
    CHECK(rtudp_drx_worker_take(b, rtudp_now_ns()));
    CHECK_EQ(b->direct_rx.reclaims, 2u);
    rtudp_drx_worker_give(b);
    /* a reader killed inside a read whose parent has not waited for it yet (a zombie:
     * kill(pid, 0) still succeeds) has exited too */
    pid_t zombie = fork();
    CHECK(zombie >= 0);
    if (zombie == 0)
        _exit(0);
    CHECK_EQ(waitid(P_PID, (id_t)zombie, &(siginfo_t){0}, WEXITED | WNOWAIT), 0);
    CHECK_EQ(kill(zombie, 0), 0);
    b->direct_rx.state = RTUDP_DRX_READING;
    b->direct_rx.holder_pid = (uint32_t)zombie;
    CHECK(rtudp_drx_worker_take(b, rtudp_now_ns()));
    CHECK_EQ(b->direct_rx.reclaims, 3u);
    rtudp_drx_worker_give(b);
    CHECK_EQ(waitpid(zombie, NULL, 0), zombie);
    /* a worker that died draining: its successor frees the token */
    b->direct_rx.state = RTUDP_DRX_WORKER;
    rtudp_drx_worker_reset(b);
    CHECK_EQ(b->direct_rx.state, (uint32_t)RTUDP_DRX_FREE);
    rig_down(&r);
}

static void test_what_only_the_worker_does_keeps_readers_off(void)
{
    struct rig r;
    rig_up(&r);
    struct rtudp_channel_block *b = r.block;
    CHECK(rtudp_drx_terms(b));
    b->tap.attached = 1;
    CHECK(!rtudp_drx_terms(b));
    b->tap.attached = 0;
    b->direct_rx.impaired = 1;
    CHECK(!rtudp_drx_terms(b));
    b->direct_rx.impaired = 0;
    b->async_wait.slot[3].pid = 1;
    CHECK(!rtudp_drx_terms(b));
    b->async_wait.slot[3].pid = 0;
    b->direct.state = RTUDP_DIRECT_NOT_NOW;
    CHECK(!rtudp_drx_terms(b));
    b->direct.state = RTUDP_DIRECT_NEVER; /* sends' keys: nothing to do with receives */
    CHECK(rtudp_drx_terms(b));
    b->direct_rx.allowed = 0;
    send_u32(&r, 1);
    CHECK_EQ(rtudp_drx_wait(&r.r, &r.ring, &r.rd, in_ms(10)), RTUDP_EMPTY);
    CHECK_EQ(b->rx_packets, 0u);
    /* a closed channel: the duplicate goes */
    b->direct_rx.allowed = 1;
    b->direct.state = RTUDP_DIRECT_REVOKED;
    CHECK(!rtudp_drx_on(&r.r));
    rig_down(&r);
}

static void test_a_reader_leaves_the_socket_while_another_process_reads(void)
{
    struct rig r;
    rig_up(&r);
    struct rtudp_channel_block *b = r.block;
    /* another live process attached as a reader (our parent): the worker reads */
    b->reader_pid[0] = (uint32_t)getpid();
    b->reader_pid[5] = (uint32_t)getppid();
    send_u32(&r, 7);
    CHECK_EQ(rtudp_drx_wait(&r.r, &r.ring, &r.rd, in_ms(10)), RTUDP_EMPTY);
    CHECK_EQ(b->direct_rx.state, (uint32_t)RTUDP_DRX_FREE);
    CHECK_EQ(b->rx_packets, 0u);
    /* one that took the socket alone gives it back at its next read, reading nothing */
    b->direct_rx.state = RTUDP_DRX_LEASE;
    b->direct_rx.holder_pid = (uint32_t)getpid();
    b->direct_rx.lease_until_ns = INT64_MAX / 2;
    CHECK_EQ(rtudp_drx_wait(&r.r, &r.ring, &r.rd, 0), RTUDP_EMPTY);
    CHECK_EQ(b->direct_rx.state, (uint32_t)RTUDP_DRX_FREE);
    CHECK_EQ(b->rx_packets, 0u);
    /* that reader gone, its slot is emptied and we read the socket again */
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0)
        _exit(0);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    b->reader_pid[5] = (uint32_t)child;
    int rc;
    BOUNDED("a wait with a datagram there", rc = rtudp_drx_wait(&r.r, &r.ring, &r.rd, in_ms(2000)));
    CHECK_EQ(rc, RTUDP_OK);
    CHECK_EQ(b->reader_pid[5], 0u);
    CHECK_EQ(b->direct_rx.packets, 1u);
    struct rtudp_rx_meta m;
    CHECK_EQ(read_u32(&r, &m), 7u);
    /* a reader that joins while nobody reads the socket does not wait */
    int64_t t0 = rtudp_now_ns();
    rtudp_drx_reader_joined(b);
    CHECK(rtudp_now_ns() - t0 < RTUDP_DRX_STALE_NS);
    rig_down(&r);
}

static const struct test tests[] = {
    T(test_a_waiting_reader_publishes_as_the_worker_does),
    T(test_the_worker_and_a_reader_take_turns),
    T(test_a_dead_holder_and_a_stale_hold_lose_the_socket),
    T(test_what_only_the_worker_does_keeps_readers_off),
    T(test_a_reader_leaves_the_socket_while_another_process_reads),
};

HARNESS_MAIN(tests)
