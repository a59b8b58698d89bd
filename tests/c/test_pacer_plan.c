/*
 * test_pacer_plan.c - the TX thread's plan for the next deadline (csrc/worker/pacer.c,
 * rtudp_pacer_plan): when a deadline close behind what was just sent joins it early
 * (tx_coalesce_us), and when it still gets a wait of its own; with a lateness budget
 * (tx_lateness_us), the step a timed send waits.
 */
#include <stdint.h>
#include <string.h>

#include "pacer.h"

#include "harness.h"

#define US 1000LL
#define T0 (1000 * NS_PER_MS)
#define NEVER INT64_MAX

/* a pacer as a worker's at SCHED_OTHER (no real-time cap to keep), spinning at most
 * budget_permille of a CPU, sending deadlines within coalesce_ns of one together */
static void pacer_with(struct rtudp_pacer *p, int budget_permille, int64_t coalesce_ns)
{
    memset(p, 0, sizeof *p);
    p->spin_budget_permille = budget_permille;
    p->coalesce_ns = coalesce_ns;
    p->qos_fd = -1;
    rtudp_spin_init(&p->spin, 20 * US, 5 * US, 200 * US,
                    RTUDP_SPIN_WINDOW_NS / 1000 * budget_permille, RTUDP_SPIN_WINDOW_NS, T0);
}

static struct rtudp_pace_plan plan(struct rtudp_pacer *p, int64_t now, int64_t gap, int after_due)
{
    struct rtudp_pace_plan t = {.now = now, .target = now + gap, .after_due = after_due};
    rtudp_pacer_plan(p, NEVER, &t);
    return t;
}

/* with no budget to wait with, a deadline within the window after what was due goes
 * now; one further off, or not following a send, or with coalescing off, waits */
static void test_close_deadlines_join_what_was_due(void)
{
    struct rtudp_pacer p;
    pacer_with(&p, 0, 50 * US);
    struct rtudp_pace_plan t = plan(&p, T0, 30 * US, 1);
    CHECK(t.coalesce);
    CHECK_EQ(t.park_until, T0);
    CHECK(!t.spin_ok && !t.bridge);

    t = plan(&p, T0, 50 * US, 1);
    CHECK(t.coalesce); /* the window's edge is in it */

    pacer_with(&p, 0, 50 * US);
    t = plan(&p, T0, 51 * US, 1);
    CHECK(!t.coalesce);
    CHECK_EQ(t.park_until, T0 + 51 * US); /* no budget: parked to the deadline */

    t = plan(&p, T0, 30 * US, 0); /* nothing was due: a lone deadline, at its time */
    CHECK(!t.coalesce);
    CHECK_EQ(t.park_until, T0 + 30 * US);
    CHECK(t.timer_wake);

    pacer_with(&p, 0, 0); /* off */
    t = plan(&p, T0, 1 * US, 1);
    CHECK(!t.coalesce);
}

/* while the budget pays for the wait, a close deadline is spun for, exact */
static void test_a_budget_that_pays_keeps_each_deadline(void)
{
    struct rtudp_pacer p;
    pacer_with(&p, 1000, 50 * US);
    struct rtudp_pace_plan t = plan(&p, T0, 30 * US, 1);
    CHECK(!t.coalesce);
    CHECK(t.spin_ok);
    CHECK(t.park_until <= T0 + 30 * US);
}

/* once a group went early, deadlines are dense: close ones join whatever the budget,
 * and a park ends at its deadline with no margin spun; RTUDP_PACER_DENSE_NS and the
 * window later without a group, the budget decides again */
static void test_dense_deadlines_join_and_park_without_spin(void)
{
    struct rtudp_pacer p;
    pacer_with(&p, 1000, 50 * US);
    rtudp_pacer_coalesced(&p, T0);
    struct rtudp_pace_plan t = plan(&p, T0 + 10 * US, 30 * US, 1);
    CHECK(t.coalesce);

    t = plan(&p, T0 + 10 * US, 500 * US, 1);
    CHECK(!t.coalesce);
    CHECK(!t.spin_ok);
    CHECK_EQ(t.park_until, T0 + 510 * US);
    CHECK(t.timer_wake);

    int64_t later = T0 + RTUDP_PACER_DENSE_NS + 50 * US;
    t = plan(&p, later - 1, 30 * US, 1);
    CHECK(t.coalesce); /* still dense: a group can come a window after the last */
    t = plan(&p, later, 30 * US, 1);
    CHECK(!t.coalesce);
    CHECK(t.spin_ok);
}

