/*
 * udt_wire.h - UDT4 packets on the wire (UDT 4.11 as libudt sends them):
 * parse and build the 16-byte header, data packets and every control packet.
 *
 * Why a module of its own: everything a UDT peer (or an attacker) sends goes
 * through udt_parse() first, so this is the one place that bounds-checks the
 * network.  It never copies and never trusts a length: each way a datagram can
 * be malformed has its own error code (counters and logs can say what was
 * wrong), and a packet that parses is structurally sound - every field the
 * rest of the library reads exists and is in range.  Semantic checks (is this
 * ACK inside my send window?) belong to the caller.
 *
 * The format (all words big-endian):
 *   word 0  data:    0 | sequence number (31 bits)
 *           control: 1 | type (15 bits) | extended type (16 bits)
 *   word 1  data:    boundary (2 bits: 10 first, 01 last, 11 solo, 00 middle)
 *                    | in-order (1 bit) | message number (29 bits)
 *           control: additional info (ACK number for ACK and ACK2, message
 *                    number for a drop request, error code for an error)
 *   word 2  timestamp, microseconds since the sender's socket opened (libudt
 *           sends 0 in control packets)
 *   word 3  destination socket id (0: a connection request)
 * Control bodies, by type:
 *   0 handshake   48 bytes: version, socket type, initial seq, MSS, flow
 *                 window, connection type, socket id, SYN cookie, peer IP
 *                 (4 words; see udt_hs_ip_* for its byte order)
 *   1 keep-alive, 4 congestion warning, 5 shutdown, 6 ACK2, 8 error:
 *                 no information; libudt sends a 4-byte zero pad (we send it
 *                 too and accept 0 or 4 bytes)
 *   2 ACK         4 bytes (light: ack seq), 16 (+ RTT, RTT variance, available
 *                 buffer) or 24 (+ receive rate, link capacity)
 *   3 NAK         loss list words: a word with the top bit set starts an
 *                 inclusive range, the next word ends it; else a single loss
 *   7 drop req.   first and last sequence number of the dropped message
 *   0x7FFF user   extended type says what; the body is the user's
 */
#ifndef RTUDP_UDT_WIRE_H
#define RTUDP_UDT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UDT_HDR_LEN 16u
#define UDT_HS_LEN 48u        /* handshake body */
#define UDT_PAD_LEN 4u        /* the zero pad of types 1, 4, 5, 6, 8 */
#define UDT_ACK_LIGHT_LEN 4u
#define UDT_ACK_SHORT_LEN 16u
#define UDT_ACK_FULL_LEN 24u
#define UDT_DROP_LEN 8u
#define UDT_VERSION 4u

/* UDP payload budget: libudt's MSS counts the IP (20) and UDP (8) headers */
#define UDT_MSS_OVERHEAD 28u

enum udt_ctrl_type {
    UDT_CT_HANDSHAKE = 0,
    UDT_CT_KEEPALIVE = 1,
    UDT_CT_ACK = 2,
    UDT_CT_NAK = 3,
    UDT_CT_CONGESTION = 4,
    UDT_CT_SHUTDOWN = 5,
    UDT_CT_ACK2 = 6,
    UDT_CT_DROPREQ = 7,
    UDT_CT_ERROR = 8,
    UDT_CT_USER = 0x7FFF,
};

/* data packet boundary bits (word 1, top two) */
enum udt_boundary {
    UDT_PB_MIDDLE = 0,
    UDT_PB_LAST = 1,
    UDT_PB_FIRST = 2,
    UDT_PB_SOLO = 3,
};

/* handshake socket types and connection types */
enum { UDT_SOCK_STREAM = 1, UDT_SOCK_DGRAM = 2 };
enum udt_conn_type {
    UDT_HS_REQUEST = 1,
    UDT_HS_RESPONSE = -1,
    UDT_HS_RENDEZVOUS = 0,
    UDT_HS_RENDEZVOUS_REPLY = -2,
    UDT_HS_REJECT = 1002,
};

enum udt_status {
    UDT_OK = 0,
    UDT_E_SHORT = -1,   /* shorter than the 16-byte header */
    UDT_E_TRUNC = -2,   /* control body shorter than its type needs (or a length it cannot have) */
    UDT_E_LONG = -3,    /* control body longer than its type allows */
    UDT_E_TYPE = -4,    /* unknown control type */
    UDT_E_RANGE = -5,   /* a field out of range (a sequence number with bit 31 set, a negative rate) */
    UDT_E_NAK = -6,     /* malformed loss list: range start without its end, end before start */
    UDT_E_ARG = -7,     /* build: an argument out of range */
    UDT_E_NOSPACE = -8, /* build: output buffer too small */
    UDT_E_FULL = -9,    /* a bounded structure is full (loss lists) */
};

/* Data packet header (payload follows at offset 16). */
struct udt_data {
    uint32_t seq;        /* 31 bits */
    uint8_t boundary;    /* enum udt_boundary */
    bool inorder;
    uint32_t msgno;      /* 29 bits */
    uint32_t timestamp;  /* µs */
    uint32_t dst_id;
    uint32_t payload_len;/* parse only: bytes after the header */
};

