/*
 * jbuf.h - a jitter buffer for one RTP stream: sequence validation (RFC 3550
 * A.1), 64-bit extended sequence numbers, de-duplication, reordering, erasure
 * records for gaps, and the receiver statistics of A.3 (loss) and A.8 (jitter).
 *
 * The buffer never copies or owns packet bytes: the caller passes an opaque
 * `ref` with each datagram (a pointer, an index, a Python object) and gets it
 * back in exactly one frame - released in order (RTP_JB_PACKET) or given back
 * (RTP_JB_DROP) - or, when push() says the packet was not kept, keeps it.
 * Frames go to a callback, in order.  No allocation after rtp_jbuf_init().
 *
 * Release modes:
 *   count (latency_ms == 0, librtpsynth's): a gap is declared lost (an erasure
 *     frame, then the packets after it) when `capacity` packets wait behind it;
 *     at start the buffer fills to `capacity` before the first release, so a
 *     reordered beginning is still delivered in order.
 *   time (latency_ms > 0, GStreamer-style): a gap is declared lost when the
 *     packet that revealed it has waited latency_ms (its playout deadline);
 *     the first release happens latency_ms after the first packet.  Call
 *     rtp_jbuf_poll() to let deadlines pass without new packets.
 * In both, contiguous packets are released as soon as they can be.
 *
 * Sources: the first SSRC heard is on probation until two packets with adjacent
 * sequence numbers arrived (A.1 MIN_SEQUENTIAL = 2; in count mode also when the
 * buffer fills).  A jump of more than MAX_DROPOUT ahead or MAX_MISORDER behind
 * is held aside; if the next packet continues from it (A.1's bad_seq) the
 * sender restarted: everything buffered is flushed and a new epoch begins.  A
 * new SSRC replaces the current one the same way (two consecutive packets).
 * Extended sequence numbers stay increasing across restarts (the new epoch
 * starts in the next 2^16 cycle), and lseq & 0xFFFF is always the wire seq.
 */
#ifndef RTUDP_RTP_JBUF_H
#define RTUDP_RTP_JBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "header.h"

#define RTP_JB_MAX_DROPOUT 3000u
#define RTP_JB_MAX_MISORDER 100u
#define RTP_JB_MIN_SLOTS 64u
#define RTP_JB_MAX_CAPACITY (1u << 20)

enum rtp_jb_kind { RTP_JB_PACKET = 0, RTP_JB_ERASURE = 1, RTP_JB_DROP = 2 };

/* push() results that are not parse errors */
enum rtp_jb_push {
    RTP_JB_TAKEN = 0,   /* the buffer keeps ref; it comes back in a frame */
    RTP_JB_DUP = 1,     /* already buffered or released: ref not kept */
    RTP_JB_LATE = 2,    /* older than what was released already: not kept */
};

/* What the buffer keeps of a packet. */
struct rtp_jb_pkt {
    uint64_t ref;
    int64_t arrival_ns;
    uint32_t ts, ssrc;
    uint32_t payload_off, payload_len;
    uint32_t len;           /* datagram length */
    uint16_t seq;
    uint8_t pt, marker;
};

struct rtp_jb_frame {
    uint8_t kind;           /* enum rtp_jb_kind */
    uint64_t lseq;          /* packet: extended seq; erasure: first lost */
    uint64_t lseq_end;      /* erasure: last lost (inclusive) */
    uint64_t ts_span;       /* erasure: timestamp ticks the lost packets cover */
    struct rtp_jb_pkt pkt;  /* packet and drop */
};

typedef void (*rtp_jb_emit_fn)(void *ctx, const struct rtp_jb_frame *f);

/* Per-SSRC receiver statistics (reset when a new SSRC takes over). */
struct rtp_jb_stats {
    uint32_t ssrc;
    uint64_t received;      /* packets accepted (not duplicates, not late) */
    uint64_t duplicates;
    uint64_t late;          /* arrived after their place was released or erased */
    uint64_t reordered;     /* arrived after a higher sequence number */
    uint64_t expected;      /* A.3: highest ext seq - base + 1, summed over epochs */
    int64_t lost;           /* A.3: expected - received (negative with duplicates) */
    uint64_t erased;        /* packets declared lost by the buffer (in erasure frames) */
    uint64_t restarts;      /* A.1 restarts after a large jump, and SSRC changes */
    uint64_t jitter;        /* A.8 interarrival jitter, timestamp units */
    uint64_t other_ssrc;    /* packets of another SSRC (while on probation or dropped) */
    uint64_t bad_seq;       /* large-jump packets that no follow-up confirmed */
    uint64_t invalid;       /* datagrams that failed to parse */
    uint64_t probation_dropped; /* packets discarded when probation restarted */
};

