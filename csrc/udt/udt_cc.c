/* udt_cc.c - DAIMD (libudt's CUDTCC) and rtudp's loss-tolerant control (see udt_cc.h). */
#include "udt_cc.h"

#include <string.h>

#include "udt_seq.h"
#include "udt_timers.h"

#define SYN ((double)UDT_SYN_US)
#define MIN_PERIOD 1e-3  /* µs: 10^9 packets/s, far beyond any NIC */
#define MAX_PERIOD 1e7   /* µs: one packet per 10 s */

static double clamp_period(double p)
{
    if (!(p >= MIN_PERIOD)) /* also catches NaN */
        return MIN_PERIOD;
    return p > MAX_PERIOD ? MAX_PERIOD : p;
}

/* a double to int64 without the UB of an out-of-range conversion */
static int64_t to_i64(double x)
{
    if (!(x > -9e18))
        return INT64_MIN / 2;
    if (x > 9e18)
        return INT64_MAX / 2;
    return (int64_t)x;
}

/* ceil() without libm (the worker does not link it); x is within the
 * clamped period range or a small count */
static double ceil_d(double x)
{
    double i = (double)to_i64(x);
    return i < x ? i + 1 : i;
}

/* 10^ceil(log10(y)) for y >= 1: the smallest power of ten not below y */
static double pow10_ceil(double y)
{
    double p = 1;
    while (p < y && p < 1e300)
        p *= 10;
    return p;
}

