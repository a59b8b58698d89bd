/*
 * test_rx_handoff.c - the RX work passed between the RX thread and the TX thread
 * (rxloop.c: rtudp_rx_take, rtudp_rx_poll, rtudp_rx_give) on a real loopback socket:
 * taken at once from an RX thread that waits on its sockets, nothing lost or read
 * twice whoever does the work, datagrams that arrive while the TX thread holds it are
 * read by it, and the RX thread reads again once given back.  With wake-up coalescing
 * (rx_coalesce): datagrams found together make the RX thread wait for more, and are
 * all read in order; one in flight at a time never does.  The TX thread's turns wait
 * alike (rtudp_rx_turn_waits).  A channel that may gather (rx_gather) makes the RX
 * thread wait between datagrams that come one at a time but often; one that may not
 * never does.  A datagram read marks work for the TX thread, and wakes it while the
 * worker rests (sched.c, rtudp_w_rest).  Run under TSan in CI.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define align8 harness_align8
#include "harness.h"
#include "ring_fixture.h"
#undef align8
#include "worker.h"

#define N_PACKETS 4000

struct fixture {
    struct rtudp_rx rx;
    struct rtudp_chan c;
    struct rtudp_channel_block block;
    struct rtudp_bcast_ring *ring;
    struct rtudp_bcast_reader rd;
    struct sockaddr_in addr;
    int tx;                         /* a plain socket that sends to the channel */
};

#define COALESCE_NS 50000 /* the worker's default */

/* the channel (may_gather: its datagrams may wait, as a kind says) on a started RX
 * thread */
static void setup_with(struct fixture *f, int64_t coalesce_ns, int may_gather)
{
    memset(f, 0, sizeof *f);
    f->c.rx.may_gather = may_gather;
    struct rtudp_chan *c = &f->c;
    c->block = &f->block;
    f->block.max_datagram = 64;
    c->proto = rtudp_proto_find(RTUDP_KIND_UDP);
    CHECK(c->proto != NULL);
    c->recvs = 1;
    c->rx.ring = bcast_new(1 << 20);
    f->ring = c->rx.ring.ring;
    rtudp_bcast_reader_init(&c->rx.ring, &f->rd, 1);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    CHECK(s >= 0);
    int big = 8 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    f->addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t l = sizeof f->addr;
    CHECK_EQ(bind(s, (struct sockaddr *)&f->addr, sizeof f->addr), 0);
    CHECK_EQ(getsockname(s, (struct sockaddr *)&f->addr, &l), 0);
    c->fd = c->tx_fd = s;
    c->rx.fd = s;
    c->rx.block = &f->block;
    c->rx.cap = 64;
    c->rx.timer_ns = RTUDP_PROTO_NEVER;
    f->tx = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(f->tx >= 0);
    CHECK_EQ(rtudp_rx_start(&f->rx, coalesce_ns, 0), 0);
    CHECK_EQ(rtudp_rx_add(&f->rx, &c->rx), RTUDP_OK);
}

static void setup(struct fixture *f, int64_t coalesce_ns)
{
    setup_with(f, coalesce_ns, 0);
}

static void teardown(struct fixture *f)
{
    rtudp_rx_give(&f->rx);
    rtudp_rx_remove(&f->rx, &f->c.rx);
    rtudp_rx_stop(&f->rx);
    close(f->c.fd);
    close(f->tx);
    free(f->ring);
}

static void send_seq(struct fixture *f, uint32_t i)
{
    CHECK_EQ(sendto(f->tx, &i, sizeof i, 0, (struct sockaddr *)&f->addr, sizeof f->addr),
             (ssize_t)sizeof i);
}

/* read what the RX ring holds; each payload must be the next number expected */
static uint32_t read_in_order(struct fixture *f, uint32_t next)
{
    uint8_t buf[256];
    uint32_t len;
    uint64_t seq, lost;
    int64_t t;
    uint16_t flags;
    while (rtudp_bcast_read(&f->c.rx.ring, &f->rd, buf, sizeof buf, &len, &seq, &t, &flags,
                            &lost) == RTUDP_OK) {
        CHECK_EQ(lost, 0);
        CHECK_EQ(len, sizeof(struct rtudp_rx_meta) + sizeof(uint32_t));
        uint32_t got;
        memcpy(&got, buf + sizeof(struct rtudp_rx_meta), sizeof got);
        CHECK_EQ(got, next);
        next++;
    }
    return next;
}

