/*
 * udt_area.h - the udt channel kind's shared state (docs/udt.md).
 *
 * A udt channel is one UDP port on which many UDT sockets are demultiplexed by
 * socket id, as libudt does.  Its kind area holds everything of every socket, so a
 * worker that dies is replaced by one that carries on from the same bytes:
 *
 *   struct rtudp_udt_area    configuration, counters, the clients' doorbell
 *   max_socks x socket       each socket_stride bytes, at area + socks_off:
 *     struct rtudp_udt_sock  what clients and the worker tell each other
 *     connection state       the worker's only (struct udt_conn, proto/udt_conn.h):
 *                            handshake, timers, congestion control, ACK and packet
 *                            windows, both loss lists; plain data, no pointers
 *     send buffer            buf_pkts slots (struct rtudp_udt_slot + payload)
 *     receive buffer         buf_pkts slots
 *
 * Who writes what.  A socket's `cli` line is written by clients (Python, through
 * the functions below), its `wrk` line by the worker; both read both.  The send
 * buffer is a ring of packets: a client writes slot snd_head % buf_pkts and then
 * publishes snd_head (release); the worker reads slots below snd_head and frees
 * them by publishing snd_acked once the peer acknowledged them.  The receive
 * buffer is indexed by sequence number: the worker writes each arriving packet
 * into its slot and publishes rcv_ready, the count of packets received without a
 * gap; a client reads slots below rcv_ready and publishes rcv_read.
 *
 * Requests (listen, connect, close) and "data queued" go to the worker as small
 * records on the channel's TX ring, which is what wakes its TX thread; the RX
 * thread puts each received datagram on the same ring, so every UDT packet is
 * handled by the TX thread alone, in arrival order.
 */
#ifndef RTUDP_UDT_AREA_H
#define RTUDP_UDT_AREA_H

#include <stdint.h>

#include "ring.h"
#include "rtudp_shm.h"

/* BEGIN CDEF */
#define RTUDP_UDT_MAGIC 0x3154445550545255       /* "RTUPUDT1" */
#define RTUDP_UDT_PAYLOAD_MAX 1456                 /* bytes a slot holds: MSS 1500 - 28 - 16 */
#define RTUDP_UDT_ACCEPT_Q 64                      /* pending accepted sockets of a listener */

/* socket states: UDT's UDTSTATUS values */
#define RTUDP_UDT_INIT 1
#define RTUDP_UDT_OPENED 2
#define RTUDP_UDT_LISTENING 3
#define RTUDP_UDT_CONNECTING 4
#define RTUDP_UDT_CONNECTED 5
#define RTUDP_UDT_BROKEN 6
#define RTUDP_UDT_CLOSING 7
#define RTUDP_UDT_CLOSED 8
#define RTUDP_UDT_NONEXIST 9

/* socket types */
#define RTUDP_UDT_STREAM 1
#define RTUDP_UDT_DGRAM 2

/* congestion controls (config cc) */
#define RTUDP_UDT_CC_DAIMD 0
#define RTUDP_UDT_CC_LT 1

/* struct rtudp_udt_sock.claim */
#define RTUDP_UDT_FREE 0
#define RTUDP_UDT_CLAIMED 1                        /* a client's socket */
#define RTUDP_UDT_ACCEPTED 2                       /* made by the worker for a listener */

/* errors a socket ends with (wrk.error): UDT's codes */
#define RTUDP_UDT_ECONNREJ 1002
#define RTUDP_UDT_ENOSERVER 1001
#define RTUDP_UDT_ECONNLOST 2001
#define RTUDP_UDT_ENOCONN 2002

/* TX ring records (the worker's requests): struct rtudp_udt_req, then for RX the
 * datagram */
#define RTUDP_UDT_REQ_KICK 1                       /* data queued on sock */
#define RTUDP_UDT_REQ_LISTEN 2
#define RTUDP_UDT_REQ_CONNECT 3                    /* cli.peer, cli.rendezvous, sock_type */
#define RTUDP_UDT_REQ_CLOSE 4
#define RTUDP_UDT_REQ_RX 5                         /* a received datagram (RX thread) */
#define RTUDP_UDT_REQ_RECV_FREED 6                 /* a client freed receive buffer room */

