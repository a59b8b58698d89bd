/*
 * sched.c - process-wide setup done before any thread exists, so every thread
 * inherits it: die with the supervisor, lock memory, pin to a CPU, SCHED_FIFO;
 * the CPU idle-latency request and the idle poller, held while the worker serves
 * channels and does not rest; and the TX thread's drop to SCHED_OTHER to spin past
 * the RT throttle.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define QOS_DEVICE "/dev/cpu_dma_latency"

#include "worker.h"

/*
 * How the worker locks its memory (rtudp_w_lock_memory):
 *  LOCK_ALL: no limit binds (RLIMIT_MEMLOCK unlimited, or CAP_IPC_LOCK): everything,
 *    now and later (mlockall MCL_FUTURE, then lock on fault);
 *  LOCK_BOUNDED: a finite RLIMIT_MEMLOCK without CAP_IPC_LOCK (an ordinary user):
 *    what is mapped at the start, then each channel's segment while it fits.  Never
 *    MCL_FUTURE there: it makes every later mapping fail (EAGAIN) once the limit is
 *    reached, so a channel could not open.  The supervisor says so once
 *    (rtudp.workers.process.memlock_hint); the worker stays quiet about it;
 *  LOCK_NONE: nothing locked (a sanitized build, or the first lock refused).
 */
enum { LOCK_NONE, LOCK_BOUNDED, LOCK_ALL };
static int lock_mode = LOCK_NONE;

/* CAP_IPC_LOCK in this process's effective set (/proc/self/status CapEff) */
static int has_cap_ipc_lock(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return 0;
    char line[256];
    unsigned long long eff = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "CapEff: %llx", &eff) == 1;
    fclose(f);
    return found && (eff >> 14 & 1); /* CAP_IPC_LOCK */
}

static int memlock_unbounded(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY)
        return 1;
    return has_cap_ipc_lock();
}

int rtudp_w_die_with_parent(void)
{
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        fprintf(stderr, "rtudp-worker: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
        return -1;
    }
    /* the supervisor may have died before the prctl took effect: then we were
     * re-parented (to init or a subreaper) and the signal will never come */
    if (getppid() != parent || parent == 1) {
        fprintf(stderr, "rtudp-worker: the supervisor (parent) is already gone\n");
        return -1;
    }
    return 0;
}

/* sockets a channel gives its worker: the channel socket and a send-only one */
#define FDS_PER_CHANNEL 2

/*
 * The file table grown now, while the worker has one thread.  Once threads share it,
 * growing it waits for an RCU grace period (the kernel's expand_fdtable), and the one
 * that grows it is the TX thread, receiving a channel's sockets with its command
 * (SCM_RIGHTS): it stops for milliseconds, every deadline with it, each time the
 * channels' sockets pass a power of two.  Room for two sockets of every channel a
 * pool can hold (a power of two: the table's own size), as far as RLIMIT_NOFILE lets
 * the worker open files at all; the table is kernel memory, 8 bytes a file.
 */
void rtudp_w_reserve_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)FDS_PER_CHANNEL * RTUDP_MAX_CHANNELS;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        want = rl.rlim_cur;
    if (want < 2)
        return;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    /* a file at the highest number the worker may use grows the table to hold it, and
     * the table stays so; the lowest free number from there, so that no file the
     * worker was given (its command socket keeps the supervisor's number) is touched */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)(want - 1));
    if (high >= 0)
        close(high);
    close(fd);
}

void rtudp_w_lock_memory(void)
{
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer reserves terabytes of shadow memory: locking it all would
     * exhaust RAM.  Sanitized builds are for tests, where paging does not matter. */
    fprintf(stderr, "rtudp-worker: AddressSanitizer build: memory not locked\n");
    return;
#endif
    /* page faults on the hot path cost more than the memory.  MCL_FUTURE where no
     * limit binds: what the setup allocates (timer queue, RX buffers, the RX thread's
     * stack) is faulted in and locked as it is mapped; rtudp_w_lock_on_fault ends that */
    if (!memlock_unbounded()) {
        lock_mode = mlockall(MCL_CURRENT) == 0 ? LOCK_BOUNDED : LOCK_NONE;
        return;
    }
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
        fprintf(stderr, "rtudp-worker: warning: mlockall: %s; running with unlocked memory\n",
                strerror(errno));
    else
        lock_mode = LOCK_ALL;
}

