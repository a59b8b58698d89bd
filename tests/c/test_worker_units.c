/*
 * test_worker_units.c - the worker's pure-C parts: the adaptive spin margin and
 * budget (csrc/worker/spin.c), the look at the CPU's share (csrc/worker/cpushare.c),
 * and others' time on a CPU from the scheduler's switches (csrc/worker/cputrace.c),
 * the demotion guard's thread (csrc/worker/guard.c), the judge of host pauses
 * (csrc/worker/hostpause.c), the TX-stamp matcher (csrc/worker/txstamp.c) and the
 * send path's warm-up (csrc/worker/warmup.c).
 * The worker program itself is tested end to end by tests/test_worker.py.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/perf_event.h>

#include "cpushare.h"
#include "guard.h"
#include "hist.h"
#include "hostpause.h"
#include "cputrace.h"
#include "ring.h"
#include "spin.h"
#include "txstamp.h"
#include "warmup.h"

#include "harness.h"

/* stamps for packets no tap copied */
static const struct rtudp_tap_mark no_tap = {0, 0};

#define US 1000LL
#define NS_PER_S 1000000000LL

/* ------------------------------------------------------------------ spin */

static void test_spin_starts_clamped(void)
{
    struct rtudp_spin s;
    rtudp_spin_init(&s, 20 * US, 5 * US, 200 * US, 100 * NS_PER_MS, 1000 * NS_PER_MS, 0);
    CHECK_EQ(s.margin_ns, 20 * US);
    rtudp_spin_init(&s, 1 * US, 5 * US, 200 * US, 0, 1000 * NS_PER_MS, 0);
    CHECK_EQ(s.margin_ns, 5 * US);
    rtudp_spin_init(&s, 900 * US, 5 * US, 200 * US, 0, 1000 * NS_PER_MS, 0);
    CHECK_EQ(s.margin_ns, 200 * US);
}

