/*
 * rtp_rtcp.h - an rtp channel's RTCP session (RFC 3550 6), in the worker.
 *
 * The TX thread sends a compound packet (SR while the channel sends RTP, else RR; a
 * report block on the source the jitter buffer follows; SDES CNAME) every interval
 * A.7 draws, and a BYE when the channel closes.  Received compound packets are
 * validated (csrc/rtp/rtcp.c) and read by one thread: the RX thread when RTCP is
 * muxed on the RTP port (RFC 5761: it sorts them out of the batch), the TX thread
 * when it has its own port (RTP port + 1: the TX thread reads that socket at each
 * report, no timer of its own; the kernel's arrival stamps keep the RTT and DLSR
 * exact however late they are read).  What they say goes into the kind area: the
 * counters, the RTT, the remote's view of our stream, its last SR (for our LSR and
 * DLSR) and its NTP/RTP mapping (rtudp_rtp_remote_clock).
 */
#ifndef RTUDP_PROTO_RTP_RTCP_H
#define RTUDP_PROTO_RTP_RTCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/rtp_area.h"
#include "rtp/rtcp.h"

struct rtudp_chan;

struct rtp_rtcp {
    uint32_t mode;                  /* RTUDP_RTCP_* */
    int fd;                         /* PORT: the RTCP socket; -1 otherwise */
    struct rtudp_rtp_area *area;
    double tmin_s;
    uint32_t clock_rate;
    /* TX thread */
    int64_t next_ns;                /* the next report */
    int initial;                    /* no report sent yet (A.7: Tmin halved) */
    double avg_size;
    uint64_t rng;
    uint64_t sent_at_prev[2];       /* tx packets at the last two reports (we_sent) */
    uint64_t bytes_at_report;       /* tx + rx bytes at the last report (bandwidth) */
    int64_t report_ns;              /* when it went */
    uint32_t rb_ssrc;               /* the source the priors below are of */
    uint64_t expected_prior, received_prior;
    uint64_t peer_gen;
    struct sockaddr_storage peer;   /* where RTCP last came from (0: nowhere yet) */
    socklen_t peer_len;
    char cname[RTCP_MAX_CNAME + 1];
    uint32_t cname_len;
    /* the receiving thread (one: see above) */
    struct sockaddr_storage heard;  /* the source it last recorded */
};

/* open (TX thread): the socket of PORT mode, the first report's time in c->tx_timer_ns */
int rtp_rtcp_open(struct rtudp_chan *c, struct rtp_rtcp *s, struct rtudp_rtp_area *a,
                  uint32_t ssrc, char *msg, size_t msglen);
/* What the TX thread knows of its own stream for an SR: 1 it sends RTP (*si filled
 * but for packets/octets), 0 it does not (an RR). */
typedef int (*rtp_rtcp_sender_fn)(void *ctx, int64_t mono_ns, uint64_t ntp,
                                  struct rtcp_sender_info *si);
/* TX thread, c->tx_timer_ns come: read the RTCP socket (PORT), send a report if due;
 * the next time to be called */
int64_t rtp_rtcp_timer(struct rtudp_chan *c, struct rtp_rtcp *s, uint32_t ssrc, int64_t now,
                       rtp_rtcp_sender_fn sender, void *ctx);
/* the receiving thread: one RTCP datagram that arrived at arrival_real_ns
 * (CLOCK_REALTIME) from src */
void rtp_rtcp_take(struct rtp_rtcp *s, const uint8_t *pkt, size_t len, int64_t arrival_real_ns,
                   const struct sockaddr *src, socklen_t src_len);
/* TX thread, at close: a last report with BYE; the socket closed */
void rtp_rtcp_close(struct rtudp_chan *c, struct rtp_rtcp *s, uint32_t ssrc,
                    rtp_rtcp_sender_fn sender, void *ctx);
/* CLOCK_REALTIME now, and a CLOCK_MONOTONIC instant of this run as CLOCK_REALTIME */
int64_t rtp_rtcp_realtime_ns(void);
int64_t rtp_rtcp_mono_to_real(int64_t mono_ns);

#endif /* RTUDP_PROTO_RTP_RTCP_H */
