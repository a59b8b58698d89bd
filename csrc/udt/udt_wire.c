/* udt_wire.c - UDT4 packet parse and build (see udt_wire.h for the format). */
#include "udt_wire.h"

#include <string.h>

#include "udt_seq.h"

#define CTRL_BIT 0x80000000u

/* ------------------------------------------------------------------ parse */

int udt_peek_dst(const uint8_t *p, size_t len, uint32_t *dst_id)
{
    if (len < UDT_HDR_LEN)
        return UDT_E_SHORT;
    *dst_id = udt_be32(p + 12);
    return UDT_OK;
}

int udt_parse_data(const uint8_t *p, size_t len, struct udt_data *d)
{
    if (len < UDT_HDR_LEN)
        return UDT_E_SHORT;
    uint32_t w0 = udt_be32(p), w1 = udt_be32(p + 4);
    if (w0 & CTRL_BIT)
        return UDT_E_TYPE; /* a control packet */
    d->seq = w0;
    d->boundary = (uint8_t)(w1 >> 30);
    d->inorder = (w1 >> 29) & 1u;
    d->msgno = w1 & UDT_MSG_MAX;
    d->timestamp = udt_be32(p + 8);
    d->dst_id = udt_be32(p + 12);
    /* the payload may be anything up to the datagram's end; the MSS the
     * connection negotiated is the caller's limit */
    if (len - UDT_HDR_LEN > UINT32_MAX)
        return UDT_E_LONG;
    d->payload_len = (uint32_t)(len - UDT_HDR_LEN);
    return UDT_OK;
}

/* the types whose body is only libudt's 4-byte pad: 0 or 4 bytes */
static int pad_body(size_t n)
{
    if (n == 0 || n == UDT_PAD_LEN)
        return UDT_OK;
    return n < UDT_PAD_LEN ? UDT_E_TRUNC : UDT_E_LONG;
}

/* a word that must hold a sequence number (bit 31 clear) */
static int seq_word(const uint8_t *p, uint32_t *out)
{
    uint32_t v = udt_be32(p);
    if (v & CTRL_BIT)
        return UDT_E_RANGE;
    *out = v;
    return UDT_OK;
}

/* the int32 libudt wrote (two's complement), without an implementation-defined cast */
static int32_t to_i32(uint32_t v)
{
    return v <= (uint32_t)INT32_MAX ? (int32_t)v : -(int32_t)(~v) - 1;
}

/* a word libudt writes from a non-negative int */
static int nonneg_word(const uint8_t *p, uint32_t *out)
{
    uint32_t v = udt_be32(p);
    if (v > (uint32_t)INT32_MAX)
        return UDT_E_RANGE;
    *out = v;
    return UDT_OK;
}

static int parse_ack(const uint8_t *b, size_t n, struct udt_ack *a)
{
    int rc;
    memset(a, 0, sizeof *a);
    if (n == UDT_ACK_LIGHT_LEN)
        a->kind = UDT_ACK_LIGHT;
    else if (n == UDT_ACK_SHORT_LEN)
        a->kind = UDT_ACK_SHORT;
    else if (n == UDT_ACK_FULL_LEN)
        a->kind = UDT_ACK_FULL;
    else
        return n > UDT_ACK_FULL_LEN ? UDT_E_LONG : UDT_E_TRUNC;
    if ((rc = seq_word(b, &a->ack_seq)) < 0)
        return rc;
    if (a->kind == UDT_ACK_LIGHT)
        return UDT_OK;
    if ((rc = nonneg_word(b + 4, &a->rtt_us)) < 0 || (rc = nonneg_word(b + 8, &a->rtt_var_us)) < 0 ||
        (rc = nonneg_word(b + 12, &a->avail_buf)) < 0)
        return rc;
    if (a->kind == UDT_ACK_SHORT)
        return UDT_OK;
    if ((rc = nonneg_word(b + 16, &a->rcv_rate)) < 0 || (rc = nonneg_word(b + 20, &a->capacity)) < 0)
        return rc;
    return UDT_OK;
}

