/*
 * rtcp.h - RTCP (RFC 3550 section 6): compound packets built and parsed, the report
 * interval (6.2, A.7), NTP time and the round-trip time from LSR/DLSR (6.4.1).
 *
 * Building writes one compound packet: SR or RR with its report blocks, SDES with a
 * CNAME, and optionally a BYE.  Parsing validates a received compound packet as
 * A.2 says (version 2, the first packet an SR or RR, padding only on the last, the
 * length fields adding up to the datagram's) and every packet's inner structure
 * (report blocks, SDES chunks and items, BYE sources and reason, APP name) against
 * its own length: each way a packet can be malformed has its own code, nothing is
 * read past the datagram.  No allocation, no state: both threads of a worker and
 * the Python binding use the same functions.
 */
#ifndef RTUDP_RTP_RTCP_H
#define RTUDP_RTP_RTCP_H

#include <stddef.h>
#include <stdint.h>

/* BEGIN CDEF */
#define RTCP_SR 200
#define RTCP_RR 201
#define RTCP_SDES 202
#define RTCP_BYE 203
#define RTCP_APP 204
#define RTCP_MAX_RB 31             /* report blocks one SR/RR holds (RC is 5 bits) */
#define RTCP_MAX_CNAME 255         /* SDES item length is 8 bits */
#define RTCP_MAX_REASON 255
#define RTCP_MAX_BYE 31            /* sources one BYE names (SC is 5 bits) */
#define RTCP_BUILD_MAX 1500        /* the largest compound packet rtcp_build writes */

enum rtcp_status {
    RTCP_OK = 0,
    RTCP_E_SHORT = -1,             /* shorter than one 4-byte header, or not 4-aligned */
    RTCP_E_VERSION = -2,           /* a packet's version is not 2 */
    RTCP_E_FIRST = -3,             /* the first packet is not an SR or RR (A.2) */
    RTCP_E_LENGTH = -4,            /* a length field runs past the datagram */
    RTCP_E_PADDING = -5,           /* padding on a packet other than the last, or a bad count */
    RTCP_E_SR = -6,                /* an SR/RR too short for its report count */
    RTCP_E_SDES = -7,              /* an SDES chunk or item runs past its packet */
    RTCP_E_BYE = -8,               /* a BYE's sources or reason run past its packet */
    RTCP_E_APP = -9,               /* an APP shorter than its SSRC and name */
    RTCP_E_ARG = -10,              /* build: an argument out of range */
    RTCP_E_NOSPACE = -11,          /* build: the buffer is too small */
};

/* One report block (6.4.1): what `from` hears of source ssrc. */
struct rtcp_rb {
    uint32_t ssrc;
    uint32_t fraction;             /* fraction lost, in 256ths (0..255) */
    int32_t cum_lost;              /* cumulative lost, 24-bit signed on the wire */
    uint32_t ext_max_seq;          /* extended highest sequence number received */
    uint32_t jitter;               /* interarrival jitter, timestamp units */
    uint32_t lsr;                  /* middle 32 bits of the last SR's NTP time (0: none) */
    uint32_t dlsr;                 /* delay since that SR, in 1/65536 s */
};

/* An SR's sender info (6.4.1). */
struct rtcp_sender_info {
    uint64_t ntp;                  /* NTP timestamp, 32.32 fixed point */
    uint32_t rtp_ts;               /* the RTP timestamp of the same instant */
    uint32_t packets;              /* sender's packet count */
    uint32_t octets;               /* sender's payload octet count */
};

/* What rtcp_build writes: SR (sr set) or RR of ssrc, n_rb report blocks, SDES CNAME,
 * then a BYE of ssrc when bye is set (with reason when reason_len > 0). */
struct rtcp_out {
    uint32_t ssrc;
    uint32_t sr;                   /* 1: SR with `info`; 0: RR */
    struct rtcp_sender_info info;
    const struct rtcp_rb *rb;
    uint32_t n_rb;                 /* 0..RTCP_MAX_RB */
    const char *cname;
    uint32_t cname_len;            /* 1..RTCP_MAX_CNAME */
    uint32_t bye;
    const char *reason;
    uint32_t reason_len;           /* 0..RTCP_MAX_REASON */
};

