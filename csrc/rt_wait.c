/*
 * rt_wait.c - a thread that waits in rtudp at real-time priority (rt_wait.h).
 *
 * Setup (enter: the handler once per process, a CPU-time timer per thread), the hook
 * each sleep in a wait calls (arm the budget, real-time again if it ran out), the
 * budget's signal (back to the thread's own policy), and leave.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "rt_wait.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define RT_WAIT_MAGIC 0x72747761u /* "rtwa": a SIGXCPU timer value that is ours */

struct rt_thread {
    uint32_t magic;
    int priority;
    int64_t budget_ns;
    int own_policy; /* as sched_getscheduler() gave it, flags included */
    struct sched_param own_param;
    timer_t timer;
    atomic_int realtime;
    atomic_uint_fast64_t demotions, promotions;
};

static _Thread_local struct rt_thread *self;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static struct sigaction previous; /* SIGXCPU's disposition before ours */
static int handler_errno;

/* raw system calls: the handler runs in a signal, and both run in a hot path */
static int set_policy(int policy, const struct sched_param *sp)
{
    return (int)syscall(SYS_sched_setscheduler, 0, policy, sp);
}

static int promote(struct rt_thread *t)
{
    struct sched_param sp = {.sched_priority = t->priority};
    return set_policy(SCHED_FIFO | SCHED_RESET_ON_FORK, &sp);
}

/* the budget ran out: the thread's own policy until it next sleeps in a wait */
static void demote(struct rt_thread *t)
{
    if (set_policy(t->own_policy, &t->own_param) == 0) {
        atomic_store_explicit(&t->realtime, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->demotions, 1, memory_order_relaxed);
    }
}

/* a SIGXCPU that is not the budget's gets what it would have got without us */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction)
            previous.sa_sigaction(sig, si, uc);
    } else if (previous.sa_handler == SIG_DFL) {
        /* the default action (end the process) once this handler returns */
        sigaction(SIGXCPU, &previous, NULL);
        raise(SIGXCPU);
    } else if (previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    }
}

static void on_sigxcpu(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    struct rt_thread *t = si->si_code == SI_TIMER ? si->si_value.sival_ptr : NULL;
    if (t && t->magic == RT_WAIT_MAGIC)
        demote(t);
    else
        pass_on(sig, si, uc);
    errno = saved;
}

/* a forked child: its one thread starts at normal priority (RESET_ON_FORK), without
 * the parent's timer, so out of the mode */
static void forget_in_child(void)
{
    self = NULL;
    rtudp_before_sleep = NULL;
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigxcpu;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGXCPU, &sa, &previous) != 0 || pthread_atfork(NULL, NULL, forget_in_child) != 0)
        handler_errno = errno ? errno : ENOMEM;
}

static void arm(struct rt_thread *t)
{
    struct itimerspec it = {.it_value = {t->budget_ns / 1000000000, t->budget_ns % 1000000000}};
    timer_settime(t->timer, 0, &it, NULL);
}

/* each sleep in a wait: a fresh budget first (the old one cannot then run out while
 * the priority is raised), then real-time again if it had run out */
static void before_sleep(void)
{
    struct rt_thread *t = self;
    if (!t)
        return;
    arm(t);
    if (!atomic_load_explicit(&t->realtime, memory_order_relaxed) && promote(t) == 0) {
        atomic_store_explicit(&t->realtime, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->promotions, 1, memory_order_relaxed);
    }
}

static int check_args(int priority, int64_t budget_ns, struct rtudp_check *why)
{
    int lo = sched_get_priority_min(SCHED_FIFO), hi = sched_get_priority_max(SCHED_FIFO);
    if (priority < lo || priority > hi)
        return rtudp_check_set(why, RTUDP_EINVAL, "priority %d is outside SCHED_FIFO's %d..%d",
                               priority, lo, hi);
    if (budget_ns < RTUDP_RT_WAIT_MIN_BUDGET_NS || budget_ns > RTUDP_RT_WAIT_MAX_BUDGET_NS)
        return rtudp_check_set(why, RTUDP_EINVAL,
                               "CPU budget of %lld ns is outside %lld..%lld ns",
                               (long long)budget_ns, RTUDP_RT_WAIT_MIN_BUDGET_NS,
                               RTUDP_RT_WAIT_MAX_BUDGET_NS);
    if (self)
        return rtudp_check_set(why, RTUDP_EINVAL,
                               "this thread waits at real-time priority already (priority %d)",
                               self->priority);
    return RTUDP_OK;
}

