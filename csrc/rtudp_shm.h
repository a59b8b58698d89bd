/*
 * rtudp_shm.h - THE shared-memory layout of rtudp.
 *
 * Every offset, size and magic number that crosses a process boundary is defined
 * here and nowhere else.  The blocks between the CDEF markers are handed verbatim to
 * cffi (csrc/build_ffi.py), so Python reads sizes and offsets from the compiler
 * (ffi.sizeof / ffi.offsetof) instead of keeping its own constants.  Those blocks
 * therefore use only what cffi's parser accepts: integer #defines and plain
 * structs with explicit padding (no attributes, no _Atomic; ring.c accesses the
 * shared words through <stdatomic.h> casts, the way liburing does).  What cffi's
 * parser cannot read sits between the blocks: the kind codes (from proto/kinds.def)
 * and the description of the channel block's counters (an X-macro, csrc/kinds.h).
 *
 * Conventions
 *  - All positions are free-running 64-bit byte counters; index = pos & (cap - 1).
 *  - Hot words written by different parties live on different 64-byte cache lines.
 *  - Counters are 64-bit and written by their owner (multi-writer counters use an
 *    atomic add and say so).
 *  - A reader validates magic, version and sizes before trusting anything, and
 *    bounds-checks every offset/length it reads afterwards.
 */
#ifndef RTUDP_SHM_H
#define RTUDP_SHM_H

#include <stddef.h>
#include <stdint.h>

/* BEGIN CDEF */
#define RTUDP_SEG_MAGIC 0x4745535044555452        /* "RTUDPSEG" little-endian */
#define RTUDP_LAYOUT_VERSION 33                    /* 2: control rings; 3: tx_late, reader_pid[]; 4: kind area; 5: TX journal; 6: spin_other_ns, demotions; 7: commands_posted, RTUDP_TX_LEN_UNBLOCKED; 8: socket_fd, direct_tx; 9: worker line 3 (sleep cost, bridges, capped sleeps, RX turns); 10: impairment (channel lines 7-10); 11: async waiters (channel block), async_posted; 12: taps (channel lines 11-12, tap rings); 13: impair counters' hold_dropped; 14: udt drops_ignored counter; 15: worker cpu_contended; 16: worker host pauses; 17: worker line 4 (warm-ups); 18: worker idle_source; 19: worker rx_coalesce_ns, rx_coalesced; 20: worker idle_poller_pid, idle_poller_cpu_ns; 21: pool horizon_ns; 22: rtp area lines 6-7 (RTCP); 23: netflux standby_held; 24: worker tunables; 25: channel direct_rx line; 26: ready sets, table_slot, 16384 channels; 27: worker tx_coalesce_ns, tx_coalesced, 5 tunables; 28: pool channel_moves; 29: channel line 13 (lateness by cause), doorbell rung_ns; 30: 6 tunables (tx_lateness_us); 31: channel handoff_to, handoff; 32: channel tx_counted_to; 33: worker line 6 (tx_sent, tx_late_sent) */
#define RTUDP_CACHE_LINE 64
#define RTUDP_SEG_MAX_RINGS 4
#define RTUDP_NAME_MAX 48                          /* [A-Za-z0-9_.-]{1,48} */

/* segment kinds (rtudp_segment_header.kind) */
#define RTUDP_SEG_RING 1                           /* a standalone ring */
#define RTUDP_SEG_CONTROL 2                        /* a pool's control segment */
#define RTUDP_SEG_CHANNEL 3                        /* a channel: TX ring + RX ring */

/* ring kinds (ring magic word is RTUDP_RING_MAGIC, kind says which layout) */
#define RTUDP_RING_MAGIC 0x474e4952                /* "RING" */
#define RTUDP_RING_MPSC 1                          /* many producers -> one consumer */
#define RTUDP_RING_BROADCAST 2                     /* one writer -> many readers */

#define RTUDP_RING_MIN_CAPACITY 1024
#define RTUDP_RING_MAX_CAPACITY 1099511627776      /* 1 TiB: 2^40 */
#define RTUDP_MAX_PAYLOAD 65507                    /* largest UDP/IPv4 payload */
#define RTUDP_RECORD_ALIGN 8

/* record types */
#define RTUDP_REC_PAD 1                            /* filler up to the end, or an unblocked claim */
#define RTUDP_REC_DATA 2
#define RTUDP_REC_SENT 3                           /* MPSC data already sent, space not yet freed */
/*
 * MPSC: the length of a claim the consumer turned into padding because its producer
 * stopped between claim and commit (rtudp_mpsc_unblock) is span | this bit.  The
 * length word alone says so: the consumer never writes that record's type, and
 * never reads it, since a producer that was only stalled may still write its header
 * there before its commit (a compare-and-swap on the length) fails.
 */
#define RTUDP_TX_LEN_UNBLOCKED 0x40000000

/* Every segment starts with this header (128 bytes). */
struct rtudp_segment_header {
    uint64_t magic;                                /* RTUDP_SEG_MAGIC */
    uint32_t layout_version;                       /* RTUDP_LAYOUT_VERSION */
    uint32_t kind;                                 /* RTUDP_SEG_* */
    uint64_t total_size;                           /* bytes; equals the shm object's size */
    uint64_t header_size;                          /* sizeof(struct rtudp_segment_header) */
    uint32_t creator_pid;
    uint32_t ring_count;                           /* used entries of ring_offset[] */
    int64_t created_ns;                            /* CLOCK_MONOTONIC */
    uint64_t ring_offset[4];                       /* RTUDP_SEG_MAX_RINGS; 64-aligned, from segment start */
    uint8_t reserved[48];
};

/*
 * Record in an MPSC ring (16-byte header, payload follows, next record at the
 * 8-aligned end).  length counts header + payload.  0 = not written yet;
 * negative = claimed and being written (the claimed length, negated); positive =
 * committed.  A padding record needs only the first 8 bytes (it may be 8 long).
 */
struct rtudp_tx_record {
    int32_t length;
    uint16_t type;                                 /* RTUDP_REC_* */
    uint16_t flags;                                /* user flags, carried through */
    int64_t send_at_ns;                            /* CLOCK_MONOTONIC deadline; 0 = now */
};

/* Record in a broadcast ring (24-byte header). seq counts data records from 0. */
struct rtudp_bcast_record {
    int32_t length;
    uint16_t type;
    uint16_t flags;
    uint64_t seq;
    int64_t time_ns;                               /* writer's stamp (e.g. RX time) */
};

/* Futex doorbell: waiters bump `waiters`, sleep on `seq`; wakers bump `seq` only
 * when someone sleeps, and not when what they bring is due no earlier than the
 * sleeper's own next deadline (it will look anyway when it wakes for that). */
struct rtudp_doorbell {
    uint32_t seq;
    uint32_t waiters;
    int64_t sleeper_deadline_ns;                   /* 0: none published (always wake) */
    int64_t rung_ns;                               /* a worker's bell: the clock of the first
                                                      producer that rang it for a record
                                                      since the worker parked (0: none) */
    uint8_t pad[40];
};

/*
 * MPSC ring (Agrona ManyToOneRingBuffer style).  Followed immediately by
 * `capacity` bytes of records.
 */
struct rtudp_mpsc_ring {
    /* line 0: geometry, written once at creation */
    uint32_t magic;                                /* RTUDP_RING_MAGIC */
    uint32_t kind;                                 /* RTUDP_RING_MPSC */
    uint64_t capacity;                             /* data bytes, power of two */
    uint64_t max_payload;                          /* min(RTUDP_MAX_PAYLOAD, capacity/4 - header) */
    uint8_t pad0[40];
    /* line 1: producers claim here */
    uint64_t tail;                                 /* next position to claim */
    uint8_t pad1[56];
    /* line 2: producers' cached copy of head (saves a read of the consumer's line) */
    uint64_t head_cache;
    uint8_t pad2[56];
    /* line 3: the consumer */
    uint64_t head;                                 /* everything before head is free */
    uint64_t stuck_pos;                            /* position seen blocked by an open claim */
    int64_t stuck_since_ns;                        /* when it was first seen blocked; 0 = not */
    uint8_t pad3[40];
    /* line 4: data doorbell (consumer sleeps here) */
    struct rtudp_doorbell data_bell;
    /* line 5: space doorbell (producers sleep here when full) */
    struct rtudp_doorbell space_bell;
    /* line 6: consumer-owned counters */
    uint64_t records_consumed;
    uint64_t bytes_consumed;                       /* payload bytes */
    uint64_t unblocked_claims;                     /* open claims turned into padding */
    uint64_t corrupt_records;                      /* headers that failed validation */
    uint8_t pad6[32];
    /* line 7: producer counters (several writers: atomic add) */
    uint64_t full_events;                          /* try_put that found the ring full */
    uint8_t pad7[56];
};
/* END CDEF */

