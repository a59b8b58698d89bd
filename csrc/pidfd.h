/*
 * pidfd.h - a duplicate of another process's file descriptor (pidfd_open +
 * pidfd_getfd, Linux >= 5.6).  The caller needs ptrace access to that process (the
 * same user, and Yama's ptrace_scope 0 where Yama is on).  Internal to the engine.
 */
#ifndef RTUDP_PIDFD_H
#define RTUDP_PIDFD_H

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

#include "compat.h" /* SYS_pidfd_open, SYS_pidfd_getfd; RTUDP_FORCE_FALLBACK */

/* our duplicate of fd `their_fd` of process `pid` (close-on-exec), or -errno with
 * *step naming the call that failed */
static inline int rtudp_fd_of(pid_t pid, int their_fd, const char **step)
{
    if (rtudp_compat_forced("pidfd_getfd")) {
        *step = "pidfd_getfd";
        return -ENOSYS; /* as a kernel before 5.6 answers */
    }
    *step = "pidfd_open";
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return -errno;
    *step = "pidfd_getfd";
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, their_fd, 0);
    int err = errno;
    close(pidfd);
    return fd < 0 ? -err : fd;
}

#endif /* RTUDP_PIDFD_H */
