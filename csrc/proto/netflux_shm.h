/*
 * netflux_shm.h - the netflux channel kind's area in the channel segment (between
 * the channel block and the TX ring), and the seqlock image functions Python calls.
 *
 * Wire format (one datagram every send_interval, each way):
 *     byte 0  the sender's 8-bit sequence number (+1 per packet, wraps)
 *     byte 1  feedback: the last sequence number the sender received from its partner
 *     2..     the payload (the process image), send_size bytes
 * A packet is new when (seq - last) & 0xFF is in 1..127; 0 is a duplicate, 128..255
 * is old (reordered); shorter than 2 + recv_size is short.  All three are rejected.
 *
 * Who writes what (one writer per word, except the send image's seqlock):
 *   config         the supervisor, once, before the worker sees the channel
 *   tx, sent_ns[], own_interval       the worker's TX thread
 *   rx, recv image, partner_interval, rtt   the worker's RX thread
 *   send image     any client, through rtudp_nf_image_write (a CAS makes writers take
 *                  turns); the TX thread only reads it
 * Images are seqlocks over 64-bit words read and written with relaxed atomics (so
 * a torn read is detected, never undefined): `seq` is odd while a write is under
 * way; a reader retries until it reads the same even seq before and after.
 */
#ifndef RTUDP_NETFLUX_SHM_H
#define RTUDP_NETFLUX_SHM_H

#include "ring.h"
#include "rtudp_shm.h"

/* BEGIN CDEF */
#define RTUDP_NF_MAGIC 0x4e46585831ULL              /* "NFXX1": config written */
#define RTUDP_NF_MAX_PAYLOAD 1400                   /* bytes of image, each way, at most */
#define RTUDP_NF_IMAGE_WORDS 175                    /* RTUDP_NF_MAX_PAYLOAD / 8 */
#define RTUDP_NF_KEEP_VALUES 1                      /* config.flags: keep the image on loss */

/* link states (rx.link) */
#define RTUDP_NF_WAITING 0                          /* no valid packet yet */
#define RTUDP_NF_UP 1
#define RTUDP_NF_LOST 2                             /* watchdog tripped */

/* rtudp_nf_image_write/read results besides RTUDP_OK (>= 0: see each) */
#define RTUDP_NF_BUSY -100                          /* still being written after retries */

struct rtudp_nf_config {
    uint64_t magic;                                /* RTUDP_NF_MAGIC once written */
    int64_t send_interval_ns;                      /* 0: receive only */
    int64_t watch_interval_ns;
    uint32_t send_size;                            /* payload bytes we send */
    uint32_t recv_size;                            /* payload bytes a partner's packet needs */
    uint32_t flags;                                /* RTUDP_NF_KEEP_VALUES */
    uint32_t pad0;
    int64_t start_ns;                              /* schedule origin (CLOCK_MONOTONIC); 0: at open */
    uint8_t pad[16];
};

/* The TX thread's state and counters (one cache line pair). */
struct rtudp_nf_tx {
    int64_t start_ns;                              /* packet n is due at start + n x interval */
    uint64_t cycle;                                /* cycles counted (sent, failed, yielded, missed) */
    uint64_t sent;                                 /* packets sent */
    uint64_t missed;                               /* cycles nobody sent: skipped, or due before the open */
    uint64_t send_errors;                          /* sends that failed (EAGAIN included) */
    uint64_t image_busy;                           /* send image mid-write: the previous one went */
    int64_t last_sent_ns;                          /* when the last packet left (just before the call) */
    int64_t own_jitter_ns;                         /* RFC 3550-style smoothed |interval - send_interval| */
    uint32_t seq;                                  /* sequence byte of the last packet sent */
    uint32_t feedback;                             /* feedback byte it carried */
    int64_t max_lateness_ns;                       /* worst departure - schedule so far */
    /* Who sends each cycle, when a standby worker guards the schedule (netflux.c): the
     * claim word (RTUDP_NF_CLAIM_* below).  The one word two writers share: both change
     * it only by compare-and-swap, so exactly one of them sends each cycle, the
     * sequence stays gapless between them, and a claim is held until its send has
     * returned, so that the wire order follows the sequence. */
    uint64_t claim;
    uint64_t standby_sent;                         /* written by the standby worker only */
    uint64_t yielded;                              /* cycles the standby sent (or failed to) */
    uint64_t standby_errors;                       /* standby sends that failed (standby only) */
    int64_t claim_ns;                              /* when the claim word was last taken (either worker) */
    uint64_t claim_breaks;                         /* holds broken: older than RTUDP_NF_HOLD_MAX_NS */
    uint64_t standby_held;                         /* standby turns the serving worker's hold took (standby only) */
};