static int parse_handshake(const uint8_t *b, size_t n, struct udt_handshake *hs)
{
    /* libudt's listener takes exactly 48 bytes (others are its error 1004) */
    if (n < UDT_HS_LEN)
        return UDT_E_TRUNC;
    if (n > UDT_HS_LEN)
        return UDT_E_LONG;
    hs->version = udt_be32(b);
    hs->sock_type = udt_be32(b + 4);
    int rc = seq_word(b + 8, &hs->isn);
    if (rc < 0)
        return rc;
    hs->mss = udt_be32(b + 12);
    hs->flow_window = udt_be32(b + 16);
    hs->conn_type = to_i32(udt_be32(b + 20));
    hs->sock_id = udt_be32(b + 24);
    hs->cookie = udt_be32(b + 28);
    for (int i = 0; i < 4; i++)
        hs->peer_ip[i] = udt_be32(b + 32 + 4 * i);
    return UDT_OK;
}

int udt_nak_check(const uint32_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (w[i] & CTRL_BIT) {
            if (i + 1 >= n)
                return UDT_E_NAK; /* a range start is the last word */
            uint32_t lo = w[i] & UDT_SEQ_MAX, hi = w[i + 1];
            if (hi & CTRL_BIT)
                return UDT_E_NAK; /* a range end with the start bit */
            if (udt_seq_cmp(lo, hi) > 0)
                return UDT_E_NAK;
            i++;
        }
    }
    return UDT_OK;
}

static int parse_nak(const uint8_t *b, size_t n, struct udt_ctrl *c)
{
    if (n == 0)
        return UDT_E_TRUNC; /* a loss report reports at least one loss */
    if (n % 4)
        return UDT_E_NAK;
    if (n / 4 > UINT32_MAX)
        return UDT_E_LONG;
    size_t nw = n / 4;
    for (size_t i = 0; i < nw; i++) {
        uint32_t w = udt_be32(b + 4 * i);
        if (w & CTRL_BIT) {
            if (i + 1 >= nw)
                return UDT_E_NAK;
            uint32_t hi = udt_be32(b + 4 * (i + 1));
            if ((hi & CTRL_BIT) || udt_seq_cmp(w & UDT_SEQ_MAX, hi) > 0)
                return UDT_E_NAK;
            i++;
        }
    }
    c->u.nak.nwords = (uint32_t)nw;
    return UDT_OK;
}

int udt_parse_ctrl(const uint8_t *p, size_t len, struct udt_ctrl *c)
{
    if (len < UDT_HDR_LEN)
        return UDT_E_SHORT;
    uint32_t w0 = udt_be32(p);
    if (!(w0 & CTRL_BIT))
        return UDT_E_TYPE; /* a data packet */
    memset(c, 0, sizeof *c);
    c->type = (uint16_t)((w0 >> 16) & 0x7FFFu);
    c->ext_type = (uint16_t)(w0 & 0xFFFFu);
    c->info = udt_be32(p + 4);
    c->timestamp = udt_be32(p + 8);
    c->dst_id = udt_be32(p + 12);
    size_t n = len - UDT_HDR_LEN;
    if (n > UINT32_MAX)
        return UDT_E_LONG;
    c->body_off = UDT_HDR_LEN;
    c->body_len = (uint32_t)n;
    const uint8_t *b = p + UDT_HDR_LEN;
    int rc;
    switch (c->type) {
    case UDT_CT_HANDSHAKE:
        return parse_handshake(b, n, &c->u.hs);
    case UDT_CT_KEEPALIVE:
    case UDT_CT_CONGESTION:
    case UDT_CT_SHUTDOWN:
    case UDT_CT_ERROR:
        return pad_body(n);
    case UDT_CT_ACK2:
        if ((rc = pad_body(n)) < 0)
            return rc;
        return (c->info & CTRL_BIT) ? UDT_E_RANGE : UDT_OK;
    case UDT_CT_ACK:
        /* a light ACK carries no ACK number (libudt leaves it 0): not checked */
        if ((rc = parse_ack(b, n, &c->u.ack)) < 0)
            return rc;
        if (c->u.ack.kind != UDT_ACK_LIGHT && (c->info & CTRL_BIT))
            return UDT_E_RANGE;
        return UDT_OK;
    case UDT_CT_NAK:
        return parse_nak(b, n, c);
    case UDT_CT_DROPREQ:
        if (n < UDT_DROP_LEN)
            return UDT_E_TRUNC;
        if (n > UDT_DROP_LEN)
            return UDT_E_LONG;
        c->u.drop.msgno = c->info & UDT_MSG_MAX; /* libudt may leave boundary bits above */
        if ((rc = seq_word(b, &c->u.drop.first)) < 0 || (rc = seq_word(b + 4, &c->u.drop.last)) < 0)
            return rc;
        if (udt_seq_cmp(c->u.drop.first, c->u.drop.last) > 0)
            return UDT_E_RANGE;
        return UDT_OK;
    case UDT_CT_USER:
        return UDT_OK;
    default:
        return UDT_E_TYPE;
    }
}

