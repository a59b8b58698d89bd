/*
 * rtp_rtcp.c - an rtp channel's RTCP session in the worker (rtp_rtcp.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/rtp_rtcp.h"
#include "rtp/header.h"
#include "sock_cmsg.h"
#include "worker.h"

#define READS_PER_TURN 16         /* PORT: datagrams read at most in one timer turn */
#define RTCP_BW_SHARE 0.05        /* RFC 3550 6.2: RTCP takes 5 % of the session */
#define NS 1000000000LL

int64_t rtp_rtcp_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

int64_t rtp_rtcp_mono_to_real(int64_t mono_ns)
{
    int64_t real = rtp_rtcp_realtime_ns();
    return real - (rtudp_now_ns() - mono_ns);
}

static double rand01(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/* the port of a sockaddr, moved by `by` */
static void port_add(struct sockaddr_storage *ss, int by)
{
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_port = htons((uint16_t)(ntohs(s4->sin_port) + by));
    } else if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_port = htons((uint16_t)(ntohs(s6->sin6_port) + by));
    }
}

/* PORT: a socket bound to the RTP socket's address, port + 1, stamping arrivals */
static int open_port(struct rtudp_chan *c, struct rtp_rtcp *s, char *msg, size_t msglen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(c->fd, (struct sockaddr *)&ss, &len) != 0)
        return snprintf(msg, msglen, "rtcp: getsockname: %s", strerror(errno)), RTUDP_ESYS;
    port_add(&ss, 1);
    s->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return snprintf(msg, msglen, "rtcp: socket: %s", strerror(errno)), RTUDP_ESYS;
    int one = 1;
    if (setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0 ||
        bind(s->fd, (struct sockaddr *)&ss, len) != 0) {
        int e = errno;
        char host[INET6_ADDRSTRLEN] = "?";
        const void *a = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                                                : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        inet_ntop(ss.ss_family, a, host, sizeof host);
        unsigned port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                                : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(msg, msglen, "rtcp: binding the RTCP port %s:%u (RTP port + 1): %s", host, port,
                 strerror(e));
        close(s->fd);
        s->fd = -1;
        return e == EADDRINUSE ? RTUDP_EINVAL : RTUDP_ESYS;
    }
    return RTUDP_OK;
}

int rtp_rtcp_open(struct rtudp_chan *c, struct rtp_rtcp *s, struct rtudp_rtp_area *a,
                  uint32_t ssrc, char *msg, size_t msglen)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->area = a;
    s->clock_rate = a->clock_rate;
    uint32_t mode = a->rtcp_mode;
    if (mode == RTUDP_RTCP_OFF)
        return RTUDP_OK;
    if (mode > RTUDP_RTCP_MUX || a->rtcp_interval_ms < RTUDP_RTCP_MIN_INTERVAL_MS)
        return snprintf(msg, msglen, "rtcp mode %u / interval %u ms out of range", mode,
                        a->rtcp_interval_ms), RTUDP_EINVAL;
    if (mode == RTUDP_RTCP_PORT) {
        int rc = open_port(c, s, msg, msglen);
        if (rc != RTUDP_OK)
            return rc;
    }
    s->mode = mode; /* from here on close sends a BYE */
    s->tmin_s = a->rtcp_interval_ms / 1000.0;
    s->initial = 1;
    int64_t now = rtudp_now_ns();
    s->rng = (uint64_t)now ^ ((uint64_t)ssrc << 32) ^ 0x9E3779B97F4A7C15ULL;
    if (!s->rng)
        s->rng = 1;
    char host[200];
    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = 0;
    int n = snprintf(s->cname, sizeof s->cname, "rtudp-%08x@%s", ssrc, host);
    s->cname_len = n > 0 && n < (int)sizeof s->cname ? (uint32_t)n : (uint32_t)strlen(s->cname);
    /* A.7: the first report after half the minimum, randomised */
    s->next_ns = now + (int64_t)(rtcp_interval(2, 1, 0, 0, 100, 1, s->tmin_s, rand01(&s->rng)) * NS);
    s->report_ns = now;
    c->tx_timer_ns = s->next_ns;
    return RTUDP_OK;
}

