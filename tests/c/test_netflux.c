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

/* the serving worker and its standby claim cycles (tx.claim): one sender a cycle, and
 * the sequence byte goes on by one whoever sends */
static void test_nf_claim_one_sender_per_cycle(void)
{
    uint64_t claim = 0;
    uint8_t seq = 0;
    CHECK_EQ(rtudp_nf_claim(&claim, 0, 1, &seq), 1); /* the serving worker, on time */
    CHECK_EQ(seq, 1);
    CHECK_EQ(rtudp_nf_claim(&claim, 0, 1, &seq), 0); /* its standby, lag later: done */
    CHECK_EQ(rtudp_nf_claim(&claim, 1, 2, &seq), 1); /* the standby: cycle 1 was late */
    CHECK_EQ(seq, 2);
    CHECK_EQ(rtudp_nf_claim(&claim, 1, 2, &seq), 0); /* ... so the serving worker yields */
    CHECK_EQ(rtudp_nf_claim(&claim, 3, 4, &seq), 1); /* cycle 2 skipped by both */
    CHECK_EQ(seq, 3);                                /* no gap in the sequence */
    CHECK_EQ(claim >> 8, 4u);
    claim = 1000ull << 8 | 5; /* a client scribbled: 1000 cycles claimed by cycle 4 */
    CHECK_EQ(rtudp_nf_claim(&claim, 4, 5, &seq), 1);
    CHECK_EQ(seq, 6);
    CHECK_EQ(claim, 5ull << 8 | 6);
    claim = 0xFFull; /* the sequence byte wraps */
    CHECK_EQ(rtudp_nf_claim(&claim, 0, 1, &seq), 1);
    CHECK_EQ(seq, 0);
}

/* Two threads claiming every cycle in turn, as fast as they can (no clock: any claim is
 * legitimate): never two senders of one cycle, and the sequence bytes of the cycles
 * sent go on by one in cycle order.  (A thread that ran ahead may leave cycles nobody
 * sends, as a worker late by an interval skips them.) */
#define RACE_CYCLES 200000
static uint64_t g_claim;
static uint8_t g_seq_of[2][RACE_CYCLES];
static uint8_t g_won[2][RACE_CYCLES];

static void *claimer(void *arg)
{
    int me = *(int *)arg;
    for (uint64_t n = 0; n < RACE_CYCLES; n++)
        g_won[me][n] = (uint8_t)rtudp_nf_claim(&g_claim, n, RACE_CYCLES, &g_seq_of[me][n]);
    return NULL;
}

static void test_nf_claim_race_at_most_once(void)
{
    g_claim = 0;
    memset(g_won, 0, sizeof g_won);
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
    CHECK_EQ(g_claim >> 8, (uint64_t)RACE_CYCLES);
}

static const struct test tests[] = {
    T(test_nf_claim_one_sender_per_cycle),
    T(test_nf_claim_race_at_most_once),
    T(test_nf_no_torn_reads_client_writer),
    T(test_nf_no_torn_reads_worker_writer),
    T(test_nf_shorter_image_leaves_no_tail),
    T(test_nf_dead_writer_taken_over),
    T(test_nf_check_area),
};

HARNESS_MAIN(tests)
