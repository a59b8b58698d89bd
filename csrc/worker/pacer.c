/*
 * pacer.c - the TX thread's timing decisions (pacer.h): how to wait for the next
 * deadline, whether a spin is allowed, whether the real-time cap calls for a sleep,
 * and what the pacer learns from each spin and sleep.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pacer.h"
#include "ring.h"

#define SPIN_START_NS 20000LL       /* the park margin before any wake-up was seen */
#define SPIN_MIN_NS 5000LL
#define SPIN_MAX_NS 200000LL
#define CPU_READ_EVERY_NS 1000000LL /* process CPU time: a fresh read at most this often */
/* ... but an estimate that would make a capped sleep is first checked by a fresh read,
 * unless the last one is this recent (its overcount is then below the pace's slack) */
#define CPU_CONFIRM_AFTER_NS 50000LL
/* Past the RT cap with no drop to SCHED_OTHER allowed, the thread leaves the CPU in
 * sleeps this long at most, or to the next deadline if that comes first (spin.h,
 * rtudp_spin_capped_sleep), then sends what is due.  Short, because a wake-up costs
 * the same CPU whatever the sleep's length, and every packet due in a sleep waits for
 * its end. */
#define CAPPED_SLEEP_NS RTUDP_SHARE_BASE_SLEEP_NS

static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rtudp_pacer_init(struct rtudp_pacer *p, int64_t now)
{
    int64_t budget = RTUDP_SPIN_WINDOW_NS / 1000 * p->spin_budget_permille;
    rtudp_spin_init(&p->spin, SPIN_START_NS, SPIN_MIN_NS, SPIN_MAX_NS, budget,
                    RTUDP_SPIN_WINDOW_NS, now);
    rtudp_pacer_rt_probe(p);
    if (rtudp_warmup_open(&p->warmup) != 0)
        fprintf(stderr, "rtudp-worker %u: no loopback socket to warm the send path with (%s): "
                "a send after a long park pays for a cold kernel path (warmup.h)\n",
                p->id, strerror(errno));
    if (p->rt_policy && rtudp_pacer_on(p, RTUDP_MECH_GUARD)) /* else: never alone */
        rtudp_guard_start(&p->guard, p->rt_policy, p->rt_priority, RTUDP_GUARD_SWITCHES);
}

void rtudp_pacer_free(struct rtudp_pacer *p)
{
    rtudp_guard_stop(&p->guard);
    rtudp_warmup_close(&p->warmup);
}

/*
 * This process's CPU time (all its threads: the RT throttle counts them together).  The
 * clock is a system call, not vDSO, so it is read at most every CPU_READ_EVERY_NS;
 * in between the estimate assumes the worker was busy all the time (it overcounts:
 * the cap comes early, never late).  A window starts on a fresh read: started on an
 * estimate, it could undercount by up to that period.
 */
static int64_t cpu_ns(struct rtudp_pacer *p, int64_t now)
{
    if (!rtudp_spin_window_due(&p->spin, now) && p->cpu_read_at &&
        now - p->cpu_read_at < CPU_READ_EVERY_NS && now >= p->cpu_read_at)
        return p->cpu_at_read + (now - p->cpu_read_at);
    int64_t cpu_before = p->cpu_at_read, wall_before = p->cpu_read_wall;
    p->cpu_read_at = now;
    p->cpu_at_read = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    /* the interval since the last read: time its clock did not count, with no switch
     * of the thread, was the host's (hostpause.h); a fresh wall clock, as `now` may be
     * a little stale */
    p->cpu_read_wall = rtudp_now_ns();
    if (!rtudp_pacer_on(p, RTUDP_MECH_HOST_PAUSE))
        return p->cpu_at_read;
    long all;
    long involuntary = rtudp_hostpause_switches(&all);
    int first = wall_before == 0; /* a first read only marks: an empty interval */
    rtudp_hostpause_interval(&p->hostpause, first ? 0 : p->cpu_read_wall - wall_before,
                             first ? 0 : p->cpu_at_read - cpu_before, all, involuntary);
    return p->cpu_at_read;
}

/*
 * Past the cap the thread may go on at SCHED_OTHER when its budget pays for the spin
 * (`budgeted`), or, for an unbudgeted bridge, only while nobody else wants the CPU
 * (cpushare.h) and the guard (guard.h) is there to take the CPU back from one that
 * comes: at SCHED_OTHER a task that shares the CPU may take it for a whole slice,
 * milliseconds.  Otherwise the loop sleeps in short pieces once the cap is reached
 * (rtudp_pacer_capped), which give a task sharing the CPU its share and take the CPU
 * back on time; alone on its CPU those pieces give nobody anything and only make the
 * packets due in them late.
 */