/* ------------------------------------------------------------------ receive */

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b, socklen_t len)
{
    return len <= sizeof *a && memcmp(a, b, len) == 0;
}

/* the peer's address in the area's seqlock (for the TX thread), when it changed */
static void note_peer(struct rtp_rtcp *s, const struct sockaddr *src, socklen_t src_len)
{
    if (!src || src_len == 0 || src_len > sizeof s->heard || same_addr(&s->heard, src, src_len))
        return;
    memset(&s->heard, 0, sizeof s->heard);
    memcpy(&s->heard, src, src_len);
    struct rtudp_sockaddr a;
    memset(&a, 0, sizeof a);
    if (src->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
        a.family = AF_INET;
        a.port = ntohs(s4->sin_port);
        memcpy(a.addr, &s4->sin_addr, 4);
    } else if (src->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
        a.family = AF_INET6;
        a.port = ntohs(s6->sin6_port);
        a.scope_id = s6->sin6_scope_id;
        memcpy(a.addr, &s6->sin6_addr, 16);
    } else {
        return;
    }
    rtudp_rtp_set_rtcp_peer(s->area, &a);
}

/* a report block on our stream: the remote's view of it, and the RTT */
static void take_block(struct rtp_rtcp *s, const struct rtcp_rb *rb, uint32_t arrival_mid)
{
    struct rtudp_rtp_area *a = s->area;
    store_relaxed(&a->rtcp_remote_fraction_lost, rb->fraction);
    store_relaxed(&a->rtcp_remote_cumulative_lost, rb->cum_lost);
    uint64_t jit = s->clock_rate ? (uint64_t)rb->jitter * (uint64_t)NS / s->clock_rate : 0;
    store_relaxed(&a->rtcp_remote_jitter_ns, jit);
    int64_t rtt = rtcp_rtt_ns(arrival_mid, rb->lsr, rb->dlsr);
    if (rtt >= 0)
        store_relaxed(&a->rtcp_rtt_ns, rtt);
}

void rtp_rtcp_take(struct rtp_rtcp *s, const uint8_t *pkt, size_t len, int64_t arrival_real_ns,
                   const struct sockaddr *src, socklen_t src_len)
{
    struct rtudp_rtp_area *a = s->area;
    struct rtcp_in in;
    if (rtcp_parse(pkt, len, &in) != RTCP_OK) {
        bump(&a->rtcp_bad, 1);
        return;
    }
    note_peer(s, src, src_len);
    uint32_t arrival_mid = rtcp_ntp_mid(rtcp_ntp_from_ns(arrival_real_ns));
    if (in.has_sr) {
        uint32_t lsr = rtcp_ntp_mid(in.info.ntp);
        store_relaxed(&a->rtcp_last_sr, (uint64_t)lsr << 32 | arrival_mid);
        rtudp_rtp_set_remote_clock(a, in.info.ntp, in.info.rtp_ts, in.ssrc);
    }
    bump(&a->rtcp_sr_received, in.n_sr);
    bump(&a->rtcp_rr_received, in.n_rr);
    uint32_t ours = load_relaxed(&a->tx_ssrc);
    for (uint32_t i = 0; i < in.n_rb; i++)
        if (in.rb[i].ssrc == ours)
            take_block(s, &in.rb[i], arrival_mid);
}

/* PORT: the arrival stamp (CLOCK_REALTIME) of a datagram read with recvmsg */
static int64_t arrival_of(struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
            cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
        }
    }
    return rtp_rtcp_realtime_ns();
}

/* PORT: what waits on the RTCP socket */
static void read_port(struct rtp_rtcp *s)
{
    for (int i = 0; i < READS_PER_TURN; i++) {
        union {
            uint8_t b[RTCP_BUILD_MAX + 4];
            uint64_t align;
        } buf;
        union {
            char b[CMSG_SPACE(sizeof(struct timespec)) + 64];
            struct cmsghdr align;
        } ctl;
        struct sockaddr_storage src;
        struct iovec iov = {.iov_base = buf.b, .iov_len = sizeof buf.b};
        struct msghdr mh = {.msg_name = &src, .msg_namelen = sizeof src, .msg_iov = &iov,
                            .msg_iovlen = 1, .msg_control = ctl.b,
                            .msg_controllen = sizeof ctl.b};
        ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT);
        if (n < 0)
            return; /* EAGAIN: nothing more; an ICMP error: read again next turn */
        if (mh.msg_flags & MSG_TRUNC) {
            bump(&s->area->rtcp_bad, 1);
            continue;
        }
        rtp_rtcp_take(s, buf.b, (size_t)n, arrival_of(&mh), (struct sockaddr *)&src,
                      mh.msg_namelen);
    }
}

