/*
 * test_async_wait.c - the async waiters (async_wait.h, worker/asyncwake.h): the
 * worker answers a registration with one wake-up, writes an eventfd only while its
 * bit is armed, takes a bit once, refuses what is not an eventfd, and a new
 * registration in the same slot gets a new duplicate.
 *
 * Client and "worker" are this process: pidfd_getfd of oneself works like the
 * worker's of a client.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

#include "async_wait.h"
#include "asyncwake.h"
#include "harness.h"
#include "rtudp_shm.h"

struct rig {
    struct rtudp_channel_block *b;
    struct rtudp_worker_slot *ws;
    struct rtudp_async_fds f;
    int efd;
};

static void rig_init(struct rig *r)
{
    r->b = calloc(1, sizeof *r->b);
    r->ws = calloc(1, sizeof *r->ws);
    CHECK(r->b && r->ws);
    rtudp_async_fds_init(&r->f);
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(r->efd >= 0);
}

static void rig_free(struct rig *r)
{
    rtudp_async_fds_close(&r->f);
    close(r->efd);
    free(r->b);
    free(r->ws);
}

/* what the eventfd counted since the last look (0: nothing) */
static uint64_t taken(int efd)
{
    uint64_t v = 0;
    if (read(efd, &v, sizeof v) != (ssize_t)sizeof v)
        return 0;
    return v;
}

static void test_answer_then_wake_only_when_armed(void)
{
    struct rig r;
    rig_init(&r);
    int slot = rtudp_async_register(r.b, r.ws, (uint32_t)getpid(), r.efd);
    CHECK_EQ(slot, 0);
    CHECK_EQ(r.ws->async_posted, 1u);
    CHECK_EQ(rtudp_async_status(r.b, slot, NULL), RTUDP_ASYNC_PENDING);
    rtudp_async_answer(&r.b->async_wait, &r.f);
    int32_t err = -1;
    CHECK_EQ(rtudp_async_status(r.b, slot, &err), RTUDP_ASYNC_OK);
    CHECK_EQ(err, 0);
    CHECK_EQ(taken(r.efd), 1u); /* the answer wakes once */
    rtudp_async_answer(&r.b->async_wait, &r.f);
    CHECK_EQ(taken(r.efd), 0u); /* answered already: nothing more */

    rtudp_async_wake(&r.b->async_wait, RTUDP_ASYNC_RX, &r.f);
    CHECK_EQ(taken(r.efd), 0u); /* not armed: not written */
    rtudp_async_arm(r.b, slot, RTUDP_ASYNC_TX);
    rtudp_async_wake(&r.b->async_wait, RTUDP_ASYNC_RX, &r.f);
    CHECK_EQ(taken(r.efd), 0u); /* armed for the other direction only */
    rtudp_async_wake(&r.b->async_wait, RTUDP_ASYNC_TX, &r.f);
    CHECK_EQ(taken(r.efd), 1u);
    CHECK_EQ(r.b->async_wait.armed[RTUDP_ASYNC_TX], 0u); /* the worker took the bit */
    rtudp_async_wake(&r.b->async_wait, RTUDP_ASYNC_TX, &r.f);
    CHECK_EQ(taken(r.efd), 0u); /* once */

    rtudp_async_arm(r.b, slot, RTUDP_ASYNC_RX);
    rtudp_async_disarm(r.b, slot, RTUDP_ASYNC_RX);
    rtudp_async_wake(&r.b->async_wait, RTUDP_ASYNC_RX, &r.f);
    CHECK_EQ(taken(r.efd), 0u); /* disarmed */
    CHECK_EQ(rtudp_async_release(r.b, slot, (uint32_t)getpid()), 0);
    CHECK_EQ(r.b->async_wait.slot[slot].pid, 0u);
    rig_free(&r);
}

static void test_not_an_eventfd_is_refused(void)
{
    struct rig r;
    rig_init(&r);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    int slot = rtudp_async_register(r.b, r.ws, (uint32_t)getpid(), p[1]);
    CHECK(slot >= 0);
    rtudp_async_answer(&r.b->async_wait, &r.f);
    int32_t err = 0;
    CHECK_EQ(rtudp_async_status(r.b, slot, &err), RTUDP_ASYNC_FAILED);
    CHECK_EQ(err, EINVAL);
    /* armed anyway: the wake writes nothing anywhere (the pipe stays empty) */
    rtudp_async_arm(r.b, slot, RTUDP_ASYNC_RX);
    rtudp_async_wake(&r.b->async_wait, RTUDP_ASYNC_RX, &r.f);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    CHECK_EQ(poll(&pf, 1, 0), 0);
    close(p[0]);
    close(p[1]);
    rig_free(&r);
}