/* The MPSC (TX) ring's counters, as MpscRing.stats(), a channel's tx_ring in rtstat's
 * JSON and `rtudp metrics` (rtudp_channel_tx_<name>) show them; the geometry and the
 * positions are not counters (csrc/kinds.h says what the columns are). */
#define RTUDP_MPSC_RING_COUNTERS(X, SUM)                                                          \
    X(records_consumed, "records_consumed", COUNTER, "records", 0, "records the consumer took",  \
      "", "")                                                                                    \
    X(bytes_consumed, "bytes_consumed", COUNTER, "bytes", 0, "payload bytes the consumer took",  \
      "", "")                                                                                    \
    X(unblocked_claims, "unblocked_claims", COUNTER, "records", 0,                               \
      "claims of dead producers turned into padding", "", "")                                    \
    X(corrupt_records, "corrupt_records", COUNTER, "records", 0,                                 \
      "record headers that failed validation", "", "")                                           \
    X(full_events, "full_events", COUNTER, "", 0,                                                \
      "puts that found the ring full (back-pressure)", "", "")

/* BEGIN CDEF */

/*
 * Broadcast ring (Aeron BroadcastTransmitter style): one writer never waits; each
 * reader keeps its own cursor.  Followed immediately by `capacity` bytes.
 */
struct rtudp_bcast_ring {
    /* line 0: geometry */
    uint32_t magic;                                /* RTUDP_RING_MAGIC */
    uint32_t kind;                                 /* RTUDP_RING_BROADCAST */
    uint64_t capacity;
    uint64_t max_payload;
    uint8_t pad0[40];
    /* line 1: the writer's positions */
    uint64_t tail_intent;                          /* end of the record being written */
    uint64_t tail;                                 /* end of the last complete record */
    uint64_t head;                                 /* start of the oldest intact record */
    uint64_t next_seq;                             /* seq the next data record gets */
    uint8_t pad1[32];
    /* line 2: doorbell (readers sleep here) */
    struct rtudp_doorbell bell;
    /* line 3: writer counters */
    uint64_t records_written;
    uint64_t bytes_written;
    uint64_t corrupt_records;                      /* own old headers found damaged */
    uint8_t pad3[40];
    /* line 4: reader counters (several writers: atomic add) */
    uint64_t lapped_events;
    uint64_t records_lost;                         /* summed over readers */
    uint8_t pad4[48];
};
/* END CDEF */

/* The broadcast (RX) ring's counters: BroadcastRing.stats(), a channel's rx_ring in
 * rtstat's JSON, `rtudp metrics` (rtudp_channel_rx_<name>). */
#define RTUDP_BCAST_RING_COUNTERS(X, SUM)                                                         \
    X(records_written, "records_written", COUNTER, "records", 0, "records the writer published", \
      "", "")                                                                                    \
    X(bytes_written, "bytes_written", COUNTER, "bytes", 0, "payload bytes the writer published", \
      "", "")                                                                                    \
    X(corrupt_records, "corrupt_records", COUNTER, "records", 0,                                 \
      "the writer's own old headers found damaged", "", "")                                      \
    X(lapped_events, "lapped_events", COUNTER, "", 0,                                            \
      "times a reader fell a whole ring behind", "", "")                                         \
    X(records_lost, "records_lost", COUNTER, "records", 0,                                       \
      "records readers lost by falling a ring behind (summed over readers)", "", "")

/* BEGIN CDEF */
/*
 * Latency histogram (HdrHistogram-style log-linear buckets, ~0.8 % precision,
 * 1 ns .. 2^36 ns ~ 68.7 s).  Values 0..255 ns have a bucket each; above that each
 * power of two [2^k, 2^(k+1)) is cut into 128 equal buckets.  Written by one
 * owner (a worker), read by anyone without locks; csrc/hist.h has the arithmetic.
 */
#define RTUDP_HIST_SUB_BITS 8                      /* 2^8 linear buckets at the bottom */
#define RTUDP_HIST_MAX_BIT 36                      /* values clamp to 2^36 - 1 ns */
#define RTUDP_HIST_BUCKETS 3840                    /* 2^8 + (36 - 8) * 2^7 */

struct rtudp_hist {
    uint64_t count;                                /* values recorded */
    uint64_t sum_ns;                               /* their sum (after clamping) */
    uint64_t min_ns;                               /* meaningful when count > 0 */
    uint64_t max_ns;
    uint64_t clamped;                              /* values above the range */
    uint64_t negative;                             /* values below 0, recorded as 0 */
    uint64_t reserved[2];
    uint64_t buckets[3840];                        /* RTUDP_HIST_BUCKETS */
};
/* ---------------------------------------------------------------- pools */

#define RTUDP_MAX_WORKERS 64
#define RTUDP_MAX_CHANNELS 16384

/* worker states (rtudp_worker_slot.state) */
#define RTUDP_WORKER_EMPTY 0
#define RTUDP_WORKER_STARTING 1
#define RTUDP_WORKER_RUNNING 2
#define RTUDP_WORKER_DEAD 3

/* channel states (rtudp_channel_slot.state) */
#define RTUDP_CHANNEL_FREE 0
#define RTUDP_CHANNEL_OPEN 1
#define RTUDP_CHANNEL_CLOSING 2

/* channel kinds: RTUDP_KIND_<NAME>, one a line of proto/kinds.def (below, outside the
 * CDEF blocks: cffi gets them from csrc/build_ffi.py, which reads the same lines) */
/* END CDEF */
enum rtudp_kind_code {
#define RTUDP_KIND(NAME, name, code, ...) RTUDP_KIND_##NAME = code,
#include "proto/kinds.def"
#undef RTUDP_KIND
};
/* BEGIN CDEF */

/* channel directions */
#define RTUDP_DIR_SEND 0
#define RTUDP_DIR_RECV 1
#define RTUDP_DIR_BOTH 2

#define RTUDP_READER_SLOTS 16                      /* reader_pid[] of a channel block */

/* channel flags */
#define RTUDP_CHAN_HW_TIMESTAMPS 1
#define RTUDP_CHAN_MULTICAST 2

/* The deadline horizon: how far ahead of now (CLOCK_MONOTONIC) a send may be due.  A
 * deadline beyond it is refused at the call: it is almost always a value from another
 * clock (time.time_ns() is decades ahead), which would otherwise hold its ring space for
 * ever.  The default is the fq qdisc's horizon; a pool may set 1 ns .. the maximum. */
#define RTUDP_HORIZON_DEFAULT_NS 10000000000       /* 10 s */
#define RTUDP_HORIZON_MAX_NS 86400000000000        /* one day */

/* The pool block follows the segment header of /rtudp.<pool> (kind RTUDP_SEG_CONTROL). */
struct rtudp_pool_block {
    /* line 0: identity and settings, written once by the supervisor */
    uint32_t supervisor_pid;
    uint32_t n_workers;                            /* used entries of workers[] */
    int64_t started_ns;                            /* CLOCK_MONOTONIC */
    uint32_t max_channels;                         /* RTUDP_MAX_CHANNELS */
    uint32_t flags;
    int64_t horizon_ns;                            /* sends due later than now + this are
                                                      refused (RTUDP_HORIZON_*) */
    uint8_t pad0[32];
    /* line 1: the supervisor's liveness */
    int64_t heartbeat_ns;                          /* CLOCK_MONOTONIC, every ~100 ms */
    uint64_t channel_generation;                   /* bumped on every channel table change */
    uint64_t channel_moves;                        /* channels moved between workers */
    uint8_t pad1[40];
};

