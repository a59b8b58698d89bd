/*
 * spin.h - how long the TX thread spins before a deadline, and how much it may.
 *
 * A futex sleep ends late by a varying amount, more on a VM, at times by far more.
 * The TX thread therefore parks until `margin` before a deadline and spins the
 * rest.  The margin follows a high percentile of the wake-up lateness it has seen
 * recently, clamped to [min, max].  Spinning is capped by a budget per window (e.g.
 * 10 % of each second): a SCHED_FIFO thread that spins past the kernel's RT
 * throttle is stopped for tens of ms, far worse than a late wake, and on a small
 * machine it starves everything else.  Once the budget is spent the thread sleeps
 * to the deadline itself until the next window.  The RT throttle counts all the
 * worker's CPU time, sends and the loopback delivery they carry included, not only
 * the spinning: so a SCHED_FIFO worker stops spinning at SCHED_FIFO once its CPU
 * time in the window passes RTUDP_SPIN_CPU_CAP_PERMILLE of it, whatever budget is
 * left; the TX thread may spin the rest of its budget as SCHED_OTHER, which the
 * throttle does not count (sched.c, rtudp_pacer_rt_demote).
 *
 * Pure bookkeeping (no clock reads, no shared memory): the caller passes times in.
 */
#ifndef RTUDP_SPIN_H
#define RTUDP_SPIN_H

#include <stdint.h>

#define RTUDP_SPIN_SAMPLES 128      /* wake-ups the margin is computed from */
#define RTUDP_SPIN_UPDATE_EVERY 8   /* recompute after this many new samples */
#define RTUDP_SPIN_PERCENTILE 99    /* of the samples: the margin covers this share */
#define RTUDP_SPIN_SLACK_NS 2000    /* added to the percentile: the spin loop's own step */
/* the spin budget is in thousandths of a CPU, up to all of it (1000: spin before
 * every deadline), since what the RT throttle would not allow is spun at SCHED_OTHER;
 * its default and range: tunables.h (spin_budget).  A worker spins only what its
 * deadlines need, so a generous budget costs little where deadlines are few */
/* the budget is per window this long: short, so a spent budget costs precision for a
 * few ms, not for the rest of a second */
#define RTUDP_SPIN_WINDOW_NS 20000000LL
/* no spinning once the worker used this share of the window's CPU time (the throttle
 * stops SCHED_FIFO threads at 95 %, sched_rt_runtime_us's default), and a worker that
 * cannot drop to SCHED_OTHER keeps its CPU time under a pace that ends here
 * (rtudp_spin_ahead_of_pace): the tasks sharing its CPU get the rest, 12 %, well over
 * the 5 % the fair server stands up for, so it never has to
 * (tests/test_no_rt_throttle.py).
 * The capped sleeps are paced through the window, so the CPU their wake-ups cost
 * counts in this share rather than on top of it; higher leaves others too little,
 * lower spins less than the throttle allows (docs/measurements.md) */
#define RTUDP_SPIN_CPU_CAP_PERMILLE 880
/* a gap up to this share of a sleep's CPU cost is spun rather than slept (at most
 * twice the CPU time, for a deadline kept instead of missed) */
#define RTUDP_SPIN_BRIDGE_PERCENT 200
/* before any sleep was measured */
#define RTUDP_SPIN_SLEEP_CPU_START_NS 10000
/* A park this long lets the vCPU halt for long, and the wake-ups from such halts have
 * a tail past the margin (the p99 of all wake-ups, most of them from short parks): it
 * ends the largest margin (max_ns) before its deadline, as a C loop that parks to a
 * fixed margin before each slot does (docs/measurements.md at d3e5a6a, "the margin of long
 * parks").  Shorter would spin longer before more deadlines; as it is, the extra spin
 * costs at most a tenth of the time parked (max_ns against this). */
#define RTUDP_SPIN_LONG_PARK_NS 2000000LL

struct rtudp_spin {
    int64_t margin_ns;      /* park until deadline - margin_ns */
    int64_t min_ns;
    int64_t max_ns;
    int64_t budget_ns;      /* spin allowed per window */
    int64_t window_ns;
    int64_t window_start;
    int64_t window_spent;
    int64_t window_cpu;     /* the worker's CPU time when the window started; -1 = none yet */
    uint64_t total_ns;      /* all spinning ever (workers[].spin_ns) */
    uint64_t over_budget;   /* times a spin was refused for lack of budget */
    int64_t sleep_cpu_ns;   /* CPU time a timed sleep costs this thread (EWMA; spin.c) */
    int64_t samples[RTUDP_SPIN_SAMPLES];
    uint32_t n_samples;     /* filled entries, up to RTUDP_SPIN_SAMPLES */
    uint32_t next;          /* where the next sample goes */
    uint32_t since_update;
};

