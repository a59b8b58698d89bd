/*
 * timing_bench.c - the best any program can do on this machine at a fixed packet
 * rate: spin on the clock to each deadline, then send(2).  No sleeping, no queue, no
 * timestamps: what is left of its lateness is the machine's (interrupts, the host
 * taking the CPU), and `rtudp bench timing` prints it next to the worker's figures.
 * Its parking variant sleeps to shortly before each deadline first: the floor of a
 * program that leaves its CPU idle between sends (`rtudp bench netflux`).
 * The pause scan is the same spin without the sends: `rtudp doctor` uses it to time
 * each spell the CPU was taken away.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime, send */
#endif
#include "timing_bench.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void put_le64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

int64_t rtudp_bench_park_send(int fd, uint64_t n, uint32_t size, int64_t start_ns,
                              int64_t gap_ns, int64_t spin_ns, int64_t *late_ns)
{
    uint8_t buf[65507];
    if (fd < 0 || size < 16 || size > sizeof buf || gap_ns < 0 || spin_ns < 0 || !late_ns ||
        n > (uint64_t)INT64_MAX / (uint64_t)(gap_ns ? gap_ns : 1) ||
        start_ns > INT64_MAX - (int64_t)n * gap_ns)
        return -EINVAL;
    memset(buf, 0, size);
    for (uint64_t i = 0; i < n; i++) {
        int64_t deadline = start_ns + (int64_t)i * gap_ns;
        put_le64(buf, (int64_t)i);
        put_le64(buf + 8, deadline);
        /* deadline > spin_ns >= 0: deadline - spin_ns cannot overflow */
        if (spin_ns < gap_ns && deadline > spin_ns && now_ns() < deadline - spin_ns) {
            int64_t wake = deadline - spin_ns;
            struct timespec at = {(time_t)(wake / 1000000000), (long)(wake % 1000000000)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
                ;
        }
        while (now_ns() < deadline)
            ;
        /* a signal: send it again, its lateness shows the delay */
        while (send(fd, buf, size, 0) < 0)
            if (errno != EINTR)
                return -errno;
        late_ns[i] = now_ns() - deadline;
    }
    return (int64_t)n;
}

int64_t rtudp_bench_spin_send(int fd, uint64_t n, uint32_t size, int64_t start_ns,
                              int64_t gap_ns, int64_t *late_ns)
{
    return rtudp_bench_park_send(fd, n, size, start_ns, gap_ns, INT64_MAX, late_ns);
}

int64_t rtudp_bench_pause_scan(int64_t duration_ns, int64_t over_ns, uint64_t max,
                               int64_t *at_ns, int64_t *len_ns, uint64_t *reads)
{
    if (duration_ns < 0 || over_ns < 0 || !reads || (max && (!at_ns || !len_ns)))
        return -EINVAL;
    int64_t start = now_ns(), prev = start, end = start + duration_ns;
    uint64_t n = 0, count = 0;
    for (;;) {
        int64_t t = now_ns();
        n++;
        if (t - prev > over_ns) {
            if (count < max) {
                at_ns[count] = prev - start;
                len_ns[count] = t - prev;
            }
            count++;
        }
        prev = t;
        if (t >= end)
            break;
    }
    *reads = n;
    return (int64_t)count;
}
