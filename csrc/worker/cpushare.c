/*
 * cpushare.c - does another task on the worker's CPU get too little of it?  (cpushare.h)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cpushare.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int rtudp_share_look(struct rtudp_cpushare *s, int64_t now, int64_t cpu_ns, int64_t idle_ns)
{
    if (s->sleep_ns < RTUDP_SHARE_BASE_SLEEP_NS)
        s->sleep_ns = RTUDP_SHARE_BASE_SLEEP_NS;
    if (idle_ns < 0) { /* no idle time to read: nothing can be said */
        s->sleep_ns = RTUDP_SHARE_BASE_SLEEP_NS;
        s->at_ns = 0;
        s->quiet_looks = 0;
        return 0;
    }
    if (s->at_ns == 0 || now <= s->at_ns || cpu_ns < s->cpu_ns || idle_ns < s->idle_ns) {
        s->at_ns = now; /* a first look, or counters that went back: start over */
        s->idle_avg = s->others_avg = -1;
        s->quiet_looks = 0;
        s->cpu_ns = cpu_ns;
        s->idle_ns = idle_ns;
        return s->sleep_ns > RTUDP_SHARE_BASE_SLEEP_NS;
    }
    int64_t wall = now - s->at_ns;
    if (wall < RTUDP_SHARE_MIN_WINDOW_NS)
        return s->sleep_ns > RTUDP_SHARE_BASE_SLEEP_NS;
    int64_t ours = cpu_ns - s->cpu_ns, idle = idle_ns - s->idle_ns;
    int64_t others = wall - ours - idle; /* may be < 0: the two clocks are read apart */
    s->at_ns = now;
    s->cpu_ns = cpu_ns;
    s->idle_ns = idle_ns;
    /* fixed point (x1024) so the averages reach 0 rather than stop a few steps short */
    int64_t idle_fp = idle * 1000 * 1024 / wall, others_fp = others * 1000 * 1024 / wall;
    if (others_fp < RTUDP_SHARE_ALONE_PERMILLE * 1024) {
        if (s->quiet_looks < UINT32_MAX)
            s->quiet_looks++;
    }
    else
        s->quiet_looks = 0;
    if (s->idle_avg < 0) {
        s->idle_avg = idle_fp;
        s->others_avg = others_fp;
    } else {
        s->idle_avg += (idle_fp - s->idle_avg) / RTUDP_SHARE_EWMA_DIV;
        s->others_avg += (others_fp - s->others_avg) / RTUDP_SHARE_EWMA_DIV;
    }
    /* a CPU that never idles while others get nothing is not contended when there are
     * no others (alone: the worker spun all of it past its cap, at SCHED_OTHER) */
    int alone = rtudp_share_alone(s);
    if (s->idle_avg < RTUDP_SHARE_IDLE_MAX_PERMILLE * 1024 &&
        s->others_avg < RTUDP_SHARE_OTHERS_MIN_PERMILLE * 1024 && !alone) {
        s->sleep_ns += RTUDP_SHARE_STEP_NS;
        if (s->sleep_ns > RTUDP_SHARE_MAX_SLEEP_NS)
            s->sleep_ns = RTUDP_SHARE_MAX_SLEEP_NS;
    } else if ((s->idle_avg >= RTUDP_SHARE_CALM_PERMILLE * 1024 || alone) &&
               s->sleep_ns > RTUDP_SHARE_BASE_SLEEP_NS)
        s->sleep_ns -= RTUDP_SHARE_STEP_NS;
    int contended = s->sleep_ns > RTUDP_SHARE_BASE_SLEEP_NS;
    if (contended)
        s->contended_looks++;
    return contended;
}

int rtudp_share_alone(const struct rtudp_cpushare *s)
{
    return s->quiet_looks >= RTUDP_SHARE_ALONE_LOOKS; /* 0 until looks were made */
}

void rtudp_share_someone(struct rtudp_cpushare *s)
{
    s->quiet_looks = 0;
}

void rtudp_cpuidle_open(struct rtudp_cpuidle *c, long cpu, uint32_t self_pid)
{
    c->n = 0;
    c->trace.fd = -1;
    if (cpu < 0)
        return;
    for (int k = 0; k < RTUDP_CPUIDLE_STATES; k++) {
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/cpuidle/state%d/time", cpu, k);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        c->fds[c->n++] = fd;
    }
    if (c->n == 0)
        rtudp_cputrace_open(&c->trace, cpu, self_pid);
}

void rtudp_cpuidle_close(struct rtudp_cpuidle *c)
{
    for (int k = 0; k < c->n; k++)
        close(c->fds[k]);
    c->n = 0;
    rtudp_cputrace_close(&c->trace);
}

enum rtudp_idle_source rtudp_cpuidle_source(const struct rtudp_cpuidle *c)
{
    if (c->n > 0)
        return RTUDP_IDLE_SOURCE_CPUIDLE;
    return c->trace.fd >= 0 ? RTUDP_IDLE_SOURCE_SCHED : RTUDP_IDLE_SOURCE_NONE;
}

int64_t rtudp_cpuidle_ns(struct rtudp_cpuidle *c, int64_t now, int64_t cpu_ns)
{
    if (c->n == 0)
        return rtudp_cputrace_idle_now(&c->trace, now, cpu_ns);
    int64_t us = 0;
    for (int k = 0; k < c->n; k++) {
        char buf[32];
        ssize_t got = pread(c->fds[k], buf, sizeof buf - 1, 0);
        if (got <= 0)
            return -1;
        buf[got] = 0;
        char *end;
        long long v = strtoll(buf, &end, 10);
        if (end == buf || v < 0)
            return -1;
        us += v;
    }
    return us * 1000;
}
