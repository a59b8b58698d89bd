/*
 * idlepoller.c - keep the worker's vCPU from halting (see idlepoller.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, SCHED_IDLE */
#endif
#include "idlepoller.h"
#include "compat.h" /* rtudp_close_range */
#include "ring.h" /* rtudp_now_ns */
#include "sysfile.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CPUIDLE_DRIVER "/sys/devices/system/cpu/cpuidle/current_driver"
#define HALTPOLL_NS "/sys/module/haltpoll/parameters/guest_halt_poll_ns"
#define GATE_BYTES 4096
/* a park's last stretch shorter than this is not napped (a system call for nothing) */
#define NAP_MIN_NS 2000

extern char **environ;

/* the cpuidle driver's name into name[len]; 0 when there is no cpuidle at all */
static int cpuidle_driver(char *name, size_t len)
{
    name[0] = '\0';
    FILE *f = fopen(CPUIDLE_DRIVER, "r");
    if (!f)
        return 0;
    int got = fgets(name, (int)len, f) != NULL;
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    return got;
}

int rtudp_idlepoller_needed(void)
{
    char name[64];
    if (!cpuidle_driver(name, sizeof name) || strcmp(name, "none") == 0)
        return 1; /* the idle loop halts */
    /* haltpoll polls for up to guest_halt_poll_ns (adaptively) before it halts:
     * with 0 (this VM's boot line) it never does */
    return strcmp(name, "haltpoll") == 0 && rtudp_read_u64_file(HALTPOLL_NS) == 0;
}

int rtudp_idlepoller_on_vm(void)
{
    char name[64];
    if (cpuidle_driver(name, sizeof name) && strcmp(name, "haltpoll") == 0)
        return 1; /* a KVM guest's driver */
    FILE *f = fopen("/sys/hypervisor/type", "r"); /* Xen's, e.g. */
    if (f) {
        int named = fgetc(f) != EOF;
        fclose(f);
        if (named)
            return 1;
    }
    f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    /* x86 names the CPUID hypervisor bit among the first CPU's flags */
    char line[8192];
    int vm = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        vm = strstr(line, " hypervisor") != NULL;
        break;
    }
    fclose(f);
    return vm;
}

