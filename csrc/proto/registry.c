/*
 * registry.c - the channel kinds this worker serves, by RTUDP_KIND_* code.  A new
 * kind adds its proto/<name>.c and one line here.
 */
#include <stddef.h>

#include "proto.h"
#include "rtudp_shm.h"

static const struct rtudp_proto *const kinds[] = {
    &rtudp_proto_udp,
    &rtudp_proto_rtp,
    &rtudp_proto_netflux,
};

const struct rtudp_proto *rtudp_proto_find(uint32_t kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i]->kind == kind)
            return kinds[i];
    return NULL;
}
