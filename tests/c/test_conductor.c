/*
 * test_conductor.c - a worker's conductor thread (csrc/worker/conductor.h): channels
 * prepared beside the TX thread come back in the order they were given, refusals
 * keep their place, a channel that cannot be prepared says why and leaks nothing,
 * and a stop lets go of what was prepared and never taken.
 *
 * The TX thread's side runs on a thread of its own here (pthread_create), so that
 * .ci/run also runs this under ThreadSanitizer.  Channels are real: a segment in
 * /dev/shm named as a pool's, and a UDP socket on loopback; each test unlinks its
 * segments before its first check that can fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conductor.h"
#include "segment.h"
#include "worker.h"

#define align8 harness_align8 /* shm_access.h has its own */
#include "harness.h"
#undef align8

#define RING_BYTES 4096u
#define CHANNELS 24
#define REFUSED_EVERY 5 /* every fifth job is refused at receipt: it only keeps its place */

static char g_pool[40];

/* a conductor for the test, waking `bell`; the pool name is this process's */
static void start(struct rtudp_conductor *k, struct rtudp_doorbell *bell)
{
    snprintf(g_pool, sizeof g_pool, "tcond%d", (int)getpid());
    memset(bell, 0, sizeof *bell);
    CHECK_EQ(rtudp_conductor_start(k, bell), 0);
}

/* a channel segment named as pool g_pool's channel `name` */
static void make_segment(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/rtudp.%s.%s", g_pool, name);
    uint64_t size = rtudp_channel_segment_size(RING_BYTES, RING_BYTES, 0);
    CHECK(size > 0);
    int fd = shm_open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, (off_t)size), 0);
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(base != MAP_FAILED);
    close(fd);
    struct rtudp_check why;
    CHECK_EQ(rtudp_channel_segment_init(base, size, RING_BYTES, RING_BYTES, 0, &why), RTUDP_OK);
    struct rtudp_channel_block *block;
    void *tx, *rx;
    uint64_t tx_avail, rx_avail;
    CHECK_EQ(rtudp_channel_segment_validate(base, size, &block, &tx, &tx_avail, &rx, &rx_avail,
                                            &why), RTUDP_OK);
    block->kind = RTUDP_KIND_UDP; /* a udp channel that only sends, as the supervisor says */
    block->direction = RTUDP_DIR_SEND;
    munmap(base, size);
}

static void unlink_segment(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/rtudp.%s.%s", g_pool, name);
    shm_unlink(path);
}

static int loopback_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static struct rtudp_job *job(uint32_t slot, const char *name, int fd, int refused)
{
    struct rtudp_job *j = calloc(1, sizeof *j);
    CHECK(j != NULL);
    j->kind = RTUDP_JOB_PREPARE;
    j->op = RTUDP_CMD_ADD;
    j->slot = slot;
    snprintf(j->name, sizeof j->name, "%s", name);
    j->fd = fd;
    j->tx_fd = -1;
    j->pool_name = g_pool;
    j->rc = refused ? RTUDP_EINVAL : RTUDP_OK;
    if (refused)
        snprintf(j->msg, sizeof j->msg, "refused at receipt");
    return j;
}

/* ------------------------------------------------------------------ in order */

struct tx_side {
    struct rtudp_conductor *k;
    int fds[CHANNELS];
    uint32_t taken, prepared, refused, out_of_order;
};

/* the TX thread's part: give every job, take them back as they come, give each
 * prepared channel back to be released */
static void *tx_thread(void *arg)
{
    struct tx_side *t = arg;
    for (uint32_t i = 0; i < CHANNELS; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%u", i);
        int refused = i % REFUSED_EVERY == REFUSED_EVERY - 1;
        rtudp_conductor_give(t->k, job(i, name, refused ? -1 : t->fds[i], refused));
    }
    int64_t end = harness_now_ns() + (int64_t)STEP_TIMEOUT_S * 1000000000LL;
    while (t->taken < CHANNELS && harness_now_ns() < end) {
        if (!rtudp_conductor_has_done(t->k)) {
            usleep(100);
            continue;
        }
        struct rtudp_job *j;
        while ((j = rtudp_conductor_take(t->k)) != NULL) {
            if (j->slot != t->taken)
                t->out_of_order++;
            t->taken++;
            if (j->rc == RTUDP_OK && j->chan) {
                t->prepared++;
                struct rtudp_job *r = calloc(1, sizeof *r);
                r->kind = RTUDP_JOB_RELEASE;
                r->chan = j->chan;
                rtudp_conductor_give(t->k, r);
            } else if (j->rc == RTUDP_EINVAL && !strcmp(j->msg, "refused at receipt")) {
                t->refused++;
            }
            free(j);
        }
    }
    return NULL;
}

