/* udt_losslist.c - loss lists as a ring of sorted ranges (see udt_losslist.h). */
#include "udt_losslist.h"

#include "udt_seq.h"

#define START_BIT 0x80000000u

size_t udt_ll_size(uint32_t cap)
{
    if (cap == 0 || cap > (1u << 28))
        return 0;
    return sizeof(struct udt_losslist) + (size_t)cap * sizeof(struct udt_range);
}

int udt_ll_init(struct udt_losslist *ll, uint32_t cap, uint32_t max_span)
{
    if (udt_ll_size(cap) == 0 || max_span == 0 || max_span > UDT_LL_MAX_SPAN)
        return UDT_E_ARG;
    ll->cap = cap;
    ll->max_span = max_span;
    udt_ll_clear(ll);
    return UDT_OK;
}

void udt_ll_clear(struct udt_losslist *ll)
{
    ll->head = 0;
    ll->n = 0;
    ll->count = 0;
}

/* ------------------------------------------------------------ internals */

static inline struct udt_range *at(struct udt_losslist *ll, uint32_t i)
{
    return &ll->r[(ll->head + i) % ll->cap];
}

static inline const struct udt_range *cat(const struct udt_losslist *ll, uint32_t i)
{
    return &ll->r[(ll->head + i) % ll->cap];
}

/* Offsets from the first member: exact while everything is within max_span. */
static inline int64_t off(const struct udt_losslist *ll, uint32_t s)
{
    return udt_seq_off(cat(ll, 0)->lo, s);
}

static inline int64_t rlen(const struct udt_range *r) { return udt_seq_len(r->lo, r->hi); }

/* first index whose hi offset >= x (n if none) */
static uint32_t first_hi_ge(const struct udt_losslist *ll, int64_t x)
{
    uint32_t lo = 0, hi = ll->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (off(ll, cat(ll, mid)->hi) >= x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* number of ranges whose lo offset <= x (so the last such is that - 1) */
static uint32_t count_lo_le(const struct udt_losslist *ll, int64_t x)
{
    uint32_t lo = 0, hi = ll->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (off(ll, cat(ll, mid)->lo) <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* open one slot before index pos (0 <= pos <= n < cap) */
static void open_slot(struct udt_losslist *ll, uint32_t pos)
{
    if (pos == 0) {
        ll->head = (ll->head + ll->cap - 1) % ll->cap;
    } else {
        for (uint32_t i = ll->n; i > pos; i--)
            *at(ll, i) = *at(ll, i - 1);
    }
    ll->n++;
}

/* delete k slots starting at index pos */
static void close_slots(struct udt_losslist *ll, uint32_t pos, uint32_t k)
{
    if (k == 0)
        return;
    if (pos == 0) {
        ll->head = (ll->head + k) % ll->cap;
    } else {
        for (uint32_t i = pos; i + k < ll->n; i++)
            *at(ll, i) = *at(ll, i + k);
    }
    ll->n -= k;
    if (ll->n == 0)
        ll->head = 0;
}

static int check_pair(uint32_t lo, uint32_t hi)
{
    if ((lo | hi) & START_BIT)
        return UDT_E_ARG;
    if (udt_seq_cmp(lo, hi) > 0)
        return UDT_E_ARG;
    return UDT_OK;
}

/* ------------------------------------------------------------ operations */

int64_t udt_ll_insert(struct udt_losslist *ll, uint32_t lo, uint32_t hi)
{
    if (check_pair(lo, hi) < 0)
        return UDT_E_ARG;
    int64_t len = udt_seq_len(lo, hi);
    if (len > ll->max_span)
        return UDT_E_RANGE;
    if (ll->n == 0) {
        ll->head = 0;
        ll->r[0] = (struct udt_range){lo, hi};
        ll->n = 1;
        ll->count = (uint64_t)len;
        return len;
    }
    int64_t a = off(ll, lo), b = a + len - 1;
    int64_t last = off(ll, cat(ll, ll->n - 1)->hi);
    int64_t span_lo = a < 0 ? a : 0, span_hi = b > last ? b : last;
    if (span_hi - span_lo + 1 > (int64_t)ll->max_span)
        return UDT_E_RANGE;

    /* ranges touching [a, b] (overlapping or adjacent) are i0 .. i1 - 1 */
    uint32_t i0 = first_hi_ge(ll, a - 1);
    uint32_t i1 = count_lo_le(ll, b + 1);
    if (i0 >= i1) {
        if (ll->n == ll->cap)
            return UDT_E_FULL;
        open_slot(ll, i0);
        *at(ll, i0) = (struct udt_range){lo, hi};
        ll->count += (uint64_t)len;
        return len;
    }
    int64_t had = 0;
    for (uint32_t i = i0; i < i1; i++)
        had += rlen(cat(ll, i));
    struct udt_range m = *at(ll, i0);
    if (off(ll, lo) < off(ll, m.lo))
        m.lo = lo;
    uint32_t top = cat(ll, i1 - 1)->hi;
    m.hi = off(ll, hi) > off(ll, top) ? hi : top;
    int64_t added = rlen(&m) - had;
    *at(ll, i0) = m;
    close_slots(ll, i0 + 1, i1 - i0 - 1);
    ll->count += (uint64_t)added;
    return added;
}

int64_t udt_ll_remove_range(struct udt_losslist *ll, uint32_t lo, uint32_t hi)
{
    if (check_pair(lo, hi) < 0)
        return UDT_E_ARG;
    if (ll->n == 0)
        return 0;
    int64_t a = off(ll, lo), b = a + (int64_t)udt_seq_len(lo, hi) - 1;
    uint32_t i0 = first_hi_ge(ll, a);
    uint32_t i1 = count_lo_le(ll, b);
    if (i0 >= i1)
        return 0;
    struct udt_range first = *at(ll, i0), last = *at(ll, i1 - 1);
    int64_t flo = off(ll, first.lo), lhi = off(ll, last.hi);
    bool keep_head = flo < a, keep_tail = lhi > b;
    if (i0 + 1 == i1 && keep_head && keep_tail && ll->n == ll->cap)
        return UDT_E_FULL; /* a split needs a slot */

    int64_t had = 0;
    for (uint32_t i = i0; i < i1; i++)
        had += rlen(cat(ll, i));
    /* what stays of the first and last touched ranges (computed before any
     * head move changes what off() is relative to) */
    struct udt_range head_part = {first.lo, udt_seq_add(lo, -1)};
    struct udt_range tail_part = {udt_seq_add(hi, 1), last.hi};
    int64_t kept = (keep_head ? rlen(&head_part) : 0) + (keep_tail ? rlen(&tail_part) : 0);

    uint32_t pos = i0;
    uint32_t del = i1 - i0;
    if (keep_head) {
        *at(ll, pos) = head_part;
        pos++;
        del--;
    }
    if (keep_tail) {
        if (del == 0) {
            open_slot(ll, pos);
            del = 0;
        } else {
            del--;
        }
        *at(ll, pos) = tail_part;
        pos++;
    }
    close_slots(ll, pos, del);
    int64_t removed = had - kept;
    ll->count -= (uint64_t)removed;
    return removed;
}

int64_t udt_ll_remove(struct udt_losslist *ll, uint32_t seq)
{
    return udt_ll_remove_range(ll, seq, seq);
}

int64_t udt_ll_remove_upto(struct udt_losslist *ll, uint32_t seq)
{
    if (seq & START_BIT)
        return UDT_E_ARG;
    if (ll->n == 0 || off(ll, seq) < 0)
        return 0;
    return udt_ll_remove_range(ll, cat(ll, 0)->lo, seq);
}

int udt_ll_first(const struct udt_losslist *ll, uint32_t *seq)
{
    if (ll->n == 0)
        return 0;
    *seq = cat(ll, 0)->lo;
    return 1;
}

int udt_ll_pop(struct udt_losslist *ll, uint32_t *seq)
{
    if (ll->n == 0)
        return 0;
    struct udt_range *r = at(ll, 0);
    *seq = r->lo;
    if (r->lo == r->hi)
        close_slots(ll, 0, 1);
    else
        r->lo = udt_seq_inc(r->lo);
    ll->count--;
    return 1;
}

bool udt_ll_contains(const struct udt_losslist *ll, uint32_t seq)
{
    if (ll->n == 0 || (seq & START_BIT))
        return false;
    int64_t x = off(ll, seq);
    uint32_t i = first_hi_ge(ll, x);
    return i < ll->n && off(ll, cat(ll, i)->lo) <= x;
}

struct udt_range udt_ll_range(const struct udt_losslist *ll, uint32_t i)
{
    if (i >= ll->n)
        return (struct udt_range){0, 0};
    return *cat(ll, i);
}

/* ------------------------------------------------------------ NAK words */

size_t udt_nak_encode_range(uint32_t lo, uint32_t hi, uint32_t words[2])
{
    if (lo == hi) {
        words[0] = lo & UDT_SEQ_MAX;
        return 1;
    }
    words[0] = (lo & UDT_SEQ_MAX) | START_BIT;
    words[1] = hi & UDT_SEQ_MAX;
    return 2;
}

size_t udt_ll_encode_nak(const struct udt_losslist *ll, uint32_t *words, size_t max_words)
{
    size_t w = 0;
    for (uint32_t i = 0; i < ll->n; i++) {
        const struct udt_range *r = cat(ll, i);
        size_t need = r->lo == r->hi ? 1 : 2;
        if (w + need > max_words)
            break;
        w += udt_nak_encode_range(r->lo, r->hi, words + w);
    }
    return w;
}

int udt_nak_decode(const uint32_t *words, size_t nwords, struct udt_range *out, size_t cap,
                   size_t *used)
{
    if (udt_nak_check(words, nwords) != UDT_OK) {
        if (used)
            *used = 0;
        return UDT_E_NAK;
    }
    size_t i = 0, n = 0;
    while (i < nwords && n < cap) {
        if (words[i] & START_BIT) {
            out[n++] = (struct udt_range){words[i] & UDT_SEQ_MAX, words[i + 1]};
            i += 2;
        } else {
            out[n++] = (struct udt_range){words[i], words[i]};
            i++;
        }
    }
    if (used)
        *used = i;
    return (int)(n > INT32_MAX ? INT32_MAX : n);
}