/* slot flags */
#define RTUDP_UDT_SLOT_DROPPED 1                   /* receive: the message was dropped */
#define RTUDP_UDT_SLOT_TAKEN 2                     /* receive: read ahead of its turn (a
                                                    * message sent with in-order clear) */

struct rtudp_udt_req {
    uint32_t op;                                   /* RTUDP_UDT_REQ_* */
    uint32_t sock;                                 /* socket index; RX: when the datagram
                                                    * arrived, CLOCK_MONOTONIC µs mod 2^32
                                                    * with bit 0 set (0: not known) */
    struct rtudp_sockaddr src;                     /* RX: where the datagram came from */
};

struct rtudp_udt_config {
    uint64_t magic;                                /* written last by the supervisor */
    uint32_t max_socks;
    uint32_t buf_pkts;                             /* slots of each send/receive buffer */
    uint32_t mss;                                  /* bytes incl. IP + UDP (1500) */
    uint32_t cc;                                   /* RTUDP_UDT_CC_* */
    uint64_t broken_us;                            /* silence that breaks a connection */
    uint64_t socks_off;                            /* first socket from the area's start */
    uint64_t sock_stride;                          /* bytes of one socket */
    uint64_t conn_off;                             /* in a socket: the worker's state */
    uint64_t snd_off;                              /* in a socket: the send buffer */
    uint64_t rcv_off;                              /* in a socket: the receive buffer */
    uint32_t slot_bytes;                           /* one buffer slot */
    uint32_t nak_floor_us;                         /* periodic NAK at least this often */
};

struct rtudp_udt_slot {
    uint64_t tag;                                  /* receive: index + 1 once filled;
                                                    * send (the worker's): when it last
                                                    * left, µs << 1 | 1 if resent */
    uint32_t len;                                  /* payload bytes */
    uint32_t msg;                                  /* data word 1: boundary, in-order, msgno */
    uint64_t born_us;                              /* send: when queued (TTL); receive,
                                                    * empty: its loss last reported */
    uint32_t ttl_ms;                               /* send: 0 = forever */
    uint32_t flags;                                /* RTUDP_UDT_SLOT_* */
};

/* counters: the worker's, described once in RTUDP_UDT_AREA_COUNTERS */
struct rtudp_udt_counters {
    uint64_t rx_datagrams;                         /* UDT packets handled */
    uint64_t rx_malformed;                         /* datagrams that do not parse */
    uint64_t rx_unknown;                           /* for no socket of ours / wrong source */
    uint64_t rx_dropped;                           /* lost: TX ring full */
    uint64_t tx_data;                              /* data packets sent (incl. retransmitted) */
    uint64_t tx_retrans;                           /* of them, retransmissions */
    uint64_t tx_ctrl;                              /* control packets sent */
    uint64_t rx_data;                              /* data packets received */
    uint64_t rx_dup;                               /* of them, duplicates or late */
    uint64_t rx_no_room;                           /* of them, dropped: receive buffer full */
    uint64_t naks_sent;
    uint64_t naks_recv;
    uint64_t acks_sent;
    uint64_t acks_recv;
    uint64_t handshakes;                           /* handshake packets received */
    uint64_t accepted;                             /* connections accepted by listeners */
    uint64_t connected;                            /* connections established (all roles) */
    uint64_t broken;                               /* connections broken (EXP, peer gone) */
    uint64_t msgs_dropped;                         /* messages dropped by TTL (sent + received) */
    uint64_t open_socks;                           /* sockets in use now (gauge) */
    uint64_t restarts;                             /* workers that took the area over */
    uint64_t orphans;                              /* sockets closed: their process died */
    uint64_t drops_ignored;                        /* drop requests refused (stream, out of range) */
    uint64_t hs_refused;                           /* handshakes a listener ignored */
};

struct rtudp_udt_area {
    struct rtudp_udt_config config;                /* line 0-1: the supervisor's, read-only */
    uint8_t pad0[48];
    struct rtudp_udt_counters cnt;                 /* TX thread (rx_dropped: RX thread) */
    struct rtudp_doorbell bell;                    /* rung by the worker when a socket moved */
    uint64_t events;                               /* bumped with each ring */
    uint64_t secret_set;                           /* the listener secret is chosen */
    uint8_t secret[16];                            /* SYN cookie key (getrandom) */
    uint8_t pad1[32];
};

