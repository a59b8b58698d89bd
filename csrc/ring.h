/*
 * ring.h - the rings of rtudp_shm.h: setup, produce, consume, wait.
 *
 * Lifecycle (liburing style): footprint -> init (creator) -> attach (everyone:
 * validates and fills a process-local view) -> put/get -> unmap.  Every function that reads shared memory validates what it
 * reads: a corrupt ring gives RTUDP_ECORRUPT, never a crash.
 *
 * The CDEF block is also given to cffi, so Python calls exactly these.
 */
#ifndef RTUDP_RING_H
#define RTUDP_RING_H

#include <stdbool.h>

#include "rtudp_shm.h"

/* BEGIN CDEF */
/* result codes (0 = success, negative = error) */
#define RTUDP_OK 0
#define RTUDP_EMPTY -1          /* nothing to read */
#define RTUDP_EFULL -2          /* no space for the record now */
#define RTUDP_ETOOBIG -3        /* record larger than the ring's max_payload */
#define RTUDP_ETIMEDOUT -4      /* deadline passed */
#define RTUDP_EINTR -5          /* a signal interrupted the wait */
#define RTUDP_ECORRUPT -6       /* shared memory failed validation */
#define RTUDP_EINVAL -7         /* bad argument */
#define RTUDP_EBUFSMALL -8      /* caller's buffer too small for the next record */
#define RTUDP_ESYS -9           /* a system call failed (see errno) */

/* why a segment failed validation, with the offending values in msg */
struct rtudp_check {
    int code;
    char msg[200];
};

/*
 * A process's validated view of a ring.  Geometry is copied out of shared memory
 * once, at attach, after validation: a hostile process that later rewrites the
 * shared geometry cannot make us index outside the mapping.  Every ring function
 * takes one of these, never the raw shared struct.
 */
/* producers: the consumer a commit wakes, found at each commit (a channel moves between
 * a pool's workers while producers keep their views): *worker is the index, read from
 * the channel's segment; it picks a bell and a ready set from the pool's tables (index
 * i at base + i * stride; an index outside 0..n-1 wakes none).  worker NULL: no route,
 * the fixed wake / ready of rtudp_mpsc_set_wake / _set_ready. */
struct rtudp_mpsc_route {
    const int32_t *worker;
    uint8_t *bells;
    uint64_t bell_stride;
    uint8_t *ready_sets;
    uint64_t ready_stride;
    uint32_t n;
};

struct rtudp_mpsc {
    struct rtudp_mpsc_ring *ring;
    uint8_t *data;              /* capacity bytes of records */
    uint64_t capacity;
    uint64_t mask;
    uint64_t max_payload;
    uint64_t tail_seen;         /* consumer: last tail read, for bounds checks only */
    struct rtudp_doorbell *wake; /* producers: also ring this on commit (a worker's bell) */
    struct rtudp_ready_set *ready; /* producers: mark ready_bit here on commit (NULL: none) */
    uint32_t ready_bit;
    struct rtudp_mpsc_route route; /* producers: overrides wake and ready when set */
    const int64_t *not_before;  /* producers: no record committed now is due before this
                                   (a paced stream's clock; NULL: none, 0: not known) */
    uint64_t stuck_span;        /* consumer: the header-less claim's extent when its unblock
                                   clock started (0: none seen); see rtudp_mpsc_unblock */
};

struct rtudp_bcast {
    struct rtudp_bcast_ring *ring;
    uint8_t *data;
    uint64_t capacity;
    uint64_t mask;
    uint64_t max_payload;
};

/* A reader's private cursor on a broadcast ring (lives in the reader's memory). */
struct rtudp_bcast_reader {
    uint64_t cursor;            /* next position to read */
    uint64_t expected_seq;      /* seq of the next record we expect */
    uint64_t lost;              /* records lost to laps, total */
    uint64_t lapped;            /* times lapped */
};

int64_t rtudp_now_ns(void);     /* CLOCK_MONOTONIC */

/* ---- doorbells ---- */
/* wake whoever sleeps on bell (no system call when nobody does) */
void rtudp_bell_ring(struct rtudp_doorbell *bell);
/* a command was sent on the worker's socket: count it where the worker looks, then
 * ring its bell (the supervisor, after each send) */
void rtudp_worker_post_command(struct rtudp_worker_slot *slot);

