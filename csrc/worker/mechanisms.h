/*
 * mechanisms.h - the pacer's mechanisms that can be switched off one by one.
 *
 * Each is a piece of the worker's timing policy that answers one problem of a
 * virtual machine (docs/scheduling.md).  All are on by default; `rtudp-worker --off
 * NAME,...` (Pool(pacer_off=...)) switches some off, so that `rtudp bench mechanisms`
 * can measure each against the same pool with it on, in the same run.  Switching one
 * off never makes the worker unsafe: the RT cap itself and the spin budget are not
 * among them (the budget is a tunable, tunables.h).
 */
#ifndef RTUDP_MECHANISMS_H
#define RTUDP_MECHANISMS_H

#include <stdint.h>

/* X(ID, name, help) */
#define RTUDP_MECHANISMS(X)                                                                    \
    X(ADAPTIVE_MARGIN, "adaptive_margin",                                                      \
      "the park ends a margin before a deadline that follows the wake-ups' p99 "               \
      "(off: the starting margin, fixed)")                                                     \
    X(LONG_PARK_EARLY, "long_park_early",                                                      \
      "a park of 2 ms or more ends the largest margin before its deadline")                   \
    X(BRIDGE, "bridge",                                                                        \
      "a gap about as short as a sleep's CPU cost is spun, budget or not")                     \
    X(WARMUP, "warmup", "the send path is warmed just before a deadline after a long park")   \
    X(RX_TURNS, "rx_turns", "a TX thread that spins across a gap does the RX work meanwhile") \
    X(CAP_PACE, "cap_pace",                                                                    \
      "past its pace to the RT cap, the TX thread leaves the CPU in short sleeps as it goes " \
      "(off: only once the cap is reached)")                                                   \
    X(SENT_FIRST, "sent_first", "a deadline near a capped sleep is sent before it")           \
    X(CPU_SHARE, "cpu_share",                                                                  \
      "once a window, the CPU's idle time says whether others on it get too little "          \
      "(feeds share_sleeps and alone)")                                                        \
    X(SHARE_SLEEPS, "share_sleeps",                                                            \
      "capped sleeps grow while another task on the CPU gets too little of it")               \
    X(ALONE, "alone", "a worker alone on its CPU spins past the RT cap at SCHED_OTHER")       \
    X(DEMOTE, "demote",                                                                        \
      "past the RT cap the TX thread drops to SCHED_OTHER when its budget pays (with a "      \
      "backoff after a preemption)")                                                           \
    X(GUARD, "guard", "a guard thread takes the CPU back for a demoted TX thread")            \
    X(RX_CAP, "rx_cap", "the RX thread sleeps past its own share of the RT cap")              \
    X(HOST_PAUSE, "host_pause", "spin steps the host stopped the vCPU for are told apart")

enum rtudp_mechanism_id {
#define RTUDP_MECHANISM_ENUM(id, name, help) RTUDP_MECH_##id,
    RTUDP_MECHANISMS(RTUDP_MECHANISM_ENUM)
#undef RTUDP_MECHANISM_ENUM
    RTUDP_MECH_COUNT
};

_Static_assert(RTUDP_MECH_COUNT <= 32, "the switches are one 32-bit mask");

/* 1 when mechanism `id` is on in the mask of those switched off */
static inline int rtudp_mech_on(uint32_t off, enum rtudp_mechanism_id id)
{
    return !(off >> id & 1u);
}

/* BEGIN CDEF */
struct rtudp_mechanism_desc {
    const char *name;
    const char *help;
};

/* the table and its length */
const struct rtudp_mechanism_desc *rtudp_mechanism_table(uint32_t *n);
/* the mask of the comma-separated names in `list` ("" = none) into *off: 0, or -1 with
 * the first unknown name copied into bad (bad_len bytes, NUL-terminated) */
int rtudp_mechanisms_parse(const char *list, uint32_t *off, char *bad, uint32_t bad_len);
/* END CDEF */

#endif
