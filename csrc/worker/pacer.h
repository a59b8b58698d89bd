/*
 * pacer.h - the worker's timing policy: when the TX thread parks, spins or sleeps,
 * and what the real-time cap allows it.
 *
 * One state (struct rtudp_pacer, the TX thread's) and its decisions (pacer.c):
 *   rtudp_pacer_plan      the next deadline and the first timeout -> park until,
 *                         spin to, or both; or send it now, early (coalesce)
 *   rtudp_pacer_capped    past the real-time cap this turn? (then a capped sleep,
 *                         rtudp_pacer_capped_sleep_ns long, or the near deadline first)
 *   rtudp_pacer_may_spin  a spin of so long allowed now (budget, cap, a drop below
 *                         real time)
 * and what it learns from (observe): the wake-ups' lateness and CPU cost (spin.h),
 * the spins' length, the CPU's share (cpushare.h), the host's pauses (hostpause.h).
 * The mechanisms it is made of can be switched off one by one (mechanisms.h) for
 * measuring; docs/scheduling.md draws the states.
 */
#ifndef RTUDP_PACER_H
#define RTUDP_PACER_H

#include <stdint.h>

#include "cpushare.h"
#include "guard.h"
#include "hostpause.h"
#include "idlepoller.h"
#include "mechanisms.h"
#include "spin.h"
#include "warmup.h"

struct rtudp_pacer {
    uint32_t id;                    /* the worker's, for messages */
    uint32_t off;                   /* --off: mechanisms switched off (mechanisms.h) */
    struct rtudp_spin spin;         /* the park margin and the spin budget (spin.h) */
    int spin_budget_permille;       /* --spin-budget: share of a CPU the TX thread may spin */
    int64_t coalesce_ns;            /* --tx-coalesce-us: how early a deadline close behind
                                       another may go with it (rtudp_pacer_plan) */
    int64_t dense_until;            /* deadlines are dense till then: a group was coalesced */
    int64_t lateness_ns;            /* --tx-lateness-us: how late a timed send may leave
                                       (rtudp_pacer_plan, plan_late; 0: on time) */
    /* the worker's CPU time, read at most every CPU_READ_EVERY_NS (pacer.c) */
    int64_t cpu_read_at;            /* when the process CPU time was last read (0 = never) */
    int64_t cpu_at_read;            /* what it was then */
    int64_t cpu_read_wall;          /* CLOCK_MONOTONIC right after that read (hostpause.h) */
    /* the real-time policy, and spinning past the cap below it (sched.c) */
    int rt_policy;                  /* TX thread's SCHED_FIFO/RR to return to; 0 = none */
    int rt_priority;
    int demoted;                    /* spinning at SCHED_OTHER past the RT cap */
    int64_t demoted_window;         /* the spin window it was demoted in */
    uint64_t demotions;
    uint64_t demote_preempted;
    long demoted_csw;               /* involuntary context switches when demoted */
    int64_t demoted_gap;            /* longest step of a spin since (it lost the CPU) */
    int64_t no_demote_until;        /* after a preemption while demoted: no drop before */
    int64_t demote_backoff_ns;      /* how long the next preemption stops demotions */
    uint64_t spin_other_ns;         /* spun while demoted (workers[].spin_other_ns) */
    /* what the spins and sleeps were */
    uint64_t bridge_ns;             /* gaps spun because a sleep would cost as much */
    uint64_t capped_sleeps;
    int capped_sent_first;          /* the last capped turn sent instead of sleeping */
    uint32_t sleeps_seen;           /* timed sleeps, for sampling their cost */
    /* the RX work done by the TX thread in bridged gaps (rxloop.c's handoff) */
    uint64_t rx_turns;              /* RX turns done here for the RX thread */
    int64_t rx_turn_at;             /* when the last of them ran */
    int rx_turn_got;                /* and the receives it read */
    /* the CPU's idle states while channels are served (sched.c, idlepoller.h) */
    int idle_poll;                  /* --idle-poll: hold the idle-latency request */
    int poll_wanted;                /* channels are served whose wake-ups must be prompt */
    int qos_fd;                     /* /dev/cpu_dma_latency while held, else -1 */
    int poller_needed;              /* idle halts without polling: poll with a process */
    int qos_costs_host;             /* a VM: no PM QoS request */
    struct rtudp_idlepoller poller; /* ... running while idle polling is held */
    /* what the pacer watches and does beside the thread */
    struct rtudp_cpuidle cpuidle;   /* the pinned CPU's idle time (cpushare.h) */
    struct rtudp_cpushare share;    /* do others on that CPU get too little of it? */
    struct rtudp_guard guard;       /* takes the CPU back for a demoted TX thread */
    struct rtudp_hostpause hostpause; /* spin steps the host stopped the vCPU for */
    struct rtudp_warmup warmup;     /* the send path warmed before a deadline after a long park */
};

