/*
 * test_netflux.c - the netflux seqlock images, area check and cycle claims
 * (proto/netflux_image.c).
 *
 * The torn-read tests run a writer and a reader thread on one image for a while: every
 * image written has all its words equal (and a length that says which), so a reader
 * that ever returns a mix of two images fails.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "harness.h"
#include "proto/netflux_shm.h"

#define MIN_READS 2000
#define MIN_IMAGES 3            /* distinct images the reader must have seen */
#define MAX_RUN_NS (20000 * NS_PER_MS) /* a loaded machine under ASan gets this long */

static struct rtudp_nf_image g_img;
static atomic_int g_stop;

/* image k: (k % 100) + 8 bytes, every byte (uint8_t)k */
static uint32_t image_k(uint8_t *buf, uint64_t k)
{
    uint32_t len = (uint32_t)(k % 100) + 8;
    memset(buf, (int)(k & 0xFF), len);
    return len;
}

static void *writer(void *arg)
{
    int single = arg != NULL; /* the worker's single-writer path, else the clients' */
    uint8_t buf[RTUDP_NF_MAX_PAYLOAD];
    for (uint64_t k = 1; !atomic_load(&g_stop); k++) {
        uint32_t len = image_k(buf, k);
        if (single)
            rtudp_nf_image_publish(&g_img, buf, len, (int64_t)k, k);
        else if (rtudp_nf_image_write(&g_img, buf, len, (int64_t)k, k, NS_PER_MS) != RTUDP_OK)
            return (void *)1;
        if (k % 16 == 0)
            sched_yield(); /* a reader on the same CPU gets its turns too */
    }
    return NULL;
}

static void torn_reads(int single)
{
    memset(&g_img, 0, sizeof g_img);
    atomic_store(&g_stop, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, writer, single ? (void *)1 : NULL) == 0);
    uint8_t out[RTUDP_NF_MAX_PAYLOAD];
    struct rtudp_nf_image_meta m;
    uint64_t reads = 0, busy = 0, changes = 0, last = 0;
    int64_t end = harness_now_ns() + MAX_RUN_NS;
    while ((reads < MIN_READS || changes < MIN_IMAGES) && harness_now_ns() < end) {
        int n = rtudp_nf_image_read(&g_img, out, sizeof out, &m, 4);
        if (n == RTUDP_NF_BUSY) {
            busy++;
            continue;
        }
        CHECK(n >= 0);
        if (m.updates == 0)
            continue; /* the writer has not started yet */
        reads++;
        /* meta and data of one and the same image k = m.tag */
        CHECK_EQ((uint64_t)m.stamp_ns, m.tag);
        CHECK_EQ((uint32_t)n, (uint32_t)(m.tag % 100) + 8);
        for (int i = 0; i < n; i++)
            CHECK_EQ(out[i], (uint8_t)(m.tag & 0xFF));
        changes += m.tag != last;
        last = m.tag;
    }
    atomic_store(&g_stop, 1);
    void *rc;
    pthread_join(t, &rc);
    CHECK(rc == NULL);
    CHECK(reads >= MIN_READS);
    CHECK(changes >= MIN_IMAGES); /* the reader really saw the writer at work */
    printf("  %s: %llu reads, %llu images seen, %llu busy\n", single ? "publish" : "write",
           (unsigned long long)reads, (unsigned long long)changes, (unsigned long long)busy);
}

static void test_nf_no_torn_reads_client_writer(void) { torn_reads(0); }
static void test_nf_no_torn_reads_worker_writer(void) { torn_reads(1); }

