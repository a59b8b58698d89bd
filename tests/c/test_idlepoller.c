/*
 * test_idlepoller.c - the idle poller's loop against its gate (csrc/worker/idlepoller.h),
 * run in a thread of this process: it naps only while a park is open, its naps end by
 * the park's end and never after it (a nap's timer that fired while the worker spins
 * to its deadline would interrupt the spin), then it waits on the gate until the next
 * park, also while the worker has not closed the last one yet.
 * That the worker starts, stops and reaps the poller process is tested end to end by
 * tests/test_idle_poll.py; here, that a resting worker's poller is stopped and
 * continued (rtudp_idlepoller_rest), on a stand-in child.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "idlepoller.h"
#include "ring.h"

#include "harness.h"

struct poller_run {
    struct rtudp_idlegate gate;
    struct rtudp_idlepoller p; /* the TX thread's side: only its gate */
    atomic_int stop;
    atomic_int exited;
    atomic_long naps;
    _Atomic int64_t latest_end; /* the latest end a nap was made to */
    pthread_t thread;
};

static void *poll_loop(void *arg)
{
    struct poller_run *r = arg;
    while (!atomic_load(&r->stop)) {
        int64_t end = rtudp_idlepoller_round(&r->gate);
        if (end) {
            atomic_fetch_add(&r->naps, 1);
            if (end > atomic_load(&r->latest_end))
                atomic_store(&r->latest_end, end);
        }
    }
    atomic_store(&r->exited, 1);
    return NULL;
}

static void start(struct poller_run *r)
{
    atomic_init(&r->gate.park, 0u);
    atomic_init(&r->gate.waiting, 0u);
    atomic_init(&r->gate.until_ns, 0);
    r->p = (struct rtudp_idlepoller){.gate = &r->gate};
    atomic_init(&r->stop, 0);
    atomic_init(&r->exited, 0);
    atomic_init(&r->naps, 0);
    atomic_init(&r->latest_end, 0);
    CHECK(pthread_create(&r->thread, NULL, poll_loop, r) == 0);
}

static void finish(struct poller_run *r)
{
    atomic_store(&r->stop, 1);
    /* parks that end at once wake a waiting loop to see `stop` (again and again: one
     * it read before `stop` was set finds the loop waiting for the next) */
    while (!atomic_load(&r->exited)) {
        rtudp_idlepoller_open(&r->p, 0);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    CHECK(pthread_join(r->thread, NULL) == 0);
}

/* until the poller waits on its gate, having napped more than `naps` times first
 * (-1: whatever it did): `waiting` is set only after a park's last nap, and stays set
 * from the wait before a park until the poller wakes for it (a bound: STEP_TIMEOUT_S) */
static void await_waiting(struct poller_run *r, long naps)
{
    int64_t give_up = rtudp_now_ns() + (int64_t)STEP_TIMEOUT_S * 1000000000LL;
    while (!(atomic_load(&r->naps) > naps && atomic_load(&r->gate.waiting))) {
        CHECK(rtudp_now_ns() < give_up);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

static long naps_over(struct poller_run *r, long ms)
{
    long before = atomic_load(&r->naps);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
    return atomic_load(&r->naps) - before;
}

static void test_closed_gate_waits_without_napping(void)
{
    struct poller_run r;
    start(&r);
    await_waiting(&r, -1);
    CHECK_EQ(naps_over(&r, 20), 0);
    finish(&r);
}

static void test_naps_end_by_the_park_end_then_it_waits(void)
{
    struct poller_run r;
    start(&r);
    await_waiting(&r, -1);
    int64_t until = rtudp_now_ns() + 30 * NS_PER_MS;
    rtudp_idlepoller_open(&r.p, until);
    /* the gate stays open (the worker has not woken to close it): the poller still
     * stops at the park's end */
    await_waiting(&r, 0);
    CHECK(rtudp_now_ns() >= until - 2000); /* not before its end (less than a nap's minimum) */
    CHECK(atomic_load(&r.naps) >= 1);
    CHECK(atomic_load(&r.latest_end) <= until); /* no nap reached past it */
    CHECK_EQ(naps_over(&r, 20), 0);
    /* the next park wakes it, the gate closed in between as the TX thread does */
    rtudp_idlepoller_close(&r.p);
    int64_t next = rtudp_now_ns() + 20 * NS_PER_MS;
    long naps = atomic_load(&r.naps);
    rtudp_idlepoller_open(&r.p, next);
    await_waiting(&r, naps);
    CHECK(atomic_load(&r.latest_end) <= next);
    CHECK(atomic_load(&r.latest_end) > until);
    finish(&r);
}

static void test_a_park_opened_again_without_a_close_is_a_new_park(void)
{
    struct poller_run r;
    start(&r);
    await_waiting(&r, -1);
    rtudp_idlepoller_open(&r.p, rtudp_now_ns() + 5 * NS_PER_MS);
    await_waiting(&r, 0);
    long naps = atomic_load(&r.naps);
    int64_t next = rtudp_now_ns() + 10 * NS_PER_MS;
    rtudp_idlepoller_open(&r.p, next); /* no close since: `park` moves on anyway */
    await_waiting(&r, naps);
    CHECK(atomic_load(&r.latest_end) <= next);
    finish(&r);
}

static void test_a_park_already_over_is_not_napped(void)
{
    struct poller_run r;
    start(&r);
    await_waiting(&r, -1);
    rtudp_idlepoller_open(&r.p, rtudp_now_ns() - 1000);
    CHECK_EQ(naps_over(&r, 20), 0);
    finish(&r);
}

/* process `pid`'s state letter in /proc (S sleeping, T stopped, ...); '?' if unread */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    return paren && paren[1] == ' ' ? paren[2] : '?';
}

/* until `pid` is stopped (want 1) or not (0); a bound: STEP_TIMEOUT_S */
static int await_stopped(pid_t pid, int want)
{
    int64_t give_up = rtudp_now_ns() + (int64_t)STEP_TIMEOUT_S * 1000000000LL;
    while ((proc_state(pid) == 'T') != want) {
        if (rtudp_now_ns() >= give_up)
            return 0;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return 1;
}

static void test_a_resting_workers_poller_is_stopped_then_continued(void)
{
    struct rtudp_idlepoller p = {0};
    rtudp_idlepoller_rest(&p, 1); /* none runs: nothing */
    CHECK_EQ(p.stopped, 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed check leaves none behind */
        for (;;)
            pause();
    }
    p.pid = child;
    rtudp_idlepoller_rest(&p, 1);
    CHECK_EQ(p.stopped, 1);
    CHECK(await_stopped(child, 1));
    rtudp_idlepoller_rest(&p, 1); /* already: no signal, still stopped */
    CHECK_EQ(p.stopped, 1);
    rtudp_idlepoller_rest(&p, 0);
    CHECK_EQ(p.stopped, 0);
    CHECK(await_stopped(child, 0));
    rtudp_idlepoller_rest(&p, 1); /* and again, as each rest does */
    CHECK(await_stopped(child, 1));
    kill(child, SIGKILL); /* a stopped poller dies as a running one (its worker's exit) */
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static const struct test tests[] = {
    T(test_closed_gate_waits_without_napping),
    T(test_naps_end_by_the_park_end_then_it_waits),
    T(test_a_park_opened_again_without_a_close_is_a_new_park),
    T(test_a_park_already_over_is_not_napped),
    T(test_a_resting_workers_poller_is_stopped_then_continued),
};

HARNESS_MAIN(tests)
