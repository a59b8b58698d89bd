/*
 * impair.h - impairment of a channel's datagrams: the configuration's seqlock (struct
 * rtudp_impair_shm, rtudp_shm.h), the seeded draws, and the verdict for one datagram.
 * The worker applies verdicts (worker/impair.c); Python publishes configurations
 * (rtudp.shmring.impairment).  docs/impairment.md says what each field does.
 *
 * Reproducible: the draws come from splitmix64 (Steele, Lea, Flood, "Fast splittable
 * pseudorandom number generators", 2014; the generator of java.util.SplittableRandom),
 * seeded with cfg.seed when a side takes a configuration on (the RX side's stream is
 * seeded with seed ^ RTUDP_IMPAIR_RX_STREAM).  Each datagram takes exactly
 * RTUDP_IMPAIR_DRAWS draws whatever is switched on, so a seed and a sequence of
 * datagrams give the same drops, duplicates and corruptions whatever the other fields.
 */
#ifndef RTUDP_IMPAIR_H
#define RTUDP_IMPAIR_H

#include <stdint.h>

#include "rtudp_shm.h"

/* BEGIN CDEF */
/* A writer: publish cfg as the channel's impairment (clamped as the worker would read
 * it) and tell clients to leave their sends to the worker while sends are impaired.
 * Waits up to wait_ns for another writer to finish; one that held the lock longer is
 * taken to have died in it.  RTUDP_OK, or RTUDP_EINVAL for NULL. */
int rtudp_impair_publish(struct rtudp_channel_block *b, const struct rtudp_impair_cfg *cfg,
                         int64_t wait_ns);
/* A consistent copy of the published configuration: RTUDP_OK, or RTUDP_EFULL if writers
 * kept changing it (try again). */
int rtudp_impair_read(const struct rtudp_impair_shm *shm, struct rtudp_impair_cfg *out);
/* The next draw of a splitmix64 stream (state advanced). */
uint64_t rtudp_splitmix64(uint64_t *state);
/* END CDEF */

#define RTUDP_IMPAIR_DRAWS 6                       /* draws per datagram, always */
#define RTUDP_IMPAIR_RX_STREAM 0x5258494d50414952ull /* "RIAPMIXR": the RX side's seed */

/* One side's (TX thread's or RX thread's) copy of the configuration and its stream. */
struct rtudp_impair {
    uint64_t seen_seq;                             /* seq of the copy; UINT64_MAX: none yet */
    struct rtudp_impair_cfg cfg;                   /* clamped */
    uint64_t rng;                                  /* splitmix64 state */
    int64_t rate_next_ns;                          /* the rate limit's theoretical arrival
                                                      time (GCRA): its bucket is full then */
    int on;                                        /* this side is impaired */
};

/* What happens to one datagram. */
struct rtudp_impair_verdict {
    uint32_t copies;                               /* 0: lost; 1; 2: duplicated */
    uint32_t corrupt;                              /* 1: flip bit `bit` of byte `byte` */
    uint32_t byte;
    uint32_t bit;
    int64_t hold_ns;                               /* delay + jitter + reorder hold */
    uint32_t delayed;                              /* delay_ns or jitter_ns held it */
    uint32_t reordered;                            /* reorder_ns held it */
};

/* The side's state before any configuration. */
void rtudp_impair_init(struct rtudp_impair *s);
/* Take a new configuration on if one was published (`side`: RTUDP_IMPAIR_TX or _RX;
 * restarts the stream and the rate limit); returns s->on.  One relaxed load when
 * nothing changed. */
int rtudp_impair_refresh(struct rtudp_impair *s, const struct rtudp_impair_shm *shm,
                         uint32_t side);
/* The verdict for the next datagram of `len` bytes (RTUDP_IMPAIR_DRAWS draws). */
void rtudp_impair_decide(struct rtudp_impair *s, uint32_t len, struct rtudp_impair_verdict *v);
/* When a datagram of `len` bytes ready at `at` may leave under the rate limit's token
 * bucket (at itself without one); takes its tokens. */
int64_t rtudp_impair_rate(struct rtudp_impair *s, int64_t at, uint32_t len);

#endif /* RTUDP_IMPAIR_H */
