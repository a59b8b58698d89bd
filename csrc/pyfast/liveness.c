/*
 * liveness.c - whether a channel handle may still send and receive (pyfast.h,
 * struct pyf_liveness), and the error that says it may not.
 */
#include "pyfast.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether process `pid`, which started at `start` (clock ticks after boot, field 22 of
 * /proc/pid/stat), has exited: no such process, a zombie, or the pid is another
 * process's now.  A stopped process has not, nor is a stat that cannot be read for
 * another reason (no file descriptor left) a proof of death.  `start` 0 (unknown):
 * exited. */
static int process_exited(int32_t pid, uint64_t start)
{
    char path[32], stat[1024];
    if (pid <= 0 || start == 0)
        return 1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    int read_errno = errno;
    close(fd);
    if (n <= 0)
        return n == 0 || read_errno == ESRCH;
    stat[n] = '\0';
    /* the command name in parentheses may hold spaces and ')': fields follow the last */
    const char *p = strrchr(stat, ')');
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 1;
    p += 2; /* field 3, the state; starttime is 19 fields on */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return 1;
        p++;
    }
    char *end;
    errno = 0;
    unsigned long long ticks = strtoull(p, &end, 10);
    return errno != 0 || end == p || ticks != start;
}

int pyf_gone(const struct pyf_liveness *l)
{
    if (pyf_revoked(l))
        return PYF_GONE_CLOSED;
    if (l->heartbeat) {
        int64_t beat = atomic_load_explicit((const _Atomic int64_t *)l->heartbeat,
                                            memory_order_relaxed);
        /* a stale heartbeat alone is a supervisor slow to beat (stopped, starved): its
         * workers carry on, and so do its channels, until its process is gone */
        if (rtudp_now_ns() - beat > l->stale_ns && process_exited(l->sup_pid, l->sup_start))
            return PYF_GONE_POOL;
    }
    return PYF_LIVE;
}

PyObject *pyf_gone_error(int why, PyObject *name)
{
    PyObject *mod = PyImport_ImportModule("rtudp.shmring.errors");
    if (!mod)
        return NULL;
    PyObject *cls = PyObject_GetAttrString(mod, why == PYF_GONE_CLOSED ? "ChannelClosedError"
                                                                       : "PoolNotRunningError");
    Py_DECREF(mod);
    if (!cls)
        return NULL;
    if (why == PYF_GONE_CLOSED)
        PyErr_Format(cls, "channel %R was closed by its pool (or the pool stopped): nothing "
                          "more can be sent or received on it", name);
    else
        PyErr_Format(cls, "the pool of channel %R is not running (its supervisor has "
                          "exited): nothing more can be sent or received on it", name);
    Py_DECREF(cls);
    return NULL;
}

int pyf_watch_args(PyObject *const *args, Py_ssize_t nargs, struct pyf_liveness *l)
{
    if (nargs != PYF_WATCH_NARGS) {
        PyErr_SetString(PyExc_TypeError, "_watch(state_address, heartbeat_address, stale_ns, "
                                         "supervisor_pid, supervisor_start)");
        return -1;
    }
    unsigned long long state = PyLong_AsUnsignedLongLong(args[0]);
    unsigned long long beat = PyLong_AsUnsignedLongLong(args[1]);
    long long stale = PyLong_AsLongLong(args[2]);
    long pid = PyLong_AsLong(args[3]);
    unsigned long long start = PyLong_AsUnsignedLongLong(args[4]);
    if (PyErr_Occurred())
        return -1;
    if (stale < 0 || (state % 4) || (beat % 8) || pid < 0 || pid > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "_watch: misaligned address, stale_ns %lld < 0 or "
                     "supervisor pid %ld out of range", stale, pid);
        return -1;
    }
    l->state = (const uint32_t *)(uintptr_t)state;
    l->heartbeat = (const int64_t *)(uintptr_t)beat;
    l->stale_ns = stale;
    l->sup_pid = (int32_t)pid;
    l->sup_start = start;
    return 0;
}
