/*
 * cputrace.c - who else ran on the worker's CPU, from the scheduler's switches (cputrace.h)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cputrace.h"

#include "shm_access.h"
#include "sysfile.h"

#include <linux/perf_event.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void ring_copy(void *dst, const uint8_t *data, uint64_t size, uint64_t pos, size_t n)
{
    uint8_t *out = dst;
    for (size_t i = 0; i < n; i++)
        out[i] = data[(pos + i) & (size - 1)];
}

static void lose_track(struct rtudp_cputrace *t)
{
    t->gap = 1;
    t->last_ns = 0; /* what ran until the next switch is unknown */
}

/* one switch: the task `pid`/`tid` leaves the CPU at `at` */
static void on_switch(struct rtudp_cputrace *t, uint32_t pid, uint32_t tid, uint64_t at)
{
    if (at == 0 || at > (uint64_t)INT64_MAX || (int64_t)at < t->last_ns) {
        lose_track(t);
        return;
    }
    /* another task ran since the switch before (it began after that one) */
    if (tid != 0 && pid != t->self_pid && pid != t->idle_pid && t->last_ns)
        t->others_ns += (int64_t)at - t->last_ns;
    t->last_ns = (int64_t)at;
}

uint64_t rtudp_cputrace_drain(struct rtudp_cputrace *t, const uint8_t *data, uint64_t size,
                               uint64_t tail, uint64_t head)
{
    while (tail != head) {
        uint64_t left = head - tail;
        struct perf_event_header h;
        if (left > size || left < sizeof h) {
            lose_track(t); /* positions no ring of this size can have: skip all of it */
            return head;
        }
        ring_copy(&h, data, size, tail, sizeof h);
        if (h.size < sizeof h || h.size > left) {
            lose_track(t);
            return head;
        }
        if (h.type == PERF_RECORD_SAMPLE && h.size >= RTUDP_CPUTRACE_SAMPLE_BYTES) {
            uint8_t rec[RTUDP_CPUTRACE_SAMPLE_BYTES];
            ring_copy(rec, data, size, tail, sizeof rec);
            uint32_t pid, tid;
            uint64_t at;
            memcpy(&pid, rec + sizeof h, sizeof pid);
            memcpy(&tid, rec + sizeof h + 4, sizeof tid);
            memcpy(&at, rec + sizeof h + 8, sizeof at);
            on_switch(t, pid, tid, at);
            t->records++;
        } else if (h.type == PERF_RECORD_LOST || h.type == PERF_RECORD_SAMPLE) {
            lose_track(t); /* switches went unrecorded */
        }
        tail += h.size;
    }
    return tail;
}

/* the tracepoint's id, from tracefs where it is mounted; -1 without one */
static long sched_switch_id(void)
{
    uint64_t id = rtudp_read_u64_file("/sys/kernel/tracing/events/sched/sched_switch/id");
    if (id == 0)
        id = rtudp_read_u64_file("/sys/kernel/debug/tracing/events/sched/sched_switch/id");
    return id > 0 && id <= INT32_MAX ? (long)id : -1;
}

int64_t rtudp_cputrace_idle(struct rtudp_cputrace *t, int64_t now, int64_t cpu_ns)
{
    if (t->gap) {
        t->gap = 0;
        t->base_now = 0;
        return -1;
    }
    if (t->base_now == 0 || now < t->base_now || cpu_ns < t->base_cpu) {
        t->base_now = now;
        t->base_cpu = cpu_ns;
        t->base_others = t->others_ns;
        t->idle_ns = 0;
        return 0;
    }
    int64_t idle = (now - t->base_now) - (cpu_ns - t->base_cpu) - (t->others_ns - t->base_others);
    if (idle > t->idle_ns)
        t->idle_ns = idle;
    return t->idle_ns;
}

int rtudp_cputrace_open(struct rtudp_cputrace *t, long cpu, uint32_t self_pid)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    t->self_pid = self_pid;
    long id = sched_switch_id();
    long page = sysconf(_SC_PAGESIZE);
    if (cpu < 0 || id < 0 || page <= 0)
        return -1;
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_TRACEPOINT;
    a.config = (uint64_t)id;
    a.sample_period = 1;
    a.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
    a.use_clockid = 1;
    a.clockid = CLOCK_MONOTONIC;
    a.disabled = 1;
    a.watermark = 1; /* nobody polls the event: wake nobody before the ring is full */
    a.wakeup_watermark = (uint32_t)(RTUDP_CPUTRACE_PAGES * page);
    int fd = (int)syscall(SYS_perf_event_open, &a, -1, (int)cpu, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = (size_t)(1 + RTUDP_CPUTRACE_PAGES) * (size_t)page;
    void *map = MAP_FAILED;
    if ((map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED ||
        ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
        if (map != MAP_FAILED)
            munmap(map, len);
        close(fd);
        return -1;
    }
    t->fd = fd;
    t->map = map;
    t->map_len = len;
    t->data = (const uint8_t *)map + page; /* after the control page */
    t->data_size = (uint64_t)RTUDP_CPUTRACE_PAGES * (uint64_t)page;
    return 0;
}

void rtudp_cputrace_close(struct rtudp_cputrace *t)
{
    if (t->fd < 0)
        return;
    ioctl(t->fd, PERF_EVENT_IOC_DISABLE, 0);
    munmap(t->map, t->map_len);
    close(t->fd);
    t->fd = -1;
    t->map = NULL;
    t->data = NULL;
}

int64_t rtudp_cputrace_idle_now(struct rtudp_cputrace *t, int64_t now, int64_t cpu_ns)
{
    if (t->fd < 0)
        return -1;
    struct perf_event_mmap_page *ctl = t->map;
    /* the kernel's head, then the records it covers (acquire: written before it) */
    uint64_t head = atomic_load_explicit(SHARED(&ctl->data_head), memory_order_acquire);
    uint64_t tail = atomic_load_explicit(SHARED(&ctl->data_tail), memory_order_relaxed);
    tail = rtudp_cputrace_drain(t, t->data, t->data_size, tail, head);
    /* release: done reading them before the kernel may write there again */
    atomic_store_explicit(SHARED(&ctl->data_tail), tail, memory_order_release);
    return rtudp_cputrace_idle(t, now, cpu_ns);
}