static int may_demote(struct rtudp_pacer *p, int64_t now, int budgeted)
{
    return rtudp_pacer_rt_may_demote(p, now) &&
           (budgeted || (rtudp_pacer_on(p, RTUDP_MECH_ALONE) && rtudp_share_alone(&p->share) &&
                         rtudp_guard_ready(&p->guard)));
}

int rtudp_pacer_may_spin(struct rtudp_pacer *p, int64_t now, int64_t len, int bridge)
{
    rtudp_pacer_rt_check(p, now);
    int64_t cpu = cpu_ns(p, now);
    int64_t budget = rtudp_spin_room(&p->spin, now, cpu, 0); /* starts a window when due */
    if (p->demoted && p->spin.window_start != p->demoted_window)
        rtudp_pacer_rt_restore(p); /* a new window: the cap has room again */
    int budgeted = budget >= len;
    if (!budgeted && !bridge)
        return 0;
    if (!p->rt_policy || p->demoted)
        return 1; /* nothing but the budget bounds an ordinary thread's spin */
    if (rtudp_spin_cpu_room(&p->spin, cpu) >= len)
        return 1;
    return may_demote(p, now, budgeted) && rtudp_pacer_rt_demote(p, now, p->spin.window_start) == 0;
}

/*
 * The RT cap bounds all of a real-time worker's CPU time in a window, not only its
 * spinning: a worker with more work than its CPU (a flood of sends, or a submitter
 * that queued them after their deadlines) would otherwise hold the CPU at SCHED_FIFO
 * until the kernel's RT throttle or fair server took it away.  One that may drop to
 * SCHED_OTHER does so at the cap.  One that may not leaves its CPU in capped sleeps,
 * taken as it goes rather than all at its window's end: once its CPU time in the
 * window runs ahead of a pace that reaches the cap at the window's end
 * (rtudp_spin_ahead_of_pace), it sleeps one piece now, so each piece delays only the
 * few packets due in it and the thread catches up by spinning less before the next.
 * A demoted thread is an ordinary task: no cap.
 */
int rtudp_pacer_capped(struct rtudp_pacer *p, int64_t now)
{
    rtudp_pacer_rt_check(p, now); /* a demoted thread the guard made real-time is capped */
    if (!p->rt_policy)
        return 0;
    if (p->demoted) {
        if (!rtudp_spin_window_due(&p->spin, now))
            return 0; /* an ordinary thread: no cap, till the window ends */
        rtudp_pacer_rt_restore(p); /* a new window (a backlog never reaches may_spin's) */
    }
    int64_t cpu = cpu_ns(p, now);
    /* starts a new window when due; what the budget has left of it */
    int64_t budget = rtudp_spin_room(&p->spin, now, cpu, 0);
    int may_drop = may_demote(p, now, budget > 0); /* not in a backoff either: pace then */
    if (rtudp_spin_cpu_room(&p->spin, cpu) > 0) {
        if (may_drop || !rtudp_pacer_on(p, RTUDP_MECH_CAP_PACE) ||
            !rtudp_spin_ahead_of_pace(&p->spin, now, cpu))
            return 0;
        /* the estimate counts every ns since the last read as CPU time: a worker that
         * parks between sends would sleep for its own parks.  A fresh read decides */
        if (now - p->cpu_read_at > CPU_CONFIRM_AFTER_NS) {
            p->cpu_read_at = 0;
            cpu = cpu_ns(p, now);
        }
        return rtudp_spin_ahead_of_pace(&p->spin, now, cpu);
    }
    return !(may_drop && rtudp_pacer_rt_demote(p, now, p->spin.window_start) == 0);
}

/* ... unless another task on the CPU wants more of it than it gets: then longer pieces
 * it can use, as long as it needs them (cpushare.h) */
int64_t rtudp_pacer_capped_sleep_ns(struct rtudp_pacer *p, int64_t gap)
{
    int64_t piece = CAPPED_SLEEP_NS;
    if (rtudp_pacer_on(p, RTUDP_MECH_SHARE_SLEEPS) && p->share.sleep_ns > piece)
        piece = p->share.sleep_ns;
    if (!rtudp_pacer_on(p, RTUDP_MECH_SENT_FIRST))
        p->capped_sent_first = 1; /* as if it had: the sleep comes first */
    return rtudp_spin_capped_sleep(gap, piece, CAPPED_SLEEP_NS, &p->capped_sent_first);
}