/* What a client writes of a socket (one line, claim taken by CAS). */
struct rtudp_udt_cli {
    uint32_t claim;                                /* RTUDP_UDT_FREE / CLAIMED / ACCEPTED */
    uint32_t sock_type;                            /* RTUDP_UDT_STREAM / DGRAM */
    uint32_t rendezvous;
    uint32_t close_req;                            /* the client closed it */
    struct rtudp_sockaddr peer;                    /* connect: where to */
    uint64_t snd_head;                             /* packets queued (release) */
    uint64_t rcv_read;                             /* packets consumed (release) */
    uint32_t rcv_off;                              /* bytes consumed of packet rcv_read */
    uint32_t acc_tail;                             /* listener: accepted sockets taken */
    uint32_t backlog;
    uint32_t msgno;                                /* next message number to queue */
    int32_t owner_pid;                             /* the process using it (0: none yet) */
    uint32_t pad;
};

/* What the worker writes of a socket. */
struct rtudp_udt_wrk {
    uint32_t state;                                /* RTUDP_UDT_* */
    uint32_t error;                                /* RTUDP_UDT_E*, 0 none */
    uint32_t sock_id;                              /* our UDT socket id */
    uint32_t peer_id;
    uint32_t payload;                              /* negotiated bytes per data packet */
    uint32_t peer_closed;                          /* shutdown received */
    uint32_t parent;                               /* accepted: listener index + 1 */
    uint32_t acc_head;                             /* listener: accepted sockets queued */
    uint64_t snd_acked;                            /* packets acknowledged: room freed */
    uint64_t rcv_ready;                            /* packets receivable without a gap */
    struct rtudp_sockaddr peer;                    /* connected to */
    uint32_t accept_q[64];                         /* listener: socket indexes */
    /* perfmon (TRACEINFO) */
    uint64_t start_us;
    uint64_t pkt_sent, pkt_recv, pkt_retrans, pkt_snd_loss, pkt_rcv_loss;
    uint64_t ack_sent, ack_recv, nak_sent, nak_recv, snd_drop, rcv_drop;
    uint64_t bytes_sent, bytes_recv;
    double rtt_ms, period_us, cwnd, bandwidth_mbps, recv_rate_mbps;
    uint32_t flow_window, snd_avail_pkts;
    uint64_t events;                               /* bumped (release) each time this
                                                    * socket moved, before bell rings */
};

/* A socket's own doorbell: a client blocked on one socket (send, recv, accept,
 * connect) sleeps on it, so the worker wakes only the threads of the socket that
 * moved; the area's bell is for waits across sockets (epoll, asyncio). */
struct rtudp_udt_sock {
    struct rtudp_udt_cli cli;
    uint8_t pad0[48];
    struct rtudp_udt_wrk wrk;
    uint8_t pad1[16];
    struct rtudp_doorbell bell;                    /* rung after wrk.events moved */
};

/* What a connection's sender waits for (struct udt_conn snd_wait; a row's waits_on):
 * nothing queued; its pacing; its congestion window; the peer's flow window; the
 * peer's receive buffer (full: the peer's reader is behind); a lost packet at the ACK
 * point, resent and not yet acknowledged (the loss list); the acknowledgement of what
 * it sent (all queued data is out). */
enum { RTUDP_UDT_WAIT_NONE = 0, RTUDP_UDT_WAIT_PACING = 1, RTUDP_UDT_WAIT_CWND = 2,
       RTUDP_UDT_WAIT_FLOW = 3, RTUDP_UDT_WAIT_RCVBUF = 4, RTUDP_UDT_WAIT_LOSS = 5,
       RTUDP_UDT_WAIT_ACK = 6 };
/* a row shows a sender as stalled when its ACK point has not moved this long with
 * data queued */
#define RTUDP_UDT_STALL_MS 1000u

/* One socket as stats(), rtstat and Prometheus see it: a copy made by
 * rtudp_udt_conn_row (bounds-checked, every value in range), described once in
 * RTUDP_UDT_CONN_ROW_COUNTERS below.  A row per socket that listens, connects or
 * is (or was) connected. */
