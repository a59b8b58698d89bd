/*
 * generator.h - an RTP sender's state: SSRC, sequence number, timestamp, marker.
 *
 * The timestamp advances by clock_rate * ptime per packet at any clock rate
 * (8/16/48 kHz audio, 90 kHz video); when that is not a whole number of ticks
 * (e.g. 44.1 kHz, 10.5 ms) the remainder is carried so no drift accumulates.
 * SSRC, first sequence number and first timestamp come from getrandom() (RFC 3550
 * 5.1, 8: two senders must not start alike; librtpsynth used unseeded random()).
 */
#ifndef RTUDP_RTP_GENERATOR_H
#define RTUDP_RTP_GENERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "header.h"

#define RTP_GEN_MAX_RATE 10000000u    /* ticks per second */
#define RTP_GEN_MAX_PTIME_US 10000000u /* 10 s */

struct rtp_gen {
    uint32_t ssrc;
    uint16_t seq;       /* of the next packet */
    uint32_t ts;        /* of the next packet */
    uint32_t clock_rate;
    uint32_t ptime_us;
    uint64_t step_num;  /* clock_rate * ptime_us: ticks per packet * 1e6 */
    uint64_t frac;      /* carried remainder, in 1e-6 ticks */
    bool marker;        /* set on the next packet, then cleared */
    int64_t last_ns;    /* CLOCK_MONOTONIC of the last packet (for resync) */
};

/* Random SSRC/seq/ts.  Returns RTP_OK, RTP_E_ARG (bad rate or ptime) or -errno
 * when the OS random source fails. */
int rtp_gen_init(struct rtp_gen *g, uint32_t clock_rate, uint32_t ptime_us);
/* Fill a buffer from the OS random source (getrandom); 0 or -errno. */
int rtp_random_bytes(void *buf, size_t len);
/* Timestamp ticks the next packet advances by (whole ticks, remainder carried). */
uint32_t rtp_gen_step(struct rtp_gen *g);
/*
 * Writes the next packet (12-byte header + plen bytes) into out.  payload NULL:
 * zero-filled; else payload_len <= plen bytes copied, the rest zero.  Returns the
 * length, RTP_E_ARG (pt > 127, payload longer than plen, PT 72-76 with marker)
 * or RTP_E_NOSPACE.
 */
int rtp_gen_next(struct rtp_gen *g, uint8_t *out, size_t cap, uint8_t pt, const uint8_t *payload,
                 size_t payload_len, size_t plen, int64_t now_ns);
/* Only the 12-byte header of the next packet, into out (the payload after it is
 * left alone: a worker fills the header room of a frame in place).  Returns 12 or
 * RTP_E_ARG / RTP_E_RTCP like rtp_gen_next. */
int rtp_gen_header(struct rtp_gen *g, uint8_t *out, uint8_t pt, int64_t now_ns);
/* n packets back to back (stride 12 + plen), zero payload; returns n or an error. */
int rtp_gen_batch(struct rtp_gen *g, uint8_t *out, size_t cap, uint32_t n, uint8_t pt,
                  size_t plen, int64_t now_ns);
/* Advance the timestamp by n packet times without sending (silence/DTX); the next
 * packet starts a talkspurt, so it carries the marker (RFC 3551 4.1). */
void rtp_gen_skip(struct rtp_gen *g, uint32_t n);
/* Sets the marker for the next packet; returns the previous setting. */
bool rtp_gen_set_marker(struct rtp_gen *g, bool on);
/* Advances the timestamp by the wall time since the last packet (after a pause)
 * and marks a talkspurt start. */
void rtp_gen_resync_clock(struct rtp_gen *g, int64_t now_ns);

#endif