/* the RX thread is waiting on its sockets once it read what was sent */
static uint32_t wait_rx_thread(struct fixture *f, uint32_t next, uint32_t want)
{
    int64_t until = rtudp_now_ns() + 5000 * NS_PER_MS;
    while (next < want && rtudp_now_ns() < until) {
        next = read_in_order(f, next);
        usleep(200);
    }
    CHECK_EQ(next, want);
    return next;
}

static void test_taken_at_once_from_a_waiting_rx_thread(void)
{
    struct fixture f;
    setup(&f, COALESCE_NS);
    send_seq(&f, 0);
    uint32_t next = wait_rx_thread(&f, 0, 1);
    usleep(20000); /* back in its wait */
    /* no datagram, no yield: the RX thread never runs, and the TX thread has the work */
    CHECK_EQ(rtudp_rx_take(&f.rx), 1);
    CHECK_EQ(atomic_load(&f.rx.own), RX_OWN_TX);
    /* what comes now is the TX thread's to read.  A single datagram: the RX thread,
     * still in its wait, takes its event (edge-triggered: reported once), leaves it
     * and passes it on (`rescan`); the TX thread must read it all the same */
    send_seq(&f, 1);
    usleep(20000);
    int64_t until = rtudp_now_ns() + 2000 * NS_PER_MS;
    while (next < 2 && rtudp_now_ns() < until) {
        rtudp_rx_poll(&f.rx);
        next = read_in_order(&f, next);
    }
    CHECK_EQ(next, 2);
    for (uint32_t i = 2; i <= 50; i++)
        send_seq(&f, i);
    until = rtudp_now_ns() + 5000 * NS_PER_MS;
    while (next < 51 && rtudp_now_ns() < until) {
        rtudp_rx_poll(&f.rx);
        next = read_in_order(&f, next);
    }
    CHECK_EQ(next, 51);
    CHECK_EQ(atomic_load(&f.rx.own), RX_OWN_TX);
    /* given back: the RX thread reads again */
    rtudp_rx_give(&f.rx);
    for (uint32_t i = 51; i < 60; i++)
        send_seq(&f, i);
    wait_rx_thread(&f, next, 60);
    teardown(&f);
}

struct sender {
    struct fixture *f;
    atomic_int done;
};

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    for (uint32_t i = 0; i < N_PACKETS; i++) {
        send_seq(s->f, i);
        if (i % 16 == 0)
            usleep(50);
    }
    atomic_store(&s->done, 1);
    return NULL;
}

static void test_nothing_lost_or_doubled_as_the_work_moves(void)
{
    struct fixture f;
    setup(&f, COALESCE_NS);
    struct sender s = {.f = &f};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sender_main, &s), 0);
    uint64_t seed = 7;
    uint32_t next = 0, took = 0, gave = 0;
    int64_t until = rtudp_now_ns() + 20000 * NS_PER_MS;
    while (next < N_PACKETS && rtudp_now_ns() < until) {
        /* the TX thread's pattern: bridge a while (owning, polling), then sleep */
        uint64_t r = splitmix64(&seed);
        if (r % 4) {
            if (rtudp_rx_take(&f.rx)) {
                took++;
                rtudp_rx_poll(&f.rx);
            }
        } else {
            rtudp_rx_give(&f.rx);
            gave++;
            usleep((useconds_t)(r % 300));
        }
        next = read_in_order(&f, next);
    }
    rtudp_rx_give(&f.rx);
    next = wait_rx_thread(&f, next, N_PACKETS);
    pthread_join(t, NULL);
    CHECK(took > 0 && gave > 0);
    CHECK_EQ(next, N_PACKETS);
    teardown(&f);
}

static uint64_t coalesced(struct fixture *f)
{
    return atomic_load_explicit(&f->rx.coalesced, memory_order_relaxed);
}

/* the "TX thread" takes the RX work (asked for, it is handed over at the RX thread's
 * next turn) and holds it while datagrams first .. end-1 come */
static void hold_while_sent(struct fixture *f, uint32_t first, uint32_t end)
{
    int64_t until = rtudp_now_ns() + 2000 * NS_PER_MS;
    while (!rtudp_rx_take(&f->rx) && rtudp_now_ns() < until)
        usleep(100);
    CHECK_EQ(rtudp_rx_held(&f->rx), 1);
    for (uint32_t i = first; i < end; i++)
        send_seq(f, i);
    usleep(20000);
}

