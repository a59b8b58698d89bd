/*
 * hostpause.h - the host stopping the worker's vCPU, told apart from a task taking it.
 *
 * On a virtual machine the host may stop a vCPU for milliseconds: nothing in the guest
 * runs meanwhile, no trace event marks it, and the guest's steal time shows only part
 * of it (docs/measurements.md at d3e5a6a, "The host stops busy vCPUs").  Such pauses decide a
 * run's tail and its maximum, so the worker counts them: a demo or benchmark that
 * missed its target can then say it was the host.
 *
 * Where: a step of the TX thread's spin (spin_to in txloop.c), a loop of clock reads
 * and ring checks with nothing in it that could take RTUDP_HOST_PAUSE_MIN_NS.  A step
 * that long means the thread did not run: another task took the CPU (an involuntary
 * context switch: the RT throttle, the fair server, a higher priority, or, demoted, any
 * task), or nothing in the guest did, and the vCPU was stopped.  The thread's count of
 * involuntary switches (getrusage, a system call) tells which.  It is read only when
 * such a step comes and once per heartbeat (the baseline), never per step: a switch
 * since the baseline makes a pause count as a task's (an undercount, never a false
 * host pause).  A long interrupt in the guest would count as the host's; none, the
 * scheduler tick's included, comes near RTUDP_HOST_PAUSE_MIN_NS.
 *
 * Stalls outside a spin (in a system call, in the loop's own work) are seen over the
 * intervals between two reads of the process's CPU clock (pacer.c reads it every
 * CPU_READ_EVERY_NS while the thread works): when the TX thread had no context switch at
 * all in one, voluntary or not, nothing else of this machine ran on its CPU, and the
 * wall time its CPU clock did not count is the host's.  The guest's own interrupts
 * count as the task's CPU time on a kernel without IRQ_TIME_ACCOUNTING; a stopped vCPU
 * does not (PARAVIRT_TIME_ACCOUNTING takes it out as steal: docs/measurements.md at d3e5a6a, "The
 * host stops busy vCPUs").  What a spin step already counted in
 * the interval is not counted twice.
 *
 * The judging is pure bookkeeping (tests/c/test_worker_units.c); reading the counts is
 * rtudp_hostpause_switches.
 */
#ifndef RTUDP_HOSTPAUSE_H
#define RTUDP_HOSTPAUSE_H

#include <stdint.h>

#define RTUDP_HOST_PAUSE_MIN_NS 250000LL /* a spin step this long: the thread did not run */

struct rtudp_hostpause {
    long switches;      /* the thread's involuntary context switches at the baseline */
    long all_switches;  /* its switches of both kinds at the last interval's mark; -1: none */
    uint64_t pause_ns_at_mark; /* pause_ns then */
    uint64_t pauses;    /* steps judged the host's */
    uint64_t pause_ns;  /* their total length */
    int64_t max_ns;     /* the longest */
    uint64_t taken;     /* steps judged another task's */
};

/* the calling thread's involuntary context switches so far (-1: not known); with
 * `all`, also its voluntary ones there */
long rtudp_hostpause_switches(long *all);

/* a new baseline: the count of involuntary switches now */
void rtudp_hostpause_baseline(struct rtudp_hostpause *h, long switches);

/* A spin step of `step_ns` >= RTUDP_HOST_PAUSE_MIN_NS, with `switches` the count read
 * after it: counts it as the host's (returns 1) when the count has not moved since the
 * baseline, else as a task's (0); either way the count becomes the new baseline.  An
 * unknown count (-1) judges nothing. */
int rtudp_hostpause_judge(struct rtudp_hostpause *h, int64_t step_ns, long switches);

/* An interval between two reads of the process's CPU clock: `wall_ns` long, of which
 * the clock counted `cpu_ns`; `all_switches` and `switches` are the thread's context
 * switches (both kinds, involuntary) read at its end.  With no switch since the last
 * mark, the uncounted time (less what spin steps counted meanwhile) of at least
 * RTUDP_HOST_PAUSE_MIN_NS is a host pause (returns 1).  Either way the end is the new
 * mark, and the baseline of the spin steps' judge. */
int rtudp_hostpause_interval(struct rtudp_hostpause *h, int64_t wall_ns, int64_t cpu_ns,
                             long all_switches, long switches);

#endif