/* One worker (384 bytes). */
struct rtudp_worker_slot {
    /* line 0: written by the supervisor */
    uint32_t pid;
    int32_t cpu;
    uint32_t policy;                               /* SCHED_* the kernel reports */
    uint32_t priority;
    uint32_t state;                                /* RTUDP_WORKER_* */
    uint32_t restarts;
    int64_t started_ns;
    uint32_t commands_posted;                      /* bumped after each command sent: the worker
                                                      looks here, not at its socket, when woken */
    uint8_t pad0[28];
    /* line 1: the worker's TX doorbell: it parks here; clients ring it after queueing */
    struct rtudp_doorbell bell;
    /* line 2: written by the worker */
    int64_t heartbeat_ns;                          /* CLOCK_MONOTONIC */
    uint64_t loops;                                /* main loop iterations */
    uint64_t sleeps;                               /* times parked on the bell */
    uint64_t spin_ns;                              /* total time spun before deadlines */
    int64_t spin_margin_ns;                        /* current adaptive spin margin */
    uint32_t channels;                             /* channels it serves */
    uint32_t idle_poll;                            /* 1: holding the CPU idle-latency request */
    uint64_t spin_other_ns;                        /* of spin_ns, spun at SCHED_OTHER past the RT cap */
    uint32_t demotions;                            /* drops to SCHED_OTHER to spin past the cap */
    uint32_t demote_preempted;                     /* ... that another task cut short */
    /* line 3: written by the worker (txloop.c says what each is for) */
    int64_t sleep_cpu_ns;                          /* CPU time a timed sleep costs (estimate) */
    uint64_t bridge_ns;                            /* of spin_ns, gaps spun because a sleep would
                                                      cost as much CPU */
    uint64_t capped_sleeps;                        /* short sleeps past the RT cap */
    uint64_t rx_turns;                             /* RX turns the TX thread did for the RX thread */
    uint32_t async_posted;                         /* bumped by a client after it registers an
                                                      async waiter on one of this worker's
                                                      channels (async_wait.h); then it rings bell */
    uint32_t cpu_contended;                        /* windows in which others on the worker's
                                                      CPU got too little of it (cpushare.h) */
    uint64_t host_pauses;                          /* stretches of >= 250 us the TX thread held
                                                      the CPU but did not run: the host stopped
                                                      the vCPU (hostpause.h) */
    uint64_t host_pause_ns;                        /* their total length */
    int64_t host_pause_max_ns;                     /* the longest */
    /* line 4: written by the worker */
    uint64_t warmups;                              /* datagrams sent through the kernel's send path
                                                      before a deadline after a long park, to warm
                                                      it (worker/warmup.h) */
    int64_t warmup_lead_ns;                        /* how much earlier such a park ends */
    uint32_t idle_source;                          /* where the worker reads its CPU's idle time:
                                                      0 nowhere (it never judges itself alone),
                                                      1 cpuidle, 2 the scheduler's switches
                                                      (worker/cpushare.h) */
    uint32_t rx_coalesce_ns;                       /* how long datagrams coming fast may gather
                                                      before the RX thread reads them (fixed) */
    uint64_t rx_coalesced;                         /* the RX thread's waits for them to gather */
    uint64_t idle_poller_cpu_ns;                   /* CPU time its idle pollers had: the CPU's
                                                      idle time, not work (per heartbeat) */
    uint32_t idle_poller_pid;                      /* its idle poller process, keeping the CPU
                                                      from halting (worker/idlepoller.h); 0 none */
    uint32_t tx_coalesce_ns;                       /* how early a deadline close behind another
                                                      may leave with it (fixed; worker/pacer.h) */
    uint8_t pad4[8];
    uint64_t tx_coalesced;                         /* timed sends sent early with another
                                                      channel's (worker/txloop.c) */
    /* line 5: the settings the worker runs with, written by the worker before it is
       RUNNING and fixed after (worker/tunables.h describes them) */
    int64_t tunables[6];                           /* RTUDP_TUNE_COUNT: each tunable's value in
                                                      the worker's unit, in the table's order */
    uint32_t idle_strategy;                        /* its pool's idle strategy: an index in the
                                                      idle strategy table */
    uint8_t pad5[12];
    /* line 6: written by the worker: its departures, summed over the channels it
       serves now and served before (the pool's packing judges a worker by them without
       reading every channel; worker/txstamp.c) */
    uint64_t tx_sent;                              /* datagrams whose departure it recorded */
    uint64_t tx_late_sent;                         /* of those, late by its own doing (as a
                                                      channel's late.sent) */
    uint8_t pad6[48];
};
/* END CDEF */

/* A worker's counters, as Pool.workers(), rtstat's JSON and `rtudp metrics`
 * (rtudp_worker_<name>) show them.  Who the worker is (pid, cpu, policy, priority,
 * state) and when it started and last beat are its identity, not counters. */
#define RTUDP_WORKER_COUNTERS(X, SUM)                                                             \
    X(restarts, "restarts", COUNTER, "", 0, "worker restarts", "", "")                           \
    X(loops, "loops", COUNTER, "", 0, "worker main loop iterations", "", "")                     \
    X(sleeps, "sleeps", COUNTER, "", 0, "times the worker parked", "", "")                       \
    X(spin_ns, "spin_ns", COUNTER, "ns", 0, "time spun before deadlines", "", "")                \
    X(spin_other_ns, "spin_other_ns", COUNTER, "ns", 0,                                          \
      "of spin_ns, spun at SCHED_OTHER past the RT cap", "", "")                                 \
    X(demotions, "demotions", COUNTER, "", 0, "drops to SCHED_OTHER to spin past the RT cap",    \
      "", "")                                                                                    \
    X(demote_preempted, "demote_preempted", COUNTER, "", 0,                                      \
      "demotions another task cut short", "", "")                                                \
    X(spin_margin_ns, "spin_margin_ns", GAUGE, "ns", 0, "current adaptive spin margin", "", "")  \
    X(channels, "channels", GAUGE, "", 0, "channels the worker serves", "", "")                  \
    X(idle_poll, "idle_poll", GAUGE, "", 0, "1: holding the CPU idle-latency request", "", "")   \
    X(sleep_cpu_ns, "sleep_cpu_ns", GAUGE, "ns", 0, "CPU time a timed sleep costs (estimate)",  \
      "", "")                                                                                    \
    X(bridge_ns, "bridge_ns", COUNTER, "ns", 0,                                                  \
      "of spin_ns, gaps spun because a sleep would cost as much CPU", "", "")                    \
    X(capped_sleeps, "capped_sleeps", COUNTER, "", 0, "short sleeps past the RT cap", "", "")    \
    X(rx_turns, "rx_turns", COUNTER, "", 0, "RX turns the TX thread did for the RX thread", "",  \
      "")                                                                                        \
    X(cpu_contended, "cpu_contended", COUNTER, "", 0,                                            \
      "windows in which others on the worker's CPU got too little of it", "", "")               \
    X(host_pauses, "host_pauses", COUNTER, "", 0,                                                \
      "stretches of 250 us or more the TX thread held the CPU but did not run (the host's)", \
      "", "")                                                                                    \
    X(host_pause_ns, "host_pause_ns", COUNTER, "ns", 0, "of them, the total length", "", "")    \
    X(host_pause_max_ns, "host_pause_max_ns", GAUGE, "ns", 0, "of them, the longest", "", "") \
    X(warmups, "warmups", COUNTER, "", 0,                                                        \
      "datagrams sent through the kernel's send path to warm it before a deadline after a long " \
      "park", "", "")                                                                            \
    X(warmup_lead_ns, "warmup_lead_ns", GAUGE, "ns", 0, "how much earlier such a park ends", "", \
      "")                                                                                        \
    X(idle_source, "idle_source", GAUGE, "", 0,                                                  \
      "where the CPU's idle time is read: 0 nowhere, 1 cpuidle, 2 the scheduler's switches", "", \
      "")                                                                                        \
    X(rx_coalesce_ns, "rx_coalesce_ns", GAUGE, "ns", 0,                                          \
      "how long datagrams coming fast may gather before the RX thread reads them", "", "")       \
    X(rx_coalesced, "rx_coalesced", COUNTER, "", 0,                                              \
      "the RX thread's waits for datagrams coming fast to gather", "", "")                      \
    X(idle_poller_pid, "idle_poller_pid", GAUGE, "", 0,                                          \
      "its idle poller process, keeping the CPU from halting (0: none)", "", "")               \
    X(idle_poller_cpu_ns, "idle_poller_cpu_ns", COUNTER, "ns", 0,                                \
      "CPU time its idle pollers had: the CPU's idle time, not work", "", "")                   \
    X(tx_coalesce_ns, "tx_coalesce_ns", GAUGE, "ns", 0,                                          \
      "how early a deadline close behind another may leave with it", "", "")                     \
    X(tx_coalesced, "tx_coalesced", COUNTER, "", 0,                                              \
      "timed sends sent early, with another channel's just before them", "", "")                  \
    X(tx_sent, "tx_sent", COUNTER, "", 0, "datagrams it sent, their departures recorded", "", "")  \
    X(tx_late_sent, "tx_late_sent", COUNTER, "", 0,                                              \
      "of those, sent over 100 us late by its own doing", "", "")

