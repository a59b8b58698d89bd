/*
 * test_ring.c - unit tests for the MPSC and broadcast rings (csrc/ring.c).
 *
 * No framework: CHECK() prints file:line and the failing expression and exits
 * non-zero.  Each test function runs in its own forked child, so one failure (or
 * a crash, or a hang caught by the watchdog) names its test and the others still
 * run; the last line is "N passed, M failed, K skipped" and the exit status is non-zero
 * unless M is 0.
 *
 *   test_ring                 run every test
 *   test_ring NAME...         run only the tests whose names contain a NAME
 *   test_ring --no-fork ...   run in-process (for a debugger)
 *
 * Rings live in aligned_alloc'd memory of exactly the footprint, so under
 * AddressSanitizer any read or write outside the ring is reported.  All
 * randomness comes from fixed seeds: a failure reproduces.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "segment.h"
#ifdef RTUDP_TEST_BENCH
#include "ring_bench.h"
#endif

#include "harness.h"
#include "ring_fixture.h"

/* ------------------------------------------------------------------ helpers */



static uint64_t mix64(uint64_t x) { return splitmix64(&x); }



static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}


static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* header fields read straight from the data area (a padding record may be only 8
 * bytes long at the very end, so never read a whole struct there) */
static int32_t rec_length_at(const uint8_t *data, uint64_t idx)
{
    int32_t v;
    memcpy(&v, data + idx, sizeof v);
    return v;
}

static uint16_t rec_type_at(const uint8_t *data, uint64_t idx)
{
    uint16_t v;
    memcpy(&v, data + idx + 4, sizeof v);
    return v;
}

static uint64_t mpsc_tail(const struct rtudp_mpsc *m) { return m->ring->tail; }
static uint64_t mpsc_head(const struct rtudp_mpsc *m) { return m->ring->head; }

/* put one record whose payload is fill(key) */
static int mpsc_put_key(struct rtudp_mpsc *m, uint32_t len, uint64_t key, int64_t send_at,
                        uint16_t flags)
{
    uint8_t buf[RTUDP_MAX_PAYLOAD];
    fill(buf, len, key);
    return rtudp_mpsc_try_put(m, buf, len, send_at, flags);
}

/* get one record and check it is (len, key, send_at, flags) */
#define mpsc_get_expect(...) AT_LINE(mpsc_get_expect_(__VA_ARGS__))
static void mpsc_get_expect_(struct rtudp_mpsc *m, uint32_t len, uint64_t key, int64_t send_at,
                             uint16_t flags)
{
    static uint8_t buf[RTUDP_MAX_PAYLOAD];
    uint32_t got_len = 0xdead;
    int64_t got_at = -12345;
    uint16_t got_flags = 0xbeef;
    CHECK_EQ(rtudp_mpsc_get(m, buf, sizeof buf, &got_len, &got_at, &got_flags), RTUDP_OK);
    CHECK_EQ(got_len, len);
    CHECK_EQ(got_at, send_at);
    CHECK_EQ(got_flags, flags);
    CHECK(verify(buf, len, key));
}

/* nothing left to get, and head has caught up with tail */
#define mpsc_expect_drained(m) AT_LINE(mpsc_expect_drained_(m))
static void mpsc_expect_drained_(struct rtudp_mpsc *m)
{
    uint8_t buf[64];
    uint32_t len;
    CHECK_EQ(rtudp_mpsc_get(m, buf, sizeof buf, &len, NULL, NULL), RTUDP_EMPTY);
    CHECK_EQ(mpsc_head(m), mpsc_tail(m));
}

/*
 * Put-and-get filler records until tail (and head) reach `target`, which must lie
 * in the current lap, so no filler needs padding.  Fillers have a payload of at
 * least 1 byte (24 bytes aligned), and never leave an 8- or 16-byte gap that only
 * a smaller record could fill.
 */
static void mpsc_advance_to(struct rtudp_mpsc *m, uint64_t target)
{
    /* the largest record whose payload is within max_payload */
    const uint64_t max_rec = (16 + m->max_payload) & ~(uint64_t)7;
    CHECK(mpsc_tail(m) <= target);
    CHECK(target - mpsc_tail(m) <= m->capacity - (mpsc_tail(m) & m->mask));
    while (mpsc_tail(m) < target) {
        uint64_t d = target - mpsc_tail(m);
        CHECK(d >= 24);
        uint64_t occ = d < max_rec ? d : max_rec;
        if (d - occ > 0 && d - occ < 24)
            occ -= 24 - (d - occ);
        uint32_t len = (uint32_t)(occ - 16);
        CHECK_EQ(mpsc_put_key(m, len, 7, 0, 0), RTUDP_OK);
        mpsc_get_expect(m, len, 7, 0, 0);
    }
    CHECK_EQ(mpsc_tail(m), target);
    CHECK_EQ(mpsc_head(m), target);
}

/* ------------------------------------------------------------------ MPSC */

static void test_mpsc_geometry(void)
{
    static const uint64_t caps[] = {1024, 2048, 4096, 1 << 16, 1 << 18, 1 << 20};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        uint64_t cap = caps[i];
        struct rtudp_mpsc m = mpsc_new(cap);
        uint64_t want = min_u64(RTUDP_MAX_PAYLOAD, cap / 4 - 16);
        CHECK_EQ(m.ring->magic, RTUDP_RING_MAGIC);
        CHECK_EQ(m.ring->kind, RTUDP_RING_MPSC);
        CHECK_EQ(m.ring->capacity, cap);
        CHECK_EQ(m.ring->max_payload, want);
        CHECK_EQ(m.max_payload, want);
        CHECK_EQ(m.mask, cap - 1);
        CHECK_EQ(m.ring->tail, 0);
        CHECK_EQ(m.ring->head, 0);
        CHECK_EQ(rtudp_mpsc_pending_bytes(&m), 0);

        /* attach needs the whole ring mapped */
        struct rtudp_mpsc m2;
        struct rtudp_check why = {0, ""};
        uint64_t fp = rtudp_mpsc_footprint(cap);
        CHECK(rtudp_mpsc_attach(&m2, m.ring, fp - 1, &why) != RTUDP_OK);
        CHECK(why.msg[0] != '\0');
        CHECK(rtudp_mpsc_attach(&m2, m.ring, sizeof(struct rtudp_mpsc_ring) - 1, NULL) != RTUDP_OK);
        CHECK_EQ(rtudp_mpsc_attach(&m2, m.ring, fp + 4096, NULL), RTUDP_OK);
        /* a broadcast attach of an MPSC ring is refused */
        struct rtudp_bcast b;
        CHECK(rtudp_bcast_attach(&b, m.ring, fp, NULL) != RTUDP_OK);
        free(m.ring);
    }
    /* capacities that are not powers of two in range are refused */
    static const uint64_t bad[] = {0, 1, 512, 1000, 1536, 3000, 4097};
    struct rtudp_mpsc_ring *r = zalloc64(rtudp_mpsc_footprint(8192));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(rtudp_mpsc_init(r, bad[i]), RTUDP_EINVAL);
    CHECK_EQ(rtudp_mpsc_init(NULL, 4096), RTUDP_EINVAL);
    free(r);
}

static void test_mpsc_roundtrip(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    uint8_t buf[2048];
    uint32_t len = 0;
    CHECK_EQ(rtudp_mpsc_get(&m, buf, sizeof buf, &len, NULL, NULL), RTUDP_EMPTY);

    uint64_t bytes = 0;
    for (uint32_t i = 0; i < 300; i++) {
        uint32_t plen = (i * 37) % (uint32_t)(m.max_payload + 1); /* includes 0 and max */
        int64_t at = i % 5 == 0 ? 0 : (int64_t)i * 1000003 - 7; /* 0 means "now" */
        uint16_t flags = (uint16_t)(i * 2654435761u);
        /* pending counts the wrap padding too */
        uint64_t to_end = m.capacity - (mpsc_tail(&m) & m.mask), need = align8(16 + plen);
        CHECK_EQ(mpsc_put_key(&m, plen, i, at, flags), RTUDP_OK);
        CHECK_EQ(rtudp_mpsc_pending_bytes(&m), need <= to_end ? need : to_end + need);
        mpsc_get_expect(&m, plen, i, at, flags);
        bytes += plen;
        CHECK_EQ(rtudp_mpsc_pending_bytes(&m), 0);
    }
    /* records queue in order */
    for (uint32_t i = 0; i < 10; i++)
        CHECK_EQ(mpsc_put_key(&m, 10 + i, 1000 + i, i, (uint16_t)i), RTUDP_OK);
    for (uint32_t i = 0; i < 10; i++) {
        mpsc_get_expect(&m, 10 + i, 1000 + i, i, (uint16_t)i);
        bytes += 10 + i;
    }
    /* send_at and flags outputs are optional */
    CHECK_EQ(mpsc_put_key(&m, 5, 5, 5, 5), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_get(&m, buf, sizeof buf, &len, NULL, NULL), RTUDP_OK);
    CHECK_EQ(len, 5);
    CHECK(verify(buf, 5, 5));
    bytes += 5;
    CHECK_EQ(rtudp_mpsc_get(&m, buf, sizeof buf, &len, NULL, NULL), RTUDP_EMPTY);
    CHECK_EQ(m.ring->records_consumed, 311);
    CHECK_EQ(m.ring->bytes_consumed, bytes);
    CHECK_EQ(m.ring->corrupt_records, 0);
    CHECK_EQ(m.ring->full_events, 0);
    /* consumed space is zeroed in whole lines, so a fresh claim's header reads as "not
     * written"; the line head is in is zeroed once head leaves it */
    uint64_t head = mpsc_head(&m), line = head & ~(uint64_t)(RTUDP_CACHE_LINE - 1);
    for (uint64_t p = head - m.capacity; p < line; p++)
        CHECK_EQ(m.data[p & m.mask], 0);
    for (uint64_t p = head; p < line + m.capacity; p++)
        CHECK_EQ(m.data[p & m.mask], 0);
    free(m.ring);
}

/*
 * Wrap: a record that does not fit before the end goes to the start of the next
 * lap behind a padding record covering the rest, however small (8 bytes is the
 * smallest gap records leave).  A record that fits exactly needs no padding.
 */
static void test_mpsc_wrap_padding(void)
{
    const uint64_t cap = 1024, m_max_payload = cap / 4 - 16;
    static const uint64_t lefts[] = {8, 16, 24, 32, 40, 48, 56, 64, 232, 248, 256};
    for (size_t i = 0; i < sizeof lefts / sizeof lefts[0]; i++) {
        uint64_t left = lefts[i];
        /* (a) records that do not fit: the smallest, and a large one */
        uint32_t sizes[2] = {left >= 16 ? (uint32_t)(left - 16 + 1) : 1, 200};
        for (int k = 0; k < 2; k++) {
            uint32_t plen = sizes[k];
            uint64_t occ = align8(16 + plen);
            if (occ <= left || plen > m_max_payload)
                continue;
            struct rtudp_mpsc m = mpsc_new(cap);
            mpsc_advance_to(&m, cap - left);
            CHECK_EQ(mpsc_put_key(&m, plen, left * 1000 + plen, 42, 3), RTUDP_OK);
            CHECK_EQ(mpsc_tail(&m), cap + occ);
            CHECK_EQ(rec_length_at(m.data, cap - left), (int32_t)left);
            CHECK_EQ(rec_type_at(m.data, cap - left), RTUDP_REC_PAD);
            CHECK_EQ(rec_length_at(m.data, 0), (int32_t)(16 + plen));
            CHECK_EQ(rec_type_at(m.data, 0), RTUDP_REC_DATA);
            CHECK_EQ(rtudp_mpsc_pending_bytes(&m), left + occ);
            mpsc_get_expect(&m, plen, left * 1000 + plen, 42, 3);
            CHECK_EQ(mpsc_head(&m), cap + occ);
            uint8_t b[8];
            uint32_t l;
            CHECK_EQ(rtudp_mpsc_get(&m, b, sizeof b, &l, NULL, NULL), RTUDP_EMPTY);
            /* and the ring keeps working in the next lap */
            for (int j = 0; j < 40; j++) {
                CHECK_EQ(mpsc_put_key(&m, (uint32_t)(j * 5), (uint64_t)j, j, 0), RTUDP_OK);
                mpsc_get_expect(&m, (uint32_t)(j * 5), (uint64_t)j, j, 0);
            }
            free(m.ring);
        }
        /* (b) a record that fits exactly: no padding, tail lands on the lap */
        if (left >= 24) {
            struct rtudp_mpsc m = mpsc_new(cap);
            mpsc_advance_to(&m, cap - left);
            uint32_t plen = (uint32_t)(left - 16);
            CHECK_EQ(mpsc_put_key(&m, plen, left, 1, 1), RTUDP_OK);
            CHECK_EQ(mpsc_tail(&m), cap);
            CHECK_EQ(rec_type_at(m.data, cap - left), RTUDP_REC_DATA);
            mpsc_get_expect(&m, plen, left, 1, 1);
            CHECK_EQ(mpsc_head(&m), cap);
            free(m.ring);
        }
    }
}

/*
 * Single-threaded random walk against a model of the ring: every EFULL must be
 * a real lack of space (counting the padding a wrap needs), tail must move exactly
 * as the layout says, and everything comes back in order and intact, across many
 * laps of a small ring.  Uses every produce and consume entry point.
 */
struct model_rec {
    uint64_t key;
    uint32_t len;
    int64_t at;
    uint16_t flags;
    uint64_t pos; /* where its header is */
};

#define MODEL_MAX 1024

struct model {
    struct model_rec q[MODEL_MAX];
    uint64_t first, count;
    uint64_t tail;     /* where the ring's tail must be */
    uint64_t consumed; /* end of the last record consumed: head is at least this */
};

static struct model_rec *model_front(struct model *md)
{
    return md->count ? &md->q[md->first % MODEL_MAX] : NULL;
}

static void model_pop(struct model *md)
{
    struct model_rec *f = model_front(md);
    md->consumed = f->pos + align8(16 + f->len);
    md->first++;
    md->count--;
}

/* would a record of len fit now?  if so, where does it go */
static bool model_fits(const struct rtudp_mpsc *m, uint64_t tail, uint64_t head, uint32_t len,
                       uint64_t *pos, uint64_t *new_tail)
{
    uint64_t need = align8(16 + len);
    uint64_t to_end = m->capacity - (tail & m->mask);
    uint64_t span = need <= to_end ? need : to_end + need;
    uint64_t reusable = head & ~(uint64_t)(RTUDP_CACHE_LINE - 1); /* whole lines only */
    if (span > m->capacity - (tail - reusable))
        return false;
    *pos = tail + span - need;
    *new_tail = tail + span;
    return true;
}

/* head may have freed padding in front of the next record, but nothing more */
static void model_check_head(const struct rtudp_mpsc *m, struct model *md)
{
    uint64_t head = mpsc_head(m);
    struct model_rec *f = model_front(md);
    uint64_t hi = f ? f->pos : md->tail;
    CHECK(head >= md->consumed);
    CHECK(head <= hi);
}

static void model_push(struct model *md, uint64_t key, uint32_t len, int64_t at, uint16_t flags,
                       uint64_t pos, uint64_t new_tail)
{
    CHECK(md->count < MODEL_MAX);
    md->q[(md->first + md->count) % MODEL_MAX] = (struct model_rec){key, len, at, flags, pos};
    md->count++;
    md->tail = new_tail;
}