/* The RX thread's state and counters. */
struct rtudp_nf_rx {
    uint32_t link;                                 /* RTUDP_NF_WAITING / UP / LOST */
    uint32_t partner_seq;                          /* sequence byte of the last valid packet */
    uint32_t partner_feedback;                     /* its feedback byte */
    uint32_t pad0;
    int64_t last_valid_ns;                         /* kernel receive stamp of the last valid packet */
    int64_t lost_at_ns;                            /* when the watchdog last tripped */
    int64_t recovered_at_ns;                       /* when the link last came back */
    int64_t last_rtt_ns;                           /* 0 until measured */
    int64_t partner_jitter_ns;                     /* RFC 3550-style smoothed interval variation */
    uint64_t events;                               /* images published + link transitions (wait on it) */
    uint64_t valid;                                /* packets accepted */
    uint64_t duplicate;                            /* rejected: same sequence as the last */
    uint64_t old;                                  /* rejected: older than the last (reordered) */
    uint64_t short_pkts;                           /* rejected: shorter than 2 + recv_size */
    uint64_t partner_lost;                         /* gaps in the partner's sequence */
    uint64_t feedback_lost;                        /* gaps in the feedback it echoes (ours lost) */
    uint64_t watchdog_trips;
    uint64_t recoveries;
    uint64_t resyncs;                              /* after a loss, a sequence we could not place */
    uint8_t pad[56];
};

/* A latest-value slot (seqlock).  Every field but seq is read under it. */
struct rtudp_nf_image {
    uint32_t seq;                                  /* odd: being written */
    uint32_t len;                                  /* bytes of data */
    int64_t stamp_ns;                              /* send: when written; recv: kernel receive stamp */
    uint64_t updates;                              /* images written so far */
    uint64_t tag;                                  /* recv: sequence byte | feedback byte << 8 */
    uint8_t pad[32];
    uint64_t data[175];                            /* RTUDP_NF_IMAGE_WORDS */
    uint64_t tail_pad;                             /* to a whole cache line */
};

/* What rtudp_nf_image_read copies besides the data. */
struct rtudp_nf_image_meta {
    uint32_t len;
    uint32_t pad;
    int64_t stamp_ns;
    uint64_t updates;
    uint64_t tag;
};

struct rtudp_nf_area {
    struct rtudp_nf_config config;
    struct rtudp_nf_tx tx;
    struct rtudp_nf_rx rx;
    struct rtudp_doorbell bell;                    /* rung by the RX thread when rx.events moves */
    int64_t sent_ns[256];                          /* TX: when each sequence byte last left */
    struct rtudp_nf_image send_image;
    struct rtudp_nf_image recv_image;
    struct rtudp_hist own_interval;                /* TX: between our departures */
    struct rtudp_hist partner_interval;            /* RX: between valid packets' receive stamps */
    struct rtudp_hist rtt;                         /* RX: send of s -> first packet with feedback s */
};
/* END CDEF */

/* The area's counters (csrc/kinds.h): rtstat's netflux table shows the SHOW ones, in
 * this order. */