void rtudp_spin_init(struct rtudp_spin *s, int64_t start_ns, int64_t min_ns, int64_t max_ns,
                     int64_t budget_ns, int64_t window_ns, int64_t now);
/* a timed park ended late_ns after the time it asked for (< 0 counts as 0) */
void rtudp_spin_wake(struct rtudp_spin *s, int64_t late_ns);
/* a timed sleep cost cpu_ns of this thread's CPU time, from going to sleep to running
 * again (on a VM most of it is the wake-up) */
void rtudp_spin_sleep_cost(struct rtudp_spin *s, int64_t cpu_ns);
/* whether a gap of gap_ns to a deadline is better spun than slept, budget or not: a
 * sleep would end after the deadline (the gap is within the margin) and the spin costs
 * at most RTUDP_SPIN_BRIDGE_PERCENT of the CPU time the sleep would; never with a
 * budget of 0 */
int rtudp_spin_bridges(const struct rtudp_spin *s, int64_t gap_ns);
/* whether a park before a deadline gap_ns away is a long one (RTUDP_SPIN_LONG_PARK_NS
 * or more): it ends max_ns early, which also holds a halted vCPU's wake-up (idlepoller.h) */
int rtudp_spin_long_park(int64_t gap_ns);
/* whether the idle poller may nap through a park (idlepoller.h): a park of at least
 * long_ns, unless it ends before a deadline gap_ns away that the worker will spin to
 * (`spun`) from a long park's early end, which a halted vCPU's late wake-up fits in */
int rtudp_spin_park_naps(int64_t park_ns, int64_t long_ns, int spun, int64_t gap_ns);
/* how long before a deadline gap_ns away a park should end: the margin, or max_ns for
 * a long park */
int64_t rtudp_spin_margin(const struct rtudp_spin *s, int64_t gap_ns);
/* spin nanoseconds still allowed in the current window (starts a new one if due):
 * the budget left, and when `capped` (a SCHED_FIFO spin) no more than the CPU cap
 * leaves; cpu_now is the worker's CPU time (CLOCK_PROCESS_CPUTIME_ID) */
int64_t rtudp_spin_room(struct rtudp_spin *s, int64_t now, int64_t cpu_now, int capped);
/* 1 when the current window is over (or none began): the next rtudp_spin_room
 * starts one */
int rtudp_spin_window_due(const struct rtudp_spin *s, int64_t now);
/* CPU time the worker may still use at SCHED_FIFO in the current window (the cap) */
int64_t rtudp_spin_cpu_room(const struct rtudp_spin *s, int64_t cpu_now);
/* 1 when the worker's CPU time in the current window (cpu_now: its CPU clock) runs
 * ahead of a pace that starts RTUDP_SPIN_PACE_SLACK_NS up and reaches the cap at the
 * window's end: a worker that must leave its CPU in capped sleeps takes one now */
#define RTUDP_SPIN_PACE_SLACK_NS 500000LL /* a burst may run this far ahead of the pace */
int rtudp_spin_ahead_of_pace(const struct rtudp_spin *s, int64_t now, int64_t cpu_now);
/* the one real-time cap rule, for both threads: the worker's CPU time `used` in the
 * first `gone` ns of a window of window_ns runs ahead of that pace */
int rtudp_cap_ahead(int64_t gone, int64_t used, int64_t window_ns);

/*
 * One turn past the cap, in sleeps of `piece` ns (`base`, or longer for a task that
 * shares the CPU: cpushare.h), with the next deadline `gap` ns away (0 or less: due):
 * how long to sleep, or 0 to send that deadline first (spun to, if not yet due) and
 * sleep the next turn.
 *
 * A sleep of the base piece ends at the next deadline if that comes first: only that
 * packet is late, by the wake-up's lateness.  A fixed piece, wherever it falls, holds
 * every packet due in it up to its whole length plus that, and makes more packets
 * late (docs/measurements.md at d3e5a6a, "Capped sleeps that end at the next deadline").  A
 * deadline nearer than RTUDP_SPIN_CAPPED_GAP_MIN_NS (the one after a wake-up,
 * typically) is sent first, so that the sleep spans the whole gap after it: a sleep
 * that short leaves the CPU to nobody for longer than it holds the packet back.  Never
 * twice in a row (*sent_first remembers): a backlog, due turn after turn, still sleeps
 * every other turn.  Longer pieces keep their length: the task they are for needs
 * them whole.
 */
#define RTUDP_SPIN_CAPPED_GAP_MIN_NS 10000LL
int64_t rtudp_spin_capped_sleep(int64_t gap, int64_t piece, int64_t base, int *sent_first);
/* ns were spent spinning */
void rtudp_spin_used(struct rtudp_spin *s, int64_t ns);

#endif /* RTUDP_SPIN_H */