static void test_datagrams_found_together_make_the_rx_thread_wait_for_more(void)
{
    for (int64_t ns = 0; ns <= COALESCE_NS; ns += COALESCE_NS) {
        struct fixture f;
        setup(&f, ns);
        /* held by the "TX thread" while 10 come: given back, the RX thread finds them
         * all in one read */
        hold_while_sent(&f, 0, 10);
        rtudp_rx_give(&f.rx);
        uint32_t next = wait_rx_thread(&f, 0, 10);
        int64_t until = rtudp_now_ns() + 2000 * NS_PER_MS;
        while (ns && coalesced(&f) == 0 && rtudp_now_ns() < until)
            usleep(1000);
        CHECK_EQ(coalesced(&f), ns ? 1u : 0u);
        /* one in flight at a time: each read alone, none waits */
        for (uint32_t i = 10; i < 110; i++) {
            send_seq(&f, i);
            next = wait_rx_thread(&f, next, i + 1);
        }
        usleep(2 * COALESCE_NS / 1000);
        CHECK_EQ(coalesced(&f), ns ? 1u : 0u);
        teardown(&f);
    }
}

/* the TX thread's turns (txloop.c, rx_turn_here): after one that read several, the
 * next waits coalesce_ns; after one that read one, or with coalescing off, none does */
static void test_tx_turns_after_several_reads_wait_as_the_rx_thread_does(void)
{
    struct fixture f;
    setup(&f, COALESCE_NS);
    hold_while_sent(&f, 0, 5);
    int got = 0;
    int64_t until = rtudp_now_ns() + 2000 * NS_PER_MS;
    while (got < 5 && rtudp_now_ns() < until)
        got += rtudp_rx_poll(&f.rx); /* the rescan may take a second turn */
    CHECK_EQ(got, 5);
    CHECK_EQ(read_in_order(&f, 0), 5u);
    CHECK_EQ(rtudp_rx_turn_waits(got, 0, COALESCE_NS), 1);
    CHECK_EQ(rtudp_rx_turn_waits(got, COALESCE_NS - 1, COALESCE_NS), 1);
    CHECK_EQ(rtudp_rx_turn_waits(got, COALESCE_NS, COALESCE_NS), 0);
    CHECK_EQ(rtudp_rx_turn_waits(got, 0, 0), 0);
    send_seq(&f, 5);
    usleep(20000);
    got = 0;
    until = rtudp_now_ns() + 2000 * NS_PER_MS;
    while (!got && rtudp_now_ns() < until)
        got = rtudp_rx_poll(&f.rx);
    CHECK_EQ(got, 1);
    CHECK_EQ(rtudp_rx_turn_waits(got, 0, COALESCE_NS), 0); /* one in flight: no wait */
    CHECK_EQ(rtudp_rx_turn_waits(0, 0, COALESCE_NS), 0);
    rtudp_rx_give(&f.rx);
    teardown(&f);
}

/* n datagrams, one about every 100 us, read in order by the RX thread; the gathers
 * it counted meanwhile */
static uint64_t trickle(int may_gather, uint32_t n)
{
    struct fixture f;
    setup_with(&f, COALESCE_NS, may_gather);
    uint64_t before = atomic_load(&f.rx.gathered);
    uint32_t next = 0;
    for (uint32_t i = 0; i < n; i++) {
        send_seq(&f, i);
        struct timespec gap = {0, 100000};
        nanosleep(&gap, NULL);
        next = read_in_order(&f, next);
    }
    next = wait_rx_thread(&f, next, n);
    uint64_t gathers = atomic_load(&f.rx.gathered) - before;
    teardown(&f);
    return gathers;
}

static void test_a_channel_that_may_gather_lets_datagrams_wait(void)
{
    CHECK(trickle(1, 2000) > 0);
}