static void test_spin_follows_high_percentile(void)
{
    struct rtudp_spin s;
    rtudp_spin_init(&s, 20 * US, 5 * US, 200 * US, 0, 1000 * NS_PER_MS, 0);
    /* one wake in RTUDP_SPIN_SAMPLES (< 1 %) 150 us late, the others 10 us: the margin
     * covers the 99th percentile, which that one is beyond */
    for (int i = 0; i < 3 * RTUDP_SPIN_SAMPLES; i++)
        rtudp_spin_wake(&s, (i % RTUDP_SPIN_SAMPLES == RTUDP_SPIN_SAMPLES - 1) ? 150 * US : 10 * US);
    CHECK_IN(s.margin_ns, 10 * US, 10 * US + RTUDP_SPIN_SLACK_NS);
    /* wakes get worse: the margin follows, never past the maximum */
    for (int i = 0; i < 2 * RTUDP_SPIN_SAMPLES; i++)
        rtudp_spin_wake(&s, 120 * US);
    CHECK_EQ(s.margin_ns, 120 * US + RTUDP_SPIN_SLACK_NS);
    for (int i = 0; i < 2 * RTUDP_SPIN_SAMPLES; i++)
        rtudp_spin_wake(&s, 5000 * US);
    CHECK_EQ(s.margin_ns, 200 * US);
    /* and better again: down to the minimum, never below */
    for (int i = 0; i < 2 * RTUDP_SPIN_SAMPLES; i++)
        rtudp_spin_wake(&s, -3 * US); /* an early wake counts as 0 */
    CHECK_EQ(s.margin_ns, 5 * US);
    /* huge values saturate instead of overflowing */
    rtudp_spin_wake(&s, INT64_MAX);
    CHECK_IN(s.margin_ns, 5 * US, 200 * US);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* after each update the margin is the nearest-rank p99 of the samples held (plus the
 * slack), whatever their order: checked against a sort of the same samples */
static void test_spin_margin_is_the_nearest_rank_p99(void)
{
    struct rtudp_spin s;
    rtudp_spin_init(&s, 20 * US, 0, INT64_MAX / 4, 0, 1000 * NS_PER_MS, 0);
    int64_t held[RTUDP_SPIN_SAMPLES];
    uint32_t seed = 12345, n = 0, next = 0, since = 0;
    for (int i = 0; i < 5 * RTUDP_SPIN_SAMPLES; i++) {
        seed = seed * 1103515245u + 12345u;
        int64_t late = (int64_t)(seed >> 8) % (300 * US);
        rtudp_spin_wake(&s, late);
        held[next] = late;
        next = (next + 1) % RTUDP_SPIN_SAMPLES;
        if (n < RTUDP_SPIN_SAMPLES)
            n++;
        /* recomputed every RTUDP_SPIN_UPDATE_EVERY samples, at each while fewer */
        if (++since >= RTUDP_SPIN_UPDATE_EVERY || n < RTUDP_SPIN_UPDATE_EVERY) {
            since = 0;
            int64_t sorted[RTUDP_SPIN_SAMPLES];
            memcpy(sorted, held, n * sizeof sorted[0]);
            qsort(sorted, n, sizeof sorted[0], cmp_i64);
            uint32_t rank = (n * RTUDP_SPIN_PERCENTILE + 99) / 100;
            CHECK_EQ(s.margin_ns, sorted[rank - 1] + RTUDP_SPIN_SLACK_NS);
        }
    }
}

static void test_spin_bridges_short_costly_gaps(void)
{
    struct rtudp_spin s;
    rtudp_spin_init(&s, 30 * US, 5 * US, 200 * US, 100 * NS_PER_MS, 1000 * NS_PER_MS, 0);
    /* a sleep measured to cost 18 us of CPU: gaps up to twice that, and within the
     * margin (30 us), are spun */
    for (int i = 0; i < 100; i++)
        rtudp_spin_sleep_cost(&s, 18 * US);
    CHECK_IN(s.sleep_cpu_ns, 17 * US, 18 * US);
    CHECK(rtudp_spin_bridges(&s, 20 * US));
    CHECK(rtudp_spin_bridges(&s, 30 * US));
    CHECK(!rtudp_spin_bridges(&s, 31 * US));   /* past the margin: the sleep lands in time */
    /* cheap sleeps (bare metal): only gaps up to twice their cost */
    for (int i = 0; i < 100; i++)
        rtudp_spin_sleep_cost(&s, 3 * US);
    CHECK(rtudp_spin_bridges(&s, 5 * US));
    CHECK(!rtudp_spin_bridges(&s, 20 * US));
    /* one very slow (preempted) sleep cannot make every gap a bridge */
    rtudp_spin_sleep_cost(&s, INT64_MAX / 2);
    CHECK(s.sleep_cpu_ns <= 200 * US);
    /* a budget of 0: never spin, not even a bridge */
    rtudp_spin_init(&s, 30 * US, 5 * US, 200 * US, 0, 1000 * NS_PER_MS, 0);
    for (int i = 0; i < 100; i++)
        rtudp_spin_sleep_cost(&s, 18 * US);
    CHECK(!rtudp_spin_bridges(&s, 1 * US));
}

static void test_spin_long_parks_end_the_largest_margin_early(void)
{
    struct rtudp_spin s;
    rtudp_spin_init(&s, 30 * US, 5 * US, 200 * US, 100 * NS_PER_MS, 1000 * NS_PER_MS, 0);
    /* a short park: the margin the wake-ups taught */
    CHECK(rtudp_spin_margin(&s, 1 * NS_PER_MS) == 30 * US);
    CHECK(rtudp_spin_margin(&s, RTUDP_SPIN_LONG_PARK_NS - 1) == 30 * US);
    /* a long one (the vCPU halts long, its wake-up's tail is longer): the largest */
    CHECK(rtudp_spin_margin(&s, RTUDP_SPIN_LONG_PARK_NS) == 200 * US);
    CHECK(rtudp_spin_margin(&s, 5 * NS_PER_MS) == 200 * US);
}

/* the idle poller naps through long parks, but not through one before a deadline the
 * worker spins to from a long park's early end (that end holds a halted vCPU's late
 * wake-up); with the spin refused (budget spent, as on a loaded CPU) it may */
static void test_spin_park_naps_only_where_no_spin_follows(void)
{
    int64_t keep = 200 * US;
    CHECK(rtudp_spin_park_naps(5 * NS_PER_MS, keep, 0, 5 * NS_PER_MS));   /* nothing spun */
    CHECK(!rtudp_spin_park_naps(5 * NS_PER_MS, keep, 1, 5 * NS_PER_MS));  /* spun to */
    CHECK(rtudp_spin_park_naps(1500 * US, keep, 1, RTUDP_SPIN_LONG_PARK_NS - 1));
    CHECK(!rtudp_spin_park_naps(keep - 1, keep, 0, 5 * NS_PER_MS));       /* short park */
    CHECK(rtudp_spin_park_naps(keep, keep, 0, keep));
}

static void test_spin_budget_per_window(void)
{
    struct rtudp_spin s;
    int64_t t = 1000 * NS_PER_MS;
    rtudp_spin_init(&s, 20 * US, 5 * US, 200 * US, 100 * NS_PER_MS, 1000 * NS_PER_MS, t);
    CHECK_EQ(rtudp_spin_room(&s, t, 0, 1), 100 * NS_PER_MS);
    rtudp_spin_used(&s, 60 * NS_PER_MS);
    CHECK_EQ(rtudp_spin_room(&s, t + 10, 0, 1), 40 * NS_PER_MS);
    rtudp_spin_used(&s, 60 * NS_PER_MS);
    CHECK_EQ(rtudp_spin_room(&s, t + 20, 0, 1), 0);
    rtudp_spin_used(&s, -5); /* ignored */
    CHECK_EQ(s.total_ns, 120 * NS_PER_MS);
    /* a new window restores the budget; the total keeps counting */
    CHECK_EQ(rtudp_spin_room(&s, t + 1000 * NS_PER_MS, 0, 1), 100 * NS_PER_MS);
    CHECK_EQ(s.total_ns, 120 * NS_PER_MS);
    /* time going backwards (cannot happen with CLOCK_MONOTONIC) starts a window too */
    rtudp_spin_used(&s, 100 * NS_PER_MS);
    CHECK_EQ(rtudp_spin_room(&s, t, 0, 1), 100 * NS_PER_MS);
}

/* the RT throttle counts all CPU time: spinning at SCHED_FIFO stops near the cap
 * whatever budget is left, and a new window lifts it */
static void test_spin_stops_at_the_cpu_cap(void)
{
    struct rtudp_spin s;
    const int64_t win = 20 * NS_PER_MS, cap = win / 1000 * RTUDP_SPIN_CPU_CAP_PERMILLE;
    int64_t t = 5000 * NS_PER_MS, cpu = 777 * NS_PER_MS;
    rtudp_spin_init(&s, 20 * US, 5 * US, 200 * US, win, win, t); /* budget: all of it */
    CHECK_EQ(rtudp_spin_room(&s, t + 1, cpu, 1), cap);              /* a new window begins */
    CHECK_EQ(rtudp_spin_room(&s, t + 2, cpu + cap - 3 * US, 1), 3 * US);
    CHECK_EQ(rtudp_spin_room(&s, t + 3, cpu + cap + 1, 1), 0);       /* sends used it up */
    /* a SCHED_OTHER spin is not throttled: only the budget bounds it */
    rtudp_spin_used(&s, 5 * NS_PER_MS);
    CHECK_EQ(rtudp_spin_room(&s, t + 4, cpu + cap + 1, 0), win - 5 * NS_PER_MS);
    CHECK_EQ(rtudp_spin_room(&s, t + 1 + win, cpu + cap + 1, 1), cap);
}

/* past the cap: a base sleep ends at the next deadline if that comes first; a near
 * deadline is sent first, but never twice in a row; longer pieces keep their length */
static void test_capped_sleep_ends_at_the_next_deadline(void)
{
    const int64_t base = 30 * US, gap_min = RTUDP_SPIN_CAPPED_GAP_MIN_NS;
    int first = 0;
    CHECK_EQ(rtudp_spin_capped_sleep(18 * US, base, base, &first), 18 * US);
    CHECK_EQ(first, 0);
    CHECK_EQ(rtudp_spin_capped_sleep(500 * US, base, base, &first), base); /* far: a piece */
    CHECK_EQ(rtudp_spin_capped_sleep(gap_min - 1, base, base, &first), 0); /* near: send it */
    CHECK_EQ(first, 1);
    CHECK_EQ(rtudp_spin_capped_sleep(2 * US, base, base, &first), 2 * US); /* not twice */
    CHECK_EQ(first, 0);
    /* a backlog (due already): every other turn sleeps a whole piece */
    CHECK_EQ(rtudp_spin_capped_sleep(-5 * US, base, base, &first), 0);
    CHECK_EQ(rtudp_spin_capped_sleep(-25 * US, base, base, &first), base);
    CHECK_EQ(rtudp_spin_capped_sleep(-45 * US, base, base, &first), 0);
    /* a longer piece for a task that shares the CPU: whole, whatever the deadline */
    first = 0;
    CHECK_EQ(rtudp_spin_capped_sleep(2 * US, 50 * US, base, &first), 50 * US);
    CHECK_EQ(rtudp_spin_capped_sleep(18 * US, 50 * US, base, &first), 50 * US);
    CHECK_EQ(first, 0);
}

/* ------------------------------------------------------------------ cpushare */

/* one 20 ms window: the worker had `ours` of it, the CPU idled `idle`, others the rest */
static int look(struct rtudp_cpushare *s, int64_t *t, int64_t *cpu, int64_t *idle,
                int64_t ours_ms10, int64_t idle_ms10)
{
    *t += 20 * NS_PER_MS;
    *cpu += ours_ms10 * NS_PER_MS / 10;
    *idle += idle_ms10 * NS_PER_MS / 10;
    return rtudp_share_look(s, *t, *cpu, *idle);
}

/* others starved (under 6 % on average, the CPU hardly ever idle): the capped sleeps
 * grow a step a look, up to the most; once the CPU idles again on average they shrink
 * back to the base, and the CPU is no longer contended.  A reader that fills some
 * windows and leaves the next ones idle is not starved. */
static void test_share_sleeps_follow_what_others_need(void)
{
    struct rtudp_cpushare s;
    memset(&s, 0, sizeof s);
    int64_t t = 1000 * NS_PER_MS, cpu = 5 * NS_PER_MS, idle = 70 * NS_PER_MS;
    CHECK_EQ(rtudp_share_look(&s, t, cpu, idle), 0);   /* the first look only starts */
    CHECK_EQ(s.sleep_ns, RTUDP_SHARE_BASE_SLEEP_NS);
    CHECK_EQ(look(&s, &t, &cpu, &idle, 170, 30), 0);    /* 85 % ours, 15 % idle */
    for (int i = 0; i < 40; i++) {                      /* a bursty reader */
        CHECK_EQ(look(&s, &t, &cpu, &idle, 182, 0), 0); /* fills one window (9 %) ... */
        CHECK_EQ(look(&s, &t, &cpu, &idle, 180, 16), 0); /* ... and idles 8 % of the next */
    }
    CHECK_EQ(s.contended_looks, 0);
    /* a busy loop: others 5 %, never idle; the average idle falls below 0.5 % */
    int n = 0;
    while (!look(&s, &t, &cpu, &idle, 190, 0) && n < 40)
        n++;
    CHECK(n >= 10 && n < 40);
    CHECK_EQ(s.sleep_ns, RTUDP_SHARE_BASE_SLEEP_NS + RTUDP_SHARE_STEP_NS);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(look(&s, &t, &cpu, &idle, 190, 0), 1); /* to the most, and no further */
    CHECK_EQ(s.sleep_ns, RTUDP_SHARE_MAX_SLEEP_NS);
    CHECK_EQ(look(&s, &t, &cpu, &idle, 175, 0), 1);     /* others 12 %, never idle: kept */
    CHECK_EQ(s.sleep_ns, RTUDP_SHARE_MAX_SLEEP_NS);
    /* the task is gone: the CPU idles 10 %; the sleeps shrink a step a look */
    n = 0;
    while (s.sleep_ns == RTUDP_SHARE_MAX_SLEEP_NS && n < 10) {
        look(&s, &t, &cpu, &idle, 180, 20);
        n++;
    }
    CHECK(n >= 1 && n < 10);
    int steps = (int)((RTUDP_SHARE_MAX_SLEEP_NS - RTUDP_SHARE_BASE_SLEEP_NS) / RTUDP_SHARE_STEP_NS);
    for (int i = 1; i < steps; i++)
        CHECK_EQ(look(&s, &t, &cpu, &idle, 180, 20), i < steps - 1);
    CHECK_EQ(s.sleep_ns, RTUDP_SHARE_BASE_SLEEP_NS);
    CHECK_EQ(look(&s, &t, &cpu, &idle, 180, 20), 0);     /* never below the base */
    CHECK_EQ(s.sleep_ns, RTUDP_SHARE_BASE_SLEEP_NS);
}

/* alone: others under 3 % in each of the last 8 looks.  One look with others busy,
 * or the host stealing, starts the count again; a first look, or clocks that went
 * back, too; a CPU whose idle time cannot be read is never alone. */
static void test_share_alone_after_quiet_looks(void)
{
    struct rtudp_cpushare s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(rtudp_share_alone(&s), 0);                  /* no look yet */
    int64_t t = 1000 * NS_PER_MS, cpu = 0, idle = 0;
    CHECK_EQ(rtudp_share_look(&s, t, cpu, idle), 0);
    CHECK_EQ(rtudp_share_alone(&s), 0);                  /* one look says nothing */
    for (int i = 1; i < RTUDP_SHARE_ALONE_LOOKS; i++) {
        look(&s, &t, &cpu, &idle, 180, 19);              /* others 0.5 % */
        CHECK_EQ(rtudp_share_alone(&s), 0);
    }
    look(&s, &t, &cpu, &idle, 180, 19);
    CHECK_EQ(rtudp_share_alone(&s), 1);
    look(&s, &t, &cpu, &idle, 180, 14);                  /* others 3 %: somebody */
    CHECK_EQ(rtudp_share_alone(&s), 0);
    for (int i = 1; i < RTUDP_SHARE_ALONE_LOOKS; i++)
        look(&s, &t, &cpu, &idle, 200, 0);               /* all ours (spun at SCHED_OTHER) */
    CHECK_EQ(rtudp_share_alone(&s), 0);
    look(&s, &t, &cpu, &idle, 200, 0);
    CHECK_EQ(rtudp_share_alone(&s), 1);
    /* never idle, others nothing, for good: nobody is starved, so the capped sleeps do
     * not grow (they would for a task getting under 6 %: test above) */
    for (int i = 0; i < 40; i++)
        CHECK_EQ(look(&s, &t, &cpu, &idle, 200, 0), 0);
    CHECK_EQ(s.sleep_ns, RTUDP_SHARE_BASE_SLEEP_NS);
    CHECK_EQ(rtudp_share_alone(&s), 1);
    /* a task took the CPU from the worker: somebody is there, 8 more looks to be sure */
    rtudp_share_someone(&s);
    CHECK_EQ(rtudp_share_alone(&s), 0);
    for (int i = 1; i < RTUDP_SHARE_ALONE_LOOKS; i++)
        look(&s, &t, &cpu, &idle, 200, 0);
    CHECK_EQ(rtudp_share_alone(&s), 0);
    look(&s, &t, &cpu, &idle, 200, 0);
    CHECK_EQ(rtudp_share_alone(&s), 1);
    /* clocks that went back: start over */
    rtudp_share_look(&s, t + 30 * NS_PER_MS, cpu - 1, idle);
    CHECK_EQ(rtudp_share_alone(&s), 0);
    /* no idle time to read: never alone */
    memset(&s, 0, sizeof s);
    t += 100 * NS_PER_MS;
    for (int i = 0; i < 2 * RTUDP_SHARE_ALONE_LOOKS; i++) {
        t += 20 * NS_PER_MS;
        cpu += 20 * NS_PER_MS;
        rtudp_share_look(&s, t, cpu, -1);
    }
    CHECK_EQ(rtudp_share_alone(&s), 0);
}

/* no idle time to read (no cpuidle): never contended; clocks that go back or a look
 * too soon change nothing */
static void test_share_edges(void)
{
    struct rtudp_cpushare s;
    memset(&s, 0, sizeof s);
    int64_t t = 1000 * NS_PER_MS, cpu = 0, idle = 0;
    CHECK_EQ(rtudp_share_look(&s, t, cpu, idle), 0);
    CHECK_EQ(look(&s, &t, &cpu, &idle, 200, 0), 1);     /* all ours: others had nothing */
    CHECK_EQ(rtudp_share_look(&s, t + NS_PER_MS, cpu + NS_PER_MS, idle), 1); /* too soon */
    CHECK_EQ(rtudp_share_look(&s, t + 30 * NS_PER_MS, cpu - 1, idle), 1); /* went back */
    CHECK_EQ(rtudp_share_look(&s, t + 60 * NS_PER_MS, cpu, -1), 0);       /* unreadable */
    CHECK_EQ(s.at_ns, 0);
    CHECK_EQ(s.sleep_ns, RTUDP_SHARE_BASE_SLEEP_NS);
}

/* ------------------------------------------------------------------ guard */

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void nap_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * NS_PER_MS};
    nanosleep(&ts, NULL);
}

