/*
 * udt_hs.h - the UDT4 connection handshake as pure state machines: a parsed
 * packet + the state + now -> the packet to send (if any) + the new state.
 *
 * Client (libudt CUDT::connect):
 *   sends a request (connection type 1, cookie 0, destination id 0) every
 *   250 ms; the server answers with the same handshake and a SYN cookie (type
 *   still 1, sent to the client's socket id); the client repeats its request
 *   with type -1 and the cookie; the server answers -1 with its socket id, the
 *   negotiated MSS (the smaller one) and the client's initial sequence number
 *   (the accepting side adopts it: both directions start at the client's ISN).
 *   1002 is a rejection.  Gives up after 3 s (configurable).
 * Listener (libudt CUDT::listen(addr, packet)): stateless - no memory is spent
 *   before the client proved it receives at its address.  A type 1 request
 *   gets the cookie; a type -1 request with a cookie of this or the previous
 *   time slice (60 s) is checked for version 4 and our socket type (else 1002)
 *   and accepted; the caller creates the connection (or finds the existing
 *   one, for a repeated request) and sends udt_hs_build_response().
 *   libudt's cookie is MD5("host:port:minute") with no secret, so anyone can
 *   compute it; ours is SipHash-2-4 keyed with the listener's 128-bit secret
 *   over (address, port, time slice).  The cookie is opaque to the client, so
 *   this is wire compatible.
 * Rendezvous (both sides connect to each other):
 *   both send type 0 (destination 0 until the peer's id is known); whoever
 *   receives a 0 (or sends 0 and receives anything) switches to -1 and
 *   answers at once; a -1 (or -2) received while ours is -1 completes.  A side
 *   that is already connected answers further handshakes with -2
 *   (udt_hs_connected_reply); a data packet or keep-alive from the peer after
 *   a real handshake from it also completes (the peer is connected).  As in
 *   libudt, a side whose -1 was the last packet the peer needed completes
 *   only on the peer's -2 to its next retry (250 ms) or on the peer's
 *   traffic: a peer that closes at once leaves it to time out.
 *
 * Stricter than libudt, on purpose (each is a hostile-input guard): a response
 * whose ISN is not ours is ignored (libudt fails the connect: a spoofed packet
 * could abort it); a handshake with MSS below 76 (28 + 48, libudt's own
 * minimum) or above 65535, or a flow window of 0, is ignored; the peer's flow
 * window is clamped to our max_flow_window (it sizes our loss lists); a
 * rendezvous peer of another socket type or version is rejected with 1002
 * (libudt does not check in rendezvous).  A reply from a connected socket
 * carries version and socket type (libudt leaves them 0).
 *
 * All state is plain data (no pointers) so it can live in shared memory.
 * Control packets carry timestamp 0, as libudt's.
 */
#ifndef RTUDP_UDT_HS_H
#define RTUDP_UDT_HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "udt_wire.h"

#define UDT_MIN_MSS 76u     /* 28 (IP + UDP) + 48 (handshake) */
#define UDT_MAX_MSS 65535u
#define UDT_COOKIE_SLICE_US 60000000ull
#define UDT_HS_OUT_MAX (UDT_HDR_LEN + UDT_HS_LEN)  /* every handshake packet: 64 bytes */

/* A peer's address, as the socket layer saw it. */
struct udt_addr {
    uint8_t family;   /* 4 or 6 */
    uint8_t ip[16];   /* network order; IPv4 in the first 4 */
    uint16_t port;    /* host order */
};

/* What this side offers. */
struct udt_hs_config {
    uint32_t sock_type;        /* UDT_SOCK_STREAM / UDT_SOCK_DGRAM */
    uint32_t mss;              /* bytes incl. IP + UDP (libudt default 1500) */
    uint32_t flow_window;      /* what we can receive, packets (libudt: min(rcvbuf, flight flag) = 8192) */
    uint32_t max_flow_window;  /* clamp for the peer's (0: no clamp beyond 2^30) */
    uint32_t sock_id;          /* ours, nonzero */
    uint32_t isn;              /* ours, 31 bits (the caller picks it at random) */
    uint64_t timeout_us;       /* connect: 0 = 3 s (rendezvous 30 s) */
};

/* What a completed handshake settled. */
struct udt_hs_result {
    uint32_t peer_id;
    uint32_t isn_send;         /* first sequence number we send */
    uint32_t isn_recv;         /* first sequence number we receive */
    uint32_t mss;
    uint32_t peer_flow_window; /* how much we may have in flight */
    uint32_t self_ip[4];       /* our address as the peer saw it (handshake words) */
};

/* ------------------------------------------------------------ connecting side */

enum udt_hs_state {
    UDT_HSS_IDLE = 0,
    UDT_HSS_REQUEST = 1,    /* client: type 1 sent, waiting for the cookie; rendezvous: 0 sent */
    UDT_HSS_RESPONSE = 2,   /* client: -1 with cookie sent; rendezvous: -1 sent */
    UDT_HSS_CONNECTED = 3,
    UDT_HSS_REJECTED = 4,   /* 1002 received (or sent: rendezvous type mismatch) */
    UDT_HSS_TIMEOUT = 5,
};

