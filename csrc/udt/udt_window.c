/* udt_window.c - ACK window and packet time window (see udt_window.h). */
#include "udt_window.h"

#include <string.h>

#include "udt_seq.h"

/* ------------------------------------------------------------ ACK window */

void udt_ackwin_init(struct udt_ackwin *w)
{
    w->head = 0;
    w->n = 0;
}

void udt_ackwin_store(struct udt_ackwin *w, uint32_t ackno, uint32_t seq, uint64_t now_us)
{
    w->e[w->head] = (struct udt_ackwin_entry){ackno, seq, now_us};
    w->head = (w->head + 1) % UDT_ACKWIN_SIZE;
    if (w->n < UDT_ACKWIN_SIZE)
        w->n++; /* else the oldest was just overwritten */
}

int64_t udt_ackwin_ack2(struct udt_ackwin *w, uint32_t ackno, uint64_t now_us, uint32_t *seq)
{
    /* oldest live entry first: k = 0 .. n-1 */
    uint32_t oldest = (w->head + UDT_ACKWIN_SIZE - w->n) % UDT_ACKWIN_SIZE;
    for (uint32_t k = 0; k < w->n; k++) {
        const struct udt_ackwin_entry *e = &w->e[(oldest + k) % UDT_ACKWIN_SIZE];
        if (e->ackno != ackno)
            continue;
        *seq = e->seq;
        int64_t rtt = now_us >= e->sent_us ? (int64_t)(now_us - e->sent_us) : 0;
        w->n -= k + 1; /* this one and everything older is done */
        return rtt;
    }
    return -1;
}

/* ------------------------------------------------------------ time window */

void udt_pktwin_init(struct udt_pktwin *w, uint64_t now_us)
{
    memset(w, 0, sizeof *w);
    /* libudt's starting values: 1 s between arrivals (speed unknown: the
     * filter keeps nothing useful until real intervals replace them), 1 ms
     * probe spacing (1000 packets/s until measured) */
    for (uint32_t i = 0; i < UDT_ARRWIN_SIZE; i++)
        w->arr[i] = 1000000;
    for (uint32_t i = 0; i < UDT_PROBEWIN_SIZE; i++)
        w->probe[i] = 1000;
    w->last_arr_us = now_us;
}

static uint32_t interval(uint64_t from, uint64_t to)
{
    if (to <= from)
        return 0;
    uint64_t d = to - from;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

void udt_pktwin_arrival(struct udt_pktwin *w, uint32_t seq, uint64_t now_us)
{
    w->arr[w->arr_pos] = interval(w->last_arr_us, now_us);
    w->arr_pos = (w->arr_pos + 1) % UDT_ARRWIN_SIZE;
    w->last_arr_us = now_us;

    uint32_t low = seq & 0xFu;
    if (low == 1 && w->have_probe1 && udt_seq_inc(w->probe1_seq) == (seq & UDT_SEQ_MAX)) {
        w->probe[w->probe_pos] = interval(w->probe1_us, now_us);
        w->probe_pos = (w->probe_pos + 1) % UDT_PROBEWIN_SIZE;
    }
    w->have_probe1 = low == 0;
    if (low == 0) {
        w->probe1_us = now_us;
        w->probe1_seq = seq & UDT_SEQ_MAX;
    }
}

static uint32_t median_of(const uint32_t *v, uint32_t n)
{
    uint32_t tmp[UDT_PROBEWIN_SIZE > UDT_ARRWIN_SIZE ? UDT_PROBEWIN_SIZE : UDT_ARRWIN_SIZE] = {0};
    if (n == 0)
        return 0;
    if (n > sizeof tmp / sizeof *tmp)
        n = sizeof tmp / sizeof *tmp;
    /* insertion sort: at most 64 values, a few times per 10 ms */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t x = v[i], j = i;
        while (j > 0 && tmp[j - 1] > x) {
            tmp[j] = tmp[j - 1];
            j--;
        }
        tmp[j] = x;
    }
    return tmp[n / 2];
}

uint32_t udt_median_filtered_mean(const uint32_t *v, uint32_t n, uint32_t need, bool count_median)
{
    if (n == 0)
        return 0;
    uint32_t med = median_of(v, n);
    uint64_t upper = (uint64_t)med << 3, lower = med >> 3;
    uint64_t sum = count_median ? med : 0;
    uint32_t cnt = count_median ? 1 : 0;
    for (uint32_t i = 0; i < n; i++)
        if (v[i] < upper && v[i] > lower) {
            sum += v[i];
            cnt++;
        }
    if (cnt < need || cnt == 0)
        return 0;
    return (uint32_t)(sum / cnt);
}

static uint32_t per_second(uint32_t mean_us)
{
    if (mean_us == 0)
        mean_us = 1; /* sub-microsecond spacing: report 1e6/s, never divide by 0 */
    return (1000000u + mean_us - 1) / mean_us; /* ceil, as libudt */
}

uint32_t udt_pktwin_rcv_speed(const struct udt_pktwin *w)
{
    /* more than half of the window must survive the filter */
    uint32_t mean = udt_median_filtered_mean(w->arr, UDT_ARRWIN_SIZE, UDT_ARRWIN_SIZE / 2 + 1, false);
    return mean ? per_second(mean) : 0;
}

uint32_t udt_pktwin_bandwidth(const struct udt_pktwin *w)
{
    /* libudt counts the median once more, so the result always exists */
    return per_second(udt_median_filtered_mean(w->probe, UDT_PROBEWIN_SIZE, 1, true));
}