void rtudp_pacer_uncapped(struct rtudp_pacer *p)
{
    p->capped_sent_first = 0; /* "never twice in a row" counts capped turns only */
}

void rtudp_pacer_parked(struct rtudp_pacer *p, int64_t len)
{
    /* as a capped sleep (below): a park is no CPU time of the estimate's */
    if (p->cpu_read_at && len > 0)
        p->cpu_read_at += len;
}

void rtudp_pacer_slept(struct rtudp_pacer *p, int64_t len)
{
    p->capped_sleeps++;
    /* cpu_ns's estimate counts all time since its last read as CPU time: not the
     * sleep (else the pace would see the worker ahead until the next read) */
    if (p->cpu_read_at)
        p->cpu_read_at += len;
}

void rtudp_pacer_look_at_share(struct rtudp_pacer *p, int64_t now)
{
    if (!p->rt_policy || !rtudp_pacer_on(p, RTUDP_MECH_CPU_SHARE))
        return;
    if (p->share.at_ns && now - p->share.at_ns < RTUDP_SPIN_WINDOW_NS)
        return;
    /* a fresh read, not cpu_ns's estimate: others' share is what is left */
    int64_t cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    rtudp_share_look(&p->share, now, cpu, rtudp_cpuidle_ns(&p->cpuidle, now, cpu));
}

/* a timed send that may wait for the lateness budget's grid: plan_late plans every
 * one, so none reaches coalesce(), and none joins a group (it never leaves early) */
static int on_the_grid(const struct rtudp_pacer *p, const struct rtudp_pace_plan *t)
{
    return p->lateness_ns > 0 && t->may_be_late;
}

/*
 * Deadlines closer together than the budget can spin for (many channels, each with its
 * own schedule) would each cost a wake-up, or a bridge spun beyond the budget; on a VM
 * either costs about as much CPU as the gap, so the worker would take its whole CPU
 * for a rate one thread sends at a fraction of one, and starve the processes that
 * feed it.  Instead a deadline within coalesce_ns of now, right after what was due,
 * leaves now with it: early by at most coalesce_ns, one wake-up for the group.  At
 * first only when the budget cannot pay for the wait; once a group was sent so, the
 * deadlines are dense (for RTUDP_PACER_DENSE_NS + coalesce_ns after the last such
 * group): then every close deadline joins its group, and a park ends at its deadline
 * with no spin before it, since a margin spun for the first of a group whose others
 * leave early buys nothing and would take the CPU the senders feeding the rings
 * need.  A lone deadline, or a few the budget covers, still leave at their own time.
 * The caller says whether the deadline may join (t->after_due): only another
 * channel's does, so a stream keeps its own spacing (txloop.c, record_joins_group).
 */
static int coalesce(struct rtudp_pacer *p, const struct rtudp_pace_plan *t, int dense)
{
    if (dense)
        return rtudp_pacer_joins_group(p, t);
    int64_t gap = t->target - t->now;
    return t->after_due && gap <= p->coalesce_ns && !rtudp_pacer_may_spin(p, t->now, gap, 0);
}

int rtudp_pacer_joins_group(const struct rtudp_pacer *p, const struct rtudp_pace_plan *t)
{
    /* a timed send that may wait for the lateness grid is the grid's (plan_late): the
     * loop, told it joins a group, would hold the stamp reads for a group that never
     * goes on, and go round without waiting until its deadline came */
    if (on_the_grid(p, t))
        return 0;
    return rtudp_pacer_dense(p, t->now) && t->after_due && t->target - t->now <= p->coalesce_ns;
}

/* the margin a park for `target` ends before it, so that the spin reaches it */
static int64_t park_margin(const struct rtudp_pacer *p, int64_t now, int64_t target)
{
    return rtudp_spin_margin(
        &p->spin, rtudp_pacer_on(p, RTUDP_MECH_LONG_PARK_EARLY) ? target - now : 0);
}

int64_t rtudp_pacer_wake_by(const struct rtudp_pacer *p, const struct rtudp_pace_plan *t)
{
    if (p->lateness_ns > 0 && t->may_be_late)
        return rtudp_pacer_late_wake(p, t->target);
    if (rtudp_pacer_dense(p, t->now))
        return t->target; /* the dense plan parks to the deadline itself */
    return t->target - park_margin(p, t->now, t->target);
}