/* The guard restores the thread's policy only while armed (demoted) and only once the
 * thread has been silent past its planned beat; a thread that beats, or that parks
 * until a time it said, is left alone.  This thread drops to SCHED_BATCH (no privilege
 * needed) and the guard's "real-time" policy here is SCHED_OTHER, so its take-back
 * shows in this very thread's policy.  Generous times for a loaded (sanitized) run:
 * silent means 200 ms. */
static void test_guard_takes_back_a_silent_thread_only(void)
{
    struct sched_param none = {.sched_priority = 0};
    CHECK_EQ(sched_setscheduler(0, SCHED_BATCH, &none), 0);
    struct rtudp_guard g;
    CHECK_EQ(rtudp_guard_start(&g, SCHED_OTHER, 0, RTUDP_GUARD_TIMER), 0);
    CHECK(rtudp_guard_ready(&g));
    g.silent_ns = 200 * NS_PER_MS;   /* set before the first arm: the guard reads it after */
    g.late_ns = 100 * NS_PER_S;      /* never "the host stalled" */
    nap_ms(300);                                         /* silent, but not armed */
    CHECK_EQ(rtudp_guard_took_back(&g), 0);
    rtudp_guard_arm(&g, mono_now());
    for (int64_t end = mono_now() + 500 * NS_PER_MS; mono_now() < end;) {
        rtudp_guard_beat(&g, mono_now());                /* working: beats */
        nap_ms(5);
    }
    CHECK_EQ(rtudp_guard_took_back(&g), 0);
    int64_t park_end = mono_now() + 300 * NS_PER_MS;
    rtudp_guard_beat(&g, park_end);                      /* parks until then */
    nap_ms(100);
    if (mono_now() < park_end + g.silent_ns)             /* (this nap may overrun) */
        CHECK_EQ(rtudp_guard_took_back(&g), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_BATCH);
    int64_t give_up = mono_now() + 10 * NS_PER_S;        /* now silent for good */
    while (!rtudp_guard_took_back(&g) && mono_now() < give_up)
        nap_ms(5);
    CHECK(mono_now() < give_up);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);        /* this thread's, given back */
    CHECK_EQ(atomic_load(&g.promotions), 1);
    CHECK_EQ(atomic_load(&g.armed), GUARD_IDLE);         /* once: it disarmed */
    nap_ms(300);
    CHECK_EQ(rtudp_guard_took_back(&g), 0);
    rtudp_guard_arm(&g, mono_now());                     /* restored before it looks */
    rtudp_guard_disarm(&g);
    nap_ms(300);
    CHECK_EQ(rtudp_guard_took_back(&g), 0);
    CHECK_EQ(atomic_load(&g.promotions), 1);
    rtudp_guard_stop(&g);
    CHECK(!rtudp_guard_ready(&g));
}

