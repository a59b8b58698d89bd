/*
 * rtp_area.h - the rtp channel kind's shared state: its kind area (configuration,
 * the send target, counters) and the records it puts in the RX ring.
 *
 * Send (TX ring records): each record is 12 bytes of room for the RTP header, then
 * the payload.  In PACED and TIMED mode the worker writes the header into that room
 * (SSRC, sequence number, timestamp from csrc/rtp/generator.c; payload type and
 * marker from the record's flags or the configuration):
 *   PACED  frames leave one ptime apart at the RTP clock, the first one at once (or
 *          at its send_at_ns); after an underrun (no frame when one was due) the
 *          clock skips the missed packet times and the next frame carries the marker.
 *   TIMED  each frame leaves at its send_at_ns; its timestamp is the first frame's
 *          plus (send_at_ns - first send_at_ns) at the clock rate.
 *   RAW    the record is the datagram, sent at send_at_ns like a udp channel.
 * Receive:
 *   JBUF   datagrams go through the jitter buffer (csrc/rtp/jbuf.c) in the RX thread;
 *          readers get struct rtudp_rx_meta, struct rtudp_rtp_frame, then (packets
 *          only) the datagram.  Invalid datagrams are counted, not delivered.  In time
 *          mode (latency_ms > 0) gaps are declared lost by the RX timer.
 *   RAW    datagrams are published as they are (meta + datagram, like udp).
 *
 * The target (where sends go; RtpServer's set_target) may be changed by any client
 * at any time: a seqlock over atomic words, read by the TX thread at each record.
 */
#ifndef RTUDP_RTP_AREA_H
#define RTUDP_RTP_AREA_H

#include <stdint.h>

#include "rtudp_shm.h"

/* BEGIN CDEF */
#define RTUDP_RTP_TX_PACED 0
#define RTUDP_RTP_TX_TIMED 1
#define RTUDP_RTP_TX_RAW 2
#define RTUDP_RTP_RX_JBUF 0
#define RTUDP_RTP_RX_RAW 1
#define RTUDP_RTCP_OFF 0
#define RTUDP_RTCP_PORT 1                          /* RTCP on the RTP port + 1 */
#define RTUDP_RTCP_MUX 2                           /* RTCP on the RTP port (RFC 5761) */
#define RTUDP_RTCP_MIN_INTERVAL_MS 100
#define RTUDP_RTP_HDR_ROOM 12                      /* bytes before the payload in a TX record */

/* TX record flags (struct rtudp_tx_record.flags) of PACED/TIMED records */
#define RTUDP_RTP_F_PT_MASK 127                    /* payload type, when RTUDP_RTP_F_PT */
#define RTUDP_RTP_F_PT 128                         /* use the record's payload type */
#define RTUDP_RTP_F_MARKER 256                     /* set the marker bit */

/* tx_resume: the TX line holds a generator's state (SSRC, next seq/ts, fraction) and
 * TIMED's origin (first deadline and timestamp); a worker that takes the channel over
 * (a restart) carries them on instead of starting a new numbering */
#define RTUDP_RTP_RESUME_GEN 1u
#define RTUDP_RTP_RESUME_TIMED 2u

/* RX frame kinds (struct rtudp_rtp_frame.kind) */
#define RTUDP_RTP_FRAME_PACKET 0
#define RTUDP_RTP_FRAME_ERASURE 1

