/*
 * txstamp.h - per channel: packets sent and waiting for their kernel TX stamp.
 *
 * Lateness is departure - send_at_ns, and the departure is the kernel's software
 * TX stamp when it comes (netio: error queue, matched by tskey), else the time
 * just after the send call once RTUDP_W_STAMP_WAIT_NS has passed without one.
 * netio gives the packets of one socket consecutive keys, so the waiting packets
 * form a run of keys: a circular array indexed by key - first_key, no search.
 * Each packet's lateness is recorded exactly once, into block->tx_lateness (and, if
 * late, block->late by its cause), when its stamp arrives, when it times out, or when
 * the channel closes (inside a send batch: the histogram's record at the batch's
 * end, histbatch.h).
 *
 * Not thread-safe: owned by the TX thread, which writes the TX counters.
 */
#ifndef RTUDP_TXSTAMP_H
#define RTUDP_TXSTAMP_H

#include <stdint.h>

#include "histbatch.h"
#include "rtudp_shm.h"
#include "tap.h"

struct rtudp_txstamp_entry {
    int64_t send_at_ns;
    int64_t sent_ns;        /* just after the send call */
    int64_t departed_ns;    /* the kernel's stamp; 0 while waiting */
    uint64_t packets;       /* datagrams the key stands for (a GSO send: several) */
    int arrived_late;       /* they came late (a GSO run never mixes: txsend.c) */
    struct rtudp_tap_mark tap; /* their copies in the TX tap ring, published with the
                                  departure when the entry resolves (tap.h) */
};

struct rtudp_txstamps {
    struct rtudp_txstamp_entry *e;
    uint32_t capacity;      /* a power of two */
    uint32_t first;         /* index of the oldest entry */
    uint32_t len;
    uint32_t first_key;     /* tskey of e[first] */
    int64_t wait_ns;        /* how long a stamp is waited for */
    uint64_t stamped;       /* resolved by a kernel stamp */
    uint64_t timed_out;     /* resolved by sent_ns */
    uint64_t unmatched;     /* stamps for no waiting packet */
    struct rtudp_tap *tap;  /* the channel's TX tap (NULL: none) */
    struct rtudp_worker_slot *worker; /* its departures are counted there too (NULL: none) */
    struct rtudp_histbatch *late_batch; /* lateness goes there while it is open (NULL: none) */
};

/* look_ns of a worker woken from a park on its bell (rtudp_tx_in_time_by) */
#define RTUDP_TX_LOOK_PARKED INT64_MIN

/*
 * The earliest deadline a record the worker takes now was queued in time for: one spin
 * margin (the least lead a parked worker needs) after the record came into the ring.
 * When it came the worker knows only so far:
 *  - running, it came after `look_ns`, the last clock at which the worker found no
 *    record waiting (its previous read of the rings, a step of a spin).  A worker that
 *    stalls while running (a host pause, a backlog of sends) so keeps its lateness;
 *  - parked on its bell (look_ns == RTUDP_TX_LOOK_PARKED) for a deadline at
 *    `parked_to_ns`, a producer rang at once for a record due before that, and the
 *    first to ring stamped the bell (`rung_ns`): that record came by the stamp and the
 *    later ones after it, however late the worker woke.  Without a stamp (woken by a
 *    command or a timeout) what it takes came about when it is taken (`now`).  A
 *    record due at or after parked_to_ns rang no bell: the worker was to be awake by
 *    then.
 */
static inline int64_t rtudp_tx_in_time_by(int64_t look_ns, int64_t parked_to_ns,
                                          int64_t rung_ns, int64_t now, int64_t margin_ns)
{
    if (look_ns != RTUDP_TX_LOOK_PARKED)
        return look_ns + margin_ns;
    int64_t by = (rung_ns > 0 && rung_ns < now ? rung_ns : now) + margin_ns;
    return parked_to_ns < by ? parked_to_ns : by;
}

/* whether a record asking for `asked_ns` (0: now) and taken by a worker to which a
 * deadline before `in_time_by` (rtudp_tx_in_time_by) came too late arrived late: its
 * lateness is then the submitter's (rtudp_shm.h, struct rtudp_tx_late) */
static inline int rtudp_tx_arrived_late(int64_t asked_ns, int64_t in_time_by)
{
    return asked_ns != 0 && asked_ns < in_time_by;
}

/* `packets` datagrams left `late_ns` after their deadline: if that is late
 * (RTUDP_TX_LATE_NS), count them as late on arrival or sent late: 1 if sent late (the
 * worker's).  A pure function of its arguments and *l (the TX thread is its only
 * writer) */
int rtudp_tx_late_count(struct rtudp_tx_late *l, int64_t late_ns, int arrived_late,
                        uint64_t packets);

/* capacity rounded up to a power of two; RTUDP_EINVAL / RTUDP_ESYS */
int rtudp_txstamps_init(struct rtudp_txstamps *s, uint32_t capacity, int64_t wait_ns);
void rtudp_txstamps_free(struct rtudp_txstamps *s);
/* `packets` datagrams (1, or a GSO send's) with the same deadline went under key
 * `key`; their lateness is recorded once per datagram, and what `tap` staged of them
 * published with their departure, in key order.  Keys out of sequence (a reset
 * socket) or a full array resolve the older entries with their send times first. */
void rtudp_txstamps_sent(struct rtudp_txstamps *s, struct rtudp_channel_block *b, uint32_t key,
                         int64_t send_at_ns, int64_t sent_ns, uint64_t packets, int arrived_late,
                         const struct rtudp_tap_mark *tap);
/* the kernel stamped `key` at mono_ns (CLOCK_MONOTONIC) */
void rtudp_txstamps_stamp(struct rtudp_txstamps *s, struct rtudp_channel_block *b, uint32_t key,
                          int64_t mono_ns);
/* resolve what waited wait_ns or more by now with its send time */
void rtudp_txstamps_expire(struct rtudp_txstamps *s, struct rtudp_channel_block *b, int64_t now);
/* resolve everything still waiting with its send time (the channel is closing) */
void rtudp_txstamps_flush(struct rtudp_txstamps *s, struct rtudp_channel_block *b);
/* when the oldest waiting packet times out; INT64_MAX when none waits */
int64_t rtudp_txstamps_deadline(const struct rtudp_txstamps *s);
/* record one departure without waiting for a stamp (sockets without TX stamps): its
 * lateness (through s->late_batch while it is open), and whose it is if late (in b,
 * and in s->worker's totals) */
void rtudp_txstamps_record(const struct rtudp_txstamps *s, struct rtudp_channel_block *b,
                           int64_t send_at_ns, int64_t departed_ns, int kernel,
                           uint64_t packets, int arrived_late);

#endif /* RTUDP_TXSTAMP_H */
