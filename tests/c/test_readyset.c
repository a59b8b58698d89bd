/*
 * test_readyset.c - how a worker finds its work: the ready set producers mark
 * (csrc/readyset.h) and the indexed heaps of channels by time (csrc/worker/chanheap.c).
 *
 * The ready set's promise is that no mark is lost: a producer that published work
 * and then marked its slot has that work seen by the consumer's next take, whatever
 * the interleaving.  Threads check it here (also under ThreadSanitizer: .ci/run runs
 * every test that starts threads with TSAN=1).  The heap is checked against a model
 * with a fixed seed: a failure reproduces.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chanheap.h"
#include "readyset.h"
#include "ring.h"

#define align8 harness_align8 /* shm_access.h has its own */
#include "harness.h"
#undef align8
#include "ring_fixture.h"

/* ------------------------------------------------------------------ ready set */

struct seen {
    uint32_t slots[64];
    uint32_t n;
};

static bool note(void *ctx, uint32_t slot)
{
    struct seen *s = ctx;
    if (s->n < 64)
        s->slots[s->n] = slot;
    s->n++;
    return true;
}

static void test_marks_are_taken_once_in_slot_order(void)
{
    static struct rtudp_ready_set set;
    memset(&set, 0, sizeof set);
    CHECK(!rtudp_ready_any(&set));
    uint32_t slots[] = {RTUDP_MAX_CHANNELS - 1, 0, 64, 63, 4097, 64};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        rtudp_ready_mark(&set, slots[i]);
    CHECK(rtudp_ready_any(&set));
    struct seen s = {.n = 0};
    CHECK_EQ(rtudp_ready_take(&set, note, &s), 5u); /* 64 twice is one mark */
    uint32_t want[] = {0, 63, 64, 4097, RTUDP_MAX_CHANNELS - 1};
    CHECK_EQ(s.n, 5u);
    for (uint32_t i = 0; i < 5; i++)
        CHECK_EQ(s.slots[i], want[i]);
    CHECK(!rtudp_ready_any(&set));
    s.n = 0;
    CHECK_EQ(rtudp_ready_take(&set, note, &s), 0u);
}

static void test_a_slot_out_of_range_marks_nothing(void)
{
    static struct rtudp_ready_set set;
    memset(&set, 0, sizeof set);
    rtudp_ready_mark(&set, RTUDP_MAX_CHANNELS);
    rtudp_ready_mark(&set, UINT32_MAX);
    CHECK(!rtudp_ready_any(&set));
    /* a hostile summary naming words past the table is ignored, not followed */
    set.summary[RTUDP_READY_SUMMARY - 1] = UINT64_MAX;
    struct seen s = {.n = 0};
    CHECK_EQ(rtudp_ready_take(&set, note, &s), 0u);
}

#define PRODUCERS 3
#define SLOTS_EACH 40
#define ROUNDS 20000

static struct rtudp_ready_set g_set;
static _Atomic uint64_t g_work[PRODUCERS * SLOTS_EACH]; /* "committed records" per slot */
static uint64_t g_taken[PRODUCERS * SLOTS_EACH];        /* what the consumer has seen */
static atomic_int g_done;

static void *produce(void *arg)
{
    uint32_t base = (uint32_t)(uintptr_t)arg * SLOTS_EACH;
    uint32_t x = base + 1;
    for (int r = 0; r < ROUNDS; r++) {
        x = x * 1103515245u + 12345u;
        uint32_t slot = base + (x >> 8) % SLOTS_EACH;
        /* commit, then mark: as notify_consumer does after a ring's commit */
        atomic_fetch_add_explicit(&g_work[slot], 1, memory_order_release);
        atomic_thread_fence(memory_order_seq_cst);
        rtudp_ready_mark(&g_set, slot);
    }
    return NULL;
}

static uint32_t g_stop_every; /* the taker stops at every this many slots (0: never) */
static uint32_t g_offered;

static bool consume_slot(void *ctx, uint32_t slot)
{
    (void)ctx;
    if (g_stop_every && ++g_offered % g_stop_every == 0)
        return false; /* as a turn whose deadline came: this slot is left marked */
    if (slot < PRODUCERS * SLOTS_EACH)
        g_taken[slot] = atomic_load_explicit(&g_work[slot], memory_order_acquire);
    return true;
}

static void *consume(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&g_done, memory_order_acquire))
        rtudp_ready_take(&g_set, consume_slot, NULL);
    return NULL;
}