struct udt_hs_conn {
    struct udt_hs_config cfg;
    bool rendezvous;
    uint8_t state;            /* enum udt_hs_state */
    struct udt_handshake req; /* what we send */
    struct udt_handshake res; /* the peer's last handshake */
    bool have_res;
    uint32_t req_dst;         /* destination id of our requests */
    uint64_t last_send_us;
    uint64_t deadline_us;
    uint32_t ignored;         /* packets ignored (wrong cookie/ISN/fields/kind) */
    struct udt_hs_result result; /* valid in UDT_HSS_CONNECTED */
};

/* Start connecting to `peer` (its address goes into our request).  Writes the
 * first request to out (cap >= UDT_HS_OUT_MAX): returns its length, or
 * UDT_E_ARG (bad config) / UDT_E_NOSPACE. */
int udt_hs_connect(struct udt_hs_conn *c, const struct udt_hs_config *cfg, bool rendezvous,
                   const struct udt_addr *peer, uint64_t now_us, uint8_t *out, size_t cap);
/* A packet from the peer's address, parsed.  Returns the length of the packet
 * to send now (0: none) or a negative enum udt_status; c->state tells the
 * outcome. */
int udt_hs_on_packet(struct udt_hs_conn *c, const struct udt_pkt *pkt, uint64_t now_us, uint8_t *out,
                     size_t cap);
/* Time passed: resends the request every 250 ms, times out at the deadline.
 * Returns the length to send (0: none). */
int udt_hs_on_timer(struct udt_hs_conn *c, uint64_t now_us, uint8_t *out, size_t cap);
/* When the next call to udt_hs_on_timer has something to do. */
uint64_t udt_hs_next_timer_us(const struct udt_hs_conn *c);

/* ------------------------------------------------------------ listener */

struct udt_hs_listener {
    struct udt_hs_config cfg; /* sock_id and isn unused: each accepted connection has its own */
    uint8_t secret[16];
    uint64_t start_us;
};

enum udt_listen_result {
    UDT_LS_IGNORE = 0,  /* nothing to do (wrong cookie, not a request, bad fields) */
    UDT_LS_COOKIE = 1,  /* out holds the cookie reply */
    UDT_LS_REJECT = 2,  /* out holds the 1002 reply */
    UDT_LS_ACCEPT = 3,  /* *acc filled: create (or find) the connection, send udt_hs_build_response */
};

struct udt_hs_accept {
    uint32_t peer_id;          /* the client's socket id */
    uint32_t isn;              /* the client's ISN: both directions use it */
    uint32_t mss;              /* negotiated: the smaller */
    uint32_t peer_flow_window; /* clamped */
    uint32_t cookie;
    uint32_t self_ip[4];       /* our address as the client saw it */
    uint32_t peer_ip[4];       /* the client's address as we saw it (goes back in the response) */
};

int udt_hs_listener_init(struct udt_hs_listener *l, const struct udt_hs_config *cfg,
                         const uint8_t secret[16], uint64_t now_us);
/* A handshake that arrived at the listener (destination id 0) from `from`.
 * Returns enum udt_listen_result; *out_len is the reply's length (0: none). */
int udt_hs_listen(const struct udt_hs_listener *l, const struct udt_ctrl *hs_pkt,
                  const struct udt_addr *from, uint64_t now_us, uint8_t *out, size_t cap,
                  int *out_len, struct udt_hs_accept *acc);
/* The cookie the listener expects from `from` in the time slice of now_us. */
uint32_t udt_hs_cookie(const struct udt_hs_listener *l, const struct udt_addr *from, uint64_t now_us);
/* The -1 response of an accepted connection (also for a repeated request). */
int udt_hs_build_response(uint8_t *out, size_t cap, const struct udt_hs_listener *l, uint32_t sock_id,
                          const struct udt_hs_accept *acc);
/* The result the accepting side uses for its connection. */
void udt_hs_accept_result(const struct udt_hs_listener *l, const struct udt_hs_accept *acc,
                          struct udt_hs_result *out);

/* ------------------------------------------------------------ connected */

/* A handshake reached a connected socket (libudt processCtrl): the peer has
 * not heard our answer.  Writes a reply (-1, or -2 for rendezvous) when one
 * is due; returns its length or 0. */
int udt_hs_connected_reply(const struct udt_hs_config *cfg, bool rendezvous,
                           const struct udt_hs_result *res, const struct udt_handshake *in,
                           uint8_t *out, size_t cap);

/* SipHash-2-4 (64-bit output) of msg under a 128-bit key: the cookie's PRF. */
uint64_t udt_siphash24(const uint8_t key[16], const uint8_t *msg, size_t len);

#endif