/* ---- MPSC ring ---- */
uint64_t rtudp_mpsc_footprint(uint64_t capacity);
int rtudp_mpsc_init(struct rtudp_mpsc_ring *r, uint64_t capacity);
/* as rtudp_mpsc_init on memory already zero (a new shared memory segment): the data
 * is not written, so its pages stay untouched until records use them */
int rtudp_mpsc_init_zeroed(struct rtudp_mpsc_ring *r, uint64_t capacity);
/* validate the ring at `mem` (avail bytes mapped from there) and fill the view */
int rtudp_mpsc_attach(struct rtudp_mpsc *m, void *mem, uint64_t avail, struct rtudp_check *why);
/* producers */
int rtudp_mpsc_claim(struct rtudp_mpsc *r, uint32_t len, uint64_t *pos);
void *rtudp_mpsc_claim_payload(struct rtudp_mpsc *r, uint64_t pos);
/* RTUDP_OK, or RTUDP_ETIMEDOUT when the consumer had already unblocked this claim */
int rtudp_mpsc_commit(struct rtudp_mpsc *r, uint64_t pos, int64_t send_at_ns, uint16_t flags);
int rtudp_mpsc_try_put(struct rtudp_mpsc *r, const void *data, uint32_t len,
                       int64_t send_at_ns, uint16_t flags);
/* try_put without waking the consumer: for batches, which call rtudp_mpsc_wake once */
int rtudp_mpsc_try_put_quiet(struct rtudp_mpsc *r, const void *data, uint32_t len,
                             int64_t send_at_ns, uint16_t flags);
/* try_put_quiet of a record whose first `room` bytes are zero, then data (a header
 * the consumer writes: an RTP channel's) */
int rtudp_mpsc_try_put_room_quiet(struct rtudp_mpsc *r, uint32_t room, const void *data,
                                  uint32_t len, int64_t send_at_ns, uint16_t flags);
/* the ring bytes a record of `len` payload bytes takes (its header, 8-byte aligned) */
uint64_t rtudp_mpsc_record_bytes(uint64_t len);
/* asks, for writing, for the lines the next `bytes` of records will take from the
 * tail (no claim: a hint, harmless if others claim them first) */
void rtudp_mpsc_prefetch_put(const struct rtudp_mpsc *r, uint64_t bytes);
void rtudp_mpsc_wake(struct rtudp_mpsc *r);
/* the same after records whose earliest deadline is send_at_ns (0 = now): a consumer
 * asleep until no later than that is left asleep (it drains the ring when it wakes) */
void rtudp_mpsc_wake_at(struct rtudp_mpsc *r, int64_t send_at_ns);
/* commits also ring `bell` (NULL: only the ring's own): a worker serving many rings
 * sleeps on one bell of its own, which producers must ring */
void rtudp_mpsc_set_wake(struct rtudp_mpsc *r, struct rtudp_doorbell *bell);
/* commits also mark `bit` in `set` (NULL: none), before ringing: a worker serving many
 * rings reads only the ones marked (readyset.h) */
void rtudp_mpsc_set_ready(struct rtudp_mpsc *r, struct rtudp_ready_set *set, uint32_t bit);
/* commits wake the consumer `route` names at that moment, marking `bit` in its ready
 * set (route->worker NULL: back to the fixed wake and ready set) */
void rtudp_mpsc_set_route(struct rtudp_mpsc *r, const struct rtudp_mpsc_route *route,
                          uint32_t bit);
/* records committed now leave no earlier than *not_before (a time the consumer
 * publishes, e.g. a paced stream's clock; NULL: nothing known): a commit then wakes a
 * consumer asleep until before that time no more than one asleep until after it */
void rtudp_mpsc_set_not_before(struct rtudp_mpsc *r, const int64_t *not_before);
int rtudp_mpsc_put(struct rtudp_mpsc *r, const void *data, uint32_t len,
                   int64_t send_at_ns, uint16_t flags, int64_t deadline_ns, int64_t spin_ns);
/* puts n records (payload i at data + offs[i], lens[i] bytes; offs NULL = back to
 * back); returns how many went in before the deadline, or a negative code if the
 * first one could not. */
int64_t rtudp_mpsc_put_many(struct rtudp_mpsc *r, const uint8_t *data, const uint64_t *offs,
                            const uint32_t *lens, uint64_t n, int64_t send_at_ns,
                            uint16_t flags, int64_t deadline_ns, int64_t spin_ns);