static void test_nf_shorter_image_leaves_no_tail(void)
{
    struct rtudp_nf_image img;
    memset(&img, 0, sizeof img);
    uint8_t big[64], small[3] = {1, 2, 3}, out[64];
    memset(big, 0xAB, sizeof big);
    CHECK_EQ(rtudp_nf_image_write(&img, big, sizeof big, 1, 0, 0), RTUDP_OK);
    CHECK_EQ(rtudp_nf_image_write(&img, small, sizeof small, 2, 0, 0), RTUDP_OK);
    struct rtudp_nf_image_meta m;
    CHECK_EQ(rtudp_nf_image_read(&img, out, sizeof out, &m, 1), 3);
    CHECK_EQ(m.updates, 2u);
    for (int i = 0; i < 64; i++)
        CHECK_EQ(((const uint8_t *)img.data)[i], i < 3 ? small[i] : 0);
    CHECK_EQ(rtudp_nf_image_write(&img, big, RTUDP_NF_MAX_PAYLOAD + 1, 3, 0, 0), RTUDP_EINVAL);
}

static void test_nf_dead_writer_taken_over(void)
{
    struct rtudp_nf_image img;
    memset(&img, 0, sizeof img);
    uint8_t d[8] = {7, 7, 7, 7, 7, 7, 7, 7}, out[8];
    img.seq = 5; /* a writer died mid-write */
    struct rtudp_nf_image_meta m;
    CHECK_EQ(rtudp_nf_image_read(&img, out, sizeof out, &m, 10), RTUDP_NF_BUSY);
    CHECK_EQ(rtudp_nf_image_write(&img, d, 8, 1, 0, 0), RTUDP_NF_BUSY); /* no takeover */
    int64_t t0 = harness_now_ns();
    CHECK_EQ(rtudp_nf_image_write(&img, d, 8, 1, 0, 2 * NS_PER_MS), RTUDP_OK);
    CHECK(harness_now_ns() - t0 >= 2 * NS_PER_MS);
    CHECK_EQ(img.seq & 1, 0u);
    CHECK_EQ(rtudp_nf_image_read(&img, out, sizeof out, &m, 1), 8);
    CHECK_EQ(out[7], 7);
    /* the worker's publish never waits for a client that left seq odd */
    img.seq = 9;
    rtudp_nf_image_publish(&img, NULL, 8, 2, 0);
    CHECK_EQ(img.seq & 1, 0u);
    CHECK_EQ(rtudp_nf_image_read(&img, out, sizeof out, &m, 1), 8);
    CHECK_EQ(out[0], 0);
}

static void test_nf_check_area(void)
{
    static struct rtudp_nf_area a;
    struct rtudp_check why = {0};
    memset(&a, 0, sizeof a);
    CHECK_EQ(rtudp_nf_check_area(&a, sizeof a, &why), RTUDP_ECORRUPT); /* no magic */
    a.config.magic = RTUDP_NF_MAGIC;
    a.config.watch_interval_ns = 30 * NS_PER_MS;
    a.config.send_interval_ns = NS_PER_MS;
    a.config.send_size = a.config.recv_size = 20;
    CHECK_EQ(rtudp_nf_check_area(&a, sizeof a, &why), RTUDP_OK);
    CHECK_EQ(rtudp_nf_check_area(&a, sizeof a - 1, &why), RTUDP_ECORRUPT);
    CHECK(strstr(why.msg, "needs") != NULL);
    a.config.recv_size = RTUDP_NF_MAX_PAYLOAD + 1;
    CHECK_EQ(rtudp_nf_check_area(&a, sizeof a, &why), RTUDP_ECORRUPT);
    CHECK(strstr(why.msg, "1401") != NULL);
    a.config.recv_size = 20;
    a.config.watch_interval_ns = 0;
    CHECK_EQ(rtudp_nf_check_area(&a, sizeof a, &why), RTUDP_ECORRUPT);
}

#define SHIFT RTUDP_NF_CLAIM_SHIFT
#define SERVING RTUDP_NF_ROLE_SERVING
#define STANDBY RTUDP_NF_ROLE_STANDBY

/* the serving worker and its standby claim cycles (tx.claim): one sender a cycle, the
 * sequence byte goes on by one whoever sends, and no claim while one is held */
