/*
 * cputrace.h - who else ran on the worker's CPU, from the scheduler's switches
 *
 * cpushare.h judges whether anybody else wants the worker's CPU from how that CPU's
 * time was spent: the worker's, idle, the rest.  cpuidle's per-state residency gives
 * the idle time when the kernel runs a cpuidle driver.  This kind of VM boots
 * sometimes without one (current_driver "none": the haltpoll driver registers only
 * when the host hints), and then no file has it: /proc/stat rounds it to 10 ms, PSI
 * loses waits read under a jiffy apart, power:cpu_idle does not fire on every vCPU of
 * these VMs (docs/measurements.md at d3e5a6a, "a VM without a cpuidle driver"), and
 * sched:sched_switch records the switches into the idle task but not (on this kernel)
 * those out of it.  Without an idle time the worker never judges itself alone, and
 * sleeps capped pieces on a CPU nobody else wants.
 *
 * What sched_switch does record is enough to time the others instead.  A perf event
 * on it for the worker's CPU writes, for each switch, the task that leaves the CPU
 * (the one running when it fires: pid and tid) and a CLOCK_MONOTONIC time.  A task
 * that is neither the worker's (its pid) nor the idle task (tid 0) nor the worker's
 * idle poller (idlepoller.h: it stands in for the idle task) ran from some
 * point after the switch before (a switch to it, or one into idle it woke from) up to
 * its own: that stretch is counted as others' time.  Exact when it took the CPU from
 * the worker; when it woke on an idle CPU, the idle time before it counts too, which
 * errs towards "not alone".  The worker reads the records once a look (a spin window).
 * Root (or CAP_PERFMON) and tracefs are needed; without them there is no source.
 *
 * rtudp_cputrace_drain and rtudp_cputrace_idle are pure bookkeeping (tests/c/
 * test_worker_units.c); open, read and close touch the kernel.
 */
#ifndef RTUDP_CPUTRACE_H
#define RTUDP_CPUTRACE_H

#include <stddef.h>
#include <stdint.h>

#define RTUDP_CPUTRACE_PAGES 16 /* data pages: 2,730 records, many looks' switches */
/* what perf writes for each switch: its header, then pid, tid (PERF_SAMPLE_TID) and
 * time (PERF_SAMPLE_TIME) */
#define RTUDP_CPUTRACE_SAMPLE_BYTES 24

struct rtudp_cputrace {
    int fd;            /* the perf event; -1 = no source */
    void *map;         /* its ring: a control page, then RTUDP_CPUTRACE_PAGES */
    size_t map_len;
    const uint8_t *data; /* the records' pages in it, and their size */
    uint64_t data_size;
    uint32_t self_pid; /* the worker's: its threads' switches are not others' */
    uint32_t idle_pid; /* the idle poller's (idlepoller.h): its time is idle; 0 = none */
    int64_t others_ns; /* others' stretches summed so far */
    int64_t last_ns;   /* the last switch's time; 0 = unknown (none yet, or after a gap) */
    int gap;           /* records were lost (or made no sense): the sum is short */
    uint64_t records;  /* samples read */
    /* rtudp_cputrace_idle's bases */
    int64_t base_now, base_cpu, base_others, idle_ns;
};

/* Reads the records in data[tail, head) of a ring of `size` bytes (a power of two,
 * positions taken modulo it) into t.  Returns the new tail (head, or where an
 * impossible record stopped it, after setting t->gap). */
uint64_t rtudp_cputrace_drain(struct rtudp_cputrace *t, const uint8_t *data, uint64_t size,
                              uint64_t tail, uint64_t head);

/* The CPU's idle time as cpushare.h wants it, from others' time: what of the wall
 * time since the first call neither the worker (`cpu_ns`, its process CPU time) nor
 * others had, never going back (a look whose clocks were read a little apart adds
 * nothing rather than subtract).  -1 when t->gap was set (then cleared, and the
 * bases taken again). */
int64_t rtudp_cputrace_idle(struct rtudp_cputrace *t, int64_t now, int64_t cpu_ns);

/* Starts the event on `cpu` for the process `self_pid`; 0, or -1 (t->fd -1) when the
 * kernel does not give it. */
int rtudp_cputrace_open(struct rtudp_cputrace *t, long cpu, uint32_t self_pid);
void rtudp_cputrace_close(struct rtudp_cputrace *t);

/* Reads what the kernel recorded (on the traced CPU: nobody else is on it then);
 * then rtudp_cputrace_idle.  -1 without a source, or once after a gap. */
int64_t rtudp_cputrace_idle_now(struct rtudp_cputrace *t, int64_t now, int64_t cpu_ns);

#endif