static void test_mpsc_model_random(void)
{
    static const uint64_t caps[] = {1024, 4096};
    for (size_t ci = 0; ci < 2; ci++) {
        struct rtudp_mpsc m = mpsc_new(caps[ci]);
        static struct model md;
        memset(&md, 0, sizeof md);
        static uint8_t buf[1 << 16], src[1 << 16];
        uint64_t seed = 12345 + ci, key = 1;
        uint64_t n_full = 0, n_got = 0;
        const uint64_t max = m.max_payload;
        for (int op = 0; op < 60000; op++) {
            uint64_t what = rnd(&seed, 100);
            /* sizes: mostly small, sometimes up to max, to make all gap sizes happen */
            uint32_t len = (uint32_t)(rnd(&seed, 4) ? rnd(&seed, 64) : rnd(&seed, max + 1));
            int64_t at = (int64_t)rnd(&seed, 1000000);
            uint16_t flags = (uint16_t)rnd(&seed, 65536);
            uint64_t pos = 0, nt = 0; /* set by model_fits when it returns true */
            bool fits = model_fits(&m, md.tail, mpsc_head(&m), len, &pos, &nt);
            if (what < 25) { /* try_put */
                int rc = mpsc_put_key(&m, len, key, at, flags);
                if (!fits) {
                    CHECK_EQ(rc, RTUDP_EFULL);
                    n_full++;
                } else {
                    CHECK_EQ(rc, RTUDP_OK);
                    model_push(&md, key++, len, at, flags, pos, nt);
                }
            } else if (what < 35) { /* claim + commit */
                uint64_t cpos = 0;
                int rc = rtudp_mpsc_claim(&m, len, &cpos);
                if (!fits) {
                    CHECK_EQ(rc, RTUDP_EFULL);
                } else {
                    CHECK_EQ(rc, RTUDP_OK);
                    CHECK_EQ(cpos, pos);
                    fill(rtudp_mpsc_claim_payload(&m, cpos), len, key);
                    CHECK_EQ(rtudp_mpsc_commit(&m, cpos, at, flags), RTUDP_OK);
                    model_push(&md, key++, len, at, flags, pos, nt);
                }
            } else if (what < 45) { /* put_many of up to 6, deadline already passed */
                uint64_t n = 1 + rnd(&seed, 6), offs[6], off = 0, tail = md.tail, k0 = key;
                uint32_t lens[6];
                for (uint64_t i = 0; i < n; i++) {
                    lens[i] = (uint32_t)rnd(&seed, 100);
                    offs[i] = off;
                    fill(src + off, lens[i], k0 + i);
                    off += lens[i] + rnd(&seed, 3); /* gaps: offs are honoured */
                }
                int64_t rc = rtudp_mpsc_put_many(&m, src, offs, lens, n, at, flags,
                                                 rtudp_now_ns() - 1, 0);
                uint64_t fit = 0;
                while (fit < n && model_fits(&m, tail, mpsc_head(&m), lens[fit], &pos, &nt)) {
                    tail = nt;
                    fit++;
                }
                if (fit == 0) {
                    CHECK_EQ(rc, RTUDP_ETIMEDOUT);
                } else {
                    CHECK_EQ(rc, (int64_t)fit);
                    for (uint64_t i = 0; i < fit; i++) {
                        CHECK(model_fits(&m, md.tail, mpsc_head(&m), lens[i], &pos, &nt));
                        model_push(&md, key++, lens[i], at, flags, pos, nt);
                    }
                }
            } else if (what < 70) { /* get, sometimes into a too-small buffer */
                struct model_rec *f = model_front(&md);
                uint32_t buflen = rnd(&seed, 8) ? (uint32_t)sizeof buf
                                                : (uint32_t)rnd(&seed, max + 1);
                uint32_t glen = 0;
                int64_t gat = 0;
                uint16_t gflags = 0;
                int rc = rtudp_mpsc_get(&m, buf, buflen, &glen, &gat, &gflags);
                if (!f) {
                    CHECK_EQ(rc, RTUDP_EMPTY);
                } else if (f->len > buflen) {
                    CHECK_EQ(rc, RTUDP_EBUFSMALL);
                    CHECK_EQ(glen, f->len);
                } else {
                    CHECK_EQ(rc, RTUDP_OK);
                    CHECK_EQ(glen, f->len);
                    CHECK_EQ(gat, f->at);
                    CHECK_EQ(gflags, f->flags);
                    CHECK(verify(buf, glen, f->key));
                    model_pop(&md);
                    n_got++;
                }
            } else if (what < 85) { /* get_many, random batch and buffer */
                uint64_t max_n = 1 + rnd(&seed, 8);
                uint64_t buflen = rnd(&seed, 4) ? sizeof buf : rnd(&seed, 300);
                uint32_t lens[8];
                int64_t ats[8];
                int64_t rc = rtudp_mpsc_get_many(&m, buf, buflen, lens, ats, max_n);
                /* expected: as many whole records as fit in order */
                uint64_t n = 0, used = 0;
                for (uint64_t i = 0; i < md.count && n < max_n; i++) {
                    struct model_rec *r = &md.q[(md.first + i) % MODEL_MAX];
                    if (r->len > buflen - used)
                        break;
                    used += r->len;
                    n++;
                }
                if (md.count == 0) {
                    CHECK_EQ(rc, RTUDP_EMPTY);
                } else if (n == 0) {
                    CHECK_EQ(rc, RTUDP_EBUFSMALL);
                } else {
                    CHECK_EQ(rc, (int64_t)n);
                    uint64_t off = 0;
                    for (uint64_t i = 0; i < n; i++) {
                        struct model_rec *f = model_front(&md);
                        CHECK_EQ(lens[i], f->len);
                        CHECK_EQ(ats[i], f->at);
                        CHECK(verify(buf + off, lens[i], f->key));
                        off += lens[i];
                        model_pop(&md);
                        n_got++;
                    }
                }
            } else { /* zero-copy: next + release */
                uint64_t cursor = mpsc_head(&m);
                struct rtudp_tx_record *rec = NULL;
                uint32_t rlen = 0;
                int rc = rtudp_mpsc_next(&m, &cursor, &rec, &rlen);
                struct model_rec *f = model_front(&md);
                if (!f) {
                    CHECK_EQ(rc, RTUDP_EMPTY);
                } else {
                    CHECK_EQ(rc, RTUDP_OK);
                    CHECK(rec == (void *)(m.data + (f->pos & m.mask)));
                    CHECK_EQ(cursor, f->pos + align8(16 + f->len));
                    CHECK_EQ(rlen, f->len);
                    CHECK_EQ(rec->send_at_ns, f->at);
                    CHECK_EQ(rec->flags, f->flags);
                    CHECK(verify((const uint8_t *)(rec + 1), rlen, f->key));
                    model_pop(&md);
                    n_got++;
                }
                rtudp_mpsc_release(&m, cursor);
            }
            CHECK_EQ(mpsc_tail(&m), md.tail);
            model_check_head(&m, &md);
            CHECK_EQ(rtudp_mpsc_pending_bytes(&m), mpsc_tail(&m) - mpsc_head(&m));
        }
        /* the walk must have exercised what it claims to */
        CHECK(n_full > 100);
        CHECK(n_got > 10000);
        CHECK(mpsc_tail(&m) > 50 * m.capacity);
        CHECK_EQ(m.ring->corrupt_records, 0);
        free(m.ring);
    }
}

static void test_mpsc_full(void)
{
    struct rtudp_mpsc m = mpsc_new(1024);
    /* 48-byte payloads take 64 bytes: exactly 16 fill the ring */
    int n = 0;
    while (mpsc_put_key(&m, 48, (uint64_t)n, n, 0) == RTUDP_OK)
        n++;
    CHECK_EQ(n, 16);
    CHECK_EQ(mpsc_put_key(&m, 48, 99, 0, 0), RTUDP_EFULL);
    CHECK_EQ(mpsc_put_key(&m, 0, 99, 0, 0), RTUDP_EFULL); /* even the smallest */
    CHECK_EQ(m.ring->full_events, 3);
    CHECK_EQ(rtudp_mpsc_pending_bytes(&m), 1024);
    uint64_t pos;
    CHECK_EQ(rtudp_mpsc_claim(&m, 1, &pos), RTUDP_EFULL);

    /* one get makes room for exactly one more */
    mpsc_get_expect(&m, 48, 0, 0, 0);
    CHECK_EQ(mpsc_put_key(&m, 48, 16, 16, 0), RTUDP_OK);
    CHECK_EQ(mpsc_put_key(&m, 48, 99, 0, 0), RTUDP_EFULL);

    /* a blocking put on a full ring times out at its deadline, not before */
    uint8_t b[48];
    fill(b, 48, 99);
    int64_t deadline = rtudp_now_ns() + 3 * NS_PER_MS;
    CHECK_EQ(rtudp_mpsc_put(&m, b, 48, 0, 0, deadline, 0), RTUDP_ETIMEDOUT);
    CHECK(rtudp_now_ns() >= deadline);
    /* put_many: the first record cannot go in -> the error code */
    uint64_t offs[3] = {0, 0, 0};
    uint32_t lens[3] = {48, 48, 48};
    CHECK_EQ(rtudp_mpsc_put_many(&m, b, offs, lens, 3, 0, 0, rtudp_now_ns() + NS_PER_MS, 0),
             RTUDP_ETIMEDOUT);

    for (int i = 1; i <= 16; i++)
        mpsc_get_expect(&m, 48, (uint64_t)i, i, 0);
    /* put_many of more than fits: returns how many went in before the deadline */
    uint64_t offs20[20];
    uint32_t lens20[20];
    for (int i = 0; i < 20; i++) {
        offs20[i] = 0;
        lens20[i] = 48;
    }
    CHECK_EQ(rtudp_mpsc_put_many(&m, b, offs20, lens20, 20, 7, 1, rtudp_now_ns() + NS_PER_MS, 0),
             16);
    for (int i = 0; i < 16; i++)
        mpsc_get_expect(&m, 48, 99, 7, 1);
    free(m.ring);
}

/* a blocked put is woken by the consumer freeing space */
struct put_waiter {
    struct rtudp_mpsc *m;
    int rc;
    int64_t returned_ns;
};

static void *put_waiter_main(void *arg)
{
    struct put_waiter *w = arg;
    uint8_t b[48];
    fill(b, 48, 555);
    w->rc = rtudp_mpsc_put(w->m, b, 48, 5, 5, rtudp_now_ns() + 5000 * NS_PER_MS, 0);
    w->returned_ns = rtudp_now_ns();
    return NULL;
}

static void test_mpsc_put_wakes_on_space(void)
{
    struct rtudp_mpsc m = mpsc_new(1024);
    for (int i = 0; i < 16; i++)
        CHECK_EQ(mpsc_put_key(&m, 48, (uint64_t)i, i, 0), RTUDP_OK);
    struct put_waiter w = {&m, 1, 0};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, put_waiter_main, &w), 0);
    sleep_ns(20 * NS_PER_MS);
    int64_t freed = rtudp_now_ns();
    mpsc_get_expect(&m, 48, 0, 0, 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(w.rc, RTUDP_OK);
    CHECK(w.returned_ns - freed < 1000 * NS_PER_MS); /* woken, not timed out */
    for (int i = 1; i < 16; i++)
        mpsc_get_expect(&m, 48, (uint64_t)i, i, 0);
    mpsc_get_expect(&m, 48, 555, 5, 5);
    free(m.ring);
}

static void test_mpsc_toobig(void)
{
    static const uint64_t caps[] = {1024, 4096, 1 << 17, 1 << 20};
    static uint8_t buf[RTUDP_MAX_PAYLOAD + 2];
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        struct rtudp_mpsc m = mpsc_new(caps[i]);
        uint32_t max = (uint32_t)m.max_payload;
        CHECK_EQ(max, min_u64(RTUDP_MAX_PAYLOAD, caps[i] / 4 - 16));
        uint64_t pos;
        CHECK_EQ(rtudp_mpsc_try_put(&m, buf, max + 1, 0, 0), RTUDP_ETOOBIG);
        CHECK_EQ(rtudp_mpsc_claim(&m, max + 1, &pos), RTUDP_ETOOBIG);
        CHECK_EQ(rtudp_mpsc_put(&m, buf, max + 1, 0, 0, rtudp_now_ns() + NS_PER_MS, 0),
                 RTUDP_ETOOBIG);
        CHECK_EQ(rtudp_mpsc_try_put(&m, buf, UINT32_MAX, 0, 0), RTUDP_ETOOBIG);
        CHECK_EQ(rtudp_mpsc_pending_bytes(&m), 0);
        CHECK_EQ(m.ring->full_events, 0); /* too big is not "full" */
        CHECK_EQ(mpsc_put_key(&m, max, 3, 3, 3), RTUDP_OK);
        mpsc_get_expect(&m, max, 3, 3, 3);
        free(m.ring);
    }
}

/* the record a sink copies out: its deadline, flags and payload */
struct copy_sink {
    int64_t send_at_ns;
    uint16_t flags;
    uint32_t len;
    uint8_t data[64];
};

static int copy_take(void *ctx, const struct rtudp_tx_record *rec, const uint8_t *payload,
                     uint32_t len)
{
    struct copy_sink *c = ctx;
    c->send_at_ns = rec->send_at_ns;
    c->flags = rec->flags;
    c->len = len;
    memcpy(c->data, payload, len < sizeof c->data ? len : sizeof c->data);
    return 1;
}

/* a put with room: zeroes in front of the data (over whatever the ring held there),
 * the two together bounded by max_payload, without overflow */
static void test_mpsc_put_room(void)
{
    struct rtudp_mpsc m = mpsc_new(1024);
    uint32_t max = (uint32_t)m.max_payload;
    struct copy_sink got;
    for (int lap = 0; lap < 40; lap++) { /* round the ring: its bytes were written before */
        memset(&got, 0xAA, sizeof got);
        CHECK_EQ(rtudp_mpsc_try_put_room_quiet(&m, 12, "payload", 7, 1234 + lap, 5), RTUDP_OK);
        CHECK_EQ(rtudp_mpsc_drain(&m, 1, copy_take, &got), 1);
        CHECK_EQ(got.len, 19);
        CHECK_EQ(got.send_at_ns, 1234 + lap);
        CHECK_EQ(got.flags, 5);
        for (int i = 0; i < 12; i++)
            CHECK_EQ(got.data[i], 0);
        CHECK(memcmp(got.data + 12, "payload", 7) == 0);
    }
    static uint8_t buf[RTUDP_MAX_PAYLOAD];
    CHECK_EQ(rtudp_mpsc_try_put_room_quiet(&m, 12, buf, max - 12, 0, 0), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_try_put_room_quiet(&m, 12, buf, max - 11, 0, 0), RTUDP_ETOOBIG);
    CHECK_EQ(rtudp_mpsc_try_put_room_quiet(&m, UINT32_MAX, buf, 2, 0, 0), RTUDP_ETOOBIG);
    CHECK_EQ(rtudp_mpsc_try_put_room_quiet(&m, 2, buf, UINT32_MAX - 1, 0, 0), RTUDP_ETOOBIG);
    CHECK_EQ(rtudp_mpsc_try_put_room_quiet(&m, 0, "x", 1, 0, 0), RTUDP_OK); /* room 0 */
    free(m.ring);
}

static void test_mpsc_bufsmall(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    uint8_t buf[200];
    uint32_t len = 0;
    CHECK_EQ(mpsc_put_key(&m, 100, 1, 11, 1), RTUDP_OK);
    CHECK_EQ(mpsc_put_key(&m, 150, 2, 22, 2), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_get(&m, buf, 99, &len, NULL, NULL), RTUDP_EBUFSMALL);
    CHECK_EQ(len, 100); /* tells the caller how much it needs */
    CHECK_EQ(rtudp_mpsc_get(&m, buf, 0, &len, NULL, NULL), RTUDP_EBUFSMALL);
    uint32_t lens[4];
    int64_t ats[4];
    CHECK_EQ(rtudp_mpsc_get_many(&m, buf, 99, lens, ats, 4), RTUDP_EBUFSMALL);
    /* nothing was lost: the record is still first */
    CHECK_EQ(rtudp_mpsc_pending_bytes(&m), align8(116) + align8(166));
    /* a batch stops before the record that does not fit */
    CHECK_EQ(rtudp_mpsc_get_many(&m, buf, 200, lens, ats, 4), 1);
    CHECK_EQ(lens[0], 100);
    CHECK_EQ(ats[0], 11);
    CHECK(verify(buf, 100, 1));
    CHECK_EQ(rtudp_mpsc_get(&m, buf, 149, &len, NULL, NULL), RTUDP_EBUFSMALL);
    mpsc_get_expect(&m, 150, 2, 22, 2);
    CHECK_EQ(m.ring->records_consumed, 2);

    free(m.ring);
}

