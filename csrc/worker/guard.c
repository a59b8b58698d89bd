/*
 * guard.c - takes the CPU back for a TX thread that spins at SCHED_OTHER (guard.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "guard.h"
#include "thread.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GUARD_STACK (64 * 1024)

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* a sleep of the guard's, woken late (by more than late_ns): the host stopped the vCPU,
 * the TX thread with it (a real-time wake-up on a CPU that only an ordinary task holds
 * is on time), so its silence says nothing: count it from now (a newer beat stays) */
static void nap_until(struct rtudp_guard *g, int64_t at, int64_t beat)
{
    sleep_until(at);
    int64_t now = mono_ns();
    if (now - at > g->late_ns)
        atomic_compare_exchange_strong_explicit(&g->beat_ns, &beat, now, memory_order_relaxed,
                                                memory_order_relaxed);
}

static void *guard_main(void *arg)
{
    struct rtudp_guard *g = arg;
    int second_look = 0;
    for (;;) {
        unsigned state = atomic_load_explicit(&g->armed, memory_order_acquire);
        if (state == GUARD_STOP)
            break;
        if (state == GUARD_IDLE) {
            second_look = 0;
            syscall(SYS_futex, &g->armed, FUTEX_WAIT_PRIVATE, GUARD_IDLE, NULL, NULL, 0);
            continue;
        }
        int64_t beat = atomic_load_explicit(&g->beat_ns, memory_order_relaxed);
        int64_t now = mono_ns();
        if (now - beat <= g->silent_ns) {
            /* heard from lately, or parked until `beat`: look again silent_ns after the
             * beat, and no later than silent_ns from now (a park may end early, and the
             * thread then has to be watched again) */
            second_look = 0;
            nap_until(g, (beat > now ? now : beat) + g->silent_ns, beat);
            continue;
        }
        /* overdue.  Once more after a short nap: this wake-up preempted whatever ran, and
         * the CPU may go back to the TX thread now (a host stall just ended, or the
         * scheduler prefers the nice -20 thread to the task it had let in) */
        if (!second_look) {
            second_look = 1;
            nap_until(g, now + RTUDP_GUARD_RECHECK_NS, beat);
            continue;
        }
        second_look = 0;
        /* still silent: another task has the CPU.  Disarm first: a TX thread that
         * restored itself meanwhile keeps its own state */
        unsigned armed = GUARD_ARMED;
        if (!atomic_compare_exchange_strong_explicit(&g->armed, &armed, GUARD_IDLE,
                                                     memory_order_acq_rel, memory_order_acquire))
            continue;
        struct sched_param sp = {.sched_priority = g->priority};
        if (sched_setscheduler(g->tx_tid, g->policy, &sp) == 0) {
            atomic_fetch_add_explicit(&g->promotions, 1, memory_order_relaxed);
            atomic_store_explicit(&g->took_back, 1u, memory_order_release);
        } else {
            atomic_fetch_add_explicit(&g->failures, 1, memory_order_relaxed);
        }
    }
    return NULL;
}

int rtudp_guard_start(struct rtudp_guard *g, int policy, int priority)
{
    memset(g, 0, sizeof *g); /* the atomics' zero (GUARD_IDLE) before any thread sees them */
    g->tx_tid = (pid_t)syscall(SYS_gettid);
    g->policy = policy;
    g->priority = priority;
    g->silent_ns = RTUDP_GUARD_NS;
    g->late_ns = RTUDP_GUARD_LATE_NS;
    int e = rtudp_w_thread_start(&g->thread, GUARD_STACK, guard_main, g);
    if (e) {
        fprintf(stderr, "rtudp-worker: cannot start the demotion guard: %s; past its CPU "
                        "cap the TX thread drops to SCHED_OTHER only when the spin budget "
                        "pays for it\n", strerror(e));
        return -1;
    }
    g->running = 1;
    return 0;
}

void rtudp_guard_stop(struct rtudp_guard *g)
{
    if (!g->running)
        return;
    atomic_store_explicit(&g->armed, GUARD_STOP, memory_order_release);
    syscall(SYS_futex, &g->armed, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    pthread_join(g->thread, NULL);
    g->running = 0;
}

void rtudp_guard_arm(struct rtudp_guard *g, int64_t now)
{
    rtudp_guard_beat(g, now);
    atomic_store_explicit(&g->took_back, 0u, memory_order_relaxed);
    atomic_store_explicit(&g->armed, GUARD_ARMED, memory_order_release);
    syscall(SYS_futex, &g->armed, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void rtudp_guard_disarm(struct rtudp_guard *g)
{
    unsigned armed = GUARD_ARMED; /* never over a stop */
    atomic_compare_exchange_strong_explicit(&g->armed, &armed, GUARD_IDLE, memory_order_acq_rel,
                                            memory_order_relaxed);
}

int rtudp_guard_took_back(struct rtudp_guard *g)
{
    if (!atomic_load_explicit(&g->took_back, memory_order_acquire))
        return 0; /* the common case: a load, no write */
    return atomic_exchange_explicit(&g->took_back, 0u, memory_order_acq_rel) != 0;
}
