/*
 * pacer_rt.c - the TX thread's real-time policy: probed at start, left for SCHED_OTHER
 * to spin past the RT cap (a demotion), and taken back (pacer.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pacer.h"

/*
 * Spinning past the RT throttle.  A SCHED_FIFO thread that holds its CPU for more
 * than sched_rt_runtime_us of a period is stopped for the rest of it (tens of ms),
 * so the TX thread works at SCHED_FIFO only up to the CPU cap (spin.h).  When the
 * pool's spin budget allows more than that, or nobody else wants the CPU (cpushare.h),
 * the thread drops to SCHED_OTHER at nice -20 for the rest of the window and goes on
 * there: the throttle does not count that time, and ordinary tasks on the CPU still
 * get their fair share, so nothing starves.  It goes back to SCHED_FIFO when the next
 * window starts, and before serving commands (txloop.c).
 *
 * If another task does take the CPU meanwhile (it shares the worker's CPU: pinned
 * there, or more busy tasks than CPUs), a slice of it costs up to milliseconds, far
 * worse than sleeping at SCHED_FIFO: the guard (guard.h) gives the thread SCHED_FIFO
 * back soon after the switch, or within RTUDP_GUARD_NS where it has to watch on a
 * timer (without a guard the thread notices once it runs again), and it does not drop
 * again for a backoff, doubled at each such preemption, so a task that stays costs
 * one cut-short slice every DEMOTE_BACKOFF_MAX_NS.
 *
 * sched_setattr sets policy and nice in one call and applies to the calling thread
 * only (the RX thread stays SCHED_FIFO).
 */
#define DEMOTE_BACKOFF_MIN_NS 100000000LL
#define DEMOTE_BACKOFF_MAX_NS 5000000000LL
#define DEMOTE_BACKOFF_RESET_NS 10000000000LL
/* a spin step longer than this while demoted: the thread lost its CPU */
#define DEMOTE_LOST_NS 100000LL

struct rtudp_sched_attr { /* the kernel's struct sched_attr, SCHED_ATTR_SIZE_VER0 */
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
};

static int set_attr(int policy, int nice, int prio)
{
    struct rtudp_sched_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.sched_policy = (uint32_t)policy;
    a.sched_nice = nice;
    a.sched_priority = (uint32_t)prio;
    return (int)syscall(SYS_sched_setattr, 0, &a, 0u);
}

void rtudp_pacer_rt_probe(struct rtudp_pacer *p)
{
    struct sched_param sp = {0};
    int policy = sched_getscheduler(0);
    p->rt_policy = 0;
    p->demoted = 0;
    if ((policy != SCHED_FIFO && policy != SCHED_RR) || sched_getparam(0, &sp) != 0)
        return;
    /* coming back needs the same right as getting there (CAP_SYS_NICE or an
     * RLIMIT_RTPRIO): setting what we have proves it */
    if (set_attr(policy, 0, sp.sched_priority) != 0)
        return;
    p->rt_policy = policy;
    p->rt_priority = sp.sched_priority;
}

int rtudp_pacer_rt_may_demote(const struct rtudp_pacer *p, int64_t now)
{
    return p->rt_policy && now >= p->no_demote_until && rtudp_pacer_on(p, RTUDP_MECH_DEMOTE);
}

int rtudp_pacer_rt_demote(struct rtudp_pacer *p, int64_t now, int64_t window)
{
    if (!rtudp_pacer_rt_may_demote(p, now))
        return -1;
    if (p->demoted)
        return 0;
    /* the backoff grows with each preemption, and starts over once none came for a
     * while: a task that came and went costs a few slices, not demotions for good */
    if (p->demote_backoff_ns && now - p->no_demote_until > DEMOTE_BACKOFF_RESET_NS)
        p->demote_backoff_ns = 0;
    /* nice -20 needs CAP_SYS_NICE or an RLIMIT_NICE; nice 0 still spins, just with less
     * weight against other tasks */
    if (set_attr(SCHED_OTHER, -20, 0) != 0 && set_attr(SCHED_OTHER, 0, 0) != 0)
        return -1;
    p->demoted = 1;
    rtudp_guard_arm(&p->guard, now);
    p->demoted_window = window;
    p->demotions++;
    p->demoted_csw = rtudp_hostpause_switches(NULL); /* another task took the CPU */
    p->demoted_gap = 0;
    return 0;
}

void rtudp_pacer_rt_check(struct rtudp_pacer *p, int64_t now)
{
    if (!p->demoted)
        return;
    if (rtudp_guard_ready(&p->guard)) {
        /* the guard gave the thread its policy back: another task had the CPU (guard.h;
         * its own wake-ups are switches too, so the test below would not do) */
        if (!rtudp_guard_took_back(&p->guard))
            return;
    } else if (p->demoted_gap <= DEMOTE_LOST_NS || rtudp_hostpause_switches(NULL) == p->demoted_csw)
        return; /* both: per-CPU kernel threads the SCHED_FIFO spin held off run for
                 * microseconds once the thread drops, and the host's hiccups stop it
                 * without a switch */
    rtudp_pacer_rt_restore(p);
    rtudp_share_someone(&p->share);
    p->demote_preempted++;
    p->demote_backoff_ns = p->demote_backoff_ns ? p->demote_backoff_ns * 2
                                                : DEMOTE_BACKOFF_MIN_NS;
    if (p->demote_backoff_ns > DEMOTE_BACKOFF_MAX_NS)
        p->demote_backoff_ns = DEMOTE_BACKOFF_MAX_NS;
    p->no_demote_until = now + p->demote_backoff_ns;
}

void rtudp_pacer_rt_restore(struct rtudp_pacer *p)
{
    if (!p->demoted)
        return;
    rtudp_guard_disarm(&p->guard);
    if (set_attr(p->rt_policy, 0, p->rt_priority) != 0) {
        /* the right went away (an rlimit lowered from outside): stay SCHED_OTHER, and
         * stop demoting, since the cap does not apply to an ordinary thread */
        fprintf(stderr, "rtudp-worker %u: warning: cannot return to real-time priority %d: "
                        "%s; the TX thread stays SCHED_OTHER\n", p->id, p->rt_priority,
                strerror(errno));
        p->rt_policy = 0;
    }
    p->demoted = 0;
}
