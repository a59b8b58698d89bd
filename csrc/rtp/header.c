/* header.c - RTP header parse and build (see header.h). */
#include "header.h"

#include <string.h>

int rtp_parse(const uint8_t *p, size_t len, struct rtp_hdr *h)
{
    if (len < RTP_HDR_MIN)
        return RTP_E_SHORT;
    if ((p[0] >> 6) != 2)
        return RTP_E_VERSION;
    /* RFC 5761 4: with the marker bit, PT 72-76 makes byte 1 read as RTCP's 200-204 */
    if (p[1] >= 200 && p[1] <= 204)
        return RTP_E_RTCP;
    h->padding = (p[0] >> 5) & 1;
    h->extension = (p[0] >> 4) & 1;
    h->cc = p[0] & 0x0F;
    h->marker = p[1] >> 7;
    h->pt = p[1] & 0x7F;
    h->seq = rtp_be16(p + 2);
    h->ts = rtp_be32(p + 4);
    h->ssrc = rtp_be32(p + 8);
    size_t off = RTP_HDR_MIN + 4u * h->cc;
    if (off > len)
        return RTP_E_CSRC;
    for (unsigned i = 0; i < h->cc; i++)
        h->csrc[i] = rtp_be32(p + RTP_HDR_MIN + 4 * i);
    h->ext_profile = 0;
    h->ext_words = 0;
    h->ext_off = 0;
    if (h->extension) {
        if (len - off < 4)
            return RTP_E_EXT_HDR;
        h->ext_profile = rtp_be16(p + off);
        h->ext_words = rtp_be16(p + off + 2);
        off += 4;
        if ((size_t)h->ext_words * 4 > len - off)
            return RTP_E_EXT_LEN;
        h->ext_off = (uint32_t)off;
        off += (size_t)h->ext_words * 4;
    }
    h->pad_len = 0;
    if (h->padding) {
        /* off <= len - 0 here; the count is the last byte and includes itself */
        uint8_t n = p[len - 1];
        if (n == 0)
            return RTP_E_PAD_ZERO;
        if (n > len - off)
            return RTP_E_PAD_LEN;
        h->pad_len = n;
    }
    h->payload_off = (uint32_t)off;
    h->payload_len = (uint32_t)(len - off - h->pad_len);
    return RTP_OK;
}

int rtp_ext_next(const uint8_t *p, const struct rtp_hdr *h, uint32_t *pos, struct rtp_ext_elem *el)
{
    if (!h->extension)
        return 0;
    bool one = h->ext_profile == RTP_EXT_ONE_BYTE;
    bool two = (h->ext_profile & RTP_EXT_TWO_BYTE_MASK) == RTP_EXT_TWO_BYTE;
    if (!one && !two)
        return 0;
    uint32_t end = (uint32_t)h->ext_words * 4;
    const uint8_t *e = p + h->ext_off;
    while (*pos < end) {
        uint8_t b = e[*pos];
        if (b == 0) { /* padding between elements */
            (*pos)++;
            continue;
        }
        uint32_t hdr, n;
        if (one) {
            if ((b >> 4) == 15) /* RFC 8285 4.2: id 15 stops processing */
                return 0;
            hdr = 1;
            n = (uint32_t)(b & 0x0F) + 1;
            el->id = b >> 4;
        } else {
            if (end - *pos < 2)
                return RTP_E_EXT_ELEM;
            hdr = 2;
            n = e[*pos + 1];
            el->id = b;
        }
        if (n > end - *pos - hdr)
            return RTP_E_EXT_ELEM;
        el->len = (uint8_t)n;
        el->off = h->ext_off + *pos + hdr;
        *pos += hdr + n;
        return 1;
    }
    return 0;
}

int rtp_build(uint8_t *out, size_t cap, const struct rtp_hdr_spec *s, const uint8_t *payload,
              size_t payload_len)
{
    if (s->pt > 127 || s->cc > RTP_MAX_CSRC || (s->cc && !s->csrc) || s->ext_len % 4 ||
        s->ext_len > 4u * 65535u || (s->ext_len && !s->ext) || (payload_len && !payload))
        return RTP_E_ARG;
    if (s->marker && s->pt >= 72 && s->pt <= 76)
        return RTP_E_RTCP; /* would read as RTCP on a muxed port */
    size_t hl = RTP_HDR_MIN + 4u * s->cc + (s->ext ? 4u + s->ext_len : 0);
    size_t total = hl + payload_len + s->pad_len;
    if (total > cap || total > INT32_MAX)
        return RTP_E_NOSPACE;
    out[0] = (uint8_t)(2u << 6 | (s->pad_len ? 1u << 5 : 0) | (s->ext ? 1u << 4 : 0) | s->cc);
    out[1] = (uint8_t)((s->marker ? 0x80 : 0) | s->pt);
    rtp_put16(out + 2, s->seq);
    rtp_put32(out + 4, s->ts);
    rtp_put32(out + 8, s->ssrc);
    size_t off = RTP_HDR_MIN;
    for (unsigned i = 0; i < s->cc; i++, off += 4)
        rtp_put32(out + off, s->csrc[i]);
    if (s->ext) {
        rtp_put16(out + off, s->ext_profile);
        rtp_put16(out + off + 2, (uint16_t)(s->ext_len / 4));
        memcpy(out + off + 4, s->ext, s->ext_len);
        off += 4 + s->ext_len;
    }
    if (payload_len)
        memcpy(out + off, payload, payload_len);
    off += payload_len;
    if (s->pad_len) {
        memset(out + off, 0, s->pad_len - 1u);
        out[off + s->pad_len - 1u] = s->pad_len;
        off += s->pad_len;
    }
    return (int)off;
}

const char *rtp_strerror(int code)
{
    switch (code) {
    case RTP_OK: return "ok";
    case RTP_E_SHORT: return "shorter than the 12-byte RTP header";
    case RTP_E_VERSION: return "RTP version is not 2";
    case RTP_E_CSRC: return "CSRC list runs past the end of the packet";
    case RTP_E_EXT_HDR: return "extension bit set but no room for the extension header";
    case RTP_E_EXT_LEN: return "header extension length runs past the end of the packet";
    case RTP_E_PAD_ZERO: return "padding bit set but padding count is 0";
    case RTP_E_PAD_LEN: return "padding count larger than the payload";
    case RTP_E_RTCP: return "payload type 72-76: an RTCP packet";
    case RTP_E_EXT_ELEM: return "RFC 8285 extension element runs past the extension";
    case RTP_E_ARG: return "argument out of range";
    case RTP_E_NOSPACE: return "output buffer too small";
    default: return "unknown RTP error";
    }
}