static void test_mpsc_batches(void)
{
    struct rtudp_mpsc m = mpsc_new(8192);
    enum { N = 10 };
    static uint8_t src[4096];
    uint64_t offs[N];
    uint32_t lens[N];
    /* payloads scattered through src in reverse order with gaps: offs decide */
    uint64_t off = sizeof src;
    for (int i = 0; i < N; i++) {
        lens[i] = i == 3 ? 0 : (uint32_t)(i * 23 + 1); /* record 3 is empty */
        off -= lens[i] + 5;
        offs[i] = off;
        fill(src + off, lens[i], 100 + (uint64_t)i);
    }
    int64_t deadline = rtudp_now_ns() + 1000 * NS_PER_MS;
    CHECK_EQ(rtudp_mpsc_put_many(&m, src, offs, lens, N, 777, 9, deadline, 0), N);
    CHECK_EQ(rtudp_mpsc_put_many(&m, src, offs, lens, 0, 777, 9, deadline, 0), 0);

    uint8_t buf[4096];
    uint32_t glens[N];
    int64_t ats[N];
    CHECK_EQ(rtudp_mpsc_get_many(&m, buf, sizeof buf, glens, ats, 4), 4);
    uint64_t o = 0;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(glens[i], lens[i]);
        CHECK_EQ(ats[i], 777);
        CHECK(verify(buf + o, glens[i], 100 + (uint64_t)i)); /* back to back */
        o += glens[i];
    }
    /* buffer for records 4 and 5 only (6 does not fit) */
    uint64_t room = lens[4] + lens[5] + lens[6] - 1;
    CHECK_EQ(rtudp_mpsc_get_many(&m, buf, room, glens, NULL, N), 2);
    CHECK_EQ(glens[0], lens[4]);
    CHECK_EQ(glens[1], lens[5]);
    CHECK(verify(buf, lens[4], 104));
    CHECK(verify(buf + lens[4], lens[5], 105));
    int64_t none = rtudp_mpsc_get_many(&m, buf, sizeof buf, glens, ats, 0);
    CHECK(none == 0 || none == RTUDP_EMPTY); /* asked for nothing, got nothing */
    CHECK_EQ(rtudp_mpsc_get_many(&m, buf, sizeof buf, glens, ats, N), 4);
    o = 0;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(glens[i], lens[6 + i]);
        CHECK(verify(buf + o, glens[i], 106 + (uint64_t)i));
        o += glens[i];
    }
    CHECK_EQ(rtudp_mpsc_get_many(&m, buf, sizeof buf, glens, ats, N), RTUDP_EMPTY);
    CHECK_EQ(m.ring->records_consumed, N);
    uint64_t total = 0;
    for (int i = 0; i < N; i++)
        total += lens[i];
    CHECK_EQ(m.ring->bytes_consumed, total);

    /* offs NULL: the payloads are back to back in data */
    uint64_t packed = 0;
    for (int i = 0; i < N; i++) {
        fill(src + packed, lens[i], 200 + (uint64_t)i);
        packed += lens[i];
    }
    CHECK_EQ(rtudp_mpsc_put_many(&m, src, NULL, lens, N, 5, 6, deadline, 0), N);
    for (int i = 0; i < N; i++)
        mpsc_get_expect(&m, lens[i], 200 + (uint64_t)i, 5, 6);
    free(m.ring);
}

static void test_mpsc_claim_commit(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    uint64_t p1, p2;
    CHECK_EQ(rtudp_mpsc_claim(&m, 10, &p1), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_claim(&m, 20, &p2), RTUDP_OK);
    CHECK_EQ(p1, 0);
    CHECK_EQ(p2, align8(16 + 10));
    CHECK(rtudp_mpsc_claim_payload(&m, p1) == m.data + 16);
    /* commit out of order: the first is still open, so nothing is readable */
    fill(rtudp_mpsc_claim_payload(&m, p2), 20, 2);
    CHECK_EQ(rtudp_mpsc_commit(&m, p2, 22, 2), RTUDP_OK);
    uint8_t buf[64];
    uint32_t len;
    CHECK_EQ(rtudp_mpsc_get(&m, buf, sizeof buf, &len, NULL, NULL), RTUDP_EMPTY);
    CHECK_EQ(rtudp_mpsc_wait(&m, rtudp_now_ns(), 0), RTUDP_ETIMEDOUT);
    fill(rtudp_mpsc_claim_payload(&m, p1), 10, 1);
    CHECK_EQ(rtudp_mpsc_commit(&m, p1, 11, 1), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_wait(&m, rtudp_now_ns(), 0), RTUDP_OK);
    mpsc_get_expect(&m, 10, 1, 11, 1);
    mpsc_get_expect(&m, 20, 2, 22, 2);

    /* zero-copy consume: next walks, release frees */
    CHECK_EQ(mpsc_put_key(&m, 30, 3, 33, 3), RTUDP_OK);
    CHECK_EQ(mpsc_put_key(&m, 40, 4, 44, 4), RTUDP_OK);
    uint64_t cursor = mpsc_head(&m), start = cursor;
    struct rtudp_tx_record *rec;
    CHECK_EQ(rtudp_mpsc_next(&m, &cursor, &rec, &len), RTUDP_OK);
    CHECK_EQ(len, 30);
    CHECK_EQ(rec->length, 16 + 30);
    CHECK_EQ(rec->type, RTUDP_REC_DATA);
    CHECK_EQ(rec->send_at_ns, 33);
    CHECK(verify((uint8_t *)(rec + 1), 30, 3));
    CHECK_EQ(cursor, start + align8(46));
    CHECK_EQ(rtudp_mpsc_next(&m, &cursor, &rec, &len), RTUDP_OK);
    CHECK_EQ(len, 40);
    CHECK(verify((uint8_t *)(rec + 1), 40, 4));
    CHECK_EQ(rtudp_mpsc_next(&m, &cursor, &rec, &len), RTUDP_EMPTY);
    CHECK_EQ(mpsc_head(&m), start); /* next alone frees nothing */
    rtudp_mpsc_release(&m, cursor);
    CHECK_EQ(mpsc_head(&m), cursor);
    CHECK_EQ(rtudp_mpsc_pending_bytes(&m), 0);
    free(m.ring);
}

/* drain: a sink that takes records until it has seen `limit` of them */
struct drain_sink {
    uint64_t seen, limit;
    uint64_t keys[16];
    uint32_t lens[16];
};

static int drain_take(void *ctx, const struct rtudp_tx_record *rec, const uint8_t *payload,
                      uint32_t len)
{
    struct drain_sink *d = ctx;
    if (d->seen >= d->limit)
        return 0;
    CHECK_EQ(rec->type, RTUDP_REC_DATA);
    CHECK_EQ(rec->length, 16 + (int64_t)len);
    CHECK(payload == (const uint8_t *)(rec + 1));
    CHECK_EQ(len, d->lens[d->seen]);
    CHECK_EQ(rec->send_at_ns, (int64_t)d->keys[d->seen]);
    CHECK(verify(payload, len, d->keys[d->seen]));
    d->seen++;
    return 1;
}

static void test_mpsc_drain(void)
{
    struct rtudp_mpsc m = mpsc_new(1024);
    struct drain_sink d = {0, 16, {0}, {0}};
    CHECK_EQ(rtudp_mpsc_drain(&m, 8, drain_take, &d), RTUDP_EMPTY);
    /* across the wrap: padding is skipped, never handed to the sink */
    mpsc_advance_to(&m, 1024 - 40);
    for (uint64_t i = 0; i < 6; i++) {
        d.keys[i] = 300 + i;
        d.lens[i] = (uint32_t)(10 + 20 * i);
        CHECK_EQ(mpsc_put_key(&m, d.lens[i], d.keys[i], (int64_t)d.keys[i], 0), RTUDP_OK);
    }
    d.limit = 2; /* the sink stops before the third: it stays in the ring */
    CHECK_EQ(rtudp_mpsc_drain(&m, 8, drain_take, &d), 2);
    struct drain_sink stop = {0, 0, {0}, {0}};
    CHECK_EQ(rtudp_mpsc_drain(&m, 8, drain_take, &stop), RTUDP_EBUFSMALL);
    /* max_n bounds the batch */
    struct drain_sink rest = {0, 16, {0}, {0}};
    for (int i = 0; i < 4; i++) {
        rest.keys[i] = d.keys[2 + i];
        rest.lens[i] = d.lens[2 + i];
    }
    CHECK_EQ(rtudp_mpsc_drain(&m, 3, drain_take, &rest), 3);
    CHECK_EQ(rtudp_mpsc_drain(&m, 8, drain_take, &rest), 1);
    CHECK_EQ(rest.seen, 4);
    CHECK_EQ(rtudp_mpsc_drain(&m, 8, drain_take, &rest), RTUDP_EMPTY);
    CHECK_EQ(rtudp_mpsc_pending_bytes(&m), 0);
    free(m.ring);
}

/*
 * A producer that claims and never commits blocks the consumer.  The consumer
 * calls unblock(head, timeout): the first call only starts the clock; once the
 * timeout has passed the claim becomes padding and what follows is readable.  A
 * commit that comes after that is refused (the record is gone).
 */
static void test_mpsc_unblock_open_claim(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    const int64_t timeout = 2 * NS_PER_MS;
    uint64_t dead;
    CHECK_EQ(rtudp_mpsc_claim(&m, 32, &dead), RTUDP_OK);
    memset(rtudp_mpsc_claim_payload(&m, dead), 0xAB, 32); /* partly written */
    CHECK_EQ(mpsc_put_key(&m, 17, 17, 1700, 17), RTUDP_OK);

    uint8_t buf[64];
    uint32_t len;
    CHECK_EQ(rtudp_mpsc_get(&m, buf, sizeof buf, &len, NULL, NULL), RTUDP_EMPTY);
    uint64_t cursor = mpsc_head(&m);
    struct rtudp_tx_record *rec;
    CHECK_EQ(rtudp_mpsc_next(&m, &cursor, &rec, &len), RTUDP_EMPTY);
    CHECK(rtudp_mpsc_pending_bytes(&m) > 0);

    uint64_t head = mpsc_head(&m);
    CHECK_EQ(rtudp_mpsc_unblock(&m, head, timeout), 0); /* starts the clock */
    CHECK_EQ(rtudp_mpsc_unblock(&m, head, timeout), 0); /* not yet */
    CHECK_EQ(m.ring->unblocked_claims, 0);
    sleep_ns(timeout + NS_PER_MS);
    CHECK_EQ(rtudp_mpsc_unblock(&m, head, timeout), 1);
    CHECK_EQ(m.ring->unblocked_claims, 1);
    CHECK(rec_length_at(m.data, dead & m.mask) & RTUDP_TX_LEN_UNBLOCKED);
    mpsc_get_expect(&m, 17, 17, 1700, 17);
    CHECK_EQ(rtudp_mpsc_get(&m, buf, sizeof buf, &len, NULL, NULL), RTUDP_EMPTY);
    /* the late producer hears that its record was dropped */
    CHECK_EQ(rtudp_mpsc_commit(&m, dead, 0, 0), RTUDP_ETIMEDOUT);

    /* unblock of a position nothing blocks does nothing */
    CHECK_EQ(mpsc_put_key(&m, 8, 8, 8, 8), RTUDP_OK);
    head = mpsc_head(&m);
    CHECK_EQ(rtudp_mpsc_unblock(&m, head, 0), 0);
    sleep_ns(NS_PER_MS);
    CHECK_EQ(rtudp_mpsc_unblock(&m, head, 0), 0);
    mpsc_get_expect(&m, 8, 8, 8, 8);
    CHECK_EQ(rtudp_mpsc_unblock(&m, mpsc_head(&m), 0), 0); /* empty */
    CHECK_EQ(rtudp_mpsc_unblock(&m, mpsc_head(&m), 0), 0);
    CHECK_EQ(m.ring->unblocked_claims, 1);

    /* a claim that is committed between the two calls is not touched */
    CHECK_EQ(rtudp_mpsc_claim(&m, 5, &dead), RTUDP_OK);
    head = mpsc_head(&m);
    CHECK_EQ(rtudp_mpsc_unblock(&m, head, timeout), 0);
    fill(rtudp_mpsc_claim_payload(&m, dead), 5, 5);
    CHECK_EQ(rtudp_mpsc_commit(&m, dead, 5, 5), RTUDP_OK);
    sleep_ns(timeout + NS_PER_MS);
    CHECK_EQ(rtudp_mpsc_unblock(&m, head, timeout), 0);
    mpsc_get_expect(&m, 5, 5, 5, 5);
    CHECK_EQ(m.ring->unblocked_claims, 1);
    free(m.ring);
}

/*
 * A producer that was only stalled past the unblock timeout resumes: it writes its
 * header (type DATA) and tries to commit after the consumer made its claim padding.
 * The commit fails, and the consumer skips the record by its length alone: the
 * header the late producer wrote must not bring it back (before, unblock wrote the
 * type PAD and the producer then wrote DATA over it, and the consumer read a DATA
 * record of the dead claim's span).
 */
static void test_mpsc_unblock_then_late_commit(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    const int64_t timeout = NS_PER_MS;
    uint64_t late;
    CHECK_EQ(rtudp_mpsc_claim(&m, 24, &late), RTUDP_OK);
    CHECK_EQ(mpsc_put_key(&m, 9, 9, 900, 9), RTUDP_OK);
    uint64_t head = mpsc_head(&m);
    CHECK_EQ(rtudp_mpsc_unblock(&m, head, timeout), 0);
    sleep_ns(timeout + NS_PER_MS);
    CHECK_EQ(rtudp_mpsc_unblock(&m, head, timeout), 1);
    /* the producer wakes up where commit had checked its claim still open and was
     * writing the header: those stores land, then its compare-and-swap fails */
    fill(rtudp_mpsc_claim_payload(&m, late), 24, 24);
    struct rtudp_tx_record *rec = (void *)(m.data + (late & m.mask));
    rec->type = RTUDP_REC_DATA;
    rec->flags = 24;
    rec->send_at_ns = 2400;
    CHECK_EQ(rtudp_mpsc_commit(&m, late, 2400, 24), RTUDP_ETIMEDOUT);
    mpsc_get_expect(&m, 9, 9, 900, 9); /* the consumer skips the claim all the same */
    mpsc_expect_drained(&m);
    free(m.ring);
}

/*
 * A producer that died between claiming (moving tail) and writing its header
 * leaves a run of zero bytes ("length 0 = not written").  Simulated by moving
 * tail by hand.  Unblock turns the run into padding up to the next committed
 * record.  Done on a fresh ring and after a full lap, where the bytes behind the
 * claim held old records (the consumer must have zeroed them).
 */
static void test_mpsc_unblock_unwritten(void)
{
    for (int lap = 0; lap < 2; lap++) {
        struct rtudp_mpsc m = mpsc_new(4096);
        if (lap) {
            mpsc_advance_to(&m, m.capacity);
            mpsc_advance_to(&m, m.capacity + 1000);
        }
        const uint64_t hole = 48;
        uint64_t start = mpsc_tail(&m);
        m.ring->tail += hole; /* the dead producer's claim */
        CHECK_EQ(mpsc_put_key(&m, 21, 21, 2100, 21), RTUDP_OK);
        CHECK_EQ(mpsc_tail(&m), start + hole + align8(16 + 21));

        uint8_t buf[64];
        uint32_t len;
        CHECK_EQ(rtudp_mpsc_get(&m, buf, sizeof buf, &len, NULL, NULL), RTUDP_EMPTY);
        CHECK_EQ(rtudp_mpsc_wait(&m, rtudp_now_ns() + NS_PER_MS, 0), RTUDP_ETIMEDOUT);
        CHECK_EQ(rtudp_mpsc_unblock(&m, start, NS_PER_MS), 0);
        sleep_ns(2 * NS_PER_MS);
        CHECK_EQ(rtudp_mpsc_unblock(&m, start, NS_PER_MS), 1);
        CHECK_EQ(m.ring->unblocked_claims, 1);
        CHECK_EQ(rec_length_at(m.data, start & m.mask), (int32_t)(hole | RTUDP_TX_LEN_UNBLOCKED));
        mpsc_get_expect(&m, 21, 21, 2100, 21);
        mpsc_expect_drained(&m);
        free(m.ring);
    }
}

/*
 * A dead producer's header-less claim, and right behind it another producer that
 * is, at the moment the timeout ends, between its tail CAS and its header store:
 * the run of zero words then covers both claims.  Before, unblock made the whole
 * run padding; the second producer then wrote its header and committed "OK" into
 * space the consumer had skipped, and its record was lost.  Unblock now acts only
 * on an extent that was the same when the clock started: a changed one restarts
 * the clock, and the second producer's record is delivered.
 */