/* The switches way: a thread that sleeps on its own is left alone; one that another
 * task keeps from its CPU is given its policy back.  The guarded thread is one of the
 * test's own, at SCHED_BATCH and nice 19, and the guard's policy is SCHED_OTHER (no
 * privilege needed: the take-back shows in the thread's policy); it and a busy thread
 * (the other task, nice 0, which the scheduler favours) are pinned to one CPU. */
static atomic_int hog_go, hog_stop;

/* made by the test's own thread (SCHED_OTHER, nice 0), pinned to the guarded thread's
 * CPU; naps until told to go */
static void *hog(void *arg)
{
    (void)arg;
    while (!atomic_load(&hog_go) && !atomic_load(&hog_stop))
        nap_ms(1);
    while (!atomic_load(&hog_stop))
        ;
    return NULL;
}

/* this thread's involuntary context switches so far: times another task took its CPU */
static long involuntary_switches(void)
{
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_THREAD, &ru), 0);
    return ru.ru_nivcsw;
}

/* skip the test where the kernel gives this thread no counting software event for its
 * context switches (asked of the kernel itself: what the guard reports is under test) */
static void need_switch_events(void)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_SOFTWARE;
    a.size = sizeof a;
    a.config = PERF_COUNT_SW_CONTEXT_SWITCHES;
    a.disabled = 1;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        SKIP("no perf software event for this thread's context switches "
             "(perf_event_open: %s)", strerror(errno));
    uint64_t n = 0;
    struct timespec nap = {.tv_sec = 0, .tv_nsec = 1000000}; /* sleeps, so switches */
    CHECK_EQ(ioctl(fd, PERF_EVENT_IOC_ENABLE, 0), 0);
    CHECK_EQ(nanosleep(&nap, NULL), 0);
    CHECK_EQ(ioctl(fd, PERF_EVENT_IOC_DISABLE, 0), 0);
    CHECK_EQ(read(fd, &n, sizeof n), (ssize_t)sizeof n);
    close(fd);
    if (n == 0)
        SKIP("the perf software event of context switches opens but never counts here");
}

static void *guarded(void *arg)
{
    const cpu_set_t *one = arg;
    struct sched_param none = {.sched_priority = 0};
    CHECK_EQ(sched_setaffinity(0, sizeof *one, one), 0);
    CHECK_EQ(sched_setscheduler(0, SCHED_BATCH, &none), 0);
    CHECK_EQ(setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19), 0);
    need_switch_events();
    struct rtudp_guard g;
    CHECK_EQ(rtudp_guard_start(&g, SCHED_OTHER, 0, RTUDP_GUARD_SWITCHES), 0);
    CHECK(rtudp_guard_watches_switches(&g)); /* the kernel gives the event (probed) */
    g.late_ns = 100 * NS_PER_S; /* never "the host stalled" */
    rtudp_guard_arm(&g, mono_now());
    long preempted = involuntary_switches();
    for (int i = 0; i < 60; i++)
        nap_ms(5); /* switches of its own: asleep, not preempted */
    preempted = involuntary_switches() - preempted;
    if (rtudp_guard_took_back(&g) && preempted > 0) {
        /* a task of the busy machine took the CPU from the thread between its naps:
         * the take-back is right, and the guard's work is shown */
        printf("  (another task preempted the napping thread %ld times and the guard took "
               "it back: the busy machine showed the take-back before the test's hog)\n",
               preempted);
        CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
        CHECK_EQ(atomic_load(&g.promotions), 1);
        rtudp_guard_disarm(&g);
        rtudp_guard_stop(&g);
        return NULL;
    }
    CHECK_EQ(rtudp_guard_took_back(&g), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_BATCH);
    atomic_store(&hog_go, 1);
    int64_t give_up = mono_now() + 10 * NS_PER_S; /* spins, and shares its CPU */
    while (!rtudp_guard_took_back(&g) && mono_now() < give_up)
        ;
    atomic_store(&hog_stop, 1);
    CHECK(mono_now() < give_up);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER); /* this thread's, given back */
    CHECK_EQ(atomic_load(&g.promotions), 1);
    CHECK_EQ(atomic_load(&g.armed), GUARD_IDLE);
    rtudp_guard_disarm(&g);
    rtudp_guard_stop(&g);
    CHECK(!rtudp_guard_ready(&g));
    return NULL;
}