static int make_timer(struct rt_thread *t, struct rtudp_check *why)
{
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGXCPU;
    ev.sigev_value.sival_ptr = t;
    ev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &t->timer) != 0)
        return rtudp_check_set(why, RTUDP_ESYS, "cannot make the thread's CPU-time timer: %s",
                               strerror(errno));
    return RTUDP_OK;
}

int rtudp_rt_wait_enter(int priority, int64_t budget_ns, struct rtudp_check *why)
{
    int rc = check_args(priority, budget_ns, why);
    if (rc != RTUDP_OK)
        return rc;
    pthread_once(&handler_once, install_handler);
    if (handler_errno)
        return rtudp_check_set(why, RTUDP_ESYS, "cannot take SIGXCPU for the CPU budget: %s",
                               strerror(handler_errno));
    struct rt_thread *t = calloc(1, sizeof *t);
    if (!t)
        return rtudp_check_set(why, RTUDP_ESYS, "out of memory");
    t->magic = RT_WAIT_MAGIC;
    t->priority = priority;
    t->budget_ns = budget_ns;
    t->own_policy = sched_getscheduler(0);
    if (t->own_policy < 0 || sched_getparam(0, &t->own_param) != 0) {
        rc = rtudp_check_set(why, RTUDP_ESYS, "cannot read the thread's policy: %s",
                             strerror(errno));
        free(t);
        return rc;
    }
    rc = make_timer(t, why);
    if (rc != RTUDP_OK) {
        free(t);
        return rc;
    }
    arm(t);
    if (promote(t) != 0) {
        int err = errno;
        timer_delete(t->timer);
        free(t);
        errno = err;
        return rtudp_check_set(why, RTUDP_ESYS,
                               "SCHED_FIFO priority %d is not permitted: %s (it needs "
                               "CAP_SYS_NICE, or RLIMIT_RTPRIO of %d or more)",
                               priority, strerror(err), priority);
    }
    atomic_store_explicit(&t->realtime, 1, memory_order_relaxed);
    self = t;
    rtudp_before_sleep = before_sleep;
    return RTUDP_OK;
}

int rtudp_rt_wait_leave(struct rtudp_check *why)
{
    struct rt_thread *t = self;
    if (!t)
        return RTUDP_OK;
    /* the timer goes (with a signal of its still pending) before the memory it names */
    sigset_t xcpu, old;
    sigemptyset(&xcpu);
    sigaddset(&xcpu, SIGXCPU);
    pthread_sigmask(SIG_BLOCK, &xcpu, &old);
    timer_delete(t->timer);
    rtudp_before_sleep = NULL;
    self = NULL;
    int rc = set_policy(t->own_policy, &t->own_param);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(t);
    if (rc != 0)
        return rtudp_check_set(why, RTUDP_ESYS, "cannot restore the thread's policy: %s",
                               strerror(err));
    return RTUDP_OK;
}

void rtudp_rt_wait_counts(struct rtudp_rt_wait_counts *out)
{
    const struct rt_thread *t = self;
    memset(out, 0, sizeof *out);
    if (!t)
        return;
    out->on = 1;
    out->realtime = atomic_load_explicit(&t->realtime, memory_order_relaxed);
    out->priority = t->priority;
    out->budget_ns = t->budget_ns;
    out->demotions = atomic_load_explicit(&t->demotions, memory_order_relaxed);
    out->promotions = atomic_load_explicit(&t->promotions, memory_order_relaxed);
}