static void test_mpsc_unblock_unwritten_then_next_claim(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    const int64_t timeout = NS_PER_MS;
    const uint64_t hole = 40;
    uint64_t start = mpsc_tail(&m);
    m.ring->tail += hole; /* the dead producer's claim: tail moved, no header */
    CHECK_EQ(rtudp_mpsc_unblock(&m, start, timeout), 0); /* starts the clock */

    /* the next producer claims and stops before its header (simulated by hand) */
    const uint32_t late_len = 20;
    uint64_t late = mpsc_tail(&m);
    m.ring->tail += align8(16 + late_len);
    CHECK_EQ(mpsc_put_key(&m, 11, 11, 1100, 11), RTUDP_OK);
    sleep_ns(timeout + NS_PER_MS);
    /* the run of zeros now reaches over the late claim too: not trusted */
    CHECK_EQ(rtudp_mpsc_unblock(&m, start, timeout), 0);
    CHECK_EQ(m.ring->unblocked_claims, 0);

    /* the late producer goes on: header, payload, commit */
    int32_t open = -(int32_t)(16 + late_len);
    memcpy(m.data + (late & m.mask), &open, sizeof open);
    fill(rtudp_mpsc_claim_payload(&m, late), late_len, 20);
    CHECK_EQ(rtudp_mpsc_commit(&m, late, 2000, 20), RTUDP_OK);

    CHECK_EQ(rtudp_mpsc_unblock(&m, start, timeout), 0); /* extent changed back: wait */
    sleep_ns(timeout + NS_PER_MS);
    CHECK_EQ(rtudp_mpsc_unblock(&m, start, timeout), 1);
    CHECK_EQ(rec_length_at(m.data, start & m.mask), (int32_t)(hole | RTUDP_TX_LEN_UNBLOCKED));
    mpsc_get_expect(&m, late_len, 20, 2000, 20); /* the late producer's record */
    mpsc_get_expect(&m, 11, 11, 1100, 11);
    mpsc_expect_drained(&m);
    free(m.ring);
}

static void test_mpsc_wait_timeout(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    /* the lower bound must always hold; the upper bound is about the OS
     * scheduling us back in time, so a loaded machine gets up to ten tries (it
     * stops at the first on-time one) */
    int64_t best_late = INT64_MAX;
    for (int attempt = 0; attempt < 10 && best_late > 2 * NS_PER_MS; attempt++) {
        int64_t deadline = rtudp_now_ns() + 5 * NS_PER_MS;
        int rc = rtudp_mpsc_wait(&m, deadline, 0);
        int64_t now = rtudp_now_ns();
        CHECK_EQ(rc, RTUDP_ETIMEDOUT);
        CHECK(now >= deadline);
        if (now - deadline < best_late)
            best_late = now - deadline;
    }
    if (best_late > 2 * NS_PER_MS)
        fprintf(stderr, "best wake-up was %lld us after the deadline\n",
                (long long)(best_late / 1000));
    CHECK(best_late <= 2 * NS_PER_MS);
    /* with spinning too */
    int64_t deadline = rtudp_now_ns() + 2 * NS_PER_MS;
    CHECK_EQ(rtudp_mpsc_wait(&m, deadline, NS_PER_MS), RTUDP_ETIMEDOUT);
    CHECK(rtudp_now_ns() >= deadline);
    /* a deadline in the past returns at once */
    CHECK_EQ(rtudp_mpsc_wait(&m, 0, 0), RTUDP_ETIMEDOUT);
    /* data present: OK at once */
    CHECK_EQ(mpsc_put_key(&m, 3, 3, 3, 3), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_wait(&m, 0, 0), RTUDP_OK);
    free(m.ring);
}

/* A consumer holding records in flight (read, not released) sleeps on its cursor,
 * not on head: wait_at times out with the ring non-empty, and wakes on new data. */
static void test_mpsc_wait_at_cursor(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    CHECK_EQ(mpsc_put_key(&m, 10, 1, 1, 1), RTUDP_OK);
    uint64_t cursor = m.ring->head;
    struct rtudp_tx_record *rec;
    uint32_t len;
    CHECK_EQ(rtudp_mpsc_next(&m, &cursor, &rec, &len), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_wait(&m, 0, 0), RTUDP_OK); /* head still has a record */
    int64_t deadline = rtudp_now_ns() + 3 * NS_PER_MS;
    CHECK_EQ(rtudp_mpsc_wait_at(&m, cursor, deadline, 0), RTUDP_ETIMEDOUT);
    CHECK(rtudp_now_ns() >= deadline);
    CHECK_EQ(mpsc_put_key(&m, 20, 2, 2, 2), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_wait_at(&m, cursor, rtudp_now_ns() + NS_PER_MS, 0), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_next(&m, &cursor, &rec, &len), RTUDP_OK);
    CHECK_EQ(len, 20);
    /* the next/release path counts through account; release checks its argument */
    CHECK_EQ(rtudp_mpsc_release(&m, cursor + 8 + m.capacity), RTUDP_EINVAL);
    CHECK_EQ(rtudp_mpsc_release(&m, cursor - 4), RTUDP_EINVAL);
    CHECK_EQ(rtudp_mpsc_release(&m, cursor), RTUDP_OK);
    rtudp_mpsc_account(&m, 2, 30);
    CHECK_EQ(m.ring->records_consumed, 2);
    CHECK_EQ(m.ring->bytes_consumed, 30);
    CHECK_EQ(rtudp_mpsc_pending_bytes(&m), 0);
    free(m.ring);
}

/* A worker sends out of ring order and frees space only up to the oldest unsent
 * record; a worker that restarts from head must skip what was already sent. */
static void test_mpsc_mark_sent_skipped_after_restart(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    uint64_t pos[4];
    uint64_t cursor = m.ring->head;
    for (int i = 0; i < 4; i++)
        CHECK_EQ(mpsc_put_key(&m, 20, (uint64_t)i, 100 - i, 0), RTUDP_OK);
    for (int i = 0; i < 4; i++) {
        struct rtudp_tx_record *rec;
        uint32_t len;
        pos[i] = cursor;
        CHECK_EQ(rtudp_mpsc_next(&m, &cursor, &rec, &len), RTUDP_OK);
    }
    /* deadlines were descending: records 3, 2, 1 left; record 0 did not */
    for (int i = 3; i >= 1; i--)
        rtudp_mpsc_mark_sent(&m, pos[i]);
    /* the worker dies here: head never moved; a new one starts from head */
    uint64_t again = m.ring->head;
    struct rtudp_tx_record *rec;
    uint32_t len;
    CHECK_EQ(rtudp_mpsc_next(&m, &again, &rec, &len), RTUDP_OK);
    CHECK_EQ((uint8_t *)rec - m.data, pos[0] & m.mask); /* only the unsent one */
    CHECK_EQ(rtudp_mpsc_next(&m, &again, &rec, &len), RTUDP_EMPTY);
    CHECK_EQ(again, cursor);
    CHECK_EQ(rtudp_mpsc_release(&m, again), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_pending_bytes(&m), 0);
    free(m.ring);
}

/* A consumer serving many rings sleeps on a bell of its own; producers whose view
 * names that bell (set_wake) wake it. */
struct wake_waiter {
    struct rtudp_mpsc *m;
    struct rtudp_doorbell *bell;
    int rc;
};

static bool ring_has_data(const void *ctx)
{
    const struct rtudp_mpsc *m = ctx;
    return rtudp_mpsc_pending_bytes(m) > 0;
}

static void *wake_waiter_main(void *arg)
{
    struct wake_waiter *w = arg;
    w->rc = rtudp_bell_wait(w->bell, ring_has_data, w->m, rtudp_now_ns() + 5000 * NS_PER_MS, 0);
    return NULL;
}

static void test_mpsc_wake_bell(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    static struct rtudp_doorbell bell; /* stands for a worker's bell elsewhere */
    struct rtudp_mpsc producer = m;
    rtudp_mpsc_set_wake(&producer, &bell);
    struct wake_waiter w = {&m, &bell, 99};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, wake_waiter_main, &w), 0);
    /* let the waiter park (it spins 0 ns, so it sleeps at once) */
    for (int i = 0; i < 2000 && __atomic_load_n(&bell.waiters, __ATOMIC_ACQUIRE) == 0; i++)
        sleep_ns(NS_PER_MS / 10);
    CHECK_EQ(__atomic_load_n(&bell.waiters, __ATOMIC_ACQUIRE), 1);
    int64_t t0 = rtudp_now_ns();
    CHECK_EQ(rtudp_mpsc_try_put(&producer, "x", 1, 0, 0), RTUDP_OK);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(w.rc, RTUDP_OK);
    CHECK(rtudp_now_ns() - t0 < 2000 * NS_PER_MS); /* woken, not timed out */
    free(m.ring);
}

/* how often a commit rang `bell` for the sleeper it stands for (waiters 1, asleep
 * until `until`) */
static uint32_t rings_of(struct rtudp_doorbell *bell)
{
    return __atomic_load_n(&bell->seq, __ATOMIC_ACQUIRE);
}

/* a producer of m whose worker's bell stands for a worker asleep until `until` */
static struct rtudp_mpsc producer_of_parked(const struct rtudp_mpsc *m,
                                           struct rtudp_doorbell *bell, int64_t until)
{
    bell->waiters = 1;
    bell->sleeper_deadline_ns = until;
    struct rtudp_mpsc producer = *m;
    rtudp_mpsc_set_wake(&producer, bell);
    return producer;
}

static void test_mpsc_not_before_leaves_an_early_sleeper_asleep(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    static struct rtudp_doorbell bell; /* a worker's, asleep until `until` */
    int64_t until = rtudp_now_ns() + 1000 * NS_PER_MS;
    struct rtudp_mpsc producer = producer_of_parked(&m, &bell, until);
    int64_t clock = 0; /* the paced stream's clock: 0, not known */
    rtudp_mpsc_set_not_before(&producer, &clock);
    uint32_t seq = rings_of(&bell);
    /* nothing known: a record for now wakes the sleeper */
    CHECK_EQ(rtudp_mpsc_try_put(&producer, "a", 1, 0, 0), RTUDP_OK);
    CHECK_EQ(rings_of(&bell), ++seq);
    /* the stream's next frame is due after the sleeper wakes: no commit path rings */
    clock = until + NS_PER_MS;
    CHECK_EQ(rtudp_mpsc_try_put(&producer, "b", 1, 0, 0), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_try_put_quiet(&producer, "c", 1, 0, 0), RTUDP_OK);
    rtudp_mpsc_wake(&producer);
    uint32_t lens[2] = {1, 1};
    CHECK_EQ(rtudp_mpsc_put_many(&producer, (const uint8_t *)"de", NULL, lens, 2, 0, 0,
                                 INT64_MAX, 0), 2);
    CHECK_EQ(rings_of(&bell), seq);
    /* due before the sleeper wakes: it is woken */
    clock = until - NS_PER_MS;
    CHECK_EQ(rtudp_mpsc_try_put(&producer, "f", 1, 0, 0), RTUDP_OK);
    CHECK_EQ(rings_of(&bell), ++seq);
    /* a full ring wakes its consumer whatever the clock says (it is to make room) */
    clock = until + NS_PER_MS;
    uint8_t big[512] = {0};
    int rc;
    while ((rc = rtudp_mpsc_try_put(&producer, big, sizeof big, 0, 0)) == RTUDP_OK)
        ;
    CHECK_EQ(rc, RTUDP_EFULL);
    CHECK_EQ(rings_of(&bell), seq);
    CHECK_EQ(rtudp_mpsc_put(&producer, big, sizeof big, 0, 0, rtudp_now_ns() + NS_PER_MS, 0),
             RTUDP_ETIMEDOUT);
    CHECK_EQ(rings_of(&bell), ++seq);
    /* a batch's earliest deadline, without a clock: after the sleeper wakes, no ring */
    rtudp_mpsc_set_not_before(&producer, NULL);
    rtudp_mpsc_wake_at(&producer, until);
    CHECK_EQ(rings_of(&bell), seq);
    rtudp_mpsc_wake_at(&producer, until - 1);
    CHECK_EQ(rings_of(&bell), ++seq);
    free(m.ring);
}

/* the first commit that rings a parked worker stamps its bell with the clock; later
 * ones leave the stamp, and one that rings no bell (due after the sleeper wakes) writes
 * none: the worker then knows when it was first called (txstamp.h) */
static void test_mpsc_first_ring_stamps_the_bell(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    static struct rtudp_doorbell bell; /* a worker's, asleep until `until` */
    int64_t until = rtudp_now_ns() + 1000 * NS_PER_MS;
    m.ring->data_bell.waiters = 1; /* a waiter of another kind, rung at every commit */
    struct rtudp_mpsc producer = producer_of_parked(&m, &bell, until);
    CHECK_EQ(rtudp_mpsc_try_put(&producer, "a", 1, until + NS_PER_MS, 0), RTUDP_OK);
    CHECK_EQ(bell.rung_ns, 0); /* no ring: no stamp */
    int64_t t0 = rtudp_now_ns();
    CHECK_EQ(rtudp_mpsc_try_put(&producer, "b", 1, until - NS_PER_MS, 0), RTUDP_OK);
    int64_t first = bell.rung_ns;
    CHECK(first >= t0 && first <= rtudp_now_ns());
    sleep_ns(NS_PER_MS / 10);
    CHECK_EQ(rtudp_mpsc_try_put(&producer, "c", 1, 0, 0), RTUDP_OK);
    CHECK_EQ(bell.rung_ns, first); /* rung again: the first stamp stays */
    /* the ring's own data bell, rung each time, is no worker's: not stamped */
    CHECK(m.ring->data_bell.seq >= 3);
    CHECK_EQ(m.ring->data_bell.rung_ns, 0);
    free(m.ring);
}

struct late_put {
    struct rtudp_mpsc *m;
    int64_t delay_ns;
};

static void *late_put_main(void *arg)
{
    struct late_put *lp = arg;
    sleep_ns(lp->delay_ns);
    CHECK_EQ(mpsc_put_key(lp->m, 9, 9, 9, 9), RTUDP_OK);
    return NULL;
}

static void test_mpsc_wait_wakes(void)
{
    struct rtudp_mpsc m = mpsc_new(4096);
    for (int spin = 0; spin < 2; spin++) {
        struct late_put lp = {&m, 20 * NS_PER_MS};
        pthread_t t;
        int64_t t0 = rtudp_now_ns();
        CHECK_EQ(pthread_create(&t, NULL, late_put_main, &lp), 0);
        int rc = rtudp_mpsc_wait(&m, t0 + 5000 * NS_PER_MS, spin ? 50000 : 0);
        int64_t took = rtudp_now_ns() - t0;
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(rc, RTUDP_OK);
        CHECK(took >= 15 * NS_PER_MS);
        CHECK(took < 2000 * NS_PER_MS); /* woken by the doorbell, not the deadline */
        mpsc_get_expect(&m, 9, 9, 9, 9);
    }
    free(m.ring);
}

/* ---- MPSC, threaded: 4 producers (each a different produce API), 1 consumer ---- */

#define MT_PRODUCERS 4
#define MT_PER_PRODUCER 200000u
#define MT_MAX_LEN 256u
#define MT_BATCH 16u

struct mt {
    struct rtudp_mpsc m;
    atomic_int go;
    uint64_t timeouts[MT_PRODUCERS];
    int id[MT_PRODUCERS];
};

static struct mt g_mt;

/* (producer, seq) -> the record's length; the pair itself rides in send_at_ns */
static uint32_t mt_len(uint64_t key) { return 1 + (uint32_t)(mix64(key) % MT_MAX_LEN); }

static void *mt_producer(void *arg)
{
    const int id = *(const int *)arg;
    struct rtudp_mpsc *m = &g_mt.m;
    static _Thread_local uint8_t batch[MT_BATCH * MT_MAX_LEN];
    uint64_t offs[MT_BATCH];
    uint32_t lens[MT_BATCH];
    while (!atomic_load(&g_mt.go))
        sched_yield();
    uint32_t seq = 0;
    while (seq < MT_PER_PRODUCER) {
        uint64_t key = ((uint64_t)id << 32) | seq;
        uint32_t len = mt_len(key);
        if (id == 0 || id == 1) { /* blocking put, retried past its deadline */
            uint8_t buf[MT_MAX_LEN];
            fill(buf, len, key);
            int rc;
            while ((rc = rtudp_mpsc_put(m, buf, len, (int64_t)key, (uint16_t)id,
                                        rtudp_now_ns() + 200 * NS_PER_MS,
                                        id == 0 ? 0 : 20000)) == RTUDP_ETIMEDOUT)
                g_mt.timeouts[id]++;
            CHECK_EQ(rc, RTUDP_OK);
            seq++;
        } else if (id == 2) { /* claim, write in place, commit; back off when full */
            uint64_t pos;
            int rc;
            while ((rc = rtudp_mpsc_claim(m, len, &pos)) == RTUDP_EFULL)
                sched_yield();
            CHECK_EQ(rc, RTUDP_OK);
            fill(rtudp_mpsc_claim_payload(m, pos), len, key);
            CHECK_EQ(rtudp_mpsc_commit(m, pos, (int64_t)key, (uint16_t)id), RTUDP_OK);
            seq++;
        } else {
            /* put_many in batches of up to MT_BATCH; every record of a batch gets
             * the same send_at, so it carries the batch's first key and the
             * consumer checks the seq is within the batch */
            uint64_t n = 0, off = 0;
            while (n < MT_BATCH && seq + n < MT_PER_PRODUCER) {
                uint64_t k = ((uint64_t)id << 32) | (seq + n);
                lens[n] = mt_len(k);
                offs[n] = off;
                fill(batch + off, lens[n], k);
                off += lens[n];
                n++;
            }
            int64_t rc = rtudp_mpsc_put_many(m, batch, offs, lens, n, (int64_t)key, (uint16_t)id,
                                             rtudp_now_ns() + 200 * NS_PER_MS, 10000);
            if (rc == RTUDP_ETIMEDOUT) {
                g_mt.timeouts[id]++;
                continue;
            }
            CHECK(rc > 0);
            seq += (uint32_t)rc;
        }
    }
    return NULL;
}