/* a wide window (a group reaching 1 ms ahead): deadlines stay dense for the window
 * beyond RTUDP_PACER_DENSE_NS, so the next group, a window after, is one too */
static void test_a_wide_window_stays_dense_until_the_next_group(void)
{
    struct rtudp_pacer p;
    pacer_with(&p, 1000, 1000 * US);
    rtudp_pacer_coalesced(&p, T0);
    struct rtudp_pace_plan t = plan(&p, T0 + RTUDP_PACER_DENSE_NS + 900 * US, 50 * US, 1);
    CHECK(t.coalesce);
    t = plan(&p, T0 + RTUDP_PACER_DENSE_NS + 1000 * US, 50 * US, 1);
    CHECK(!t.coalesce); /* the budget pays again */
}

/* a timeout before the deadline ends a dense park first, as any park */
static void test_a_dense_park_ends_at_an_earlier_timeout(void)
{
    struct rtudp_pacer p;
    pacer_with(&p, 0, 50 * US);
    rtudp_pacer_coalesced(&p, T0);
    struct rtudp_pace_plan t = {.now = T0, .target = T0 + 800 * US, .after_due = 1};
    rtudp_pacer_plan(&p, T0 + 300 * US, &t);
    CHECK(!t.coalesce);
    CHECK_EQ(t.park_until, T0 + 300 * US);
    CHECK(!t.timer_wake);
}

static struct rtudp_pace_plan plan_lead(struct rtudp_pacer *p, int64_t gap, int64_t other)
{
    struct rtudp_pace_plan t = {.now = T0, .target = T0 + gap, .lead = 1};
    rtudp_pacer_plan(p, other, &t);
    return t;
}

/* a close timer that may lead (many channels' Netflux cycles) is not spun for, even
 * with a budget that pays: within the window it runs now; further off the park ends
 * the spin margin before it, at most the window, and it runs at the wake-up.  A far
 * one (a lone channel's cycle), one with coalescing off and one among dense deadlines
 * are planned as any deadline */
static void test_a_close_timer_that_may_lead_is_not_spun_for(void)
{
    struct rtudp_pacer p;
    pacer_with(&p, 1000, 50 * US);
    struct rtudp_pace_plan t = plan_lead(&p, 40 * US, NEVER);
    CHECK(t.coalesce);
    CHECK_EQ(t.park_until, T0);

    t = plan_lead(&p, 300 * US, NEVER);
    CHECK(!t.coalesce && !t.spin_ok && !t.bridge && !t.warm && t.timer_wake);
    CHECK_EQ(t.park_until, T0 + 280 * US); /* the 20 µs margin */

    t = plan_lead(&p, 300 * US, T0 + 100 * US); /* an earlier timeout ends the park */
    CHECK_EQ(t.park_until, T0 + 100 * US);
    CHECK(!t.timer_wake);

    t = plan_lead(&p, RTUDP_PACER_LEAD_GAP_NS, NEVER); /* far: spun for */
    CHECK(!t.coalesce && t.spin_ok);

    rtudp_pacer_coalesced(&p, T0); /* dense: parked to the deadline itself */
    t = plan_lead(&p, 300 * US, NEVER);
    CHECK(!t.coalesce && !t.spin_ok);
    CHECK_EQ(t.park_until, T0 + 300 * US);

    pacer_with(&p, 1000, 0); /* coalescing off: exact, spun for */
    t = plan_lead(&p, 30 * US, NEVER);
    CHECK(!t.coalesce && t.spin_ok);
}

/* what the TX loop asks before it reads TX stamps: whether the next deadline goes now
 * with the dense group (then no read may delay it), and by when the thread must park
 * for it (reads that are not due yet stop short of that) agree with the plan */
