/* args.c - arguments in, errors out: what every type of _fast checks and raises alike. */
#include "pyfast.h"

#include <errno.h>

PyObject *pyf_RtUdpError, *pyf_BadSegmentError, *pyf_BackPressureError;

int pyf_parse(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
              const char *const *names, int n, int required, PyObject **out)
{
    if (nargs > n) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fn, n, nargs);
        return -1;
    }
    for (int i = 0; i < n; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int i = 0;
        while (i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
            i++;
        if (i == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fn, key);
            return -1;
        }
        if (out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fn,
                         names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (int i = 0; i < required; i++)
        if (!out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fn, names[i]);
            return -1;
        }
    return 0;
}

int pyf_get_i64(PyObject *o, int64_t dflt, const char *what, int64_t *v)
{
    if (!o || o == Py_None) {
        *v = dflt;
        return 0;
    }
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %R", what, o);
        return -1;
    }
    long long x = PyLong_AsLongLong(o);
    if (x == -1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "%s %R does not fit in a signed 64-bit integer", what, o);
        return -1;
    }
    *v = x;
    return 0;
}

int pyf_get_flags(PyObject *o, uint16_t *v)
{
    int64_t x;
    if (pyf_get_i64(o, 0, "flags", &x) < 0)
        return -1;
    if (x < 0 || x > 0xFFFF) {
        PyErr_Format(PyExc_ValueError, "flags must be in 0..65535, got %lld", (long long)x);
        return -1;
    }
    *v = (uint16_t)x;
    return 0;
}

int pyf_get_count(PyObject *o, Py_ssize_t dflt, const char *what, Py_ssize_t *v)
{
    int64_t x;
    if (pyf_get_i64(o, dflt, what, &x) < 0)
        return -1;
    if (x < 1) {
        PyErr_Format(PyExc_ValueError, "%s must be an int >= 1, got %lld", what, (long long)x);
        return -1;
    }
    *v = x > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)x;
    return 0;
}

int pyf_max_n_arg(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t *max_n)
{
    if (nargs != 1 || pyf_get_count(args[0], 1024, "max_n", max_n) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_get_many_nowait(max_n)");
        return -1;
    }
    return 0;
}

PyObject *pyf_closed_error(struct pyf_port_head *h)
{
    PyErr_Format(PyExc_ValueError, "ring %R is closed", h->name ? h->name : Py_None);
    return NULL;
}

PyObject *pyf_too_big(struct pyf_port_head *h, Py_ssize_t len)
{
    PyErr_Format(PyExc_ValueError,
                 "record of %zd bytes is larger than the ring's max_payload of %llu bytes "
                 "(capacity %llu bytes / 4 - header, at most %d)",
                 len, (unsigned long long)h->max_payload, (unsigned long long)h->capacity,
                 RTUDP_MAX_PAYLOAD);
    return NULL;
}

PyObject *pyf_ring_error(struct pyf_port_head *h, int rc, const char *what)
{
    if (rc == RTUDP_ECORRUPT)
        PyErr_Format(pyf_BadSegmentError, "%s: ring %R is corrupt (a record failed validation)",
                     what, h->name);
    else if (rc == RTUDP_ESYS)
        PyErr_SetFromErrno(PyExc_OSError);
    else
        PyErr_Format(pyf_RtUdpError, "%s: ring %R returned code %d", what, h->name, rc);
    return NULL;
}

int pyf_socket_args(PyObject *const *args, Py_ssize_t nargs, const char *call,
                    const char *address_name, const char *extra_name,
                    struct pyf_socket_args *out)
{
    int64_t pid, fd, family, port;
    if (nargs != 6 || pyf_get_i64(args[0], 0, "pid", &pid) < 0 ||
        pyf_get_i64(args[1], 0, "fd", &fd) < 0 ||
        pyf_get_i64(args[2], 0, "family", &family) < 0 ||
        pyf_get_i64(args[3], 0, "port", &port) < 0 ||
        pyf_get_i64(args[5], 0, extra_name, &out->extra) < 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "%s(pid, fd, family, port, %s, %s)", call,
                         address_name, extra_name);
        return -1;
    }
    out->address = PyLong_AsVoidPtr(args[4]);
    if (PyErr_Occurred())
        return -1;
    if (pid > INT32_MAX || fd > INT32_MAX || family > INT32_MAX || port > UINT16_MAX ||
        !out->address) {
        PyErr_Format(PyExc_ValueError, "%s: pid %lld fd %lld family %lld port %lld out of range",
                     call, (long long)pid, (long long)fd, (long long)family, (long long)port);
        return -1;
    }
    out->pid = (int)pid;
    out->fd = (int)fd;
    out->family = (int)family;
    out->port = (uint16_t)port;
    return 0;
}
