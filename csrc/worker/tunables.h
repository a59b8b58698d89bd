/*
 * tunables.h - what a user may set on a pool's workers, described once.
 *
 * Each tunable has its name (Pool's keyword; rtudp-worker and `rtudp pool start` take
 * it as --name-with-dashes), its default, its range and unit in the worker's own
 * terms, and the scale Python shows it in (spin_budget: permille in the worker, a
 * share of a CPU, 0..1, in Python).  The worker parses its options from this table;
 * Python reads it through cffi for Pool's checks and docstring, the CLI's --help and
 * the pool's status, so no default is written twice.
 *
 * An idle strategy is a named set of tunables, as Aeron's idle strategies are named:
 * a user picks one per pool (Pool(idle=...), `rtudp pool start --idle ...`) and may
 * still set any tunable of it by name.  docs/scheduling.md says what each costs and
 * gives.
 */
#ifndef RTUDP_TUNABLES_H
#define RTUDP_TUNABLES_H

#include <stdint.h>

/* X(ID, name, default, min, max, unit, scale, help); values in the worker's unit */
#define RTUDP_TUNABLES(X)                                                                      \
    X(RT_PRIORITY, "rt_priority", 50, 0, 99, "", 1,                                            \
      "SCHED_FIFO priority of the worker threads (0: SCHED_OTHER)")                           \
    X(SPIN_BUDGET, "spin_budget", 300, 0, 1000, "share of a CPU", 1000,                        \
      "how much of its CPU a worker may busy-wait just before deadlines: more is more "        \
      "precise at high packet rates, at the price of that CPU")                                \
    X(IDLE_POLL, "idle_poll", 1, 0, 1, "bool", 1,                                              \
      "keep idle CPUs from sleeping deeply while channels are served, so that a wake-up "      \
      "takes about a microsecond instead of tens")                                             \
    X(RX_COALESCE_US, "rx_coalesce_us", 50, 0, 1000, "us", 1,                                  \
      "while datagrams come faster than the RX thread wakes, let them gather this long "       \
      "before reading again (their kernel stamps stay exact; 0: read at once)")               \
    X(TX_COALESCE_US, "tx_coalesce_us", 50, 0, 1000, "us", 1,                                  \
      "while deadlines come closer together than the spin budget can wait for, send those "  \
      "due within this long of one together with it, early by at most this (0: each at its " \
      "own time)")                                                                             \
    X(TX_LATENESS_US, "tx_lateness_us", 0, 0, 100000, "us", 1,                                 \
      "a timed send may leave up to this late: the worker wakes at most once per this long "  \
      "for them and sends all that are due, without spinning (0: each at its own time)")

enum rtudp_tunable_id {
#define RTUDP_TUNABLE_ENUM(id, name, def, min, max, unit, scale, help) RTUDP_TUNE_##id,
    RTUDP_TUNABLES(RTUDP_TUNABLE_ENUM)
#undef RTUDP_TUNABLE_ENUM
    RTUDP_TUNE_COUNT
};

/* X(name, rt_priority, spin_budget, idle_poll, rx_coalesce_us, tx_coalesce_us,
 * tx_lateness_us, help): what the strategy sets (RTUDP_TUNE_KEEP, below: the tunable's default); the first is the default strategy */
#define RTUDP_IDLE_STRATEGIES(X)                                                               \
    X("balanced", RTUDP_TUNE_KEEP, RTUDP_TUNE_KEEP, RTUDP_TUNE_KEEP, RTUDP_TUNE_KEEP,          \
      RTUDP_TUNE_KEEP, RTUDP_TUNE_KEEP,                                                        \
      "spins a bounded share of a CPU just before deadlines and parks on a futex "            \
      "otherwise; keeps idle CPUs responsive while channels are served")                       \
    X("spin", RTUDP_TUNE_KEEP, 1000, RTUDP_TUNE_KEEP, 0, 0, 0,                                 \
      "spins before every deadline as long as the real-time cap allows, and reads datagrams "  \
      "as soon as they come: the least lateness, for a core given to the pool")                \
    X("park", RTUDP_TUNE_KEEP, 0, 0, RTUDP_TUNE_KEEP, RTUDP_TUNE_KEEP, RTUDP_TUNE_KEEP,        \
      "never busy-waits and leaves idle states alone: the least CPU, wake-ups as late as "     \
      "the machine's sleep states make them")

/* BEGIN CDEF */
#define RTUDP_TUNE_KEEP -1             /* a strategy leaves the tunable at its default */

struct rtudp_tunable_desc {
    const char *name;
    const char *unit;
    const char *help;
    int64_t default_value;
    int64_t min;
    int64_t max;
    uint32_t scale;             /* Python shows value / scale */
};

struct rtudp_idle_strategy_desc {
    const char *name;
    const char *help;
    int64_t values[6];          /* per tunable, in the table's order */
};

/* the tables and their lengths */
const struct rtudp_tunable_desc *rtudp_tunable_table(uint32_t *n);
const struct rtudp_idle_strategy_desc *rtudp_idle_strategy_table(uint32_t *n);
/* END CDEF */

#endif