static void run_producers_and_a_taker(uint32_t stop_every)
{
    memset(&g_set, 0, sizeof g_set);
    memset(g_taken, 0, sizeof g_taken);
    for (uint32_t i = 0; i < PRODUCERS * SLOTS_EACH; i++)
        atomic_store(&g_work[i], 0);
    atomic_store(&g_done, 0);
    g_stop_every = stop_every;
    g_offered = 0;
    pthread_t p[PRODUCERS], c;
    CHECK(pthread_create(&c, NULL, consume, NULL) == 0);
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        CHECK(pthread_create(&p[i], NULL, produce, (void *)i) == 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    atomic_store_explicit(&g_done, 1, memory_order_release);
    pthread_join(c, NULL);
    /* the taker's last look: every slot's last commit was marked after it, so the
     * marks left (if any) cover exactly what the running taker had not seen */
    g_stop_every = 0;
    rtudp_ready_take(&g_set, consume_slot, NULL);
    uint64_t total = 0;
    for (uint32_t i = 0; i < PRODUCERS * SLOTS_EACH; i++) {
        uint64_t work = atomic_load(&g_work[i]);
        if (g_taken[i] != work)
            fprintf(stderr, "slot %u: %llu committed, %llu seen\n", i,
                    (unsigned long long)work, (unsigned long long)g_taken[i]);
        CHECK_EQ(g_taken[i], work);
        total += work;
    }
    CHECK_EQ(total, (uint64_t)PRODUCERS * ROUNDS);
}

static void test_no_mark_is_lost_between_producers_and_the_taker(void)
{
    run_producers_and_a_taker(0);
}

/* a taker that stops part way (a turn whose deadline came) leaves the rest marked:
 * still no mark is lost */
static void test_no_mark_is_lost_by_a_taker_that_stops(void)
{
    run_producers_and_a_taker(3);
}

/* stops after two slots: the next take gives the rest, in slot order, each once */
static bool take_two(void *ctx, uint32_t slot)
{
    struct seen *s = ctx;
    if (s->n == 2)
        return false;
    return note(ctx, slot);
}

static void test_a_take_that_stops_leaves_the_rest_for_the_next(void)
{
    static struct rtudp_ready_set set;
    memset(&set, 0, sizeof set);
    uint32_t slots[] = {4097, 0, 64, 5, 63, 130};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        rtudp_ready_mark(&set, slots[i]);
    struct seen s = {.n = 0};
    CHECK_EQ(rtudp_ready_take(&set, take_two, &s), 2u);
    CHECK_EQ(s.slots[0], 0u);
    CHECK_EQ(s.slots[1], 5u);
    CHECK(rtudp_ready_any(&set));
    s.n = 0;
    CHECK_EQ(rtudp_ready_take(&set, note, &s), 4u);
    uint32_t want[] = {63, 64, 130, 4097};
    for (uint32_t i = 0; i < 4; i++)
        CHECK_EQ(s.slots[i], want[i]);
    CHECK(!rtudp_ready_any(&set));
}

/* ------------------------------------------------------------------ routes */

/* what a route's tables look like to it: a bell in a larger slot, a ready set each */
struct fake_slot {
    uint64_t before;
    struct rtudp_doorbell bell;
    uint64_t after;
};

static uint32_t marks_in(struct rtudp_ready_set *set)
{
    struct seen s = {.n = 0};
    return rtudp_ready_take(set, note, &s);
}

static void test_a_commit_marks_the_worker_the_route_names_then(void)
{
    static struct rtudp_ready_set sets[2];
    static struct fake_slot slots[2];
    memset(sets, 0, sizeof sets);
    memset(slots, 0, sizeof slots);
    struct rtudp_mpsc m = mpsc_new(4096);
    int32_t worker = 0;
    struct rtudp_mpsc_route route = {
        .worker = &worker, .bells = (uint8_t *)&slots[0].bell, .bell_stride = sizeof slots[0],
        .ready_sets = (uint8_t *)sets, .ready_stride = sizeof sets[0], .n = 2};
    rtudp_mpsc_set_route(&m, &route, 77);
    CHECK_EQ(rtudp_mpsc_try_put(&m, "a", 1, 0, 0), RTUDP_OK);
    CHECK_EQ(marks_in(&sets[0]), 1u);
    CHECK_EQ(marks_in(&sets[1]), 0u);
    worker = 1; /* the channel moved: the same view now wakes the other worker */
    CHECK_EQ(rtudp_mpsc_try_put(&m, "b", 1, 0, 0), RTUDP_OK);
    CHECK_EQ(marks_in(&sets[0]), 0u);
    CHECK_EQ(marks_in(&sets[1]), 1u);
    worker = 2; /* outside the table (a corrupt segment): wakes no one, reads nothing */
    CHECK_EQ(rtudp_mpsc_try_put(&m, "c", 1, 0, 0), RTUDP_OK);
    worker = -1;
    CHECK_EQ(rtudp_mpsc_try_put(&m, "d", 1, 0, 0), RTUDP_OK);
    CHECK_EQ(marks_in(&sets[0]) + marks_in(&sets[1]), 0u);
    CHECK_EQ(slots[0].before + slots[0].after + slots[1].before + slots[1].after, 0u);
    free(m.ring);
}

/* ------------------------------------------------------------------ chanheap */

#define NODES 300

static void check_heap(const struct rtudp_chanheap *h, const struct rtudp_chanheap_node *nodes,
                       const int64_t *model)
{
    int64_t least = RTUDP_CHANHEAP_NONE;
    uint32_t in = 0;
    for (int i = 0; i < NODES; i++) {
        CHECK_EQ(nodes[i].at, model[i]);
        CHECK_EQ(nodes[i].index != 0, model[i] != RTUDP_CHANHEAP_NONE);
        if (nodes[i].index) {
            CHECK(h->v[nodes[i].index - 1] == &nodes[i]);
            in++;
        }
        if (model[i] < least)
            least = model[i];
    }
    CHECK_EQ(h->len, in);
    CHECK_EQ(rtudp_chanheap_next(h), least);
    for (uint32_t i = 1; i < h->len; i++)
        CHECK(h->v[(i - 1) / 2]->at <= h->v[i]->at);
}

static void test_heap_against_a_model(void)
{
    static struct rtudp_chanheap_node nodes[NODES];
    static int64_t model[NODES];
    struct rtudp_chanheap h;
    rtudp_chanheap_init(&h);
    CHECK_EQ(rtudp_chanheap_reserve(&h, NODES), RTUDP_OK);
    for (int i = 0; i < NODES; i++) {
        nodes[i] = (struct rtudp_chanheap_node){.at = RTUDP_CHANHEAP_NONE};
        model[i] = RTUDP_CHANHEAP_NONE;
    }
    CHECK_EQ(rtudp_chanheap_next(&h), RTUDP_CHANHEAP_NONE);
    CHECK(rtudp_chanheap_first(&h) == NULL);
    uint32_t x = 7;
    for (int step = 0; step < 20000; step++) {
        x = x * 1103515245u + 12345u;
        int i = (int)((x >> 8) % NODES);
        x = x * 1103515245u + 12345u;
        /* a third of the steps take a node out; ties are common (few distinct times) */
        int64_t at = (x >> 8) % 3 == 0 ? RTUDP_CHANHEAP_NONE : (int64_t)((x >> 12) % 50);
        rtudp_chanheap_set(&h, &nodes[i], at);
        model[i] = at;
        if (step % 97 == 0)
            check_heap(&h, nodes, model);
    }
    check_heap(&h, nodes, model);
    /* taking the tops in turn gives the times in order */
    int64_t last = INT64_MIN;
    while (rtudp_chanheap_first(&h)) {
        struct rtudp_chanheap_node *n = rtudp_chanheap_first(&h);
        CHECK(n->at >= last);
        last = n->at;
        rtudp_chanheap_set(&h, n, RTUDP_CHANHEAP_NONE);
        model[n - nodes] = RTUDP_CHANHEAP_NONE;
    }
    check_heap(&h, nodes, model);
    rtudp_chanheap_free(&h);
}

static void test_heap_reserve_grows_and_keeps_its_nodes(void)
{
    static struct rtudp_chanheap_node nodes[NODES];
    struct rtudp_chanheap h;
    rtudp_chanheap_init(&h);
    for (int i = 0; i < NODES; i++) {
        CHECK_EQ(rtudp_chanheap_reserve(&h, (uint32_t)i + 1), RTUDP_OK);
        nodes[i] = (struct rtudp_chanheap_node){.at = RTUDP_CHANHEAP_NONE};
        rtudp_chanheap_set(&h, &nodes[i], NODES - i);
    }
    CHECK(h.capacity >= NODES && h.capacity < 4 * NODES);
    CHECK_EQ(h.len, (uint32_t)NODES);
    CHECK(rtudp_chanheap_first(&h) == &nodes[NODES - 1]);
    rtudp_chanheap_free(&h);
}

static const struct test tests[] = {
    T(test_marks_are_taken_once_in_slot_order),
    T(test_a_slot_out_of_range_marks_nothing),
    T(test_no_mark_is_lost_between_producers_and_the_taker),
    T(test_no_mark_is_lost_by_a_taker_that_stops),
    T(test_a_take_that_stops_leaves_the_rest_for_the_next),
    T(test_a_commit_marks_the_worker_the_route_names_then),
    T(test_heap_against_a_model),
    T(test_heap_reserve_grows_and_keeps_its_nodes),
};

HARNESS_MAIN(tests)
