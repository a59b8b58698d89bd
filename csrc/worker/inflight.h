/*
 * inflight.h - per channel: the TX ring records handed to the timer queue and
 * not yet sent.
 *
 * The worker reads records in ring order but sends them in deadline order, and
 * frees ring space only once a packet has left (DESIGN.md, Rings: a restarted
 * worker then resends nothing and loses nothing).  So the ring can be freed only
 * up to the first record still pending.  This is a circular array in ring order:
 * push at the back when a record is queued, mark done (in any order) when it is
 * sent, and rtudp_inflight_release_point() drops the done entries at the front
 * and says how far the ring may be released.
 *
 * A slot is the entry's index in the array; it stays valid, and the entry stays
 * in place, until the entry is done and released, however many others complete
 * meanwhile.  Misuse (done on a slot that is not pending) changes nothing and is
 * counted in `misuse`, so tests and rtstat can see it without the worker dying.
 *
 * Capacity: a record takes at least 16 bytes of ring, so ring capacity / 16
 * entries can never fill up.  Not thread-safe: owned by the worker thread.
 */
#ifndef RTUDP_INFLIGHT_H
#define RTUDP_INFLIGHT_H

#include <stdint.h>

#include "ring.h"

struct rtudp_inflight_entry {
    uint64_t pos;               /* the record's ring position */
    uint64_t end;               /* the position after it */
    uint32_t done;              /* 1 once sent */
    uint32_t more;              /* sends still due besides one (a duplicate: rtudp_inflight_again) */
};

struct rtudp_inflight {
    struct rtudp_inflight_entry *e;
    uint32_t capacity;
    uint32_t first;             /* index of the oldest entry */
    uint32_t len;               /* entries from first on, pending or done */
    uint32_t pad_;
    uint64_t released;          /* release point when len == 0: end of the last entry dropped */
    uint64_t back_end;          /* end of the newest entry pushed (pushes must not go below) */
    uint64_t misuse;            /* done() on a slot that was not pending, pushes out of order */
};

/* capacity >= 1; one calloc, made resident, or this thread's spare of that capacity.
 * RTUDP_EINVAL / RTUDP_ESYS. */
int rtudp_inflight_init(struct rtudp_inflight *f, uint32_t capacity);
void rtudp_inflight_free(struct rtudp_inflight *f);
/*
 * A spare: one tracker's memory of `capacity` entries, zeroed and resident, that the
 * calling thread's next rtudp_inflight_init of that capacity takes instead of its own.
 * Touching a tracker's fresh pages is most of what adding a channel costs a worker (on
 * a VM each first touch is a fault in the host too), and the conductor makes a spare
 * after each channel it prepares, while the worker waits for the next command: a
 * program that opens channels one by one then waits for none of it.  One per thread
 * (the conductor's), and only for trackers up to RTUDP_INFLIGHT_SPARE_MAX bytes: the
 * many small channels such a program opens, not a big one's memory held twice;
 * drop_spare frees it.
 */
#define RTUDP_INFLIGHT_SPARE_MAX (1u << 20)
void rtudp_inflight_keep_spare(uint32_t capacity);
void rtudp_inflight_drop_spare(void);
/* the capacity of this thread's spare (0: none) */
uint32_t rtudp_inflight_spare(void);
/* forget every entry; the release point becomes `pos` (the ring's head when the
 * worker (re)starts on a channel: records not released are read again) */
void rtudp_inflight_reset(struct rtudp_inflight *f, uint64_t pos);
/* record [pos, end) as in flight; pos >= the previous entry's end (padding may lie
 * between).  RTUDP_EFULL when full, RTUDP_EINVAL when out of order or empty. */
int rtudp_inflight_push(struct rtudp_inflight *f, uint64_t pos, uint64_t end, uint32_t *slot);
/* the record in `slot` goes out once more (the impairment's duplicate): it is done
 * only after one more done().  RTUDP_OK, or RTUDP_EINVAL for a slot not pending at pos */
int rtudp_inflight_again(struct rtudp_inflight *f, uint32_t slot, uint64_t pos);
/* the record in `slot` has been sent; any order */
void rtudp_inflight_done(struct rtudp_inflight *f, uint32_t slot);
/* as done(), but checks the slot still holds the record at ring position pos (the
 * timer carries it): RTUDP_OK, or RTUDP_EINVAL for a stale or wrong slot (counted) */
int rtudp_inflight_done_at(struct rtudp_inflight *f, uint32_t slot, uint64_t pos);
/* drops the done entries at the front; returns the ring position before which
 * everything is sent: the oldest pending entry's pos, or when none is pending the
 * end of the last entry (the reset position if there never was one).  The caller
 * passes it to rtudp_mpsc_release().  When the tracker is empty afterwards, the
 * caller may release up to its own ring cursor instead: rtudp_mpsc_next may have
 * stepped over padding after the last entry, which this tracker never saw. */
uint64_t rtudp_inflight_release_point(struct rtudp_inflight *f);
/* entries held, pending or done-but-not-yet-dropped */
uint32_t rtudp_inflight_len(const struct rtudp_inflight *f);
int rtudp_inflight_empty(const struct rtudp_inflight *f);

#endif /* RTUDP_INFLIGHT_H */
