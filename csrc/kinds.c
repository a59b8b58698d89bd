/*
 * kinds.c - the kinds of proto/kinds.def and the counters of the channel block, the
 * rings and the worker slots, as Python reads them through cffi (kinds.h).  Names no kind: everything comes from kinds.def.
 */
#include "kinds.h"

/* the kind areas kinds.def names (each defined by RTUDP_KIND_AREA in its kind's file) */
#define RTUDP_KIND(NAME, name, code, prefix, area, ffi) \
    extern const struct rtudp_kind_area rtudp_area_##area;
#include "proto/kinds.def"
#undef RTUDP_KIND

/* a kind without an area (kinds.def's `none`) */
const struct rtudp_kind_area rtudp_area_none = {0, NULL, 0, 0, NULL, NULL, NULL, 0, 0, 0, NULL};

static const struct rtudp_kind_info kinds[] = {
#define RTUDP_KIND(NAME, name, code, prefix, area, ffi) {#name, prefix, code, 0, &rtudp_area_##area},
#include "proto/kinds.def"
#undef RTUDP_KIND
};

const struct rtudp_kind_info *rtudp_kind_at(uint32_t index)
{
    return index < sizeof kinds / sizeof kinds[0] ? &kinds[index] : NULL;
}

/* the counter groups of the layout that are not kind areas: name, struct, list */
#define RTUDP_COUNTER_GROUPS(G)                                                                  \
    G(channel, struct rtudp_channel_block, RTUDP_CHANNEL_COUNTERS)                               \
    G(tx_ring, struct rtudp_mpsc_ring, RTUDP_MPSC_RING_COUNTERS)                                 \
    G(rx_ring, struct rtudp_bcast_ring, RTUDP_BCAST_RING_COUNTERS)                               \
    G(worker, struct rtudp_worker_slot, RTUDP_WORKER_COUNTERS)

#define RTUDP_GROUP_FUNCTION(name, S, LIST) RTUDP_COUNTER_FUNCTION(group_##name, S, LIST)
RTUDP_COUNTER_GROUPS(RTUDP_GROUP_FUNCTION)
#undef RTUDP_GROUP_FUNCTION

int rtudp_counter_group_at(uint32_t index, struct rtudp_counter_group *g)
{
    uint32_t i = 0;
#define RTUDP_GROUP_CASE(name, S, LIST)                                                          \
    if (index == i++) {                                                                          \
        *g = (struct rtudp_counter_group){#name, #S, NULL, 0, 0, sizeof(S)};                     \
        g->counters = group_##name(&g->n_counters);                                              \
        return 1;                                                                                \
    }
    RTUDP_COUNTER_GROUPS(RTUDP_GROUP_CASE)
#undef RTUDP_GROUP_CASE
    return 0;
}
