/*
 * rtcp.c - RTCP compound packets, report interval, NTP time, RTT (rtcp.h).
 */
#include <string.h>

#include "rtp/rtcp.h"

#define NTP_UNIX_OFFSET 2208988800ULL   /* seconds from 1900 to 1970 */
#define NS_PER_S 1000000000ULL
#define SENDER_INFO 20u                 /* NTP (8), RTP ts, packets, octets */
#define RB_SIZE 24u
#define SDES_CNAME 1u
#define CUM_LOST_MAX 0x7fffff
#define CUM_LOST_MIN (-0x800000)
#define COMPENSATION (2.71828182845904523536 - 1.5)  /* A.7: e - 3/2 */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* a packet's common header: V=2, P=0, count, type, length in words minus one */
static void put_header(uint8_t *p, uint32_t count, uint32_t type, size_t bytes)
{
    p[0] = (uint8_t)(0x80 | count);
    p[1] = (uint8_t)type;
    p[2] = (uint8_t)((bytes / 4 - 1) >> 8);
    p[3] = (uint8_t)(bytes / 4 - 1);
}

static size_t pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

/* ------------------------------------------------------------------ build */

static void put_rb(uint8_t *p, const struct rtcp_rb *rb)
{
    int32_t lost = rb->cum_lost > CUM_LOST_MAX ? CUM_LOST_MAX
                 : rb->cum_lost < CUM_LOST_MIN ? CUM_LOST_MIN : rb->cum_lost;
    put32(p, rb->ssrc);
    put32(p + 4, (rb->fraction > 255 ? 255u : rb->fraction) << 24 | ((uint32_t)lost & 0xffffff));
    put32(p + 8, rb->ext_max_seq);
    put32(p + 12, rb->jitter);
    put32(p + 16, rb->lsr);
    put32(p + 20, rb->dlsr);
}

static size_t report_size(const struct rtcp_out *o)
{
    return 8 + (o->sr ? SENDER_INFO : 0) + RB_SIZE * (size_t)o->n_rb;
}

static size_t sdes_size(const struct rtcp_out *o)
{
    return pad4(8 + 2 + (size_t)o->cname_len + 1); /* header, SSRC, item, end (>= 1 zero) */
}

static size_t bye_size(const struct rtcp_out *o)
{
    if (!o->bye)
        return 0;
    return 8 + (o->reason_len ? pad4(1 + (size_t)o->reason_len) : 0);
}

static size_t put_report(uint8_t *p, const struct rtcp_out *o)
{
    size_t n = report_size(o);
    put_header(p, o->n_rb, o->sr ? RTCP_SR : RTCP_RR, n);
    put32(p + 4, o->ssrc);
    uint8_t *q = p + 8;
    if (o->sr) {
        put32(q, (uint32_t)(o->info.ntp >> 32));
        put32(q + 4, (uint32_t)o->info.ntp);
        put32(q + 8, o->info.rtp_ts);
        put32(q + 12, o->info.packets);
        put32(q + 16, o->info.octets);
        q += SENDER_INFO;
    }
    for (uint32_t i = 0; i < o->n_rb; i++, q += RB_SIZE)
        put_rb(q, &o->rb[i]);
    return n;
}

static size_t put_sdes(uint8_t *p, const struct rtcp_out *o)
{
    size_t n = sdes_size(o);
    memset(p, 0, n); /* the end item and the padding after it */
    put_header(p, 1, RTCP_SDES, n);
    put32(p + 4, o->ssrc);
    p[8] = SDES_CNAME;
    p[9] = (uint8_t)o->cname_len;
    memcpy(p + 10, o->cname, o->cname_len);
    return n;
}

static size_t put_bye(uint8_t *p, const struct rtcp_out *o)
{
    size_t n = bye_size(o);
    memset(p, 0, n);
    put_header(p, 1, RTCP_BYE, n);
    put32(p + 4, o->ssrc);
    if (o->reason_len) {
        p[8] = (uint8_t)o->reason_len;
        memcpy(p + 9, o->reason, o->reason_len);
    }
    return n;
}

int rtcp_build(uint8_t *buf, size_t cap, const struct rtcp_out *o)
{
    if (!buf || !o || o->n_rb > RTCP_MAX_RB || (o->n_rb && !o->rb) || !o->cname ||
        o->cname_len == 0 || o->cname_len > RTCP_MAX_CNAME || o->reason_len > RTCP_MAX_REASON ||
        (o->reason_len && !o->reason))
        return RTCP_E_ARG;
    size_t total = report_size(o) + sdes_size(o) + bye_size(o);
    if (total > cap)
        return RTCP_E_NOSPACE;
    size_t off = put_report(buf, o);
    off += put_sdes(buf + off, o);
    if (o->bye)
        off += put_bye(buf + off, o);
    return (int)off;
}

/* ------------------------------------------------------------------ parse */

