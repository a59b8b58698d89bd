/*
 * udt_losslist.h - UDT loss lists: sets of lost sequence numbers kept as
 * sorted, disjoint, inclusive ranges; one structure serves both roles.
 *
 *   sender list (libudt CSndLossList): what the peer reported lost (NAKs) or
 *     what an EXP timeout declared lost; retransmissions pop the first one,
 *     an ACK removes everything before it (remove_upto).
 *   receiver list (libudt CRcvLossList): the gaps the receiver saw; a late or
 *     retransmitted packet removes its number, a drop request a range, the
 *     ACK is the first entry, and a (periodic) NAK encodes the whole list.
 *
 * Why ranges in a ring: a burst of losses is one entry, the common operations
 * (append at the end, take from the front) are O(1), an insert or remove in
 * the middle is a binary search plus a shift.  The structure holds no
 * pointers and is one block of caller-owned memory (header + ranges), so it
 * can live in shared memory and survive the worker that used it; nothing here
 * allocates.
 *
 * Wrap: all members are kept within `max_span` (< 2^30) sequence numbers of
 * each other, and every comparison is made as an offset from the first
 * member, so the order is exact across the 2^31 wrap.  An insert that would
 * stretch the list beyond max_span is refused (UDT_E_RANGE): a NAK that far
 * from what was sent is a bug or an attack, and the caller drops it.
 *
 * Capacity: `cap` ranges.  Disjoint, non-adjacent ranges within a span of S
 * numbers are at most (S + 1) / 2, so with cap >= max_span / 2 + 1 no insert
 * or remove ever runs out of slots.  With less, an insert or a remove that
 * splits a range may return UDT_E_FULL and changes nothing.
 */
#ifndef RTUDP_UDT_LOSSLIST_H
#define RTUDP_UDT_LOSSLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "udt_wire.h"

#define UDT_LL_MAX_SPAN 0x3FFFFFFFu

struct udt_range {
    uint32_t lo, hi; /* inclusive, lo <= hi in sequence order */
};

struct udt_losslist {
    uint32_t cap;       /* ranges r[] can hold */
    uint32_t max_span;  /* first..last member at most this many numbers */
    uint32_t head;      /* index of the first range in r[] */
    uint32_t n;         /* ranges held */
    uint64_t count;     /* sequence numbers held */
    struct udt_range r[];
};

/* Bytes of a list with room for cap ranges (0 if cap is 0 or too large). */
size_t udt_ll_size(uint32_t cap);
/* mem must be udt_ll_size(cap) bytes; max_span 1..UDT_LL_MAX_SPAN.
 * UDT_OK or UDT_E_ARG. */
int udt_ll_init(struct udt_losslist *ll, uint32_t cap, uint32_t max_span);
void udt_ll_clear(struct udt_losslist *ll);

/* Add lo..hi (inclusive; lo == hi: one number).  Returns how many numbers were
 * new (0: all already there), or UDT_E_ARG (lo after hi, or a number with bit
 * 31 set), UDT_E_RANGE (beyond max_span), UDT_E_FULL. */
int64_t udt_ll_insert(struct udt_losslist *ll, uint32_t lo, uint32_t hi);
/* Remove one number / a range / everything up to and including seq.  Return
 * how many numbers were removed, or UDT_E_ARG / UDT_E_FULL (a split with no
 * free slot: nothing removed). */
int64_t udt_ll_remove(struct udt_losslist *ll, uint32_t seq);
int64_t udt_ll_remove_range(struct udt_losslist *ll, uint32_t lo, uint32_t hi);
int64_t udt_ll_remove_upto(struct udt_losslist *ll, uint32_t seq);

/* First (lowest) number: 1 and *seq, or 0 when empty. */
int udt_ll_first(const struct udt_losslist *ll, uint32_t *seq);
/* Take the first number out: 1 and *seq, or 0 when empty. */
int udt_ll_pop(struct udt_losslist *ll, uint32_t *seq);
bool udt_ll_contains(const struct udt_losslist *ll, uint32_t seq);
static inline uint64_t udt_ll_count(const struct udt_losslist *ll) { return ll->count; }
static inline uint32_t udt_ll_ranges(const struct udt_losslist *ll) { return ll->n; }
/* Range i (0 = first) in order; i < udt_ll_ranges(). */
struct udt_range udt_ll_range(const struct udt_losslist *ll, uint32_t i);

/* NAK words (host order) for the list's first ranges, at most max_words
 * (a range takes 2 words, a single number 1; a range that does not fit is
 * left for the next report).  Returns the number of words written. */
size_t udt_ll_encode_nak(const struct udt_losslist *ll, uint32_t *words, size_t max_words);
/* Words for one range: 1 or 2. */
size_t udt_nak_encode_range(uint32_t lo, uint32_t hi, uint32_t words[2]);
/* Decode NAK words into ranges.  Returns the number of ranges (<= cap; the
 * rest is not decoded and *used tells how many words were consumed), or
 * UDT_E_NAK when the words are malformed (nothing useful decoded). */
int udt_nak_decode(const uint32_t *words, size_t nwords, struct udt_range *out, size_t cap,
                   size_t *used);

#endif
