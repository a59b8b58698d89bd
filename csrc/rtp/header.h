/*
 * header.h - RTP fixed header, CSRC list, header extension and padding
 * (RFC 3550 section 5.1 and 5.3.1), RFC 8285 extension elements: parse and build.
 *
 * Everything read from the network is bounds-checked against the datagram
 * length; each way a datagram can be malformed has its own error code, so a
 * counter or a log line can say exactly what was wrong.  Parsing never copies:
 * offsets into the caller's buffer are returned.
 */
#ifndef RTUDP_RTP_HEADER_H
#define RTUDP_RTP_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTP_HDR_MIN 12u          /* fixed header */
#define RTP_MAX_CSRC 15u         /* CC is 4 bits */
#define RTP_EXT_ONE_BYTE 0xBEDEu /* RFC 8285 4.2 profile id */
#define RTP_EXT_TWO_BYTE_MASK 0xFFF0u
#define RTP_EXT_TWO_BYTE 0x1000u /* RFC 8285 4.3: 0x100 + 4 "appbits" */

enum rtp_status {
    RTP_OK = 0,
    RTP_E_SHORT = -1,       /* shorter than the 12-byte fixed header */
    RTP_E_VERSION = -2,     /* version field is not 2 */
    RTP_E_CSRC = -3,        /* CSRC list runs past the end */
    RTP_E_EXT_HDR = -4,     /* X set but no room for the 4-byte extension header */
    RTP_E_EXT_LEN = -5,     /* extension length runs past the end */
    RTP_E_PAD_ZERO = -6,    /* P set and the padding count (last byte) is 0 */
    RTP_E_PAD_LEN = -7,     /* padding count larger than what follows the headers */
    RTP_E_RTCP = -8,        /* PT 72-76 (second byte 200-204): an RTCP packet (RFC 5761) */
    RTP_E_EXT_ELEM = -9,    /* an RFC 8285 element runs past the extension block */
    RTP_E_ARG = -10,        /* build/generate: an argument out of range */
    RTP_E_NOSPACE = -11,    /* build/generate: output buffer too small */
};

/* A parsed header: numbers in host order, regions as offsets into the packet. */
struct rtp_hdr {
    uint8_t marker, pt, cc, padding, extension;
    uint8_t pad_len;        /* padding bytes at the end (0 without P) */
    uint16_t seq;
    uint32_t ts, ssrc;
    uint32_t csrc[15];
    uint16_t ext_profile;   /* "defined by profile" word, when extension */
    uint16_t ext_words;     /* extension length in 32-bit words */
    uint32_t ext_off;       /* first byte of the extension data (after its header) */
    uint32_t payload_off, payload_len;
};

/* One RFC 8285 element. */
struct rtp_ext_elem {
    uint8_t id;
    uint8_t len;            /* bytes of data */
    uint32_t off;           /* offset of the data in the packet */
};

/* What to build (rtp_build): CSRCs, extension and padding are optional. */
struct rtp_hdr_spec {
    uint8_t marker, pt, cc;
    uint16_t seq;
    uint32_t ts, ssrc;
    const uint32_t *csrc;          /* cc entries */
    const uint8_t *ext;            /* NULL: no extension */
    uint32_t ext_len;              /* bytes, a multiple of 4, <= 4 * 65535 */
    uint16_t ext_profile;
    uint8_t pad_len;               /* 0: no padding, else total padding bytes incl. count */
};

int rtp_parse(const uint8_t *pkt, size_t len, struct rtp_hdr *h);
/* Next element of the extension of a parsed packet; *pos starts at 0.
 * Returns 1 (element in *el), 0 (no more) or RTP_E_EXT_ELEM.  Extensions of
 * other profiles have no elements (0). Padding bytes (id 0) are skipped. */
int rtp_ext_next(const uint8_t *pkt, const struct rtp_hdr *h, uint32_t *pos,
                 struct rtp_ext_elem *el);
/* Writes header + payload (+ padding) into out; returns the length or an error. */
int rtp_build(uint8_t *out, size_t cap, const struct rtp_hdr_spec *s, const uint8_t *payload,
              size_t payload_len);
const char *rtp_strerror(int code);

/* Big-endian loads and stores; the packet buffer has no alignment. */
static inline uint16_t rtp_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rtp_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void rtp_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void rtp_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif
