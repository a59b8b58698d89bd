/*
 * udt_cc.h - UDT congestion control: one interface, two implementations.
 *
 * The sender asks the congestion control for two numbers: the pacing period
 * (µs between packets) and the congestion window (packets in flight; the
 * sender also caps it by the peer's flow window).  The connection keeps the
 * inputs current (RTT, receive rate, link capacity, the latest sequence sent)
 * and reports events: ACK, loss report (NAK), EXP timeout, packet sent,
 * congestion warning.  Like the rest of csrc/udt: plain data, no pointers
 * (a tagged union, not a vtable), no clock, no allocation.
 *
 * UDT_CC_DAIMD - libudt's native CUDTCC (ccc.cpp), for exact libudt
 *   behaviour: slow start with a 16-packet window that grows by the packets
 *   acknowledged each rate-control interval (SYN, 10 ms) until the first loss
 *   or until it passes the flow window, then the sending rate is the receive
 *   rate; every SYN the rate grows by an increment that depends on the spare
 *   link capacity (10^ceil(log10(B * MSS * 8)) * 1.5e-6 / MSS packets per SYN,
 *   at least 0.01); a NAK that starts a new congestion period (its first loss
 *   is after the last decrease's sequence number) multiplies the period by
 *   1.125, and further NAKs of the same period do so again at random points
 *   (at most 5 times per period).  Differences: libudt's unreachable "no
 *   receive rate yet" branch of onLoss sets period = window / (RTT + SYN),
 *   which is inverted - we use (RTT + SYN) / window as onACK does; the random
 *   decrease point uses a hash of the sequence number instead of srand/rand.
 *
 * UDT_CC_LT - rtudp's loss-tolerant control (the default for rtudp peers).
 *   Why: DAIMD reads every loss as congestion; at 1 % random loss it spends
 *   its time in decreases (libudt measured here: 650 Mb/s at 0 % loss, 21 at
 *   1 %, ~1 at 5 %).  A lossy link (radio, a long path with a bad hop) loses
 *   packets whatever the rate; a congested one loses more the faster it is
 *   driven, and its queue grows first.  So LT estimates the path instead of
 *   reacting to each loss, in the manner of BBR:
 *   - bottleneck rate = the maximum receive rate the peer reported (full
 *     ACKs: the median-filtered arrival speed) over the last ~20 rounds.
 *     Random loss after the bottleneck lowers that only by the loss fraction,
 *     so the estimate (and the rate) stays at (1 - p) x capacity;
 *   - pacing = gain x bottleneck rate, the gain cycling per round (max(RTT,
 *     SYN)) through 1.25 (probe for more), 0.75 (drain what the probe
 *     queued), then 1 for six rounds; window = 2 x rate x (RTT + SYN) + 16.
 *     UDT sends every 16th packet and the next back to back (the receiver's
 *     capacity probe), so 16 packets leave per 15 periods: the period is
 *     stretched by 16/15, else the sender overdrives the bottleneck by 7 %
 *     and keeps its queue full;
 *   - congestion is (a) a loss rate in a round that rises well above the
 *     loss rate seen at steady rate (above max(2 x base, base + 5 %) - the
 *     loss grew with the rate; the base follows the steady-rate loss slowly
 *     and is capped at 20 %: more random loss than that counts as
 *     congestion), or (b) queueing delay: smoothed RTT above the
 *     minimum RTT by more than max(5 ms, minimum / 2).  The answer is to
 *     believe the current delivery rate: the bottleneck estimate drops to the
 *     latest receive-rate report (what the path carries now), but to no
 *     less than half of it (a report taken while a hole at the ACK point
 *     stalled the window tells how little arrived, not the capacity), and
 *     the next round drains.  Under random loss that report already is the
 *     estimate, so a false alarm costs nothing; under real congestion the
 *     estimate reaches the new capacity within a few responses.  When what the
 *     path passed in the last two rounds (sent less lost) is lower than the
 *     report, the response takes that instead (next point);
 *   - reports can be a batch's speed: the peer times arrivals, and a path that
 *     hands packets over in batches (a relay's recvmmsg/sendmmsg, a NIC's
 *     interrupt moderation) shows back-to-back arrivals, 10^6 packets/s, however
 *     little it carries.  So the rate never exceeds what the flow window allows
 *     per round trip (flow window / (minimum RTT + SYN)): faster sends nothing
 *     more, only the window in one burst per round trip; a report raises the
 *     estimate to at most 1.25 x what got through meanwhile (sent less lost);
 *     and a response cuts to what passed.  Packets the sender resends on its
 *     own timers (a stuck ACK point: a libudt receiver reports no lost
 *     retransmission) count as lost here;
 *   - start: DAIMD's slow start (window +acknowledged per SYN, no pacing),
 *     left when the window passes the flow window, on congestion as above,
 *     or when the receive rate stopped growing (3 rounds under +25 %); the
 *     estimate is then at least what the window carried per round (the
 *     peer's first reports can be its start values, 1 packet/s); the
 *     loss rate seen during the start seeds the base.  A timeout (EXP) halves
 *     the estimate;
 *   - the probe and the drain last long enough (24 packets at the probe rate
 *     and 2 SYN) for the peer's reports to see them; an estimate under half
 *     the connection's peak climbs back at gain 2 a round while the path
 *     takes it all (on a short RTT a fallen estimate otherwise only falls).
 *   Inputs it needs beyond DAIMD's: rate_sample (each full ACK's raw receive
 *   rate), nlost in on_loss (the numbers a NAK newly added to the sender's
 *   loss list) and on_resend (what the sender's own timers queued again).  Measured in tests/c/test_udt_cc.c's simulated path (10000
 *   packets/s, RTT 20 ms): 97 % of capacity at 1 % random loss, 88 % at 5 %,
 *   where DAIMD gets 10 % and 2 %; after the capacity halves it settles on
 *   the new one with one response and no standing queue loss.
 */
