/*
 * idlepoller.h - keep the worker's vCPU from halting where the kernel cannot.
 *
 * An idle CPU of a virtual machine halts, and the host has to run the vCPU again to
 * deliver the timer or the wake-up that ends a worker's park: measured on the 2-vCPU
 * Firecracker VM (a SCHED_FIFO thread on an idle CPU, clock_nanosleep to absolute
 * deadlines), woken late by p50 31 / p99 147 us after 1 ms parks and 56 / 111 us
 * after 5 ms.  With a cpuidle driver a PM QoS request of 0 (sched.c, rtudp_w_idle_poll)
 * makes idle CPUs poll instead, but not on a VM, whose host stops it for the time its
 * polling vCPUs take (sched.c); and this kind of VM boots either without a driver
 * (current_driver "none": the request then changes nothing, measured 27 / 48 and
 * 54 / 90 us) or with haltpoll told never to poll (guest_halt_poll_ns 0): either way
 * its idle loop halts.
 *
 * A halt the host ends within its own halt-polling window costs little (a 30 us sleep
 * woke as fast halting as with the CPU busy), a long one does not.  So there the
 * worker keeps its CPU from long halts itself: a child process on its CPU, SCHED_IDLE,
 * that naps RTUDP_IDLEPOLLER_NAP_NS in a loop.  Every halt then ends within 100 us,
 * and a timer or a wake-up in it comes as quickly: measured (a SCHED_FIFO thread
 * parking to absolute deadlines on a CPU with such a napper) 1 ms parks woke late by
 * p50 5.4 / p99 10.7 us against 15.2 / 43.5 alone, 5 ms parks 6.4 / 20.3 against
 * 39.1 / 93.3 us, as good as a task spinning there (5.2 / 9.1 at 1 ms).  It costs
 * ~10,000 wake-ups a second, a few % of the CPU, while the worker parks for long.
 * Not a spinning task: one at SCHED_IDLE beside ordinary ones made them wait seconds
 * for their CPU on this kernel (its vruntime grew without bound, and rtstat, runnable,
 * got 24 ms of CPU in 3 s).  SCHED_IDLE: its wake-ups never preempt another task.
 * A process of its own, not a thread: the worker's CPU clock (its real-time cap,
 * rtstat's CPU) stays the worker's; the CPU-share look (cputrace.h) counts the
 * poller's time as idle.
 *
 * It naps only while the TX thread parks for long (the gate, words the two share in
 * a memfd page): a halt as short as a capped sleep costs nothing, and naps beside a
 * busy worker would only add wake-ups.  Nor through a park that ends the largest
 * spin margin before a deadline (RTUDP_SPIN_LONG_PARK_NS or more, spin.h): 200 us
 * holds a halted vCPU's late wake-up, and the naps made the spin that follows worse.
 * Measured on the 2-vCPU VM, a netflux channel at 5 ms, rounds of 5 s interleaved
 * with a C loop parking to 200 us before each slot, p99 |deviation| of the arrivals:
 * with naps median 24.5 us over 8 rounds (pooled 26.8), without 8.0 (8.2), the C loop
 * 9.9 (9.2); the worker's build before and after this rule, 8 rounds each, 45.3 / 17.9
 * (the C loop 6.3).  At 1 ms, parks too short for that margin, no clear difference
 * (pooled 24.3 / 12.5 us, medians 5.0 / 17.6): the naps stay there.  Why, not traced:
 * the late sends were host stops (no guest event for 100-200 us) while the worker
 * spun; a vCPU that woke ~10,000 times a second may be the host's first to stop.
 * Closed, it waits on the gate (a futex); the TX thread opens it before a long park (a
 * wake-up only when the poller waits) and closes it when it wakes (a store).
 *
 * Its naps end at the park's end at the latest (the gate says when), never after:
 * a nap's timer that expired while the worker spins to its deadline interrupts the
 * spin, and a timer interrupt costs this VM's guest ~15 us (a SCHED_FIFO thread woke
 * p50 16.7 us late on a busy CPU).  With 100 us naps a 1 ms netflux cycle left p90
 * 9.9-13.5 / p99 18.7-28.7 us late against 1.7-1.8 / 3.6-3.7 us without the poller;
 * a nap that ends with the park expires in the interrupt that ends the park.  The
 * last one done, it waits on the gate until the next park.
 *
 * It runs only while the worker serves channels and Pool(idle_poll=True) (the
 * default).  It dies with the worker's thread that started it (PR_SET_PDEATHSIG), so a
 * killed worker leaves none behind.
 */