struct rtudp_udt_conn_row {
    char peer[64];                                 /* "host:port", "[v6]:port"; "" none */
    uint32_t sock_id;                              /* our UDT socket id */
    uint32_t peer_id;
    uint32_t state;                                /* RTUDP_UDT_* */
    uint32_t sock_type;                            /* RTUDP_UDT_STREAM / DGRAM */
    uint64_t rtt_ns, rtt_var_ns;                   /* smoothed RTT and its variance */
    uint64_t send_period_ns;                       /* pacing: one packet every ... */
    uint64_t send_rate;                            /* ... that is, packets/s */
    uint64_t cwnd;                                 /* congestion window, packets */
    uint64_t flow_window;                          /* the peer's receive room, packets */
    uint64_t rcv_room;                             /* our receive room (last ACK), packets */
    uint64_t unacked;                              /* queued and not yet acknowledged, packets */
    uint64_t pkt_sent, pkt_recv, pkt_retrans, pkt_snd_loss, pkt_rcv_loss;
    uint64_t bytes_sent, bytes_recv, snd_drop, rcv_drop;
    uint64_t stalled_ms;                           /* ACK point still, data queued: this
                                                    * long (0: it moves, or idle) */
    uint32_t stalled;                              /* 1: stalled_ms >= RTUDP_UDT_STALL_MS */
    uint32_t snd_wait;                             /* RTUDP_UDT_WAIT_* */
};

/* row i of a udt kind area (struct rtudp_kind_area.row_at): 1 filled, 0 no row (a
 * free or idle socket), RTUDP_EINVAL past the last socket or a bad area */
int rtudp_udt_conn_row(const void *area, uint64_t area_bytes, uint32_t i, void *row);

/* the area's layout for these settings (config's sizes filled); 0 = fine,
 * RTUDP_EINVAL when they do not fit */
int rtudp_udt_layout(struct rtudp_udt_config *cfg, uint32_t max_socks, uint32_t buf_pkts,
                     uint32_t mss);
uint64_t rtudp_udt_area_bytes(const struct rtudp_udt_config *cfg);
/* the area may be read at all: magic and layout (the worker's open, clients, rtstat) */
int rtudp_udt_check(const struct rtudp_udt_area *a, uint64_t area_bytes, struct rtudp_check *why);
/* socket i of the area, NULL when out of range */
struct rtudp_udt_sock *rtudp_udt_sock_at(struct rtudp_udt_area *a, uint32_t i);
/* slot k (an absolute index) of socket i's send / receive buffer */
struct rtudp_udt_slot *rtudp_udt_snd_slot(struct rtudp_udt_area *a, uint32_t i, uint64_t k);
struct rtudp_udt_slot *rtudp_udt_rcv_slot(struct rtudp_udt_area *a, uint32_t i, uint64_t k);

/* Client calls (Python).  All return >= 0 or a negative RTUDP_* code. */
/* claim a free socket of type t: its index */
int rtudp_udt_claim(struct rtudp_udt_area *a, uint32_t sock_type);
/* queue up to len bytes of stream data: bytes queued (0: the buffer is full) */
int64_t rtudp_udt_put_stream(struct rtudp_udt_area *a, uint32_t i, const uint8_t *buf,
                             uint64_t len);
/* queue one message whole: len, or 0 when the buffer has no room for it yet;
 * RTUDP_EINVAL when it can never fit */
int64_t rtudp_udt_put_msg(struct rtudp_udt_area *a, uint32_t i, const uint8_t *buf, uint64_t len,
                          uint32_t ttl_ms, uint32_t inorder, uint64_t now_us);
/* read up to cap stream bytes: bytes read (0: nothing receivable yet) */
int64_t rtudp_udt_get_stream(struct rtudp_udt_area *a, uint32_t i, uint8_t *buf, uint64_t cap);
/* read the next whole message: its length (the first cap bytes copied; the rest
 * of a longer one is discarded, as UDT's recvmsg), RTUDP_EMPTY: none complete yet.
 * The next in sequence first; when it is not complete, a DGRAM socket's first whole
 * message past the gap whose in-order bit is clear (UDT4's out-of-order delivery:
 * its slots are marked taken, and skipped when the sequence reaches them) */
int64_t rtudp_udt_get_msg(struct rtudp_udt_area *a, uint32_t i, uint8_t *buf, uint64_t cap);
/* take the oldest accepted socket of listener i (a CAS: any thread or process may
 * accept; the caller becomes its owner): its index, RTUDP_EMPTY when none waits */
