/* test_procstat.c - process exit as procstat.c tells it: gone, zombie, reused pid. */
#include "harness.h"

#include <sys/wait.h>

#include "procstat.h"

/* a child that exits at once, left unwaited: a zombie until waitpid */
static pid_t zombie_child(void)
{
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0)
        _exit(0);
    CHECK_EQ(waitid(P_PID, (id_t)child, &(siginfo_t){0}, WEXITED | WNOWAIT), 0);
    return child;
}

static void test_a_live_process_has_not_exited(void)
{
    CHECK(!rtudp_pid_exited((int32_t)getpid()));
    uint64_t start = rtudp_pid_start_ticks((int32_t)getpid());
    CHECK(start > 0);
    CHECK(!rtudp_pid_exited_since((int32_t)getpid(), start));
    /* the same pid with another start time is another process */
    CHECK(rtudp_pid_exited_since((int32_t)getpid(), start + 1));
    CHECK(rtudp_pid_exited_since((int32_t)getpid(), 0));
}

static void test_a_stopped_process_has_not_exited(void)
{
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        for (;;)
            pause();
    }
    CHECK_EQ(kill(child, SIGSTOP), 0);
    CHECK_EQ(waitpid(child, NULL, WUNTRACED), child);
    uint64_t start = rtudp_pid_start_ticks((int32_t)child);
    CHECK(start > 0);
    CHECK(!rtudp_pid_exited((int32_t)child));
    CHECK(!rtudp_pid_exited_since((int32_t)child, start));
    CHECK_EQ(kill(child, SIGKILL), 0);
    CHECK_EQ(waitpid(child, NULL, 0), child);
}

static void test_a_zombie_has_exited(void)
{
    pid_t child = zombie_child();
    CHECK_EQ(kill(child, 0), 0); /* what kill(pid, 0) alone would take for alive */
    CHECK(rtudp_pid_exited((int32_t)child));
    CHECK(rtudp_pid_exited_since((int32_t)child, 1));
    CHECK_EQ(rtudp_pid_start_ticks((int32_t)child), 0u);
    CHECK_EQ(waitpid(child, NULL, 0), child);
}

static void test_a_reaped_process_and_no_pid_have_exited(void)
{
    pid_t child = zombie_child();
    CHECK_EQ(waitpid(child, NULL, 0), child);
    CHECK(rtudp_pid_exited((int32_t)child));
    CHECK(rtudp_pid_exited_since((int32_t)child, 1));
    CHECK(rtudp_pid_exited(0));
    CHECK(rtudp_pid_exited(-5));
}

static const struct test tests[] = {
    T(test_a_live_process_has_not_exited),
    T(test_a_stopped_process_has_not_exited),
    T(test_a_zombie_has_exited),
    T(test_a_reaped_process_and_no_pid_have_exited),
};

HARNESS_MAIN(tests)