static void test_guard_watching_switches_takes_back_a_preempted_thread(void)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    atomic_store(&hog_go, 0);
    atomic_store(&hog_stop, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    CHECK_EQ(pthread_attr_setaffinity_np(&attr, sizeof one, &one), 0);
    pthread_t h, t; /* the guarded thread's policy, nice and CPU end with it */
    CHECK_EQ(pthread_create(&h, &attr, hog, NULL), 0);
    pthread_attr_destroy(&attr);
    CHECK_EQ(pthread_create(&t, NULL, guarded, &one), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    atomic_store(&hog_stop, 1);
    CHECK_EQ(pthread_join(h, NULL), 0);
}

/* ------------------------------------------------------------------ txstamps */

static struct rtudp_channel_block *new_block(void)
{
    struct rtudp_channel_block *b = calloc(1, sizeof *b);
    CHECK(b);
    return b;
}

static void test_stamps_match_by_key(void)
{
    struct rtudp_channel_block *b = new_block();
    struct rtudp_txstamps s;
    CHECK_EQ(rtudp_txstamps_init(&s, 100, 5 * NS_PER_MS), RTUDP_OK);
    CHECK_EQ(s.capacity, 128);
    CHECK_EQ(rtudp_txstamps_deadline(&s), INT64_MAX);
    int64_t t0 = 10 * NS_PER_MS;
    for (uint32_t k = 0; k < 10; k++)
        rtudp_txstamps_sent(&s, b, 40 + k, t0 + k * US, t0 + k * US + 50 * US, 1, 0, &no_tap);
    CHECK_EQ(s.len, 10);
    CHECK_EQ(rtudp_txstamps_deadline(&s), t0 + 50 * US + 5 * NS_PER_MS);
    /* stamps out of order: each recorded once, with its own send_at */
    rtudp_txstamps_stamp(&s, b, 43, t0 + 3 * US + 7 * US);
    CHECK_EQ(s.len, 10); /* the front still waits */
    rtudp_txstamps_stamp(&s, b, 40, t0 + 2 * US);
    CHECK_EQ(s.len, 9);
    rtudp_txstamps_stamp(&s, b, 40, t0 + 2 * US); /* again: ignored */
    rtudp_txstamps_stamp(&s, b, 43, t0 + 2 * US); /* again: ignored */
    rtudp_txstamps_stamp(&s, b, 1000, t0);        /* never sent: ignored */
    CHECK_EQ(s.unmatched, 3);
    CHECK_EQ(b->tx_kernel_stamped, 2);
    CHECK_EQ(b->tx_lateness.count, 2);
    CHECK_EQ(b->tx_lateness.min_ns, 2 * US);
    CHECK_EQ(b->tx_lateness.max_ns, 7 * US);
    for (uint32_t k = 41; k < 50; k++)
        if (k != 43)
            rtudp_txstamps_stamp(&s, b, k, t0 + (k - 40) * US + US);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(b->tx_lateness.count, 10);
    CHECK_EQ(b->tx_kernel_stamped, 10);
    rtudp_txstamps_free(&s);
    free(b);
}

static void test_stamps_time_out_to_send_time(void)
{
    struct rtudp_channel_block *b = new_block();
    struct rtudp_txstamps s;
    CHECK_EQ(rtudp_txstamps_init(&s, 8, 5 * NS_PER_MS), RTUDP_OK);
    int64_t t0 = 100 * NS_PER_MS;
    rtudp_txstamps_sent(&s, b, 0, t0, t0 + 30 * US, 1, 0, &no_tap);
    rtudp_txstamps_sent(&s, b, 1, t0, t0 + 40 * US, 1, 0, &no_tap);
    rtudp_txstamps_stamp(&s, b, 1, t0 + 35 * US);
    rtudp_txstamps_expire(&s, b, t0 + 4 * NS_PER_MS); /* not yet */
    CHECK_EQ(s.len, 2);
    rtudp_txstamps_expire(&s, b, t0 + 30 * US + 5 * NS_PER_MS);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(s.timed_out, 1);
    CHECK_EQ(b->tx_lateness.count, 2);
    CHECK_EQ(b->tx_kernel_stamped, 1);
    /* its late stamp changes nothing */
    rtudp_txstamps_stamp(&s, b, 0, t0 + 10 * US);
    CHECK_EQ(b->tx_lateness.count, 2);
    rtudp_txstamps_free(&s);
    free(b);
}

static void test_stamps_full_restart_and_flush(void)
{
    struct rtudp_channel_block *b = new_block();
    struct rtudp_txstamps s;
    CHECK_EQ(rtudp_txstamps_init(&s, 4, 5 * NS_PER_MS), RTUDP_OK);
    int64_t t0 = NS_PER_MS;
    /* keys wrap at 2^32 like the kernel's */
    for (uint32_t i = 0; i < 6; i++)
        rtudp_txstamps_sent(&s, b, UINT32_MAX - 2 + i, t0, t0 + i * US, 1, 0, &no_tap);
    CHECK_EQ(s.len, 4);                  /* the two oldest were resolved to make room */
    CHECK_EQ(b->tx_lateness.count, 2);
    rtudp_txstamps_stamp(&s, b, 0, t0 + 9 * US); /* key UINT32_MAX - 2 + 3 == 0 */
    CHECK_EQ(b->tx_kernel_stamped, 1);
    /* keys restart (a socket set up again): older ones are resolved first */
    rtudp_txstamps_sent(&s, b, 7, t0, t0 + 20 * US, 1, 0, &no_tap);
    CHECK_EQ(s.len, 1);
    CHECK_EQ(s.first_key, 7);
    CHECK_EQ(b->tx_lateness.count, 6);
    rtudp_txstamps_flush(&s, b);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(b->tx_lateness.count, 7);
    CHECK_EQ(b->tx_lateness.negative, 0);
    rtudp_txstamps_free(&s);
    /* bad arguments */
    CHECK_EQ(rtudp_txstamps_init(&s, 0, 1), RTUDP_EINVAL);
    CHECK_EQ(rtudp_txstamps_init(&s, 4, -1), RTUDP_EINVAL);
    free(b);
}

/* a record is late on arrival when taken with its deadline past or nearer than the
 * margin; "now" (0) never is */
static void test_arrival_is_judged_against_the_margin(void)
{
    int64_t now = 50 * NS_PER_MS, margin = 20 * US;
    CHECK(rtudp_tx_arrived_late(now - NS_PER_MS, now + margin));  /* already past */
    CHECK(rtudp_tx_arrived_late(now + 5 * US, now + margin));     /* within the margin */
    CHECK(!rtudp_tx_arrived_late(now + margin, now + margin));    /* just in time */
    CHECK(!rtudp_tx_arrived_late(now + 200 * NS_PER_MS, now + margin));
    CHECK(!rtudp_tx_arrived_late(0, now + margin));               /* "now" */
}

/* what a record taken now came after: a running worker's last look that found none, so
 * a stall of its own stays its own; after a park on the bell, the first producer's
 * ring (however late the worker woke), else about now; a record due after the park's
 * deadline rang no bell and came in time */
static void test_in_time_by_follows_what_the_worker_watched(void)
{
    int64_t now = 50 * NS_PER_MS, margin = 20 * US, stall = 10 * NS_PER_MS;
    /* running: it last found nothing 10 ms ago (it stalled since): a record due 1 ms
     * ago may have come in time */
    int64_t by = rtudp_tx_in_time_by(now - stall, 0, 0, now, margin);
    CHECK_EQ(by, now - stall + margin);
    CHECK(!rtudp_tx_arrived_late(now - NS_PER_MS, by));
    CHECK(rtudp_tx_arrived_late(now - stall, by));                /* past before it looked */
    /* parked on the bell, woken without a ring: judged when taken */
    by = rtudp_tx_in_time_by(RTUDP_TX_LOOK_PARKED, INT64_MAX, 0, now, margin);
    CHECK_EQ(by, now + margin);
    CHECK(rtudp_tx_arrived_late(now - NS_PER_MS, by));
    /* rung 10 ms ago and woken only now (stopped while parked): the ringer came then */
    by = rtudp_tx_in_time_by(RTUDP_TX_LOOK_PARKED, INT64_MAX, now - stall, now, margin);
    CHECK_EQ(by, now - stall + margin);
    CHECK(!rtudp_tx_arrived_late(now - stall + NS_PER_MS, by));   /* rang 1 ms ahead */
    CHECK(rtudp_tx_arrived_late(now - stall - US, by));           /* rang already late */
    /* ... a stamp from the future (a hostile producer) counts as now */
    CHECK_EQ(rtudp_tx_in_time_by(RTUDP_TX_LOOK_PARKED, INT64_MAX, now + stall, now, margin),
             now + margin);
    /* a park for a deadline 5 us ahead: a record due then rang no bell */
    by = rtudp_tx_in_time_by(RTUDP_TX_LOOK_PARKED, now + 5 * US, 0, now, margin);
    CHECK_EQ(by, now + 5 * US);
    CHECK(!rtudp_tx_arrived_late(now + 5 * US, by));
    /* a new worker (look_ns 0) knows nothing: none is late on arrival */
    CHECK(!rtudp_tx_arrived_late(now - NS_PER_MS, rtudp_tx_in_time_by(0, 0, 0, now, margin)));
}

/* only departures later than RTUDP_TX_LATE_NS count, each once, under its cause: the
 * two causes add up to every late departure */
static void test_late_departures_are_counted_by_cause(void)
{
    struct rtudp_tx_late l;
    memset(&l, 0, sizeof l);
    rtudp_tx_late_count(&l, RTUDP_TX_LATE_NS, 1, 1);     /* on the mark: not late */
    rtudp_tx_late_count(&l, -5 * US, 0, 1);              /* early */
    CHECK_EQ(l.arrival + l.sent, 0);
    CHECK_EQ(rtudp_tx_late_count(&l, 3 * NS_PER_MS, 1, 2), 0); /* a GSO run of two, taken late */
    CHECK_EQ(rtudp_tx_late_count(&l, 150 * US, 0, 1), 1);      /* taken in time, sent late */
    CHECK_EQ(rtudp_tx_late_count(&l, 400 * US, 0, 1), 1);
    CHECK_EQ(rtudp_tx_late_count(&l, 1 * NS_PER_MS, 1, 1), 0);
    CHECK_EQ(l.arrival, 3);
    CHECK_EQ(l.arrival_ns, 7 * NS_PER_MS);
    CHECK_EQ(l.arrival_max_ns, 3 * NS_PER_MS);
    CHECK_EQ(l.sent, 2);
    CHECK_EQ(l.sent_ns, 550 * US);
    CHECK_EQ(l.sent_max_ns, 400 * US);

    /* through the stamps: the cause rides with the entry to its departure, and the
     * worker's totals count what the channel's block does */
    struct rtudp_channel_block *b = new_block();
    struct rtudp_txstamps s;
    CHECK_EQ(rtudp_txstamps_init(&s, 8, 5 * NS_PER_MS), RTUDP_OK);
    struct rtudp_worker_slot worker;
    memset(&worker, 0, sizeof worker);
    s.worker = &worker;
    int64_t t0 = 100 * NS_PER_MS;
    rtudp_txstamps_sent(&s, b, 0, t0, t0 + US, 1, 1, &no_tap);
    rtudp_txstamps_sent(&s, b, 1, t0, t0 + US, 1, 0, &no_tap);
    rtudp_txstamps_sent(&s, b, 2, t0, t0 + US, 1, 1, &no_tap);
    rtudp_txstamps_stamp(&s, b, 0, t0 + 2 * NS_PER_MS);
    rtudp_txstamps_stamp(&s, b, 1, t0 + 300 * US);
    rtudp_txstamps_stamp(&s, b, 2, t0 + 10 * US);          /* taken late, left on time */
    CHECK_EQ(b->late.arrival, 1);
    CHECK_EQ(b->late.arrival_max_ns, 2 * NS_PER_MS);
    CHECK_EQ(b->late.sent, 1);
    CHECK_EQ(b->late.sent_max_ns, 300 * US);
    CHECK_EQ(b->tx_lateness.count, 3);
    /* no stamp: timed by the send call, with the same cause */
    rtudp_txstamps_sent(&s, b, 3, t0, t0 + 500 * US, 1, 1, &no_tap);
    rtudp_txstamps_flush(&s, b);
    CHECK_EQ(b->late.arrival, 2);
    rtudp_txstamps_record(&s, b, t0, t0 + 700 * US, 0, 4, 0);
    CHECK_EQ(b->late.sent, 5);
    CHECK_EQ(b->late.sent_max_ns, 700 * US);
    CHECK_EQ(worker.tx_sent, b->tx_lateness.count);
    CHECK_EQ(worker.tx_sent, 8);
    CHECK_EQ(worker.tx_late_sent, b->late.sent);
    rtudp_txstamps_free(&s);
    free(b);
}

/* ------------------------------------------------------------------ host pauses */

static void test_hostpause_judges_by_switches(void)
{
    struct rtudp_hostpause h;
    memset(&h, 0, sizeof h);
    rtudp_hostpause_baseline(&h, 5);
    /* no switch since the baseline: the host's */
    CHECK_EQ(rtudp_hostpause_judge(&h, 300 * US, 5), 1);
    CHECK_EQ(rtudp_hostpause_judge(&h, 6 * NS_PER_MS, 5), 1);
    CHECK_EQ(h.pauses, 2);
    CHECK_EQ(h.pause_ns, (uint64_t)(300 * US + 6 * NS_PER_MS));
    CHECK_EQ(h.max_ns, 6 * NS_PER_MS);
    /* a switch came: a task's; the count is the new baseline, so the next is judged
     * from there */
    CHECK_EQ(rtudp_hostpause_judge(&h, 2 * NS_PER_MS, 6), 0);
    CHECK_EQ(h.taken, 1);
    CHECK_EQ(rtudp_hostpause_judge(&h, 400 * US, 6), 1);
    CHECK_EQ(h.pauses, 3);
    CHECK_EQ(h.max_ns, 6 * NS_PER_MS);
    /* shorter than the minimum, or an unknown count: nothing judged */
    CHECK_EQ(rtudp_hostpause_judge(&h, RTUDP_HOST_PAUSE_MIN_NS - 1, 6), 0);
    CHECK_EQ(rtudp_hostpause_judge(&h, NS_PER_MS, -1), 0);
    CHECK_EQ(rtudp_hostpause_judge(&h, NS_PER_MS, 6), 0); /* baseline unknown */
    CHECK_EQ(h.pauses, 3);
    CHECK_EQ(h.taken, 1);
    CHECK_EQ(rtudp_hostpause_judge(&h, NS_PER_MS, 6), 1);
}

static void test_hostpause_intervals_count_what_the_cpu_clock_did_not(void)
{
    struct rtudp_hostpause h;
    memset(&h, 0, sizeof h);
    /* the first read only marks */
    CHECK_EQ(rtudp_hostpause_interval(&h, 0, 0, 10, 2), 0);
    /* 1 ms of which the clock counted 0.2 ms, no switch: 0.8 ms the host's */
    CHECK_EQ(rtudp_hostpause_interval(&h, NS_PER_MS, 200 * US, 10, 2), 1);
    CHECK_EQ(h.pauses, 1);
    CHECK_EQ(h.max_ns, 800 * US);
    /* the clock counted nearly all of it: nothing */
    CHECK_EQ(rtudp_hostpause_interval(&h, NS_PER_MS, 900 * US, 10, 2), 0);
    /* a switch of either kind in the interval: another task (or a park) had the time */
    CHECK_EQ(rtudp_hostpause_interval(&h, 5 * NS_PER_MS, 0, 11, 2), 0);
    CHECK_EQ(rtudp_hostpause_interval(&h, 5 * NS_PER_MS, 0, 13, 3), 0);
    CHECK_EQ(h.pauses, 1);
    /* a spin step counted in the interval is not counted again: 6 ms uncounted, 6 ms
     * of it already a step's */
    CHECK_EQ(rtudp_hostpause_judge(&h, 6 * NS_PER_MS, 3), 1);
    CHECK_EQ(rtudp_hostpause_interval(&h, 7 * NS_PER_MS, NS_PER_MS, 13, 3), 0);
    CHECK_EQ(h.pauses, 2);
    /* ... but what is left beyond it is */
    CHECK_EQ(rtudp_hostpause_judge(&h, 300 * US, 3), 1);
    CHECK_EQ(rtudp_hostpause_interval(&h, 2 * NS_PER_MS, 500 * US, 13, 3), 1);
    CHECK_EQ(h.pauses, 4);
    CHECK_EQ(h.pause_ns, (uint64_t)(800 * US + 6 * NS_PER_MS + 300 * US + 1200 * US));
    CHECK_EQ(h.max_ns, 6 * NS_PER_MS);
    /* the interval's end is the spin steps' baseline too */
    CHECK_EQ(rtudp_hostpause_interval(&h, 10 * US, 10 * US, 20, 9), 0);
    CHECK_EQ(rtudp_hostpause_judge(&h, NS_PER_MS, 9), 1);
    /* unknown counts judge nothing */
    CHECK_EQ(rtudp_hostpause_interval(&h, 5 * NS_PER_MS, 0, -1, -1), 0);
    CHECK_EQ(rtudp_hostpause_interval(&h, 5 * NS_PER_MS, 0, 20, 9), 0);
    CHECK_EQ(h.pauses, 5);
}

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    CHECK_EQ(pthread_setaffinity_np(pthread_self(), sizeof set, &set), 0);
}