#ifndef RTUDP_IDLEPOLLER_H
#define RTUDP_IDLEPOLLER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* the worker's argv[1] that makes it the poller: rtudp-worker --idle-poller PARENT_PID;
 * the gate's memfd is its descriptor 3 */
#define RTUDP_IDLEPOLLER_ARG "--idle-poller"
#define RTUDP_IDLEPOLLER_GATE_FD 3
/* its name (comm) in top, ps and traces */
#define RTUDP_IDLEPOLLER_COMM "rtudp-idlepoll"
/* a nap of the poller's loop: well inside the host's halt polling (a 200 us one was
 * already as good, measured) */
#define RTUDP_IDLEPOLLER_NAP_NS 100000L

/* the page the worker and its poller share */
struct rtudp_idlegate {
    atomic_uint park;        /* odd while the TX thread parks for long: poll; +1 at
                              * each open and close (a futex: a new park changes it) */
    atomic_uint waiting;     /* 1: the poller waits on `park`: wake it */
    _Atomic int64_t until_ns; /* the park's end (CLOCK_MONOTONIC), stored before `park` */
};

struct rtudp_idlepoller {
    pid_t pid;                  /* the running poller; 0 = none */
    clockid_t clock;            /* its CPU clock, while it runs */
    int64_t stopped_ns;         /* CPU time the stopped ones had */
    struct rtudp_idlegate *gate; /* mapped while it runs */
};

/* 1 when idle CPUs here halt without polling first: no cpuidle driver
 * (current_driver "none", or no cpuidle at all), or haltpoll with
 * guest_halt_poll_ns 0 */
int rtudp_idlepoller_needed(void);

/* 1 on a virtual machine (the haltpoll driver, or the CPU's hypervisor flag): there a
 * PM QoS request that makes idle vCPUs poll is not held (sched.c, rtudp_w_idle_poll) */
int rtudp_idlepoller_on_vm(void);

/* Starts the poller on the calling thread's CPUs (it inherits the affinity), its gate
 * closed: 0, or -1 with errno.  Already running: 0. */
int rtudp_idlepoller_start(struct rtudp_idlepoller *p);

/* Stops it (SIGKILL, reaped); none running: nothing. */
void rtudp_idlepoller_stop(struct rtudp_idlepoller *p);

/* Reaps a poller that exited by itself (killed, or refused SCHED_IDLE): 1 then (its
 * status in *status; the worker goes on without one), else 0.  A system call: once
 * a heartbeat. */
int rtudp_idlepoller_exited(struct rtudp_idlepoller *p, int *status);

/* The TX thread is about to park for long, until `until_ns`: poll meanwhile, naps
 * ending by then (none running: nothing). */
void rtudp_idlepoller_open(struct rtudp_idlepoller *p, int64_t until_ns);

/* ... and is awake again: the poller waits (none running: nothing).  Only the TX
 * thread writes `park`: a load and a store. */
static inline void rtudp_idlepoller_close(struct rtudp_idlepoller *p)
{
    if (!p->gate)
        return;
    unsigned park = atomic_load_explicit(&p->gate->park, memory_order_relaxed);
    if (park & 1u)
        atomic_store_explicit(&p->gate->park, park + 1u, memory_order_relaxed);
}

/* CPU time the pollers had so far, the running one's included: the CPU's idle time,
 * which benchmarks take out of what "others" used (workers[].idle_poller_cpu_ns) */
int64_t rtudp_idlepoller_cpu_ns(const struct rtudp_idlepoller *p);

/* One turn of the poller's loop on `gate`: a nap while a park is open, ending by its
 * end (the CLOCK_MONOTONIC ns it napped to is returned), else a wait on the gate
 * until the next park (0). */
int64_t rtudp_idlepoller_round(struct rtudp_idlegate *gate);

/* The poller's own program (main() hands argv[2] over): returns only on bad input or
 * when the parent is already gone. */
int rtudp_idlepoller_main(const char *parent_pid);

#endif
