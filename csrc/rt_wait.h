/*
 * rt_wait.h - a thread that waits in rtudp at real-time priority, within a CPU budget.
 *
 * A thread at normal priority wakes when the scheduler lets it: beside a busy task on
 * its CPU that can be a whole time slice, milliseconds.  A thread that opts in sleeps
 * in rtudp's waits (ring waits, a direct reader's wait on its socket) at SCHED_FIFO,
 * so the datagram's wake-up preempts any normal task; and it stays real-time after
 * the wake-up, so the answer it computes and sends does not queue behind that task
 * either.
 *
 * The budget bounds what this costs everyone else.  A CPU-time timer of the thread's
 * own, re-armed each time it sleeps in a wait, puts it back to the policy it had
 * before once it has used budget_ns of CPU without sleeping there: a thread busy with
 * other work, or one that always finds data waiting, runs at its own priority until it
 * next sleeps in a wait.  The kernel looks at CPU-time timers at its tick, so the
 * thread may run up to a tick past the budget.  The timer signals SIGXCPU to the thread; the handler is
 * installed process-wide on the first enter and passes any other SIGXCPU (RLIMIT_CPU's)
 * to the disposition it found.
 *
 * The real-time policy carries SCHED_RESET_ON_FORK, and a forked child leaves the
 * mode: children start at normal priority.  One mode per thread; leave restores the
 * policy the thread had at enter.
 */
#ifndef RTUDP_RT_WAIT_H
#define RTUDP_RT_WAIT_H

#include <stdint.h>

#include "ring.h"

#define RTUDP_RT_WAIT_MIN_BUDGET_NS 100000LL       /* a CPU-time timer's useful floor */
#define RTUDP_RT_WAIT_MAX_BUDGET_NS 1000000000LL   /* the RT throttle's period */

struct rtudp_rt_wait_counts {
    int on;              /* this thread is in the mode */
    int realtime;        /* and at its real-time priority right now */
    int priority;        /* that priority */
    int64_t budget_ns;
    uint64_t demotions;  /* times the budget ran out */
    uint64_t promotions; /* times a sleep in a wait made it real-time again */
};

/* Enter the mode for the calling thread: RTUDP_OK; RTUDP_EINVAL (why filled) for a
 * priority outside SCHED_FIFO's range, a budget outside the bounds above, or the mode
 * on already; RTUDP_ESYS (why filled, errno kept) when SCHED_FIFO is not permitted or
 * the timer cannot be made. */
int rtudp_rt_wait_enter(int priority, int64_t budget_ns, struct rtudp_check *why);

/* Leave it: the policy of enter back.  RTUDP_OK, or RTUDP_ESYS (why filled) when that
 * policy cannot be restored; the mode is off either way. */
int rtudp_rt_wait_leave(struct rtudp_check *why);

void rtudp_rt_wait_counts(struct rtudp_rt_wait_counts *out);

#endif
