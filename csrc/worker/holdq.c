/*
 * holdq.c - the bounded hold queue (holdq.h): a byte ring of chunks, reclaimed in ring
 * order, and a min-heap of their offsets by (due, arrival).
 */
#include "holdq.h"

#include <stdlib.h>
#include <string.h>

#include "prefault.h"
#include "ring.h"

#define MAX_BYTES (1ull << 30)  /* heap entries are 32-bit offsets; 1 GiB is plenty */

enum { CHUNK_HELD = 1, CHUNK_DONE = 2, CHUNK_PAD = 3 };

/* the head of every chunk (a padding chunk, which fills the ring's end before a wrap,
 * uses only size and state: it may be 8 bytes) */
struct chunk {
    uint32_t size;              /* the whole chunk, 8-aligned */
    uint32_t state;             /* CHUNK_* */
    int64_t due_ns;
    uint64_t order;
    uint32_t meta_len;
    uint32_t len;
    uint32_t room;
    uint32_t pad;
};

#define HDR ((uint64_t)sizeof(struct chunk))

static uint64_t up8(uint64_t x)
{
    return (x + 7) & ~(uint64_t)7;
}

static struct chunk *at(const struct rtudp_holdq *q, uint32_t off)
{
    return (struct chunk *)(void *)(q->buf + off);
}

static uint8_t *meta_of(struct chunk *c)
{
    return (uint8_t *)c + HDR;
}

static uint8_t *data_of(struct chunk *c)
{
    return meta_of(c) + up8(c->meta_len) + up8(c->room);
}

int rtudp_holdq_init(struct rtudp_holdq *q, uint64_t bytes)
{
    memset(q, 0, sizeof *q);
    if (bytes > MAX_BYTES)
        return RTUDP_EINVAL;
    bytes = up8(bytes < RTUDP_HOLDQ_MIN_BYTES ? RTUDP_HOLDQ_MIN_BYTES : bytes);
    uint64_t max = bytes / HDR + 1; /* a chunk is at least a header */
    q->buf = calloc(1, bytes);
    q->heap = calloc(max, sizeof *q->heap);
    if (!q->buf || !q->heap) {
        rtudp_holdq_free(q);
        return RTUDP_EINVAL;
    }
    /* resident now (and locked), not at the first hold on the hot path */
    rtudp_prefault(q->buf, bytes);
    rtudp_prefault(q->heap, max * sizeof *q->heap);
    q->bytes = bytes;
    q->max = (uint32_t)max;
    return RTUDP_OK;
}

void rtudp_holdq_free(struct rtudp_holdq *q)
{
    free(q->buf);
    free(q->heap);
    memset(q, 0, sizeof *q);
}

/* a before b: earlier due, or as early and came first */
static int before(const struct rtudp_holdq *q, uint32_t a, uint32_t b)
{
    const struct chunk *x = at(q, a), *y = at(q, b);
    return x->due_ns < y->due_ns || (x->due_ns == y->due_ns && x->order < y->order);
}

static void sift_up(struct rtudp_holdq *q, uint32_t i)
{
    uint32_t v = q->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(q, v, q->heap[p]))
            break;
        q->heap[i] = q->heap[p];
        i = p;
    }
    q->heap[i] = v;
}

static void sift_down(struct rtudp_holdq *q, uint32_t i)
{
    uint32_t v = q->heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= q->n)
            break;
        uint32_t m = (l + 1 < q->n && before(q, q->heap[l + 1], q->heap[l])) ? l + 1 : l;
        if (!before(q, q->heap[m], v))
            break;
        q->heap[i] = q->heap[m];
        i = m;
    }
    q->heap[i] = v;
}

int rtudp_holdq_put(struct rtudp_holdq *q, int64_t due_ns, const void *meta, uint32_t meta_len,
                    uint32_t room, const void *data, uint32_t len)
{
    if (!q->buf)
        return RTUDP_EFULL;
    uint64_t need = up8(HDR + up8(meta_len) + up8(room) + (uint64_t)len);
    uint64_t off = q->tail % q->bytes;
    uint64_t to_end = q->bytes - off;
    uint64_t pad = need > to_end ? to_end : 0; /* a chunk never wraps */
    if (need > q->bytes || q->tail - q->head + pad + need > q->bytes || q->n >= q->max)
        return RTUDP_EFULL;
    if (pad) {
        struct chunk *p = at(q, (uint32_t)off);
        p->size = (uint32_t)pad;
        p->state = CHUNK_PAD;
        q->tail += pad;
        off = 0;
    }
    struct chunk *c = at(q, (uint32_t)off);
    *c = (struct chunk){.size = (uint32_t)need, .state = CHUNK_HELD, .due_ns = due_ns,
                        .order = q->order++, .meta_len = meta_len, .len = len, .room = room};
    if (meta_len)
        memcpy(meta_of(c), meta, meta_len);
    if (len)
        memcpy(data_of(c), data, len);
    q->tail += need;
    q->heap[q->n] = (uint32_t)off;
    sift_up(q, q->n++);
    return RTUDP_OK;
}

int64_t rtudp_holdq_next_due(const struct rtudp_holdq *q)
{
    return q->n ? at(q, q->heap[0])->due_ns : INT64_MAX;
}

int rtudp_holdq_peek_due(const struct rtudp_holdq *q, int64_t now, struct rtudp_hold_item *out)
{
    if (!q->n)
        return 0;
    struct chunk *c = at(q, q->heap[0]);
    if (c->due_ns > now)
        return 0;
    *out = (struct rtudp_hold_item){.due_ns = c->due_ns, .meta = meta_of(c),
                                    .meta_len = c->meta_len, .len = c->len, .data = data_of(c)};
    return 1;
}

/* the chunks at the head that are done (or padding): their bytes are free again */
static void reclaim(struct rtudp_holdq *q)
{
    while (q->head < q->tail) {
        struct chunk *c = at(q, (uint32_t)(q->head % q->bytes));
        if (c->state == CHUNK_HELD)
            break;
        q->head += c->size;
    }
    if (q->head == q->tail) /* empty: start again at the beginning, no padding needed */
        q->head = q->tail = 0;
}

void rtudp_holdq_pop(struct rtudp_holdq *q)
{
    if (!q->n)
        return;
    at(q, q->heap[0])->state = CHUNK_DONE;
    q->heap[0] = q->heap[--q->n];
    if (q->n)
        sift_down(q, 0);
    reclaim(q);
}

void rtudp_holdq_clear(struct rtudp_holdq *q)
{
    q->n = 0;
    q->head = q->tail = 0;
}
