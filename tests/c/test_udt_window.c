/*
 * test_udt_window.c - the measurement windows (csrc/udt/udt_window.c) and the
 * timers (csrc/udt/udt_timers.h): ACK/ACK2 RTT pairing with overwrite and
 * retirement, receive speed and probe-pair capacity with the median filter
 * (equal to UDT4's for seeded arrival sequences),
 * EXP intervals, the 17-EXP broken rule (45.9 s with the 300 ms floor) and the
 * configurable silence limit, ACK/light-ACK timing, the NAK interval.
 */
#include <math.h>

#include "udt/udt_timers.h"
#include "udt/udt_window.h"

#include "harness.h"

static void ack_window_rtt(void)
{
    static struct udt_ackwin w;
    udt_ackwin_init(&w);
    uint32_t seq = 0;
    CHECK_EQ(udt_ackwin_ack2(&w, 1, 100, &seq), -1); /* nothing stored */
    udt_ackwin_store(&w, 1, 1000, 10000);
    udt_ackwin_store(&w, 2, 1100, 20000);
    udt_ackwin_store(&w, 3, 1200, 30000);
    CHECK_EQ(udt_ackwin_ack2(&w, 2, 25000, &seq), 5000);
    CHECK_EQ(seq, 1100);
    /* ACK 1 is retired with ACK 2 (older); ACK 2 itself too */
    CHECK_EQ(udt_ackwin_ack2(&w, 1, 26000, &seq), -1);
    CHECK_EQ(udt_ackwin_ack2(&w, 2, 26000, &seq), -1);
    CHECK_EQ(udt_ackwin_ack2(&w, 3, 31000, &seq), 1000);
    CHECK_EQ(seq, 1200);
    CHECK_EQ(w.n, 0);
    /* a clock that went back gives 0, not a negative RTT */
    udt_ackwin_store(&w, 4, 1300, 50000);
    CHECK_EQ(udt_ackwin_ack2(&w, 4, 40000, &seq), 0);
    /* overwrite: after SIZE + 10 stores the first 10 are gone */
    udt_ackwin_init(&w);
    for (uint32_t i = 0; i < UDT_ACKWIN_SIZE + 10; i++)
        udt_ackwin_store(&w, i, i * 10, i);
    CHECK_EQ(w.n, UDT_ACKWIN_SIZE);
    CHECK_EQ(udt_ackwin_ack2(&w, 9, 100000, &seq), -1);
    CHECK_EQ(udt_ackwin_ack2(&w, 10, 100000, &seq), 100000 - 10);
    CHECK_EQ(seq, 100);
    CHECK_EQ(w.n, UDT_ACKWIN_SIZE - 1);
    CHECK_EQ(udt_ackwin_ack2(&w, UDT_ACKWIN_SIZE + 9, 200000, &seq), 200000 - UDT_ACKWIN_SIZE - 9);
    CHECK_EQ(w.n, 0);
}

static void receive_speed(void)
{
    struct udt_pktwin w;
    uint64_t t = 5000000;
    udt_pktwin_init(&w, t);
    /* libudt's start: intervals of 1 s, a filter that keeps them: 1 pkt/s */
    CHECK_EQ(udt_pktwin_rcv_speed(&w), 1);
    CHECK_EQ(udt_pktwin_bandwidth(&w), 1000); /* 1 ms probe spacing */
    /* 100 µs apart: 10000 packets/s once the window is full of them */
    uint32_t seq = 100;
    for (int i = 0; i < 16; i++) {
        t += 100;
        udt_pktwin_arrival(&w, seq++, t);
    }
    CHECK_EQ(udt_pktwin_rcv_speed(&w), 10000);
    /* a gap (a lost packet: 200 µs) and an outlier (a 5 ms stall) are
     * handled by the median filter: the stall is dropped */
    t += 200;
    udt_pktwin_arrival(&w, seq++, t);
    t += 5000;
    udt_pktwin_arrival(&w, seq++, t);
    /* 14 x 100 + 200 over 15 kept: mean 106 (integer, as libudt) -> 9434 */
    CHECK_EQ(udt_pktwin_rcv_speed(&w), (1000000 + 106 - 1) / 106);
    /* too few survivors: unknown (0) */
    for (int i = 0; i < 8; i++) {
        t += 100000;
        udt_pktwin_arrival(&w, seq++, t);
    }
    for (int i = 0; i < 8; i++) {
        t += 10;
        udt_pktwin_arrival(&w, seq++, t);
    }
    uint32_t v[16];
    for (int i = 0; i < 16; i++)
        v[i] = i < 8 ? 100000 : 10;
    CHECK_EQ(udt_median_filtered_mean(v, 16, 9, false), 0);
    CHECK_EQ(udt_pktwin_rcv_speed(&w), 0);
    /* all in the same microsecond: never a division by zero */
    for (int i = 0; i < 16; i++)
        udt_pktwin_arrival(&w, seq++, t);
    CHECK_EQ(udt_pktwin_rcv_speed(&w), 0);
}