static void read_rb(const uint8_t *p, struct rtcp_rb *rb)
{
    uint32_t w = be32(p + 4);
    rb->ssrc = be32(p);
    rb->fraction = w >> 24;
    /* 24-bit two's complement to int32 */
    rb->cum_lost = (int32_t)((w & 0xffffff) ^ 0x800000) - 0x800000;
    rb->ext_max_seq = be32(p + 8);
    rb->jitter = be32(p + 12);
    rb->lsr = be32(p + 16);
    rb->dlsr = be32(p + 20);
}

/* SR (sr set) or RR body p[0..n) with `count` report blocks */
static int parse_report(const uint8_t *p, size_t n, uint32_t count, int sr, struct rtcp_in *in)
{
    size_t need = 4 + (sr ? SENDER_INFO : 0) + RB_SIZE * (size_t)count;
    if (n < need)
        return RTCP_E_SR;
    uint32_t ssrc = be32(p);
    if (in->n_sr + in->n_rr == 0)
        in->ssrc = ssrc;
    const uint8_t *q = p + 4;
    if (sr) {
        if (!in->has_sr) {
            in->has_sr = 1;
            in->info.ntp = (uint64_t)be32(q) << 32 | be32(q + 4);
            in->info.rtp_ts = be32(q + 8);
            in->info.packets = be32(q + 12);
            in->info.octets = be32(q + 16);
        }
        q += SENDER_INFO;
        in->n_sr++;
    } else {
        in->n_rr++;
    }
    for (uint32_t i = 0; i < count; i++, q += RB_SIZE) {
        if (in->n_rb < RTCP_MAX_RB)
            read_rb(q, &in->rb[in->n_rb++]);
        else
            in->rb_dropped++;
    }
    return RTCP_OK;
}

/* one SDES chunk at p[*off..n): its SSRC, items up to the end item, padding to 4 */
static int parse_chunk(const uint8_t *p, size_t n, size_t *off, struct rtcp_in *in)
{
    size_t o = *off;
    if (n - o < 4)
        return RTCP_E_SDES;
    uint32_t ssrc = be32(p + o);
    o += 4;
    for (;;) {
        if (o >= n)
            return RTCP_E_SDES;           /* no end item */
        uint8_t type = p[o];
        if (type == 0)
            break;
        if (n - o < 2 || n - o - 2 < p[o + 1])
            return RTCP_E_SDES;
        uint8_t len = p[o + 1];
        if (type == SDES_CNAME && in->cname_len == 0 && len > 0) {
            memcpy(in->cname, p + o + 2, len);
            in->cname[len] = 0;
            in->cname_len = len;
            in->cname_ssrc = ssrc;
        }
        o += 2 + (size_t)len;
    }
    o = pad4(o + 1); /* the end item, then zeros up to the next word */
    if (o > n)
        return RTCP_E_SDES;
    *off = o;
    return RTCP_OK;
}

static int parse_sdes(const uint8_t *p, size_t n, uint32_t count, struct rtcp_in *in)
{
    size_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        int rc = parse_chunk(p, n, &off, in);
        if (rc != RTCP_OK)
            return rc;
    }
    in->n_sdes++;
    return RTCP_OK;
}

static int parse_bye(const uint8_t *p, size_t n, uint32_t count, struct rtcp_in *in)
{
    if (n < 4 * (size_t)count)
        return RTCP_E_BYE;
    for (uint32_t i = 0; i < count; i++)
        if (in->n_bye_ssrc < RTCP_MAX_BYE)
            in->bye_ssrc[in->n_bye_ssrc++] = be32(p + 4 * i);
    size_t off = 4 * (size_t)count;
    if (off < n && n - off - 1 < p[off])
        return RTCP_E_BYE;                 /* the reason runs past the packet */
    in->n_bye++;
    return RTCP_OK;
}

static int parse_app(const uint8_t *p, size_t n, uint32_t subtype, struct rtcp_in *in)
{
    if (n < 8)
        return RTCP_E_APP;
    if (in->n_app++ == 0) {
        in->app_ssrc = be32(p);
        memcpy(in->app_name, p + 4, 4);
        in->app_subtype = subtype;
    }
    return RTCP_OK;
}

static int parse_body(uint32_t type, const uint8_t *p, size_t n, uint32_t count,
                      struct rtcp_in *in)
{
    switch (type) {
    case RTCP_SR: return parse_report(p, n, count, 1, in);
    case RTCP_RR: return parse_report(p, n, count, 0, in);
    case RTCP_SDES: return parse_sdes(p, n, count, in);
    case RTCP_BYE: return parse_bye(p, n, count, in);
    case RTCP_APP: return parse_app(p, n, count, in);
    default: in->n_other++; return RTCP_OK; /* feedback, XR, ...: skipped */
    }
}

