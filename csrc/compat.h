/*
 * compat.h - what an older C library lacks, brought here so the engine builds against
 * glibc 2.28 (the manylinux_2_28 wheels, packaging/build-wheels) and still uses each
 * newer kernel feature where the running kernel has it.  Each call goes through
 * syscall(2) rather than a glibc wrapper: a wheel built on an old glibc runs on a new
 * one and the other way round, and a kernel without the call answers ENOSYS, which
 * the caller turns into its fallback.  Internal to the engine.
 */
#ifndef RTUDP_COMPAT_H
#define RTUDP_COMPAT_H

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* system call numbers: the same on every architecture since Linux 5.1's common table */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* Linux 5.3, glibc 2.36 */
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438 /* Linux 5.6, glibc 2.36 */
#endif
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441 /* Linux 5.11, glibc 2.35 */
#endif
#ifndef SYS_close_range
#define SYS_close_range 436 /* Linux 5.9, glibc 2.34 */
#endif

/* UDP socket options and cmsg types (linux/udp.h; netinet/udp.h of glibc >= 2.28 has
 * UDP_SEGMENT, later ones UDP_GRO) */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* Linux 4.18 */
#endif
#ifndef UDP_GRO
#define UDP_GRO 104 /* Linux 5.0 */
#endif

/* Whether RTUDP_FORCE_FALLBACK (a comma-separated list of feature names: pidfd_getfd,
 * udp_gro, udp_segment, epoll_pwait2, so_timestamping) names `feature`: the tests take each fallback
 * on a kernel that has the feature, as a kernel without it would */
static inline int rtudp_compat_forced(const char *feature)
{
    const char *p = getenv("RTUDP_FORCE_FALLBACK");
    size_t n = strlen(feature);
    while (p != NULL && *p != '\0') {
        if (strncmp(p, feature, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
        p = strchr(p, ',');
        if (p != NULL)
            p++;
    }
    return 0;
}

/* Say once per process (`*said` is that flag) that `feature` is missing and what is
 * done instead; the line goes to stderr, where the pool's log shows it */
static inline void rtudp_compat_note(atomic_int *said, const char *feature, int err,
                                     const char *instead)
{
    if (atomic_exchange_explicit(said, 1, memory_order_relaxed) == 0)
        fprintf(stderr, "rtudp: fallback: %s unavailable (%s): %s\n", feature,
                err ? strerror(err) : "RTUDP_FORCE_FALLBACK", instead);
}

/* epoll_pwait2 (a nanosecond timeout), or on a kernel without it (ENOSYS) epoll_pwait
 * with the timeout rounded up to whole milliseconds, said once.  The worker's RX thread
 * waits through this: `#define epoll_pwait2` below sends its calls here. */
static inline int rtudp_epoll_pwait2(int epfd, struct epoll_event *ev, int max,
                                     const struct timespec *timeout, const sigset_t *mask)
{
    static atomic_int missing = -1; /* -1: not asked yet; 0 the kernel has it; 1 not */
    static atomic_int said;
    int m = atomic_load_explicit(&missing, memory_order_relaxed);
    if (m < 0) {
        m = rtudp_compat_forced("epoll_pwait2");
        atomic_store_explicit(&missing, m, memory_order_relaxed);
        if (m)
            rtudp_compat_note(&said, "epoll_pwait2", 0, "RX waits round up to milliseconds");
    }
    if (!m) {
        long r = syscall(SYS_epoll_pwait2, epfd, ev, max, timeout, mask, (size_t)(_NSIG / 8));
        if (r >= 0 || errno != ENOSYS)
            return (int)r;
        atomic_store_explicit(&missing, 1, memory_order_relaxed);
        rtudp_compat_note(&said, "epoll_pwait2", ENOSYS, "RX waits round up to milliseconds");
    }
    int ms = -1;
    if (timeout != NULL) {
        long long up = (long long)timeout->tv_sec * 1000 + (timeout->tv_nsec + 999999) / 1000000;
        ms = up > INT_MAX ? INT_MAX : (int)up;
    }
    return epoll_pwait(epfd, ev, max, ms, mask);
}
#define epoll_pwait2 rtudp_epoll_pwait2

/* close every descriptor from `first` to `last`: 0, or -1 with errno (ENOSYS before
 * Linux 5.9: the caller closes them one by one) */
static inline int rtudp_close_range(unsigned first, unsigned last, unsigned flags)
{
    return (int)syscall(SYS_close_range, first, last, flags);
}

#endif /* RTUDP_COMPAT_H */
