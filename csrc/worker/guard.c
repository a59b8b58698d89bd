/*
 * guard.c - takes the CPU back for a TX thread that spins at SCHED_OTHER (guard.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "guard.h"
#include "thread.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GUARD_STACK (64 * 1024)

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* a sleep of the guard's, woken late (by more than late_ns): the host stopped the vCPU,
 * the TX thread with it (a real-time wake-up on a CPU that only an ordinary task holds
 * is on time), so its silence says nothing: count it from now (a newer beat stays) */
static void nap_until(struct rtudp_guard *g, int64_t at, int64_t beat)
{
    sleep_until(at);
    int64_t now = mono_ns();
    if (now - at > g->late_ns)
        atomic_compare_exchange_strong_explicit(&g->beat_ns, &beat, now, memory_order_relaxed,
                                                memory_order_relaxed);
}

/* the TX thread is real-time again: disarm first (a TX thread that restored itself
 * meanwhile keeps its own state), then its policy back */
static void take_back(struct rtudp_guard *g)
{
    unsigned armed = GUARD_ARMED;
    if (!atomic_compare_exchange_strong_explicit(&g->armed, &armed, GUARD_IDLE,
                                                 memory_order_acq_rel, memory_order_acquire))
        return;
    struct sched_param sp = {.sched_priority = g->priority};
    if (sched_setscheduler(g->tx_tid, g->policy, &sp) == 0) {
        atomic_fetch_add_explicit(&g->promotions, 1, memory_order_relaxed);
        atomic_store_explicit(&g->took_back, 1u, memory_order_release);
    } else {
        atomic_fetch_add_explicit(&g->failures, 1, memory_order_relaxed);
    }
}

/* the timer way (guard.h): one look at the beat, and a nap */
static void look_at_beat(struct rtudp_guard *g, int *second_look)
{
    int64_t beat = atomic_load_explicit(&g->beat_ns, memory_order_relaxed);
    int64_t now = mono_ns();
    if (now - beat <= g->silent_ns) {
        /* heard from lately, or parked until `beat`: look again silent_ns after the
         * beat, and no later than silent_ns from now (a park may end early, and the
         * thread then has to be watched again) */
        *second_look = 0;
        nap_until(g, (beat > now ? now : beat) + g->silent_ns, beat);
        return;
    }
    /* overdue.  Once more after a short nap: this wake-up preempted whatever ran, and
     * the CPU may go back to the TX thread now (a host stall just ended, or the
     * scheduler prefers the nice -20 thread to the task it had let in) */
    if (!*second_look) {
        *second_look = 1;
        nap_until(g, now + RTUDP_GUARD_RECHECK_NS, beat);
        return;
    }
    *second_look = 0;
    take_back(g); /* still silent: another task has the CPU */
}

static uint64_t switches(const struct rtudp_guard *g)
{
    uint64_t n = 0;
    return read(g->switch_fd, &n, sizeof n) == (ssize_t)sizeof n ? n : 0;
}

/* the TX thread's state letter from /proc (R: running or runnable), 0 if unreadable */
static char tx_state(const struct rtudp_guard *g)
{
    char buf[512];
    ssize_t got = pread(g->stat_fd, buf, sizeof buf - 1, 0);
    if (got <= 0)
        return 0;
    buf[got] = 0;
    char *paren = strrchr(buf, ')'); /* the name may hold anything: the state follows it */
    return paren && paren[1] == ' ' ? paren[2] : 0;
}

/* the TX thread's CPU time so far (its CPU clock: right even while it runs), -1 if
 * unreadable */