/* ------------------------------------------------------------------ send */

/* where reports go: the RTP destination (its port + 1 in PORT mode), else where
 * RTCP came from; 0: nowhere known yet */
static socklen_t destination(struct rtudp_chan *c, struct rtp_rtcp *s,
                             struct sockaddr_storage *to)
{
    socklen_t len = 0;
    if (c->dst_len) {
        memcpy(to, &c->dst, c->dst_len);
        len = c->dst_len;
    } else {
        len = sizeof *to;
        if (getpeername(c->tx_fd, (struct sockaddr *)to, &len) != 0)
            len = 0;
    }
    if (len) {
        if (s->mode == RTUDP_RTCP_PORT)
            port_add(to, 1);
        return len;
    }
    struct rtudp_sockaddr a;
    if (rtudp_rtp_get_rtcp_peer(s->area, sizeof *s->area, &s->peer_gen, &a))
        s->peer_len = rtudp_to_sockaddr(&a, &s->peer);
    if (s->peer_len)
        memcpy(to, &s->peer, s->peer_len);
    return s->peer_len;
}

/* one compound packet out: on the RTCP socket (PORT) or the channel's (MUX), asking
 * for no TX stamp (the channel's stamp keys are its RTP packets') */
static int send_compound(struct rtudp_chan *c, struct rtp_rtcp *s, const uint8_t *pkt, int len)
{
    struct sockaddr_storage to;
    socklen_t to_len = destination(c, s, &to);
    if (!to_len)
        return -1;
    struct iovec iov = {.iov_base = (void *)pkt, .iov_len = (size_t)len};
    struct msghdr mh = {.msg_name = &to, .msg_namelen = to_len, .msg_iov = &iov, .msg_iovlen = 1};
    union rtudp_cmsg_u32 ctl;
    int fd = s->fd;
    if (s->mode == RTUDP_RTCP_MUX) {
        fd = c->tx_fd;
        rtudp_cmsg_u32_set(&mh, &ctl, SO_TIMESTAMPING, 0);
    }
    return sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* the report block on the source the jitter buffer follows (0: none heard) */
static uint32_t report_block(struct rtp_rtcp *s, struct rtcp_rb *rb, int64_t now_real)
{
    struct rtudp_rtp_area *a = s->area;
    uint32_t ssrc = load_relaxed(&a->rx_ssrc);
    uint64_t expected = load_relaxed(&a->rx_expected);
    if (!ssrc || !expected)
        return 0;
    int64_t lost = load_relaxed(&a->rx_lost);
    uint64_t received = lost > 0 && (uint64_t)lost > expected ? 0 : expected - (uint64_t)lost;
    if (ssrc != s->rb_ssrc || expected < s->expected_prior) { /* a new source or epoch */
        s->rb_ssrc = ssrc;
        s->expected_prior = s->received_prior = 0;
    }
    /* A.3: the fraction lost since the last report */
    int64_t exp_int = (int64_t)(expected - s->expected_prior);
    int64_t lost_int = exp_int - ((int64_t)received - (int64_t)s->received_prior);
    s->expected_prior = expected;
    s->received_prior = received;
    uint64_t last_sr = load_relaxed(&a->rtcp_last_sr);
    uint32_t lsr = (uint32_t)(last_sr >> 32);
    uint32_t now_mid = rtcp_ntp_mid(rtcp_ntp_from_ns(now_real));
    *rb = (struct rtcp_rb){
        .ssrc = ssrc,
        .fraction = exp_int > 0 && lost_int > 0 ? (uint32_t)((lost_int << 8) / exp_int) : 0,
        .cum_lost = lost > 0x7fffff ? 0x7fffff : lost < -0x800000 ? -0x800000 : (int32_t)lost,
        .ext_max_seq = load_relaxed(&a->rx_ext_max),
        .jitter = (uint32_t)load_relaxed(&a->rx_jitter),
        .lsr = lsr,
        .dlsr = lsr ? rtcp_dlsr((uint32_t)last_sr, now_mid) : 0,
    };
    return 1;
}

/* one report (with a BYE when bye): 0 sent, -1 not */
static int report(struct rtudp_chan *c, struct rtp_rtcp *s, uint32_t ssrc, int bye,
                  rtp_rtcp_sender_fn sender, void *ctx, int *was_sr)
{
    int64_t mono = rtudp_now_ns();
    int64_t real = rtp_rtcp_realtime_ns();
    struct rtcp_rb rb;
    struct rtcp_out o = {.ssrc = ssrc, .rb = &rb, .cname = s->cname, .cname_len = s->cname_len,
                         .bye = (uint32_t)bye};
    o.n_rb = report_block(s, &rb, real);
    uint64_t sent = load_relaxed(&c->block->tx_packets);
    /* 6.4: an SR when we sent data since the second previous report */
    if (sent > s->sent_at_prev[0] && sender(ctx, mono, rtcp_ntp_from_ns(real), &o.info)) {
        o.sr = 1;
        o.info.packets = (uint32_t)sent;
        uint64_t bytes = load_relaxed(&c->block->tx_bytes);
        o.info.octets = (uint32_t)(bytes - RTP_HDR_MIN * sent);
    }
    uint8_t buf[RTCP_BUILD_MAX];
    int len = rtcp_build(buf, sizeof buf, &o);
    *was_sr = o.sr;
    if (len <= 0 || send_compound(c, s, buf, len) != 0)
        return -1;
    s->avg_size = rtcp_avg_size(s->avg_size, (uint32_t)len + 28); /* + UDP/IPv4 headers */
    bump(o.sr ? &s->area->rtcp_sr_sent : &s->area->rtcp_rr_sent, 1);
    return 0;
}

/* A.7 with this channel's numbers: two members (us and the peer we report to), the
 * session bandwidth from the bytes sent and received since the last report */
static int64_t next_interval(struct rtudp_chan *c, struct rtp_rtcp *s, int we_sent, int64_t now)
{
    uint64_t bytes = load_relaxed(&c->block->tx_bytes) + load_relaxed(&c->block->rx_bytes);
    double secs = (double)(now - s->report_ns) / NS;
    double bw = secs > 0 ? (double)(bytes - s->bytes_at_report) / secs * RTCP_BW_SHARE : 0;
    s->bytes_at_report = bytes;
    s->report_ns = now;
    uint32_t senders = (uint32_t)we_sent + (load_relaxed(&s->area->rtcp_last_sr) != 0);
    double t = rtcp_interval(2, senders, bw, we_sent, s->avg_size, 0, s->tmin_s, rand01(&s->rng));
    return (int64_t)(t * NS);
}

int64_t rtp_rtcp_timer(struct rtudp_chan *c, struct rtp_rtcp *s, uint32_t ssrc, int64_t now,
                       rtp_rtcp_sender_fn sender, void *ctx)
{
    if (s->mode == RTUDP_RTCP_OFF)
        return RTUDP_PROTO_NEVER;
    if (s->fd >= 0)
        read_port(s);
    if (now >= s->next_ns) {
        int sr = 0;
        report(c, s, ssrc, 0, sender, ctx, &sr);
        s->sent_at_prev[0] = s->sent_at_prev[1];
        s->sent_at_prev[1] = load_relaxed(&c->block->tx_packets);
        s->initial = 0;
        s->next_ns = now + next_interval(c, s, sr, now);
    }
    return s->next_ns;
}

void rtp_rtcp_close(struct rtudp_chan *c, struct rtp_rtcp *s, uint32_t ssrc,
                    rtp_rtcp_sender_fn sender, void *ctx)
{
    if (s->mode != RTUDP_RTCP_OFF) {
        int sr = 0;
        report(c, s, ssrc, 1, sender, ctx, &sr);
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->mode = RTUDP_RTCP_OFF;
}
