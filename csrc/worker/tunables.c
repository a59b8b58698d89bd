/*
 * tunables.c - the tables tunables.h describes, for the worker and for Python.
 */
#include <stddef.h>

#include "rtudp_shm.h"
#include "tunables.h"

static const struct rtudp_tunable_desc tunables[] = {
#define RTUDP_TUNABLE_DESC(id, name_, def_, min_, max_, unit_, scale_, help_)                  \
    {.name = name_, .unit = unit_, .help = help_, .default_value = def_, .min = min_, .max = max_,       \
     .scale = scale_},
    RTUDP_TUNABLES(RTUDP_TUNABLE_DESC)
#undef RTUDP_TUNABLE_DESC
};

static const struct rtudp_idle_strategy_desc strategies[] = {
#define RTUDP_STRATEGY_DESC(name_, prio, spin, poll, rx_coalesce, tx_coalesce, tx_lateness,    \
                            help_)                                                             \
    {.name = name_, .help = help_,                                                             \
     .values = {prio, spin, poll, rx_coalesce, tx_coalesce, tx_lateness}},
    RTUDP_IDLE_STRATEGIES(RTUDP_STRATEGY_DESC)
#undef RTUDP_STRATEGY_DESC
};

_Static_assert(RTUDP_TUNE_COUNT == sizeof strategies[0].values / sizeof strategies[0].values[0],
               "an idle strategy gives every tunable a value");
_Static_assert(RTUDP_TUNE_COUNT == sizeof ((struct rtudp_worker_slot *)0)->tunables /
                                     sizeof ((struct rtudp_worker_slot *)0)->tunables[0],
               "the worker slot holds every tunable (rtudp_shm.h, line 5)");

const struct rtudp_tunable_desc *rtudp_tunable_table(uint32_t *n)
{
    *n = (uint32_t)(sizeof tunables / sizeof tunables[0]);
    return tunables;
}

const struct rtudp_idle_strategy_desc *rtudp_idle_strategy_table(uint32_t *n)
{
    *n = (uint32_t)(sizeof strategies / sizeof strategies[0]);
    return strategies;
}