static atomic_int busy_stop;

static void *busy_on_cpu0(void *arg)
{
    (void)arg;
    pin_to(0);
    while (!atomic_load(&busy_stop))
        ;
    return NULL;
}

/* the count the judge relies on is this thread's: a busy task on its CPU makes it
 * grow, and the judge then names the lost time a task's */
static void test_hostpause_counts_a_task_taking_the_cpu(void)
{
    pin_to(0);
    struct rtudp_hostpause h;
    memset(&h, 0, sizeof h);
    long before = rtudp_hostpause_switches(NULL);
    CHECK(before >= 0);
    rtudp_hostpause_baseline(&h, before);
    pthread_t t;
    atomic_store(&busy_stop, 0);
    CHECK_EQ(pthread_create(&t, NULL, busy_on_cpu0, NULL), 0);
    /* spin until a step shows the CPU was taken (CFS gives each a few ms) */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = ts.tv_sec * NS_PER_S + ts.tv_nsec, end = now + 5 * NS_PER_S, gap = 0;
    while (now < end && gap < RTUDP_HOST_PAUSE_MIN_NS) {
        int64_t prev = now;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = ts.tv_sec * NS_PER_S + ts.tv_nsec;
        gap = now - prev;
    }
    atomic_store(&busy_stop, 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(gap >= RTUDP_HOST_PAUSE_MIN_NS); /* the busy thread took the CPU */
    long all_after;
    long after = rtudp_hostpause_switches(&all_after);
    CHECK(all_after >= after);
    CHECK(after > before);
    CHECK_EQ(rtudp_hostpause_judge(&h, gap, after), 0);
    CHECK_EQ(h.taken, 1);
    CHECK_EQ(h.pauses, 0);
}

/* ------------------------------------------------------------------ warm-up */

static void test_warmup_lead_follows_the_longest_recent(void)
{
    struct rtudp_warmup wu;
    rtudp_warmup_init(&wu);
    CHECK_EQ(wu.lead_ns, RTUDP_WARMUP_LEAD_START_NS);
    /* no socket: never wanted, however long the park */
    CHECK_EQ(rtudp_warmup_wanted(&wu, NS_PER_S), 0);
    /* the longest of the last RTUDP_WARMUP_RECENT, plus the slack */
    rtudp_warmup_took(&wu, 30 * US);
    CHECK_EQ(wu.lead_ns, 30 * US + RTUDP_WARMUP_SLACK_NS);
    for (int i = 0; i < RTUDP_WARMUP_RECENT - 1; i++)
        rtudp_warmup_took(&wu, 8 * US);
    CHECK_EQ(wu.lead_ns, 30 * US + RTUDP_WARMUP_SLACK_NS); /* the 30 us is still recent */
    rtudp_warmup_took(&wu, 8 * US);                        /* ... and now it is not */
    CHECK_EQ(wu.lead_ns, 8 * US + RTUDP_WARMUP_SLACK_NS);
    /* clamped both ways; a stall of seconds saturates instead of overflowing */
    for (int i = 0; i < RTUDP_WARMUP_RECENT; i++)
        rtudp_warmup_took(&wu, 0);
    CHECK_EQ(wu.lead_ns, RTUDP_WARMUP_LEAD_MIN_NS);
    rtudp_warmup_took(&wu, -5);
    CHECK_EQ(wu.lead_ns, RTUDP_WARMUP_LEAD_MIN_NS);
    rtudp_warmup_took(&wu, INT64_MAX);
    CHECK_EQ(wu.lead_ns, RTUDP_WARMUP_LEAD_MAX_NS);
}

static void test_warmup_sends_through_loopback_and_reads_it_back(void)
{
    struct rtudp_warmup wu;
    CHECK_EQ(rtudp_warmup_open(&wu), 0);
    CHECK(wu.fd >= 0);
    /* only a park that is long enough */
    CHECK_EQ(rtudp_warmup_wanted(&wu, RTUDP_WARMUP_AFTER_NS - 1), 0);
    CHECK_EQ(rtudp_warmup_wanted(&wu, RTUDP_WARMUP_AFTER_NS), 1);
    /* more warm-ups than one drain batch reads: each goes through the kernel (the
     * datagram waits in the socket's queue) and is timed */
    for (int i = 0; i < 40; i++)
        rtudp_warmup_run(&wu);
    CHECK_EQ(wu.count, 40);
    CHECK_EQ(wu.unread, 40);
    CHECK(wu.lead_ns >= RTUDP_WARMUP_LEAD_MIN_NS && wu.lead_ns <= RTUDP_WARMUP_LEAD_MAX_NS);
    int queued = 0;
    CHECK_EQ(ioctl(wu.fd, FIONREAD, &queued), 0);
    CHECK(queued > 0);
    /* read back: nothing left in the queue, nothing counted as dropped */
    rtudp_warmup_drain(&wu);
    CHECK_EQ(wu.unread, 0);
    CHECK_EQ(ioctl(wu.fd, FIONREAD, &queued), 0);
    CHECK_EQ(queued, 0);
    char b;
    CHECK_EQ(recv(wu.fd, &b, 1, MSG_DONTWAIT), -1);
    /* a drain with nothing to read returns at once */
    rtudp_warmup_drain(&wu);
    CHECK_EQ(wu.unread, 0);
    rtudp_warmup_close(&wu);
    CHECK_EQ(wu.fd, -1);
    rtudp_warmup_run(&wu); /* closed: nothing happens */
    CHECK_EQ(wu.count, 40);
}

/* ------------------------------------------------------------------ cpu trace */

#define SELF 500u   /* the worker's pid in the fake records */
#define POLLER 600u /* its idle poller's */

/* a ring of 256 bytes, written as perf writes it: records at ever-growing positions */
struct fake_ring {
    uint8_t data[256];
    uint64_t head;
};

static void put_bytes(struct fake_ring *r, const void *src, size_t n)
{
    const uint8_t *in = src;
    for (size_t i = 0; i < n; i++)
        r->data[(r->head + i) % sizeof r->data] = in[i];
    r->head += n;
}

/* a 24-byte record: a sample is pid, tid, time; a lost record is id (two words), count */
static void put_record(struct fake_ring *r, uint32_t type, uint32_t w0, uint32_t w1, uint64_t w2)
{
    struct perf_event_header h = {.type = type, .misc = 0, .size = RTUDP_CPUTRACE_SAMPLE_BYTES};
    put_bytes(r, &h, sizeof h);
    put_bytes(r, &w0, sizeof w0);
    put_bytes(r, &w1, sizeof w1);
    put_bytes(r, &w2, sizeof w2);
}

/* a sched_switch sample: task `tid` of process `pid` leaves the CPU at `at` */
static void put_switch(struct fake_ring *r, uint32_t pid, uint32_t tid, uint64_t at)
{
    put_record(r, PERF_RECORD_SAMPLE, pid, tid, at);
}

static void put_lost(struct fake_ring *r)
{
    put_record(r, PERF_RECORD_LOST, 0, 0, 3);
}

static void cputrace_init(struct rtudp_cputrace *t)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    t->self_pid = SELF;
}