static void probe_pairs(void)
{
    struct udt_pktwin w;
    uint64_t t = 0;
    udt_pktwin_init(&w, t);
    /* pairs 0x..0 / 0x..1 arrive 50 µs apart (20000 pkts/s bottleneck),
     * the other packets 200 µs apart; crossing the 2^31 wrap */
    uint32_t seq = 0x7FFFFF00u;
    for (int i = 0; i < 64 * 16; i++) {
        t += (seq & 0xF) == 1 ? 50 : 200;
        udt_pktwin_arrival(&w, seq, t);
        seq = (seq + 1) & 0x7FFFFFFFu;
    }
    CHECK_EQ(udt_pktwin_bandwidth(&w), 20000);
    /* as UDT4, a 0x1 packet is timed from the latest 0x0 one, whatever came
     * between: a lost 0x20 gives the bogus 0x10 -> 0x21, which the median drops */
    udt_pktwin_init(&w, t);
    udt_pktwin_arrival(&w, 0x01, t += 50); /* no 0x0 yet: nothing recorded */
    CHECK_EQ(w.probe_pos, 0);
    udt_pktwin_arrival(&w, 0x10, t += 50);
    udt_pktwin_arrival(&w, 0x21, t += 1000000); /* 0x20 lost */
    CHECK_EQ(w.probe[0], 1000000);
    CHECK_EQ(udt_pktwin_bandwidth(&w), 1000);
    udt_pktwin_arrival(&w, 0x30, t += 10);
    udt_pktwin_arrival(&w, 0x32, t += 10); /* 0x31 lost */
    udt_pktwin_arrival(&w, 0x41, t += 10);
    CHECK_EQ(w.probe_pos, 2);
    CHECK_EQ(w.probe[1], 20);
    udt_pktwin_arrival(&w, 0x50, t += 10);
    udt_pktwin_arrival(&w, 0x51, t += 7);
    CHECK_EQ(w.probe[2], 7);
}

/* UDT4's CPktTimeWindow (window.cpp) written out as it is, for the comparison below:
 * int intervals, std::nth_element over the first n - 1 slots (the (n/2)-th of them
 * in order), int sums, the speed from the int mean, the capacity in double. */
struct udt4_win {
    int pkt[UDT_ARRWIN_SIZE], probe[UDT_PROBEWIN_SIZE];
    int pkt_pos, probe_pos;
    int64_t last_arr, probe_time;
    bool probe_seen; /* UDT4 starts m_ProbeTime at 0 (a garbage first interval): skipped */
};

static void udt4_init(struct udt4_win *u, int64_t now)
{
    memset(u, 0, sizeof *u);
    for (unsigned i = 0; i < UDT_ARRWIN_SIZE; i++)
        u->pkt[i] = 1000000;
    for (unsigned i = 0; i < UDT_PROBEWIN_SIZE; i++)
        u->probe[i] = 1000;
    u->last_arr = now;
}

