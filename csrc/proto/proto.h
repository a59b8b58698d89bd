/*
 * proto.h - what a channel kind (proto/kinds.def) implements for the worker.
 *
 * The worker's loops know no protocol.  They own the sockets, the rings, the timer
 * queue and the two threads, and call a kind's hooks at these points:
 *
 *   open       TX thread, once the common setup is done (segment mapped and
 *              validated, socket set up, kind area found); may set c->state.
 *   tx_record  TX thread, for each committed record taken from the TX ring: fill
 *              the timer (when to send; the payload may be rewritten in place, the
 *              record is the worker's until released).  NULL: the record is the
 *              datagram, sent at its send_at_ns (udp).
 *   tx_timer   TX thread, when c->tx_timer_ns has come (spun for like a timed send):
 *              do the kind's cyclic work, return the next time (RTUDP_PROTO_NEVER).
 *   rx_batch   RX thread, for each batch of datagrams read from the socket.
 *   rx_timer   RX thread, when rx->timer_ns has come (watchdogs, jitter-buffer
 *              playout deadlines); returns the next time.
 *   close      TX thread, after the RX thread has let go of the channel.
 *
 * A kind with `standby` set may also be opened as a standby copy of a channel on a
 * second worker (c->standby: RTUDP_CMD_ADD_STANDBY): only open, tx_timer and close are
 * called, the timer is not spun for, and the copy neither receives nor reads the TX
 * ring; what it may send and how it agrees with the serving worker is the kind's.
 *
 * A NULL hook means the kind has nothing to do there (for tx_record: the record
 * is sent as it is, so the per-record path costs udp no call).  State the two
 * threads share (e.g. Netflux's feedback byte) is the kind's to synchronise, with
 * atomics.
 */
#ifndef RTUDP_PROTO_H
#define RTUDP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "netio.h"
#include "ring.h"
#include "rx_publish.h" /* RTUDP_RX_META_ROOM */
#include "timerq.h"

#define RTUDP_PROTO_NEVER INT64_MAX
#define RTUDP_PROTO_TAKEN 1  /* tx_record: the kind consumed the record */

struct rtudp_worker;
struct rtudp_chan;

struct rtudp_proto {
    uint32_t kind;                                 /* RTUDP_KIND_* */
    const char *name;
    uint64_t area_min;                             /* kind area bytes open needs at least */
    int standby;                                   /* may run as a standby copy (above) */
    int (*open)(struct rtudp_worker *w, struct rtudp_chan *c, char *msg, size_t msglen);
    /* 0: queue *t (send_at_ns, asked_ns, payload, len, flags prefilled from the
     * record as udp sends it); RTUDP_PROTO_TAKEN: the record was the kind's own
     * (a request to it, udt), done with and freed; other nonzero: drop the record
     * (counted in tx_errors) */
    int (*tx_record)(struct rtudp_chan *c, struct rtudp_tx_record *rec, uint32_t len,
                     int64_t now, struct rtudp_timer *t);
    int64_t (*tx_timer)(struct rtudp_worker *w, struct rtudp_chan *c, int64_t now);
    /* pkts[i].buf has RTUDP_RX_META_ROOM bytes free before it (for an RX ring
     * record's meta, so a datagram is published without a copy) */
    void (*rx_batch)(struct rtudp_chan *c, struct rtudp_rx_pkt *pkts, int n);
    int64_t (*rx_timer)(struct rtudp_chan *c, int64_t now);
    void (*close)(struct rtudp_worker *w, struct rtudp_chan *c);
};

/* Where the hooks find the channel (worker.h, struct rtudp_chan): c->proto, c->block
 * (configuration and counters), c->area / c->area_bytes (the kind area in the
 * segment), c->state (the kind's private state), c->fd, c->tx / c->rx.ring.  Hooks
 * of the TX thread may use what the TX thread owns, RX hooks what the RX thread owns
 * (c->rx); c->area and c->state are shared: the kind decides who writes what. */

/* the kind's hooks; NULL for a kind this worker does not serve */
const struct rtudp_proto *rtudp_proto_find(uint32_t kind);

/* the kinds' hooks: rtudp_proto_<name> (proto/<name>.c), one a line of kinds.def */
#define RTUDP_KIND(NAME, name, ...) extern const struct rtudp_proto rtudp_proto_##name;
#include "kinds.def"
#undef RTUDP_KIND

/* udp's rx_batch, for any kind that passes datagrams through as they are: each one
 * an RX ring record (meta written into the room before it), counted, delay recorded */
void rtudp_udp_publish(struct rtudp_chan *c, struct rtudp_rx_pkt *pkts, int n);

/* a close hook for a kind whose c->state is one malloc'd block (or NULL) */
void rtudp_proto_free_state(struct rtudp_worker *w, struct rtudp_chan *c);

/* Defines rtudp_proto_<name>: the code and name come from the kind's kinds.def line
 * (NAME, name), area_min from the kind area's type, then the hooks as designated
 * initialisers: RTUDP_PROTO_DEFINE(RTP, rtp, struct rtudp_rtp_area, .open = rtp_open, ...) */
#define RTUDP_PROTO_DEFINE(NAME, lname, area_type, ...)                                 \
    const struct rtudp_proto rtudp_proto_##lname = {                                  \
        .kind = RTUDP_KIND_##NAME, .name = #lname, .area_min = sizeof(area_type),     \
        __VA_ARGS__}

#endif /* RTUDP_PROTO_H */