int rtudp_udt_accept_take(struct rtudp_udt_area *a, uint32_t i);
/* bytes queued and not yet acknowledged / receivable now (a DGRAM socket's: with the
 * first message it may read out of order) */
uint64_t rtudp_udt_snd_pending(struct rtudp_udt_area *a, uint32_t i);
uint64_t rtudp_udt_rcv_pending(struct rtudp_udt_area *a, uint32_t i);
/* wait until events differs from seen or the deadline (CLOCK_MONOTONIC ns); events */
uint64_t rtudp_udt_wait(struct rtudp_udt_area *a, uint64_t seen, int64_t deadline_ns);
/* the same for socket i alone (its wrk.events and bell), or until *cancel (the
 * caller's own word, may be NULL) is nonzero; UINT64_MAX if there is no socket i */
uint64_t rtudp_udt_sock_wait(struct rtudp_udt_area *a, uint32_t i, uint64_t seen,
                             int64_t deadline_ns, const uint32_t *cancel);
/* set *cancel, then ring every socket's bell and the area's: the waits given that
 * word end, the others look and sleep on */
void rtudp_udt_cancel_waits(struct rtudp_udt_area *a, uint32_t *cancel);
/* END CDEF */

_Static_assert(sizeof(struct rtudp_udt_area) == 448, "udt area layout");
_Static_assert(sizeof(struct rtudp_udt_conn_row) == 232, "udt connection row");
_Static_assert(sizeof(struct rtudp_udt_sock) == 704, "udt socket layout");

/* its counters (csrc/kinds.h) */
#define RTUDP_UDT_AREA_COUNTERS(X, SUM)                                                           \
    X(cnt.open_socks, "sockets", GAUGE, "", SHOW, "UDT sockets in use", "", "")                  \
    X(cnt.connected, "connected", COUNTER, "", SHOW, "connections established", "", "")          \
    X(cnt.accepted, "accepted", COUNTER, "", 0, "connections accepted by listeners", "", "")     \
    X(cnt.broken, "broken", COUNTER, "", SHOW, "connections broken (timeout, peer gone)", "", "") \
    X(cnt.tx_data, "data_sent", COUNTER, "packets", SHOW, "data packets sent", "", "")           \
    X(cnt.tx_retrans, "retransmitted", COUNTER, "packets", SHOW,                                 \
      "data packets sent again (NAK or timeout)", "", "")                                        \
    X(cnt.tx_ctrl, "ctrl_sent", COUNTER, "packets", 0, "control packets sent", "", "")           \
    X(cnt.rx_datagrams, "handled", COUNTER, "packets", 0, "UDT packets handled", "", "")          \
    X(cnt.rx_data, "data_received", COUNTER, "packets", SHOW, "data packets received", "", "")   \
    X(cnt.rx_dup, "duplicates", COUNTER, "packets", 0, "data packets received twice or late",   \
      "", "")                                                                                    \
    X(cnt.rx_no_room, "no_room", COUNTER, "packets", 0,                                          \
      "data packets dropped: receive buffer full", "", "")                                       \
    X(cnt.naks_sent, "naks_sent", COUNTER, "packets", SHOW, "loss reports sent", "", "")         \
    X(cnt.naks_recv, "naks_received", COUNTER, "packets", 0, "loss reports received", "", "")    \
    X(cnt.acks_sent, "acks_sent", COUNTER, "packets", 0, "ACKs sent", "", "")                    \
    X(cnt.acks_recv, "acks_received", COUNTER, "packets", 0, "ACKs received", "", "")            \
    X(cnt.handshakes, "handshakes", COUNTER, "packets", 0, "handshake packets received", "", "") \
    X(cnt.msgs_dropped, "msgs_dropped", COUNTER, "", 0, "messages dropped by their TTL", "", "") \
    X(cnt.rx_malformed, "malformed", COUNTER, "packets", 0, "datagrams that are not UDT", "", "") \
    X(cnt.rx_unknown, "unknown", COUNTER, "packets", 0,                                          \
      "packets for no socket of ours, or from another address", "", "")                         \
    X(cnt.rx_dropped, "rx_dropped", COUNTER, "packets", 0,                                       \
      "datagrams lost between the worker's threads (queue full)", "", "")                       \
    X(cnt.restarts, "takeovers", COUNTER, "", 0, "workers that took the sockets over", "", "")   \
    X(cnt.orphans, "orphans", COUNTER, "", 0,                                                     \
      "sockets closed by the worker because their process died", "", "")                        \
    X(cnt.drops_ignored, "drops_ignored", COUNTER, "", 0,                                         \
      "message drop requests refused (a stream socket, or outside the receive window)", "", "")  \
    X(cnt.hs_refused, "hs_refused", COUNTER, "packets", 0,                                       \
      "handshakes a listener ignored: wrong SYN cookie or fields out of range", "", "")

