/*
 * liveness.c - whether a channel handle may still send and receive (pyfast.h,
 * struct pyf_liveness), and the error that says it may not.
 */
#include "pyfast.h"

#include "procstat.h"

int pyf_gone(const struct pyf_liveness *l)
{
    if (pyf_revoked(l))
        return PYF_GONE_CLOSED;
    if (l->heartbeat) {
        int64_t beat = atomic_load_explicit((const _Atomic int64_t *)l->heartbeat,
                                            memory_order_relaxed);
        /* a stale heartbeat alone is a supervisor slow to beat (stopped, starved): its
         * workers carry on, and so do its channels, until its process is gone */
        if (rtudp_now_ns() - beat > l->stale_ns && rtudp_pid_exited_since(l->sup_pid, l->sup_start))
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
