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
    if (w->arrivals < UDT_ARRWIN_SIZE)
        w->arrivals++;

    uint32_t low = seq & 0xFu;
    if (low == 0) {
        w->probe1_us = now_us;
        w->have_probe1 = true;
    } else if (low == 1 && w->have_probe1) {
        w->probe[w->probe_pos] = interval(w->probe1_us, now_us);
        w->probe_pos = (w->probe_pos + 1) % UDT_PROBEWIN_SIZE;
    }
}

#define WIN_MAX (UDT_PROBEWIN_SIZE > UDT_ARRWIN_SIZE ? UDT_PROBEWIN_SIZE : UDT_ARRWIN_SIZE)

/* UDT4's median: the (n/2)-th smallest of the first n - 1 values (its nth_element
 * over [0, n - 1) leaves the last slot out); for n < 3, the largest of them */
static uint32_t median_of(const uint32_t *v, uint32_t n)
{
    uint32_t tmp[WIN_MAX] = {0};
    if (n > WIN_MAX)
        n = WIN_MAX;
    if (n < 2)
        return n ? v[0] : 0;
    uint32_t m = n - 1;
    /* insertion sort: at most 63 values, a few times per 10 ms */
    for (uint32_t i = 0; i < m; i++) {
        uint32_t x = v[i], j = i;
        while (j > 0 && tmp[j - 1] > x) {
            tmp[j] = tmp[j - 1];
            j--;
        }
        tmp[j] = x;
    }
    return tmp[n / 2 < m ? n / 2 : m - 1];
}

struct filtered {
    uint64_t sum;
    uint32_t count;
};

/* the values within 8x of the median, and the median itself once more if asked */
static struct filtered median_filter(const uint32_t *v, uint32_t n, bool count_median)
{
    struct filtered f = {0, 0};
    if (n == 0)
        return f;
    uint32_t med = median_of(v, n);
    uint64_t upper = (uint64_t)med << 3, lower = med >> 3;
    if (count_median) {
        f.sum = med;
        f.count = 1;
    }
    for (uint32_t i = 0; i < n; i++)
        if (v[i] < upper && v[i] > lower) {
            f.sum += v[i];
            f.count++;
        }
    return f;
}

uint32_t udt_median_filtered_mean(const uint32_t *v, uint32_t n, uint32_t need, bool count_median)
{
    struct filtered f = median_filter(v, n, count_median);
    if (f.count < need || f.count == 0)
        return 0;
    return (uint32_t)(f.sum / f.count);
}

uint32_t udt_pktwin_rcv_speed(const struct udt_pktwin *w)
{
    /* more than half of the window must survive the filter; each survivor is
     * above median / 8 >= 0, so the mean is at least 1 */
    uint32_t mean = udt_median_filtered_mean(w->arr, UDT_ARRWIN_SIZE, UDT_ARRWIN_SIZE / 2 + 1, false);
    return mean ? (1000000u + mean - 1) / mean : 0; /* ceil(1e6 / integer mean), as UDT4 */
}

bool udt_pktwin_measured(const struct udt_pktwin *w)
{
    return w->arrivals > UDT_ARRWIN_SIZE / 2;
}

uint32_t udt_pktwin_bandwidth(const struct udt_pktwin *w)
{
    /* the median counts once more, so there is always a mean; UDT4 divides in
     * double (1e6 / (sum / count)) and rounds up: the same IEEE operations here,
     * with the rounding up done by hand (the worker does not link libm) */
    struct filtered f = median_filter(w->probe, UDT_PROBEWIN_SIZE, true);
    if (f.sum == 0)
        return 0;
    double q = 1000000.0 / ((double)f.sum / (double)f.count);
    uint32_t r = (uint32_t)q; /* q <= 1e6 * count / sum <= 6.5e7 */
    return (double)r < q ? r + 1 : r;
}
