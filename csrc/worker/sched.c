/*
 * sched.c - process-wide setup done before any thread exists, so every thread
 * inherits it: die with the supervisor, lock memory, pin to a CPU, SCHED_FIFO;
 * and the CPU idle-latency request, held while the worker serves channels.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define QOS_DEVICE "/dev/cpu_dma_latency"

#include "worker.h"

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

void rtudp_w_lock_memory(void)
{
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer reserves terabytes of shadow memory: locking it all would
     * exhaust RAM.  Sanitized builds are for tests, where paging does not matter. */
    fprintf(stderr, "rtudp-worker: AddressSanitizer build: memory not locked\n");
    return;
#endif
    /* page faults on the hot path cost more than the memory; without the privilege
     * or the RLIMIT_MEMLOCK we run unlocked and say so once */
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
        fprintf(stderr, "rtudp-worker: warning: mlockall: %s; running with unlocked memory\n",
                strerror(errno));
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
 * Why: an idle CPU of a virtual machine halts, and waking it (a timer, a futex, a
 * packet) costs an exit to the host: tens of microseconds on every wakeup of a
 * worker, or of a client the worker wakes on another CPU.  A PM QoS CPU latency
 * request of 0 us makes idle CPUs poll instead (the cpuidle POLL state), which wakes
 * in about one; cyclictest holds the same request while it measures.  The kernel
 * keeps it while the file is open, so it ends with the worker, however it exits.
 * It costs the host the idle CPUs' time, so it is held only while channels are
 * served, and --idle-poll 0 turns it off.
 */
void rtudp_w_idle_poll(struct rtudp_worker *w, int want)
{
    want = want && w->idle_poll;
    if (want && w->qos_fd < 0) {
        int fd = open(QOS_DEVICE, O_WRONLY | O_CLOEXEC);
        int32_t zero_us = 0;
        if (fd < 0 || write(fd, &zero_us, sizeof zero_us) != (ssize_t)sizeof zero_us) {
            fprintf(stderr, "rtudp-worker %u: warning: %s: %s; idle CPUs may sleep deeply "
                            "(slower wakeups); not asking again\n", w->id, QOS_DEVICE,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            w->idle_poll = 0;
            return;
        }
        w->qos_fd = fd;
    } else if (!want && w->qos_fd >= 0) {
        close(w->qos_fd);
        w->qos_fd = -1;
    }
    store_relaxed(&w->me->idle_poll, (uint32_t)(w->qos_fd >= 0));
}