static void test_a_new_registration_gets_a_new_duplicate(void)
{
    struct rig r;
    rig_init(&r);
    uint32_t me = (uint32_t)getpid();
    int slot = rtudp_async_register(r.b, r.ws, me, r.efd);
    rtudp_async_answer(&r.b->async_wait, &r.f);
    CHECK_EQ(taken(r.efd), 1u);
    CHECK_EQ(rtudp_async_release(r.b, slot, me), 0);
    int efd2 = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK_EQ(rtudp_async_register(r.b, r.ws, me, efd2), slot); /* the same slot, reused */
    CHECK_EQ(rtudp_async_status(r.b, slot, NULL), RTUDP_ASYNC_PENDING);
    rtudp_async_arm(r.b, slot, RTUDP_ASYNC_RX);
    rtudp_async_wake(&r.b->async_wait, RTUDP_ASYNC_RX, &r.f);
    CHECK_EQ(taken(efd2), 1u);  /* the new one, */
    CHECK_EQ(taken(r.efd), 0u); /* not the old one */
    close(efd2);
    rig_free(&r);
}

static void test_slots_run_out_and_bad_arguments(void)
{
    struct rig r;
    rig_init(&r);
    uint32_t me = (uint32_t)getpid();
    for (int i = 0; i < RTUDP_ASYNC_SLOTS; i++)
        CHECK_EQ(rtudp_async_register(r.b, r.ws, me, r.efd), i);
    CHECK_EQ(rtudp_async_register(r.b, r.ws, me, r.efd), -1);
    CHECK_EQ(rtudp_async_register(r.b, r.ws, 0, r.efd), -1);
    CHECK_EQ(rtudp_async_register(r.b, r.ws, me, -1), -1);
    CHECK_EQ(rtudp_async_release(r.b, RTUDP_ASYNC_SLOTS, me), -1);
    CHECK_EQ(rtudp_async_release(r.b, 0, me + 1), -1); /* not its slot */
    CHECK_EQ(rtudp_async_status(r.b, -1, NULL), RTUDP_ASYNC_FAILED);
    rtudp_async_arm(r.b, RTUDP_ASYNC_SLOTS, RTUDP_ASYNC_RX); /* ignored */
    rtudp_async_arm(r.b, 0, 7);                               /* ignored */
    CHECK_EQ(r.b->async_wait.armed[0] | r.b->async_wait.armed[1], 0u);
    /* a client scribbling bits beyond the slots makes the worker write nothing */
    r.b->async_wait.armed[RTUDP_ASYNC_RX] = 0xffff0000u;
    rtudp_async_wake(&r.b->async_wait, RTUDP_ASYNC_RX, &r.f);
    CHECK_EQ(taken(r.efd), 0u);
    rig_free(&r);
}

/* The handshake under a race: a "worker" thread publishes record i (a counter standing
 * for the ring) and wakes; the client arms, looks, and only then waits on the eventfd.
 * A lost wake-up would leave the client in poll() until its 5 s bound. */
#define RACE_ROUNDS 20000
struct race {
    struct rig r;
    atomic_ullong published, consumed;
};

static void *race_worker(void *arg)
{
    struct race *x = arg;
    for (unsigned long long i = 1; i <= RACE_ROUNDS; i++) {
        atomic_store_explicit(&x->published, i, memory_order_release);
        rtudp_async_wake(&x->r.b->async_wait, RTUDP_ASYNC_RX, &x->r.f);
        while (atomic_load_explicit(&x->consumed, memory_order_acquire) < i)
            sched_yield();
    }
    return NULL;
}

static void test_no_wakeup_is_lost_under_a_race(void)
{
    struct race x;
    rig_init(&x.r);
    atomic_init(&x.published, 0);
    atomic_init(&x.consumed, 0);
    int slot = rtudp_async_register(x.r.b, x.r.ws, (uint32_t)getpid(), x.r.efd);
    rtudp_async_answer(&x.r.b->async_wait, &x.r.f);
    CHECK_EQ(taken(x.r.efd), 1u);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, race_worker, &x), 0);
    unsigned long long waits = 0;
    for (unsigned long long i = 1; i <= RACE_ROUNDS; i++) {
        for (;;) {
            rtudp_async_arm(x.r.b, slot, RTUDP_ASYNC_RX);
            if (atomic_load_explicit(&x.published, memory_order_acquire) >= i)
                break;
            struct pollfd pf = {.fd = x.r.efd, .events = POLLIN};
            CHECK_EQ(poll(&pf, 1, 5000), 1); /* 0: the wake-up was lost */
            taken(x.r.efd);
            waits++;
        }
        atomic_store_explicit(&x.consumed, i, memory_order_release);
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(waits > 0); /* the client did wait, not only find records there */
    rig_free(&x.r);
}

static const struct test tests[] = {
    T(test_answer_then_wake_only_when_armed),
    T(test_not_an_eventfd_is_refused),
    T(test_a_new_registration_gets_a_new_duplicate),
    T(test_slots_run_out_and_bad_arguments),
    T(test_no_wakeup_is_lost_under_a_race),
};

HARNESS_MAIN(tests)