/*
 * After the setup: memory mapped from now on (what a channel's ADD allocates, and
 * its segment) is locked as its pages are faulted in, not faulted in whole when it
 * is mapped.  MCL_FUTURE alone would fault in every page of a channel at once as it
 * is mapped, at real-time priority: every byte of its rings and a timer queue sized
 * for every record those rings could hold, across all channels of the worker (for a
 * large capacity on a VM, longer than the supervisor's ADD timeout).  So the ADD
 * makes resident what the hot path will touch (the segment up to its tap rings,
 * mapped with MAP_POPULATE, whose pages the supervisor has already allocated; the
 * in-flight array; the first part of the timer queue: prefault.h), and the rest
 * follows what is actually queued.  Memory already locked stays locked.
 */
void rtudp_w_lock_on_fault(void)
{
    if (lock_mode != LOCK_ALL)
        return;
#ifdef MCL_ONFAULT
    if (mlockall(MCL_FUTURE | MCL_ONFAULT) != 0)
        fprintf(stderr, "rtudp-worker: warning: mlockall(MCL_ONFAULT): %s; every channel's "
                        "memory is faulted in whole when it opens\n", strerror(errno));
#endif
}

void rtudp_w_make_resident(void *p, size_t len)
{
    /* a lock-on-fault mapping ignores MAP_POPULATE (the kernel populates only what is
     * locked outright): mlock faults it in, and it stays locked.  Under a bounded
     * limit MAP_POPULATE has made it resident already; it is locked if it still fits */
    if (lock_mode == LOCK_BOUNDED) {
        (void)mlock(p, len);
        return;
    }
    if (lock_mode == LOCK_ALL && mlock(p, len) != 0)
        fprintf(stderr, "rtudp-worker: warning: mlock of %zu bytes: %s; its pages fault in "
                        "when first used\n", len, strerror(errno));
}

int rtudp_w_pin_cpu(long cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE) {
        fprintf(stderr, "rtudp-worker: --cpu %ld is out of range 0..%d\n", cpu, CPU_SETSIZE - 1);
        return -1;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        int e = errno;
        cpu_set_t allowed;
        CPU_ZERO(&allowed);
        char list[256] = "";
        if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
            size_t off = 0;
            for (int i = 0; i < CPU_SETSIZE && off + 8 < sizeof list; i++)
                if (CPU_ISSET(i, &allowed))
                    off += (size_t)snprintf(list + off, sizeof list - off, "%s%d", off ? "," : "", i);
        }
        fprintf(stderr, "rtudp-worker: cannot run on CPU %ld: %s (allowed: %s)\n", cpu,
                strerror(e), list[0] ? list : "?");
        return -1;
    }
    return 0;
}

