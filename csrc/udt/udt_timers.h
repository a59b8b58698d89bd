/*
 * udt_timers.h - UDT's per-connection timers as pure functions of time:
 * SYN (ACK) timer, light ACKs, EXP with its 300 ms floor and broken-link rule,
 * keep-alive, and the NAK interval.  The worker calls these from its timer
 * wheel; nothing here reads a clock.  Times are microseconds.
 *
 * As libudt 4.11 (core.cpp checkTimers/processCtrl/processData):
 *  - SYN = 10 ms.  A full (or short) ACK goes out when the ACK timer expires
 *    (every SYN; a data packet shorter than the payload size makes it due at
 *    once) or when the congestion control's ACK interval in packets is
 *    reached; otherwise a light ACK every 64 data packets received.  An ACK
 *    is full (24 bytes, with rates) when at least a SYN has passed since the
 *    last full ACK that went out, else short (16 bytes).  A timer run that
 *    sends nothing (nothing new to acknowledge) is no full ACK: libudt keeps
 *    the time of the last full ACK it sent.  libudt re-arms its timer after
 *    the ACK left, so a timer-driven ACK always finds more than a SYN passed
 *    since the last full one; here the timer and the ACK share one clock
 *    read, and "at least" is the same rule.
 *  - EXP: due at last_rsp + max(k * (RTT + 4 RTTVar + SYN), k * 300 ms) with
 *    k the EXP count (1 after anything heard from the peer, +1 per
 *    expiry).  On expiry the sender marks everything unacknowledged lost (if
 *    its loss list is empty) and tells the congestion control, or sends a
 *    keep-alive when it has nothing in flight - so an idle connection sends a
 *    keep-alive every ~300 ms and hears one as often.  Each expiry restarts
 *    the wait from now (last_rsp = now).
 *  - Broken: when an expiry finds k > 16 and the last wait longer than 5 s,
 *    i.e. at the 17th expiry, 0.3 * (1 + 2 + ... + 17) = 45.9 s of silence
 *    with the 300 ms floor.  `broken_us` replaces this with a plain silence
 *    limit (checked on every call, not only at expiries), so a dead peer can
 *    be detected in a few seconds (rtudp's default; 0 keeps libudt's rule).
 *  - NAK: 4.11 sends a NAK only when it sees a gap (no periodic NAK; a lost
 *    retransmission waits for the sender's EXP).  udt_nak_interval_us() is the
 *    periodic interval libudt computed before it disabled it: RTT + 4 RTTVar
 *    plus the time to receive the lost packets at the current speed, at least
 *    `min_nak_us` (libudt: 300 ms); rtudp re-enables it with a lower floor.
 */
#ifndef RTUDP_UDT_TIMERS_H
#define RTUDP_UDT_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#define UDT_SYN_US 10000u
#define UDT_MIN_EXP_US 300000u
#define UDT_MIN_NAK_US 300000u
#define UDT_LIGHT_ACK_PKTS 64u
#define UDT_BROKEN_EXP_COUNT 16u       /* broken when the count is above this ... */
#define UDT_BROKEN_LAST_WAIT_US 5000000u /* ... and the last wait was longer */
#define UDT_CONNECT_RETRY_US 250000u    /* a handshake is resent at most this often */
#define UDT_CONNECT_TIMEOUT_US 3000000u /* client gives up (rendezvous: 10x) */

struct udt_timers {
    /* configuration */
    uint64_t min_exp_us;     /* EXP floor (UDT_MIN_EXP_US) */
    uint64_t broken_us;      /* 0: libudt's 17-EXP rule; else silence limit */
    /* state */
    uint64_t last_rsp_us;    /* heard from the peer, or the last expiry */
    uint64_t last_heard_us;  /* heard from the peer */
    uint32_t exp_count;      /* k above; 1 after hearing from the peer */
    uint64_t next_ack_us;
    uint64_t last_full_ack_us;
    bool full_ack_sent;      /* last_full_ack_us is meaningful */
    uint32_t pkt_count;      /* data packets since the last ACK */
    uint32_t light_ack_count;
};

static inline void udt_timers_init(struct udt_timers *t, uint64_t min_exp_us, uint64_t broken_us,
                                   uint64_t now_us)
{
    t->min_exp_us = min_exp_us ? min_exp_us : UDT_MIN_EXP_US;
    t->broken_us = broken_us;
    t->last_rsp_us = t->last_heard_us = now_us;
    t->exp_count = 1;
    t->next_ack_us = now_us + UDT_SYN_US;
    t->last_full_ack_us = 0;
    t->full_ack_sent = false;
    t->pkt_count = 0;
    t->light_ack_count = 1;
}

/* Anything (data or control) arrived from the peer. */
static inline void udt_timers_heard(struct udt_timers *t, uint64_t now_us)
{
    t->exp_count = 1;
    t->last_rsp_us = t->last_heard_us = now_us;
}

/* ------------------------------------------------------------ EXP */