void rtudp_pacer_coalesced(struct rtudp_pacer *p, int64_t now)
{
    /* a group reaches coalesce_ns ahead: the next one can come that much after it */
    p->dense_until = now + RTUDP_PACER_DENSE_NS + p->coalesce_ns;
}

/*
 * A deadline that may leave up to coalesce_ns early on its own (t->lead: a kind's
 * timer that may lead, such as a Netflux cycle) and comes within
 * RTUDP_PACER_LEAD_GAP_NS is not spun for: the park ends the spin margin before it (at
 * most coalesce_ns) and the timer runs when the thread wakes, early by what the
 * wake-up's lateness leaves of that margin; within coalesce_ns it runs now.  Many
 * channels' cycles a hundred µs apart would otherwise cost the worker a spin margin
 * each, thousands a second: most of its CPU.  A farther one, such as a lone channel's
 * cycle, is spun for as any deadline: its park may be long enough for the vCPU to
 * halt, and a margin spun now and then costs little.  Once deadlines are dense the
 * dense plan holds for it too: a park to the deadline itself, which gathers more of
 * those after it into the wake-up's group.
 */
static int plan_lead(struct rtudp_pacer *p, int64_t other, struct rtudp_pace_plan *t)
{
    int64_t gap = t->target - t->now;
    if (!t->lead || p->coalesce_ns <= 0 || gap >= RTUDP_PACER_LEAD_GAP_NS ||
        t->now < p->dense_until)
        return 0;
    t->bridge = t->warm = t->spin_ok = 0;
    t->coalesce = gap <= p->coalesce_ns;
    t->timer_wake = !t->coalesce;
    if (t->coalesce) {
        t->park_until = t->now;
        return 1;
    }
    int64_t margin = rtudp_spin_margin(&p->spin, gap);
    t->park_until = t->target - (margin < p->coalesce_ns ? margin : p->coalesce_ns);
    if (other < t->park_until) {
        t->park_until = other;
        t->timer_wake = 0;
    }
    return 1;
}

/* the budget's step: the budget less a margin for the wake-up's own lateness (the
 * park's margin, spin.h, and at least a quarter of the budget, since a loaded machine
 * wakes later than the margin learnt), at most half of it: the first deadline, woken
 * for a step after it, still leaves within the budget */
static int64_t late_step(const struct rtudp_pacer *p)
{
    int64_t margin = rtudp_spin_margin(&p->spin, 0);
    if (margin < p->lateness_ns / 4)
        margin = p->lateness_ns / 4;
    if (margin > p->lateness_ns / 2)
        margin = p->lateness_ns / 2;
    return p->lateness_ns - margin;
}

int64_t rtudp_pacer_late_wake(const struct rtudp_pacer *p, int64_t target)
{
    int64_t step = late_step(p);
    if (step <= 0 || target <= 0 || target > INT64_MAX - step)
        return target; /* no budget, or no deadline (INT64_MAX: none waits) */
    /* a step after the first deadline: every deadline up to the wake-up shares it, those
     * the wake-up's own lateness lets in too, and the first leaves within the budget */
    return target + step;
}

int64_t rtudp_pacer_sleeper_deadline(const struct rtudp_pacer *p, const struct rtudp_pace_plan *t)
{
    /* with a budget too: its wake-up is a step after target, and a record due after
     * target still leaves within the budget at it */
    (void)p;
    return t->target;
}

/*
 * A lateness budget (--tx-lateness-us) trades lateness for CPU, as a C sender waking on
 * a grid does: a timed send may leave up to lateness_ns after its deadline, so the
 * thread parks to a step after the first deadline (the budget less the wake-up's
 * margin) and sends everything due by then in one wake-up, spinning for none.
 * Thousands of deadlines a second then cost one wake-up for a step's deadlines and
 * those its own lateness let in (a grid of the clock wakes a step apart whatever that
 * lateness).  Only timed sends wait so: a kind's timer runs by the clock (the caller
 * says: t->may_be_late).
 */
static int plan_late(struct rtudp_pacer *p, int64_t other, struct rtudp_pace_plan *t)
{
    if (!on_the_grid(p, t))
        return 0;
    int64_t wake = rtudp_pacer_late_wake(p, t->target);
    /* a wait as short as a park's CPU cost is parked for too: bridged, dense deadlines
     * keep one worker spinning through most of each step */
    t->bridge = t->warm = t->spin_ok = t->coalesce = 0;
    t->late = t->timer_wake = 1;
    t->park_until = wake;
    if (other < t->park_until) {
        t->park_until = other;
        t->timer_wake = 0;
    }
    return 1;
}

