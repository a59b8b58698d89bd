/*
 * chanheap.h - an indexed min-heap of channels by a time: where the TX thread finds the
 * kinds' timers, held sends and TX-stamp reads that are due, in O(log n) a change and
 * O(1) a look, whatever the number of channels (worker.h: w->timers, w->stamp_reads).
 *
 * A channel carries one node per heap it can be in; the node knows its place, so a
 * channel's time changes in place.  Memory is reserved when a channel is added
 * (rtudp_chanheap_reserve), so setting a time never allocates.
 */
#ifndef RTUDP_CHANHEAP_H
#define RTUDP_CHANHEAP_H

#include <stdint.h>

#define RTUDP_CHANHEAP_NONE INT64_MAX /* a node's time when it is not in the heap */

struct rtudp_chanheap_node {
    int64_t at;        /* its time; RTUDP_CHANHEAP_NONE when not in the heap */
    uint32_t index;    /* its place in the heap + 1 (0: not in it) */
    uint32_t pad;
};

struct rtudp_chanheap {
    struct rtudp_chanheap_node **v; /* v[0] is the earliest */
    uint32_t len;
    uint32_t capacity;
};

void rtudp_chanheap_init(struct rtudp_chanheap *h);
void rtudp_chanheap_free(struct rtudp_chanheap *h);
/* room for n nodes: RTUDP_OK, or RTUDP_ESYS when out of memory */
int rtudp_chanheap_reserve(struct rtudp_chanheap *h, uint32_t n);
/* node's time becomes at (RTUDP_CHANHEAP_NONE: out of the heap); a node not yet in
 * it goes in (room reserved) */
void rtudp_chanheap_set(struct rtudp_chanheap *h, struct rtudp_chanheap_node *node, int64_t at);
/* the earliest time (RTUDP_CHANHEAP_NONE: empty) and its node (NULL: empty) */
static inline int64_t rtudp_chanheap_next(const struct rtudp_chanheap *h)
{
    return h->len ? h->v[0]->at : RTUDP_CHANHEAP_NONE;
}
static inline struct rtudp_chanheap_node *rtudp_chanheap_first(const struct rtudp_chanheap *h)
{
    return h->len ? h->v[0] : 0;
}

#endif /* RTUDP_CHANHEAP_H */