/* a connection's figures (struct rtudp_udt_conn_row), one row per socket */
#define RTUDP_UDT_CONN_ROW_COUNTERS(X, SUM)                                                       \
    X(sock_id, "socket", GAUGE, "id", LABEL, "UDT socket id", "", "")                             \
    X(peer, "peer", TEXT, "", LABEL, "the peer's address", "", "")                               \
    X(state, "state", STATE, "", SHOW, "socket state", "",                                       \
      "none init opened listening connecting connected broken closing closed nonexist")          \
    X(sock_type, "type", STATE, "", LABEL, "socket type", "", "none stream dgram")               \
    X(peer_id, "peer_socket", GAUGE, "id", 0, "the peer's UDT socket id", "", "")                \
    X(rtt_ns, "rtt_ns", GAUGE, "ns", SHOW, "smoothed round-trip time", "", "")                   \
    X(rtt_var_ns, "rtt_var_ns", GAUGE, "ns", SHOW, "round-trip time variance", "", "")           \
    X(send_rate, "send_rate", GAUGE, "packets/s", SHOW,                                          \
      "sending rate the pacing allows", "", "")                                                  \
    X(send_period_ns, "send_period_ns", GAUGE, "ns", 0, "pacing: time between two packets", "", \
      "")                                                                                        \
    X(cwnd, "cwnd", GAUGE, "packets", SHOW, "congestion window", "", "")                         \
    X(flow_window, "flow_window", GAUGE, "packets", SHOW, "the peer's receive room", "", "")     \
    X(rcv_room, "rcv_room", GAUGE, "packets", 0, "our receive room, as last advertised", "", "") \
    X(unacked, "unacked", GAUGE, "packets", SHOW, "queued and not yet acknowledged", "", "")     \
    X(stalled, "stalled", STATE, "", SHOW,                                                       \
      "sending made no progress for a second or more, data queued", "", "no yes")               \
    X(stalled_ms, "stalled_ms", GAUGE, "ms", SHOW,                                               \
      "how long the ACK point has not moved with data queued", "", "")                           \
    X(snd_wait, "waits_on", STATE, "", SHOW, "what the sender waits for", "",                    \
      "nothing pacing cwnd flow_window rcv_buffer loss_list ack")                                \
    X(pkt_sent, "sent", COUNTER, "packets", SHOW, "data packets sent (retransmissions included)", \
      "", "")                                                                                    \
    X(pkt_recv, "received", COUNTER, "packets", SHOW, "data packets received", "", "")           \
    X(pkt_snd_loss, "lost", COUNTER, "packets", SHOW, "sent packets the peer reported lost",     \
      "", "")                                                                                    \
    X(pkt_retrans, "retransmitted", COUNTER, "packets", SHOW, "data packets sent again", "", "") \
    X(pkt_rcv_loss, "rcv_lost", COUNTER, "packets", SHOW, "gaps found in what was received",     \
      "", "")                                                                                    \
    X(bytes_sent, "bytes_sent", COUNTER, "bytes", 0, "payload bytes sent", "", "")               \
    X(bytes_recv, "bytes_received", COUNTER, "bytes", 0, "payload bytes received", "", "")       \
    X(snd_drop, "msgs_dropped_sent", COUNTER, "", 0, "messages dropped by their TTL (sender)",   \
      "", "")                                                                                    \
    X(rcv_drop, "msgs_dropped_received", COUNTER, "", 0,                                         \
      "messages dropped at the sender's request", "", "")

#endif /* RTUDP_UDT_AREA_H */