int udt_parse(const uint8_t *p, size_t len, struct udt_pkt *out)
{
    if (len < UDT_HDR_LEN)
        return UDT_E_SHORT;
    out->is_ctrl = (udt_be32(p) & CTRL_BIT) != 0;
    return out->is_ctrl ? udt_parse_ctrl(p, len, &out->ctrl) : udt_parse_data(p, len, &out->data);
}

uint32_t udt_nak_word(const uint8_t *p, const struct udt_ctrl *c, uint32_t i)
{
    if (c->type != UDT_CT_NAK || i >= c->u.nak.nwords)
        return 0; /* a caller bug, but never a read out of bounds */
    return udt_be32(p + c->body_off + 4u * i);
}

/* ------------------------------------------------------------------ build */

static void put_ctrl_hdr(uint8_t *out, uint16_t type, uint16_t ext, uint32_t info, uint32_t ts,
                         uint32_t dst)
{
    udt_put32(out, CTRL_BIT | (uint32_t)(type & 0x7FFFu) << 16 | ext);
    udt_put32(out + 4, info);
    udt_put32(out + 8, ts);
    udt_put32(out + 12, dst);
}

int udt_build_data_hdr(uint8_t *out, size_t cap, const struct udt_data *d)
{
    if (cap < UDT_HDR_LEN)
        return UDT_E_NOSPACE;
    if ((d->seq & CTRL_BIT) || d->msgno > UDT_MSG_MAX || d->boundary > 3)
        return UDT_E_ARG;
    udt_put32(out, d->seq);
    udt_put32(out + 4, (uint32_t)d->boundary << 30 | (uint32_t)(d->inorder ? 1u : 0u) << 29 | d->msgno);
    udt_put32(out + 8, d->timestamp);
    udt_put32(out + 12, d->dst_id);
    return (int)UDT_HDR_LEN;
}

int udt_build_data(uint8_t *out, size_t cap, const struct udt_data *d, const uint8_t *payload,
                   size_t payload_len)
{
    if (payload_len > (size_t)INT32_MAX - UDT_HDR_LEN)
        return UDT_E_ARG;
    if (cap < UDT_HDR_LEN + payload_len)
        return UDT_E_NOSPACE;
    int rc = udt_build_data_hdr(out, cap, d);
    if (rc < 0)
        return rc;
    if (payload_len)
        memcpy(out + UDT_HDR_LEN, payload, payload_len);
    return (int)(UDT_HDR_LEN + payload_len);
}