void rtudp_pacer_plan(struct rtudp_pacer *p, int64_t other, struct rtudp_pace_plan *t)
{
    t->late = 0;
    if (plan_late(p, other, t) || plan_lead(p, other, t))
        return;
    int64_t now = t->now, target = t->target;
    int dense = rtudp_pacer_dense(p, now);
    t->coalesce = coalesce(p, t, dense);
    if (t->coalesce || dense) { /* now, or a park to the deadline itself */
        t->bridge = t->warm = t->spin_ok = 0;
        t->timer_wake = !t->coalesce;
        t->park_until = t->coalesce ? now : target;
        if (!t->coalesce && other < t->park_until) {
            t->park_until = other;
            t->timer_wake = 0;
        }
        return;
    }
    int64_t margin = park_margin(p, now, target);
    /*
     * Spin only if the whole spin fits the budget; else sleep to the deadline.  But a
     * gap about as short as a sleep's CPU cost is bridged by spinning whatever the
     * budget says: on a VM the thread is charged about that much for each wake-up, so
     * sleeping such a gap saves nothing and misses the deadline, and a worker that
     * slept every short gap at a high rate spent all its CPU in wake-ups at SCHED_FIFO,
     * until the RT throttle stopped it.
     */
    t->bridge = rtudp_pacer_on(p, RTUDP_MECH_BRIDGE) && rtudp_spin_bridges(&p->spin, target - now);
    /* a long park: it ends earlier still, by the warm-up's lead, if the budget pays
     * for that spin too (warmup.h); else as always */
    int64_t lead = margin + p->warmup.lead_ns;
    t->warm = !t->bridge && rtudp_pacer_on(p, RTUDP_MECH_WARMUP) &&
              rtudp_warmup_wanted(&p->warmup, target - lead - now) &&
              rtudp_pacer_may_spin(p, now, lead, 0);
    if (!t->warm)
        lead = margin;
    t->spin_ok = t->warm ||
                 rtudp_pacer_may_spin(p, now, t->bridge ? target - now : margin, t->bridge);
    if (!t->spin_ok && t->bridge)
        p->spin.over_budget++;
    t->park_until = t->spin_ok ? target - lead : target;
    t->timer_wake = 1;
    if (other < t->park_until) {
        t->park_until = other;
        t->timer_wake = t->warm = 0;
    }
}

void rtudp_pacer_spin_step(struct rtudp_pacer *p, int64_t prev, int64_t now)
{
    if (now - prev >= RTUDP_HOST_PAUSE_MIN_NS && rtudp_pacer_on(p, RTUDP_MECH_HOST_PAUSE))
        /* the thread did not run: who had it? */
        rtudp_hostpause_judge(&p->hostpause, now - prev, rtudp_hostpause_switches(NULL));
    if (p->demoted) {
        rtudp_guard_beat(&p->guard, now);
        if (now - prev > p->demoted_gap)
            p->demoted_gap = now - prev;
    }
}

void rtudp_pacer_spun(struct rtudp_pacer *p, int64_t start, int64_t end, int bridge)
{
    rtudp_spin_used(&p->spin, end - start);
    if (end <= start)
        return;
    if (p->demoted)
        p->spin_other_ns += (uint64_t)(end - start);
    if (bridge)
        p->bridge_ns += (uint64_t)(end - start); /* of the same spin: never more */
}

int rtudp_pacer_sample_sleep(struct rtudp_pacer *p, int timer_wake, int64_t *cpu0)
{
    /* reading a thread's CPU time is a system call: one sleep in SLEEP_SAMPLE_EVERY */
    int sample = timer_wake && (++p->sleeps_seen % RTUDP_PACER_SLEEP_SAMPLE_EVERY) == 0;
    *cpu0 = sample ? clock_ns(CLOCK_THREAD_CPUTIME_ID) : 0;
    return sample;
}

void rtudp_pacer_woke(struct rtudp_pacer *p, int64_t late, int sampled, int64_t cpu0)
{
    if (rtudp_pacer_on(p, RTUDP_MECH_ADAPTIVE_MARGIN))
        rtudp_spin_wake(&p->spin, late);
    if (sampled)
        rtudp_spin_sleep_cost(&p->spin, clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0);
}