/* BEGIN CDEF */

/* One channel in the pool's table (128 bytes). */
struct rtudp_channel_slot {
    char name[56];                                 /* NUL-terminated, RTUDP_NAME_MAX chars at most */
    uint32_t state;                                /* RTUDP_CHANNEL_* */
    uint32_t kind;                                 /* RTUDP_KIND_* */
    int32_t worker;                                /* index in workers[] */
    uint32_t generation;                           /* bumped each time the slot is reused */
    uint8_t pad[56];
};

/*
 * A worker's ready set: the channels whose TX ring a producer committed into since the
 * worker last looked, one bit per channel-table slot (the channel block's table_slot).
 * bits[w] holds slots 64w .. 64w+63; summary bit w says bits[w] may be non-zero, so the
 * worker finds its work in the words marked, never by walking every channel.  A
 * producer marks bits[w] first, then the summary (readyset.h); the worker clears the
 * summary first, then the words it names: a mark is never lost, at worst seen twice.
 */
#define RTUDP_READY_WORDS 256                      /* RTUDP_MAX_CHANNELS / 64 */
#define RTUDP_READY_SUMMARY 8                      /* summary words: one line, 32768 slots */
struct rtudp_ready_set {
    uint64_t summary[8];                           /* RTUDP_READY_SUMMARY */
    uint64_t bits[256];                            /* RTUDP_READY_WORDS */
};

/* Control segment: header, pool block, worker table, channel table, ready sets. */
/*
 * /rtudp.<pool> (kind RTUDP_SEG_CONTROL) is this struct, then two rings:
 * ring_offset[0] the command ring (MPSC, RTUDP_CONTROL_RING_CAPACITY bytes: clients
 * ask the supervisor to open or close channels), ring_offset[1] the reply ring
 * (broadcast, same capacity: the supervisor answers, each client picks its own
 * request id).  Requests and replies are small JSON documents; only Python reads them.
 */
#define RTUDP_CONTROL_RING_CAPACITY 65536
struct rtudp_control {
    struct rtudp_segment_header header;
    struct rtudp_pool_block pool;
    struct rtudp_worker_slot workers[64];          /* RTUDP_MAX_WORKERS */
    struct rtudp_channel_slot channels[16384];      /* RTUDP_MAX_CHANNELS */
    struct rtudp_ready_set ready[64];              /* RTUDP_MAX_WORKERS: each worker's */
};

/* ---------------------------------------------------------------- channels */

/* An address as both IPv4 and IPv6 (addr holds 4 or 16 bytes; port in host order). */
struct rtudp_sockaddr {
    uint16_t family;                               /* AF_INET / AF_INET6, 0 = none */
    uint16_t port;
    uint32_t scope_id;
    uint8_t addr[16];
};

/*
 * The TX records the worker is handing to the kernel in one send call, so that the
 * worker started after it was killed knows which of them left (worker/txjournal.h):
 * record pos[i] goes with TX-stamp key key0 + i (key0 for all: one_key).  Written only by the worker serving
 * the channel; count 0 = no send in progress.  The two counters say what successors
 * found: records proven gone by their TX stamp (freed, not sent again), and records
 * sent again because no stamp proved them gone.
 */
#define RTUDP_TX_JOURNAL_MAX 256
struct rtudp_tx_journal {
    uint32_t count;                                /* records in the send; 0 = none */
    uint32_t key0;                                 /* TX-stamp key of pos[0] */
    uint64_t restart_left;                         /* in flight at a kill, stamped: not resent */
    uint64_t restart_resent;                       /* in flight at a kill, no stamp: resent */
    uint32_t one_key;                              /* 1: every entry has key0 (one GSO send) */
    uint8_t pad[36];
    uint64_t pos[256];                             /* RTUDP_TX_JOURNAL_MAX ring positions */
};

/* Whether clients may send on the channel socket themselves (direct_tx.state). */
#define RTUDP_DIRECT_NOT_NOW 0                     /* no worker has the channel (paused) */
#define RTUDP_DIRECT_ON 1                          /* its worker's TX stamps carry their own keys
                                                      (SCM_TS_OPT_ID): an unstamped send by a
                                                      client cannot shift them */
#define RTUDP_DIRECT_REVOKED 2                     /* the channel is closed: drop the socket */
#define RTUDP_DIRECT_NEVER 3                       /* its worker's keys are the kernel's counter */

/* Counters of the sends clients made straight on the channel socket (line 6). */
struct rtudp_direct_tx {
    uint32_t state;                                /* RTUDP_DIRECT_*: the worker sets ON or NEVER
                                                      when it takes the channel on, the
                                                      supervisor NOT_NOW when it pauses it and
                                                      REVOKED when it closes it */
    uint32_t impaired;                             /* 1 while the channel's sends are impaired:
                                                      clients leave every send to the worker
                                                      (written with the impairment) */
    uint64_t packets;                              /* sent directly (also in tx_packets) */
    uint64_t bytes;
    uint64_t fallbacks;                            /* direct send refused by the kernel: queued */
    uint8_t pad[32];
};

/*
 * Who reads the channel socket (direct_rx.state), the token of direct receive
 * (docs/direct-receive.md, csrc/rx_publish.h): a reader waiting on an empty RX ring may
 * read the socket itself, on its own duplicate, and publish what it reads into the RX
 * ring exactly as the worker would, so every reader, counter and histogram sees every
 * datagram.  The token makes the socket's reader, and so the RX ring's one writer, a
 * single party at a time; each hand-over is a compare-and-swap (acquire / release).
 */
#define RTUDP_DRX_FREE 0                           /* nobody reads: the worker may */
#define RTUDP_DRX_WORKER 1                         /* the worker reads and publishes */
#define RTUDP_DRX_WAIT 2                           /* a reader waits for the socket (poll); the
                                                      worker may take it once lease_until_ns
                                                      passed (a stopped reader) */
#define RTUDP_DRX_READING 3                        /* a reader reads and publishes; only its
                                                      exit (holder_pid gone) frees it */
#define RTUDP_DRX_LEASE 4                          /* a reader between calls keeps it until
                                                      lease_until_ns, so the worker stays asleep
                                                      across a request and its reply */

/* Direct receive: the token and what readers did with it (line after the channel's
 * async waiters).  `allowed` and `impaired` are written by the worker and by
 * Channel.set_impairment; the token by its holders; the counters by the token's holder
 * (one at a time: bumped with a load and a store). */
struct rtudp_direct_rx {
    uint32_t state;                                /* RTUDP_DRX_* */
    uint32_t holder_pid;                           /* the reader holding WAIT / READING / LEASE */
    int64_t lease_until_ns;                        /* CLOCK_MONOTONIC: the holder's lease */
    uint64_t next_seq;                             /* rx_seq of the next datagram published */
    uint32_t allowed;                              /* 1: the worker serves the channel and its
                                                      kind publishes every datagram as it came
                                                      (udp): readers may take */
    uint32_t impaired;                             /* 1 while received datagrams are impaired
                                                      (the worker's to apply) */
    uint64_t packets;                              /* datagrams readers read themselves (in
                                                      rx_packets) */
    uint64_t takes;                                /* times a reader took the socket from FREE */
    uint64_t reclaims;                             /* times the worker took it from a reader
                                                      whose lease had passed */
    uint8_t pad[8];
};