static void test_nf_claim_one_sender_per_cycle(void)
{
    struct rtudp_nf_tx tx = {0};
    uint64_t held = 0, other = 0;
    CHECK_EQ(rtudp_nf_claim(&tx, 0, 1, SERVING, 10, &held), RTUDP_NF_MINE); /* on time */
    CHECK_EQ((uint8_t)held, 1);
    CHECK_EQ(rtudp_nf_claim(&tx, 0, 1, STANDBY, 20, &other), RTUDP_NF_TAKEN); /* lag later */
    /* the serving worker stopped before its send returned: the standby must not send
     * cycle 1 (sequence byte 2) ahead of cycle 0's packet */
    CHECK_EQ(rtudp_nf_claim(&tx, 1, 2, STANDBY, 30, &other), RTUDP_NF_WAIT);
    rtudp_nf_claim_done(&tx, held);
    CHECK_EQ(rtudp_nf_claim(&tx, 1, 2, STANDBY, 40, &held), RTUDP_NF_MINE); /* 1 was late */
    CHECK_EQ((uint8_t)held, 2);
    CHECK(held & RTUDP_NF_CLAIM_STANDBY);
    CHECK_EQ(rtudp_nf_claim(&tx, 1, 2, SERVING, 50, &other), RTUDP_NF_TAKEN); /* yields */
    rtudp_nf_claim_done(&tx, held);
    CHECK_EQ(rtudp_nf_claim(&tx, 3, 4, SERVING, 60, &held), RTUDP_NF_MINE); /* 2 skipped */
    CHECK_EQ((uint8_t)held, 3);                                            /* no gap */
    rtudp_nf_claim_done(&tx, held);
    CHECK_EQ(tx.claim, 4ull << SHIFT | 3);
    tx.claim = 1000ull << SHIFT | RTUDP_NF_CLAIM_HELD | 5; /* a client scribbled */
    CHECK_EQ(rtudp_nf_claim(&tx, 4, 5, SERVING, 70, &held), RTUDP_NF_MINE);
    CHECK_EQ(tx.claim, 5ull << SHIFT | RTUDP_NF_CLAIM_HELD | 6);
    rtudp_nf_claim_done(&tx, held);
    tx.claim = 0xFFull; /* the sequence byte wraps */
    CHECK_EQ(rtudp_nf_claim(&tx, 0, 1, SERVING, 80, &held), RTUDP_NF_MINE);
    CHECK_EQ((uint8_t)held, 0);
}

/* a worker restarted after dying mid-send clears its own hold, never the other's */
static void test_nf_claim_recover_own_hold_only(void)
{
    struct rtudp_nf_tx tx = {0};
    uint64_t held = 0;
    CHECK_EQ(rtudp_nf_claim(&tx, 0, 1, SERVING, 10, &held), RTUDP_NF_MINE);
    CHECK_EQ(rtudp_nf_claim_recover(&tx, STANDBY), 0);
    CHECK(tx.claim & RTUDP_NF_CLAIM_HELD);
    CHECK_EQ(rtudp_nf_claim_recover(&tx, SERVING), 1);
    CHECK_EQ(tx.claim, 1ull << SHIFT | 1);
    CHECK_EQ(rtudp_nf_claim(&tx, 1, 2, STANDBY, 20, &held), RTUDP_NF_MINE);
    CHECK_EQ(rtudp_nf_claim_recover(&tx, SERVING), 0);
    CHECK_EQ(rtudp_nf_claim_recover(&tx, STANDBY), 1);
    CHECK_EQ(rtudp_nf_claim_recover(&tx, STANDBY), 0); /* nothing held */
}

/* a hold older than RTUDP_NF_HOLD_MAX_NS is broken and counted; the late holder's done
 * then leaves the new hold alone */
