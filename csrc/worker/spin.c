/*
 * spin.c - adaptive spin margin and spin budget (see spin.h).
 */
#include "spin.h"

#include <string.h>

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void rtudp_spin_init(struct rtudp_spin *s, int64_t start_ns, int64_t min_ns, int64_t max_ns,
                     int64_t budget_ns, int64_t window_ns, int64_t now)
{
    memset(s, 0, sizeof *s);
    if (min_ns < 0)
        min_ns = 0;
    if (max_ns < min_ns)
        max_ns = min_ns;
    s->min_ns = min_ns;
    s->max_ns = max_ns;
    s->margin_ns = clamp(start_ns, min_ns, max_ns);
    s->budget_ns = budget_ns > 0 ? budget_ns : 0;
    s->window_ns = window_ns > 0 ? window_ns : 1;
    s->window_start = now;
    s->window_cpu = -1; /* not known yet: the first rtudp_spin_room starts a window */
    s->sleep_cpu_ns = RTUDP_SPIN_SLEEP_CPU_START_NS;
}

void rtudp_spin_sleep_cost(struct rtudp_spin *s, int64_t cpu_ns)
{
    if (cpu_ns < 0)
        return;
    if (cpu_ns > s->max_ns)
        cpu_ns = s->max_ns; /* one preempted sleep must not make every gap a bridge */
    s->sleep_cpu_ns += (cpu_ns - s->sleep_cpu_ns) / 8;
}

int rtudp_spin_bridges(const struct rtudp_spin *s, int64_t gap_ns)
{
    /* a budget of 0 says: never spin */
    return s->budget_ns > 0 && gap_ns <= s->margin_ns &&
           gap_ns <= s->sleep_cpu_ns / 100 * RTUDP_SPIN_BRIDGE_PERCENT;
}

int rtudp_spin_long_park(int64_t gap_ns)
{
    return gap_ns >= RTUDP_SPIN_LONG_PARK_NS;
}

int rtudp_spin_park_naps(int64_t park_ns, int64_t long_ns, int spun, int64_t gap_ns)
{
    return park_ns >= long_ns && !(spun && rtudp_spin_long_park(gap_ns));
}

int64_t rtudp_spin_margin(const struct rtudp_spin *s, int64_t gap_ns)
{
    return rtudp_spin_long_park(gap_ns) ? s->max_ns : s->margin_ns;
}

/* nearest-rank percentile of the samples: the m-th largest, found with the m largest
 * kept in a short list (for the p99 of up to RTUDP_SPIN_SAMPLES, m is 1 or 2), which
 * is cheaper than sorting them all at every update */
static int64_t percentile(const struct rtudp_spin *s)
{
    uint32_t n = s->n_samples;
    uint32_t rank = (n * RTUDP_SPIN_PERCENTILE + 99) / 100; /* 1-based, rounded up */
    if (rank < 1)
        rank = 1;
    if (n == 0)
        return 0;
    uint32_t m = n - rank + 1;
    int64_t top[RTUDP_SPIN_SAMPLES]; /* the largest so far, descending */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        int64_t x = s->samples[i];
        uint32_t j;
        if (kept < m)
            j = kept++;
        else if (x > top[m - 1])
            j = m - 1;
        else
            continue;
        for (; j > 0 && top[j - 1] < x; j--)
            top[j] = top[j - 1];
        top[j] = x;
    }
    return top[m - 1];
}

void rtudp_spin_wake(struct rtudp_spin *s, int64_t late_ns)
{
    if (late_ns < 0)
        late_ns = 0;
    s->samples[s->next] = late_ns;
    s->next = (s->next + 1) % RTUDP_SPIN_SAMPLES;
    if (s->n_samples < RTUDP_SPIN_SAMPLES)
        s->n_samples++;
    /* follow quickly at first, then every few samples (the sort is not free) */
    if (++s->since_update >= RTUDP_SPIN_UPDATE_EVERY || s->n_samples < RTUDP_SPIN_UPDATE_EVERY) {
        s->since_update = 0;
        int64_t p = percentile(s);
        /* saturate: a multi-second stall must not overflow the sum */
        int64_t m = p > s->max_ns ? s->max_ns : p + RTUDP_SPIN_SLACK_NS;
        s->margin_ns = clamp(m, s->min_ns, s->max_ns);
    }
}

int rtudp_spin_window_due(const struct rtudp_spin *s, int64_t now)
{
    return now - s->window_start >= s->window_ns || now < s->window_start || s->window_cpu < 0;
}

int64_t rtudp_spin_room(struct rtudp_spin *s, int64_t now, int64_t cpu_now, int capped)
{
    if (rtudp_spin_window_due(s, now)) {
        s->window_start = now;
        s->window_spent = 0;
        s->window_cpu = cpu_now;
    }
    int64_t room = s->budget_ns - s->window_spent;
    if (room < 0)
        room = 0;
    if (!capped)
        return room;
    int64_t cpu_room = rtudp_spin_cpu_room(s, cpu_now);
    return cpu_room < room ? cpu_room : room;
}

int64_t rtudp_spin_cpu_room(const struct rtudp_spin *s, int64_t cpu_now)
{
    /* an estimate may put cpu_now a little below the window's start: count that as 0 */
    int64_t cpu_used = cpu_now > s->window_cpu ? cpu_now - s->window_cpu : 0;
    int64_t cpu_room = s->window_ns / 1000 * RTUDP_SPIN_CPU_CAP_PERMILLE - cpu_used;
    return cpu_room > 0 ? cpu_room : 0;
}

int rtudp_cap_ahead(int64_t gone, int64_t used, int64_t window_ns)
{
    int64_t cap = window_ns / 1000 * RTUDP_SPIN_CPU_CAP_PERMILLE;
    /* slack + gone x (cap - slack) / window, in us (no overflow) */
    return used > RTUDP_SPIN_PACE_SLACK_NS +
                      gone / 1000 * ((cap - RTUDP_SPIN_PACE_SLACK_NS) / (window_ns / 1000));
}

int rtudp_spin_ahead_of_pace(const struct rtudp_spin *s, int64_t now, int64_t cpu_now)
{
    return rtudp_cap_ahead(now - s->window_start, cpu_now - s->window_cpu, s->window_ns);
}

int64_t rtudp_spin_capped_sleep(int64_t gap, int64_t piece, int64_t base, int *sent_first)
{
    if (piece == base) {
        if (gap < RTUDP_SPIN_CAPPED_GAP_MIN_NS && !*sent_first) {
            *sent_first = 1;
            return 0;
        }
        if (gap > 0 && gap < piece)
            piece = gap;
    }
    *sent_first = 0;
    return piece;
}

void rtudp_spin_used(struct rtudp_spin *s, int64_t ns)
{
    if (ns <= 0)
        return;
    s->window_spent += ns;
    s->total_ns += (uint64_t)ns;
}
