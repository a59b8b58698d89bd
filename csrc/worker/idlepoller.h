/*
 * idlepoller.h - keep the worker's vCPU from halting where the kernel cannot.
 *
 * An idle CPU of a virtual machine halts, and the host has to run the vCPU again to
 * deliver the timer or the wake-up that ends a worker's park, so the park ends late.
 * With a cpuidle driver a PM QoS request of 0 (sched.c, rtudp_w_idle_poll) makes idle
 * CPUs poll instead, but not on a VM, whose host stops it for the time its polling
 * vCPUs take (sched.c); and this kind of VM boots either without a driver
 * (current_driver "none": the request then changes nothing) or with haltpoll told
 * never to poll (guest_halt_poll_ns 0): either way its idle loop halts.
 *
 * A halt the host ends within its own halt-polling window costs little, a long one
 * does not.  So there the worker keeps its CPU from long halts itself: a child process
 * on its CPU, SCHED_IDLE, that naps RTUDP_IDLEPOLLER_NAP_NS in a loop.  Every halt then
 * ends within a nap, and a timer or a wake-up in it comes about as quickly as beside a
 * task spinning there.  It costs a wake-up a nap, a few % of the CPU, while the worker
 * parks for long (docs/measurements.md at d3e5a6a, "An idle poller where no cpuidle driver is").
 * Not a spinning task: one at SCHED_IDLE beside ordinary ones makes them wait seconds
 * for their CPU on this kernel (its vruntime grows without bound).  SCHED_IDLE: its
 * wake-ups never preempt another task.  A process of its own, not a thread: the
 * worker's CPU clock (its real-time cap, rtstat's CPU) stays the worker's; the
 * CPU-share look (cputrace.h) counts the poller's time as idle.
 *
 * It naps only while the TX thread parks for long (the gate, words the two share in
 * a memfd page): a halt as short as a capped sleep costs nothing, and naps beside a
 * busy worker would only add wake-ups.  Nor through a park that ends the largest
 * spin margin before a deadline (RTUDP_SPIN_LONG_PARK_NS or more, spin.h): that margin
 * holds a halted vCPU's late wake-up, and the naps make the spin that follows worse.
 * Parks too short for that margin show no clear difference, so the naps stay there
 * (docs/measurements.md at d3e5a6a, "The idle poller's naps before a 5 ms deadline").  Why the
 * naps hurt is not traced: the late sends are host stops while the worker spins, and
 * a vCPU that wakes that often may be the host's first to stop.
 * Closed, it waits on the gate (a futex); the TX thread opens it before a long park (a
 * wake-up only when the poller waits) and closes it when it wakes (a store).
 *
 * Its naps end at the park's end at the latest (the gate says when), never after:
 * a nap's timer that expires while the worker spins to its deadline interrupts the
 * spin, and a timer interrupt costs this VM's guest about as much as a wake-up, which
 * leaves a netflux cycle's packets late far more often (docs/measurements.md at d3e5a6a, "the
 * idle poller's naps ending with the park").  A nap that ends with the park expires in
 * the interrupt that ends the park.  The last one done, it waits on the gate until the
 * next park.
 *
 * It runs only while the worker serves channels whose wake-ups must be prompt (they
 * send, or receive without gathering: rxloop.c, rx_gather) and Pool(idle_poll=True)
 * (the default).  It dies with the worker's thread that started it (PR_SET_PDEATHSIG), so a
 * killed worker leaves none behind.
 *
 * While the worker rests (sched.c, rtudp_w_rest: seconds without a deadline, a record,
 * a command or a datagram) it is stopped (SIGSTOP: state T in ps) and costs nothing;
 * the worker continues it (SIGCONT) at its next work.  Its gate is closed then
 * anyway; stopped, it cannot even finish a nap, and whoever looks sees that it rests.
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
/* a nap of the poller's loop: well inside the host's halt-polling window, where a halt
 * costs little; longer naps would wake the CPU less often (docs/measurements.md) */
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
    int stopped;                /* SIGSTOP sent (its worker rests), no SIGCONT since */
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

/* Its worker rests (rest 1): SIGSTOP, so it takes no CPU at all; or works again (0):
 * SIGCONT.  A signal only when that changes; none running: nothing. */
void rtudp_idlepoller_rest(struct rtudp_idlepoller *p, int rest);

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