static void test_mpsc_threaded(void)
{
    memset(&g_mt, 0, sizeof g_mt);
    g_mt.m = mpsc_new(1 << 16);
    pthread_t t[MT_PRODUCERS];
    start_numbered_threads(t, g_mt.id, MT_PRODUCERS, mt_producer);
    const uint64_t total = (uint64_t)MT_PRODUCERS * MT_PER_PRODUCER;
    enum { BATCH = 512 };
    const uint64_t buflen = 1 << 17;
    uint8_t *buf = malloc(buflen);
    CHECK(buf != NULL);
    uint32_t lens[BATCH];
    int64_t ats[BATCH];
    uint32_t next_seq[MT_PRODUCERS] = {0};
    uint64_t got = 0, waits = 0;
    const int64_t give_up = rtudp_now_ns() + 45000 * NS_PER_MS;
    atomic_store(&g_mt.go, 1);
    while (got < total) {
        int64_t n = rtudp_mpsc_get_many(&g_mt.m, buf, buflen, lens, ats, BATCH);
        if (n == RTUDP_EMPTY) {
            int rc = rtudp_mpsc_wait(&g_mt.m, rtudp_now_ns() + 100 * NS_PER_MS, 5000);
            CHECK(rc == RTUDP_OK || rc == RTUDP_ETIMEDOUT);
            CHECK(rtudp_now_ns() < give_up);
            waits++;
            continue;
        }
        CHECK(n > 0);
        uint64_t off = 0;
        for (int64_t i = 0; i < n; i++) {
            uint64_t tag = (uint64_t)ats[i];
            uint64_t id = tag >> 32, seq = tag & 0xffffffffu;
            CHECK(id < MT_PRODUCERS);
            /* exactly once, in each producer's order */
            if (id == 3) { /* tag is the first key of its put_many batch */
                CHECK(next_seq[id] >= seq && next_seq[id] < seq + MT_BATCH);
                seq = next_seq[id];
            } else {
                CHECK_EQ(seq, next_seq[id]);
            }
            uint64_t key = (id << 32) | seq;
            next_seq[id]++;
            CHECK_EQ(lens[i], mt_len(key));
            CHECK(verify(buf + off, lens[i], key));
            off += lens[i];
        }
        got += (uint64_t)n;
    }
    for (int i = 0; i < MT_PRODUCERS; i++) {
        CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK_EQ(next_seq[i], MT_PER_PRODUCER);
    }
    uint32_t len;
    CHECK_EQ(rtudp_mpsc_get(&g_mt.m, buf, (uint32_t)buflen, &len, NULL, NULL), RTUDP_EMPTY);
    CHECK_EQ(g_mt.m.ring->records_consumed, total);
    CHECK_EQ(g_mt.m.ring->corrupt_records, 0);
    CHECK_EQ(g_mt.m.ring->unblocked_claims, 0);
    printf("    %llu records, %llu consumer waits, %llu full events, put timeouts %llu/%llu/%llu\n",
           (unsigned long long)got, (unsigned long long)waits,
           (unsigned long long)g_mt.m.ring->full_events, (unsigned long long)g_mt.timeouts[0],
           (unsigned long long)g_mt.timeouts[1], (unsigned long long)g_mt.timeouts[3]);
    free(buf);
    free(g_mt.m.ring);
}

/*
 * More spinning producers than CPUs on a tiny ring: a producer preempted between
 * reading tail and re-reading head comes back to a head more than a lap ahead of
 * its stale tail.  That is a race, not damage: a healthy ring must never answer
 * RTUDP_ECORRUPT, and every record put must come out.
 */
#define OS_PRODUCERS 6
#define OS_RUN_NS (1500 * NS_PER_MS)

struct os_ctx {
    struct rtudp_mpsc m;
    atomic_int stop;
    _Atomic uint64_t put_ok, corrupt, other;
};

static struct os_ctx g_os;

static void *os_producer(void *arg)
{
    (void)arg;
    uint8_t b[40];
    fill(b, sizeof b, 40);
    while (!atomic_load_explicit(&g_os.stop, memory_order_relaxed)) {
        int rc = rtudp_mpsc_try_put(&g_os.m, b, sizeof b, 1, 1);
        if (rc == RTUDP_OK)
            atomic_fetch_add_explicit(&g_os.put_ok, 1, memory_order_relaxed);
        else if (rc == RTUDP_ECORRUPT)
            atomic_fetch_add_explicit(&g_os.corrupt, 1, memory_order_relaxed);
        else if (rc != RTUDP_EFULL)
            atomic_fetch_add_explicit(&g_os.other, 1, memory_order_relaxed);
    }
    return NULL;
}

static void test_mpsc_oversubscribed(void)
{
    memset(&g_os, 0, sizeof g_os);
    g_os.m = mpsc_new(1024);
    pthread_t t[OS_PRODUCERS];
    for (int i = 0; i < OS_PRODUCERS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, os_producer, NULL), 0);
    uint8_t buf[1024];
    uint32_t lens[32];
    uint64_t got = 0;
    int64_t end = rtudp_now_ns() + OS_RUN_NS;
    for (;;) {
        bool stopping = rtudp_now_ns() >= end;
        if (stopping && !atomic_load(&g_os.stop)) {
            atomic_store(&g_os.stop, 1);
            for (int i = 0; i < OS_PRODUCERS; i++)
                CHECK_EQ(pthread_join(t[i], NULL), 0);
        }
        int64_t n = rtudp_mpsc_get_many(&g_os.m, buf, sizeof buf, lens, NULL, 32);
        if (n > 0) {
            uint64_t off = 0;
            for (int64_t i = 0; i < n; i++) {
                CHECK_EQ(lens[i], 40);
                CHECK(verify(buf + off, 40, 40));
                off += 40;
            }
            got += (uint64_t)n;
            continue;
        }
        CHECK_EQ(n, RTUDP_EMPTY);
        if (stopping) /* producers joined: every commit is visible */
            break;
        sched_yield();
    }
    printf("    %llu records through a 1 KiB ring, %llu false ECORRUPT\n",
           (unsigned long long)got, (unsigned long long)atomic_load(&g_os.corrupt));
    CHECK_EQ(atomic_load(&g_os.corrupt), 0);
    CHECK_EQ(atomic_load(&g_os.other), 0);
    CHECK_EQ(got, atomic_load(&g_os.put_ok));
    CHECK_EQ(g_os.m.ring->corrupt_records, 0);
    free(g_os.m.ring);
}

/* ---- MPSC, corruption ---- */

static bool is_code(int64_t rc)
{
    return rc <= RTUDP_OK && rc >= RTUDP_ESYS;
}

/* Consumer calls on a ring whose data/positions are garbage: errors only. */
static void mpsc_consume_garbage(struct rtudp_mpsc *m, uint8_t *buf, bool strict)
{
    uint32_t len;
    uint32_t lens[8];
    int64_t ats[8];
    for (int k = 0; k < 3; k++) {
        int rc = rtudp_mpsc_get(m, buf, (uint32_t)m->capacity, &len, NULL, NULL);
        CHECK(is_code(rc));
        if (strict)
            CHECK(rc == RTUDP_ECORRUPT || rc == RTUDP_EMPTY);
        uint64_t cursor = mpsc_head(m);
        struct rtudp_tx_record *rec;
        rc = rtudp_mpsc_next(m, &cursor, &rec, &len);
        CHECK(is_code(rc));
        if (strict)
            CHECK(rc == RTUDP_ECORRUPT || rc == RTUDP_EMPTY);
        int64_t n = rtudp_mpsc_get_many(m, buf, m->capacity, lens, ats, 8);
        if (strict)
            CHECK(n == RTUDP_ECORRUPT || n == RTUDP_EMPTY);
        else
            CHECK(n >= 0 || is_code(n));
    }
    CHECK(rtudp_mpsc_pending_bytes(m) <= m->capacity);
    int rc = rtudp_mpsc_wait(m, 0, 0);
    CHECK(rc == RTUDP_OK || rc == RTUDP_ETIMEDOUT);
    for (int k = 0; k < 2; k++) {
        rc = rtudp_mpsc_unblock(m, mpsc_head(m), 0);
        CHECK(rc == 0 || rc == 1 || rc == RTUDP_ECORRUPT);
    }
}

/* Producer calls on the same ring: must stay inside it and return. */
static void mpsc_produce_garbage(struct rtudp_mpsc *m, uint64_t *seed)
{
    uint8_t b[300];
    memset(b, 0x5A, sizeof b);
    for (int k = 0; k < 3; k++) {
        uint32_t len = (uint32_t)rnd(seed, min_u64(sizeof b, m->max_payload + 1));
        int rc;
        BOUNDED("try_put on a corrupt MPSC ring", rc = rtudp_mpsc_try_put(m, b, len, 0, 0));
        CHECK(rc == RTUDP_OK || rc == RTUDP_EFULL || rc == RTUDP_ECORRUPT);
        BOUNDED("put (deadline now) on a corrupt MPSC ring",
                rc = rtudp_mpsc_put(m, b, len, 0, 0, rtudp_now_ns(), 0));
        CHECK(rc == RTUDP_OK || rc == RTUDP_ETIMEDOUT || rc == RTUDP_ECORRUPT);
    }
}

/*
 * Deterministic: positions that are inconsistent in ways random words rarely hit.
 * Producers and the consumer must return (no spinning forever on a head that is
 * ahead of tail) and must not touch misaligned headers (UBSan checks that).
 */
