/*
 * rtwait.c - the module's functions for a thread that waits at real-time priority
 * (../rt_wait.h); rtudp.RealtimeWaits is the API above them.
 */
#include "pyfast.h"
#include "rt_wait.h"

/* rt_wait_enter(priority, budget_ns) -> None; ValueError for a bad value, PermissionError
 * (an OSError) when SCHED_FIFO is not permitted */
static PyObject *rt_wait_enter(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    int64_t priority, budget;
    if (nargs != 2 || pyf_get_i64(args[0], 0, "priority", &priority) < 0 ||
        pyf_get_i64(args[1], 0, "budget_ns", &budget) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "rt_wait_enter(priority, budget_ns)");
        return NULL;
    }
    if (priority < INT32_MIN || priority > INT32_MAX)
        priority = INT32_MIN; /* out of every range: named as such below */
    struct rtudp_check why = {0};
    int rc = rtudp_rt_wait_enter((int)priority, budget, &why);
    if (rc == RTUDP_EINVAL)
        return PyErr_Format(PyExc_ValueError, "%s", why.msg);
    if (rc != RTUDP_OK) {
        int err = errno;
        PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", err, why.msg);
        if (exc) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *rt_wait_leave(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    struct rtudp_check why = {0};
    if (rtudp_rt_wait_leave(&why) != RTUDP_OK)
        return PyErr_Format(PyExc_OSError, "%s", why.msg);
    Py_RETURN_NONE;
}

/* rt_wait_counts() -> (on, realtime, priority, budget_ns, demotions, promotions) */
static PyObject *rt_wait_counts(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    struct rtudp_rt_wait_counts c;
    rtudp_rt_wait_counts(&c);
    return Py_BuildValue("(NNiLKK)", PyBool_FromLong(c.on), PyBool_FromLong(c.realtime),
                         c.priority, (long long)c.budget_ns, (unsigned long long)c.demotions,
                         (unsigned long long)c.promotions);
}

/* rt_wait_hook() -> int: this thread's before-sleep hook in this module (0: none), for
 * the cffi module's copy of the waits (ring.h, rtudp_set_before_sleep) */
static PyObject *rt_wait_hook(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyLong_FromVoidPtr((void *)(uintptr_t)rtudp_before_sleep);
}

int pyf_rtwait_constants(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "RT_WAIT_MIN_BUDGET_NS", RTUDP_RT_WAIT_MIN_BUDGET_NS) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "RT_WAIT_MAX_BUDGET_NS", RTUDP_RT_WAIT_MAX_BUDGET_NS);
}

PyMethodDef pyf_rtwait_methods[] = {
    {"rt_wait_enter", (PyCFunction)(void (*)(void))rt_wait_enter, METH_FASTCALL,
     "rt_wait_enter(priority, budget_ns): this thread waits at SCHED_FIFO priority "
     "(csrc/rt_wait.h)"},
    {"rt_wait_leave", rt_wait_leave, METH_NOARGS,
     "rt_wait_leave(): the policy this thread had at rt_wait_enter back"},
    {"rt_wait_hook", rt_wait_hook, METH_NOARGS,
     "rt_wait_hook() -> int: this thread's before-sleep hook (0: none)"},
    {"rt_wait_counts", rt_wait_counts, METH_NOARGS,
     "rt_wait_counts() -> (on, realtime, priority, budget_ns, demotions, promotions)"},
    {NULL, NULL, 0, NULL},
};