int udt_build_handshake(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts,
                        const struct udt_handshake *hs)
{
    if (cap < UDT_HDR_LEN + UDT_HS_LEN)
        return UDT_E_NOSPACE;
    if (hs->isn & CTRL_BIT)
        return UDT_E_ARG;
    put_ctrl_hdr(out, UDT_CT_HANDSHAKE, 0, 0, ts, dst_id);
    uint8_t *b = out + UDT_HDR_LEN;
    udt_put32(b, hs->version);
    udt_put32(b + 4, hs->sock_type);
    udt_put32(b + 8, hs->isn);
    udt_put32(b + 12, hs->mss);
    udt_put32(b + 16, hs->flow_window);
    udt_put32(b + 20, (uint32_t)hs->conn_type);
    udt_put32(b + 24, hs->sock_id);
    udt_put32(b + 28, hs->cookie);
    for (int i = 0; i < 4; i++)
        udt_put32(b + 32 + 4 * i, hs->peer_ip[i]);
    return (int)(UDT_HDR_LEN + UDT_HS_LEN);
}

static int build_padded(uint8_t *out, size_t cap, uint16_t type, uint32_t info, uint32_t dst_id,
                        uint32_t ts)
{
    if (cap < UDT_HDR_LEN + UDT_PAD_LEN)
        return UDT_E_NOSPACE;
    put_ctrl_hdr(out, type, 0, info, ts, dst_id);
    udt_put32(out + UDT_HDR_LEN, 0);
    return (int)(UDT_HDR_LEN + UDT_PAD_LEN);
}

int udt_build_empty(uint8_t *out, size_t cap, uint16_t type, uint32_t dst_id, uint32_t ts)
{
    if (type != UDT_CT_KEEPALIVE && type != UDT_CT_CONGESTION && type != UDT_CT_SHUTDOWN)
        return UDT_E_ARG;
    return build_padded(out, cap, type, 0, dst_id, ts);
}

int udt_build_ack2(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint32_t ackno)
{
    if (ackno & CTRL_BIT)
        return UDT_E_ARG;
    return build_padded(out, cap, UDT_CT_ACK2, ackno, dst_id, ts);
}

int udt_build_error(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint32_t code)
{
    return build_padded(out, cap, UDT_CT_ERROR, code, dst_id, ts);
}

int udt_build_ack(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint32_t ackno,
                  const struct udt_ack *a)
{
    size_t n;
    switch (a->kind) {
    case UDT_ACK_LIGHT: n = UDT_ACK_LIGHT_LEN; break;
    case UDT_ACK_SHORT: n = UDT_ACK_SHORT_LEN; break;
    case UDT_ACK_FULL: n = UDT_ACK_FULL_LEN; break;
    default: return UDT_E_ARG;
    }
    if ((a->ack_seq & CTRL_BIT) || (ackno & CTRL_BIT) || a->rtt_us > INT32_MAX ||
        a->rtt_var_us > INT32_MAX || a->avail_buf > INT32_MAX || a->rcv_rate > INT32_MAX ||
        a->capacity > INT32_MAX)
        return UDT_E_ARG;
    if (cap < UDT_HDR_LEN + n)
        return UDT_E_NOSPACE;
    /* libudt's light ACK leaves the ACK number 0 */
    put_ctrl_hdr(out, UDT_CT_ACK, 0, a->kind == UDT_ACK_LIGHT ? 0 : ackno, ts, dst_id);
    uint8_t *b = out + UDT_HDR_LEN;
    udt_put32(b, a->ack_seq);
    if (a->kind != UDT_ACK_LIGHT) {
        udt_put32(b + 4, a->rtt_us);
        udt_put32(b + 8, a->rtt_var_us);
        udt_put32(b + 12, a->avail_buf);
    }
    if (a->kind == UDT_ACK_FULL) {
        udt_put32(b + 16, a->rcv_rate);
        udt_put32(b + 20, a->capacity);
    }
    return (int)(UDT_HDR_LEN + n);
}

int udt_build_nak(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, const uint32_t *words,
                  size_t nwords)
{
    if (nwords == 0 || nwords > ((size_t)INT32_MAX - UDT_HDR_LEN) / 4)
        return UDT_E_ARG;
    if (udt_nak_check(words, nwords) != UDT_OK)
        return UDT_E_ARG;
    if (cap < UDT_HDR_LEN || (cap - UDT_HDR_LEN) / 4 < nwords)
        return UDT_E_NOSPACE;
    put_ctrl_hdr(out, UDT_CT_NAK, 0, 0, ts, dst_id);
    for (size_t i = 0; i < nwords; i++)
        udt_put32(out + UDT_HDR_LEN + 4 * i, words[i]);
    return (int)(UDT_HDR_LEN + 4 * nwords);
}

