/*
 * test_rt_wait.c - a thread that waits at real-time priority (rt_wait.h): it runs at
 * SCHED_FIFO from enter, the CPU budget puts it back to its own policy, its next
 * sleep in a wait makes it real-time again, its waits do not spin, leave restores what it had, a forked child
 * starts outside the mode, and a SIGXCPU that is not the budget's keeps its handler.
 *
 * The tests run as root in CI; where this process may not use SCHED_FIFO, the tests
 * that need it are skipped, saying so, and the others check what needs no permission.
 */
#include <sched.h>
#include <signal.h>

#include "harness.h"
#include "ring.h"
#include "rt_wait.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

#define BUDGET_NS (1 * NS_PER_MS)

static int policy(void)
{
    return sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
}

/* skip the test where this process may not make a thread SCHED_FIFO (asked of the
 * kernel directly, then given back: what rt_wait.c does is under test) */
static void need_fifo(void)
{
    int before = sched_getscheduler(0);
    struct sched_param old, one = {.sched_priority = 1};
    CHECK(before >= 0);
    CHECK_EQ(sched_getparam(0, &old), 0);
    if (sched_setscheduler(0, SCHED_FIFO, &one) != 0) {
        CHECK_EQ(errno, EPERM);
        SKIP("SCHED_FIFO is not permitted to this process (no root, CAP_SYS_NICE or "
             "RLIMIT_RTPRIO)");
    }
    CHECK_EQ(sched_setscheduler(0, before, &old), 0);
}

/* enter, where SCHED_FIFO is permitted to this process (else the test is skipped) */
static void enter(int priority, int64_t budget_ns)
{
    need_fifo();
    struct rtudp_check why = {0};
    int rc = rtudp_rt_wait_enter(priority, budget_ns, &why);
    if (rc != RTUDP_OK)
        fprintf(stderr, "enter: %s\n", why.msg);
    CHECK_EQ(rc, RTUDP_OK);
}

static struct rtudp_rt_wait_counts counts(void)
{
    struct rtudp_rt_wait_counts c;
    rtudp_rt_wait_counts(&c);
    return c;
}

/* this thread's CPU time, ns */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* work without sleeping until the budget runs out (bounded: a second of CPU) */
static void burn_until_demoted(void)
{
    int64_t end = cpu_ns() + 1000 * NS_PER_MS;
    while (counts().realtime && cpu_ns() < end) {
    }
}

static bool never_ready(const void *ctx)
{
    (void)ctx;
    return false;
}

/* one sleep in a ring wait (nothing rings it) */
static void sleep_in_a_wait(void)
{
    struct rtudp_doorbell bell = {0};
    CHECK_EQ(rtudp_bell_wait(&bell, never_ready, NULL, harness_now_ns() + NS_PER_MS, 0),
             RTUDP_ETIMEDOUT);
}

static void test_bad_values_are_named(void)
{
    struct rtudp_check why = {0};
    CHECK_EQ(rtudp_rt_wait_enter(0, BUDGET_NS, &why), RTUDP_EINVAL);
    CHECK(strstr(why.msg, "priority 0") != NULL);
    CHECK_EQ(rtudp_rt_wait_enter(100, BUDGET_NS, &why), RTUDP_EINVAL);
    CHECK(strstr(why.msg, "priority 100") != NULL);
    CHECK_EQ(rtudp_rt_wait_enter(1, 99999, &why), RTUDP_EINVAL);
    CHECK(strstr(why.msg, "99999 ns") != NULL);
    CHECK_EQ(rtudp_rt_wait_enter(1, 2000000000, &why), RTUDP_EINVAL);
    CHECK(strstr(why.msg, "2000000000 ns") != NULL);
    CHECK_EQ(counts().on, 0);
    CHECK_EQ(policy(), SCHED_OTHER);
    /* leaving a mode never entered is nothing */
    CHECK_EQ(rtudp_rt_wait_leave(&why), RTUDP_OK);
}