int rtcp_parse(const uint8_t *pkt, size_t len, struct rtcp_in *in)
{
    if (!in)
        return RTCP_E_ARG;
    memset(in, 0, sizeof *in);
    if (!pkt || len < 4 || len % 4)
        return RTCP_E_SHORT;
    size_t off = 0;
    while (off < len) {
        const uint8_t *p = pkt + off;
        if ((p[0] >> 6) != 2)
            return RTCP_E_VERSION;
        uint32_t type = p[1];
        if (off == 0 && type != RTCP_SR && type != RTCP_RR)
            return RTCP_E_FIRST;
        size_t plen = ((size_t)be16(p + 2) + 1) * 4;
        if (plen > len - off)
            return RTCP_E_LENGTH;
        size_t body = plen - 4;
        if (p[0] & 0x20) {
            uint8_t pad = p[plen - 1];
            if (off + plen != len || pad == 0 || pad > body)
                return RTCP_E_PADDING;
            body -= pad;
        }
        int rc = parse_body(type, p + 4, body, p[0] & 0x1fu, in);
        if (rc != RTCP_OK)
            return rc;
        off += plen;
    }
    return RTCP_OK;
}

int rtcp_is_rtcp(const uint8_t *pkt, size_t len)
{
    return pkt && len >= 2 && pkt[1] >= 192 && pkt[1] <= 223;
}

const char *rtcp_strerror(int status)
{
    switch (status) {
    case RTCP_OK: return "ok";
    case RTCP_E_SHORT: return "shorter than a header or not a multiple of 4 bytes";
    case RTCP_E_VERSION: return "version is not 2";
    case RTCP_E_FIRST: return "first packet is not an SR or RR";
    case RTCP_E_LENGTH: return "a length field runs past the datagram";
    case RTCP_E_PADDING: return "padding not on the last packet, or a bad padding count";
    case RTCP_E_SR: return "SR/RR shorter than its report blocks";
    case RTCP_E_SDES: return "SDES chunk or item runs past its packet";
    case RTCP_E_BYE: return "BYE sources or reason run past its packet";
    case RTCP_E_APP: return "APP shorter than its SSRC and name";
    case RTCP_E_ARG: return "argument out of range";
    case RTCP_E_NOSPACE: return "buffer too small";
    default: return "unknown status";
    }
}

/* ------------------------------------------------------------------ time */

uint64_t rtcp_ntp_from_ns(int64_t realtime_ns)
{
    uint64_t ns = realtime_ns > 0 ? (uint64_t)realtime_ns : 0;
    uint64_t sec = ns / NS_PER_S + NTP_UNIX_OFFSET;
    uint64_t frac = ((ns % NS_PER_S) << 32) / NS_PER_S;
    return sec << 32 | frac;
}

int64_t rtcp_ns_from_ntp(uint64_t ntp)
{
    int64_t sec = (int64_t)(ntp >> 32) - (int64_t)NTP_UNIX_OFFSET;
    uint64_t frac_ns = ((ntp & 0xffffffffULL) * NS_PER_S + (1ULL << 31)) >> 32;
    return sec * (int64_t)NS_PER_S + (int64_t)frac_ns;
}

uint32_t rtcp_ntp_mid(uint64_t ntp)
{
    return (uint32_t)(ntp >> 16);
}

uint32_t rtcp_dlsr(uint32_t sr_arrival_mid, uint32_t now_mid)
{
    return now_mid - sr_arrival_mid;
}

int64_t rtcp_rtt_ns(uint32_t arrival_mid, uint32_t lsr, uint32_t dlsr)
{
    if (lsr == 0)
        return -1;
    uint32_t d = arrival_mid - lsr - dlsr;
    if (d & 0x80000000u)
        return -1; /* negative: the clock stepped, or a bogus block */
    return (int64_t)(((uint64_t)d * NS_PER_S + (1u << 15)) >> 16);
}

/* ------------------------------------------------------------------ interval */

double rtcp_interval(uint32_t members, uint32_t senders, double rtcp_bw, int we_sent,
                     double avg_size, int initial, double tmin_s, double rand01)
{
    double n = members ? members : 1;
    if (initial)
        tmin_s /= 2;
    /* senders get a quarter of the RTCP bandwidth while they are at most a quarter */
    if (senders > 0 && senders <= members * 0.25) {
        if (we_sent) {
            rtcp_bw *= 0.25;
            n = senders;
        } else {
            rtcp_bw *= 0.75;
            n -= senders;
        }
    }
    double t = rtcp_bw > 0 ? avg_size * n / rtcp_bw : 0;
    if (t < tmin_s)
        t = tmin_s;
    if (rand01 < 0 || rand01 >= 1)
        rand01 = 0.5;
    return t * (rand01 + 0.5) / COMPENSATION;
}

double rtcp_avg_size(double avg, uint32_t size)
{
    return avg <= 0 ? size : avg + ((double)size - avg) / 16.0;
}