/* consumer: next committed data record at or after *cursor (skips padding; advances
 * *cursor past what it returns); *len is its validated payload length */
int rtudp_mpsc_next(struct rtudp_mpsc *r, uint64_t *cursor, struct rtudp_tx_record **rec,
                    uint32_t *len);
/* free [head, upto): zero it and move head; RTUDP_EINVAL (nothing done) if upto is
 * misaligned or not within a lap ahead of head */
int rtudp_mpsc_release(struct rtudp_mpsc *r, uint64_t upto);
/* mark the record at pos (returned by next) as sent: a consumer that restarts from
 * head skips it, so records sent out of ring order are not sent twice */
void rtudp_mpsc_mark_sent(struct rtudp_mpsc *r, uint64_t pos);
/* count records/bytes consumed through next + release (drain and get count themselves) */
void rtudp_mpsc_account(struct rtudp_mpsc *r, uint64_t records, uint64_t bytes);
int rtudp_mpsc_get(struct rtudp_mpsc *r, uint8_t *buf, uint32_t buflen, uint32_t *len,
                   int64_t *send_at_ns, uint16_t *flags);
/* copies up to max_n payloads back to back into buf; lens[i]/send_at[i] per record.
 * Returns the count (>= 0) or a negative code when nothing could be read. */
int64_t rtudp_mpsc_get_many(struct rtudp_mpsc *r, uint8_t *buf, uint64_t buflen,
                            uint32_t *lens, int64_t *send_at, uint64_t max_n);
uint64_t rtudp_mpsc_pending_bytes(const struct rtudp_mpsc *r);
int rtudp_mpsc_wait(struct rtudp_mpsc *r, int64_t deadline_ns, int64_t spin_ns);
/* wait for a committed record at `cursor` (a consumer that holds records in flight
 * reads ahead of head; head moves only when it releases) */
int rtudp_mpsc_wait_at(struct rtudp_mpsc *r, uint64_t cursor, int64_t deadline_ns,
                       int64_t spin_ns);
/* true if a committed record (or padding) waits at `cursor`, or the cursor is
 * corrupt (so that rtudp_mpsc_next gets to say so) */
bool rtudp_mpsc_readable_at(const struct rtudp_mpsc *r, uint64_t cursor);
/* turn a claim that has blocked `pos` for timeout_ns into padding; 1 if it did */
int rtudp_mpsc_unblock(struct rtudp_mpsc *r, uint64_t pos, int64_t timeout_ns);

/* ---- broadcast ring ---- */
uint64_t rtudp_bcast_footprint(uint64_t capacity);
int rtudp_bcast_init(struct rtudp_bcast_ring *r, uint64_t capacity);
/* as rtudp_bcast_init on memory already zero (rtudp_mpsc_init_zeroed) */
int rtudp_bcast_init_zeroed(struct rtudp_bcast_ring *r, uint64_t capacity);
int rtudp_bcast_attach(struct rtudp_bcast *b, void *mem, uint64_t avail, struct rtudp_check *why);
int rtudp_bcast_write(struct rtudp_bcast *r, const void *data, uint32_t len,
                      uint16_t flags, int64_t time_ns);
/* offs NULL = payloads back to back in data */
int64_t rtudp_bcast_write_many(struct rtudp_bcast *r, const uint8_t *data, const uint64_t *offs,
                               const uint32_t *lens, uint64_t n, uint16_t flags, int64_t time_ns);
void rtudp_bcast_reader_init(struct rtudp_bcast *r, struct rtudp_bcast_reader *rd, int from_oldest);
/* *lost = records lost (lapped) just before this one */
int rtudp_bcast_read(struct rtudp_bcast *r, struct rtudp_bcast_reader *rd, uint8_t *buf,
                     uint32_t buflen, uint32_t *len, uint64_t *seq, int64_t *time_ns,
                     uint16_t *flags, uint64_t *lost);
int64_t rtudp_bcast_read_many(struct rtudp_bcast *r, struct rtudp_bcast_reader *rd,
                              uint8_t *buf, uint64_t buflen, uint32_t *lens, uint64_t *seqs,
                              uint64_t max_n);
int rtudp_bcast_wait(struct rtudp_bcast *r, struct rtudp_bcast_reader *rd,
                     int64_t deadline_ns, int64_t spin_ns);
/* this thread's rtudp_before_sleep (below) in this copy of the engine: each extension
 * module links its own, and rt_wait.h lives in rtudp.shmring._fast; 0 = none */
