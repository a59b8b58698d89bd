/*
 * ring_fixture.h - fresh rings for the C tests: mpsc_new(cap) and bcast_new(cap) give a
 * ring of exactly its footprint (so AddressSanitizer reports any access outside it),
 * initialised and attached, as the handle the engine uses.  The caller frees h.ring.
 * Include after harness.h.
 */
#ifndef RTUDP_TEST_RING_FIXTURE_H
#define RTUDP_TEST_RING_FIXTURE_H

#include <stdio.h>

#include "ring.h"

/* One definition for both ring kinds: they differ only in their names. */
#define RING_FIXTURE_NEW(kind)                                                        \
    static inline struct rtudp_##kind kind##_new(uint64_t cap)                        \
    {                                                                                 \
        uint64_t fp = rtudp_##kind##_footprint(cap);                                  \
        CHECK_EQ(fp, sizeof(struct rtudp_##kind##_ring) + cap);                       \
        struct rtudp_##kind##_ring *r = zalloc64(fp);                                 \
        CHECK_EQ(rtudp_##kind##_init(r, cap), RTUDP_OK);                              \
        struct rtudp_##kind h;                                                        \
        struct rtudp_check why = {0, ""};                                             \
        int rc = rtudp_##kind##_attach(&h, r, fp, &why);                              \
        if (rc != RTUDP_OK)                                                           \
            fprintf(stderr, "attach: %s\n", why.msg);                                 \
        CHECK_EQ(rc, RTUDP_OK);                                                       \
        CHECK(h.ring == r);                                                           \
        CHECK(h.data == (uint8_t *)(r + 1));                                          \
        CHECK_EQ(h.capacity, cap);                                                    \
        return h;                                                                     \
    }

RING_FIXTURE_NEW(mpsc)
RING_FIXTURE_NEW(bcast)

#endif