int rtudp_w_set_priority(long prio)
{
    if (prio <= 0)
        return 0;
    int lo = sched_get_priority_min(SCHED_FIFO), hi = sched_get_priority_max(SCHED_FIFO);
    if (prio < lo || prio > hi) {
        fprintf(stderr, "rtudp-worker: --rt-priority %ld is outside SCHED_FIFO's %d..%d\n", prio,
                lo, hi);
        return -1;
    }
    struct sched_param sp = {.sched_priority = (int)prio};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
        if (errno == EPERM) {
            fprintf(stderr, "rtudp-worker: warning: SCHED_FIFO %ld not permitted (needs "
                            "CAP_SYS_NICE or an RLIMIT_RTPRIO); staying SCHED_OTHER\n", prio);
            return 0;
        }
        fprintf(stderr, "rtudp-worker: sched_setscheduler(SCHED_FIFO, %ld): %s\n", prio,
                strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Why: an idle CPU that sleeps deeply, or a vCPU that halts, wakes late for a timer, a
 * futex or a packet: on every wakeup of a worker, or of a client the worker wakes on
 * another CPU.  A PM QoS CPU latency request of 0 us makes idle CPUs poll instead
 * (the cpuidle POLL state), which wakes almost at once; cyclictest holds the same
 * request while it measures.  The kernel keeps it while the file is open, so it ends
 * with the worker, however it exits.  It is held only while channels are served, and
 * --idle-poll 0 turns it off.
 *
 * Not on a virtual machine: there every idle vCPU then polls, all of them, and a host
 * that caps the VM's CPU time stops it for it: a busy vCPU beside polling ones is
 * stopped for milliseconds far more often, which makes the worst sends late by as
 * much and skips netflux cycles.  A halted vCPU wakes later without the request,
 * which the spin before each deadline covers (docs/measurements.md at d3e5a6a, "PM QoS on a
 * VM").  Where idle halts without polling, the worker's idle poller keeps its own CPU
 * from long halts instead (idlepoller.h), which the host does not punish.
 */
/* the poller's pid where the CPU-share look (its time is idle, not others') and the
 * worker table see it */
static void show_poller(struct rtudp_worker *w)
{
    w->pacer.cpuidle.trace.idle_pid = (uint32_t)w->pacer.poller.pid;
    store_relaxed(&w->me->idle_poller_pid, (uint32_t)w->pacer.poller.pid);
}

/* the request and the poller as the channels served (pacer.poll_wanted) and resting
 * call for: the poller runs while channels want it, stopped while the worker rests;
 * the request is held while they want it and the worker does not rest */
static void apply_idle_poll(struct rtudp_worker *w)
{
    int want = w->pacer.poll_wanted && w->pacer.idle_poll;
    int hold = want && !w->resting;
    if (hold && w->pacer.qos_fd < 0 && !w->pacer.qos_costs_host) {
        int fd = open(QOS_DEVICE, O_WRONLY | O_CLOEXEC);
        int32_t zero_us = 0;
        if (fd < 0 || write(fd, &zero_us, sizeof zero_us) != (ssize_t)sizeof zero_us) {
            fprintf(stderr, "rtudp-worker %u: warning: %s: %s; idle CPUs may sleep deeply "
                            "(slower wakeups); not asking again\n", w->id, QOS_DEVICE,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            w->pacer.idle_poll = 0;
            return;
        }
        w->pacer.qos_fd = fd;
    } else if (!hold && w->pacer.qos_fd >= 0) {
        close(w->pacer.qos_fd);
        w->pacer.qos_fd = -1;
    }
    store_relaxed(&w->me->idle_poll, (uint32_t)(w->pacer.qos_fd >= 0));
    if (want && w->pacer.poller_needed && !w->pacer.poller.pid) {
        if (rtudp_idlepoller_start(&w->pacer.poller) != 0) {
            fprintf(stderr, "rtudp-worker %u: warning: cannot start the idle poller: %s; "
                            "this CPU halts when idle (slower wakeups); not trying again\n",
                    w->id, strerror(errno));
            w->pacer.poller_needed = 0;
        }
    } else if (!want) {
        rtudp_idlepoller_stop(&w->pacer.poller);
    }
    rtudp_idlepoller_rest(&w->pacer.poller, w->resting);
    show_poller(w);
}

void rtudp_w_idle_poll(struct rtudp_worker *w, int want)
{
    w->pacer.poll_wanted = want;
    apply_idle_poll(w);
}

/*
 * Resting.  Idle polling (the request above, or the idle poller) makes the CPU's
 * wake-ups prompt for the work to come, and costs CPU time (the poller's naps) or
 * power (a polling idle CPU) whether work comes or not.  So a worker that has had
 * nothing to do for RTUDP_W_REST_AFTER_NS (no deadline, record, command or datagram)
 * rests: no request held, its poller stopped, its tick RTUDP_W_REST_TICK_NS apart.
 * The next work wakes it: a record or a command rings its bell anyway (it parks with
 * no deadline, so every producer rings), and a datagram makes the RX thread ring it
 * (rtudp_rx.rest).  That first wake-up comes from a CPU that may have halted, as a
 * worker without idle polling wakes; what follows is prompt again.
 * docs/scheduling.md, "Resting", has what that first send costs.
 */
void rtudp_w_rest(struct rtudp_worker *w, int64_t now)
{
    /* seq_cst both sides (rxloop.c, note_work): either the RX thread sees `rest` and
     * rings, or this thread sees what it read */
    atomic_store(&w->rx.rest, 1);
    if (atomic_exchange(&w->rx.worked, 0)) {
        atomic_store(&w->rx.rest, 0);
        w->worked_ns = now;
        return;
    }
    w->resting = 1;
    apply_idle_poll(w);
}

void rtudp_w_wake(struct rtudp_worker *w, int64_t now)
{
    w->resting = 0;
    atomic_store_explicit(&w->rx.rest, 0, memory_order_relaxed);
    apply_idle_poll(w);
    /* the ticks come at their working pace again (control.c) */
    if (w->next_tick > now + RTUDP_W_HEARTBEAT_NS)
        w->next_tick = now + RTUDP_W_HEARTBEAT_NS;
}

void rtudp_w_idle_poller_check(struct rtudp_worker *w)
{
    int status;
    if (!rtudp_idlepoller_exited(&w->pacer.poller, &status))
        return;
    fprintf(stderr, "rtudp-worker %u: warning: the idle poller exited (%s %d); this CPU halts "
                    "when idle (slower wakeups); not starting another\n", w->id,
            WIFSIGNALED(status) ? "signal" : "status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    w->pacer.poller_needed = 0;
    show_poller(w);
}