static void test_mpsc_corrupt_positions(void)
{
    uint8_t *buf = malloc(4096);
    CHECK(buf != NULL);
    const int64_t cap = 4096;
    struct {
        const char *what;
        bool set_head; /* head = tail + delta, else tail = head + delta */
        int64_t delta;
        bool get_fails; /* the consumer has nothing sane to read */
    } cases[] = {
        {"head = tail + 64", true, 64, true},
        {"head = tail + 8", true, 8, true},
        {"head = tail + cap", true, cap, true},
        {"tail = head + cap + 8", false, cap + 8, true},
        {"tail = head - 8", false, -8, true},
        {"tail = head + 51 (misaligned)", false, 51, false},
        {"head = tail - 53 (misaligned)", true, -53, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rtudp_mpsc m = mpsc_new((uint64_t)cap);
        mpsc_advance_to(&m, 2000);
        CHECK_EQ(mpsc_put_key(&m, 30, 1, 1, 1), RTUDP_OK); /* head 2000, tail 2048 */
        if (cases[i].set_head)
            m.ring->head = (uint64_t)((int64_t)m.ring->tail + cases[i].delta);
        else
            m.ring->tail = (uint64_t)((int64_t)m.ring->head + cases[i].delta);
        m.ring->head_cache = m.ring->head;
        struct rtudp_mpsc m2;
        CHECK(rtudp_mpsc_attach(&m2, m.ring, rtudp_mpsc_footprint((uint64_t)cap), NULL) !=
              RTUDP_OK);
        const char *what = cases[i].what;
        int rc;
        uint32_t len;
        BOUNDED(what, rc = rtudp_mpsc_get(&m, buf, 4096, &len, NULL, NULL));
        if (cases[i].get_fails)
            CHECK(rc == RTUDP_ECORRUPT || rc == RTUDP_EMPTY);
        CHECK(is_code(rc));
        BOUNDED(what, rc = rtudp_mpsc_wait(&m, rtudp_now_ns() + NS_PER_MS, 0));
        CHECK(rc == RTUDP_OK || rc == RTUDP_ETIMEDOUT);
        BOUNDED(what, rc = rtudp_mpsc_try_put(&m, buf, 10, 0, 0));
        CHECK(rc == RTUDP_OK || rc == RTUDP_EFULL || rc == RTUDP_ECORRUPT);
        uint64_t pos;
        BOUNDED(what, rc = rtudp_mpsc_claim(&m, 10, &pos));
        CHECK(rc == RTUDP_OK || rc == RTUDP_EFULL || rc == RTUDP_ECORRUPT);
        if (rc == RTUDP_OK)
            CHECK(pos % 8 == 0); /* a record is never placed misaligned */
        BOUNDED(what, rc = rtudp_mpsc_put(&m, buf, 10, 0, 0, rtudp_now_ns() + NS_PER_MS, 0));
        CHECK(rc == RTUDP_OK || rc == RTUDP_ETIMEDOUT || rc == RTUDP_ECORRUPT);
        BOUNDED(what, rc = rtudp_mpsc_unblock(&m, m.ring->head, 0));
        CHECK(rc == 0 || rc == 1 || rc == RTUDP_ECORRUPT);
        BOUNDED(what, rc = rtudp_mpsc_get(&m, buf, 4096, &len, NULL, NULL));
        CHECK(is_code(rc));
        free(m.ring);
    }
    free(buf);
}

/*
 * The unblock clock lives in shared memory too: a scribbled stuck_since_ns (far
 * past, or in the future) must neither overflow (UBSan) nor stop the consumer
 * from ever unblocking a dead claim.
 */
static void test_mpsc_unblock_hostile_clock(void)
{
    static const int64_t sinces[] = {INT64_MIN + 1, INT64_MIN / 2, -1, INT64_MAX, INT64_MAX / 2};
    for (size_t i = 0; i < sizeof sinces / sizeof sinces[0]; i++) {
        struct rtudp_mpsc m = mpsc_new(4096);
        uint64_t dead;
        CHECK_EQ(rtudp_mpsc_claim(&m, 32, &dead), RTUDP_OK);
        CHECK_EQ(mpsc_put_key(&m, 4, 4, 4, 4), RTUDP_OK);
        m.ring->stuck_pos = dead;
        m.ring->stuck_since_ns = sinces[i];
        int done = 0;
        for (int k = 0; k < 3 && !done; k++) {
            int rc = rtudp_mpsc_unblock(&m, dead, NS_PER_MS);
            CHECK(rc == 0 || rc == 1);
            done = rc;
            if (!done)
                sleep_ns(2 * NS_PER_MS);
        }
        if (!done)
            fprintf(stderr, "stuck_since_ns = %lld\n", (long long)sinces[i]);
        CHECK(done); /* at most: restart the clock, then unblock */
        mpsc_get_expect(&m, 4, 4, 4, 4);
        free(m.ring);
    }
}

static void test_mpsc_corrupt_random(void)
{
    uint64_t seed = 0xC0FFEE;
    uint8_t *buf = malloc(1 << 14);
    CHECK(buf != NULL);
    for (int iter = 0; iter < 3000; iter++) {
        uint64_t cap = 1024u << (iter % 3);
        struct rtudp_mpsc m = mpsc_new(cap);
        /* some history: a few laps' worth of records, some left unread */
        int n = (int)rnd(&seed, 3 * cap / 64);
        for (int i = 0; i < n; i++) {
            if (mpsc_put_key(&m, (uint32_t)rnd(&seed, 100), (uint64_t)i, 0, 0) != RTUDP_OK ||
                rnd(&seed, 3) == 0) {
                uint32_t len;
                CHECK(rtudp_mpsc_get(&m, buf, 1 << 14, &len, NULL, NULL) == RTUDP_OK);
            }
        }
        struct rtudp_mpsc_ring *r = m.ring;
        int mode = iter % 5;
        bool strict = true;
        if (mode == 0 || mode == 2 || mode == 3) { /* every data byte random */
            for (uint64_t i = 0; i < cap; i++)
                m.data[i] = (uint8_t)splitmix64(&seed);
            if (r->tail == r->head) /* make the consumer look at the garbage */
                r->tail = r->head + 8 * (1 + rnd(&seed, cap / 8));
        }
        if (mode == 1) { /* a few random bytes anywhere in the data */
            int k = 1 + (int)rnd(&seed, 16);
            for (int i = 0; i < k; i++)
                m.data[rnd(&seed, cap)] = (uint8_t)splitmix64(&seed);
            strict = false;
        }
        if (mode == 2) { /* positions and consumer words: whole random words */
            r->tail = splitmix64(&seed);
            r->head = splitmix64(&seed);
            r->head_cache = splitmix64(&seed);
            r->stuck_pos = r->head;
            r->stuck_since_ns = (int64_t)splitmix64(&seed);
        }
        if (mode == 3) { /* geometry: the view keeps the attach-time copy */
            r->magic = (uint32_t)splitmix64(&seed);
            r->capacity = splitmix64(&seed) | (uint64_t)1 << 63;
            r->max_payload = splitmix64(&seed);
        }
        if (mode == 4) { /* positions nudged by small amounts: plausible but wrong */
            r->head += 8 * rnd(&seed, 16) - 64;
            r->tail += 8 * rnd(&seed, 16) - 64 + rnd(&seed, 2) * 3;
            r->head_cache = r->head + 8 * rnd(&seed, 4);
            strict = false;
        }
        mpsc_consume_garbage(&m, buf, strict);
        mpsc_produce_garbage(&m, &seed);
        mpsc_consume_garbage(&m, buf, false);
        free(m.ring);
    }
    free(buf);
}

/* Geometry words scribbled: attach must refuse, whatever the value. */
static void test_mpsc_attach_rejects(void)
{
    const uint64_t cap = 4096, fp = rtudp_mpsc_footprint(cap);
    uint64_t seed = 99;
    for (int iter = 0; iter < 2000; iter++) {
        struct rtudp_mpsc m = mpsc_new(cap);
        struct rtudp_mpsc_ring *r = m.ring;
        switch (iter % 8) {
        case 0: r->magic ^= (uint32_t)(1 + rnd(&seed, UINT32_MAX)); break;
        case 1: r->kind = (uint32_t)splitmix64(&seed) | 4; break;
        case 2: r->capacity = splitmix64(&seed); break;
        case 3: r->capacity = cap * 2; break;  /* bigger than mapped */
        case 4: r->capacity = cap + 8; break;  /* not a power of two */
        case 5: r->capacity = 512; r->max_payload = 112; break; /* below the minimum */
        case 6: r->max_payload = r->max_payload + 1 + rnd(&seed, 1 << 20); break;
        case 7: r->max_payload = rnd(&seed, r->max_payload); break;
        }
        struct rtudp_mpsc m2;
        struct rtudp_check why = {0, ""};
        CHECK(rtudp_mpsc_attach(&m2, r, fp, &why) != RTUDP_OK);
        CHECK(why.msg[0] != '\0');
        free(r);
    }
}

/* ------------------------------------------------------------------ segments */

static void test_segment_roundtrip(void)
{
    static const uint32_t kinds[] = {RTUDP_RING_MPSC, RTUDP_RING_BROADCAST};
    CHECK_EQ(rtudp_ring_segment_size(RTUDP_RING_MPSC, 4096),
             sizeof(struct rtudp_segment_header) + rtudp_mpsc_footprint(4096));
    CHECK_EQ(rtudp_ring_segment_size(RTUDP_RING_BROADCAST, 4096),
             sizeof(struct rtudp_segment_header) + rtudp_bcast_footprint(4096));
    CHECK_EQ(rtudp_ring_segment_size(RTUDP_RING_MPSC, 1000), 0);
    CHECK_EQ(rtudp_ring_segment_size(99, 4096), 0);
    for (size_t k = 0; k < 2; k++) {
        uint64_t cap = 1 << 14;
        uint64_t size = rtudp_ring_segment_size(kinds[k], cap);
        void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(base != MAP_FAILED);
        struct rtudp_check why = {0, ""};
        /* wrong size or capacity: refused, with a reason */
        CHECK_EQ(rtudp_ring_segment_init(base, size - 64, kinds[k], cap, &why), RTUDP_EINVAL);
        CHECK(why.msg[0] != '\0');
        CHECK_EQ(rtudp_ring_segment_init(base, size, kinds[k], cap + 1, NULL), RTUDP_EINVAL);
        CHECK_EQ(rtudp_ring_segment_init(base, size, 7, cap, NULL), RTUDP_EINVAL);

        CHECK_EQ(rtudp_ring_segment_init(base, size, kinds[k], cap, &why), RTUDP_OK);
        const struct rtudp_segment_header *h = base;
        CHECK_EQ(h->magic, RTUDP_SEG_MAGIC);
        CHECK_EQ(h->layout_version, RTUDP_LAYOUT_VERSION);
        CHECK_EQ(h->kind, RTUDP_SEG_RING);
        CHECK_EQ(h->total_size, size);
        CHECK_EQ(h->header_size, sizeof *h);
        CHECK_EQ(h->ring_count, 1);
        CHECK_EQ(h->creator_pid, getpid());
        CHECK(h->created_ns > 0);
        CHECK(h->ring_offset[0] % RTUDP_CACHE_LINE == 0);

        uint32_t kind = 0;
        void *ring = NULL;
        uint64_t avail = 0;
        CHECK_EQ(rtudp_ring_segment_validate(base, size, &kind, &ring, &avail, &why), RTUDP_OK);
        CHECK_EQ(kind, kinds[k]);
        CHECK(ring == (uint8_t *)base + h->ring_offset[0]);
        CHECK_EQ(avail, size - h->ring_offset[0]);
        /* optional outputs */
        CHECK_EQ(rtudp_ring_segment_validate(base, size, NULL, NULL, NULL, NULL), RTUDP_OK);
        /* a size that is not the segment's: refused */
        CHECK(rtudp_ring_segment_validate(base, size - 8, &kind, &ring, &avail, &why) != RTUDP_OK);
        CHECK(rtudp_ring_segment_validate(base, 64, &kind, &ring, &avail, &why) != RTUDP_OK);
        CHECK(rtudp_ring_segment_validate(NULL, size, &kind, &ring, &avail, &why) != RTUDP_OK);

        /* the ring inside works */
        uint8_t b[64];
        fill(b, 50, 4);
        if (kinds[k] == RTUDP_RING_MPSC) {
            struct rtudp_mpsc m;
            CHECK_EQ(rtudp_mpsc_attach(&m, ring, avail, &why), RTUDP_OK);
            CHECK_EQ(rtudp_mpsc_try_put(&m, b, 50, 1, 2), RTUDP_OK);
            mpsc_get_expect(&m, 50, 4, 1, 2);
        } else {
            struct rtudp_bcast bc;
            struct rtudp_bcast_reader rd;
            CHECK_EQ(rtudp_bcast_attach(&bc, ring, avail, &why), RTUDP_OK);
            rtudp_bcast_reader_init(&bc, &rd, 0);
            CHECK_EQ(rtudp_bcast_write(&bc, b, 50, 3, 4), RTUDP_OK);
            uint8_t out[64];
            uint32_t len;
            uint64_t seq, lost;
            CHECK_EQ(rtudp_bcast_read(&bc, &rd, out, sizeof out, &len, &seq, NULL, NULL, &lost),
                     RTUDP_OK);
            CHECK_EQ(len, 50);
            CHECK(verify(out, 50, 4));
        }
        CHECK_EQ(rtudp_unmap(base, size), RTUDP_OK);
    }

    /* through a real shared-memory file: one writable and one read-only view */
    int fd = memfd_create("rtudp-test", 0);
    CHECK(fd >= 0);
    uint64_t size = rtudp_ring_segment_size(RTUDP_RING_MPSC, 4096);
    CHECK_EQ(ftruncate(fd, (off_t)size), 0);
    void *rw = rtudp_map(fd, size, 1);
    CHECK(rw != NULL);
    CHECK_EQ(rtudp_ring_segment_init(rw, size, RTUDP_RING_MPSC, 4096, NULL), RTUDP_OK);
    void *ro = rtudp_map(fd, size, 0);
    CHECK(ro != NULL);
    CHECK(ro != rw);
    uint32_t kind;
    void *ring;
    uint64_t avail;
    CHECK_EQ(rtudp_ring_segment_validate(ro, size, &kind, &ring, &avail, NULL), RTUDP_OK);
    CHECK_EQ(kind, RTUDP_RING_MPSC);
    CHECK_EQ(rtudp_unmap(ro, size), RTUDP_OK);
    CHECK_EQ(rtudp_unmap(rw, size), RTUDP_OK);
    close(fd);
}

/*
 * rtudp_ring_segment_validate on hostile input: random buffers of random sizes,
 * truncated copies of a good segment, good segments with one byte changed, and
 * random bytes behind a plausible header.  Every buffer is exactly its size, so
 * ASan catches a read past it.
 */
static void test_segment_validate_fuzz(void)
{
    uint64_t seed = 0xF00D;
    uint64_t goods[2];
    void *good[2];
    uint64_t ring_off[2];
    static const uint32_t kinds[] = {RTUDP_RING_MPSC, RTUDP_RING_BROADCAST};
    for (int k = 0; k < 2; k++) {
        goods[k] = rtudp_ring_segment_size(kinds[k], 1024);
        good[k] = zalloc64(goods[k]);
        CHECK_EQ(rtudp_ring_segment_init(good[k], goods[k], kinds[k], 1024, NULL), RTUDP_OK);
        CHECK_EQ(rtudp_ring_segment_validate(good[k], goods[k], NULL, NULL, NULL, NULL), RTUDP_OK);
        ring_off[k] = ((struct rtudp_segment_header *)good[k])->ring_offset[0];
    }
    int accepted_mutants = 0;
    for (int iter = 0; iter < 10000; iter++) {
        int k = iter & 1;
        uint64_t size;
        uint8_t *p;
        bool must_reject = true;
        switch ((iter >> 1) % 4) {
        case 0: /* random bytes, random size (0 included) */
            size = rnd(&seed, 4097);
            p = malloc(size ? size : 1);
            CHECK(p != NULL);
            for (uint64_t i = 0; i < size; i++)
                p[i] = (uint8_t)splitmix64(&seed);
            break;
        case 1: /* a good segment cut short */
            size = rnd(&seed, goods[k]);
            p = malloc(size ? size : 1);
            CHECK(p != NULL);
            memcpy(p, good[k], size);
            break;
        case 2: { /* a good segment with one byte changed */
            size = goods[k];
            p = zalloc64(size);
            memcpy(p, good[k], size);
            uint64_t at = rnd(&seed, ring_off[k] + 64); /* header or ring geometry line */
            p[at] ^= (uint8_t)(1 + rnd(&seed, 255));
            /* the words validation depends on: changing them must be noticed */
            uint64_t ro = ring_off[k];
            bool critical = at < 32 || (at >= 36 && at < 40) || (at >= 48 && at < 56) ||
                            (at >= ro && at < ro + 24);
            must_reject = critical;
            break;
        }
        default: { /* plausible header (right magic, version, size), random rest */
            size = sizeof(struct rtudp_segment_header) + rnd(&seed, 8192);
            p = malloc(size);
            CHECK(p != NULL);
            for (uint64_t i = 0; i < size; i++)
                p[i] = (uint8_t)splitmix64(&seed);
            struct rtudp_segment_header h;
            memcpy(&h, p, sizeof h);
            h.magic = RTUDP_SEG_MAGIC;
            h.layout_version = RTUDP_LAYOUT_VERSION;
            h.total_size = size;
            if (rnd(&seed, 2)) {
                h.header_size = sizeof h;
                h.kind = RTUDP_SEG_RING;
                h.ring_count = 1;
                h.ring_offset[0] = rnd(&seed, 2) ? sizeof h : 64 * rnd(&seed, size / 64 + 2);
            }
            memcpy(p, &h, sizeof h);
            break;
        }
        }
        uint32_t kind = 0;
        void *ring = NULL;
        uint64_t avail = 0;
        struct rtudp_check why = {0, ""};
        int rc = rtudp_ring_segment_validate(size ? p : NULL, size, &kind, &ring, &avail, &why);
        CHECK(is_code(rc));
        if (must_reject) {
            CHECK(rc != RTUDP_OK);
            CHECK(why.msg[0] != '\0');
        } else if (rc == RTUDP_OK) {
            accepted_mutants++;
            CHECK(ring == p + ring_off[k]);
            CHECK(avail == size - ring_off[k]);
        }
        free(p);
    }
    CHECK(accepted_mutants > 0); /* reserved bytes etc. may change */
    free(good[0]);
    free(good[1]);
}

/* ------------------------------------------------------------------ broadcast */

struct bread {
    int rc;
    uint32_t len;
    uint64_t seq, lost;
    int64_t time_ns;
    uint16_t flags;
    uint8_t buf[RTUDP_MAX_PAYLOAD];
};

static int bc_read(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd, struct bread *out)
{
    out->len = 0xdead;
    out->seq = out->lost = 0xdead;
    BOUNDED("rtudp_bcast_read",
            out->rc = rtudp_bcast_read(b, rd, out->buf, sizeof out->buf, &out->len, &out->seq,
                                       &out->time_ns, &out->flags, &out->lost));
    return out->rc;
}

/* record seq of the test streams: len/flags/time/payload derive from it */
static uint32_t bc_len(uint64_t seq, uint32_t max) { return (uint32_t)(mix64(seq ^ 0xB0) % (max + 1)); }

static void bc_write_seq(struct rtudp_bcast *b, uint64_t seq, uint32_t len)
{
    uint8_t buf[RTUDP_MAX_PAYLOAD];
    fill(buf, len, seq);
    CHECK_EQ(rtudp_bcast_write(b, buf, len, (uint16_t)(seq * 7), (int64_t)seq * 1000 + 1),
             RTUDP_OK);
}

#define bc_expect(...) AT_LINE(bc_expect_(__VA_ARGS__))
static void bc_expect_(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd, uint64_t seq,
                       uint32_t len, uint64_t lost)
{
    static struct bread r;
    CHECK_EQ(bc_read(b, rd, &r), RTUDP_OK);
    CHECK_EQ(r.seq, seq);
    CHECK_EQ(r.lost, lost);
    CHECK_EQ(r.len, len);
    CHECK_EQ(r.flags, (uint16_t)(seq * 7));
    CHECK_EQ(r.time_ns, (int64_t)seq * 1000 + 1);
    CHECK(verify(r.buf, len, seq));
}

#define bc_expect_empty(...) AT_LINE(bc_expect_empty_(__VA_ARGS__))
static void bc_expect_empty_(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd)
{
    static struct bread r;
    CHECK_EQ(bc_read(b, rd, &r), RTUDP_EMPTY);
}

static void test_bcast_roundtrip(void)
{
    struct rtudp_bcast b = bcast_new(4096);
    CHECK_EQ(b.ring->magic, RTUDP_RING_MAGIC);
    CHECK_EQ(b.ring->kind, RTUDP_RING_BROADCAST);
    CHECK(b.max_payload > 0 && b.max_payload <= 4096 / 4);
    struct rtudp_bcast_reader early;
    rtudp_bcast_reader_init(&b, &early, 0);
    bc_expect_empty(&b, &early);
    for (uint64_t s = 0; s < 3; s++)
        bc_write_seq(&b, s, 10 + (uint32_t)s);
    CHECK_EQ(b.ring->next_seq, 3);
    CHECK_EQ(b.ring->records_written, 3);
    CHECK_EQ(b.ring->bytes_written, 33);

    /* from the tail: only what comes next */
    struct rtudp_bcast_reader late;
    rtudp_bcast_reader_init(&b, &late, 0);
    bc_expect_empty(&b, &late);
    /* from the oldest: everything still in the ring */
    struct rtudp_bcast_reader old;
    rtudp_bcast_reader_init(&b, &old, 1);
    bc_write_seq(&b, 3, 0); /* empty payload */
    bc_write_seq(&b, 4, (uint32_t)b.max_payload);
    bc_expect(&b, &late, 3, 0, 0);
    bc_expect(&b, &late, 4, (uint32_t)b.max_payload, 0);
    bc_expect_empty(&b, &late);
    for (uint64_t s = 0; s < 3; s++)
        bc_expect(&b, &early, s, 10 + (uint32_t)s, 0);
    bc_expect(&b, &early, 3, 0, 0);
    for (uint64_t s = 0; s < 3; s++)
        bc_expect(&b, &old, s, 10 + (uint32_t)s, 0);
    bc_expect(&b, &old, 3, 0, 0);
    bc_expect(&b, &old, 4, (uint32_t)b.max_payload, 0);
    bc_expect_empty(&b, &old);
    CHECK_EQ(old.lost + late.lost + early.lost, 0);
    CHECK_EQ(b.ring->lapped_events, 0);

    /* optional outputs may be NULL */
    bc_write_seq(&b, 5, 4);
    uint8_t out[8];
    uint32_t len;
    CHECK_EQ(rtudp_bcast_read(&b, &late, out, sizeof out, &len, NULL, NULL, NULL, NULL), RTUDP_OK);
    CHECK_EQ(len, 4);
    CHECK(verify(out, 4, 5));
    free(b.ring);
}

static void test_bcast_toobig_bufsmall(void)
{
    struct rtudp_bcast b = bcast_new(4096);
    static uint8_t big[RTUDP_MAX_PAYLOAD + 1];
    uint32_t max = (uint32_t)b.max_payload;
    CHECK_EQ(rtudp_bcast_write(&b, big, max + 1, 0, 0), RTUDP_ETOOBIG);
    CHECK_EQ(rtudp_bcast_write(&b, big, UINT32_MAX, 0, 0), RTUDP_ETOOBIG);
    uint64_t offs[2] = {0, 0};
    uint32_t lens[2] = {1, max + 1};
    CHECK_EQ(rtudp_bcast_write_many(&b, big, offs, lens, 2, 0, 0), RTUDP_ETOOBIG);
    CHECK_EQ(b.ring->next_seq, 0); /* nothing went out */
    CHECK_EQ(b.ring->tail, 0);

    struct rtudp_bcast_reader rd;
    rtudp_bcast_reader_init(&b, &rd, 0);
    bc_write_seq(&b, 0, 100);
    uint8_t small[99];
    uint32_t len = 0;
    uint64_t seq, lost;
    CHECK_EQ(rtudp_bcast_read(&b, &rd, small, sizeof small, &len, &seq, NULL, NULL, &lost),
             RTUDP_EBUFSMALL);
    CHECK_EQ(len, 100);
    uint32_t rl[2];
    CHECK_EQ(rtudp_bcast_read_many(&b, &rd, small, sizeof small, rl, NULL, 2), RTUDP_EBUFSMALL);
    bc_expect(&b, &rd, 0, 100, 0); /* still there */
    free(b.ring);
}

/*
 * Laps: ring of 4096 with 64-byte records (40-byte payload + 24-byte header)
 * holds exactly 64.  After writing n > 64 past a reader, the oldest intact record
 * is n - 64, and the reader's next read returns it with lost = what it missed.
 */
static void test_bcast_lapped(void)
{
    const uint32_t plen = 40;
    const uint64_t per_ring = 4096 / 64;
    /* exactly full: nothing lost */
    {
        struct rtudp_bcast b = bcast_new(4096);
        struct rtudp_bcast_reader rd;
        rtudp_bcast_reader_init(&b, &rd, 0);
        for (uint64_t s = 0; s < per_ring; s++)
            bc_write_seq(&b, s, plen);
        for (uint64_t s = 0; s < per_ring; s++)
            bc_expect(&b, &rd, s, plen, 0);
        bc_expect_empty(&b, &rd);
        CHECK_EQ(rd.lapped, 0);
        free(b.ring);
    }
    /* lapped by one record, by many, and again after catching up */
    static const uint64_t writes[] = {per_ring + 1, 100, 1000};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        struct rtudp_bcast b = bcast_new(4096);
        struct rtudp_bcast_reader rd;
        rtudp_bcast_reader_init(&b, &rd, 0);
        uint64_t n = writes[i];
        for (uint64_t s = 0; s < n; s++)
            bc_write_seq(&b, s, plen);
        uint64_t oldest = n - per_ring;
        bc_expect(&b, &rd, oldest, plen, oldest);
        for (uint64_t s = oldest + 1; s < n; s++)
            bc_expect(&b, &rd, s, plen, 0);
        bc_expect_empty(&b, &rd);
        CHECK_EQ(rd.lost, oldest);
        CHECK_EQ(rd.lapped, 1);
        CHECK_EQ(b.ring->lapped_events, 1);
        CHECK_EQ(b.ring->records_lost, oldest);

        /* second lap, from the middle of the stream */
        for (uint64_t s = n; s < n + 200; s++)
            bc_write_seq(&b, s, plen);
        uint64_t oldest2 = n + 200 - per_ring;
        bc_expect(&b, &rd, oldest2, plen, oldest2 - n);
        CHECK_EQ(rd.lost, oldest + oldest2 - n);
        CHECK_EQ(rd.lapped, 2);
        /* a second reader that kept up lost nothing */
        free(b.ring);
    }
    /* a reader that started at the oldest record and was lapped before its first
     * read: it lost the records from where it started */
    {
        struct rtudp_bcast b = bcast_new(4096);
        for (uint64_t s = 0; s < 10; s++)
            bc_write_seq(&b, s, plen);
        struct rtudp_bcast_reader rd;
        rtudp_bcast_reader_init(&b, &rd, 1);
        for (uint64_t s = 10; s < 100; s++)
            bc_write_seq(&b, s, plen);
        bc_expect(&b, &rd, 100 - per_ring, plen, 100 - per_ring);
        CHECK_EQ(rd.lost, 100 - per_ring);
        free(b.ring);
    }
    /* mixed sizes, with wrap padding: lost always equals the seq gap */
    {
        struct rtudp_bcast b = bcast_new(4096);
        uint64_t seed = 5, s = 0;
        struct rtudp_bcast_reader rd;
        rtudp_bcast_reader_init(&b, &rd, 0);
        uint64_t expect = 0, total_lost = 0;
        for (int round = 0; round < 2000; round++) {
            uint64_t k = rnd(&seed, 120);
            for (uint64_t i = 0; i < k; i++, s++)
                bc_write_seq(&b, s, bc_len(s, (uint32_t)b.max_payload / 4));
            uint64_t reads = rnd(&seed, 40);
            static struct bread r;
            for (uint64_t i = 0; i < reads; i++) {
                if (bc_read(&b, &rd, &r) == RTUDP_EMPTY) {
                    CHECK_EQ(expect, s);
                    break;
                }
                CHECK_EQ(r.rc, RTUDP_OK);
                CHECK(r.seq >= expect);
                CHECK_EQ(r.lost, r.seq - expect);
                CHECK_EQ(r.len, bc_len(r.seq, (uint32_t)b.max_payload / 4));
                CHECK(verify(r.buf, r.len, r.seq));
                total_lost += r.lost;
                expect = r.seq + 1;
            }
        }
        CHECK_EQ(rd.lost, total_lost);
        CHECK(total_lost > 0);
        free(b.ring);
    }
}