static void test_the_loop_knows_a_group_goes_on_and_when_to_park(void)
{
    struct rtudp_pacer p;
    pacer_with(&p, 0, 50 * US);
    struct rtudp_pace_plan t = {.now = T0, .target = T0 + 30 * US, .after_due = 1};
    CHECK(!rtudp_pacer_joins_group(&p, &t)); /* not dense yet: stamps first, as before */

    rtudp_pacer_coalesced(&p, T0);
    CHECK(rtudp_pacer_joins_group(&p, &t));
    CHECK(plan(&p, T0, 30 * US, 1).coalesce);
    CHECK_EQ(rtudp_pacer_wake_by(&p, &t), T0 + 30 * US); /* dense: no margin */

    t.after_due = 0; /* a stream's own next record: not in the group */
    CHECK(!rtudp_pacer_joins_group(&p, &t));
    CHECK(!plan(&p, T0, 30 * US, 0).coalesce);
    t.after_due = 1;
    t.target = T0 + 51 * US; /* beyond the window */
    CHECK(!rtudp_pacer_joins_group(&p, &t));
    CHECK(!plan(&p, T0, 51 * US, 1).coalesce);

    pacer_with(&p, 1000, 50 * US); /* a budget that pays: parked a margin before */
    t = (struct rtudp_pace_plan){.now = T0, .target = T0 + 500 * US, .after_due = 1};
    struct rtudp_pace_plan planned = plan(&p, T0, 500 * US, 1);
    CHECK(planned.spin_ok);
    CHECK_EQ(rtudp_pacer_wake_by(&p, &t), planned.park_until);
}

/* a pacer with a lateness budget of `lateness_ns` (and its margin as first set) */
static void late_pacer(struct rtudp_pacer *p, int64_t lateness_ns)
{
    pacer_with(p, 1000, 50 * US);
    p->lateness_ns = lateness_ns;
}

/* with a budget, a timed send waits a step after the first deadline, with no spin and
 * no group: every deadline up to then gets that wake-up, none before its time, the
 * first a step late; the step leaves a quarter of the budget for the wake-up's lateness */
static void test_a_lateness_budget_waits_a_step(void)
{
    struct rtudp_pacer p;
    late_pacer(&p, 1000 * US);
    const int64_t step = 750 * US;
    struct rtudp_pace_plan t = {.now = T0, .target = T0 + 10 * US, .may_be_late = 1};
    rtudp_pacer_plan(&p, NEVER, &t);
    CHECK(t.late && t.timer_wake);
    CHECK(!t.spin_ok && !t.bridge && !t.coalesce && !t.warm);
    CHECK_EQ(t.park_until, t.target + step);
    CHECK_EQ(rtudp_pacer_wake_by(&p, &t), t.park_until);
    /* a producer need not wake it for a record due after the first deadline */
    CHECK_EQ(rtudp_pacer_sleeper_deadline(&p, &t), t.target);

    /* planned again from a later now, the same first deadline: the same wake-up */
    struct rtudp_pace_plan u = {.now = T0 + 400 * US, .target = t.target, .may_be_late = 1};
    rtudp_pacer_plan(&p, NEVER, &u);
    CHECK_EQ(u.park_until, t.park_until);
    /* a first deadline a step past already: at once */
    u = (struct rtudp_pace_plan){.now = T0 + 2 * step, .target = T0, .may_be_late = 1};
    rtudp_pacer_plan(&p, NEVER, &u);
    CHECK(u.park_until <= u.now);
    /* no deadline (the heaps' INT64_MAX) stays none: a park to the next timeout */
    CHECK_EQ(rtudp_pacer_late_wake(&p, INT64_MAX), INT64_MAX);
    CHECK_EQ(rtudp_pacer_late_wake(&p, INT64_MAX - 1), INT64_MAX - 1);
}

/* a timed send that may wait for the budget joins no group, however dense the deadlines:
 * the loop holds the TX stamp reads for a group that goes on, so what it is told must
 * be what the plan then does */