struct rtudp_rtp_area {
    /* line 0: configuration, written once by the supervisor before the worker sees it */
    uint32_t tx_mode;                              /* RTUDP_RTP_TX_* */
    uint32_t rx_mode;                              /* RTUDP_RTP_RX_* */
    uint32_t clock_rate;                           /* RTP clock, Hz */
    uint32_t ptime_us;                             /* packet time */
    uint32_t jb_capacity;                          /* jitter buffer packets */
    uint32_t jb_latency_ms;                        /* 0: count mode, else time mode */
    uint32_t payload_type;                         /* default PT of sent frames */
    uint32_t rtcp_mode;                            /* RTUDP_RTCP_* */
    uint32_t rtcp_interval_ms;                     /* RFC 3550 6.2 Tmin */
    uint32_t pad0[7];
    /* line 1: the send target, any client writes it (seqlock: gen odd while written) */
    uint64_t target_gen;
    uint64_t target_word[3];                       /* family | port << 16 | scope << 32, addr */
    uint8_t pad1[32];
    /* line 2: TX state and counters, written by the worker's TX thread */
    uint32_t tx_ssrc;
    uint32_t tx_next_ts;                           /* timestamp of the next frame */
    uint32_t tx_next_seq;                          /* sequence number of the next frame */
    uint32_t tx_resume;                            /* RTUDP_RTP_RESUME_*: what a successor takes */
    uint64_t tx_frames;                            /* frames given a header and queued */
    uint64_t tx_underruns;                         /* PACED: no frame when one was due */
    uint64_t tx_bad_records;                       /* shorter than the header room */
    int64_t tx_t0_ns;                              /* TIMED: the first frame's deadline */
    uint32_t tx_ts0;                               /* TIMED: the first frame's timestamp */
    uint32_t tx_frac;                              /* the generator's carried tick fraction */
    int64_t tx_next_at_ns;                         /* PACED: no frame queued now leaves before
                                                      this (the pacing clock); 0: not known */
    /* lines 3-4: RX counters, written by the worker's RX thread */
    uint64_t rx_frames;                            /* packets delivered in order */
    uint64_t rx_erasures;                          /* erasure records delivered */
    uint64_t rx_erased;                            /* packets those erasures cover */
    uint64_t rx_invalid;                           /* datagrams that are not RTP */
    uint64_t rx_duplicates;
    uint64_t rx_late;                              /* after their place was released */
    uint64_t rx_reordered;
    uint64_t rx_restarts;                          /* A.1 restarts and SSRC changes */
    uint32_t rx_ssrc;                              /* the source being received */
    uint32_t rx_last_ts;                           /* timestamp of the last frame released */
    int64_t rx_lost;                               /* A.3 cumulative lost, current source */
    uint64_t rx_expected;                          /* A.3 expected, current source */
    uint64_t rx_jitter;                            /* A.8 interarrival jitter, ts units */
    uint64_t rx_other_ssrc;                        /* packets of another SSRC, not taken */
    uint64_t rx_no_buffer;                         /* could not be held (cannot happen) */
    uint64_t rx_published_errors;                  /* RX ring refused a record */
    uint64_t rx_resume;                            /* next lseq to release + 1 (0: none), and
                                                      RTUDP_RTP_RX_RESUME_TS */
    /* line 5: RX counters of packets the jitter buffer gave up, written by the RX thread */
    uint64_t rx_bad_seq;                           /* far jumps no next packet confirmed */
    uint64_t rx_probation_dropped;                 /* held while on probation, which restarted */
    uint32_t rx_held_aside;                        /* a far jump waiting for its confirmation */
    uint32_t rx_ext_max;                           /* extended highest seq received (RTCP RR) */
    uint8_t pad6[40];
    /* line 6: RTCP counters: *_sent by the TX thread, the others by the thread that
     * receives RTCP (the RX thread when muxed, the TX thread on its own port) */
    uint64_t rtcp_sr_sent;
    uint64_t rtcp_rr_sent;
    uint64_t rtcp_sr_received;
    uint64_t rtcp_rr_received;
    uint64_t rtcp_bad;                             /* compound packets that failed validation */
    int64_t rtcp_rtt_ns;                           /* last RTT from a report block's LSR/DLSR */
    uint32_t rtcp_remote_fraction_lost;            /* of our stream, in 256ths (the RR's) */
    int32_t rtcp_remote_cumulative_lost;
    uint64_t rtcp_remote_jitter_ns;
    /* line 7: what the receiving thread learned, for the TX thread and clients */
    uint64_t rtcp_peer_gen;                        /* seqlock: where RTCP came from */
    uint64_t rtcp_peer_word[3];                    /* as target_word */
    uint64_t rtcp_last_sr;                         /* LSR << 32 | its arrival (NTP middle bits) */
    uint64_t rtcp_clock_gen;                       /* seqlock over the remote's SR mapping: */
    uint64_t rtcp_clock[2];                        /* its NTP time; the RTP timestamp of
                                                      the same instant | its SSRC << 32 */
};
/* END CDEF */