/* wrap padding, incl. the 8-byte gap at the very end */
/* staged writes (a tap's sent datagrams): invisible until published, in order, with
 * the time and flags given at publication; never more than half the ring staged */
static void test_bcast_staged(void)
{
    struct rtudp_bcast b = bcast_new(4096);
    struct rtudp_bcast_reader rd;
    rtudp_bcast_reader_init(&b, &rd, 0);
    struct rtudp_bcast_stage st;
    rtudp_bcast_stage_init(&b, &st);
    const char meta[4] = "MMMM", d1[] = "one", d2[] = "second";
    CHECK_EQ(rtudp_bcast_stage(&b, &st, meta, 4, d1, 3, 0, 111), RTUDP_OK);
    uint64_t end1 = st.tail, seq1 = st.seq;
    CHECK_EQ(rtudp_bcast_stage(&b, &st, meta, 4, d2, 6, 0, 222), RTUDP_OK);
    uint64_t end2 = st.tail, seq2 = st.seq;
    uint8_t out[64];
    uint32_t len;
    uint64_t seq;
    int64_t t;
    uint16_t fl;
    CHECK_EQ(rtudp_bcast_read(&b, &rd, out, sizeof out, &len, &seq, &t, &fl, NULL), RTUDP_EMPTY);
    rtudp_bcast_stage_publish(&b, &st, end1, seq1, 1000, 7);
    CHECK_EQ(rtudp_bcast_read(&b, &rd, out, sizeof out, &len, &seq, &t, &fl, NULL), RTUDP_OK);
    CHECK(len == 7 && memcmp(out, "MMMMone", 7) == 0 && seq == 0 && t == 1000 && fl == 7);
    CHECK_EQ(rtudp_bcast_read(&b, &rd, out, sizeof out, &len, &seq, &t, &fl, NULL), RTUDP_EMPTY);
    rtudp_bcast_stage_publish(&b, &st, end1, seq1, 5, 5); /* again: nothing */
    rtudp_bcast_stage_publish(&b, &st, end2, seq2, 0, 0); /* 0: each keeps its own */
    CHECK_EQ(rtudp_bcast_read(&b, &rd, out, sizeof out, &len, &seq, &t, &fl, NULL), RTUDP_OK);
    CHECK(len == 10 && memcmp(out, "MMMMsecond", 10) == 0 && seq == 1 && t == 222 && fl == 0);
    CHECK_EQ(b.ring->records_written, 2);
    /* staged bytes stay under half the ring: the writer cannot lap what it holds */
    uint8_t big[400];
    memset(big, 0xab, sizeof big);
    int full = 0, staged = 0;
    for (int i = 0; i < 20 && !full; i++) {
        int rc = rtudp_bcast_stage(&b, &st, meta, 4, big, sizeof big, 0, i);
        full = rc == RTUDP_EFULL;
        staged += rc == RTUDP_OK;
    }
    CHECK(full && staged >= 2 && st.tail - st.published <= 4096 / 2);
    CHECK_EQ(rtudp_bcast_stage(&b, &st, meta, 4, big, (uint32_t)b.max_payload, 0, 0),
             RTUDP_ETOOBIG);
    rtudp_bcast_stage_publish(&b, &st, st.tail, st.seq, 9, 1);
    for (int i = 0; i < staged; i++) {
        CHECK_EQ(rtudp_bcast_read(&b, &rd, out, sizeof out, &len, &seq, &t, &fl, NULL),
                 RTUDP_EBUFSMALL);
        uint8_t bigout[512];
        CHECK_EQ(rtudp_bcast_read(&b, &rd, bigout, sizeof bigout, &len, &seq, &t, &fl, NULL),
                 RTUDP_OK);
        CHECK(len == 404 && seq == 2 + (uint64_t)i && t == 9 && fl == 1 && bigout[403] == 0xab);
    }
    CHECK_EQ(rd.lost, 0);
    free(b.ring);
}

static void test_bcast_wrap_padding(void)
{
    {
        struct rtudp_bcast b = bcast_new(1024);
        uint32_t max = (uint32_t)b.max_payload;
        CHECK_EQ(max, 1024 / 4 - 24);
        struct rtudp_bcast_reader rd;
        rtudp_bcast_reader_init(&b, &rd, 0);
        /* 3 x 256 + 248 = 1016: 8 bytes left */
        uint32_t lens[4] = {232, 232, 232, 224};
        for (uint64_t s = 0; s < 4; s++)
            bc_write_seq(&b, s, lens[s]);
        CHECK_EQ(b.ring->tail, 1016);
        for (uint64_t s = 0; s < 4; s++)
            bc_expect(&b, &rd, s, lens[s], 0);
        bc_write_seq(&b, 4, 8);
        CHECK_EQ(b.ring->tail, 1024 + 32);
        CHECK_EQ(rec_length_at(b.data, 1016), 8);
        CHECK_EQ(rec_type_at(b.data, 1016), RTUDP_REC_PAD);
        bc_expect(&b, &rd, 4, 8, 0);
        bc_expect_empty(&b, &rd);
        CHECK_EQ(b.ring->head, 256); /* record 0 was overwritten, 1 is the oldest */
        struct rtudp_bcast_reader old;
        rtudp_bcast_reader_init(&b, &old, 1);
        for (uint64_t s = 1; s < 5; s++)
            bc_expect(&b, &old, s, s < 4 ? lens[s] : 8, 0);
        free(b.ring);
    }
    /* a reader that keeps up never loses anything, across many laps of a small
     * ring with every gap size at the end */
    {
        struct rtudp_bcast b = bcast_new(1024);
        uint32_t max = (uint32_t)b.max_payload;
        struct rtudp_bcast_reader rd;
        rtudp_bcast_reader_init(&b, &rd, 0);
        uint64_t seed = 77, s = 0, tail = 0;
        bool saw_gap8 = false;
        for (int round = 0; round < 20000; round++) {
            uint64_t k = 1 + rnd(&seed, 3); /* at most 3 x 256 < 1024: no lap */
            uint64_t first = s;
            for (uint64_t i = 0; i < k; i++, s++) {
                uint32_t len = bc_len(s, max);
                uint64_t need = align8(24 + len), to_end = 1024 - (tail & 1023);
                if (need > to_end && to_end == 8)
                    saw_gap8 = true;
                tail += need <= to_end ? need : to_end + need;
                bc_write_seq(&b, s, len);
                CHECK_EQ(b.ring->tail, tail);
            }
            for (uint64_t q = first; q < s; q++)
                bc_expect(&b, &rd, q, bc_len(q, max), 0);
            bc_expect_empty(&b, &rd);
        }
        CHECK(saw_gap8);
        CHECK_EQ(rd.lost, 0);
        free(b.ring);
    }
}

static void test_bcast_read_many(void)
{
    struct rtudp_bcast b = bcast_new(8192);
    struct rtudp_bcast_reader rd;
    rtudp_bcast_reader_init(&b, &rd, 0);
    enum { N = 12 };
    uint8_t src[2048];
    uint64_t offs[N];
    uint32_t lens[N];
    uint64_t off = 0;
    for (int i = 0; i < N; i++) {
        lens[i] = (uint32_t)(i * 13 + 1);
        offs[i] = off;
        fill(src + off, lens[i], (uint64_t)i);
        off += lens[i] + 3;
    }
    CHECK_EQ(rtudp_bcast_write_many(&b, src, offs, lens, N, 6, 66), N);
    CHECK_EQ(b.ring->next_seq, N);
    CHECK_EQ(b.ring->records_written, N);

    uint8_t buf[4096];
    uint32_t glens[N];
    uint64_t seqs[N];
    CHECK_EQ(rtudp_bcast_read_many(&b, &rd, buf, sizeof buf, glens, seqs, 5), 5);
    uint64_t o = 0;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(seqs[i], i);
        CHECK_EQ(glens[i], lens[i]);
        CHECK(verify(buf + o, glens[i], (uint64_t)i)); /* back to back */
        o += glens[i];
    }
    /* the buffer bounds the batch */
    uint64_t room = lens[5] + lens[6];
    CHECK_EQ(rtudp_bcast_read_many(&b, &rd, buf, room, glens, NULL, N), 2);
    CHECK(verify(buf, lens[5], 5));
    CHECK(verify(buf + lens[5], lens[6], 6));
    CHECK_EQ(rtudp_bcast_read_many(&b, &rd, buf, sizeof buf, glens, seqs, N), N - 7);
    for (int i = 0; i < N - 7; i++)
        CHECK_EQ(seqs[i], 7 + i);
    CHECK_EQ(rtudp_bcast_read_many(&b, &rd, buf, sizeof buf, glens, seqs, N), RTUDP_EMPTY);
    CHECK_EQ(rd.lost, 0);

    /* offs NULL: the payloads are back to back in data */
    uint64_t packed = 0;
    for (int i = 0; i < 3; i++) {
        fill(src + packed, lens[i], 50 + (uint64_t)i);
        packed += lens[i];
    }
    CHECK_EQ(rtudp_bcast_write_many(&b, src, NULL, lens, 3, 1, 2), 3);
    CHECK_EQ(rtudp_bcast_read_many(&b, &rd, buf, sizeof buf, glens, seqs, N), 3);
    o = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(seqs[i], N + i);
        CHECK_EQ(glens[i], lens[i]);
        CHECK(verify(buf + o, lens[i], 50 + (uint64_t)i));
        o += lens[i];
    }

    /* after a lap: the gap shows in seqs and rd.lost */
    for (uint64_t s = N + 3; s < N + 1000; s++)
        bc_write_seq(&b, s, 100);
    int64_t n = rtudp_bcast_read_many(&b, &rd, buf, sizeof buf, glens, seqs, N);
    CHECK(n > 0);
    CHECK_EQ(rd.lost, seqs[0] - (N + 3));
    CHECK(rd.lost > 0);
    for (int64_t i = 1; i < n; i++)
        CHECK_EQ(seqs[i], seqs[0] + (uint64_t)i);
    free(b.ring);
}

