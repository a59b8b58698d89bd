/*
 * histbatch.h - lateness values of one send batch, recorded after its sends.
 *
 * A histogram bucket is a line of its own histogram (in the channel's block) that
 * nothing else of the send touches, so recording a departure's lateness at once waits
 * for that line, one channel after another.  The TX thread instead keeps a batch's
 * values here while it sends and records them when the batch is done: every bucket's
 * line asked for first, so their misses overlap, then the values recorded, each into
 * its histogram as rtudp_hist_record_n would (hist.h: the single writer is still this
 * thread).  A reader sees them once the batch's sends are done, as it would have a
 * moment later anyway.
 *
 * Not thread-safe: one batch belongs to one TX thread.
 */
#ifndef RTUDP_HISTBATCH_H
#define RTUDP_HISTBATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "rtudp_shm.h"

/* values kept at most; one more records what is kept first */
#define RTUDP_HISTBATCH_MAX 256

struct rtudp_histbatch {
    bool open;                  /* between begin and end: add keeps values */
    uint32_t len;
    struct rtudp_hist *hist[RTUDP_HISTBATCH_MAX];
    int64_t value_ns[RTUDP_HISTBATCH_MAX];
    uint64_t times[RTUDP_HISTBATCH_MAX];
};

/* from now on, add keeps what it is given */
void rtudp_histbatch_begin(struct rtudp_histbatch *b);
/* record `times` values of v_ns into h: kept while the batch is open (recorded by
 * end), else recorded now */
void rtudp_histbatch_add(struct rtudp_histbatch *b, struct rtudp_hist *h, int64_t v_ns,
                         uint64_t times);
/* record everything kept, in the order it came, and close the batch */
void rtudp_histbatch_end(struct rtudp_histbatch *b);

#endif /* RTUDP_HISTBATCH_H */