static void udt4_arrival(struct udt4_win *u, uint32_t seq, int64_t now)
{
    u->pkt[u->pkt_pos] = (int)(now - u->last_arr); /* onPktArrival */
    u->pkt_pos = (u->pkt_pos + 1) % (int)UDT_ARRWIN_SIZE;
    u->last_arr = now;
    if ((seq & 0xF) == 0) { /* probe1Arrival */
        u->probe_time = now;
        u->probe_seen = true;
    } else if ((seq & 0xF) == 1 && u->probe_seen) { /* probe2Arrival */
        u->probe[u->probe_pos] = (int)(now - u->probe_time);
        u->probe_pos = (u->probe_pos + 1) % (int)UDT_PROBEWIN_SIZE;
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int udt4_median(const int *w, int n)
{
    int r[UDT_PROBEWIN_SIZE];
    memcpy(r, w, sizeof(int) * (size_t)(n - 1));
    qsort(r, (size_t)(n - 1), sizeof(int), cmp_int); /* what nth_element leaves at n/2 */
    return r[n / 2];
}

static int udt4_speed(const struct udt4_win *u) /* getPktRcvSpeed */
{
    int n = (int)UDT_ARRWIN_SIZE, median = udt4_median(u->pkt, n), count = 0, sum = 0;
    int upper = median << 3, lower = median >> 3;
    for (int i = 0; i < n; i++)
        if (u->pkt[i] < upper && u->pkt[i] > lower) {
            count++;
            sum += u->pkt[i];
        }
    return count > (n >> 1) ? (int)ceil(1000000.0 / (sum / count)) : 0;
}

static int udt4_bandwidth(const struct udt4_win *u) /* getBandwidth */
{
    int n = (int)UDT_PROBEWIN_SIZE, median = udt4_median(u->probe, n), count = 1, sum = median;
    int upper = median << 3, lower = median >> 3;
    for (int i = 0; i < n; i++)
        if (u->probe[i] < upper && u->probe[i] > lower) {
            count++;
            sum += u->probe[i];
        }
    if (sum == 0)
        return 0; /* UDT4: 1e6 / 0.0, out of int's range (a sender ignores it) */
    return (int)ceil(1000000.0 / ((double)sum / (double)count));
}

/* The receive speed and capacity a full ACK carries are UDT4's for the same arrival
 * times: seeded arrival sequences (bursts a few µs apart as a relay or a NIC hands
 * them over, steady spacing, stalls, lost and resent packets, probe pairs in the
 * same µs) compared after every arrival. */
static void rates_as_udt4(void)
{
    uint64_t rng = 68;
    static struct udt_pktwin w;
    static struct udt4_win u;
    unsigned cases = 0, speeds = 0, caps = 0, zero_speed = 0;
    for (int c = 0; c < 300; c++) {
        int64_t t = 1000000 + (int64_t)rnd(&rng, 1000000);
        udt_pktwin_init(&w, (uint64_t)t);
        udt4_init(&u, t);
        uint32_t seq = (uint32_t)rnd(&rng, 0x80000000u), kind = (uint32_t)(c % 4);
        for (int k = 0; k < 1500; k++) {
            uint32_t gap;
            switch (kind) {
            case 0: /* bursts of 1..64 packets 0-3 µs apart, 1-20 ms between them */
                gap = rnd(&rng, 32) ? (uint32_t)rnd(&rng, 4) : 1000 + (uint32_t)rnd(&rng, 19000);
                break;
            case 1: /* steady 20-200 µs with jitter */
                gap = 20 + (uint32_t)rnd(&rng, 180);
                break;
            case 2: /* steady with stalls */
                gap = rnd(&rng, 20) ? 80 + (uint32_t)rnd(&rng, 20) : (uint32_t)rnd(&rng, 300000);
                break;
            default: /* everything at once */
                gap = (uint32_t)rnd(&rng, 3) == 0 ? (uint32_t)rnd(&rng, 3)
                                                  : (uint32_t)rnd(&rng, 1u << (rnd(&rng, 17)));
                break;
            }
            t += gap;
            uint32_t r = (uint32_t)rnd(&rng, 100);
            uint32_t s = r < 3 ? (seq - 1 - (uint32_t)rnd(&rng, 40)) & 0x7FFFFFFFu /* a resend */
                                : (seq = (seq + 1 + (r < 6)) & 0x7FFFFFFFu);      /* r 3..5: one lost */
            udt_pktwin_arrival(&w, s, (uint64_t)t);
            udt4_arrival(&u, s, t);
            CHECK_EQ((int)udt_pktwin_rcv_speed(&w), udt4_speed(&u));
            CHECK_EQ((int)udt_pktwin_bandwidth(&w), udt4_bandwidth(&u));
            speeds++;
            zero_speed += udt4_speed(&u) == 0;
            caps += udt4_bandwidth(&u) != 1000;
        }
        cases++;
    }
    CHECK_EQ(cases, 300u);
    /* the sequences reach both the filter's "unknown" and measured capacities */
    CHECK(zero_speed > 1000 && zero_speed < speeds / 2);
    CHECK(caps > speeds / 2);
}

static void exp_and_broken_libudt(void)
{
    struct udt_timers t;
    uint64_t now = 1000000;
    udt_timers_init(&t, 0, 0, now);
    /* RTT small: the 300 ms floor rules; k-th wait is k x 300 ms */
    uint32_t rtt = 1000, var = 500;
    CHECK_EQ(udt_exp_interval_us(1, rtt, var, UDT_MIN_EXP_US), 300000);
    CHECK_EQ(udt_exp_interval_us(3, rtt, var, UDT_MIN_EXP_US), 900000);
    /* RTT large: RTT + 4 var + SYN */
    CHECK_EQ(udt_exp_interval_us(2, 400000, 25000, UDT_MIN_EXP_US), 2 * 510000);
    int expiries = 0;
    uint64_t silent_from = now;
    for (;;) {
        uint64_t d = udt_timers_next_exp_us(&t, rtt, var);
        CHECK_EQ(udt_timers_check_exp(&t, d - 1, rtt, var), UDT_EXP_NONE);
        now = d;
        enum udt_exp_action a = udt_timers_check_exp(&t, now, rtt, var);
        if (a == UDT_EXP_BROKEN)
            break;
        CHECK_EQ(a, UDT_EXP_EXPIRED);
        expiries++;
    }
    /* 16 expiries, broken at the 17th: 0.3 x (1 + ... + 17) s = 45.9 s */
    CHECK_EQ(expiries, 16);
    CHECK_IN(now - silent_from, 45900000, 45900000 + 20);
    /* hearing from the peer resets the count */
    udt_timers_heard(&t, now);
    CHECK_EQ(t.exp_count, 1);
    CHECK_EQ(udt_timers_exp_deadline(&t, rtt, var), now + 300000);
}

static void broken_timeout_configured(void)
{
    struct udt_timers t;
    uint64_t now = 0;
    udt_timers_init(&t, 0, 5000000, now); /* 5 s */
    uint32_t rtt = 1000, var = 0;
    int expiries = 0;
    for (;;) {
        now = udt_timers_next_exp_us(&t, rtt, var);
        enum udt_exp_action a = udt_timers_check_exp(&t, now, rtt, var);
        if (a == UDT_EXP_BROKEN)
            break;
        if (a == UDT_EXP_EXPIRED)
            expiries++;
    }
    CHECK_EQ(now, 5000000); /* exactly at the limit, not at the next EXP */
    CHECK_EQ(expiries, 5);  /* 0.3, 0.9, 1.8, 3.0, 4.5 s */
    /* a floor of 100 ms */
    udt_timers_init(&t, 100000, 0, 0);
    CHECK_EQ(udt_timers_exp_deadline(&t, rtt, var), 100000);
}

static void ack_timing(void)
{
    struct udt_timers t;
    uint64_t now = 0;
    udt_timers_init(&t, 0, 0, now);
    CHECK_EQ(udt_timers_ack_due(&t, 9999, 0), UDT_ACKDUE_NONE);
    CHECK_EQ(udt_timers_ack_due(&t, 10000, 0), UDT_ACKDUE_ACK);
    CHECK(udt_timers_ack_full(&t, 10000)); /* the first ACK is full */
    udt_timers_ack_done(&t, 10000, 0);
    CHECK(udt_timers_ack_full(&t, 10000)); /* a timer run that sent nothing is no full ACK */
    udt_timers_full_ack_sent(&t, 10000);
    CHECK_EQ(t.next_ack_us, 20000);
    CHECK(!udt_timers_ack_full(&t, 15000)); /* within a SYN of the last full: short */
    CHECK(!udt_timers_ack_full(&t, 19999));
    CHECK(udt_timers_ack_full(&t, 20000)); /* the next timer run's ACK is full */
    /* light ACK every 64 packets between timer ACKs */
    int lights = 0;
    for (int i = 0; i < 200; i++) {
        udt_timers_data_arrived(&t, false, 10001);
        if (udt_timers_ack_due(&t, 10001, 0) == UDT_ACKDUE_LIGHT) {
            udt_timers_light_done(&t);
            lights++;
        }
    }
    CHECK_EQ(lights, 3); /* at 64, 128, 192 */
    /* the CC's ACK interval in packets */
    CHECK_EQ(udt_timers_ack_due(&t, 10001, 150), UDT_ACKDUE_ACK);
    udt_timers_ack_done(&t, 10001, 0);
    CHECK_EQ(t.pkt_count, 0);
    /* a short packet (end of a message) makes the ACK due now */
    udt_timers_data_arrived(&t, true, 12345);
    CHECK_EQ(udt_timers_ack_due(&t, 12345, 0), UDT_ACKDUE_ACK);
    /* the CC's ACK period */
    udt_timers_ack_done(&t, 12345, 2000);
    CHECK_EQ(t.next_ack_us, 14345);
}

static void nak_interval(void)
{
    /* libudt's floor: 300 ms */
    CHECK_EQ(udt_nak_interval_us(10000, 1000, 0, 0, UDT_MIN_NAK_US), 300000);
    /* rtudp's: RTT + 4 var + time to receive the lost packets */
    CHECK_EQ(udt_nak_interval_us(10000, 1000, 100, 10000, 20000), 14000 + 10000);
    CHECK_EQ(udt_nak_interval_us(10000, 1000, 0, 10000, 20000), 20000);
}

static const struct test tests[] = {
    T(ack_window_rtt),
    T(receive_speed),
    T(probe_pairs),
    T(rates_as_udt4),
    T(exp_and_broken_libudt),
    T(broken_timeout_configured),
    T(ack_timing),
    T(nak_interval),
};

HARNESS_MAIN(tests)