static inline int rtudp_pacer_on(const struct rtudp_pacer *p, enum rtudp_mechanism_id id)
{
    return rtudp_mech_on(p->off, id);
}


/* what a turn of the TX loop decided to wait for, and how (rtudp_pacer_plan) */
struct rtudp_pace_plan {
    int64_t now;        /* the clock the decision was taken at */
    int64_t target;     /* the next deadline, maybe spun for */
    int64_t park_until; /* the park's end: before target, or a timeout's */
    int bridge;         /* the gap to target is bridged by spinning */
    int spin_ok;        /* the spin to target is allowed */
    int warm;           /* the park ends early for the warm-up (warmup.h) */
    int timer_wake;     /* the park ends for target, not for a timeout */
    int after_due;      /* set by the caller: what was due has just been served */
    int lead;           /* set by the caller: target may leave up to coalesce_ns early
                         * on its own (a kind's timer that may lead, worker.h) */
    int coalesce;       /* target is served now, early, with what was just due (or on
                         * its own, when it may lead) */
    int may_be_late;    /* set by the caller: target is a timed send, which may leave up
                         * to lateness_ns late (no kind timer is due before its wake-up) */
    int late;           /* the park ends a budget's step after target (plan_late) */
};

#define RTUDP_PACER_SLEEP_SAMPLE_EVERY 8 /* timed sleeps: the CPU cost of one in this many */
/* Deadlines stay dense this long (and the window) after a group: the spin budget's
 * window.  A turn that holds the loop for a millisecond or two without a group (a
 * thousand rings topped up at once, a capped sleep) must not end it: the budget would
 * then pay a margin for each deadline until it ran out, most of a window, before
 * groups were made again. */
#define RTUDP_PACER_DENSE_NS RTUDP_SPIN_WINDOW_NS
#define RTUDP_PACER_LEAD_GAP_NS 500000LL  /* a timer that may lead is not spun for when
                                          * it comes sooner than this (pacer.c) */

/* whether deadlines are dense at `now`: a group was coalesced lately */
static inline int rtudp_pacer_dense(const struct rtudp_pacer *p, int64_t now)
{
    return now < p->dense_until;
}

/* pacer.c: set up (spin_budget_permille, off and id set) and torn down */
void rtudp_pacer_init(struct rtudp_pacer *p, int64_t now);
void rtudp_pacer_free(struct rtudp_pacer *p);
/* decide: how to wait for t->target (t->now, t->after_due and t->lead set), with
 * `other` the first timeout: park until t->park_until, then spin to target if
 * t->spin_ok; or (with t->after_due or t->lead) serve it now, t->coalesce */
void rtudp_pacer_plan(struct rtudp_pacer *p, int64_t other, struct rtudp_pace_plan *t);
/* whether t->target (t->now, t->after_due and t->may_be_late set) goes now with the
 * dense group being sent (pacer.c, coalesce): pure, as the plan would decide it */