void rtudp_set_before_sleep(uintptr_t fn);
/* END CDEF */

/* producers: the bell and the ready set a commit goes to now (the route's worker at
 * this moment, or the fixed ones; NULL where there is none) */
void rtudp_mpsc_consumer(const struct rtudp_mpsc *m, struct rtudp_doorbell **wake,
                         struct rtudp_ready_set **ready);

/*
 * A broadcast writer that publishes records later than it writes them (a tap: a sent
 * datagram is copied when it leaves, and published with its kernel TX stamp as time
 * once the stamp has come).  Records are staged past the published tail, where readers
 * do not look (tail_intent covers them, so a lapped reader still notices the writes),
 * then published in the order staged.  Staged bytes stay within half the ring, so the
 * writer never overwrites a record it has not published.  One writer per ring; a
 * stage is process-local (a writer that starts over calls init: what was staged and
 * not published is dropped, unseen).
 */
struct rtudp_bcast_stage {
    uint64_t tail;          /* end of the last record staged */
    uint64_t seq;           /* seq of the next record staged */
    uint64_t published;     /* the tail readers see */
};
void rtudp_bcast_stage_init(struct rtudp_bcast *b, struct rtudp_bcast_stage *s);
/* stage a record whose payload is a (alen bytes) then d (dlen): RTUDP_OK,
 * RTUDP_ETOOBIG, or RTUDP_EFULL when the staged bytes would pass half the ring */
int rtudp_bcast_stage(struct rtudp_bcast *b, struct rtudp_bcast_stage *s, const void *a,
                      uint32_t alen, const void *d, uint32_t dlen, uint16_t flags,
                      int64_t time_ns);
/* publish what was staged up to `upto` (s->tail after a stage; seq = s->seq then),
 * setting each record's time and flags to time_ns and flags on the way (time_ns 0:
 * each keeps its own); a no-op when upto is not past the published tail */
void rtudp_bcast_stage_publish(struct rtudp_bcast *b, struct rtudp_bcast_stage *s, uint64_t upto,
                               uint64_t seq, int64_t time_ns, uint16_t flags);

/* a power of two between RTUDP_RING_MIN_CAPACITY and RTUDP_RING_MAX_CAPACITY */
bool rtudp_ring_capacity_ok(uint64_t capacity);

/* Wait until ready(ctx), spinning up to spin_ns, then sleeping on the bell until the
 * absolute CLOCK_MONOTONIC deadline (INT64_MAX = forever): RTUDP_OK, RTUDP_ETIMEDOUT,
 * RTUDP_EINTR or RTUDP_ESYS.  Whoever makes ready() true must rtudp_bell_ring(). */
typedef bool (*rtudp_ready_fn)(const void *ctx);
int rtudp_bell_wait(struct rtudp_doorbell *bell, rtudp_ready_fn ready, const void *ctx,
                    int64_t deadline_ns, int64_t spin_ns);

/* Called by this thread's waits right before they sleep (rtudp_bell_wait, and a
 * direct reader's sleep on its socket); NULL = nothing.  rt_wait.h sets it for a
 * thread that waits at real-time priority, and such a thread's waits do not spin: its
 * wake-up is prompt anyway, and a spin at real-time priority would hold off every
 * ordinary task of its CPU until the fair server takes the CPU back for them. */
extern _Thread_local void (*rtudp_before_sleep)(void);

/* how long this thread's wait may spin, asked for spin_ns: none at real-time priority */
static inline int64_t rtudp_wait_spin_ns(int64_t spin_ns)
{
    return spin_ns > 0 && !rtudp_before_sleep ? spin_ns : 0;
}

/* fill why (code + printf-style message naming the bad value); returns code */
int rtudp_check_set(struct rtudp_check *why, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The consumer's general form (C only): hand up to max_n records to `sink` in ring
 * order, then free what it took.  The sink returns 1 to take a record, 0 to stop
 * before it (it stays in the ring).  Returns how many were taken (> 0) or a
 * negative RTUDP_E* code when none were.
 */
typedef int (*rtudp_mpsc_sink)(void *ctx, const struct rtudp_tx_record *rec,
                               const uint8_t *payload, uint32_t len);
int64_t rtudp_mpsc_drain(struct rtudp_mpsc *r, uint64_t max_n, rtudp_mpsc_sink sink, void *ctx);

#endif /* RTUDP_RING_H */