/*
 * Impairment of a channel's datagrams, done by its worker (docs/impairment.md): loss,
 * duplication, corruption, delay, jitter, reordering and a rate limit, drawn from a
 * splitmix64 stream seeded with `seed`.  The configuration is a seqlock: a writer (any
 * client: Channel.set_impairment, or the supervisor at open) takes `seq` from even to
 * odd with a compare-and-swap, writes cfg with relaxed atomic stores, and makes `seq`
 * even again (release); the worker's TX and RX threads copy cfg and keep the copy only
 * if `seq` was even and unchanged around it (csrc/impair.h).  Every field is a uint64_t
 * so the copy is word by word; the worker clamps what it reads, so no value can hurt it.
 */
#define RTUDP_IMPAIR_TX 1                          /* cfg.where: impair what is sent */
#define RTUDP_IMPAIR_RX 2                          /* cfg.where: impair what is received */
#define RTUDP_IMPAIR_ONE 4294967296                /* probability 1.0 (2^32) */
#define RTUDP_IMPAIR_MAX_DELAY_NS 10000000000      /* 10 s: delay + jitter + reorder_ns at most */
#define RTUDP_IMPAIR_MAX_BURST 67108864            /* 64 MiB: burst_bytes at most */

struct rtudp_impair_cfg {
    uint64_t where;                                /* RTUDP_IMPAIR_TX | RTUDP_IMPAIR_RX; 0: off */
    uint64_t loss;                                 /* probabilities x 2^32 (0 .. RTUDP_IMPAIR_ONE) */
    uint64_t duplicate;
    uint64_t corrupt;                              /* one bit flipped */
    uint64_t reorder;                              /* held back by reorder_ns */
    uint64_t delay_ns;
    uint64_t jitter_ns;                            /* + uniform 0 .. jitter_ns */
    uint64_t reorder_ns;
    uint64_t rate_bps;                             /* payload bits/s; 0: no limit */
    uint64_t burst_bytes;                          /* the rate's token bucket: bytes that may
                                                      leave back to back beyond one datagram */
    uint64_t seed;
};

struct rtudp_impair_shm {
    uint64_t seq;                                  /* seqlock: odd while a writer writes cfg */
    uint64_t pad0;
    struct rtudp_impair_cfg cfg;
    uint8_t pad1[24];
};

/* What the impairment did, one line per side: the TX thread writes tx, the RX thread rx. */
struct rtudp_impair_counters {
    uint64_t lost;                                 /* dropped */
    uint64_t duplicated;                           /* sent (received) twice: one extra copy each */
    uint64_t corrupted;                            /* one bit flipped */
    uint64_t delayed;                              /* held by delay_ns / jitter_ns */
    uint64_t reordered;                            /* held back by reorder_ns */
    uint64_t rate_held;                            /* held by the rate limit */
    uint64_t hold_dropped;                         /* to be held, but the hold was full */
    uint8_t pad[8];
};

/*
 * Async waiters (csrc/async_wait.h): a process whose event loop waits on a channel
 * registers an eventfd of its own in a slot; the worker takes a duplicate of it
 * (pidfd_getfd) and writes it when what the slot waits for comes, but only while the
 * slot's bit is armed: the client sets the bit, looks at the ring again, and only then
 * lets its loop wait; the worker publishes, then takes the armed bits (exchange) and
 * writes their eventfds.  So a loop is woken only while it waits, and never misses a
 * wake-up (both sides order the bit against the ring with a full fence).
 */
#define RTUDP_ASYNC_SLOTS 16
#define RTUDP_ASYNC_RX 0                           /* waits for RX data (or a kind's update) */
#define RTUDP_ASYNC_TX 1                           /* waits for room in the TX ring */
/* the worker's answer to a registration (rtudp_async_slot.status) */
#define RTUDP_ASYNC_PENDING 0                      /* not answered yet */
#define RTUDP_ASYNC_OK 1                           /* the worker holds a duplicate; woken once */
#define RTUDP_ASYNC_FAILED 2                       /* it could not take it: error is the errno */

struct rtudp_async_slot {
    uint32_t pid;                                  /* the waiting process; 0: free (client CAS) */
    int32_t fd;                                    /* its eventfd's number in that process */
    uint32_t gen;                                  /* client: bumped at each registration (never 0) */
    uint32_t answered_gen;                         /* worker: the registration status answers */
    int32_t status;                                /* RTUDP_ASYNC_* */
    int32_t error;                                 /* errno when FAILED */
    uint8_t pad[8];
};

struct rtudp_async_wait {
    /* line 0: bit i = slot i waits; set by clients (atomic or), taken by the worker */
    uint32_t armed[2];                             /* [RTUDP_ASYNC_RX], [RTUDP_ASYNC_TX] */
    uint8_t pad[56];
    struct rtudp_async_slot slot[16];              /* RTUDP_ASYNC_SLOTS */
};

/*
 * Taps (rtudp tap: a pcapng capture of a channel).  While tap.attached > 0 the worker
 * mirrors every datagram it sends and receives into the channel's two tap rings
 * (broadcast: ring_offset[2] for what it sent, [3] for what it received), each record
 * a struct rtudp_tap_meta then the datagram, its time_ns the kernel's stamp.  With no
 * tap attached that costs the worker one load and a branch per batch.  A tap claims a
 * slot with its pid (CAS 0 -> pid), then adds 1 to attached; whoever empties a slot
 * (its tap leaving, or anyone finding its pid gone: the next tap, the worker's tick)
 * takes 1 off, so a tap killed with SIGKILL stops the mirroring within a tick.
 */
#define RTUDP_TAP_SLOTS 8
#define RTUDP_TAP_RING_MAX 1048576                 /* a tap ring's bytes at most (1 MiB) */
struct rtudp_tap_line {
    uint32_t pid[8];                               /* RTUDP_TAP_SLOTS; 0 = free */
    uint32_t attached;                             /* slots held (atomic add / sub) */
    uint8_t pad[28];
};
struct rtudp_tap_counters {
    uint64_t tx_packets;                           /* TX thread: sent datagrams mirrored */
    uint64_t rx_packets;                           /* RX side: received datagrams mirrored */
    uint64_t unmirrored;                           /* TX thread: sent while a tap was attached
                                                      but not mirrored (too many still waiting
                                                      for their TX stamp, or too big) */
    uint64_t lost;                                 /* taps (atomic add): records they lost,
                                                      lapped by the worker */
    uint8_t pad[32];
};

/* Before each datagram in a tap ring. */
struct rtudp_tap_meta {
    struct rtudp_sockaddr peer;                    /* sent: the destination; received: the source */
    uint32_t wire_len;                             /* the datagram's length (the record holds
                                                      fewer bytes when the channel cut it) */
    uint32_t flags;                                /* RTUDP_TAP_* */
};
#define RTUDP_TAP_OUT 1                            /* meta flags: sent by the channel (else
                                                      received) */
#define RTUDP_TAP_KERNEL_TS 1                      /* record flags: time_ns is the kernel's
                                                      stamp (else the time of the send or
                                                      receive call) */

/*
 * Whose a send's lateness is: a record is late when it leaves more than
 * RTUDP_TX_LATE_NS after its deadline.  It is late on arrival (the submitter's) when
 * it came into the ring with its deadline past or nearer than the worker's spin margin,
 * the least lead a parked worker needs to send on time; else it was sent late (the
 * worker's).  When it came is judged by what the worker watched (txstamp.h,
 * rtudp_tx_in_time_by): a worker that stalls, parked or running, keeps its lateness.
 * Records sent "now" (send_at_ns 0) and the kinds' own sends are never late on
 * arrival.  One line, written by the TX thread as each departure is timed.
 */
#define RTUDP_TX_LATE_NS 100000                    /* 100 us: later than this is late */
struct rtudp_tx_late {
    uint64_t arrival;                              /* late, came late (the submitter's) */
    uint64_t arrival_ns;                           /* their lateness summed */
    uint64_t arrival_max_ns;                       /* the latest of them */
    uint64_t sent;                                 /* late, came in time (the worker's) */
    uint64_t sent_ns;
    uint64_t sent_max_ns;
    uint8_t pad[16];
};