enum rtp_jb_slot_state { SLOT_EMPTY = 0, SLOT_HELD = 1, SLOT_RELEASED = 2 };

struct rtp_jb_slot {
    uint64_t ext;
    uint8_t state;
    struct rtp_jb_pkt pkt;
};

struct rtp_jbuf {
    /* configuration */
    uint32_t capacity;
    int64_t latency_ns;     /* 0: count mode */
    uint32_t clock_rate;    /* for A.8 jitter; 0: not computed */
    uint32_t mask;          /* slots - 1 */
    struct rtp_jb_slot *slots;

    /* source (A.1) */
    bool have_src, validated;
    uint16_t max_seq;
    uint64_t max_ext;       /* highest extended seq accepted */
    uint64_t base_ext;      /* lowest ext seq of the epoch */
    uint64_t expected_before; /* expected of finished epochs */
    bool jump_held;         /* a large-jump packet held aside */
    uint16_t bad_seq;       /* seq that would confirm it */
    struct rtp_jb_pkt jump_pkt;
    bool cand_held;         /* a packet of another SSRC held aside */
    struct rtp_jb_pkt cand_pkt;

    /* release */
    bool started;           /* warm-up over: next_ext is meaningful */
    uint64_t next_ext;      /* next ext seq to release */
    uint32_t last_ts;       /* RTP timestamp of the last released packet */
    bool have_last_ts;
    uint32_t held;          /* packets in slots */
    uint64_t lo_ext;        /* lowest held ext seq before start */
    int64_t first_arrival_ns;
    int64_t gap_since_ns;   /* time mode: when the gap at next_ext became known */
    bool have_gap_since;

    /* A.8 */
    bool have_transit;
    int64_t transit;
    uint64_t jitter_q4;     /* jitter * 16 */

    struct rtp_jb_stats st;
};

/* capacity 1..RTP_JB_MAX_CAPACITY; latency_ms 0 = count mode.  0 or RTP_E_ARG
 * (bad value) or -ENOMEM. */
int rtp_jbuf_init(struct rtp_jbuf *jb, uint32_t capacity, uint32_t latency_ms, uint32_t clock_rate);
/* Gives every held ref back as RTP_JB_DROP (emit may be NULL) and frees the slots. */
void rtp_jbuf_destroy(struct rtp_jbuf *jb, rtp_jb_emit_fn emit, void *ctx);
/* One datagram.  Returns enum rtp_jb_push, or a negative enum rtp_status when it
 * is not a valid RTP packet (counted in stats.invalid; ref not kept). */
int rtp_jbuf_push(struct rtp_jbuf *jb, const uint8_t *pkt, size_t len, uint64_t ref, int64_t now_ns,
                  rtp_jb_emit_fn emit, void *ctx);
/* Time mode: release what the deadlines allow at now_ns. */
void rtp_jbuf_poll(struct rtp_jbuf *jb, int64_t now_ns, rtp_jb_emit_fn emit, void *ctx);
/* Release everything held, in order, with erasures for the gaps between. */
void rtp_jbuf_flush(struct rtp_jbuf *jb, rtp_jb_emit_fn emit, void *ctx);
/* Statistics with lost and jitter brought up to date. */
void rtp_jbuf_stats(const struct rtp_jbuf *jb, struct rtp_jb_stats *out);
/* Where the numbering stands: the next extended seq it releases (before the start:
 * the lowest one held).  False while no source was heard. */
bool rtp_jbuf_position(const struct rtp_jbuf *jb, uint64_t *next_ext);
/* A fresh buffer (just initialised) carries on another's numbering: source `ssrc`,
 * validated and started at next_ext, the last released timestamp `last_ts` when
 * have_last_ts.  What the other held but never released is then a gap below the
 * first packet that comes, declared lost as any gap (an erasure). */
void rtp_jbuf_resume(struct rtp_jbuf *jb, uint32_t ssrc, uint64_t next_ext, bool have_last_ts,
                     uint32_t last_ts);

#endif