static void test_prepared_channels_come_back_in_the_order_given(void)
{
    struct rtudp_doorbell bell;
    struct rtudp_conductor k;
    start(&k, &bell);
    struct tx_side t = {.k = &k};
    for (uint32_t i = 0; i < CHANNELS; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%u", i);
        make_segment(name);
        t.fds[i] = loopback_socket();
    }
    pthread_t th;
    int started = pthread_create(&th, NULL, tx_thread, &t);
    if (started == 0)
        pthread_join(th, NULL);
    rtudp_conductor_stop(&k); /* finishes the releases given */
    for (uint32_t i = 0; i < CHANNELS; i++) { /* before any check can fail */
        char name[16];
        snprintf(name, sizeof name, "c%u", i);
        unlink_segment(name);
    }
    CHECK_EQ(started, 0);
    uint32_t refused = CHANNELS / REFUSED_EVERY;
    CHECK_EQ(t.taken, (uint32_t)CHANNELS);
    CHECK_EQ(t.out_of_order, 0u);
    CHECK_EQ(t.refused, refused);
    CHECK_EQ(t.prepared, (uint32_t)CHANNELS - refused);
    CHECK_EQ(k.preparing, 0u);
    for (uint32_t i = 0; i < CHANNELS; i++) {
        if (i % REFUSED_EVERY != REFUSED_EVERY - 1)
            CHECK(!fd_open(t.fds[i])); /* released with its channel */
        else
            close(t.fds[i]);
    }
}

/* ------------------------------------------------------------------ refusals */

static void test_a_channel_without_a_segment_is_refused_with_its_name(void)
{
    struct rtudp_doorbell bell;
    struct rtudp_conductor k;
    start(&k, &bell);
    int fd = loopback_socket();
    rtudp_conductor_give(&k, job(3, "nosuch", fd, 0));
    int64_t end = harness_now_ns() + (int64_t)STEP_TIMEOUT_S * 1000000000LL;
    while (!rtudp_conductor_has_done(&k) && harness_now_ns() < end)
        usleep(100);
    struct rtudp_job *j = rtudp_conductor_take(&k);
    CHECK(j != NULL);
    CHECK_EQ(j->rc, RTUDP_ESYS);
    CHECK(j->chan == NULL);
    CHECK(strstr(j->msg, "nosuch") != NULL);
    CHECK(!fd_open(fd)); /* the job took the socket over, and closed it */
    free(j);
    CHECK(rtudp_conductor_take(&k) == NULL);
    CHECK(!rtudp_conductor_has_done(&k));
    rtudp_conductor_stop(&k);
}

/* ------------------------------------------------------------------ stop */

static void test_stop_lets_go_of_what_was_never_taken(void)
{
    struct rtudp_doorbell bell;
    struct rtudp_conductor k;
    start(&k, &bell);
    enum { N = 4 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        make_segment(name);
        fds[i] = loopback_socket();
        rtudp_conductor_give(&k, job((uint32_t)i, name, fds[i], 0));
    }
    /* the worker is told to exit before it takes them back: nothing leaks (ASan) and
     * the sockets are closed */
    rtudp_conductor_stop(&k);
    for (int i = 0; i < N; i++) { /* before any check can fail */
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        unlink_segment(name);
    }
    for (int i = 0; i < N; i++)
        CHECK(!fd_open(fds[i]));
}

static const struct test tests[] = {
    T(test_prepared_channels_come_back_in_the_order_given),
    T(test_a_channel_without_a_segment_is_refused_with_its_name),
    T(test_stop_lets_go_of_what_was_never_taken),
};

HARNESS_MAIN(tests)