/*
 * The channel block follows the segment header of /rtudp.<pool>.<channel> (kind
 * RTUDP_SEG_CHANNEL); then the kind area (the channel kind's own shared state, e.g.
 * Netflux's process images; empty for udp) up to ring_offset[0], the TX ring (MPSC:
 * clients -> worker); ring_offset[1] is the RX ring (broadcast: worker -> readers);
 * ring_offset[2] and [3] the tap rings (broadcast: what the worker sent, what it
 * received; each twice its TX / RX ring's bytes, at most RTUDP_TAP_RING_MAX).
 */
#define RTUDP_KIND_AREA_MAX 1073741824             /* 1 GiB: a udt channel holds its sockets' buffers */
struct rtudp_channel_block {
    /* lines 0-2: configuration, written once by the supervisor */
    char name[56];
    uint32_t kind;                                 /* RTUDP_KIND_* */
    uint32_t direction;                            /* RTUDP_DIR_* */
    struct rtudp_sockaddr local;
    struct rtudp_sockaddr remote;                  /* family 0: unconnected */
    uint32_t capacity_packets;                     /* what the user asked for */
    uint32_t flags;                                /* RTUDP_CHAN_* */
    int32_t worker;
    uint32_t max_datagram;
    int32_t socket_fd;                             /* the channel socket's fd number in the
                                                      supervisor (pool block's supervisor_pid),
                                                      which clients duplicate for direct sends;
                                                      -1: none */
    uint32_t table_slot;                           /* its index in the pool's channel table:
                                                      the bit producers mark in its worker's
                                                      ready set */
    /* a move handed over by the workers themselves (RTUDP_CMD_TAKE_OVER): the
     * supervisor writes handoff_to and RTUDP_HANDOFF_AWAITED before it sends the
     * commands; the worker letting go stores RTUDP_HANDOFF_RELEASED (release order)
     * once it has, and the one taking over stores RTUDP_HANDOFF_NONE when it serves */
    int32_t handoff_to;                            /* the worker that takes the channel over */
    uint32_t handoff;                              /* RTUDP_HANDOFF_* */
    uint64_t tx_counted_to;                        /* TX ring position before which records
                                                      are counted (tx_requested, tx_immediate,
                                                      tx_late): a worker that takes the
                                                      channel over (a move, a restart) reads
                                                      again what was taken but not sent, and
                                                      counts it once */
    uint8_t pad0[40];                              /* room for more configuration */
    /* line 3: TX counters, written by the worker */
    uint64_t tx_packets;
    uint64_t tx_bytes;
    uint64_t tx_immediate;                         /* send_at_ns 0 or already past */
    uint64_t tx_errors;                            /* sendmmsg failures (dropped after retries) */
    uint64_t tx_kernel_stamped;                    /* departures timed by a kernel TX stamp */
    uint64_t tx_requested;                         /* records taken from the TX ring (once:
                                                      tx_counted_to) */
    uint64_t tx_late;                              /* deadline already past when taken (in tx_immediate) */
    uint64_t tx_ring_faults;                       /* the TX ring failed validation: not read until re-added */
    /* line 4: RX counters, written by the worker */
    uint64_t rx_packets;
    uint64_t rx_bytes;
    uint64_t rx_truncated;
    uint64_t rx_kernel_drops;                      /* SO_RXQ_OVFL */
    uint64_t rx_errors;
    uint8_t pad2[24];
    /* line 5: readers attached.  Each reader claims a free slot with its pid (CAS 0 ->
     * pid, or over the pid of a process that no longer exists) and clears it when it
     * closes; the supervisor and the worker never touch it.  Readers beyond
     * RTUDP_READER_SLOTS work but are not counted. */
    uint32_t reader_pid[16];                       /* RTUDP_READER_SLOTS */
    /* line 6: immediate sends a client made itself on its duplicate of the channel
     * socket (direct_send.h).  The worker and the supervisor write `state`; clients
     * add to the counters atomically: many writers, but at most one
     * direct send per handle per quiet gap, so the line is never hot. */
    struct rtudp_direct_tx direct;
    /* lines 7-8: the impairment's configuration (a seqlock: any client writes it);
     * lines 9-10: what it did (TX thread, RX thread) */
    struct rtudp_impair_shm impair;
    struct rtudp_impair_counters impair_tx;
    struct rtudp_impair_counters impair_rx;
    /* line 11: taps attached (written by taps; the worker reads `attached` per batch) */
    struct rtudp_tap_line tap;
    /* line 12: tap counters */
    struct rtudp_tap_counters tap_count;
    /* line 13: late sends by cause (TX thread) */
    struct rtudp_tx_late late;
    /* lateness = departure - send_at_ns; rx delay = published - kernel RX stamp */
    struct rtudp_hist tx_lateness;
    struct rtudp_hist rx_delay;
    struct rtudp_tx_journal tx_journal;            /* written by the worker's TX thread */
    struct rtudp_async_wait async_wait;            /* event-loop waiters (async_wait.h) */
    struct rtudp_direct_rx direct_rx;              /* direct receive (rx_publish.h) */
};
/* END CDEF */

/* The impairment's counters (struct rtudp_impair_counters, above), as members of the
 * channel block: part of RTUDP_CHANNEL_COUNTERS, shown by rtstat in its impairment table
 * (SHOW) */
#define RTUDP_IMPAIR_COUNTERS(X, SUM)                                                             \
    X(impair_tx.lost, "imp_tx_lost", COUNTER, "packets", SHOW, "sends the impairment dropped",   \
      "", "")                                                                                    \
    X(impair_tx.duplicated, "imp_tx_duplicated", COUNTER, "packets", SHOW,                       \
      "sends the impairment sent twice", "", "")                                                 \
    X(impair_tx.corrupted, "imp_tx_corrupted", COUNTER, "packets", SHOW,                         \
      "sends the impairment flipped a bit of", "", "")                                           \
    X(impair_tx.delayed, "imp_tx_delayed", COUNTER, "packets", SHOW,                             \
      "sends held by the impairment's delay_ns / jitter_ns", "", "")                             \
    X(impair_tx.reordered, "imp_tx_reordered", COUNTER, "packets", SHOW,                         \
      "sends held back by reorder_ns, so later ones overtake them", "", "")                      \
    X(impair_tx.rate_held, "imp_tx_rate_held", COUNTER, "packets", SHOW,                         \
      "sends held by the impairment's rate limit", "", "")                                       \
    X(impair_tx.hold_dropped, "imp_tx_hold_dropped", COUNTER, "packets", SHOW,                   \
      "sends a kind made that the impairment's full hold dropped", "", "")                       \
    X(impair_rx.lost, "imp_rx_lost", COUNTER, "packets", SHOW,                                   \
      "datagrams received the impairment dropped", "", "")                                       \
    X(impair_rx.duplicated, "imp_rx_duplicated", COUNTER, "packets", SHOW,                       \
      "datagrams received the impairment published twice", "", "")                               \
    X(impair_rx.corrupted, "imp_rx_corrupted", COUNTER, "packets", SHOW,                         \
      "datagrams received the impairment flipped a bit of", "", "")                              \
    X(impair_rx.delayed, "imp_rx_delayed", COUNTER, "packets", SHOW,                             \
      "datagrams received held by the impairment's delay_ns / jitter_ns", "", "")                \
    X(impair_rx.reordered, "imp_rx_reordered", COUNTER, "packets", SHOW,                         \
      "datagrams received held back by reorder_ns", "", "")                                      \
    X(impair_rx.rate_held, "imp_rx_rate_held", COUNTER, "packets", SHOW,                         \
      "datagrams received held by the impairment's rate limit", "", "")                          \
    X(impair_rx.hold_dropped, "imp_rx_hold_dropped", COUNTER, "packets", SHOW,                   \
      "datagrams received the impairment's full hold dropped", "", "")                           \
    SUM("imp_impaired", "packets", 0, "impairment events, both ways (a datagram may count in several)",             \
        "imp_tx_lost imp_tx_duplicated imp_tx_corrupted imp_tx_delayed imp_tx_reordered "        \
        "imp_tx_rate_held imp_tx_hold_dropped imp_rx_lost imp_rx_duplicated imp_rx_corrupted "    \
        "imp_rx_delayed imp_rx_reordered imp_rx_rate_held imp_rx_hold_dropped")