/* rx_resume: where the jitter buffer's numbering stands (the next extended sequence
 * number it releases, + 1; 0: no source yet), with this bit when rx_last_ts holds the
 * last released frame's timestamp.  A worker that takes the channel over resumes
 * there: what the dead one held unreleased becomes an erasure, not a silent gap */
#define RTUDP_RTP_RX_RESUME_TS (1ull << 63)

/* The area's counters (csrc/kinds.h), in the order rtstat's rtp table shows them. */
#define RTUDP_RTP_AREA_COUNTERS(X, SUM)                                                           \
    X(tx_ssrc, "tx_ssrc", GAUGE, "id", SHOW, "SSRC the worker sends with", "", "")               \
    X(tx_next_seq, "tx_next_seq", GAUGE, "", 0, "sequence number of the next frame", "", "")     \
    X(tx_next_ts, "tx_next_ts", GAUGE, "", 0, "RTP timestamp of the next frame", "", "")         \
    X(tx_frames, "tx_frames", COUNTER, "frames", SHOW, "frames given a header and queued", "",   \
      "")                                                                                        \
    X(tx_underruns, "tx_underruns", COUNTER, "", SHOW,                                           \
      "paced: no frame queued when one was due (the clock skips it)", "", "")                    \
    X(tx_bad_records, "tx_bad_records", COUNTER, "records", SHOW,                                \
      "records shorter than the RTP header room, dropped", "", "")                               \
    X(rx_ssrc, "rx_ssrc", GAUGE, "id", SHOW, "SSRC of the source being received", "", "")        \
    X(rx_frames, "rx_frames", COUNTER, "frames", SHOW, "packets delivered in order", "", "")     \
    X(rx_erasures, "rx_erasures", COUNTER, "records", SHOW, "erasure records delivered", "", "") \
    X(rx_erased, "rx_erased", COUNTER, "packets", SHOW, "packets those erasures cover", "", "")  \
    X(rx_invalid, "rx_invalid", COUNTER, "packets", SHOW, "datagrams that are not RTP", "", "")  \
    X(rx_duplicates, "rx_duplicates", COUNTER, "packets", SHOW, "duplicate packets", "", "")     \
    X(rx_late, "rx_late", COUNTER, "packets", SHOW, "packets after their place was released",   \
      "", "")                                                                                    \
    X(rx_reordered, "rx_reordered", COUNTER, "packets", SHOW, "packets out of order", "", "")    \
    X(rx_lost, "rx_lost", GAUGE, "packets", SHOW,                                                \
      "cumulative packets lost of the current source (RFC 3550 A.3)", "", "")                    \
    X(rx_jitter, "rx_jitter", GAUGE, "ts", SHOW,                                                 \
      "interarrival jitter in RTP timestamp units (RFC 3550 A.8)", "", "")                       \
    X(rx_restarts, "rx_restarts", COUNTER, "", 0, "sequence restarts and SSRC changes (A.1)",   \
      "", "")                                                                                    \
    X(rx_expected, "rx_expected", GAUGE, "packets", 0,                                           \
      "packets expected of the current source (RFC 3550 A.3)", "", "")                           \
    X(rx_other_ssrc, "rx_other_ssrc", COUNTER, "packets", 0,                                     \
      "packets of another SSRC, not taken", "", "")                                              \
    X(rx_no_buffer, "rx_no_buffer", COUNTER, "packets", 0, "packets that could not be held",   \
      "", "")                                                                                    \
    X(rx_published_errors, "rx_published_errors", COUNTER, "records", 0,                         \
      "records the RX ring refused", "", "")                                                     \
    X(rx_bad_seq, "rx_bad_seq", COUNTER, "packets", 0,                                           \
      "packets far off the sequence that no next packet confirmed (A.1), not delivered", "", "")  \
    X(rx_probation_dropped, "rx_probation_dropped", COUNTER, "packets", 0,                       \
      "packets of a source on probation dropped when its probation restarted (A.1)", "", "")     \
    X(rx_held_aside, "rx_held_aside", GAUGE, "packets", 0,                                       \
      "a far jump held until the next packet says whether the sender restarted", "", "")     \
    X(rtcp_sr_sent, "rtcp_sr_sent", COUNTER, "packets", SHOW_BARE, "RTCP sender reports sent", "",   \
      "")                                                                                        \
    X(rtcp_rr_sent, "rtcp_rr_sent", COUNTER, "packets", BARE, "RTCP receiver reports sent", "",   \
      "")                                                                                        \
    X(rtcp_sr_received, "rtcp_sr_received", COUNTER, "packets", SHOW_BARE,                            \
      "RTCP sender reports received", "", "")                                                    \
    X(rtcp_rr_received, "rtcp_rr_received", COUNTER, "packets", BARE,                              \
      "RTCP receiver reports received", "", "")                                                  \
    X(rtcp_bad, "rtcp_bad", COUNTER, "packets", SHOW_BARE,                                            \
      "RTCP compound packets that failed validation (RFC 3550 A.2), ignored", "", "")          \
    X(rtcp_rtt_ns, "rtcp_rtt_ns", GAUGE, "ns", SHOW_BARE,                                             \
      "round-trip time from the last report block's LSR/DLSR (-1: none yet)", "", "")           \
    X(rtcp_remote_fraction_lost, "rtcp_remote_fraction_lost", GAUGE, "1/256", BARE,                 \
      "fraction of our packets the remote lost in its last report interval (0..1)", "", "")     \
    X(rtcp_remote_cumulative_lost, "rtcp_remote_cumulative_lost", GAUGE, "packets", BARE,           \
      "packets of ours the remote counts lost", "", "")                                          \
    X(rtcp_remote_jitter_ns, "rtcp_remote_jitter_ns", GAUGE, "ns", BARE,                            \
      "interarrival jitter of our stream the remote reports", "", "")