/* a trace not opened, fed from a fake ring */
struct fed_trace {
    struct rtudp_cputrace t;
    struct fake_ring r;
    uint64_t tail;
};

static void fed_init(struct fed_trace *f)
{
    memset(f, 0, sizeof *f);
    cputrace_init(&f->t);
}

/* reads what was put since the last call */
static void fed_drain(struct fed_trace *f)
{
    f->tail = rtudp_cputrace_drain(&f->t, f->r.data, sizeof f->r.data, f->tail, f->r.head);
}

/* others' time: from the switch before a foreign task's to its own; the worker's
 * threads and the idle task are not others; across the ring's end */
static void test_cputrace_times_others_across_the_wrap(void)
{
    struct fed_trace f;
    fed_init(&f);
    /* a foreign task whose start came before the first record: not counted */
    put_switch(&f.r, 42, 42, 1000);
    /* the worker's TX thread leaves the CPU to task 42 at 2000, which runs to 2300 */
    put_switch(&f.r, SELF, SELF, 2000);
    put_switch(&f.r, 42, 42, 2300);
    /* its RX thread, then idle: nobody else */
    put_switch(&f.r, SELF, SELF + 1, 2400);
    put_switch(&f.r, 0, 0, 2600);
    /* into idle at 3000; a kernel thread (pid 15) woke on the idle CPU, left at 3100:
     * the idle time before it counts too (its start is not recorded) */
    put_switch(&f.r, SELF, SELF, 3000);
    put_switch(&f.r, 15, 15, 3100);
    fed_drain(&f);
    CHECK_EQ(f.tail, f.r.head);
    CHECK_EQ(f.t.others_ns, 300 + 100);
    CHECK_EQ(f.t.records, 7);
    CHECK_EQ(f.t.gap, 0);
    /* enough records to go round the 256-byte ring twice, some split by its end */
    for (int i = 0; i < 20; i++) {
        put_switch(&f.r, SELF, SELF, 10000 + 100 * (uint64_t)i);
        put_switch(&f.r, 77, 78, 10000 + 100 * (uint64_t)i + 40);
        fed_drain(&f);
    }
    CHECK(f.r.head > 2 * sizeof f.r.data);
    CHECK_EQ(f.t.others_ns, 400 + 20 * 40);
    CHECK_EQ(f.t.gap, 0);
}

/* the worker's idle poller (idlepoller.h) stands in for the idle task: its time is
 * nobody's, while another process's beside it still counts */
static void test_cputrace_idle_poller_time_is_idle(void)
{
    struct fed_trace f;
    fed_init(&f);
    f.t.idle_pid = POLLER;
    put_switch(&f.r, SELF, SELF, 1000);
    put_switch(&f.r, POLLER, POLLER, 1800); /* the poller ran 800 */
    put_switch(&f.r, SELF, SELF, 2000);
    put_switch(&f.r, 42, 42, 2300);   /* a task ran 300 */
    put_switch(&f.r, POLLER, POLLER, 2350); /* the poller 50 */
    fed_drain(&f);
    CHECK_EQ(f.t.others_ns, 300);
    CHECK_EQ(f.t.gap, 0);
    /* without it (before the poller started, or none): the same switches are others' */
    struct fed_trace g;
    fed_init(&g);
    put_switch(&g.r, SELF, SELF, 1000);
    put_switch(&g.r, POLLER, POLLER, 1800);
    fed_drain(&g);
    CHECK_EQ(g.t.others_ns, 800);
}