static void test_a_send_on_the_grid_joins_no_group(void)
{
    struct rtudp_pacer p;
    late_pacer(&p, 100 * US);
    rtudp_pacer_coalesced(&p, T0);
    struct rtudp_pace_plan t = {.now = T0, .target = T0 + 30 * US, .after_due = 1,
                                .may_be_late = 1};
    CHECK(!rtudp_pacer_joins_group(&p, &t));
    rtudp_pacer_plan(&p, NEVER, &t);
    CHECK(t.late && !t.coalesce);
    CHECK(t.park_until > t.now);

    t = (struct rtudp_pace_plan){.now = T0, .target = T0 + 30 * US, .after_due = 1};
    CHECK(rtudp_pacer_joins_group(&p, &t)); /* a kind's timer in the group: as without */
    rtudp_pacer_plan(&p, NEVER, &t);
    CHECK(t.coalesce);
}

/* close to its wake-up, a wait a park barely pays for, a budget's timed send is still
 * parked for to that wake-up: never spun for (bridged, dense deadlines kept a worker
 * spinning through most of each step), never sent early with a group, even with the
 * spin budget spent */
static void test_a_send_near_its_wake_up_waits_for_it_never_sent_early(void)
{
    struct rtudp_pacer p;
    late_pacer(&p, 100 * US);
    const int64_t first = T0 + 45 * US;
    int64_t wake = rtudp_pacer_late_wake(&p, first);
    int64_t now = wake - 10 * US; /* inside the bridge: margin and twice a sleep's cost */
    CHECK(rtudp_spin_bridges(&p.spin, wake - now));
    rtudp_spin_room(&p.spin, now, 0, 0); /* the window begins ... */
    rtudp_spin_used(&p.spin, RTUDP_SPIN_WINDOW_NS); /* ... and its budget is spent */
    for (int dense = 0; dense < 2; dense++) {
        if (dense)
            rtudp_pacer_coalesced(&p, now);
        struct rtudp_pace_plan t = {.now = now, .target = first, .after_due = 1,
                                    .may_be_late = 1};
        rtudp_pacer_plan(&p, NEVER, &t);
        CHECK(!t.coalesce && !t.bridge && !t.spin_ok);
        CHECK(t.late && t.timer_wake);
        CHECK_EQ(t.park_until, wake);
    }
}

/* an earlier timeout ends the park first, and the sleeper deadline is then the target
 * itself; a deadline that may not be late (a kind's timer) is planned as without a
 * budget; no budget, no wait */
static void test_a_budget_leaves_timeouts_and_kind_timers_alone(void)
{
    struct rtudp_pacer p;
    late_pacer(&p, 1000 * US);
    struct rtudp_pace_plan t = {.now = T0, .target = T0 + 500 * US, .may_be_late = 1};
    rtudp_pacer_plan(&p, T0 + 100 * US, &t);
    CHECK(t.late && !t.timer_wake);
    CHECK_EQ(t.park_until, T0 + 100 * US);
    CHECK_EQ(rtudp_pacer_sleeper_deadline(&p, &t), t.target);

    t = (struct rtudp_pace_plan){.now = T0, .target = T0 + 500 * US};
    rtudp_pacer_plan(&p, NEVER, &t);
    CHECK(!t.late);
    CHECK(t.spin_ok && t.park_until < t.target); /* spun for, exact */

    late_pacer(&p, 0);
    t = (struct rtudp_pace_plan){.now = T0, .target = T0 + 500 * US, .may_be_late = 1};
    rtudp_pacer_plan(&p, NEVER, &t);
    CHECK(!t.late);
    CHECK_EQ(rtudp_pacer_late_wake(&p, T0 + 1), T0 + 1);
}

static const struct test tests[] = {
    T(test_close_deadlines_join_what_was_due),
    T(test_a_budget_that_pays_keeps_each_deadline),
    T(test_dense_deadlines_join_and_park_without_spin),
    T(test_a_wide_window_stays_dense_until_the_next_group),
    T(test_a_dense_park_ends_at_an_earlier_timeout),
    T(test_a_close_timer_that_may_lead_is_not_spun_for),
    T(test_the_loop_knows_a_group_goes_on_and_when_to_park),
    T(test_a_lateness_budget_waits_a_step),
    T(test_a_budget_leaves_timeouts_and_kind_timers_alone),
    T(test_a_send_on_the_grid_joins_no_group),
    T(test_a_send_near_its_wake_up_waits_for_it_never_sent_early),
};

HARNESS_MAIN(tests)