/* BEGIN CDEF */

/* What follows struct rtudp_rx_meta in an RX ring record of a JBUF channel. */
struct rtudp_rtp_frame {
    uint8_t kind;                                  /* RTUDP_RTP_FRAME_* */
    uint8_t pt;
    uint8_t marker;
    uint8_t pad0;
    uint16_t seq;
    uint16_t pad1;
    uint32_t ts;
    uint32_t ssrc;
    uint64_t lseq;                                 /* packet: extended seq; erasure: first lost */
    uint64_t lseq_end;                             /* erasure: last lost (inclusive) */
    uint64_t ts_span;                              /* erasure: timestamp ticks lost */
    uint32_t payload_off;                          /* packet: payload in the datagram after */
    uint32_t payload_len;
};

/* A client sets where the channel sends (family 0: nowhere).  0 or RTUDP_EINVAL
 * (area too small, unknown family); RTUDP_ETIMEDOUT if other writers kept it
 * busy for ~1 ms. */
int rtudp_rtp_set_target(void *area, uint64_t area_bytes, const struct rtudp_sockaddr *a);
/* The worker (or anyone) reads it: 1 read into *a with *gen, 0 no change since
 * *gen or a write in progress (try again later). */
int rtudp_rtp_get_target(const void *area, uint64_t area_bytes, uint64_t *gen,
                         struct rtudp_sockaddr *a);
/* Where the channel's RTCP last came from (rtcp_peer_*), the same way: 1 read, 0 not. */
int rtudp_rtp_get_rtcp_peer(const void *area, uint64_t area_bytes, uint64_t *gen,
                            struct rtudp_sockaddr *a);
/* The remote sender's clock: the NTP time and RTP timestamp of its last SR, and its
 * SSRC.  1 read, 0 no SR yet (or a write kept it busy: try again). */
int rtudp_rtp_remote_clock(const void *area, uint64_t area_bytes, uint64_t *ntp,
                           uint32_t *rtp_ts, uint32_t *ssrc);
/* END CDEF */

/* The thread that receives RTCP (one at a time: rtp.c) records where it came from
 * and the remote sender's clock (0, or -1 when other writers kept the lock busy). */
int rtudp_rtp_set_rtcp_peer(struct rtudp_rtp_area *r, const struct rtudp_sockaddr *a);
int rtudp_rtp_set_remote_clock(struct rtudp_rtp_area *r, uint64_t ntp, uint32_t rtp_ts,
                               uint32_t ssrc);

_Static_assert(sizeof(struct rtudp_rtp_area) == 8 * RTUDP_CACHE_LINE, "rtp area is 8 lines");
_Static_assert(sizeof(struct rtudp_rtp_frame) == 48, "rtp frame record is 48 bytes");

#endif /* RTUDP_RTP_AREA_H */
