/*
 * udt_conn.h - one UDT socket's protocol state, as the worker keeps it in the kind
 * area (proto/udt_area.h: between a socket's shared lines and its buffers).  Plain
 * data, no pointers, times in CLOCK_MONOTONIC µs: a worker started after a crash
 * continues every connection from it.
 *
 * Sequence numbers and buffer indexes.  Packet k of the send buffer (k counts from
 * 0 over the connection's life) has sequence number isn_send + k; the peer's packet
 * with sequence number isn_recv + k goes to slot k of the receive buffer.  So the
 * send side needs only snd_acked (the shared line) and the sequence number there
 * (snd_last_ack), the receive side rcv_ready and rcv_next.
 */
#ifndef RTUDP_UDT_CONN_H
#define RTUDP_UDT_CONN_H

#include <stdint.h>

#include "udt/udt_cc.h"
#include "udt/udt_hs.h"
#include "udt/udt_losslist.h"
#include "udt/udt_timers.h"
#include "udt/udt_window.h"

struct udt_conn {
    uint32_t role;              /* enum below */
    uint32_t rendezvous;
    struct udt_addr peer;       /* connecting / connected: the peer's address */
    uint64_t start_us;          /* data timestamps count from here */
    uint64_t close_at_us;       /* closing: give up lingering then */
    struct udt_hs_conn hs;      /* connecting side */
    struct udt_hs_listener ls;  /* listener */
    struct udt_hs_result res;   /* connected: what the handshake settled */
    struct udt_hs_accept acc;   /* accepted: the request, for repeated ones */
    uint32_t payload;           /* data bytes per packet */
    uint32_t peer_fw;           /* the peer's flow window (its available buffer) */
    /* send side */
    uint32_t snd_last_ack;      /* sequence number of send packet snd_acked */
    uint32_t snd_curr;          /* last new sequence number sent */
    uint64_t snd_sent;          /* send packets sent at least once (index) */
    uint32_t last_ack2_ackno;
    uint32_t srtt, srtt_var;    /* µs */
    uint32_t delivery_rate, bandwidth;
    struct udt_cc cc;
    /* receive side */
    uint32_t rcv_next;          /* sequence number of receive slot rcv_ready (= ACK point) */
    uint32_t rcv_curr;          /* largest sequence number received */
    uint32_t rcv_last_ack;      /* last ACK sent */
    uint32_t rcv_last_ackack;   /* largest ACK whose ACK2 came */
    uint32_t ackno;
    uint32_t head_resends;      /* stuck-head resends since the ACK point last leapt */
    uint32_t rate_told;         /* a full ACK with a receive rate went out */
    uint32_t nak_held;          /* a loss waits for that ACK to be reported */
    uint64_t next_nak_us;
    struct udt_timers tm;
    struct udt_ackwin aw;
    struct udt_pktwin pw;
    struct udt_hs_config cfg;   /* what we offer (also for replies once connected) */
    double next_send_us;        /* pacing: when the next packet may leave */
    uint32_t last_avail;        /* available buffer in the last ACK */
    uint32_t snd_wait;          /* what the sender waits for: RTUDP_UDT_WAIT_* */
    uint64_t snd_progress_us;   /* the sender last moved then: the ACK point advanced,
                                 * or nothing was queued (a row's stall time) */
};

enum { UDT_ROLE_NONE = 0, UDT_ROLE_LISTENER = 1, UDT_ROLE_CONNECTING = 2,
       UDT_ROLE_CONNECTED = 3, UDT_ROLE_CLOSING = 4, UDT_ROLE_DONE = 5 };

/* loss-list ranges for a span of buf_pkts numbers */
static inline uint32_t udt_conn_ll_cap(uint32_t buf_pkts) { return buf_pkts / 2 + 1; }

static inline uint64_t udt_conn_ll_bytes(uint32_t buf_pkts)
{
    return (sizeof(struct udt_losslist) + (uint64_t)udt_conn_ll_cap(buf_pkts) *
                                              sizeof(struct udt_range) + 63) & ~(uint64_t)63;
}

/* bytes of a socket's connection state, loss lists included */
static inline uint64_t udt_conn_bytes(uint32_t buf_pkts)
{
    return ((sizeof(struct udt_conn) + 63) & ~(uint64_t)63) + 2 * udt_conn_ll_bytes(buf_pkts);
}

/* ------------------------------------------------------------ the worker's side */

struct rtudp_chan;
struct rtudp_udt_area;
struct rtudp_udt_config;
struct rtudp_udt_sock;
struct rtudp_sockaddr;
struct udt_pkt;

/* What the socket code works with during one hook call. */
struct udt_ctx {
    struct rtudp_chan *c;
    struct rtudp_udt_area *a;
    const struct rtudp_udt_config *cfg;  /* the worker's checked copy */
    uint64_t now_us;
    uint64_t rx_us;                      /* the packet being handled arrived then (the
                                          * kernel's stamp; 0: now), for the receive
                                          * speed and RTT samples */
    int moved;                           /* a socket changed: ring the clients' bell */
};

/* when the packet being handled arrived: its stamp, else now */
static inline uint64_t udt_arrival_us(const struct udt_ctx *x)
{
    return x->rx_us && x->rx_us <= x->now_us ? x->rx_us : x->now_us;
}

struct udt_conn *udt_conn_of(const struct udt_ctx *x, uint32_t i);
/* socket i's state (shared memory a client can scribble on) brought back in range:
 * the fields that index, size copies or hold bools and doubles; before each use */
void udt_conn_sane(struct udt_ctx *x, uint32_t i);
/* send one UDT packet to socket i's peer (wrk.peer) or to `to` */
int udt_send_pkt(struct udt_ctx *x, uint32_t i, const uint8_t *p, int len);
int udt_send_to(struct udt_ctx *x, const struct rtudp_sockaddr *to, const uint8_t *p, int len);
/* the handshake is done: socket i is connected with these terms */
void udt_conn_established(struct udt_ctx *x, uint32_t i, const struct udt_hs_result *r);
/* a packet for connected socket i (raw: the datagram, for NAK words) */
void udt_conn_on_packet(struct udt_ctx *x, uint32_t i, const struct udt_pkt *pkt,
                        const uint8_t *raw, uint32_t len);
/* timers and sending of connected (or closing) socket i: the next time, µs */
uint64_t udt_conn_timer(struct udt_ctx *x, uint32_t i);
/* socket i moved (its state, buffers or accept queue): its events bumped and its own
 * bell rung now, the area's bell at the hook's end (x->moved) */
void udt_moved(struct udt_ctx *x, uint32_t i);
/* socket i is done: state (CLOSED frees it for clients), error, the bell */
void udt_sock_finish(struct udt_ctx *x, uint32_t i, uint32_t state, uint32_t error);

#endif /* RTUDP_UDT_CONN_H */