int rtudp_pacer_joins_group(const struct rtudp_pacer *p, const struct rtudp_pace_plan *t);
/* by when the thread should be parked for t->target at the latest (t->now set): the
 * deadline, or the spin margin before it */
int64_t rtudp_pacer_wake_by(const struct rtudp_pacer *p, const struct rtudp_pace_plan *t);
/* what the thread publishes as its sleeper deadline for the park t plans: producers
 * leave it asleep for records due at or after it (ring.c, notify_consumer) */
int64_t rtudp_pacer_sleeper_deadline(const struct rtudp_pacer *p, const struct rtudp_pace_plan *t);
/* the lateness budget's wake-up for a first deadline at `target` (lateness_ns > 0): a
 * step after it */
int64_t rtudp_pacer_late_wake(const struct rtudp_pacer *p, int64_t target);
/* a deadline was sent early with its group (t->coalesce): deadlines are dense */
void rtudp_pacer_coalesced(struct rtudp_pacer *p, int64_t now);
/* may the thread spin `len` ns now (a `bridge` is spun budget or not, within the cap)?
 * Past the cap, what budget is left is spun at SCHED_OTHER (pacer_rt.c) */
int rtudp_pacer_may_spin(struct rtudp_pacer *p, int64_t now, int64_t len, int bridge);
/* past the real-time cap this turn: a capped sleep is due (else the turn is uncapped) */
int rtudp_pacer_capped(struct rtudp_pacer *p, int64_t now);
/* how long the capped sleep is, with the next deadline gap ns away: 0 to send that
 * deadline first (spin.h, rtudp_spin_capped_sleep) */
int64_t rtudp_pacer_capped_sleep_ns(struct rtudp_pacer *p, int64_t gap);
void rtudp_pacer_uncapped(struct rtudp_pacer *p);
/* once a window: do others on this CPU get too little of it? (cpushare.h) */
void rtudp_pacer_look_at_share(struct rtudp_pacer *p, int64_t now);
/* observe: a capped sleep of len ns; a step of a spin from prev to now; a whole spin
 * (a bridge's or not); a park's wake-up late ns after its end, its CPU cost sampled
 * when rtudp_pacer_sample_sleep said so before it (cpu0: its reading) */
void rtudp_pacer_slept(struct rtudp_pacer *p, int64_t len);
/* a park of len ns (on the bell): not CPU time in the estimate of cpu_ns */
void rtudp_pacer_parked(struct rtudp_pacer *p, int64_t len);
void rtudp_pacer_spin_step(struct rtudp_pacer *p, int64_t prev, int64_t now);
void rtudp_pacer_spun(struct rtudp_pacer *p, int64_t start, int64_t end, int bridge);
int rtudp_pacer_sample_sleep(struct rtudp_pacer *p, int timer_wake, int64_t *cpu0);
void rtudp_pacer_woke(struct rtudp_pacer *p, int64_t late, int sampled, int64_t cpu0);

/* pacer_rt.c */
/* the TX thread's real-time policy, if it can leave it and come back (else none) */
void rtudp_pacer_rt_probe(struct rtudp_pacer *p);
/* TX thread to SCHED_OTHER, nice -20, for spin window `window` (0 = done or already;
 * -1 = not real-time, not permitted, or backing off); back to its RT policy */
int rtudp_pacer_rt_demote(struct rtudp_pacer *p, int64_t now, int64_t window);
/* 1 if rtudp_pacer_rt_demote would drop the thread now (real-time, no backoff running) */
int rtudp_pacer_rt_may_demote(const struct rtudp_pacer *p, int64_t now);
/* demoted and another task took the CPU since: back to the RT policy, and no drop
 * again for a backoff */
void rtudp_pacer_rt_check(struct rtudp_pacer *p, int64_t now);
void rtudp_pacer_rt_restore(struct rtudp_pacer *p);

#endif
