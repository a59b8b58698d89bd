/*
 * cpushare.h - does another task on the worker's CPU get too little of it?
 *
 * A busy worker is on its CPU nearly all the time (it spins across gaps too short to
 * sleep).  Past the RT cap it leaves the CPU in short sleeps.  On a VM a switch to
 * another process and back takes most of such a sleep, so it gives a task that shares
 * the CPU almost nothing: a CPU-bound one (a `while :` loop, a Python reader with a
 * backlog) then starves, and the kernel's fair server takes the CPU from the
 * SCHED_FIFO worker for its whole runtime at once (by default 50 ms of each second)
 * to give it its share.  Longer sleeps leave such a task enough that the fair server
 * stays out (docs/measurements.md at d3e5a6a, "A task sharing the worker's CPU").
 *
 * So once per window the TX thread looks at how the last window's time was spent:
 * its process's CPU time, the CPU's idle time (cpuidle's per-state residency, in us),
 * and the rest, which other tasks (or the host) had, each averaged over the last
 * looks (an EWMA of 1/RTUDP_SHARE_EWMA_DIV: single windows swing, a reader that drains
 * every few ms fills some to the last us and leaves the next ones idle).  Others got
 * under RTUDP_SHARE_OTHERS_MIN_PERMILLE while the CPU hardly idled: they want more
 * than they get, and the CPU is "contended": each such look lengthens the capped sleeps by
 * RTUDP_SHARE_STEP_NS, up to RTUDP_SHARE_MAX_SLEEP_NS.  Each look with idle time to
 * spare (they had enough) shortens them again, down to the base; at the base the CPU
 * counts as not contended.  The sleeps only grow as long as others need them to: a
 * reader that needs a little more (the demo's) stops them between the base and the
 * maximum, a busy loop at the maximum (spin.h, rtudp_spin_capped_sleep).  No cpuidle
 * driver: the idle time is what neither the worker nor others had, others' time timed
 * from the scheduler's switches (cputrace.h); with neither source, never contended and
 * never alone.
 *
 * rtudp_share_look is pure bookkeeping (tests/c/test_worker_units.c); the reader of the
 * idle time is separate.
 */
#ifndef RTUDP_CPUSHARE_H
#define RTUDP_CPUSHARE_H

#include <stdint.h>

#include "cputrace.h"

/* others under 6 % of a window ...: the fair server stands up for ordinary tasks that
 * get under its 5 % of a second, so a starving task shows before it does.  Not much
 * more: the paced capped sleeps already give a busy loop a share near this bound, and
 * a higher one grows the sleeps (and the worker's latency) for a loop that does not
 * need them (docs/measurements.md) */
#define RTUDP_SHARE_OTHERS_MIN_PERMILLE 60
#define RTUDP_SHARE_IDLE_MAX_PERMILLE 5     /* ... and the CPU hardly idle (< 0.5 %) */
#define RTUDP_SHARE_CALM_PERMILLE 20        /* idle at least 2 %: a calm look */
#define RTUDP_SHARE_EWMA_DIV 8              /* each look weighs 1/8 in the averages */
#define RTUDP_SHARE_BASE_SLEEP_NS 30000LL   /* a capped sleep while nobody else waits */
#define RTUDP_SHARE_STEP_NS 10000LL         /* longer or shorter by this a look */
#define RTUDP_SHARE_MAX_SLEEP_NS 60000LL
#define RTUDP_SHARE_MIN_WINDOW_NS 5000000LL /* shorter looks say too little: skipped */
/* others under 3 % in each of the last 8 looks: nobody else wants this CPU.  Single
 * looks, not the average: after a channel's set-up (its client busy on this CPU) the
 * average is slow to fall.  Several of them: a reader that runs in bursts (the demo's)
 * leaves single windows almost wholly to the worker now and then.  3 %, not less: one
 * look's figure has an error of its own (two clocks read apart, the idle loop's own
 * entry and exit, which count as neither idle nor ours; its size:
 * docs/measurements.md).  The host's steal counts as others: a worker whose host takes
 * its vCPU away is not alone either.  A task the worker starves (under 3 %) looks like
 * nobody; past the cap at SCHED_OTHER the worker then gives it its share, and the
 * guard (guard.h) bounds what that costs */
#define RTUDP_SHARE_ALONE_PERMILLE 30
#define RTUDP_SHARE_ALONE_LOOKS 8
#define RTUDP_CPUIDLE_STATES 8

struct rtudp_cpushare {
    int64_t at_ns;            /* CLOCK_MONOTONIC of the last look; 0 = none yet */
    int64_t cpu_ns;           /* the worker's CPU time then */
    int64_t idle_ns;          /* the CPU's idle time then */
    int64_t idle_avg, others_avg; /* averaged shares, in 1/1024ths of a thousandth; -1 = none */
    uint32_t quiet_looks;     /* looks in a row in which others had under the alone share */
    int64_t sleep_ns;         /* a capped sleep's length now (0 before the first look);
                                 longer than the base: the CPU is contended */
    uint64_t contended_looks; /* looks that found (or kept) the CPU contended */
};

/* One look: now, the worker process's CPU time and the CPU's idle time (ns, both
 * monotonic counters).  Returns the state after it (1 = contended); s->sleep_ns is
 * how long a capped sleep is to be. */
int rtudp_share_look(struct rtudp_cpushare *s, int64_t now, int64_t cpu_ns, int64_t idle_ns);

/* 1 when the last looks say nobody else wants this CPU (none yet: 0).  Then the
 * worker may go on past its RT cap at SCHED_OTHER (txloop.c, may_spin): its capped
 * sleeps would serve nobody, and the RT throttle does not count that time. */
int rtudp_share_alone(const struct rtudp_cpushare *s);

/* another task took the CPU from the worker (it spun at SCHED_OTHER: sched.c): not
 * alone, whatever the shares said (a task the worker starves gets as little as the
 * looks' own error), until RTUDP_SHARE_ALONE_LOOKS more quiet looks */
void rtudp_share_someone(struct rtudp_cpushare *s);

/* The idle time of one CPU, from /sys/devices/system/cpu/cpuN/cpuidle/stateK/time, or
 * from the scheduler's switches when the kernel has no cpuidle driver (cputrace.h). */
struct rtudp_cpuidle {
    int fds[RTUDP_CPUIDLE_STATES];
    int n;
    struct rtudp_cputrace trace; /* used when n is 0 */
};

/* where a worker's CPU idle time comes from (the worker slot's idle_source) */
enum rtudp_idle_source {
    RTUDP_IDLE_SOURCE_NONE = 0,
    RTUDP_IDLE_SOURCE_CPUIDLE = 1, /* cpuidle's per-state residency */
    RTUDP_IDLE_SOURCE_SCHED = 2,   /* the scheduler's switches (cputrace.h) */
};

/* opens what the CPU has for the worker process `self_pid` (none is fine:
 * rtudp_cpuidle_ns then says -1) */
void rtudp_cpuidle_open(struct rtudp_cpuidle *c, long cpu, uint32_t self_pid);
void rtudp_cpuidle_close(struct rtudp_cpuidle *c);
enum rtudp_idle_source rtudp_cpuidle_source(const struct rtudp_cpuidle *c);
/* the CPU's idle time so far in ns, or -1 when it cannot be read (or, from the
 * scheduler's switches, once after some went unrecorded); read on that CPU, at `now`
 * with the worker's process CPU time `cpu_ns` (the switches' source needs both) */
int64_t rtudp_cpuidle_ns(struct rtudp_cpuidle *c, int64_t now, int64_t cpu_ns);

#endif