#define RTUDP_NF_AREA_COUNTERS(X, SUM)                                                            \
    X(rx.link, "link", STATE, "", SHOW, "link state: watchdog LOST, UP after a valid packet", "", \
      "waiting up lost")                                                                         \
    X(tx.sent, "sent", COUNTER, "packets", SHOW, "packets sent", "", "")                         \
    X(rx.valid, "valid", COUNTER, "packets", SHOW, "packets accepted", "", "")                   \
    SUM("rejected", "packets", SHOW, "packets rejected: duplicate, old or short",                \
        "duplicate old short_pkts")                                                              \
    X(rx.partner_lost, "partner_lost", COUNTER, "packets", SHOW,                                 \
      "gaps in the partner's sequence", "", "")                                                  \
    X(rx.feedback_lost, "feedback_lost", COUNTER, "packets", SHOW,                               \
      "gaps in the feedback the partner echoes (our packets lost)", "", "")                      \
    X(rx.watchdog_trips, "watchdog_trips", COUNTER, "", SHOW,                                    \
      "times no valid packet came within watch_interval", "", "")                                \
    X(tx.missed, "missed", COUNTER, "cycles", SHOW,                                              \
      "cycles no worker sent: skipped a whole interval late, or due before the channel opened", \
      "", "")                                                                                    \
    X(tx.standby_sent, "standby_sent", COUNTER, "packets", SHOW,                                 \
      "cycles the standby worker sent: the serving worker was late by the standby's lag", "", "") \
    X(rx.last_rtt_ns, "last_rtt_ns", GAUGE, "ns", SHOW, "last round-trip time (0: none yet)",   \
      "", "")                                                                                    \
    X(rtt, "rtt", HISTOGRAM, "ns", SHOW,                                                         \
      "round-trip time: our send of s -> first packet with feedback s", "", "")                  \
    X(own_interval, "own_interval", HISTOGRAM, "ns", SHOW, "time between our departures", "",    \
      "")                                                                                        \
    X(partner_interval, "partner_interval", HISTOGRAM, "ns", SHOW,                               \
      "time between valid packets' receive stamps", "", "")                                      \
    X(tx.send_errors, "send_errors", COUNTER, "packets", 0, "sends that failed (EAGAIN too)",   \
      "", "")                                                                                    \
    X(tx.image_busy, "image_busy", COUNTER, "packets", 0,                                        \
      "send image mid-write: the previous one went", "", "")                                     \
    X(tx.max_lateness_ns, "max_lateness_ns", GAUGE, "ns", 0, "worst departure - schedule", "",  \
      "")                                                                                        \
    X(tx.own_jitter_ns, "own_jitter_ns", GAUGE, "ns", 0,                                         \
      "smoothed |interval - send_interval| of our departures (RFC 3550 style)", "", "")          \
    X(tx.seq, "seq", GAUGE, "", 0, "sequence byte of the last packet sent", "", "")              \
    X(tx.feedback, "feedback", GAUGE, "", 0, "feedback byte the last packet carried", "", "")    \
    X(tx.standby_errors, "standby_errors", COUNTER, "packets", 0,                               \
      "standby sends that failed (EAGAIN too)", "", "")                                          \
    X(tx.yielded, "yielded", COUNTER, "cycles", 0,                                               \
      "cycles the standby worker claimed: standby_sent + standby_errors of the cycles counted", \
      "", "")                                                                                    \
    X(tx.claim_breaks, "claim_breaks", COUNTER, "", 0,                                           \
      "cycle claims held past RTUDP_NF_HOLD_MAX_NS and broken", "", "")                          \
    X(tx.standby_held, "standby_held", COUNTER, "cycles", 0,                                     \
      "standby turns left unsent: the serving worker held an earlier cycle's claim", "", "")    \
    X(tx.cycle, "cycle", COUNTER, "cycles", 0,                                                   \
      "cycles counted so far: sent + send_errors + yielded + missed", "", "")                    \
    X(tx.start_ns, "start_ns", GAUGE, "ns", 0, "schedule origin (CLOCK_MONOTONIC)", "", "")      \
    X(tx.last_sent_ns, "last_sent_ns", GAUGE, "ns", 0,                                           \
      "when the last packet left (CLOCK_MONOTONIC)", "", "")                                     \
    X(rx.duplicate, "duplicate", COUNTER, "packets", 0, "rejected: same sequence as the last",  \
      "", "")                                                                                    \
    X(rx.old, "old", COUNTER, "packets", 0, "rejected: older than the last (reordered)", "", "") \
    X(rx.short_pkts, "short_pkts", COUNTER, "packets", 0, "rejected: shorter than 2 + recv_size", \
      "", "")                                                                                    \
    X(rx.recoveries, "recoveries", COUNTER, "", 0, "times the link came back after a trip", "", \
      "")                                                                                        \
    X(rx.resyncs, "resyncs", COUNTER, "", 0, "after a loss, a sequence that could not be placed", \
      "", "")                                                                                    \
    X(rx.partner_jitter_ns, "partner_jitter_ns", GAUGE, "ns", 0,                                 \
      "smoothed interval variation of the partner's packets (RFC 3550 style)", "", "")           \
    X(rx.partner_seq, "partner_seq", GAUGE, "", 0, "sequence byte of the last valid packet", "", \
      "")                                                                                        \
    X(rx.partner_feedback, "partner_feedback", GAUGE, "", 0, "its feedback byte", "", "")        \
    X(rx.last_valid_ns, "last_valid_ns", GAUGE, "ns", 0,                                         \
      "kernel receive stamp of the last valid packet", "", "")                                   \
    X(rx.lost_at_ns, "lost_at_ns", GAUGE, "ns", 0, "when the watchdog last tripped", "", "")     \
    X(rx.recovered_at_ns, "recovered_at_ns", GAUGE, "ns", 0, "when the link last came back", "", \
      "")                                                                                        \
    X(rx.events, "events", COUNTER, "", 0, "images published + link transitions", "", "")

/*
 * The claim word (tx.claim):
 *     bits 0-7   the sequence byte of the last claimed packet
 *     bit 8      HELD: its claimer has not yet returned from sending it
 *     bit 9      the holder's role (RTUDP_NF_CLAIM_STANDBY: the standby)
 *     bits 10..  the cycles claimed so far
 * A cycle is claimed (and its sequence byte taken) only while no claim is held, and
 * the claim is held until the claimer's send has returned (rtudp_nf_claim_done).  So
 * the packet of a later sequence byte is handed to the kernel only after the earlier
 * one: a worker stopped between its claim and its send keeps the other waiting
 * (cycles missed, counted) instead of letting it send ahead.
 */