static void test_a_channel_that_may_not_gather_is_read_at_once(void)
{
    CHECK_EQ(trickle(0, 2000), 0);
    const int64_t g = RTUDP_RX_GATHER_NS;
    CHECK_EQ(rtudp_rx_gathers(1, 0, 0, g - 1, COALESCE_NS), 1);
    CHECK_EQ(rtudp_rx_gathers(1, 1, 0, 0, COALESCE_NS), 0);  /* an urgent read in the turn */
    CHECK_EQ(rtudp_rx_gathers(1, 1, 1, 0, COALESCE_NS), 0);
    CHECK_EQ(rtudp_rx_gathers(0, 0, 0, 0, COALESCE_NS), 0);  /* nothing read */
    CHECK_EQ(rtudp_rx_gathers(0, 0, 1, 0, COALESCE_NS), 0);  /* nothing came: it ends */
    CHECK_EQ(rtudp_rx_gathers(1, 0, 0, g, COALESCE_NS), 0);  /* slow */
    CHECK_EQ(rtudp_rx_gathers(1, 0, 1, g, COALESCE_NS), 1);  /* a gather goes on */
    CHECK_EQ(rtudp_rx_gathers(5, 0, 1, 0, 0), 0);            /* coalescing off */
}

/* gathering channels' kind timers run together, on a grid of the gather's length */
static void test_gathering_timers_run_on_the_gather_grid(void)
{
    const int64_t g = RTUDP_RX_GATHER_NS;
    CHECK_EQ(rtudp_rx_gather_grid(1), g);
    CHECK_EQ(rtudp_rx_gather_grid(g), g);
    CHECK_EQ(rtudp_rx_gather_grid(g + 1), 2 * g);
    CHECK_EQ(rtudp_rx_gather_grid(7 * g - 1), 7 * g);
    CHECK_EQ(rtudp_rx_gather_grid(RTUDP_PROTO_NEVER), RTUDP_PROTO_NEVER);
}

/* a resting worker's TX thread waits on its bell for the RX thread's word
 * (txloop.c, rest_ended; sched.c, rtudp_w_rest) */
static bool rest_ended(const void *ctx)
{
    return !atomic_load(&((const struct rtudp_rx *)ctx)->rest);
}

struct rest_wait {
    struct fixture *f;
    int rc;
    int64_t woke_ns;
};

static void *wait_resting(void *arg)
{
    struct rest_wait *r = arg;
    r->rc = rtudp_bell_wait(r->f->rx.bell, rest_ended, &r->f->rx,
                            rtudp_now_ns() + (int64_t)STEP_TIMEOUT_S * 1000000000LL, 0);
    r->woke_ns = rtudp_now_ns();
    return NULL;
}

static void test_a_datagram_wakes_a_resting_worker(void)
{
    struct fixture f;
    setup(&f, COALESCE_NS);
    struct rtudp_doorbell bell = {0};
    f.rx.bell = &bell;
    /* a datagram marks work for the TX thread's next tick; none is marked before */
    CHECK_EQ(atomic_load(&f.rx.worked), 0);
    send_seq(&f, 0);
    uint32_t next = wait_rx_thread(&f, 0, 1);
    CHECK_EQ(atomic_exchange(&f.rx.worked, 0), 1); /* what the tick takes */
    CHECK_EQ(atomic_load(&f.rx.rest), 0);
    CHECK_EQ(load_relaxed(&bell.seq), 0u); /* not resting: nobody is rung */
    /* resting: the TX thread parks on its bell (no deadline), the next datagram ends it */
    atomic_store(&f.rx.rest, 1);
    struct rest_wait r = {.f = &f, .rc = 1};
    pthread_t waiter;
    CHECK(pthread_create(&waiter, NULL, wait_resting, &r) == 0);
    while (!load_acquire(&bell.waiters))
        usleep(200); /* it sleeps on the futex now, or is about to */
    usleep(20000);
    int64_t sent = rtudp_now_ns();
    send_seq(&f, 1);
    CHECK(pthread_join(waiter, NULL) == 0);
    CHECK_EQ(r.rc, RTUDP_OK);
    CHECK(r.woke_ns >= sent);
    CHECK_EQ(atomic_load(&f.rx.rest), 0);
    CHECK_EQ(atomic_load(&f.rx.worked), 1);
    wait_rx_thread(&f, next, 2);
    teardown(&f);
}

static const struct test tests[] = {
    T(test_taken_at_once_from_a_waiting_rx_thread),
    T(test_nothing_lost_or_doubled_as_the_work_moves),
    T(test_datagrams_found_together_make_the_rx_thread_wait_for_more),
    T(test_tx_turns_after_several_reads_wait_as_the_rx_thread_does),
    T(test_a_channel_that_may_gather_lets_datagrams_wait),
    T(test_a_channel_that_may_not_gather_is_read_at_once),
    T(test_gathering_timers_run_on_the_gather_grid),
    T(test_a_datagram_wakes_a_resting_worker),
};

HARNESS_MAIN(tests)
