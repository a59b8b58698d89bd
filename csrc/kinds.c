/*
 * kinds.c - the kinds of proto/kinds.def and the channel block's counters, as Python
 * reads them through cffi (kinds.h).  Names no kind: everything comes from kinds.def.
 */
#include "kinds.h"

/* the kind areas kinds.def names (each defined by RTUDP_KIND_AREA in its kind's file) */
#define RTUDP_KIND(NAME, name, code, prefix, area, ffi) \
    extern const struct rtudp_kind_area rtudp_area_##area;
#include "proto/kinds.def"
#undef RTUDP_KIND

/* a kind without an area (kinds.def's `none`) */
const struct rtudp_kind_area rtudp_area_none = {0, NULL, 0, 0, NULL};

static const struct rtudp_kind_info kinds[] = {
#define RTUDP_KIND(NAME, name, code, prefix, area, ffi) {#name, prefix, code, 0, &rtudp_area_##area},
#include "proto/kinds.def"
#undef RTUDP_KIND
};

const struct rtudp_kind_info *rtudp_kind_at(uint32_t index)
{
    return index < sizeof kinds / sizeof kinds[0] ? &kinds[index] : NULL;
}

RTUDP_COUNTER_TABLE(channel_counters, struct rtudp_channel_block, RTUDP_CHANNEL_COUNTERS);

const struct rtudp_counter_desc *rtudp_channel_counters(uint32_t *n)
{
    *n = (uint32_t)(sizeof channel_counters / sizeof channel_counters[0]);
    return channel_counters;
}
