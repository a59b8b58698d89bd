/*
 * hist.h - the latency histogram of rtudp_shm.h (struct rtudp_hist): bucket
 * arithmetic, recording, and the reader side (snapshot, merge, diff, percentiles).
 *
 * Buckets (HdrHistogram-style log-linear):
 *   - values 0..255 ns have one bucket each (index = value);
 *   - a value v >= 256 whose top bit is k (2^k <= v < 2^(k+1)) falls in one of 128
 *     equal buckets of width 2^(k-7) that cut [2^k, 2^(k+1)):
 *         index = 256 + (k - 8) * 128 + ((v >> (k - 7)) - 128)
 *     so a bucket is never wider than 1/128 of the values in it (~0.8 %);
 *   - values >= 2^36 ns (~68.7 s) are recorded as 2^36 - 1, in the last bucket,
 *     and counted in `clamped`; negative values are recorded as 0 and counted in
 *     `negative`.
 *
 * Concurrency: one writer (the owning worker) records into a histogram in shared
 * memory while any number of readers, in any process, read it without locks.
 * Every word has that single writer, so the writer needs no read-modify-write
 * atomics, only relaxed atomic stores (readers never see a torn word); a reader
 * takes rtudp_hist_snapshot() into private memory and works on the copy.
 *
 * The CDEF block is also given to cffi (csrc/build_ffi.py), so Python calls
 * exactly these.
 */
#ifndef RTUDP_HIST_H
#define RTUDP_HIST_H

#include "rtudp_shm.h"

/* BEGIN CDEF */
/* bucket arithmetic; an index past the last bucket is treated as the last one */
uint32_t rtudp_hist_index(uint64_t v);
uint64_t rtudp_hist_lower(uint32_t i);      /* smallest value of bucket i */
uint64_t rtudp_hist_upper(uint32_t i);      /* largest value of bucket i (inclusive) */

/* the owner (single writer) only: record one value, or zero every word */
void rtudp_hist_record(struct rtudp_hist *h, int64_t v_ns);
/* the same value `times` times (packets that left together) */
void rtudp_hist_record_n(struct rtudp_hist *h, int64_t v_ns, uint64_t times);
void rtudp_hist_reset(struct rtudp_hist *h);

/*
 * Anyone: copy a histogram that may be written concurrently into private memory,
 * word by word.  The copy is made self-consistent: its count is the sum of its
 * buckets, and its min/max lie in its lowest/highest non-empty buckets.
 */
void rtudp_hist_snapshot(const struct rtudp_hist *h, struct rtudp_hist *out);
/* into += from; from should be a snapshot (its count is taken as is), into has a
 * single writer: the caller */
void rtudp_hist_merge(struct rtudp_hist *into, const struct rtudp_hist *from);
/*
 * out = what was recorded between two snapshots of one histogram (now - before).
 * min/max come from the lowest/highest non-empty bucket bounds (tightened by now's
 * min/max).  If a bucket went down, the histogram was reset in between: out = now.
 * out may be the same object as now or before.
 */
void rtudp_hist_diff(const struct rtudp_hist *now, const struct rtudp_hist *before,
                     struct rtudp_hist *out);
/*
 * The p-th percentile (p in [0, 100], nearest rank): the upper bound of the
 * bucket holding it, clamped to [min_ns, max_ns]; p <= 0 gives min_ns.  0 when
 * the histogram is empty.  Meant for private copies (a snapshot).
 */
uint64_t rtudp_hist_percentile(const struct rtudp_hist *h, double p);
/* END CDEF */

/* the owner only: ask for the lines rtudp_hist_record_n(h, v_ns, ...) will write (the
 * first line and v_ns's bucket), so that several records' misses overlap */
void rtudp_hist_prefetch_record(struct rtudp_hist *h, int64_t v_ns);

#endif /* RTUDP_HIST_H */
