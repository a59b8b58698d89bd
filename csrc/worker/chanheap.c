/* chanheap.c - the indexed min-heap of chanheap.h */
#include <stdlib.h>

#include "chanheap.h"
#include "ring.h"

void rtudp_chanheap_init(struct rtudp_chanheap *h)
{
    h->v = NULL;
    h->len = h->capacity = 0;
}

void rtudp_chanheap_free(struct rtudp_chanheap *h)
{
    free(h->v);
    rtudp_chanheap_init(h);
}

int rtudp_chanheap_reserve(struct rtudp_chanheap *h, uint32_t n)
{
    if (n <= h->capacity)
        return RTUDP_OK;
    /* doubling: a pool that adds channels one by one reallocates O(log n) times */
    uint32_t cap = h->capacity ? h->capacity : 16;
    while (cap < n)
        cap = cap > UINT32_MAX / 2 ? n : cap * 2;
    void *v = realloc(h->v, (size_t)cap * sizeof *h->v);
    if (!v)
        return RTUDP_ESYS;
    h->v = v;
    h->capacity = cap;
    return RTUDP_OK;
}

static void place(struct rtudp_chanheap *h, uint32_t i, struct rtudp_chanheap_node *n)
{
    h->v[i] = n;
    n->index = i + 1;
}

static void sift_up(struct rtudp_chanheap *h, uint32_t i)
{
    struct rtudp_chanheap_node *n = h->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->v[parent]->at <= n->at)
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, n);
}

static void sift_down(struct rtudp_chanheap *h, uint32_t i)
{
    struct rtudp_chanheap_node *n = h->v[i];
    for (;;) {
        uint32_t l = 2 * i + 1, least = i;
        int64_t at = n->at;
        if (l < h->len && h->v[l]->at < at) {
            least = l;
            at = h->v[l]->at;
        }
        if (l + 1 < h->len && h->v[l + 1]->at < at)
            least = l + 1;
        if (least == i)
            break;
        place(h, i, h->v[least]);
        i = least;
    }
    place(h, i, n);
}

static void take_out(struct rtudp_chanheap *h, struct rtudp_chanheap_node *n)
{
    uint32_t i = n->index - 1;
    n->index = 0;
    struct rtudp_chanheap_node *last = h->v[--h->len];
    if (i == h->len)
        return;
    place(h, i, last);
    sift_up(h, i);
    sift_down(h, last->index - 1);
}

void rtudp_chanheap_set(struct rtudp_chanheap *h, struct rtudp_chanheap_node *n, int64_t at)
{
    int64_t was = n->at;
    n->at = at;
    if (at == RTUDP_CHANHEAP_NONE) {
        if (n->index)
            take_out(h, n);
        return;
    }
    if (!n->index) {
        if (h->len >= h->capacity)
            return; /* cannot happen: reserved per channel */
        place(h, h->len++, n);
        sift_up(h, h->len - 1);
    } else if (at < was) {
        sift_up(h, n->index - 1);
    } else if (at > was) {
        sift_down(h, n->index - 1);
    }
}
