/*
 * registry.c - the channel kinds this worker serves, by RTUDP_KIND_* code: the hooks
 * of every line of kinds.def (a new kind adds its line there, not here).
 */
#include <stddef.h>

#include "proto.h"
#include "rtudp_shm.h"

static const struct rtudp_proto *const kinds[] = {
#define RTUDP_KIND(NAME, name, ...) &rtudp_proto_##name,
#include "kinds.def"
#undef RTUDP_KIND
};

const struct rtudp_proto *rtudp_proto_find(uint32_t kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i]->kind == kind)
            return kinds[i];
    return NULL;
}