/* What rtcp_parse found in a valid compound packet. */
struct rtcp_in {
    uint32_t ssrc;                 /* of the first SR/RR: the sender of the compound */
    uint32_t has_sr;               /* an SR came: `info` holds its sender info */
    struct rtcp_sender_info info;
    uint32_t n_sr, n_rr, n_sdes, n_bye, n_app, n_other;  /* packets of each type */
    uint32_t n_rb;                 /* report blocks kept in rb[] */
    uint32_t rb_dropped;           /* report blocks beyond RTCP_MAX_RB (not kept) */
    struct rtcp_rb rb[RTCP_MAX_RB];
    uint32_t cname_ssrc;           /* the first CNAME's source */
    uint32_t cname_len;            /* 0: no CNAME came */
    char cname[RTCP_MAX_CNAME + 1];  /* NUL-terminated */
    uint32_t n_bye_ssrc;           /* sources the BYEs name (kept: RTCP_MAX_BYE) */
    uint32_t bye_ssrc[RTCP_MAX_BYE];
    uint32_t app_ssrc;             /* the first APP's source and name */
    uint8_t app_name[4];
    uint32_t app_subtype;
};

/* One compound packet into buf (cap bytes): its length, or RTCP_E_ARG / RTCP_E_NOSPACE. */
int rtcp_build(uint8_t *buf, size_t cap, const struct rtcp_out *o);
/* Validate and read a received compound packet: RTCP_OK with *in filled, or the
 * negative enum rtcp_status saying what is wrong (*in is then partly filled). */
int rtcp_parse(const uint8_t *pkt, size_t len, struct rtcp_in *in);
/* whether a datagram on a muxed RTP/RTCP port is RTCP (RFC 5761 4: second byte 192..223) */
int rtcp_is_rtcp(const uint8_t *pkt, size_t len);
/* the text of an enum rtcp_status */
const char *rtcp_strerror(int status);

/* NTP time (32.32) of a CLOCK_REALTIME reading */
uint64_t rtcp_ntp_from_ns(int64_t realtime_ns);
/* CLOCK_REALTIME ns of an NTP time (inverse of rtcp_ntp_from_ns, 1 ns precision) */
int64_t rtcp_ns_from_ntp(uint64_t ntp);
/* the middle 32 bits of an NTP time (LSR, and arrival times compared with it) */
uint32_t rtcp_ntp_mid(uint64_t ntp);
/* DLSR: the time from the SR's arrival to now, both as middle NTP bits */
uint32_t rtcp_dlsr(uint32_t sr_arrival_mid, uint32_t now_mid);
/* RTT in ns of a report block that arrived at arrival_mid (6.4.1: A - LSR - DLSR);
 * -1 when the block has no LSR or the result is negative (a clock step) */
int64_t rtcp_rtt_ns(uint32_t arrival_mid, uint32_t lsr, uint32_t dlsr);

/*
 * The report interval in seconds (A.7 rtcp_interval): members, senders of the
 * session; rtcp_bw its RTCP bandwidth in octets/s (0: unknown, Tmin alone rules);
 * we_sent whether we sent data since the second previous report; avg_size the
 * average compound size in octets; initial before the first report (Tmin halved);
 * tmin_s the minimum (5 s in RFC 3550, lower on a LAN); rand01 a uniform random
 * number in [0, 1) that spreads the result over [0.5, 1.5] times the interval,
 * divided by e - 3/2 (the compensation for timer reconsideration).
 */
double rtcp_interval(uint32_t members, uint32_t senders, double rtcp_bw, int we_sent,
                     double avg_size, int initial, double tmin_s, double rand01);
/* the running average compound size (6.3.3): 1/16 of the new one, 15/16 of the old */
double rtcp_avg_size(double avg, uint32_t size);
/* END CDEF */

#endif /* RTUDP_RTP_RTCP_H */
