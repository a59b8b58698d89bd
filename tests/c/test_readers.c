/*
 * test_readers.c - unit tests for the reader slots of a channel block (csrc/readers.c).
 *
 * Same harness as the other C tests: each test runs in a forked child; the last
 * line is "N passed, M failed, K skipped".
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "readers.h"

#include "harness.h"

static struct rtudp_channel_block *block_new(void)
{
    return zalloc64(sizeof(struct rtudp_channel_block));
}

/* a pid that existed and is gone now (a reaped child's) */
static uint32_t dead_pid(void)
{
    pid_t p = fork();
    CHECK(p >= 0);
    if (p == 0)
        _exit(0);
    CHECK_EQ(waitpid(p, NULL, 0), p);
    return (uint32_t)p;
}

static void test_readers_claim_release(void)
{
    struct rtudp_channel_block *b = block_new();
    uint32_t me = (uint32_t)getpid();
    int s0 = rtudp_reader_claim(b, me), s1 = rtudp_reader_claim(b, me);
    CHECK_EQ(s0, 0);
    CHECK_EQ(s1, 1);
    CHECK_EQ(rtudp_reader_pid(b, 0), me);
    CHECK_EQ(rtudp_reader_release(b, s0, me), 0);
    CHECK_EQ(rtudp_reader_pid(b, 0), 0);
    CHECK_EQ(rtudp_reader_release(b, s0, me), -1);      /* already released */
    CHECK_EQ(rtudp_reader_release(b, s1, me + 1), -1);  /* not its slot */
    CHECK_EQ(rtudp_reader_pid(b, 1), me);
    CHECK_EQ(rtudp_reader_claim(b, me), 0);             /* the free slot again */
    free(b);
}

static void test_readers_bad_arguments(void)
{
    struct rtudp_channel_block *b = block_new();
    CHECK_EQ(rtudp_reader_claim(b, 0), -1);
    CHECK_EQ(rtudp_reader_release(b, -1, 1), -1);
    CHECK_EQ(rtudp_reader_release(b, RTUDP_READER_SLOTS, 1), -1);
    CHECK_EQ(rtudp_reader_pid(b, -1), 0);
    CHECK_EQ(rtudp_reader_pid(b, RTUDP_READER_SLOTS), 0);
    free(b);
}

static void test_readers_full_then_dead_slot_reclaimed(void)
{
    struct rtudp_channel_block *b = block_new();
    uint32_t me = (uint32_t)getpid(), gone = dead_pid();
    for (int i = 0; i < RTUDP_READER_SLOTS - 1; i++)
        CHECK_EQ(rtudp_reader_claim(b, me), i);
    CHECK_EQ(rtudp_reader_claim(b, gone), RTUDP_READER_SLOTS - 1);
    /* full: the live ones stay, the dead reader's slot is taken over */
    CHECK_EQ(rtudp_reader_claim(b, me), RTUDP_READER_SLOTS - 1);
    CHECK_EQ(rtudp_reader_pid(b, RTUDP_READER_SLOTS - 1), me);
    CHECK_EQ(rtudp_reader_claim(b, me), -1);
    for (int i = 0; i < RTUDP_READER_SLOTS; i++)
        CHECK_EQ(rtudp_reader_pid(b, i), me);
    free(b);
}

static const struct test tests[] = {
    T(test_readers_claim_release),
    T(test_readers_bad_arguments),
    T(test_readers_full_then_dead_slot_reclaimed),
};

HARNESS_MAIN(tests)