#define RTUDP_NF_CLAIM_HELD (1ull << 8)
#define RTUDP_NF_CLAIM_STANDBY (1ull << 9)
#define RTUDP_NF_CLAIM_SHIFT 10
#define RTUDP_NF_ROLE_SERVING 0
#define RTUDP_NF_ROLE_STANDBY 1
/* A hold older than this is broken (claim_breaks): only a client scribbling HELD on
 * the word, or a holder that died and was never restarted, holds this long; a worker
 * restarted after dying mid-send clears its own hold at once (rtudp_nf_claim_recover). */
#define RTUDP_NF_HOLD_MAX_NS 1000000000LL
/* The serving worker may run a cycle this early at most: its cycle leads a group of
 * deadlines by up to tx_coalesce_us (at most 1 ms: worker/tunables.h), or runs when
 * it wakes, by up to its spin margin (200 us at most: worker/pacer.c), so the claim
 * word may be ahead of the clock by that much.  A claimer that took such a word for
 * scribbled would overwrite it with an earlier cycle and send that cycle again. */
#define RTUDP_NF_LEAD_MAX_NS 10000000LL

/* rtudp_nf_claim's results */
#define RTUDP_NF_TAKEN 0   /* the word is past cycle n: the other worker claimed n or a
                            * later cycle (*held: the word as found) */
#define RTUDP_NF_MINE 1    /* cycle n is the caller's: *held the word it holds, whose low
                            * byte is the packet's sequence byte; _done after the send */
#define RTUDP_NF_WAIT 2    /* the other worker is sending an earlier cycle: not now
                            * (*held: the word as found) */

/*
 * Claim cycle n as `role` at time now.  A claim word that says more than `upto` cycles
 * were claimed cannot be (cycles are claimed only once due, or RTUDP_NF_LEAD_MAX_NS
 * before at most): a client scribbled on it, and it is overwritten.  The word is read
 * with acquire ordering: what its last claimer wrote before letting go of its claim is
 * visible to the caller.
 */
int rtudp_nf_claim(struct rtudp_nf_tx *tx, uint64_t n, uint64_t upto, int role, int64_t now,
                   uint64_t *held);
/* the claimer's send has returned: the next cycle may be claimed */
void rtudp_nf_claim_done(struct rtudp_nf_tx *tx, uint64_t held);
/* a worker of `role` (re)opening the channel: a hold its dead predecessor left is
 * cleared (1), any other left alone (0) */
int rtudp_nf_claim_recover(struct rtudp_nf_tx *tx, int role);

/* BEGIN CDEF */

/* Seqlock image access, safe across processes.  write: copy len bytes in, stamped
 * stamp_ns (writers take turns; one stuck mid-write longer than takeover_ns is
 * assumed dead and overridden): RTUDP_OK, RTUDP_EINVAL (len too big), RTUDP_NF_BUSY.
 * read: a consistent copy of at most cap bytes, meta filled: the image length
 * (>= 0), RTUDP_NF_BUSY after `tries` torn reads. */
int rtudp_nf_image_write(struct rtudp_nf_image *img, const uint8_t *data, uint32_t len,
                         int64_t stamp_ns, uint64_t tag, int64_t takeover_ns);
int rtudp_nf_image_read(const struct rtudp_nf_image *img, uint8_t *out, uint32_t cap,
                        struct rtudp_nf_image_meta *meta, uint32_t tries);
/* a client: wait until rx.events differs from `seen` or the CLOCK_MONOTONIC deadline
 * (INT64_MAX: forever) passes; returns rx.events as it then is (GIL released) */
uint64_t rtudp_nf_wait_events(struct rtudp_nf_area *a, uint64_t seen, int64_t deadline_ns);
/* check a kind area: RTUDP_OK or RTUDP_ECORRUPT with a reason in why (the worker
 * and Python both call it before trusting the config) */
int rtudp_nf_check_area(const struct rtudp_nf_area *a, uint64_t area_bytes,
                        struct rtudp_check *why);
/* END CDEF */

/* the worker's RX thread, the recv image's only writer: publish len bytes (NULL:
 * zeros, the watchdog's clear), never blocked by a client that scribbles on seq */
void rtudp_nf_image_publish(struct rtudp_nf_image *img, const uint8_t *data, uint32_t len,
                            int64_t stamp_ns, uint64_t tag);

#endif /* RTUDP_NETFLUX_SHM_H */
