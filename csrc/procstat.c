/* procstat.c - process exit as /proc/<pid>/stat tells it (procstat.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* kill() under -std=c11 (the extensions' builds define no feature macro) */
#endif
#include "procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

enum stat_read { STAT_LIVE, STAT_EXITED, STAT_UNKNOWN };

/* reads pid's state and start time: STAT_EXITED for no such process or a zombie,
 * STAT_UNKNOWN when the file cannot be read for another reason or does not parse */
static enum stat_read read_stat(int32_t pid, uint64_t *start)
{
    char path[32], stat[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? STAT_EXITED : STAT_UNKNOWN;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    int read_errno = errno;
    close(fd);
    if (n <= 0)
        return n == 0 || read_errno == ESRCH ? STAT_EXITED : STAT_UNKNOWN;
    stat[n] = '\0';
    /* the command name in parentheses may hold spaces and ')': fields follow the last */
    const char *p = strrchr(stat, ')');
    if (!p || p[1] != ' ' || p[2] == '\0')
        return STAT_UNKNOWN;
    if (p[2] == 'Z' || p[2] == 'X')
        return STAT_EXITED;
    p += 2; /* field 3, the state; starttime is 19 fields on */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return STAT_UNKNOWN;
        p++;
    }
    char *end;
    errno = 0;
    unsigned long long ticks = strtoull(p, &end, 10);
    if (errno != 0 || end == p)
        return STAT_UNKNOWN;
    *start = ticks;
    return STAT_LIVE;
}

bool rtudp_pid_exited(int32_t pid)
{
    if (pid <= 0)
        return true;
    /* the cheap test first: most pids asked about are plainly alive or plainly gone */
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return true;
    uint64_t start = 0;
    return read_stat(pid, &start) == STAT_EXITED;
}

bool rtudp_pid_exited_since(int32_t pid, uint64_t start)
{
    if (pid <= 0 || start == 0)
        return true;
    uint64_t now_start = 0;
    switch (read_stat(pid, &now_start)) {
    case STAT_EXITED:
        return true;
    case STAT_LIVE:
        return now_start != start;
    default:
        return false;
    }
}

uint64_t rtudp_pid_start_ticks(int32_t pid)
{
    uint64_t start = 0;
    if (pid <= 0 || read_stat(pid, &start) != STAT_LIVE)
        return 0;
    return start;
}