static void test_bcast_wait(void)
{
    struct rtudp_bcast b = bcast_new(4096);
    struct rtudp_bcast_reader rd;
    rtudp_bcast_reader_init(&b, &rd, 0);
    int64_t deadline = rtudp_now_ns() + 3 * NS_PER_MS;
    CHECK_EQ(rtudp_bcast_wait(&b, &rd, deadline, 0), RTUDP_ETIMEDOUT);
    CHECK(rtudp_now_ns() >= deadline);
    bc_write_seq(&b, 0, 5);
    CHECK_EQ(rtudp_bcast_wait(&b, &rd, 0, 0), RTUDP_OK);
    bc_expect(&b, &rd, 0, 5, 0);
    CHECK_EQ(rtudp_bcast_wait(&b, &rd, 0, 0), RTUDP_ETIMEDOUT);
    free(b.ring);
}

/* ---- broadcast, threaded: 1 writer, 2 readers the writer waits for, 1 that
 * falls behind on purpose ---- */

#define BT_RECORDS 500000u
#define BT_READERS 3
#define BT_FAST 2
#define BT_MAX_LEN 128u
#define BT_LAG 512u /* records the writer may run ahead of the fast readers */

struct bt {
    struct rtudp_bcast b;
    atomic_int ready;
    atomic_int done;
    _Atomic uint64_t progress[BT_READERS]; /* next seq each reader expects */
    uint64_t seen[BT_READERS], lost[BT_READERS], lapped[BT_READERS], start[BT_READERS];
    int id[BT_READERS];
};

static struct bt g_bt;

static uint32_t bt_len(uint64_t seq) { return 8 + (uint32_t)(mix64(seq) % (BT_MAX_LEN - 7)); }

/* check one record: header fields and payload all derive from seq */
static void bt_check(uint64_t seq, uint32_t len, const uint8_t *p)
{
    CHECK_EQ(len, bt_len(seq));
    uint64_t inner;
    memcpy(&inner, p, sizeof inner);
    CHECK_EQ(inner, seq); /* not torn: the payload is of the same record */
    CHECK(verify(p + 8, len - 8, seq));
}

static void *bt_reader(void *arg)
{
    const int id = *(const int *)arg;
    struct rtudp_bcast *b = &g_bt.b;
    struct rtudp_bcast_reader rd;
    rtudp_bcast_reader_init(b, &rd, 0);
    g_bt.start[id] = rd.expected_seq;
    atomic_fetch_add(&g_bt.ready, 1);
    static _Thread_local uint8_t buf[64 * BT_MAX_LEN];
    uint32_t lens[64];
    uint64_t seqs[64];
    uint64_t expect = rd.expected_seq, seen = 0;
    bool saw_done = false;
    const int64_t give_up = rtudp_now_ns() + 45000 * NS_PER_MS;
    for (;;) {
        if (id == 1) { /* batches */
            uint64_t lost_before = rd.lost;
            int64_t n = rtudp_bcast_read_many(b, &rd, buf, sizeof buf, lens, seqs, 64);
            if (n > 0) {
                uint64_t off = 0, gaps = 0;
                for (int64_t i = 0; i < n; i++) {
                    CHECK(seqs[i] >= expect);
                    gaps += seqs[i] - expect;
                    bt_check(seqs[i], lens[i], buf + off);
                    off += lens[i];
                    expect = seqs[i] + 1;
                }
                CHECK_EQ(rd.lost - lost_before, gaps);
                seen += (uint64_t)n;
                atomic_store(&g_bt.progress[id], expect);
                continue;
            }
            CHECK_EQ(n, RTUDP_EMPTY);
        } else {
            uint32_t len;
            uint64_t seq, lost;
            int64_t t;
            uint16_t flags;
            int rc = rtudp_bcast_read(b, &rd, buf, sizeof buf, &len, &seq, &t, &flags, &lost);
            if (rc == RTUDP_OK) {
                CHECK(seq >= expect);
                CHECK_EQ(lost, seq - expect);
                CHECK_EQ(t, (int64_t)seq);
                CHECK_EQ(flags, (uint16_t)seq);
                bt_check(seq, len, buf);
                expect = seq + 1;
                seen++;
                atomic_store(&g_bt.progress[id], expect);
                if (id == 2 && seen % 1000 == 0)
                    sleep_ns(NS_PER_MS); /* the slow one: gets lapped */
                continue;
            }
            CHECK_EQ(rc, RTUDP_EMPTY);
        }
        /* empty: finished once a read that started after we saw `done` is empty
         * (the writer's last tail store comes before its store of done) */
        if (saw_done)
            break;
        if (atomic_load(&g_bt.done)) {
            saw_done = true;
            continue;
        }
        int rc = rtudp_bcast_wait(b, &rd, rtudp_now_ns() + 20 * NS_PER_MS, 2000);
        CHECK(rc == RTUDP_OK || rc == RTUDP_ETIMEDOUT);
        CHECK(rtudp_now_ns() < give_up);
    }
    g_bt.seen[id] = seen;
    g_bt.lost[id] = rd.lost;
    g_bt.lapped[id] = rd.lapped;
    return NULL;
}

static void test_bcast_threaded(void)
{
    memset(&g_bt, 0, sizeof g_bt);
    g_bt.b = bcast_new(1 << 18);
    pthread_t t[BT_READERS];
    start_numbered_threads(t, g_bt.id, BT_READERS, bt_reader);
    while (atomic_load(&g_bt.ready) < BT_READERS)
        sched_yield();
    uint8_t buf[BT_MAX_LEN];
    for (uint64_t s = 0; s < BT_RECORDS; s++) {
        /* throttle to the fast readers only: they must see everything */
        for (int i = 0; i < BT_FAST; i++)
            while (s - atomic_load(&g_bt.progress[i]) > BT_LAG)
                sched_yield();
        uint32_t len = bt_len(s);
        memcpy(buf, &s, sizeof s);
        fill(buf + 8, len - 8, s);
        CHECK_EQ(rtudp_bcast_write(&g_bt.b, buf, len, (uint16_t)s, (int64_t)s), RTUDP_OK);
    }
    atomic_store(&g_bt.done, 1);
    for (int i = 0; i < BT_READERS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    uint64_t sum_lost = 0, sum_lapped = 0;
    for (int i = 0; i < BT_READERS; i++) {
        CHECK_EQ(g_bt.start[i], 0);
        CHECK_EQ(g_bt.seen[i] + g_bt.lost[i], BT_RECORDS - g_bt.start[i]);
        if (i < BT_FAST)
            CHECK_EQ(g_bt.lost[i], 0);
        sum_lost += g_bt.lost[i];
        sum_lapped += g_bt.lapped[i];
        printf("    reader %d: seen %llu lost %llu lapped %llu\n", i,
               (unsigned long long)g_bt.seen[i], (unsigned long long)g_bt.lost[i],
               (unsigned long long)g_bt.lapped[i]);
    }
    CHECK(g_bt.seen[2] > 0);
    CHECK_EQ(g_bt.b.ring->records_lost, sum_lost);
    CHECK_EQ(g_bt.b.ring->lapped_events, sum_lapped);
    CHECK_EQ(g_bt.b.ring->records_written, BT_RECORDS);
    CHECK_EQ(g_bt.b.ring->corrupt_records, 0);
    free(g_bt.b.ring);
}

/* ---- broadcast, corruption ---- */

static void bcast_read_garbage(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd, bool strict)
{
    static struct bread r;
    uint32_t lens[8];
    for (int k = 0; k < 3; k++) {
        int rc = bc_read(b, rd, &r);
        CHECK(is_code(rc));
        if (strict)
            CHECK(rc == RTUDP_ECORRUPT || rc == RTUDP_EMPTY);
        int64_t n;
        BOUNDED("rtudp_bcast_read_many on a corrupt ring",
                n = rtudp_bcast_read_many(b, rd, r.buf, sizeof r.buf, lens, NULL, 8));
        if (strict)
            CHECK(n == RTUDP_ECORRUPT || n == RTUDP_EMPTY);
        else
            CHECK(n >= 0 || is_code(n));
    }
    int rc;
    BOUNDED("rtudp_bcast_wait on a corrupt ring", rc = rtudp_bcast_wait(b, rd, 0, 0));
    CHECK(rc == RTUDP_OK || rc == RTUDP_ETIMEDOUT);
}

/* Deterministic: writer positions that no longer fit together. */
static void test_bcast_corrupt_positions(void)
{
    const uint64_t cap = 4096;
    struct {
        const char *what;
        int word; /* 0 tail_intent, 1 tail, 2 head */
        int64_t delta;
    } cases[] = {
        {"tail_intent = tail + 2 cap", 0, 2 * 4096},
        {"tail_intent = tail - 8", 0, -8},
        {"head = tail - 2 cap", 2, -2 * 4096 - 4000},
        {"head = tail + 64", 2, 4000 + 64},
        {"tail = head + 3 cap", 1, 3 * 4096},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rtudp_bcast b = bcast_new(cap);
        for (uint64_t s = 0; s < 100; s++)
            bc_write_seq(&b, s, 40);
        struct rtudp_bcast_reader rd;
        rtudp_bcast_reader_init(&b, &rd, 1);
        uint64_t *w = cases[i].word == 0 ? &b.ring->tail_intent
                      : cases[i].word == 1 ? &b.ring->tail : &b.ring->head;
        uint64_t base = cases[i].word == 2 ? b.ring->head : b.ring->tail;
        *w = (uint64_t)((int64_t)base + cases[i].delta);
        g_step = cases[i].what;
        static struct bread r;
        int rc;
        BOUNDED(cases[i].what,
                rc = rtudp_bcast_read(&b, &rd, r.buf, sizeof r.buf, &r.len, &r.seq, NULL, NULL,
                                      &r.lost));
        CHECK(is_code(rc));
        /* the writer carries on without leaving the ring */
        BOUNDED(cases[i].what, bc_write_seq(&b, 100, 40));
        BOUNDED(cases[i].what,
                rc = rtudp_bcast_read(&b, &rd, r.buf, sizeof r.buf, &r.len, &r.seq, NULL, NULL,
                                      &r.lost));
        CHECK(is_code(rc));
        struct rtudp_bcast_reader fresh;
        BOUNDED(cases[i].what, rtudp_bcast_reader_init(&b, &fresh, 1));
        BOUNDED(cases[i].what,
                rc = rtudp_bcast_read(&b, &fresh, r.buf, sizeof r.buf, &r.len, &r.seq, NULL, NULL,
                                      &r.lost));
        CHECK(is_code(rc));
        g_step = "";
        free(b.ring);
    }
}

static void test_bcast_corrupt_random(void)
{
    uint64_t seed = 0xBADBEEF;
    for (int iter = 0; iter < 3000; iter++) {
        uint64_t cap = 1024u << (iter % 3);
        struct rtudp_bcast b = bcast_new(cap);
        uint64_t n = rnd(&seed, 4 * cap / 64);
        for (uint64_t s = 0; s < n; s++)
            bc_write_seq(&b, s, bc_len(s, 100));
        struct rtudp_bcast_reader rd;
        rtudp_bcast_reader_init(&b, &rd, (int)rnd(&seed, 2));
        struct rtudp_bcast_ring *r = b.ring;
        int mode = iter % 4;
        bool strict = false;
        if (mode == 0) { /* every data byte random, records pending */
            for (uint64_t i = 0; i < cap; i++)
                b.data[i] = (uint8_t)splitmix64(&seed);
            strict = rd.cursor != r->tail;
        }
        if (mode == 1) { /* a few random bytes */
            int k = 1 + (int)rnd(&seed, 16);
            for (int i = 0; i < k; i++)
                b.data[rnd(&seed, cap)] = (uint8_t)splitmix64(&seed);
        }
        if (mode == 2) { /* writer positions: whole random words */
            r->tail_intent = splitmix64(&seed);
            r->tail = splitmix64(&seed);
            r->head = splitmix64(&seed);
            r->next_seq = splitmix64(&seed);
            for (uint64_t i = 0; i < cap; i++)
                b.data[i] = (uint8_t)splitmix64(&seed);
        }
        if (mode == 3) { /* geometry: the view keeps the attach-time copy */
            r->magic = (uint32_t)splitmix64(&seed);
            r->capacity = splitmix64(&seed);
            r->max_payload = splitmix64(&seed);
            struct rtudp_bcast b2;
            CHECK(rtudp_bcast_attach(&b2, r, rtudp_bcast_footprint(cap), NULL) != RTUDP_OK);
        }
        bcast_read_garbage(&b, &rd, strict);
        /* the writer keeps going without leaving the ring */
        for (int k = 0; k < 5; k++) {
            uint8_t buf[200];
            memset(buf, 1, sizeof buf);
            int rc;
            BOUNDED("rtudp_bcast_write on a corrupt ring",
                    rc = rtudp_bcast_write(&b, buf, (uint32_t)rnd(&seed, 200), 0, 0));
            CHECK(rc == RTUDP_OK || rc == RTUDP_ECORRUPT);
        }
        struct rtudp_bcast_reader rd2;
        BOUNDED("reader_init on a corrupt ring", rtudp_bcast_reader_init(&b, &rd2, 1));
        bcast_read_garbage(&b, &rd2, false);
        bcast_read_garbage(&b, &rd, false);
        free(b.ring);
    }
}

/* ------------------------------------------------------------------ bench loops */

#ifdef RTUDP_TEST_BENCH
struct bench_arg {
    struct rtudp_mpsc *m;
    uint64_t n;
    uint32_t size;
    int64_t rc;
};

static void *bench_producer(void *arg)
{
    struct bench_arg *a = arg;
    a->rc = rtudp_bench_produce(a->m, a->n, a->size);
    return NULL;
}

/* the C-to-C benchmark loops move every record through a small ring.  2,000 records
 * wrap the 1 KiB ring 31 (empty records) to 500 times; more add only time: both loops
 * spin while they wait, so on CPUs with busy loops, or on one CPU together, each wrap
 * can cost a scheduler time slice (50,000 took 14 to over 50 s beside two busy loops) */
static void test_bench_produce_consume(void)
{
    static const uint32_t sizes[] = {0, 8, 100, 240};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct rtudp_mpsc m = mpsc_new(1024); /* small: both sides wait a lot */
        struct bench_arg a = {&m, 2000, sizes[i], 0};
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, bench_producer, &a), 0);
        CHECK_EQ(rtudp_bench_consume(&m, a.n), (int64_t)a.n);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(a.rc, (int64_t)a.n);
        CHECK_EQ(m.ring->records_consumed, a.n);
        CHECK_EQ(m.ring->bytes_consumed, a.n * sizes[i]);
        CHECK_EQ(rtudp_mpsc_pending_bytes(&m), 0);
        /* too big for the ring: an error, not a spin */
        CHECK_EQ(rtudp_bench_produce(&m, 1, (uint32_t)m.max_payload + 1), RTUDP_ETOOBIG);
        free(m.ring);
    }
}
#endif

/* ------------------------------------------------------------------ main */


static const struct test tests[] = {
    T(test_mpsc_geometry),
    T(test_mpsc_roundtrip),
    T(test_mpsc_wrap_padding),
    T(test_mpsc_model_random),
    T(test_mpsc_full),
    T(test_mpsc_put_wakes_on_space),
    T(test_mpsc_toobig),
    T(test_mpsc_put_room),
    T(test_mpsc_bufsmall),
    T(test_mpsc_batches),
    T(test_mpsc_claim_commit),
    T(test_mpsc_drain),
    T(test_mpsc_unblock_open_claim),
    T(test_mpsc_unblock_then_late_commit),
    T(test_mpsc_unblock_unwritten),
    T(test_mpsc_unblock_unwritten_then_next_claim),
    T(test_mpsc_wait_timeout),
    T(test_mpsc_wait_at_cursor),
    T(test_mpsc_wake_bell),
    T(test_mpsc_first_ring_stamps_the_bell),
    T(test_mpsc_not_before_leaves_an_early_sleeper_asleep),
    T(test_mpsc_mark_sent_skipped_after_restart),
    T(test_mpsc_wait_wakes),
    T(test_mpsc_threaded),
    T(test_mpsc_oversubscribed),
    T(test_mpsc_corrupt_positions),
    T(test_mpsc_unblock_hostile_clock),
    T(test_mpsc_corrupt_random),
    T(test_mpsc_attach_rejects),
    T(test_segment_roundtrip),
    T(test_segment_validate_fuzz),
    T(test_bcast_roundtrip),
    T(test_bcast_toobig_bufsmall),
    T(test_bcast_lapped),
    T(test_bcast_staged),
    T(test_bcast_wrap_padding),
    T(test_bcast_read_many),
    T(test_bcast_wait),
    T(test_bcast_threaded),
    T(test_bcast_corrupt_positions),
    T(test_bcast_corrupt_random),
#ifdef RTUDP_TEST_BENCH
    T(test_bench_produce_consume),
#endif
};

HARNESS_MAIN(tests)