static int64_t tx_runtime(const struct rtudp_guard *g)
{
    struct timespec ts;
    if (clock_gettime(g->tx_clock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The TX thread is runnable and not running: the task that has its CPU is not ours
 * alone to judge (this guard's own wake-up, or the worker's RX thread, also switch it
 * out).  A nap: if it did not run meanwhile, another task keeps it from its CPU; if
 * it ran only a little and lost the CPU again, once more (a wake-up of this guard's
 * takes it off for a moment, after most of a nap's run). */
static void judge(struct rtudp_guard *g)
{
    for (int round = 0; round < RTUDP_GUARD_JUDGE_ROUNDS; round++) {
        int64_t ran = tx_runtime(g);
        int64_t at = mono_ns() + RTUDP_GUARD_RECHECK_NS;
        sleep_until(at);
        int late = mono_ns() - at > g->late_ns; /* the host stopped the vCPU: no judgement */
        g->switches_seen = switches(g); /* this wake-up may have switched it out itself */
        if (late || ran < 0 || tx_state(g) != 'R')
            return; /* asleep now, or unknown */
        int64_t grew = tx_runtime(g) - ran;
        if (grew == 0) {
            take_back(g);
            return;
        }
        if (grew >= RTUDP_GUARD_RECHECK_NS / 2)
            return; /* it had the CPU for most of the nap */
    }
}

/* a park the TX thread announced (its beat: when it means to wake) has had time to
 * end: awake and kept from its CPU?  (A wake-up is no switch: no signal says so) */
static void look_after_park(struct rtudp_guard *g)
{
    g->park_check_at = 0;
    g->switches_seen = switches(g); /* if it was running, this wake-up switched it out */
    if (atomic_load_explicit(&g->armed, memory_order_acquire) == GUARD_ARMED &&
        tx_state(g) == 'R' && tx_runtime(g) == g->park_runtime)
        judge(g);
}

/* the switches way (guard.h): wait for a switch of the TX thread (or the end of a
 * park it announced), and judge it */
static void watch_switches(struct rtudp_guard *g, const sigset_t *sigio)
{
    if (g->park_check_at) {
        int64_t left = g->park_check_at - mono_ns();
        if (left <= 0) {
            look_after_park(g);
            return;
        }
        struct timespec wait = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        if (sigtimedwait(sigio, NULL, &wait) < 0) {
            if (errno == EAGAIN)
                look_after_park(g);
            return;
        }
    } else if (sigwaitinfo(sigio, NULL) < 0) {
        return;
    }
    uint64_t n = switches(g);
    if (n == g->switches_seen)
        return; /* one this guard's own wake-up caused, already judged (or a stop) */
    g->switches_seen = n;
    g->park_check_at = 0;
    if (tx_state(g) == 'R') {
        judge(g);
        return;
    }
    /* asleep, or in a system call that waits: its own doing.  A park it announced ends
     * at its beat: look then */
    int64_t beat = atomic_load_explicit(&g->beat_ns, memory_order_relaxed);
    if (beat > mono_ns()) {
        g->park_check_at = beat + RTUDP_GUARD_RECHECK_NS;
        g->park_runtime = tx_runtime(g);
    }
}

static void *guard_main(void *arg)
{
    struct rtudp_guard *g = arg;
    sigset_t sigio;
    sigemptyset(&sigio);
    sigaddset(&sigio, SIGIO); /* blocked in this thread (thread.c): taken by sigtimedwait */
    int watch = 0, second_look = 0;
    if (g->switch_fd >= 0) {
        /* the switch counter signals this thread, and no other */
        struct f_owner_ex owner = {.type = F_OWNER_TID, .pid = (pid_t)syscall(SYS_gettid)};
        int fl = fcntl(g->switch_fd, F_GETFL);
        watch = fl >= 0 && fcntl(g->switch_fd, F_SETOWN_EX, &owner) == 0 &&
                fcntl(g->switch_fd, F_SETSIG, SIGIO) == 0 &&
                fcntl(g->switch_fd, F_SETFL, fl | O_ASYNC) == 0;
        if (!watch) /* arm and disarm still switch the counter on and off: harmless */
            fprintf(stderr, "rtudp-worker: the demotion guard cannot watch switches: %s; it "
                            "watches on a timer\n", strerror(errno));
    }
    atomic_store_explicit(&g->way, watch ? GUARD_WAY_SWITCHES : GUARD_WAY_TIMER,
                          memory_order_release);
    syscall(SYS_futex, &g->way, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    for (;;) {
        unsigned state = atomic_load_explicit(&g->armed, memory_order_acquire);
        if (state == GUARD_STOP)
            break;
        if (state == GUARD_IDLE) {
            second_look = 0;
            g->park_check_at = 0;
            syscall(SYS_futex, &g->armed, FUTEX_WAIT_PRIVATE, GUARD_IDLE, NULL, NULL, 0);
            continue;
        }
        if (watch)
            watch_switches(g, &sigio);
        else
            look_at_beat(g, &second_look);
    }
    return NULL;
}

/* a counter of this thread's context switches that can signal the guard, or -1 */
static int open_switch_counter(void)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_SOFTWARE;
    a.size = sizeof a;
    a.config = PERF_COUNT_SW_CONTEXT_SWITCHES;
    a.sample_period = 1; /* an overflow, so a signal, at each switch */
    a.wakeup_events = 1;
    a.disabled = 1;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        return -1;
    /* does it count?  (one that may not see the kernel would open and never count.)  A
     * sleep long enough to switch for sure: a timer already due by the time the sleep
     * starts ends it without one */
    uint64_t n = 0;
    struct timespec tiny = {.tv_sec = 0, .tv_nsec = 200000};
    if (ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0 || nanosleep(&tiny, NULL) != 0 ||
        ioctl(fd, PERF_EVENT_IOC_DISABLE, 0) != 0 || read(fd, &n, sizeof n) != (ssize_t)sizeof n ||
        n == 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int open_task_file(pid_t tid, const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/%s", (int)tid, name);
    return open(path, O_RDONLY | O_CLOEXEC);
}

static void close_fds(struct rtudp_guard *g)
{
    int *fds[] = {&g->switch_fd, &g->stat_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

int rtudp_guard_start(struct rtudp_guard *g, int policy, int priority, enum rtudp_guard_way way)
{
    memset(g, 0, sizeof *g); /* the atomics' zero (GUARD_IDLE) before any thread sees them */
    g->tx_tid = (pid_t)syscall(SYS_gettid);
    g->policy = policy;
    g->priority = priority;
    g->silent_ns = RTUDP_GUARD_NS;
    g->late_ns = RTUDP_GUARD_LATE_NS;
    g->switch_fd = g->stat_fd = -1;
    if (way == RTUDP_GUARD_SWITCHES && pthread_getcpuclockid(pthread_self(), &g->tx_clock) == 0) {
        g->stat_fd = open_task_file(g->tx_tid, "stat");
        if (g->stat_fd >= 0)
            g->switch_fd = open_switch_counter();
        if (g->switch_fd < 0) {
            close_fds(g);
            fprintf(stderr, "rtudp-worker: no perf software events for this thread (%s; "
                            "kernel.perf_event_paranoid, CAP_PERFMON): the demotion guard "
                            "watches on a timer\n", strerror(errno));
        } else {
            g->switches_seen = switches(g);
        }
    }
    int e = rtudp_w_thread_start(&g->thread, GUARD_STACK, guard_main, g);
    if (e) {
        close_fds(g);
        fprintf(stderr, "rtudp-worker: cannot start the demotion guard: %s; past its CPU "
                        "cap the TX thread drops to SCHED_OTHER only when the spin budget "
                        "pays for it\n", strerror(e));
        return -1;
    }
    /* the guard says which way it watches before anyone asks (or arms it) */
    while (atomic_load_explicit(&g->way, memory_order_acquire) == GUARD_WAY_STARTING)
        syscall(SYS_futex, &g->way, FUTEX_WAIT_PRIVATE, GUARD_WAY_STARTING, NULL, NULL, 0);
    g->running = 1;
    return 0;
}

void rtudp_guard_stop(struct rtudp_guard *g)
{
    if (!g->running)
        return;
    atomic_store_explicit(&g->armed, GUARD_STOP, memory_order_release);
    syscall(SYS_futex, &g->armed, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    if (g->switch_fd >= 0) {
        ioctl(g->switch_fd, PERF_EVENT_IOC_DISABLE, 0);
        pthread_kill(g->thread, SIGIO); /* out of its wait (blocked there: no handler runs) */
    }
    pthread_join(g->thread, NULL);
    close_fds(g);
    g->running = 0;
}

void rtudp_guard_arm(struct rtudp_guard *g, int64_t now)
{
    rtudp_guard_beat(g, now);
    atomic_store_explicit(&g->took_back, 0u, memory_order_relaxed);
    atomic_store_explicit(&g->armed, GUARD_ARMED, memory_order_release);
    syscall(SYS_futex, &g->armed, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    if (g->switch_fd >= 0)
        ioctl(g->switch_fd, PERF_EVENT_IOC_ENABLE, 0);
}

void rtudp_guard_disarm(struct rtudp_guard *g)
{
    unsigned armed = GUARD_ARMED; /* never over a stop */
    atomic_compare_exchange_strong_explicit(&g->armed, &armed, GUARD_IDLE, memory_order_acq_rel,
                                            memory_order_relaxed);
    if (g->switch_fd >= 0) /* also after a take-back, which left it counting */
        ioctl(g->switch_fd, PERF_EVENT_IOC_DISABLE, 0);
}

int rtudp_guard_took_back(struct rtudp_guard *g)
{
    if (!atomic_load_explicit(&g->took_back, memory_order_acquire))
        return 0; /* the common case: a load, no write */
    return atomic_exchange_explicit(&g->took_back, 0u, memory_order_acq_rel) != 0;
}
