/*
 * histbatch.c - lateness values of one send batch, recorded after its sends (see
 * histbatch.h).
 */
#include "histbatch.h"
#include "hist.h"

static void record_kept(struct rtudp_histbatch *b)
{
    for (uint32_t i = 0; i < b->len; i++)
        rtudp_hist_prefetch_record(b->hist[i], b->value_ns[i]);
    for (uint32_t i = 0; i < b->len; i++)
        rtudp_hist_record_n(b->hist[i], b->value_ns[i], b->times[i]);
    b->len = 0;
}

void rtudp_histbatch_begin(struct rtudp_histbatch *b)
{
    b->open = true;
}

void rtudp_histbatch_add(struct rtudp_histbatch *b, struct rtudp_hist *h, int64_t v_ns,
                         uint64_t times)
{
    if (!b || !b->open) {
        rtudp_hist_record_n(h, v_ns, times);
        return;
    }
    if (b->len == RTUDP_HISTBATCH_MAX)
        record_kept(b);
    b->hist[b->len] = h;
    b->value_ns[b->len] = v_ns;
    b->times[b->len] = times;
    b->len++;
}

void rtudp_histbatch_end(struct rtudp_histbatch *b)
{
    record_kept(b);
    b->open = false;
}