static void test_nf_claim_stale_hold_broken(void)
{
    struct rtudp_nf_tx tx = {0};
    uint64_t stale = 0, held = 0;
    int64_t t0 = 5 * NS_PER_MS;
    CHECK_EQ(rtudp_nf_claim(&tx, 0, 1, STANDBY, t0, &stale), RTUDP_NF_MINE);
    CHECK_EQ(rtudp_nf_claim(&tx, 1, 2, SERVING, t0 + RTUDP_NF_HOLD_MAX_NS - 1, &held),
             RTUDP_NF_WAIT);
    CHECK_EQ(tx.claim_breaks, 0u);
    CHECK_EQ(rtudp_nf_claim(&tx, 1, 2, SERVING, t0 + RTUDP_NF_HOLD_MAX_NS, &held),
             RTUDP_NF_MINE);
    CHECK_EQ(tx.claim_breaks, 1u);
    CHECK_EQ((uint8_t)held, 2);
    rtudp_nf_claim_done(&tx, stale); /* the stopped standby resumes: not its hold now */
    CHECK(tx.claim & RTUDP_NF_CLAIM_HELD);
    rtudp_nf_claim_done(&tx, held);
    CHECK_EQ(tx.claim, 2ull << SHIFT | 2);
}

/* Two threads claiming every cycle in turn, as fast as they can (no clock: any claim is
 * legitimate), each "sending" what it won by appending its sequence byte to one shared
 * wire log before it calls done: never two senders of one cycle, the sequence bytes of
 * the cycles sent go on by one in cycle order, and the wire log is in sequence order.
 * (A thread that ran ahead may leave cycles nobody sends, as a worker late by an
 * interval skips them.) */
#define RACE_CYCLES 200000
static struct rtudp_nf_tx g_tx;
static uint8_t g_seq_of[2][RACE_CYCLES];
static uint8_t g_won[2][RACE_CYCLES];
static uint8_t g_wire[RACE_CYCLES];
static atomic_uint_fast64_t g_wire_len;

static void *claimer(void *arg)
{
    int me = *(int *)arg;
    for (uint64_t n = 0; n < RACE_CYCLES; n++) {
        uint64_t held = 0;
        int r;
        while ((r = rtudp_nf_claim(&g_tx, n, RACE_CYCLES, me, 0, &held)) == RTUDP_NF_WAIT)
            sched_yield();
        if (r != RTUDP_NF_MINE)
            continue;
        g_won[me][n] = 1;
        g_seq_of[me][n] = (uint8_t)held;
        g_wire[atomic_fetch_add(&g_wire_len, 1)] = (uint8_t)held;
        rtudp_nf_claim_done(&g_tx, held);
    }
    return NULL;
}

static void test_nf_claim_race_at_most_once_in_order(void)
{
    memset(&g_tx, 0, sizeof g_tx);
    memset(g_won, 0, sizeof g_won);
    atomic_store(&g_wire_len, 0);
    pthread_t t[2];
    int ids[2];
    start_numbered_threads(t, ids, 2, claimer);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    uint8_t want = 1;
    uint64_t sent = 0;
    for (uint64_t n = 0; n < RACE_CYCLES; n++) {
        CHECK(g_won[0][n] + g_won[1][n] <= 1); /* never both */
        if (!g_won[0][n] && !g_won[1][n])
            continue;
        CHECK_EQ(g_seq_of[g_won[1][n]][n], want); /* the next sequence byte */
        want++;
        sent++;
    }
    CHECK(sent > 0);
    CHECK_EQ(atomic_load(&g_wire_len), sent);
    for (uint64_t i = 0; i < sent; i++)
        CHECK_EQ(g_wire[i], (uint8_t)(i + 1)); /* the wire in sequence order */
    CHECK_EQ(g_tx.claim >> SHIFT, (uint64_t)RACE_CYCLES);
    CHECK_EQ(g_tx.claim & RTUDP_NF_CLAIM_HELD, 0u);
}

static const struct test tests[] = {
    T(test_nf_claim_one_sender_per_cycle),
    T(test_nf_claim_recover_own_hold_only),
    T(test_nf_claim_stale_hold_broken),
    T(test_nf_claim_race_at_most_once_in_order),
    T(test_nf_no_torn_reads_client_writer),
    T(test_nf_no_torn_reads_worker_writer),
    T(test_nf_shorter_image_leaves_no_tail),
    T(test_nf_dead_writer_taken_over),
    T(test_nf_check_area),
};

HARNESS_MAIN(tests)