#ifndef RTUDP_UDT_CC_H
#define RTUDP_UDT_CC_H

#include <stdbool.h>
#include <stdint.h>

enum udt_cc_kind { UDT_CC_DAIMD = 0, UDT_CC_LT = 1 };

/* LT's phases: the 8 of its gain cycle and the climb after a fall */
#define UDT_LT_PHASES 9

struct udt_cc_daimd {
    uint64_t last_rc_us;
    bool slow_start;
    bool loss;
    uint32_t last_ack;
    uint32_t last_dec_seq;
    double last_dec_period;
    int32_t nak_count, dec_random, avg_nak_num, dec_count;
};

struct udt_cc_lt {
    bool startup;
    uint32_t last_ack;         /* startup window growth */
    uint64_t last_rc_us;
    /* rounds and the gain cycle */
    uint64_t round_start_us;
    uint8_t phase;             /* index into the gains: < UDT_LT_PHASES */
    /* bottleneck rate: max filter in two buckets of LT_BW_ROUNDS rounds */
    double bw_cur, bw_prev, btl_bw;
    uint32_t bw_rounds;
    uint32_t sample_sent;      /* packets sent since the last report was taken ... */
    uint32_t sample_lost;      /* ... and reported lost or resent meanwhile */
    double last_sample;        /* latest receive-rate report */
    /* min RTT, refreshed every 10 s */
    uint32_t min_rtt_us;
    uint32_t sample_at_us;     /* when it was taken (µs mod 2^32) */
    uint64_t min_rtt_stamp_us;
    /* loss accounting per round */
    uint64_t round_sent, round_lost;
    uint64_t start_sent, start_lost;
    double loss_base;
    /* startup's full-pipe check */
    double full_bw;
    uint32_t full_cnt;
    uint32_t hold;             /* rounds left before another response */
    uint32_t restarts;         /* climbs after a fall (udt_cc.c lt_after_probe) */
    double peak_bw;            /* the highest estimate of the connection */
    double probe_base;         /* the estimate when the last probe began */
    double probe_max;          /* the highest report during that probe and its drain */
    /* what the path passed per round: sent less what the peer reported lost */
    uint64_t pass_sent, pass_lost;  /* this round so far */
    double passed, passed_prev;     /* packets/s of the last round that ended, the one before */
};

struct udt_cc {
    uint8_t kind;               /* enum udt_cc_kind */
    /* outputs */
    double pkt_period_us;       /* pacing period */
    double cwnd;                /* congestion window, packets */
    uint32_t ack_period_us;     /* the ACK timer this control wants (0: SYN) */
    uint32_t ack_interval;      /* ACK every this many packets (0: off) */
    /* inputs the connection keeps current */
    uint32_t mss;
    double max_cwnd;            /* the peer's flow window */
    uint32_t rtt_us;            /* smoothed */
    uint32_t rcv_rate;          /* smoothed receive rate (libudt's delivery rate), pkts/s */
    uint32_t bandwidth;         /* smoothed link capacity, pkts/s */
    uint32_t snd_curr_seq;      /* latest new sequence number sent */
    uint32_t rate_sample;       /* raw receive rate of the last full ACK (LT consumes it; 0: none) */
    /* counters */
    uint64_t decreases;         /* rate decreases (DAIMD) / congestion responses (LT) */
    union {
        struct udt_cc_daimd d;
        struct udt_cc_lt lt;
    } u;
};

/* libudt's starting inputs: RTT 100 ms (10 SYN), receive rate 16, capacity 1. */
void udt_cc_init(struct udt_cc *cc, enum udt_cc_kind kind, uint32_t mss, uint32_t flow_window,
                 uint32_t snd_curr_seq, uint64_t now_us);
/* A full or short ACK acknowledged up to ack_seq (exclusive). */
void udt_cc_on_ack(struct udt_cc *cc, uint32_t ack_seq, uint64_t now_us);
/* A loss report: its first lost sequence number and how many numbers it
 * newly reported. */
void udt_cc_on_loss(struct udt_cc *cc, uint32_t first_lost, uint32_t nlost, uint64_t now_us);
/* n packets were queued again without a loss report, by the sender's own timers (the
 * stuck head and what was sent before it): LT counts them as lost, DAIMD (libudt's
 * CUDTCC, which has no such timers) ignores them. */
void udt_cc_on_resend(struct udt_cc *cc, uint32_t n);
/* The EXP timer expired with data unacknowledged. */
void udt_cc_on_timeout(struct udt_cc *cc, uint64_t now_us);
/* A packet left; retrans: a retransmission (does not move snd_curr_seq). */
void udt_cc_on_pkt_sent(struct udt_cc *cc, uint32_t seq, bool retrans, uint64_t now_us);
/* A congestion warning (control type 4) arrived: period x 1.125. */
void udt_cc_on_warning(struct udt_cc *cc);
/* Packets per second the period means. */
static inline double udt_cc_rate(const struct udt_cc *cc) { return 1e6 / cc->pkt_period_us; }
const char *udt_cc_name(enum udt_cc_kind kind);

#endif