/* deterministic [0, 1) from a sequence number (libudt: srand(seq); rand()) */
static double frac_of(uint32_t seed)
{
    uint64_t z = (uint64_t)seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* the period that fills `window` packets per (RTT + SYN) */
static double window_period(const struct udt_cc *cc)
{
    double w = cc->cwnd > 1 ? cc->cwnd : 1;
    return clamp_period(((double)cc->rtt_us + SYN) / w);
}

/* ================================================================ DAIMD */

static void daimd_init(struct udt_cc *cc, uint64_t now_us)
{
    struct udt_cc_daimd *d = &cc->u.d;
    d->last_rc_us = now_us;
    cc->ack_period_us = UDT_SYN_US; /* setACKTimer(SYN) */
    d->slow_start = true;
    d->last_ack = cc->snd_curr_seq;
    d->loss = false;
    d->last_dec_seq = udt_seq_dec(d->last_ack);
    d->last_dec_period = 1;
    d->avg_nak_num = 0;
    d->nak_count = 0;
    d->dec_random = 1;
    d->dec_count = 0;
    cc->cwnd = 16;
    cc->pkt_period_us = 1;
}

/* leaving slow start: send at the receive rate */
static void daimd_end_slow_start(struct udt_cc *cc)
{
    cc->u.d.slow_start = false;
    cc->pkt_period_us = cc->rcv_rate > 0 ? 1e6 / cc->rcv_rate : window_period(cc);
    cc->pkt_period_us = clamp_period(cc->pkt_period_us);
}

static void daimd_on_ack(struct udt_cc *cc, uint32_t ack, uint64_t now_us)
{
    struct udt_cc_daimd *d = &cc->u.d;
    const double min_inc = 0.01; /* libudt 2012: instead of 1/MSS */
    if (now_us - d->last_rc_us < UDT_SYN_US)
        return;
    d->last_rc_us = now_us;

    if (d->slow_start) {
        if (udt_seq_cmp(ack, d->last_ack) >= 0)
            cc->cwnd += udt_seq_len(d->last_ack, ack);
        d->last_ack = ack;
        if (cc->cwnd > cc->max_cwnd)
            daimd_end_slow_start(cc);
        else
            return; /* no rate increase during slow start */
    } else {
        cc->cwnd = cc->rcv_rate / 1e6 * ((double)cc->rtt_us + SYN) + 16;
    }

    if (d->loss) {
        d->loss = false;
        return;
    }

    /* spare capacity, packets/s; capped at 1/9 of the link after a decrease */
    int64_t bw = cc->bandwidth;
    int64_t b = to_i64((double)bw - 1e6 / cc->pkt_period_us);
    if (cc->pkt_period_us > d->last_dec_period && bw / 9 < b)
        b = bw / 9;
    double inc = min_inc;
    if (b > 0) {
        inc = pow10_ceil((double)b * cc->mss * 8.0) * 0.0000015 / cc->mss;
        if (inc < min_inc)
            inc = min_inc;
    }
    cc->pkt_period_us = clamp_period((cc->pkt_period_us * SYN) / (cc->pkt_period_us * inc + SYN));
}

static void daimd_on_loss(struct udt_cc *cc, uint32_t first_lost)
{
    struct udt_cc_daimd *d = &cc->u.d;
    if (d->slow_start) {
        bool had_rate = cc->rcv_rate > 0;
        daimd_end_slow_start(cc);
        if (had_rate)
            return;
    }
    d->loss = true;

    if (udt_seq_cmp(first_lost, d->last_dec_seq) > 0) {
        /* a new congestion period */
        d->last_dec_period = cc->pkt_period_us;
        cc->pkt_period_us = clamp_period(ceil_d(cc->pkt_period_us * 1.125));
        d->avg_nak_num = (int32_t)ceil_d(d->avg_nak_num * 0.875 + d->nak_count * 0.125);
        d->nak_count = 1;
        d->dec_count = 1;
        d->last_dec_seq = cc->snd_curr_seq;
        /* spread the further decreases of this period at random */
        d->dec_random = (int32_t)ceil_d(d->avg_nak_num * frac_of(d->last_dec_seq));
        if (d->dec_random < 1)
            d->dec_random = 1;
        cc->decreases++;
    } else if ((d->dec_count++ < 5) && (0 == (++d->nak_count % d->dec_random))) {
        /* 0.875^5 ~ 0.51: at most halved within one congestion period */
        cc->pkt_period_us = clamp_period(ceil_d(cc->pkt_period_us * 1.125));
        d->last_dec_seq = cc->snd_curr_seq;
        cc->decreases++;
    }
}

static void daimd_on_timeout(struct udt_cc *cc)
{
    if (cc->u.d.slow_start)
        daimd_end_slow_start(cc);
    /* libudt 4.11 leaves the rate alone otherwise */
}

/* ================================================================ loss-tolerant */

#define LT_BW_ROUNDS 10          /* rounds per max-filter bucket (two buckets) */
#define LT_MIN_RTT_WIN_US 10000000ull
#define LT_LOSS_MARGIN 0.05      /* loss must rise this much above the base ... */
#define LT_LOSS_FACTOR 2.0       /* ... and to this multiple of it */
#define LT_STARTUP_LOSS 0.20     /* a start round losing more is overdriving */
#define LT_MIN_ROUND_PKTS 20u    /* fewer sent: keep counting into the next round */
#define LT_DELAY_MIN_US 5000u
#define LT_MIN_BW 16.0           /* packets/s floor of the estimate */
#define LT_HOLD_ROUNDS 3u        /* rounds after a response before the next */
#define LT_BASE_ALPHA 0.0625     /* base loss EWMA */
#define LT_BASE_MAX 0.20         /* random loss beyond this is treated as congestion */
#define LT_MAX_CUT 0.5           /* a response keeps at least this share of the estimate */
#define LT_SAMPLE_OVER_SENT 1.25 /* a receive-rate report above this x our send rate is capped */
#define LT_SAMPLE_MIN_US 2000u   /* ... when measured over at least this long */
#define LT_SAMPLE_MAX_US 2000000u
#define LT_PROBE_PKTS 24.0       /* a probe (and its drain) sends at least this many packets */
#define LT_PROBE_OK 1.1          /* a climb reported this x the estimate: the path took it */
#define LT_FALLEN 0.5            /* an estimate under this x the peak climbs (gain 2) ... */
#define LT_CLIMBED 0.7           /* ... until it is back at this x the peak */


/* the gain cycle (phases 0..7), and the climb back after a fall (LT_CLIMB) */
static const double lt_gain[UDT_LT_PHASES] = {1.25, 0.75, 1, 1, 1, 1, 1, 1, 2.0};
enum { LT_PROBE = 0, LT_DRAIN = 1, LT_CYCLE = 8, LT_CLIMB = 8 };
_Static_assert(LT_CLIMB < UDT_LT_PHASES, "every phase has its gain");

static double lt_round_us(const struct udt_cc *cc)
{
    double r = cc->rtt_us > UDT_SYN_US ? (double)cc->rtt_us : SYN;
    const struct udt_cc_lt *l = &cc->u.lt;
    /* The probe and the drain last long enough for the peer's reports to see
     * them: a report is the mean of its last 16 arrival intervals, and comes in a
     * full ACK, at most one per SYN (every other one when the ACK timer runs at
     * exactly SYN).  Shorter, at a low rate and a short RTT, a probe hardly moves
     * the reports, which at gain 1 are 15/16 of the estimate (UDT's probe pairs),
     * and the estimate only falls. */
    if (!l->startup && (l->phase == LT_PROBE || l->phase == LT_DRAIN || l->phase == LT_CLIMB) &&
        l->btl_bw > 0) {
        double gain = l->phase == LT_CLIMB ? lt_gain[LT_CLIMB] : lt_gain[LT_PROBE];
        double need = LT_PROBE_PKTS * 1e6 / (gain * l->btl_bw) + 2 * SYN;
        if (need > r)
            r = need;
    }
    return r;
}

/* The fastest rate the flow window allows: the peer accepts max_cwnd packets per round
 * trip (its ACKs come at least a SYN apart).  The peer's report can be far above it: it
 * times arrivals, and a path that hands packets over in batches (a relay's recvmmsg and
 * sendmmsg, a NIC's interrupt moderation) makes them the batch's speed, 10^6 packets/s.
 * An estimate above this rate sends no more, only sooner: the window leaves in a burst
 * at the start of each round trip, which is what overflows the buffers on the way. */
static double lt_flow_cap(const struct udt_cc *cc)
{
    double rtt = (double)cc->u.lt.min_rtt_us + SYN;
    return cc->max_cwnd >= 1 ? cc->max_cwnd * 1e6 / rtt : 1e9;
}

static void lt_apply(struct udt_cc *cc)
{
    struct udt_cc_lt *l = &cc->u.lt;
    if (l->startup) {
        cc->pkt_period_us = 1;
        return;
    }
    if (l->btl_bw < LT_MIN_BW)
        l->btl_bw = LT_MIN_BW;
    /* 16 packets leave per 15 periods (every 16th pair goes back to back as
     * a capacity probe), so the period is stretched to keep the average */
    double rate = lt_gain[l->phase] * l->btl_bw, cap = lt_flow_cap(cc);
    if (rate > cap)
        rate = cap;
    cc->pkt_period_us = clamp_period(1e6 / rate * 16.0 / 15.0);
    cc->cwnd = 2.0 * l->btl_bw * ((double)cc->rtt_us + SYN) / 1e6 + 16;
}

static void lt_init(struct udt_cc *cc, uint64_t now_us)
{
    struct udt_cc_lt *l = &cc->u.lt;
    memset(l, 0, sizeof *l);
    l->startup = true;
    l->last_ack = cc->snd_curr_seq;
    l->last_rc_us = now_us;
    l->round_start_us = now_us;
    l->min_rtt_us = cc->rtt_us;
    l->min_rtt_stamp_us = now_us;
    l->sample_at_us = (uint32_t)now_us;
    cc->ack_period_us = UDT_SYN_US;
    cc->cwnd = 16;
    cc->pkt_period_us = 1;
}

/* what the path passed per second in the last two rounds, the higher (0: none yet) */
static double lt_passed(const struct udt_cc_lt *l)
{
    return l->passed > l->passed_prev ? l->passed : l->passed_prev;
}

static void lt_measure_passed(struct udt_cc_lt *l, uint64_t now_us)
{
    if (now_us <= l->round_start_us)
        return;
    double n = l->pass_sent > l->pass_lost ? (double)(l->pass_sent - l->pass_lost) : 0;
    l->passed_prev = l->passed;
    l->passed = n * 1e6 / (double)(now_us - l->round_start_us);
    l->pass_sent = l->pass_lost = 0;
}

static void lt_take_sample(struct udt_cc *cc, uint64_t now_us)
{
    struct udt_cc_lt *l = &cc->u.lt;
    if (cc->rate_sample == 0)
        return;
    double s = cc->rate_sample;
    cc->rate_sample = 0;
    /* the peer cannot receive faster than we sent: its speed is the median of its
     * arrival intervals, which within a burst (pacing in micro-bursts, a window sent
     * at once) are the sender's per-packet cost, and believing that raised the rate
     * until the receiver's socket overflowed (libudt at 0 % loss).  Only a report
     * that would raise the estimate is capped so: while a hole stalls the window we
     * send little, and the peer's report of what still arrives is no overestimate */
    uint32_t dt = (uint32_t)now_us - l->sample_at_us;
    if (!l->startup && s > l->btl_bw && dt >= LT_SAMPLE_MIN_US && dt < LT_SAMPLE_MAX_US) {
        /* less what was lost meanwhile: a report of a batch's speed (see
         * lt_flow_cap) otherwise raised the estimate past what got through */
        double got = l->sample_sent > l->sample_lost ? l->sample_sent - l->sample_lost : 0;
        double sent = got * 1e6 / dt * LT_SAMPLE_OVER_SENT;
        if (sent < l->btl_bw)
            sent = l->btl_bw;
        if (s > sent)
            s = sent;
    }
    l->sample_sent = l->sample_lost = 0;
    l->sample_at_us = (uint32_t)now_us;
    double cap = lt_flow_cap(cc);
    if (s > cap)
        s = cap;
    if (s <= 0)
        return;
    l->last_sample = s;
    if (s > l->probe_max)
        l->probe_max = s;
    /* the peak is what the peer reported outside the start, whose bursts make
     * reports of the sender's per-packet cost */
    if (!l->startup && s > l->peak_bw)
        l->peak_bw = s;
    if (s > l->bw_cur)
        l->bw_cur = s;
    l->btl_bw = l->bw_cur > l->bw_prev ? l->bw_cur : l->bw_prev;
}

static void lt_update_min_rtt(struct udt_cc *cc, uint64_t now_us)
{
    struct udt_cc_lt *l = &cc->u.lt;
    if (cc->rtt_us == 0)
        return;
    if (cc->rtt_us < l->min_rtt_us || now_us - l->min_rtt_stamp_us > LT_MIN_RTT_WIN_US) {
        l->min_rtt_us = cc->rtt_us;
        l->min_rtt_stamp_us = now_us;
    }
}

static bool lt_delay_high(const struct udt_cc *cc)
{
    const struct udt_cc_lt *l = &cc->u.lt;
    uint32_t margin = l->min_rtt_us / 2 > LT_DELAY_MIN_US ? l->min_rtt_us / 2 : LT_DELAY_MIN_US;
    return (uint64_t)cc->rtt_us > (uint64_t)l->min_rtt_us + margin;
}

static void lt_exit_startup(struct udt_cc *cc)
{
    struct udt_cc_lt *l = &cc->u.lt;
    l->startup = false;
    /* what the window carried per round, when the peer's reports say less: its first
     * ones come from a packet window still holding its start values (libudt's: 1 s
     * intervals, 1 packet/s), and a start that ends on those would pace at the floor,
     * whose own reports then keep it there */
    double carried = 1e6 / window_period(cc);
    if (l->btl_bw < carried)
        l->btl_bw = carried;
    if (l->btl_bw > lt_flow_cap(cc))
        l->btl_bw = lt_flow_cap(cc);
    l->bw_cur = l->bw_prev = l->btl_bw;
    l->bw_rounds = 0;
    double p = l->start_sent ? (double)l->start_lost / (double)l->start_sent : 0;
    l->loss_base = p < LT_LOSS_MARGIN ? p : LT_LOSS_MARGIN;
    l->phase = LT_DRAIN; /* empty what the start queued */
    l->probe_base = 0;
    l->hold = LT_HOLD_ROUNDS;
    l->round_sent = l->round_lost = 0;
}

/* congestion: believe the delivery rate the peer reports now, then drain */
static void lt_respond(struct udt_cc *cc)
{
    struct udt_cc_lt *l = &cc->u.lt;
    /* at most halved per response: a report taken while the window stood still (a
     * hole at the ACK point, the sender stalled) says how little arrived, not what
     * the path carries, and trusting it whole dropped the rate to the floor, where
     * its own reports kept it (seen: a start against libudt at 5 % loss, 80 pkts/s) */
    /* the report, or what passed when less: a report of a batch's speed (see
     * lt_flow_cap) is no delivery rate, and cut nothing */
    double floor = l->btl_bw * LT_MAX_CUT, now = l->last_sample, passed = lt_passed(l);
    if (passed > 0 && (now <= 0 || passed < now))
        now = passed;
    if (now > 0 && now < l->btl_bw)
        l->btl_bw = now > floor ? now : floor;
    l->bw_cur = l->bw_prev = l->btl_bw;
    l->bw_rounds = 0;
    l->phase = LT_DRAIN;
    l->probe_base = 0; /* a drain after a response, no probe to judge */
    l->hold = LT_HOLD_ROUNDS;
    cc->decreases++;
}

/*
 * Climbing back after a fall.  When the estimate is far below the connection's peak,
 * the cycle's probe is a round at gain 2 instead of 1.25; each round the path takes
 * it all (its reports show up to 15/16 x 2 of the estimate), another follows, until
 * the estimate is back near the peak.  Without it an estimate that fell (a timeout,
 * responses to a loaded host's delay spikes, a report taken while a hole stalled the
 * window: not the path) climbs 1.17 x per cycle at best, seconds from the floor.  A
 * climb the path does not take shows that it shrank: the peak is forgotten, and the
 * cycle goes on from the estimate.
 */
static bool lt_fallen(const struct udt_cc_lt *l, double below)
{
    return l->btl_bw < l->peak_bw * below;
}

/* the phase after the probe, the drain or a climbing round */
static uint8_t lt_after_probe(struct udt_cc *cc)
{
    struct udt_cc_lt *l = &cc->u.lt;
    bool took = l->probe_base > 0 && l->probe_max >= l->probe_base * LT_PROBE_OK;
    if (l->phase != LT_CLIMB)
        return l->phase == LT_PROBE ? LT_DRAIN : (uint8_t)(LT_DRAIN + 1);
    if (!took) {
        l->peak_bw = l->btl_bw;
        return LT_DRAIN;
    }
    return lt_fallen(l, LT_CLIMBED) ? LT_CLIMB : LT_DRAIN;
}

static void lt_round_end(struct udt_cc *cc, uint64_t now_us)
{
    struct udt_cc_lt *l = &cc->u.lt;
    lt_measure_passed(l, now_us);
    l->round_start_us = now_us;
    bool have_loss = l->round_sent >= LT_MIN_ROUND_PKTS;
    double p = have_loss ? (double)l->round_lost / (double)l->round_sent : 0;
    if (p > 1)
        p = 1;

    if (l->startup) {
        if (l->btl_bw >= l->full_bw * 1.25) {
            l->full_bw = l->btl_bw;
            l->full_cnt = 0;
        } else {
            l->full_cnt++;
        }
        if (have_loss)
            l->round_sent = l->round_lost = 0;
        if (l->full_cnt >= 3 || (have_loss && p > LT_STARTUP_LOSS) || lt_delay_high(cc))
            lt_exit_startup(cc);
        return;
    }

    /* bottleneck max filter: two buckets of LT_BW_ROUNDS rounds */
    if (++l->bw_rounds >= LT_BW_ROUNDS) {
        /* a bucket without a report (none came: the peer's speed window was not
         * full, or the sender idled) keeps the estimate it had */
        if (l->bw_cur > 0)
            l->bw_prev = l->bw_cur;
        l->bw_cur = 0;
        l->bw_rounds = 0;
        l->btl_bw = l->bw_prev;
    }

    double gain = lt_gain[l->phase];
    bool congested = false;
    if (l->hold > 0) {
        l->hold--;
    } else {
        double limit = l->loss_base * LT_LOSS_FACTOR;
        if (limit < l->loss_base + LT_LOSS_MARGIN)
            limit = l->loss_base + LT_LOSS_MARGIN;
        /* a probe that raises the loss found the ceiling: its samples do not
         * raise the estimate (delivery is capped), so no response needed */
        if (have_loss && p > limit && gain <= 1.0)
            congested = true;
        if (lt_delay_high(cc))
            congested = true;
    }
    /* the base follows the loss seen at steady rate, slowly: a persistent
     * level is random loss, not something our rate causes */
    if (have_loss && gain <= 1.0) {
        l->loss_base += (p - l->loss_base) * LT_BASE_ALPHA;
        if (l->loss_base > LT_BASE_MAX)
            l->loss_base = LT_BASE_MAX;
    }
    if (have_loss)
        l->round_sent = l->round_lost = 0;

    if (congested) {
        lt_respond(cc);
        return;
    }
    if (l->phase == LT_PROBE || l->phase == LT_DRAIN || l->phase == LT_CLIMB)
        l->phase = lt_after_probe(cc);
    else
        l->phase = (uint8_t)((l->phase + 1) % LT_CYCLE);
    if (l->phase == LT_PROBE && lt_fallen(l, LT_FALLEN)) {
        l->phase = LT_CLIMB;
        l->restarts++;
    }
    if (l->phase == LT_PROBE || l->phase == LT_CLIMB) {
        l->probe_base = l->btl_bw;
        l->probe_max = 0;
    }
}

static void lt_on_ack(struct udt_cc *cc, uint32_t ack, uint64_t now_us)
{
    struct udt_cc_lt *l = &cc->u.lt;
    lt_update_min_rtt(cc, now_us);
    lt_take_sample(cc, now_us);
    if (l->startup && now_us - l->last_rc_us >= UDT_SYN_US) {
        l->last_rc_us = now_us;
        if (udt_seq_cmp(ack, l->last_ack) >= 0)
            cc->cwnd += udt_seq_len(l->last_ack, ack);
        l->last_ack = ack;
        if (cc->cwnd > cc->max_cwnd)
            lt_exit_startup(cc);
    }
    if ((double)(now_us - l->round_start_us) >= lt_round_us(cc))
        lt_round_end(cc, now_us);
    lt_apply(cc);
}

static void lt_on_timeout(struct udt_cc *cc)
{
    struct udt_cc_lt *l = &cc->u.lt;
    if (l->startup) {
        /* Before the peer reported any rate the start goes on: ending it would set
         * the estimate from the first window (16 packets per RTT + SYN, the RTT still
         * its 100 ms start value), and no peak exists yet to climb back to.  A first
         * packet lost with its NAK leaves the peer nothing to acknowledge, so EXP is
         * the first event (seen: 136 packets/s, 52 s for 16 MB at 50 ms RTT). */
        if (l->btl_bw >= LT_MIN_BW)
            lt_exit_startup(cc);
    } else {
        l->btl_bw /= 2;
        l->bw_cur = l->bw_prev = l->btl_bw;
        l->bw_rounds = 0;
        cc->decreases++;
    }
    lt_apply(cc);
}

/* lost packets: the round's loss rate, what passed, the next report's cap */
static void lt_count_lost(struct udt_cc_lt *l, uint32_t n)
{
    l->round_lost += n;
    l->pass_lost += n;
    l->sample_lost = n > UINT32_MAX - l->sample_lost ? UINT32_MAX : l->sample_lost + n;
    if (l->startup)
        l->start_lost += n;
}

/* ================================================================ interface */

void udt_cc_init(struct udt_cc *cc, enum udt_cc_kind kind, uint32_t mss, uint32_t flow_window,
                 uint32_t snd_curr_seq, uint64_t now_us)
{
    memset(cc, 0, sizeof *cc);
    cc->kind = kind == UDT_CC_LT ? UDT_CC_LT : UDT_CC_DAIMD;
    cc->mss = mss ? mss : 1500;
    cc->max_cwnd = flow_window;
    cc->rtt_us = 10 * UDT_SYN_US;
    cc->rcv_rate = 16;
    cc->bandwidth = 1;
    cc->snd_curr_seq = snd_curr_seq & UDT_SEQ_MAX;
    if (cc->kind == UDT_CC_LT)
        lt_init(cc, now_us);
    else
        daimd_init(cc, now_us);
}

void udt_cc_on_ack(struct udt_cc *cc, uint32_t ack_seq, uint64_t now_us)
{
    ack_seq &= UDT_SEQ_MAX;
    if (cc->kind == UDT_CC_LT)
        lt_on_ack(cc, ack_seq, now_us);
    else
        daimd_on_ack(cc, ack_seq, now_us);
}

void udt_cc_on_loss(struct udt_cc *cc, uint32_t first_lost, uint32_t nlost, uint64_t now_us)
{
    (void)now_us;
    if (cc->kind == UDT_CC_LT) {
        lt_count_lost(&cc->u.lt, nlost);
    } else {
        daimd_on_loss(cc, first_lost & UDT_SEQ_MAX);
    }
}

void udt_cc_on_resend(struct udt_cc *cc, uint32_t n)
{
    if (cc->kind == UDT_CC_LT)
        lt_count_lost(&cc->u.lt, n);
}

void udt_cc_on_timeout(struct udt_cc *cc, uint64_t now_us)
{
    (void)now_us;
    if (cc->kind == UDT_CC_LT)
        lt_on_timeout(cc);
    else
        daimd_on_timeout(cc);
}

void udt_cc_on_pkt_sent(struct udt_cc *cc, uint32_t seq, bool retrans, uint64_t now_us)
{
    (void)now_us;
    seq &= UDT_SEQ_MAX;
    if (!retrans && udt_seq_cmp(seq, cc->snd_curr_seq) > 0)
        cc->snd_curr_seq = seq;
    if (cc->kind == UDT_CC_LT) {
        cc->u.lt.round_sent++;
        cc->u.lt.pass_sent++;
        cc->u.lt.sample_sent++;
        if (cc->u.lt.startup)
            cc->u.lt.start_sent++;
    }
}

void udt_cc_on_warning(struct udt_cc *cc)
{
    cc->pkt_period_us = clamp_period(ceil_d(cc->pkt_period_us * 1.125));
    if (cc->kind == UDT_CC_LT && !cc->u.lt.startup) {
        /* keep the estimate consistent with the slower period */
        cc->u.lt.btl_bw /= 1.125;
        cc->u.lt.bw_cur = cc->u.lt.bw_prev = cc->u.lt.btl_bw;
    }
    cc->decreases++;
}

const char *udt_cc_name(enum udt_cc_kind kind)
{
    return kind == UDT_CC_LT ? "loss-tolerant" : "daimd";
}