/* Handshake body, fields as the peer's libudt has them (int32 on the wire). */
struct udt_handshake {
    uint32_t version;
    uint32_t sock_type;    /* UDT_SOCK_STREAM / UDT_SOCK_DGRAM (any value parses) */
    uint32_t isn;          /* 31 bits */
    uint32_t mss;          /* bytes incl. IP + UDP headers */
    uint32_t flow_window;  /* packets */
    int32_t conn_type;     /* enum udt_conn_type (any value parses) */
    uint32_t sock_id;
    uint32_t cookie;
    uint32_t peer_ip[4];   /* the four words as on the wire (see udt_hs_ip_*) */
};

enum udt_ack_kind { UDT_ACK_LIGHT = 0, UDT_ACK_SHORT = 1, UDT_ACK_FULL = 2 };

/* ACK body; the ACK number is the control header's info word. */
struct udt_ack {
    uint8_t kind;          /* enum udt_ack_kind (the body length) */
    uint32_t ack_seq;      /* first sequence number not received */
    uint32_t rtt_us;       /* short and full */
    uint32_t rtt_var_us;
    uint32_t avail_buf;    /* packets */
    uint32_t rcv_rate;     /* full: packets per second */
    uint32_t capacity;     /* full: packets per second (probe pairs) */
};

/* A parsed control packet. */
struct udt_ctrl {
    uint16_t type;         /* enum udt_ctrl_type */
    uint16_t ext_type;     /* low 16 bits of word 0 (user packets' subtype) */
    uint32_t info;         /* additional info (word 1) */
    uint32_t timestamp;
    uint32_t dst_id;
    uint32_t body_off;     /* body in the packet: offset 16 */
    uint32_t body_len;
    union {
        struct udt_handshake hs;
        struct udt_ack ack;
        struct {
            uint32_t nwords;       /* loss list words, read with udt_nak_word() */
        } nak;
        struct {
            uint32_t msgno;        /* info & 29 bits */
            uint32_t first, last;  /* sequence numbers */
        } drop;
    } u;
};

/* Any packet: is_ctrl says which member is valid. */
struct udt_pkt {
    bool is_ctrl;
    struct udt_data data;
    struct udt_ctrl ctrl;
};

/* Parse a datagram.  UDT_OK or a negative enum udt_status. */
int udt_parse(const uint8_t *p, size_t len, struct udt_pkt *out);
int udt_parse_data(const uint8_t *p, size_t len, struct udt_data *out);
int udt_parse_ctrl(const uint8_t *p, size_t len, struct udt_ctrl *out);
/* The destination socket id of anything at least 16 bytes long (for the
 * demultiplexer, before a full parse); UDT_E_SHORT otherwise. */
int udt_peek_dst(const uint8_t *p, size_t len, uint32_t *dst_id);
/* Loss-list word i (0 <= i < nwords) of a parsed NAK, host order. */
uint32_t udt_nak_word(const uint8_t *p, const struct udt_ctrl *c, uint32_t i);

/* Builders: write into out[0..cap), return the packet length or a negative
 * enum udt_status.  Timestamps are the caller's (libudt sends 0 in control). */
int udt_build_data_hdr(uint8_t *out, size_t cap, const struct udt_data *d);
int udt_build_data(uint8_t *out, size_t cap, const struct udt_data *d, const uint8_t *payload,
                   size_t payload_len);
int udt_build_handshake(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts,
                        const struct udt_handshake *hs);
/* types with no information: keep-alive, congestion warning, shutdown (pad) */
int udt_build_empty(uint8_t *out, size_t cap, uint16_t type, uint32_t dst_id, uint32_t ts);
int udt_build_ack(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint32_t ackno,
                  const struct udt_ack *a);
int udt_build_ack2(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint32_t ackno);
int udt_build_nak(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, const uint32_t *words,
                  size_t nwords);
int udt_build_dropreq(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint32_t msgno,
                      uint32_t first, uint32_t last);
int udt_build_error(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint32_t code);
int udt_build_user(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint16_t subtype,
                   uint32_t info, const uint8_t *body, size_t body_len);

/* Validate a loss list (host-order words): every range start has its end,
 * start <= end (sequence order), no word of a range end or single loss has bit
 * 31 set.  UDT_OK or UDT_E_NAK. */
int udt_nak_check(const uint32_t *words, size_t nwords);

/* The peer IP words of a handshake.  libudt fills them from the sockaddr as
 * host integers and the header conversion swaps each word: on the wire each
 * group of 4 address bytes is reversed (127.0.0.1 goes out as 01 00 00 7f,
 * x86 libudt, which is what peers run).  family 4: addr is 4 bytes, words
 * 1-3 are 0; family 6: addr is 16 bytes.  A family other than 4 or 6 is
 * UDT_E_ARG. */
int udt_hs_ip_from_addr(int family, const uint8_t *addr, uint32_t words[4]);
int udt_hs_ip_to_addr(int family, const uint32_t words[4], uint8_t *addr);

const char *udt_strerror(int code);
const char *udt_ctrl_name(uint16_t type);

/* Big-endian access; packet buffers have no alignment. */
static inline uint32_t udt_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void udt_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif
