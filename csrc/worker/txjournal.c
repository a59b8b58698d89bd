/*
 * txjournal.c - the TX journal: written around each send, read by a successor
 * (see txjournal.h).
 */
#include "txjournal.h"

#include <stdlib.h>
#include <string.h>

#include "netio.h"
#include "shm_access.h"

void rtudp_txj_begin(struct rtudp_tx_journal *j, uint32_t key0, int one_key, const uint64_t *pos,
                     uint32_t n)
{
    if (n > RTUDP_TX_JOURNAL_MAX)
        n = RTUDP_TX_JOURNAL_MAX;
    memcpy(j->pos, pos, (size_t)n * sizeof *pos);
    store_relaxed(&j->key0, key0);
    store_relaxed(&j->one_key, one_key ? 1u : 0u);
    /* the count last: a successor that sees it sees the entries */
    store_release(&j->count, n);
}

void rtudp_txj_end(struct rtudp_tx_journal *j)
{
    store_release(&j->count, 0u);
}

struct entry {
    uint64_t pos;
    uint32_t key;
    uint32_t seen;          /* found at a record boundary of the ring */
};

static int by_pos(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static struct entry *find(struct entry *e, uint32_t n, uint64_t pos)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (e[mid].pos < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && e[lo].pos == pos ? &e[lo] : NULL;
}

void rtudp_txj_recover_with(struct rtudp_tx_journal *j, struct rtudp_mpsc *tx,
                            int (*stamped)(void *ctx, uint32_t key), void *ctx,
                            struct rtudp_txj_result *out)
{
    struct rtudp_txj_result res = {0};
    /* the journal is shared memory: trust nothing in it but what the ring confirms */
    uint32_t n = load_acquire(&j->count);
    if (n > RTUDP_TX_JOURNAL_MAX)
        n = RTUDP_TX_JOURNAL_MAX;
    uint32_t key0 = load_relaxed(&j->key0);
    uint32_t step = load_relaxed(&j->one_key) ? 0 : 1;
    struct entry e[RTUDP_TX_JOURNAL_MAX];
    for (uint32_t i = 0; i < n; i++)
        e[i] = (struct entry){.pos = load_relaxed(&j->pos[i]), .key = key0 + i * step};
    qsort(e, n, sizeof e[0], by_pos);
    res.journalled = n;

    /* walk the unsent records from head: a journalled record is one of them, and the
     * walk ends past the last journalled position (or at the first uncommitted claim,
     * which no record the dead worker was sending lies behind) */
    uint64_t cursor = load_acquire(&tx->ring->head);
    uint64_t last = n ? e[n - 1].pos : 0;
    while (n && cursor <= last) {
        struct rtudp_tx_record *rec;
        uint32_t len;
        if (rtudp_mpsc_next(tx, &cursor, &rec, &len) != RTUDP_OK)
            break; /* empty, or corrupt: the TX loop will flag it when it reads */
        uint64_t pos = cursor - align8(sizeof *rec + len);
        struct entry *hit = find(e, n, pos);
        if (!hit || hit->seen)
            continue;
        hit->seen = 1;
        if (stamped(ctx, hit->key)) {
            rtudp_mpsc_mark_sent(tx, pos);
            res.left++;
        } else {
            res.resent++;
        }
    }
    res.invalid = n - res.left - res.resent;
    if (res.left)
        bump(&j->restart_left, res.left);
    if (res.resent)
        bump(&j->restart_resent, res.resent);
    rtudp_txj_end(j);
    if (out)
        *out = res;
}

/* the stamped keys of the journal's window, as a bitmap */
struct window {
    uint32_t key0, n;
    uint8_t bits[RTUDP_TX_JOURNAL_MAX / 8];
};

static void on_stamp(void *ctx, uint32_t key, int64_t mono_ns)
{
    (void)mono_ns;
    struct window *w = ctx;
    uint32_t i = key - w->key0; /* keys wrap: unsigned distance */
    if (i < w->n)
        w->bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

static int is_stamped(void *ctx, uint32_t key)
{
    const struct window *w = ctx;
    uint32_t i = key - w->key0;
    return i < w->n && (w->bits[i / 8] >> (i % 8)) & 1;
}

void rtudp_txj_recover(struct rtudp_tx_journal *j, struct rtudp_mpsc *tx, int fd,
                       struct rtudp_txj_result *out)
{
    struct window w;
    memset(&w, 0, sizeof w);
    w.n = load_acquire(&j->count);
    if (w.n > RTUDP_TX_JOURNAL_MAX)
        w.n = RTUDP_TX_JOURNAL_MAX;
    w.key0 = load_relaxed(&j->key0);
    if (w.n)
        rtudp_net_read_tx_stamps(fd, on_stamp, &w);
    rtudp_txj_recover_with(j, tx, is_stamped, &w, out);
}