/* A cause of late sends (struct rtudp_tx_late): how many, their lateness summed, the
 * latest; part of RTUDP_CHANNEL_COUNTERS */
#define RTUDP_TX_LATE_CAUSE(X, cause, name, help)                                                \
    X(late.cause, name, COUNTER, "records", 0, help, "", "")                                      \
    X(late.cause##_ns, name "_ns", COUNTER, "ns", 0, "of them, the lateness summed", "", "")      \
    X(late.cause##_max_ns, name "_max_ns", GAUGE, "ns", 0, "of them, the latest", "", "")

/* The channel block's counters, as stats(), rtstat and `rtudp metrics` show them
 * (csrc/kinds.h says what the columns are).  A client's direct sends are counted in
 * the direct line and included in tx_packets, tx_bytes and tx_immediate. */
#define RTUDP_CHANNEL_COUNTERS(X, SUM)                                                            \
    X(tx_packets, "tx_packets", COUNTER, "packets", 0, "datagrams sent", "tx_direct", "")        \
    X(tx_bytes, "tx_bytes", COUNTER, "bytes", 0, "bytes sent", "tx_direct_bytes", "")            \
    X(tx_immediate, "tx_immediate", COUNTER, "packets", 0,                                       \
      "sends due at once when taken (send_at_ns 0 or already past)", "tx_direct", "")            \
    X(tx_errors, "tx_errors", COUNTER, "packets", 0,                                             \
      "datagrams the kernel refused (dropped after retries)", "", "")                            \
    X(tx_kernel_stamped, "tx_kernel_stamped", COUNTER, "packets", 0,                             \
      "departures timed by a kernel TX stamp", "", "")                                           \
    X(tx_requested, "tx_requested", COUNTER, "records", 0, "records taken from the TX ring", "", \
      "")                                                                                        \
    X(tx_late, "tx_late", COUNTER, "records", 0,                                                 \
      "records whose deadline had passed when the worker took them", "", "")                     \
    RTUDP_TX_LATE_CAUSE(X, arrival, "tx_late_arrival",                                          \
                        "late sends the submitter made late: queued with the deadline past or " \
                        "within the worker's spin margin")                                      \
    RTUDP_TX_LATE_CAUSE(X, sent, "tx_late_sent", "late sends the worker made late: queued in time") \
    SUM("tx_late_left", "records", 0,                                                            \
        "sends that left more than 100 us after their deadline, whoever made them late",        \
        "tx_late_arrival tx_late_sent")                                                          \
    X(tx_ring_faults, "tx_ring_faults", COUNTER, "", 0,                                          \
      "times the TX ring failed validation (not read until the channel is re-added)", "", "")    \
    X(rx_packets, "rx_packets", COUNTER, "packets", 0, "datagrams received", "", "")             \
    X(rx_bytes, "rx_bytes", COUNTER, "bytes", 0, "bytes received", "", "")                       \
    X(rx_truncated, "rx_truncated", COUNTER, "packets", 0,                                       \
      "datagrams longer than max_datagram, cut", "", "")                                         \
    X(rx_kernel_drops, "rx_kernel_drops", COUNTER, "packets", 0,                                 \
      "datagrams the kernel dropped: socket buffer full (SO_RXQ_OVFL)", "", "")                  \
    X(rx_errors, "rx_errors", COUNTER, "packets", 0, "datagrams not published", "", "")          \
    X(tx_journal.restart_left, "tx_restart_left", COUNTER, "records", 0,                         \
      "in flight when a worker died, proven sent by their TX stamp: not sent again", "", "")     \
    X(tx_journal.restart_resent, "tx_restart_resent", COUNTER, "records", 0,                     \
      "in flight when a worker died, without a TX stamp: sent again", "", "")                    \
    X(direct.packets, "tx_direct", COUNTER, "packets", 0,                                        \
      "datagrams clients sent themselves on the channel socket", "", "")                         \
    X(direct.fallbacks, "tx_direct_fallbacks", COUNTER, "packets", 0,                            \
      "direct sends the kernel refused: queued for the worker", "", "")                          \
    X(direct.bytes, "tx_direct_bytes", COUNTER, "bytes", 0,                                      \
      "bytes clients sent themselves on the channel socket", "", "")                             \
    X(direct_rx.packets, "rx_direct", COUNTER, "packets", 0,                                     \
      "datagrams readers read themselves from the channel socket (in rx_packets)", "", "")       \
    X(direct_rx.takes, "rx_direct_takes", COUNTER, "", 0,                                        \
      "times a reader took the channel socket from the worker", "", "")                          \
    X(direct_rx.reclaims, "rx_direct_reclaims", COUNTER, "", 0,                                  \
      "times the worker took the socket back from a reader whose lease had passed", "", "")      \
    RTUDP_IMPAIR_COUNTERS(X, SUM)                                                                \
    X(tap_count.tx_packets, "tap_tx_packets", COUNTER, "packets", 0,                            \
      "datagrams sent that the worker mirrored to taps", "", "")                                 \
    X(tap_count.rx_packets, "tap_rx_packets", COUNTER, "packets", 0,                            \
      "datagrams received that the worker mirrored to taps", "", "")                             \
    X(tap_count.unmirrored, "tap_unmirrored", COUNTER, "packets", 0,                            \
      "datagrams sent while a tap was attached that the worker could not mirror", "", "")       \
    X(tap_count.lost, "tap_lost", COUNTER, "packets", 0,                                        \
      "mirrored datagrams taps lost because they fell a tap ring behind", "", "")               \
    X(tx_lateness, "tx_lateness", HISTOGRAM, "ns", 0, "send lateness: departure - deadline", "", \
      "")                                                                                        \
    X(rx_delay, "rx_delay", HISTOGRAM, "ns", 0,                                                  \
      "receive delay: published to readers - kernel RX stamp", "", "")

/* BEGIN CDEF */

/* What an RX ring record carries before the datagram (its time_ns is rx_ns too). */
struct rtudp_rx_meta {
    struct rtudp_sockaddr source;
    int64_t rx_ns;                                 /* kernel RX stamp, as CLOCK_MONOTONIC */
    int64_t hw_ns;                                 /* raw hardware stamp, 0 if none */
    uint64_t rx_seq;                               /* receive sequence number on the channel */
    uint32_t flags;                                /* RTUDP_RX_* */
    uint32_t pad;
};

#define RTUDP_RX_TRUNCATED 1
#define RTUDP_RX_SOFTWARE_STAMP 2                  /* rx_ns is the kernel's stamp (else a clock read) */

/* ---------------------------------------------------------------- supervisor <-> worker */

/*
 * Messages on the worker's command socket (SOCK_SEQPACKET; its fd number is the
 * worker's --cmd-fd argument).  RTUDP_CMD_ADD carries the channel's bound socket as
 * SCM_RIGHTS; the worker answers every command with a reply of the same op and
 * slot.  The supervisor rings the worker's bell after sending, since the worker may
 * be parked on it.
 */
#define RTUDP_CMD_ADD 1
#define RTUDP_CMD_REMOVE 2
#define RTUDP_CMD_STOP 3
/* ADD a standby copy of a channel another worker serves (a kind that can: proto.h); it
 * carries the channel socket as ADD does */
#define RTUDP_CMD_ADD_STANDBY 4
/* ADD a channel another worker serves, to serve it once that one lets go: the worker
 * prepares it and replies, then waits until the channel block says RELEASED (the other
 * worker's REMOVE stores it and rings this worker's bell) and serves it from then on,
 * with no command between.  A REMOVE before then drops it unserved.  Carries the
 * channel's sockets as ADD does. */
#define RTUDP_CMD_TAKE_OVER 5
#define RTUDP_HANDOFF_NONE 0
#define RTUDP_HANDOFF_AWAITED 1
#define RTUDP_HANDOFF_RELEASED 2

struct rtudp_cmd {
    uint32_t op;                                   /* RTUDP_CMD_* */
    uint32_t slot;                                 /* channel slot index */
    char name[56];                                 /* channel name (segment /rtudp.<pool>.<name>) */
};

struct rtudp_reply {
    uint32_t op;
    uint32_t slot;
    int32_t status;                                /* RTUDP_OK or a negative code */
    char msg[200];
};
/* END CDEF */

_Static_assert(sizeof(struct rtudp_pool_block) == 2 * RTUDP_CACHE_LINE, "pool block is 2 lines");
_Static_assert(sizeof(struct rtudp_worker_slot) == 7 * RTUDP_CACHE_LINE, "worker slot is 7 lines");
_Static_assert(offsetof(struct rtudp_worker_slot, bell) == RTUDP_CACHE_LINE, "bell on its own line");
_Static_assert(offsetof(struct rtudp_worker_slot, tunables) == 5 * RTUDP_CACHE_LINE,
               "the worker's settings on their own line");
_Static_assert(sizeof(struct rtudp_channel_slot) == 2 * RTUDP_CACHE_LINE, "channel slot is 2 lines");
_Static_assert(sizeof(((struct rtudp_control *)0)->workers) ==
                   RTUDP_MAX_WORKERS * sizeof(struct rtudp_worker_slot), "workers[] size");
_Static_assert(sizeof(((struct rtudp_control *)0)->channels) ==
                   RTUDP_MAX_CHANNELS * sizeof(struct rtudp_channel_slot), "channels[] size");
_Static_assert(offsetof(struct rtudp_control, workers) % RTUDP_CACHE_LINE == 0, "aligned workers");
_Static_assert(RTUDP_READY_WORDS * 64 == RTUDP_MAX_CHANNELS, "a ready bit per channel slot");
_Static_assert(RTUDP_READY_WORDS <= RTUDP_READY_SUMMARY * 64, "the summary covers every word");
_Static_assert(sizeof(((struct rtudp_ready_set *)0)->bits) == RTUDP_READY_WORDS * 8, "bits[] size");
_Static_assert(sizeof(((struct rtudp_control *)0)->ready) ==
                   RTUDP_MAX_WORKERS * sizeof(struct rtudp_ready_set), "ready[] size");
_Static_assert(offsetof(struct rtudp_control, ready) % RTUDP_CACHE_LINE == 0, "aligned ready");
_Static_assert(sizeof(struct rtudp_sockaddr) == 24, "sockaddr is 24 bytes");
_Static_assert(offsetof(struct rtudp_channel_block, tx_packets) == 3 * RTUDP_CACHE_LINE,
               "TX counters on their own line");
_Static_assert(offsetof(struct rtudp_channel_block, rx_packets) == 4 * RTUDP_CACHE_LINE,
               "RX counters on their own line");
_Static_assert(offsetof(struct rtudp_channel_block, reader_pid) == 5 * RTUDP_CACHE_LINE,
               "reader slots on their own line");
_Static_assert(offsetof(struct rtudp_channel_block, direct) == 6 * RTUDP_CACHE_LINE &&
                   sizeof(struct rtudp_direct_tx) == RTUDP_CACHE_LINE,
               "direct-send counters on their own line");
_Static_assert(sizeof(((struct rtudp_channel_block *)0)->reader_pid) ==
                   RTUDP_READER_SLOTS * sizeof(uint32_t) &&
               RTUDP_READER_SLOTS * sizeof(uint32_t) == RTUDP_CACHE_LINE, "reader_pid[] is a line");
_Static_assert(sizeof(struct rtudp_impair_shm) == 2 * RTUDP_CACHE_LINE &&
                   sizeof(struct rtudp_impair_counters) == RTUDP_CACHE_LINE &&
                   offsetof(struct rtudp_channel_block, impair) == 7 * RTUDP_CACHE_LINE,
               "impairment: config on lines 7-8, counters on lines 9 and 10");
_Static_assert(sizeof(struct rtudp_impair_cfg) % 8 == 0, "impairment cfg is whole words");
_Static_assert(sizeof(struct rtudp_rx_meta) == 56, "rx meta is 56 bytes");
_Static_assert(offsetof(struct rtudp_channel_block, tap) == 11 * RTUDP_CACHE_LINE &&
                   sizeof(struct rtudp_tap_line) == RTUDP_CACHE_LINE &&
                   sizeof(struct rtudp_tap_counters) == RTUDP_CACHE_LINE,
               "tap slots and tap counters on lines of their own");
_Static_assert(sizeof(struct rtudp_tx_late) == RTUDP_CACHE_LINE &&
                   offsetof(struct rtudp_channel_block, late) == 13 * RTUDP_CACHE_LINE,
               "late sends by cause on line 13");
_Static_assert(sizeof(((struct rtudp_tap_line *)0)->pid) == RTUDP_TAP_SLOTS * sizeof(uint32_t),
               "pid[] has RTUDP_TAP_SLOTS entries");
_Static_assert(sizeof(struct rtudp_tap_meta) == 32, "tap meta is 32 bytes");
_Static_assert(sizeof(((struct rtudp_tx_journal *)0)->pos) == RTUDP_TX_JOURNAL_MAX * sizeof(uint64_t),
               "pos[] has RTUDP_TX_JOURNAL_MAX entries");
_Static_assert(offsetof(struct rtudp_tx_journal, pos) == RTUDP_CACHE_LINE, "journal header is a line");
_Static_assert(offsetof(struct rtudp_channel_block, tx_journal) % RTUDP_CACHE_LINE == 0,
               "journal on its own lines");
_Static_assert(offsetof(struct rtudp_channel_block, async_wait) % RTUDP_CACHE_LINE == 0 &&
                   sizeof(struct rtudp_async_slot) == 32 &&
                   sizeof(((struct rtudp_async_wait *)0)->slot) ==
                       RTUDP_ASYNC_SLOTS * sizeof(struct rtudp_async_slot) &&
                   RTUDP_ASYNC_SLOTS <= 32,
               "async waiters: armed line, then the slots (a bit each in a 32-bit word)");

_Static_assert(sizeof(struct rtudp_direct_rx) == RTUDP_CACHE_LINE &&
                   offsetof(struct rtudp_channel_block, direct_rx) % RTUDP_CACHE_LINE == 0,
               "direct receive on a line of its own");

_Static_assert(sizeof(((struct rtudp_hist *)0)->buckets) == RTUDP_HIST_BUCKETS * sizeof(uint64_t),
               "buckets[] has RTUDP_HIST_BUCKETS entries");
_Static_assert(RTUDP_HIST_BUCKETS ==
                   (1 << RTUDP_HIST_SUB_BITS) +
                       (RTUDP_HIST_MAX_BIT - RTUDP_HIST_SUB_BITS) * (1 << (RTUDP_HIST_SUB_BITS - 1)),
               "bucket count follows from the sub-bucket bits and the range");

_Static_assert(sizeof(struct rtudp_segment_header) == 128, "segment header is 128 bytes");
_Static_assert(sizeof(struct rtudp_tx_record) == 16, "tx record header is 16 bytes");
_Static_assert(sizeof(struct rtudp_bcast_record) == 24, "broadcast record header is 24 bytes");
_Static_assert(sizeof(struct rtudp_doorbell) == RTUDP_CACHE_LINE, "doorbell is a cache line");
_Static_assert(sizeof(struct rtudp_mpsc_ring) == 8 * RTUDP_CACHE_LINE, "mpsc ring is 8 lines");
_Static_assert(sizeof(struct rtudp_bcast_ring) == 5 * RTUDP_CACHE_LINE, "bcast ring is 5 lines");
_Static_assert(offsetof(struct rtudp_mpsc_ring, tail) == 1 * RTUDP_CACHE_LINE, "tail on its own line");
_Static_assert(offsetof(struct rtudp_mpsc_ring, head) == 3 * RTUDP_CACHE_LINE, "head on its own line");
_Static_assert(sizeof(((struct rtudp_segment_header *)0)->ring_offset) ==
               RTUDP_SEG_MAX_RINGS * sizeof(uint64_t), "ring_offset[] has RTUDP_SEG_MAX_RINGS entries");

#endif /* RTUDP_SHM_H */