static void test_enter_is_real_time_and_leave_restores(void)
{
    enter(3, BUDGET_NS);
    CHECK_EQ(policy(), SCHED_FIFO);
    CHECK(sched_getscheduler(0) & SCHED_RESET_ON_FORK);
    struct sched_param sp;
    CHECK_EQ(sched_getparam(0, &sp), 0);
    CHECK_EQ(sp.sched_priority, 3);
    struct rtudp_rt_wait_counts c = counts();
    CHECK(c.on && c.realtime);
    CHECK_EQ(c.priority, 3);
    CHECK_EQ(c.budget_ns, BUDGET_NS);
    struct rtudp_check why = {0};
    CHECK_EQ(rtudp_rt_wait_enter(3, BUDGET_NS, &why), RTUDP_EINVAL);
    CHECK(strstr(why.msg, "already") != NULL);
    CHECK_EQ(rtudp_rt_wait_leave(&why), RTUDP_OK);
    CHECK_EQ(policy(), SCHED_OTHER);
    CHECK_EQ(counts().on, 0);
    /* the hook is gone with the mode: a wait sleeps without changing the policy */
    sleep_in_a_wait();
    CHECK_EQ(policy(), SCHED_OTHER);
}

static void test_the_budget_ends_and_a_sleep_in_a_wait_renews_it(void)
{
    enter(1, BUDGET_NS);
    /* sleeping in a wait renews the budget, and does not count as a promotion */
    sleep_in_a_wait();
    CHECK_EQ(counts().promotions, 0u);
    BOUNDED("burn until the budget ends", burn_until_demoted());
    struct rtudp_rt_wait_counts c = counts();
    CHECK(!c.realtime);
    CHECK_EQ(c.demotions, 1u);
    CHECK_EQ(policy(), SCHED_OTHER);
    sleep_in_a_wait();
    c = counts();
    CHECK(c.realtime);
    CHECK_EQ(c.promotions, 1u);
    CHECK_EQ(policy(), SCHED_FIFO);
    /* and the renewed budget ends again */
    BOUNDED("burn again", burn_until_demoted());
    CHECK_EQ(counts().demotions, 2u);
    CHECK_EQ(rtudp_rt_wait_leave(NULL), RTUDP_OK);
    CHECK_EQ(policy(), SCHED_OTHER);
}

static void test_its_waits_sleep_without_spinning(void)
{
    enter(1, 50 * NS_PER_MS);
    /* asked to spin the whole 20 ms wait, the thread sleeps it instead: a spin at
     * real-time priority would hold off the CPU's ordinary tasks */
    struct rtudp_doorbell bell = {0};
    int64_t cpu0 = cpu_ns();
    CHECK_EQ(rtudp_bell_wait(&bell, never_ready, NULL, harness_now_ns() + 20 * NS_PER_MS,
                             20 * NS_PER_MS),
             RTUDP_ETIMEDOUT);
    CHECK_IN(cpu_ns() - cpu0, 0, 5 * NS_PER_MS);
    CHECK_EQ(rtudp_rt_wait_leave(NULL), RTUDP_OK);
}

static void test_a_forked_child_starts_outside_the_mode(void)
{
    enter(1, 50 * NS_PER_MS);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int ok = policy() == SCHED_OTHER && !counts().on;
        sleep_in_a_wait(); /* no hook left to raise it */
        ok = ok && policy() == SCHED_OTHER;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(policy(), SCHED_FIFO);
    CHECK_EQ(rtudp_rt_wait_leave(NULL), RTUDP_OK);
}

static volatile sig_atomic_t their_handler_ran;

static void their_handler(int sig)
{
    (void)sig;
    their_handler_ran++;
}

static void test_another_sigxcpu_reaches_the_handler_it_had(void)
{
    /* each test runs in a fresh process, so the mode's handler comes after this one */
    CHECK(signal(SIGXCPU, their_handler) != SIG_ERR);
    enter(1, 50 * NS_PER_MS);
    raise(SIGXCPU);
    CHECK_EQ(their_handler_ran, 1);
    struct rtudp_rt_wait_counts c = counts();
    CHECK(c.realtime);
    CHECK_EQ(c.demotions, 0u);
    CHECK_EQ(rtudp_rt_wait_leave(NULL), RTUDP_OK);
}

static const struct test tests[] = {
    T(test_bad_values_are_named),
    T(test_enter_is_real_time_and_leave_restores),
    T(test_the_budget_ends_and_a_sleep_in_a_wait_renews_it),
    T(test_its_waits_sleep_without_spinning),
    T(test_a_forked_child_starts_outside_the_mode),
    T(test_another_sigxcpu_reaches_the_handler_it_had),
};

HARNESS_MAIN(tests)