int udt_build_dropreq(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint32_t msgno,
                      uint32_t first, uint32_t last)
{
    if (msgno > UDT_MSG_MAX || (first & CTRL_BIT) || (last & CTRL_BIT) ||
        udt_seq_cmp(first, last) > 0)
        return UDT_E_ARG;
    if (cap < UDT_HDR_LEN + UDT_DROP_LEN)
        return UDT_E_NOSPACE;
    put_ctrl_hdr(out, UDT_CT_DROPREQ, 0, msgno, ts, dst_id);
    udt_put32(out + UDT_HDR_LEN, first);
    udt_put32(out + UDT_HDR_LEN + 4, last);
    return (int)(UDT_HDR_LEN + UDT_DROP_LEN);
}

int udt_build_user(uint8_t *out, size_t cap, uint32_t dst_id, uint32_t ts, uint16_t subtype,
                   uint32_t info, const uint8_t *body, size_t body_len)
{
    if (body_len > (size_t)INT32_MAX - UDT_HDR_LEN)
        return UDT_E_ARG;
    if (cap < UDT_HDR_LEN + body_len)
        return UDT_E_NOSPACE;
    put_ctrl_hdr(out, UDT_CT_USER, subtype, info, ts, dst_id);
    if (body_len)
        memcpy(out + UDT_HDR_LEN, body, body_len);
    return (int)(UDT_HDR_LEN + body_len);
}

/* ------------------------------------------------------------------ helpers */

static uint32_t le32(const uint8_t *a)
{
    return (uint32_t)a[0] | (uint32_t)a[1] << 8 | (uint32_t)a[2] << 16 | (uint32_t)a[3] << 24;
}

int udt_hs_ip_from_addr(int family, const uint8_t *addr, uint32_t words[4])
{
    if (family == 4) {
        words[0] = le32(addr);
        words[1] = words[2] = words[3] = 0;
        return UDT_OK;
    }
    if (family == 6) {
        for (int i = 0; i < 4; i++)
            words[i] = le32(addr + 4 * i);
        return UDT_OK;
    }
    return UDT_E_ARG;
}

int udt_hs_ip_to_addr(int family, const uint32_t words[4], uint8_t *addr)
{
    int n = family == 4 ? 1 : family == 6 ? 4 : 0;
    if (!n)
        return UDT_E_ARG;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++)
            addr[4 * i + k] = (uint8_t)(words[i] >> (8 * k));
    return UDT_OK;
}

const char *udt_strerror(int code)
{
    switch (code) {
    case UDT_OK: return "ok";
    case UDT_E_SHORT: return "shorter than the 16-byte UDT header";
    case UDT_E_TRUNC: return "control body shorter than its type needs";
    case UDT_E_LONG: return "control body longer than its type allows";
    case UDT_E_TYPE: return "unknown control type";
    case UDT_E_RANGE: return "field out of range";
    case UDT_E_NAK: return "malformed loss list";
    case UDT_E_ARG: return "argument out of range";
    case UDT_E_NOSPACE: return "output buffer too small";
    case UDT_E_FULL: return "structure full";
    default: return "unknown error";
    }
}

const char *udt_ctrl_name(uint16_t type)
{
    switch (type) {
    case UDT_CT_HANDSHAKE: return "handshake";
    case UDT_CT_KEEPALIVE: return "keep-alive";
    case UDT_CT_ACK: return "ack";
    case UDT_CT_NAK: return "nak";
    case UDT_CT_CONGESTION: return "congestion-warning";
    case UDT_CT_SHUTDOWN: return "shutdown";
    case UDT_CT_ACK2: return "ack2";
    case UDT_CT_DROPREQ: return "drop-request";
    case UDT_CT_ERROR: return "error";
    case UDT_CT_USER: return "user";
    default: return "unknown";
    }
}