/* The wait before expiry number `count` (count >= 1). */
static inline uint64_t udt_exp_interval_us(uint32_t count, uint32_t rtt_us, uint32_t rtt_var_us,
                                           uint64_t min_exp_us)
{
    uint64_t per = (uint64_t)rtt_us + 4u * (uint64_t)rtt_var_us + UDT_SYN_US;
    if (per < min_exp_us)
        per = min_exp_us;
    return (uint64_t)count * per;
}

static inline uint64_t udt_timers_exp_deadline(const struct udt_timers *t, uint32_t rtt_us,
                                               uint32_t rtt_var_us)
{
    return t->last_rsp_us + udt_exp_interval_us(t->exp_count, rtt_us, rtt_var_us, t->min_exp_us);
}

enum udt_exp_action {
    UDT_EXP_NONE = 0,    /* nothing due */
    UDT_EXP_EXPIRED = 1, /* retransmit everything unacknowledged (or keep-alive when idle) */
    UDT_EXP_BROKEN = 2,  /* the connection is broken */
};

/* Call at (or after) the deadline; advances the state on an expiry. */
static inline enum udt_exp_action udt_timers_check_exp(struct udt_timers *t, uint64_t now_us,
                                                       uint32_t rtt_us, uint32_t rtt_var_us)
{
    if (t->broken_us && now_us >= t->last_heard_us && now_us - t->last_heard_us >= t->broken_us)
        return UDT_EXP_BROKEN;
    if (now_us <= udt_timers_exp_deadline(t, rtt_us, rtt_var_us))
        return UDT_EXP_NONE;
    if (!t->broken_us && t->exp_count > UDT_BROKEN_EXP_COUNT &&
        now_us - t->last_rsp_us > UDT_BROKEN_LAST_WAIT_US)
        return UDT_EXP_BROKEN;
    t->exp_count++;
    t->last_rsp_us = now_us;
    return UDT_EXP_EXPIRED;
}

/* The next time check_exp can change something (EXP or the silence limit). */
static inline uint64_t udt_timers_next_exp_us(const struct udt_timers *t, uint32_t rtt_us,
                                              uint32_t rtt_var_us)
{
    uint64_t d = udt_timers_exp_deadline(t, rtt_us, rtt_var_us) + 1;
    if (t->broken_us && t->last_heard_us + t->broken_us < d)
        d = t->last_heard_us + t->broken_us;
    return d;
}

/* ------------------------------------------------------------ ACK */

enum udt_ack_due {
    UDT_ACKDUE_NONE = 0,
    UDT_ACKDUE_ACK = 1,   /* full or short: udt_timers_ack_full() says which */
    UDT_ACKDUE_LIGHT = 2,
};

/* A data packet arrived; short = shorter than the payload size (the end of
 * a message: ACK at once). */
static inline void udt_timers_data_arrived(struct udt_timers *t, bool short_pkt, uint64_t now_us)
{
    t->pkt_count++;
    if (short_pkt)
        t->next_ack_us = now_us;
}

/* ack_interval_pkts: the congestion control's ACK interval (0: none). */
static inline enum udt_ack_due udt_timers_ack_due(const struct udt_timers *t, uint64_t now_us,
                                                  uint32_t ack_interval_pkts)
{
    if (now_us >= t->next_ack_us || (ack_interval_pkts && ack_interval_pkts <= t->pkt_count))
        return UDT_ACKDUE_ACK;
    if ((uint64_t)UDT_LIGHT_ACK_PKTS * t->light_ack_count <= t->pkt_count)
        return UDT_ACKDUE_LIGHT;
    return UDT_ACKDUE_NONE;
}

/* An ACK sent now is full (with rates) rather than short. */
static inline bool udt_timers_ack_full(const struct udt_timers *t, uint64_t now_us)
{
    return !t->full_ack_sent || now_us < t->last_full_ack_us ||
           now_us - t->last_full_ack_us >= UDT_SYN_US;
}

/* A full ACK went out now. */
static inline void udt_timers_full_ack_sent(struct udt_timers *t, uint64_t now_us)
{
    t->last_full_ack_us = now_us;
    t->full_ack_sent = true;
}

/* After acting on UDT_ACKDUE_ACK, whether an ACK went out or not (period_us:
 * the CC's ACK period, 0 = SYN). */
static inline void udt_timers_ack_done(struct udt_timers *t, uint64_t now_us, uint64_t period_us)
{
    t->next_ack_us = now_us + (period_us ? period_us : UDT_SYN_US);
    t->pkt_count = 0;
    t->light_ack_count = 1;
}

static inline void udt_timers_light_done(struct udt_timers *t) { t->light_ack_count++; }

/* ------------------------------------------------------------ NAK */

static inline uint64_t udt_nak_interval_us(uint32_t rtt_us, uint32_t rtt_var_us, uint64_t loss_len,
                                           uint32_t rcv_speed, uint64_t min_nak_us)
{
    uint64_t i = (uint64_t)rtt_us + 4u * (uint64_t)rtt_var_us;
    if (rcv_speed > 0)
        i += loss_len * 1000000u / rcv_speed;
    return i < min_nak_us ? min_nak_us : i;
}

#endif