/* the gate's page, shared with the poller through a memfd; -1 with errno */
static int make_gate(struct rtudp_idlegate **gate)
{
    int fd = memfd_create("rtudp-idle-gate", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    void *m = MAP_FAILED;
    if (ftruncate(fd, GATE_BYTES) != 0 ||
        (m = mmap(NULL, GATE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *gate = m;
    atomic_init(&(*gate)->park, 0u); /* the first write: its page is there before a park */
    atomic_init(&(*gate)->waiting, 0u);
    atomic_init(&(*gate)->until_ns, 0);
    return fd;
}

static int spawn(pid_t *pid, int gate_fd)
{
    char parent[24];
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    char *argv[] = {"rtudp-worker", RTUDP_IDLEPOLLER_ARG, parent, NULL};
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t files;
    if (posix_spawnattr_init(&attr) != 0)
        return ENOMEM;
    if (posix_spawn_file_actions_init(&files) != 0) {
        posix_spawnattr_destroy(&attr);
        return ENOMEM;
    }
    /* SCHED_OTHER from the start: it never runs at the worker's SCHED_FIFO (glibc's
     * spawn refuses SCHED_IDLE; the poller takes that itself); the worker's blocked
     * and handled signals are not its own */
    struct sched_param sp = {.sched_priority = 0};
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    int rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSCHEDULER | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF);
    if (!rc)
        rc = posix_spawnattr_setschedpolicy(&attr, SCHED_OTHER);
    if (!rc)
        rc = posix_spawnattr_setschedparam(&attr, &sp);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (!rc) /* dup2 clears close-on-exec on the copy */
        rc = posix_spawn_file_actions_adddup2(&files, gate_fd, RTUDP_IDLEPOLLER_GATE_FD);
    /* glibc spawns with CLONE_VM | CLONE_VFORK: the worker's (locked) memory is not
     * marked copy-on-write, as a fork would, to fault on its next writes */
    if (!rc)
        rc = posix_spawn(pid, "/proc/self/exe", &files, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attr);
    return rc;
}

int rtudp_idlepoller_start(struct rtudp_idlepoller *p)
{
    if (p->pid > 0)
        return 0;
    struct rtudp_idlegate *gate;
    int fd = make_gate(&gate);
    if (fd < 0)
        return -1;
    pid_t pid = 0;
    int rc = spawn(&pid, fd);
    close(fd); /* the mapping stays */
    if (rc) {
        munmap(gate, GATE_BYTES);
        errno = rc;
        return -1;
    }
    if (clock_getcpuclockid(pid, &p->clock) != 0)
        p->clock = -1;
    p->gate = gate;
    p->pid = pid;
    p->stopped = 0;
    return 0;
}

/* the poller was reaped (rusage: what it had): its CPU time kept, its gate unmapped */
static void forget(struct rtudp_idlepoller *p, const struct rusage *ru)
{
    p->stopped_ns += ((int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000000 +
                     ((int64_t)ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000;
    munmap(p->gate, GATE_BYTES);
    p->gate = NULL;
    p->pid = 0;
    p->stopped = 0;
}

void rtudp_idlepoller_stop(struct rtudp_idlepoller *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    struct rusage ru = {0};
    while (wait4(p->pid, NULL, 0, &ru) < 0 && errno == EINTR)
        ;
    forget(p, &ru);
}

void rtudp_idlepoller_rest(struct rtudp_idlepoller *p, int rest)
{
    if (p->pid <= 0 || !rest == !p->stopped)
        return;
    /* a child of ours, not reaped: the pid is still its own */
    if (kill(p->pid, rest ? SIGSTOP : SIGCONT) == 0)
        p->stopped = rest;
}

int rtudp_idlepoller_exited(struct rtudp_idlepoller *p, int *status)
{
    struct rusage ru = {0};
    if (p->pid <= 0 || wait4(p->pid, status, WNOHANG, &ru) != p->pid)
        return 0;
    forget(p, &ru);
    return 1;
}

static long futex(atomic_uint *word, int op, uint32_t value)
{
    /* shared (no FUTEX_PRIVATE_FLAG): the word is in a page of two processes */
    return syscall(SYS_futex, word, op, value, NULL, NULL, 0);
}

void rtudp_idlepoller_open(struct rtudp_idlepoller *p, int64_t until_ns)
{
    if (!p->gate)
        return;
    atomic_store(&p->gate->until_ns, until_ns);
    /* a new odd value, also if the last park was never closed: a poller done with
     * that one waits for the word to change.  seq_cst, both sides: either the poller
     * sees it before it waits, or this thread sees it waiting and wakes it */
    unsigned park = atomic_load_explicit(&p->gate->park, memory_order_relaxed);
    atomic_store(&p->gate->park, park + ((park & 1u) ? 2u : 1u));
    if (atomic_load(&p->gate->waiting))
        futex(&p->gate->park, FUTEX_WAKE, 1);
}

int64_t rtudp_idlepoller_cpu_ns(const struct rtudp_idlepoller *p)
{
    struct timespec ts;
    if (p->pid <= 0 || p->clock == (clockid_t)-1 || clock_gettime(p->clock, &ts) != 0)
        return p->stopped_ns;
    return p->stopped_ns + (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t rtudp_idlepoller_round(struct rtudp_idlegate *gate)
{
    unsigned park = atomic_load(&gate->park);
    int64_t until = atomic_load(&gate->until_ns);
    /* `until` is this park's only if `park` did not move meanwhile (the TX thread
     * stores it before a new park's value) */
    if ((park & 1u) && atomic_load(&gate->park) == park) {
        int64_t now = rtudp_now_ns();
        if (until - now >= NAP_MIN_NS) {
            int64_t end = until - now > RTUDP_IDLEPOLLER_NAP_NS ? now + RTUDP_IDLEPOLLER_NAP_NS
                                                               : until;
            struct timespec at = {(time_t)(end / 1000000000LL), (long)(end % 1000000000LL)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
                ;
            return end;
        }
    }
    /* closed, or this park's naps done: wait for the next park */
    atomic_store(&gate->waiting, 1u);
    if (atomic_load(&gate->park) == park)
        futex(&gate->park, FUTEX_WAIT, park);
    atomic_store(&gate->waiting, 0u);
    return 0;
}

int rtudp_idlepoller_main(const char *parent_pid)
{
    char *end;
    errno = 0;
    long parent = strtol(parent_pid, &end, 10);
    if (errno || end == parent_pid || *end || parent <= 1 || parent > INT_MAX) {
        fprintf(stderr, "rtudp-worker: %s needs the worker's pid, not '%s'\n",
                RTUDP_IDLEPOLLER_ARG, parent_pid);
        return 2;
    }
    struct stat st;
    struct rtudp_idlegate *gate = MAP_FAILED;
    if (fstat(RTUDP_IDLEPOLLER_GATE_FD, &st) == 0 && st.st_size >= (off_t)sizeof *gate)
        gate = mmap(NULL, sizeof *gate, PROT_READ | PROT_WRITE, MAP_SHARED,
                    RTUDP_IDLEPOLLER_GATE_FD, 0);
    if (gate == MAP_FAILED) {
        fprintf(stderr, "rtudp-worker: idle poller: no gate on descriptor %d\n",
                RTUDP_IDLEPOLLER_GATE_FD);
        return 2;
    }
    /* none of the worker's descriptors (channels' sockets) stay open here */
    if (rtudp_close_range(RTUDP_IDLEPOLLER_GATE_FD, ~0U, 0) != 0)
        for (int fd = RTUDP_IDLEPOLLER_GATE_FD; fd < 1024; fd++)
            close(fd);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != (pid_t)parent)
        return 0; /* the worker is gone already, or would never take us with it */
    /* spawned through /proc/self/exe, it would show as "exe" in top, ps and traces */
    prctl(PR_SET_NAME, (unsigned long)RTUDP_IDLEPOLLER_COMM);
    prctl(PR_SET_TIMERSLACK, 1UL); /* naps of RTUDP_IDLEPOLLER_NAP_NS, not 50 us more */
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0) {
        fprintf(stderr, "rtudp-worker: idle poller: sched_setscheduler(SCHED_IDLE): %s\n",
                strerror(errno));
        return 1; /* at SCHED_OTHER it would take a fair share from every other task */
    }
    for (;;)
        rtudp_idlepoller_round(gate);
}