static void test_cputrace_lost_or_broken_records_make_a_gap(void)
{
    struct fed_trace f;
    fed_init(&f);
    /* records were lost: the foreign stretch after them has no known start */
    put_switch(&f.r, SELF, SELF, 100);
    put_lost(&f.r);
    put_switch(&f.r, 42, 42, 900);
    fed_drain(&f);
    CHECK_EQ(f.t.others_ns, 0);
    CHECK_EQ(f.t.gap, 1);
    f.t.gap = 0;
    /* a record longer than what the head covers: the rest is skipped, a gap */
    put_switch(&f.r, SELF, SELF, 1000);
    struct perf_event_header bad = {.type = PERF_RECORD_SAMPLE, .misc = 0, .size = 200};
    put_bytes(&f.r, &bad, sizeof bad);
    fed_drain(&f);
    CHECK_EQ(f.tail, f.r.head);
    CHECK_EQ(f.t.gap, 1);
    CHECK_EQ(f.t.last_ns, 0);
    f.t.gap = 0;
    /* a size under a header's (it would never advance) and a head beyond the ring */
    bad.size = 4;
    put_bytes(&f.r, &bad, sizeof bad);
    fed_drain(&f);
    CHECK_EQ(f.tail, f.r.head);
    CHECK_EQ(f.t.gap, 1);
    f.t.gap = 0;
    CHECK_EQ(rtudp_cputrace_drain(&f.t, f.r.data, sizeof f.r.data, f.tail, f.tail + 2 * sizeof f.r.data),
             f.tail + 2 * sizeof f.r.data);
    CHECK_EQ(f.t.gap, 1);
    f.t.gap = 0;
    /* a time that went back: a gap, nothing counted; the next stretches are */
    put_switch(&f.r, SELF, SELF, 5000);
    put_switch(&f.r, 42, 42, 4000);
    put_switch(&f.r, SELF, SELF, 6000);
    put_switch(&f.r, 42, 42, 6250);
    fed_drain(&f);
    CHECK_EQ(f.t.others_ns, 250);
    CHECK_EQ(f.t.gap, 1);
}

/* the idle time cpushare.h is given: wall - the worker's CPU - others, from the first
 * call; it never goes back, and a gap makes one -1 and new bases */
static void test_cputrace_idle_is_what_nobody_had(void)
{
    struct rtudp_cputrace t;
    cputrace_init(&t);
    int64_t now = 1000 * NS_PER_MS, cpu = 50 * NS_PER_MS;
    CHECK_EQ(rtudp_cputrace_idle(&t, now, cpu), 0); /* the bases */
    /* 20 ms: the worker 17, others 1 -> idle 2 */
    t.others_ns += 1 * NS_PER_MS;
    CHECK_EQ(rtudp_cputrace_idle(&t, now + 20 * NS_PER_MS, cpu + 17 * NS_PER_MS), 2 * NS_PER_MS);
    /* clocks read a little apart: a look that would subtract adds nothing */
    t.others_ns += 3 * NS_PER_MS + 1000;
    CHECK_EQ(rtudp_cputrace_idle(&t, now + 40 * NS_PER_MS, cpu + 34 * NS_PER_MS), 2 * NS_PER_MS);
    /* an idle stretch again */
    CHECK_EQ(rtudp_cputrace_idle(&t, now + 60 * NS_PER_MS, cpu + 44 * NS_PER_MS),
             12 * NS_PER_MS - 1000);
    /* a gap: -1 once, then counting starts again from 0 (cpushare starts over) */
    t.gap = 1;
    CHECK_EQ(rtudp_cputrace_idle(&t, now + 80 * NS_PER_MS, cpu + 60 * NS_PER_MS), -1);
    CHECK_EQ(t.gap, 0);
    CHECK_EQ(rtudp_cputrace_idle(&t, now + 100 * NS_PER_MS, cpu + 70 * NS_PER_MS), 0);
    CHECK_EQ(rtudp_cputrace_idle(&t, now + 120 * NS_PER_MS, cpu + 80 * NS_PER_MS), 10 * NS_PER_MS);
}

/* the event itself, on the CPU this test runs on: a task of another process that takes
 * the CPU from this one is timed as others', this process's own sleeps are not */
#define SCHED_SWITCH_ID "/sys/kernel/tracing/events/sched/sched_switch/id"

/* tracefs where the worker looks for the event, mounted if a boot left it out (as
 * tests/test_no_rt_throttle.py does); the test is skipped, saying why, when it cannot be */
static void need_tracefs(void)
{
    if (access(SCHED_SWITCH_ID, R_OK) == 0)
        return;
    const char *why = mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0
                          ? strerror(errno) : "mounted, but the event is not there";
    if (access(SCHED_SWITCH_ID, R_OK) != 0)
        SKIP("no %s (tracefs at /sys/kernel/tracing: %s)", SCHED_SWITCH_ID, why);
}

static void test_cputrace_times_another_process_on_this_cpu(void)
{
    if (geteuid() != 0)
        SKIP("not root: the kernel gives the sched_switch event to root only");
    need_tracefs();
    cpu_set_t one, before;
    CHECK_EQ(sched_getaffinity(0, sizeof before, &before), 0);
    int cpu = sched_getcpu();
    CHECK(cpu >= 0);
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    CHECK_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    struct rtudp_cputrace t;
    CHECK_EQ(rtudp_cputrace_open(&t, cpu, (uint32_t)getpid()), 0);
    CHECK(t.fd >= 0);
    struct timespec nap = {0, 2000000};
    for (int i = 0; i < 10; i++) /* this process's own sleeps: not others' */
        nanosleep(&nap, NULL);
    CHECK(rtudp_cputrace_idle_now(&t, 1, 0) >= 0);
    CHECK(t.records >= 1);
    int64_t alone = t.others_ns;
    /* a child on the same CPU that spins 30 ms while this process sleeps */
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        do
            clock_gettime(CLOCK_MONOTONIC, &b);
        while ((b.tv_sec - a.tv_sec) * NS_PER_S + (b.tv_nsec - a.tv_nsec) < 30 * NS_PER_MS);
        _exit(0);
    }
    int status = 0;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(rtudp_cputrace_idle_now(&t, 2, 0) >= -1); /* read what was recorded */
    /* the child's 30 ms, less what the host or other tasks took */
    CHECK(t.others_ns - alone >= 20 * NS_PER_MS);
    rtudp_cputrace_close(&t);
    CHECK_EQ(t.fd, -1);
    CHECK_EQ(rtudp_cputrace_idle_now(&t, 3, 0), -1);
    CHECK_EQ(sched_setaffinity(0, sizeof before, &before), 0);
}

static const struct test tests[] = {
    T(test_spin_starts_clamped),
    T(test_spin_follows_high_percentile),
    T(test_spin_margin_is_the_nearest_rank_p99),
    T(test_spin_bridges_short_costly_gaps),
    T(test_spin_long_parks_end_the_largest_margin_early),
    T(test_spin_park_naps_only_where_no_spin_follows),
    T(test_spin_budget_per_window),
    T(test_spin_stops_at_the_cpu_cap),
    T(test_capped_sleep_ends_at_the_next_deadline),
    T(test_share_sleeps_follow_what_others_need),
    T(test_share_edges),
    T(test_share_alone_after_quiet_looks),
    T(test_cputrace_times_others_across_the_wrap),
    T(test_cputrace_idle_poller_time_is_idle),
    T(test_cputrace_lost_or_broken_records_make_a_gap),
    T(test_cputrace_idle_is_what_nobody_had),
    T(test_cputrace_times_another_process_on_this_cpu),
    T(test_guard_takes_back_a_silent_thread_only),
    T(test_guard_watching_switches_takes_back_a_preempted_thread),
    T(test_hostpause_judges_by_switches),
    T(test_hostpause_intervals_count_what_the_cpu_clock_did_not),
    T(test_hostpause_counts_a_task_taking_the_cpu),
    T(test_stamps_match_by_key),
    T(test_stamps_time_out_to_send_time),
    T(test_stamps_full_restart_and_flush),
    T(test_arrival_is_judged_against_the_margin),
    T(test_in_time_by_follows_what_the_worker_watched),
    T(test_late_departures_are_counted_by_cause),
    T(test_warmup_lead_follows_the_longest_recent),
    T(test_warmup_sends_through_loopback_and_reads_it_back),
};

HARNESS_MAIN(tests)
