/*
 * inflight.c - ring records queued but not sent, in ring order (see inflight.h).
 *
 * Ring positions are free-running 64-bit counters; they are compared by
 * difference, as in ring.c, so the order checks hold across a wrap of 2^64.
 */
#include "inflight.h"
#include "prefault.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* a - b as a signed distance: negative when a is before b */
static inline int64_t dist(uint64_t a, uint64_t b) { return (int64_t)(a - b); }

static inline uint32_t next_index(const struct rtudp_inflight *f, uint32_t i)
{
    return i + 1 == f->capacity ? 0 : i + 1;
}

/* the calling thread's spare (inflight.h): the conductor's, in a worker */
static _Thread_local struct {
    struct rtudp_inflight_entry *e;
    uint32_t capacity;
} spare;

/* `capacity` entries, zeroed and resident: the array is used round and round, so all
 * of it, soon */
static struct rtudp_inflight_entry *resident_entries(uint32_t capacity)
{
    struct rtudp_inflight_entry *e = calloc(capacity, sizeof *e);
    if (e)
        rtudp_prefault(e, (size_t)capacity * sizeof *e);
    return e;
}

int rtudp_inflight_init(struct rtudp_inflight *f, uint32_t capacity)
{
    if (!f)
        return RTUDP_EINVAL;
    memset(f, 0, sizeof *f);
    if (capacity == 0 || capacity > UINT32_MAX / 2)
        return RTUDP_EINVAL;
    if (spare.e && spare.capacity == capacity) {
        f->e = spare.e;
        spare.e = NULL;
        spare.capacity = 0;
    } else if (!(f->e = resident_entries(capacity))) {
        /* the spare's memory may be what this one lacks (RLIMIT_MEMLOCK): it goes */
        rtudp_inflight_drop_spare();
        if (!(f->e = resident_entries(capacity)))
            return RTUDP_ESYS;
    }
    f->capacity = capacity;
    return RTUDP_OK;
}

void rtudp_inflight_keep_spare(uint32_t capacity)
{
    if (spare.e && spare.capacity == capacity)
        return;
    rtudp_inflight_drop_spare();
    if (capacity == 0 || (uint64_t)capacity * sizeof *spare.e > RTUDP_INFLIGHT_SPARE_MAX)
        return;
    if ((spare.e = resident_entries(capacity)))
        spare.capacity = capacity;
}

uint32_t rtudp_inflight_spare(void)
{
    return spare.e ? spare.capacity : 0;
}

void rtudp_inflight_drop_spare(void)
{
    free(spare.e);
    spare.e = NULL;
    spare.capacity = 0;
}

void rtudp_inflight_free(struct rtudp_inflight *f)
{
    if (!f)
        return;
    free(f->e);
    memset(f, 0, sizeof *f);
}

void rtudp_inflight_reset(struct rtudp_inflight *f, uint64_t pos)
{
    f->first = 0;
    f->len = 0;
    f->released = pos;
    f->back_end = pos;
}

int rtudp_inflight_push(struct rtudp_inflight *f, uint64_t pos, uint64_t end, uint32_t *slot)
{
    if (dist(end, pos) <= 0 || dist(pos, f->back_end) < 0) {
        f->misuse++;
        return RTUDP_EINVAL;
    }
    if (f->len >= f->capacity)
        return RTUDP_EFULL;
    uint32_t i = f->first + f->len;
    if (i >= f->capacity)
        i -= f->capacity;
    struct rtudp_inflight_entry *x = &f->e[i];
    x->pos = pos;
    x->end = end;
    x->done = 0;
    x->more = 0;
    f->len++;
    f->back_end = end;
    *slot = i;
    return RTUDP_OK;
}

/* the entry in slot if it is live and pending, else NULL (and counted) */
static struct rtudp_inflight_entry *pending(struct rtudp_inflight *f, uint32_t slot)
{
    if (slot < f->capacity) {
        uint32_t off = slot >= f->first ? slot - f->first : slot + f->capacity - f->first;
        if (off < f->len && !f->e[slot].done)
            return &f->e[slot];
    }
    f->misuse++;
    return NULL;
}

/* one send of x is over: done after its last */
static void sent_once(struct rtudp_inflight_entry *x)
{
    if (x->more)
        x->more--;
    else
        x->done = 1;
}

void rtudp_inflight_done(struct rtudp_inflight *f, uint32_t slot)
{
    struct rtudp_inflight_entry *x = pending(f, slot);
    if (x)
        sent_once(x);
}

int rtudp_inflight_again(struct rtudp_inflight *f, uint32_t slot, uint64_t pos)
{
    struct rtudp_inflight_entry *x = pending(f, slot);
    if (!x || x->pos != pos) {
        if (x)
            f->misuse++;
        return RTUDP_EINVAL;
    }
    x->more++;
    return RTUDP_OK;
}

int rtudp_inflight_done_at(struct rtudp_inflight *f, uint32_t slot, uint64_t pos)
{
    struct rtudp_inflight_entry *x = pending(f, slot);
    if (!x)
        return RTUDP_EINVAL;
    if (x->pos != pos) { /* the slot was reused for another record: a stale handle */
        f->misuse++;
        return RTUDP_EINVAL;
    }
    sent_once(x);
    return RTUDP_OK;
}

uint64_t rtudp_inflight_release_point(struct rtudp_inflight *f)
{
    while (f->len && f->e[f->first].done) {
        f->released = f->e[f->first].end;
        f->first = next_index(f, f->first);
        f->len--;
    }
    /* a pending front entry: free up to it, including any padding before it */
    return f->len ? f->e[f->first].pos : f->released;
}

uint32_t rtudp_inflight_len(const struct rtudp_inflight *f)
{
    return f->len;
}

int rtudp_inflight_empty(const struct rtudp_inflight *f)
{
    return f->len == 0;
}
