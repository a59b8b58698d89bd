/*
 * guard.h - takes the CPU back for a TX thread that spins at SCHED_OTHER.
 *
 * Past its RT cap the TX thread may go on at SCHED_OTHER (sched.c, rtudp_pacer_rt_demote):
 * the RT throttle does not count that time.  But an ordinary task that wakes on the
 * worker's CPU then competes with it as an equal, and once the scheduler gives it the
 * CPU it keeps it for a whole slice: up to a scheduler tick (4 ms at HZ=250), every
 * packet due meanwhile late by that much.  The TX thread cannot end that itself: it is
 * not running.
 *
 * The guard is a third thread of the worker, at the worker's real-time priority, that
 * sleeps on a futex while the TX thread is real-time.  While it is demoted the guard
 * watches it, one of two ways:
 *
 * - switches (the way it takes when the kernel lets it): a perf software event counts
 *   the TX thread's context switches and signals the guard (SIGIO, to the guard's
 *   thread alone) at each one.  A switch that left the TX thread runnable, not asleep
 *   (/proc: state R), is another task taking its CPU; the guard naps
 *   RTUDP_GUARD_RECHECK_NS and, if the TX thread has not run since (its CPU clock),
 *   gives it its real-time policy back, which preempts that task at once.  A park the
 *   thread announced (its beat) is looked at once it should have ended: a thread that
 *   wakes behind another task is not switched out, so no signal says it waits.
 *   Nothing else wakes the guard while the TX thread keeps its CPU: on a VM each of
 *   the timer way's wake-ups (below) takes the CPU from the spinning thread for a
 *   while, and together they make a large share of a spinning worker's late packets.
 *   A take-back comes as soon as the signal's self-interrupt lets it, well before the
 *   timer way's (docs/measurements.md).
 * - a timer (no perf events: an unprivileged worker, or a kernel without them): the
 *   guard wakes every RTUDP_GUARD_NS (a wake-up preempts any ordinary task: it is
 *   real-time) and looks at the TX thread's beat, which the TX thread stores as it
 *   works (and, before it parks, the time it means to wake at).  A beat older than
 *   RTUDP_GUARD_NS, and still as old after a nap of RTUDP_GUARD_RECHECK_NS: another
 *   task has the CPU, and the guard takes it back as above.
 *
 * Either way the TX thread learns of it (rtudp_guard_took_back) and counts it as a
 * preemption (sched.c: a backoff before it drops again).
 */
#ifndef RTUDP_GUARD_H
#define RTUDP_GUARD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* the timer way: a TX thread silent this long while demoted has lost its CPU (the
 * longest stall an ordinary task can cause then, against a scheduler tick without the
 * guard).  Longer than anything the TX thread does between beats (a sendmmsg of a full
 * batch: docs/measurements.md), which a shorter one would take for a lost CPU */
#define RTUDP_GUARD_NS 250000LL
/* the guard's own wake-up this late: the host stopped the vCPU (a stall of the whole
 * VM, not another task), and the TX thread's silence says nothing */
#define RTUDP_GUARD_LATE_NS 100000LL
/* a silent TX thread gets this long more, the guard asleep, before the guard acts:
 * after a stall of the host the CPU goes back to it then */
#define RTUDP_GUARD_RECHECK_NS 30000LL

#define GUARD_IDLE 0u  /* the TX thread is real-time: the guard waits on the futex */
#define GUARD_ARMED 1u /* it is demoted: the guard watches it */
#define GUARD_STOP 2u  /* the worker exits */

#define GUARD_WAY_STARTING 0u
#define GUARD_WAY_TIMER 1u
#define GUARD_WAY_SWITCHES 2u
/* a judgement looks this many times at most (guard.c, judge) */
#define RTUDP_GUARD_JUDGE_ROUNDS 4

enum rtudp_guard_way {
    RTUDP_GUARD_SWITCHES, /* watch context switches if the kernel lets us, else a timer */
    RTUDP_GUARD_TIMER,    /* a timer only (tests of that way) */
};

struct rtudp_guard {
    pthread_t thread;
    int running;
    pid_t tx_tid;             /* the thread it guards */
    int policy, priority;     /* what it gives that thread back */
    atomic_uint armed;        /* GUARD_*: the futex word */
    atomic_uint took_back;    /* set by the guard when it restored the policy */
    _Atomic int64_t beat_ns;  /* the TX thread's last sign of life (or planned wake) */
    _Atomic uint64_t promotions; /* times it restored the policy */
    _Atomic uint64_t failures;   /* ... and failed to (the thread stays SCHED_OTHER) */
    int64_t silent_ns, late_ns; /* RTUDP_GUARD_NS, RTUDP_GUARD_LATE_NS (tests: others) */
    int switch_fd;            /* perf event: the TX thread's context switches; -1 = timer */
    int stat_fd;              /* the TX thread's /proc stat (its state) */
    clockid_t tx_clock;       /* the TX thread's CPU clock */
    atomic_uint way;          /* GUARD_WAY_*: how the guard watches, once it started */
    /* the guard thread's own */
    uint64_t switches_seen;   /* the switch count it has looked at */
    int64_t park_check_at;    /* when an announced park has had time to end; 0 = none */
    int64_t park_runtime;     /* the TX thread's CPU time as it parked */
};

/* starts the guard for the calling thread (the TX thread), which must be at its
 * real-time policy: the guard inherits it.  -1 (and a message) if it cannot start:
 * the worker then never demotes (rtudp_guard_ready says so) */
int rtudp_guard_start(struct rtudp_guard *g, int policy, int priority, enum rtudp_guard_way way);
/* 1 when the guard watches switches (else it wakes on a timer) */
static inline int rtudp_guard_watches_switches(struct rtudp_guard *g)
{
    return atomic_load_explicit(&g->way, memory_order_acquire) == GUARD_WAY_SWITCHES;
}
void rtudp_guard_stop(struct rtudp_guard *g);
static inline int rtudp_guard_ready(const struct rtudp_guard *g)
{
    return g->running;
}

/* the TX thread, as it is demoted (now: its beat) and restored */
void rtudp_guard_arm(struct rtudp_guard *g, int64_t now);
void rtudp_guard_disarm(struct rtudp_guard *g);
/* the TX thread is alive at `ns` (or means to be: a park's end) */
static inline void rtudp_guard_beat(struct rtudp_guard *g, int64_t ns)
{
    atomic_store_explicit(&g->beat_ns, ns, memory_order_relaxed);
}
/* 1 once if the guard restored the TX thread's policy since it was armed */
int rtudp_guard_took_back(struct rtudp_guard *g);

#endif /* RTUDP_GUARD_H */
