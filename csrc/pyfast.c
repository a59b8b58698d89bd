/*
 * pyfast.c - rtudp.shmring._fast: the rings' per-call and batch paths as CPython
 * methods (psutil style: thin C, the API lives in Python above it).
 *
 * Everything else is bound through cffi (rtudp.shmring._native).  These paths are
 * not, because a cffi call converts its arguments, releases and re-takes the GIL
 * and cannot return a bytes object; measured here that costs ~220 ns per call,
 * several times the ring operation itself.  As METH_FASTCALL methods of the C base
 * types of MpscRing / BroadcastRing / BroadcastReader they cost tens of ns, and a
 * batch becomes one loop in C that builds the list[bytes] directly.
 *
 * Non-blocking calls keep the GIL (they take nanoseconds); a call that may wait
 * releases it around the wait.  A closed ring is "unbound": every method checks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "direct_send.h"
#include "ring.h"
#include "rtudp_shm.h"

static PyObject *RtUdpError, *BadSegmentError, *BackPressureError;

/* ------------------------------------------------------------------ helpers */

/*
 * Positional-or-keyword arguments for METH_FASTCALL|METH_KEYWORDS: fills out[i]
 * (borrowed, NULL when absent) for names[0..n), the first `required` mandatory.
 */
static int parse(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
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

static int get_i64(PyObject *o, int64_t dflt, const char *what, int64_t *v)
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

static int get_flags(PyObject *o, uint16_t *v)
{
    int64_t x;
    if (get_i64(o, 0, "flags", &x) < 0)
        return -1;
    if (x < 0 || x > 0xFFFF) {
        PyErr_Format(PyExc_ValueError, "flags must be in 0..65535, got %lld", (long long)x);
        return -1;
    }
    *v = (uint16_t)x;
    return 0;
}

static int get_count(PyObject *o, Py_ssize_t dflt, const char *what, Py_ssize_t *v)
{
    int64_t x;
    if (get_i64(o, dflt, what, &x) < 0)
        return -1;
    if (x < 1) {
        PyErr_Format(PyExc_ValueError, "%s must be an int >= 1, got %lld", what, (long long)x);
        return -1;
    }
    *v = x > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)x;
    return 0;
}

/* A payload argument: bytes directly, anything else through the buffer protocol. */
struct payload {
    Py_buffer view;
    int has_view;
    const char *data;
    Py_ssize_t len;
};

static int payload_get(PyObject *o, struct payload *p)
{
    p->has_view = 0;
    if (PyBytes_CheckExact(o)) {
        p->data = PyBytes_AS_STRING(o);
        p->len = PyBytes_GET_SIZE(o);
        return 0;
    }
    if (PyObject_GetBuffer(o, &p->view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "payload must be bytes or a contiguous buffer, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    p->has_view = 1;
    p->data = p->view.buf;
    p->len = p->view.len;
    return 0;
}

static void payload_release(struct payload *p)
{
    if (p->has_view)
        PyBuffer_Release(&p->view);
}

/* What a port needs to name itself in errors and to check it is still mapped. */
struct port_head {
    PyObject *name;
    int bound;
    uint64_t capacity;
    uint64_t max_payload;
};

static PyObject *closed_error(struct port_head *h)
{
    PyErr_Format(PyExc_ValueError, "ring %R is closed", h->name ? h->name : Py_None);
    return NULL;
}

static PyObject *too_big(struct port_head *h, Py_ssize_t len)
{
    PyErr_Format(PyExc_ValueError,
                 "record of %zd bytes is larger than the ring's max_payload of %llu bytes "
                 "(capacity %llu bytes / 4 - header, at most %d)",
                 len, (unsigned long long)h->max_payload, (unsigned long long)h->capacity,
                 RTUDP_MAX_PAYLOAD);
    return NULL;
}

static PyObject *ring_error(struct port_head *h, int rc, const char *what)
{
    if (rc == RTUDP_ECORRUPT)
        PyErr_Format(BadSegmentError, "%s: ring %R is corrupt (a record failed validation)", what,
                     h->name);
    else if (rc == RTUDP_ESYS)
        PyErr_SetFromErrno(PyExc_OSError);
    else
        PyErr_Format(RtUdpError, "%s: ring %R returned code %d", what, h->name, rc);
    return NULL;
}

/* _bind(name, address, avail): validate the ring mapped at address (cffi gives it). */
static int bind_args(PyObject *const *args, Py_ssize_t nargs, PyObject **name, void **mem,
                     uint64_t *avail)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_bind(name, address, avail)");
        return -1;
    }
    *name = args[0];
    *mem = PyLong_AsVoidPtr(args[1]);
    *avail = PyLong_AsUnsignedLongLong(args[2]);
    return PyErr_Occurred() ? -1 : 0;
}

/* Every port type starts like this, so bind/unbind/dealloc/traverse are shared. */
typedef struct {
    PyObject_HEAD
    struct port_head h;
} Port;

/* validates the ring at mem and fills the type's view; RTUDP_OK or why */
typedef int (*attach_fn)(Port *self, void *mem, uint64_t avail, struct rtudp_check *why);

static PyObject *port_bind(Port *self, PyObject *const *args, Py_ssize_t nargs, attach_fn attach)
{
    PyObject *name;
    void *mem;
    uint64_t avail;
    if (bind_args(args, nargs, &name, &mem, &avail) < 0)
        return NULL;
    struct rtudp_check why;
    if (attach(self, mem, avail, &why) != RTUDP_OK) {
        PyErr_SetString(BadSegmentError, why.msg);
        return NULL;
    }
    Py_XSETREF(self->h.name, Py_NewRef(name));
    self->h.bound = 1;
    Py_RETURN_NONE;
}

static PyObject *port_unbind(Port *self, PyObject *unused)
{
    (void)unused;
    self->h.bound = 0; /* every method checks it before touching the view */
    Py_RETURN_NONE;
}

static void port_dealloc(Port *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->h.name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int port_traverse(Port *self, visitproc visit, void *arg)
{
    Py_VISIT(self->h.name);
    return 0;
}

/*
 * (data, <time>, flags) as try_put and write take them, checked against the ring:
 * on success *p holds the payload and must be released.
 */
static int record_args(struct port_head *h, const char *fn, const char *time_name,
                       PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                       struct payload *p, int64_t *time_ns, uint16_t *flags)
{
    const char *const names[] = {"data", time_name, "flags"};
    PyObject *a[3];
    if (parse(fn, args, nargs, kwnames, names, 3, 1, a) < 0 ||
        get_i64(a[1], 0, time_name, time_ns) < 0 || get_flags(a[2], flags) < 0)
        return -1;
    if (!h->bound) {
        closed_error(h);
        return -1;
    }
    if (payload_get(a[0], p) < 0)
        return -1;
    if (p->len > (Py_ssize_t)h->max_payload) {
        too_big(h, p->len);
        payload_release(p);
        return -1;
    }
    return 0;
}

/* All or nothing: every item a buffer of at most max_payload bytes. */
static int check_batch(struct port_head *h, PyObject **items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        struct payload p;
        if (payload_get(items[i], &p) < 0)
            return -1;
        Py_ssize_t len = p.len;
        payload_release(&p);
        if (len > (Py_ssize_t)h->max_payload) {
            too_big(h, len);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ MpscPort */

typedef struct {
    PyObject_HEAD
    struct port_head h;
    struct rtudp_mpsc m;
    /* _send's configuration (_configure_send): NULL on_fail = not configured */
    PyObject *on_fail;
    Py_ssize_t send_limit;
    struct rtudp_direct direct; /* _send's immediates on the socket itself (off: zero) */
} MpscPort;

static int mpsc_traverse(MpscPort *self, visitproc visit, void *arg)
{
    Py_VISIT(self->h.name);
    Py_VISIT(self->on_fail);
    return 0;
}

static int mpsc_clear(MpscPort *self)
{
    Py_CLEAR(self->on_fail); /* the channel that owns us is usually on_fail's self */
    return 0;
}

static void mpsc_dealloc(MpscPort *self)
{
    PyObject_GC_UnTrack(self);
    rtudp_direct_close(&self->direct);
    Py_CLEAR(self->on_fail);
    Py_CLEAR(self->h.name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int mpsc_attach(Port *port, void *mem, uint64_t avail, struct rtudp_check *why)
{
    MpscPort *self = (MpscPort *)port;
    int rc = rtudp_mpsc_attach(&self->m, mem, avail, why);
    self->h.capacity = self->m.capacity;
    self->h.max_payload = self->m.max_payload;
    return rc;
}

static PyObject *mpsc_bind(Port *self, PyObject *const *args, Py_ssize_t nargs)
{
    return port_bind(self, args, nargs, mpsc_attach);
}

static PyObject *mpsc_try_put(MpscPort *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    struct payload p;
    int64_t at_ns;
    uint16_t flags;
    if (record_args(&self->h, "try_put", "at_ns", args, nargs, kwnames, &p, &at_ns, &flags) < 0)
        return NULL;
    int rc = rtudp_mpsc_try_put(&self->m, p.data, (uint32_t)p.len, at_ns, flags);
    payload_release(&p);
    if (rc == RTUDP_OK)
        Py_RETURN_TRUE;
    if (rc == RTUDP_EFULL)
        Py_RETURN_FALSE;
    return ring_error(&self->h, rc, "put");
}

/*
 * _send(data, at_ns=None): a channel's whole send() in C for the common case, so a
 * call costs one C call instead of a Python frame around one: data bytes (or a
 * buffer) of at most send_limit bytes, at_ns None or an int >= 0, room in the ring.
 * Queues it (ringing the consumer's bell) and returns None.  Anything else -- a bad
 * argument, a full or closed ring -- returns on_fail(data, at_ns): the Python path,
 * which raises the API's own errors (or queues it after all).
 */
static PyObject *mpsc_send(MpscPort *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    static const char *const names[] = {"data", "at_ns"};
    PyObject *a[2];
    if (!self->on_fail) {
        PyErr_SetString(PyExc_RuntimeError, "_send() before _configure_send()");
        return NULL;
    }
    if (parse("send", args, nargs, kwnames, names, 2, 1, a) < 0)
        return NULL;
    int64_t at = 0;
    if (a[1] && a[1] != Py_None) {
        if (!PyLong_CheckExact(a[1]))
            goto slow;
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(a[1], &overflow);
        if (overflow || v < 0)
            goto slow;
        at = v;
    }
    if (!self->h.bound)
        goto slow;
    struct payload p;
    if (payload_get(a[0], &p) < 0) {
        PyErr_Clear();
        goto slow;
    }
    int rc = RTUDP_EINVAL;
    if (p.len <= self->send_limit)
        rc = at == 0 && rtudp_direct_try(&self->direct, &self->m, p.data, (uint32_t)p.len)
                 ? RTUDP_OK
                 : rtudp_mpsc_try_put(&self->m, p.data, (uint32_t)p.len, at, 0);
    payload_release(&p);
    if (rc == RTUDP_OK)
        Py_RETURN_NONE;
slow:;
    PyObject *call[2] = {a[0], a[1] ? a[1] : Py_None};
    return PyObject_Vectorcall(self->on_fail, call, 2, NULL);
}

/* _configure_send(limit, on_fail | None): _send's largest payload and its slow path */
static PyObject *mpsc_configure_send(MpscPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t limit;
    if (nargs != 2 || get_count(args[0], PY_SSIZE_T_MAX, "limit", &limit) < 0 ||
        (args[1] != Py_None && !PyCallable_Check(args[1]))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_configure_send(limit, on_fail | None)");
        return NULL;
    }
    if ((uint64_t)limit > self->h.max_payload)
        return PyErr_Format(PyExc_ValueError, "send limit %zd is over the ring's max payload "
                            "%llu", limit, (unsigned long long)self->h.max_payload);
    PyObject *old = self->on_fail;
    self->on_fail = args[1] == Py_None ? NULL : Py_NewRef(args[1]);
    self->send_limit = limit;
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

/*
 * _configure_direct(pid, fd, family, port, line_address, quiet_ns) -> None | str:
 * let _send make immediate sends itself on a duplicate of fd `fd` of process `pid`
 * (direct_send.h), counting them in the struct rtudp_direct_tx at line_address.
 * None when on; else why not (a str: the ring path stays, nothing else changes).
 */
static PyObject *mpsc_configure_direct(MpscPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t pid, fd, family, port, quiet;
    if (nargs != 6 || get_i64(args[0], 0, "pid", &pid) < 0 || get_i64(args[1], 0, "fd", &fd) < 0 ||
        get_i64(args[2], 0, "family", &family) < 0 || get_i64(args[3], 0, "port", &port) < 0 ||
        get_i64(args[5], 0, "quiet_ns", &quiet) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_configure_direct(pid, fd, family, port, "
                                             "line_address, quiet_ns)");
        return NULL;
    }
    void *line = PyLong_AsVoidPtr(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (!self->h.bound)
        return closed_error(&self->h);
    if (pid > INT32_MAX || fd > INT32_MAX || family > INT32_MAX || port > UINT16_MAX || !line)
        return PyErr_Format(PyExc_ValueError, "_configure_direct: pid %lld fd %lld family %lld "
                            "port %lld out of range", (long long)pid, (long long)fd,
                            (long long)family, (long long)port);
    rtudp_direct_close(&self->direct);
    struct rtudp_check why = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rtudp_direct_open(&self->direct, (int)pid, (int)fd, (int)family, (uint16_t)port, line,
                           quiet, &why);
    Py_END_ALLOW_THREADS
    if (rc != RTUDP_OK)
        return PyUnicode_FromString(why.msg);
    Py_RETURN_NONE;
}

/* _close_direct(): no more direct sends (the duplicate socket is closed) */
static PyObject *mpsc_close_direct(MpscPort *self, PyObject *unused)
{
    (void)unused;
    rtudp_direct_close(&self->direct);
    Py_RETURN_NONE;
}

/* _direct_on() -> bool: direct sends on (off once the channel revoked them) */
static PyObject *mpsc_direct_on(MpscPort *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(rtudp_direct_on(&self->direct));
}

/* _unbind(): also ends direct sends, which must not outlive the channel's mapping */
static PyObject *mpsc_unbind(MpscPort *self, PyObject *unused)
{
    rtudp_direct_close(&self->direct);
    return port_unbind((Port *)self, unused);
}

/* _set_wake(address | 0): commits also ring the doorbell at address (a worker's) */
static PyObject *mpsc_set_wake(MpscPort *self, PyObject *address)
{
    if (!self->h.bound)
        return closed_error(&self->h);
    void *bell = address == Py_None ? NULL : PyLong_AsVoidPtr(address);
    if (PyErr_Occurred())
        return NULL;
    rtudp_mpsc_set_wake(&self->m, bell);
    Py_RETURN_NONE;
}

/* drain sink: one bytes object per record, into a list or a single slot */
struct bytes_sink {
    PyObject *list;
    PyObject *one;
    int failed;
};

static int bytes_record(void *ctx, const struct rtudp_tx_record *rec, const uint8_t *payload,
                        uint32_t len)
{
    struct bytes_sink *s = ctx;
    (void)rec;
    PyObject *b = PyBytes_FromStringAndSize((const char *)payload, len);
    if (!b) {
        s->failed = 1;
        return 0;
    }
    if (!s->list) {
        s->one = b;
        return 1;
    }
    int err = PyList_Append(s->list, b);
    Py_DECREF(b);
    if (err < 0) {
        s->failed = 1;
        return 0;
    }
    return 1;
}

static PyObject *mpsc_try_get(MpscPort *self, PyObject *unused)
{
    (void)unused;
    if (!self->h.bound)
        return closed_error(&self->h);
    struct bytes_sink s = {NULL, NULL, 0};
    int64_t n = rtudp_mpsc_drain(&self->m, 1, bytes_record, &s);
    if (s.failed)
        return NULL;
    if (n > 0)
        return s.one;
    if (n == RTUDP_EMPTY)
        Py_RETURN_NONE;
    return ring_error(&self->h, (int)n, "get");
}

static PyObject *mpsc_get_many_nowait(MpscPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t max_n;
    if (nargs != 1 || get_count(args[0], 1024, "max_n", &max_n) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_get_many_nowait(max_n)");
        return NULL;
    }
    if (!self->h.bound)
        return closed_error(&self->h);
    struct bytes_sink s = {PyList_New(0), NULL, 0};
    if (!s.list)
        return NULL;
    int64_t n = rtudp_mpsc_drain(&self->m, (uint64_t)max_n, bytes_record, &s);
    if (PyList_GET_SIZE(s.list) > 0) {
        /* the records are out of the ring: hand them over; a failure after them
         * (no memory, a corrupt record) shows again on the next call */
        if (s.failed)
            PyErr_Clear();
        return s.list;
    }
    Py_DECREF(s.list);
    if (s.failed)
        return NULL;
    return n == RTUDP_EMPTY ? PyList_New(0) : ring_error(&self->h, (int)n, "get_many");
}

/* _put_many(items, at_ns, flags, deadline_ns, spin_ns) -> count; BackPressureError
 * (with .sent) if the ring stays full until the deadline. */
static PyObject *mpsc_put_many(MpscPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "_put_many(items, at_ns, flags, deadline_ns, spin_ns)");
        return NULL;
    }
    int64_t at_ns, deadline, spin;
    uint16_t flags;
    if (get_i64(args[1], 0, "at_ns", &at_ns) < 0 || get_flags(args[2], &flags) < 0 ||
        get_i64(args[3], INT64_MAX, "deadline_ns", &deadline) < 0 ||
        get_i64(args[4], 0, "spin_ns", &spin) < 0)
        return NULL;
    if (!self->h.bound)
        return closed_error(&self->h);
    PyObject *seq = PySequence_Fast(args[0], "put_many() takes a list of bytes");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    if (check_batch(&self->h, items, n) < 0)
        goto fail;
    Py_ssize_t sent = 0;
    for (; sent < n; sent++) {
        struct payload p;
        if (payload_get(items[sent], &p) < 0)
            goto fail;
        int rc = rtudp_mpsc_try_put_quiet(&self->m, p.data, (uint32_t)p.len, at_ns, flags);
        while (rc == RTUDP_EFULL || rc == RTUDP_EINTR) {
            /* wait for room with the GIL released; rtudp_mpsc_put wakes the consumer
             * first so it drains what we queued */
            Py_BEGIN_ALLOW_THREADS
            rc = rtudp_mpsc_put(&self->m, p.data, (uint32_t)p.len, at_ns, flags, deadline, spin);
            Py_END_ALLOW_THREADS
            if (rc == RTUDP_EINTR && PyErr_CheckSignals() < 0) {
                payload_release(&p);
                rtudp_mpsc_wake(&self->m);
                goto fail;
            }
        }
        payload_release(&p);
        if (rc == RTUDP_ETIMEDOUT) {
            rtudp_mpsc_wake(&self->m);
            PyObject *exc = PyObject_CallFunction(
                BackPressureError, "Un",
                PyUnicode_FromFormat("ring %R stayed full until the deadline: %zd of %zd records "
                                     "queued", self->h.name, sent, n),
                sent);
            if (exc) {
                PyErr_SetObject(BackPressureError, exc);
                Py_DECREF(exc);
            }
            goto fail;
        }
        if (rc != RTUDP_OK) {
            rtudp_mpsc_wake(&self->m);
            ring_error(&self->h, rc, "put_many");
            goto fail;
        }
    }
    if (n)
        rtudp_mpsc_wake(&self->m);
    Py_DECREF(seq);
    return PyLong_FromSsize_t(n);
fail:
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef mpsc_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))mpsc_bind, METH_FASTCALL,
     "_bind(name, address, avail): validate and use the MPSC ring mapped at address."},
    {"_unbind", (PyCFunction)mpsc_unbind, METH_NOARGS, "Forget the mapping (the ring closes)."},
    {"_configure_direct", (PyCFunction)(void (*)(void))mpsc_configure_direct, METH_FASTCALL,
     "_configure_direct(pid, fd, family, port, line_address, quiet_ns) -> None | str:\n"
     "_send makes immediate sends itself on a duplicate of the socket; why not, if not."},
    {"_close_direct", (PyCFunction)mpsc_close_direct, METH_NOARGS,
     "_close_direct(): no more direct sends."},
    {"_direct_on", (PyCFunction)mpsc_direct_on, METH_NOARGS,
     "_direct_on() -> bool: direct sends on (off once the channel revoked them)."},
    {"_set_wake", (PyCFunction)mpsc_set_wake, METH_O,
     "_set_wake(address | None): commits also ring the doorbell at address."},
    {"_send", (PyCFunction)(void (*)(void))mpsc_send, METH_FASTCALL | METH_KEYWORDS,
     "_send(data, at_ns=None) -> None\n\n"
     "Queue data if it is a buffer within the send limit, at_ns None or an int >= 0, and\n"
     "there is room; otherwise return on_fail(data, at_ns) (see _configure_send)."},
    {"_configure_send", (PyCFunction)(void (*)(void))mpsc_configure_send, METH_FASTCALL,
     "_configure_send(limit, on_fail | None): _send's largest payload and slow path."},
    {"try_put", (PyCFunction)(void (*)(void))mpsc_try_put, METH_FASTCALL | METH_KEYWORDS,
     "try_put(data, at_ns=0, flags=0) -> bool\n\n"
     "Queue one record if there is room now; False if the ring is full.\n"
     "ValueError if data is larger than max_payload."},
    {"try_get", (PyCFunction)mpsc_try_get, METH_NOARGS,
     "try_get() -> bytes | None\n\nThe next record's payload, or None if there is none now."},
    {"_get_many_nowait", (PyCFunction)(void (*)(void))mpsc_get_many_nowait, METH_FASTCALL,
     "_get_many_nowait(max_n) -> list[bytes]: what can be read now, up to max_n."},
    {"_put_many", (PyCFunction)(void (*)(void))mpsc_put_many, METH_FASTCALL,
     "_put_many(items, at_ns, flags, deadline_ns, spin_ns) -> int"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject MpscPortType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rtudp.shmring._fast.MpscPort",
    .tp_basicsize = sizeof(MpscPort),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "C base of MpscRing: its per-call and batch paths.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)mpsc_dealloc,
    .tp_traverse = (traverseproc)mpsc_traverse,
    .tp_clear = (inquiry)mpsc_clear,
    .tp_methods = mpsc_methods,
};

/* ------------------------------------------------------------------ BcastPort */

typedef struct {
    PyObject_HEAD
    struct port_head h;
    struct rtudp_bcast b;
} BcastPort;

static int bcast_attach(Port *port, void *mem, uint64_t avail, struct rtudp_check *why)
{
    BcastPort *self = (BcastPort *)port;
    int rc = rtudp_bcast_attach(&self->b, mem, avail, why);
    self->h.capacity = self->b.capacity;
    self->h.max_payload = self->b.max_payload;
    return rc;
}

static PyObject *bcast_bind(Port *self, PyObject *const *args, Py_ssize_t nargs)
{
    return port_bind(self, args, nargs, bcast_attach);
}

static PyObject *bcast_write(BcastPort *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    struct payload p;
    int64_t time_ns;
    uint16_t flags;
    if (record_args(&self->h, "write", "time_ns", args, nargs, kwnames, &p, &time_ns, &flags) < 0)
        return NULL;
    int rc = rtudp_bcast_write(&self->b, p.data, (uint32_t)p.len, flags, time_ns);
    payload_release(&p);
    if (rc == RTUDP_OK)
        Py_RETURN_NONE;
    return ring_error(&self->h, rc, "write");
}

static PyObject *bcast_write_many(BcastPort *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    static const char *const names[] = {"items", "time_ns", "flags"};
    PyObject *a[3];
    int64_t time_ns;
    uint16_t flags;
    if (parse("write_many", args, nargs, kwnames, names, 3, 1, a) < 0 ||
        get_i64(a[1], 0, "time_ns", &time_ns) < 0 || get_flags(a[2], &flags) < 0)
        return NULL;
    if (!self->h.bound)
        return closed_error(&self->h);
    PyObject *seq = PySequence_Fast(a[0], "write_many() takes a list of bytes");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    if (check_batch(&self->h, items, n) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        struct payload p;
        if (payload_get(items[i], &p) < 0)
            goto fail;
        int rc = rtudp_bcast_write(&self->b, p.data, (uint32_t)p.len, flags, time_ns);
        payload_release(&p);
        if (rc < 0) {
            ring_error(&self->h, (int)rc, "write_many");
            goto fail;
        }
    }
    Py_DECREF(seq);
    return PyLong_FromSsize_t(n);
fail:
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef bcast_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))bcast_bind, METH_FASTCALL,
     "_bind(name, address, avail): validate and use the broadcast ring mapped at address."},
    {"_unbind", (PyCFunction)port_unbind, METH_NOARGS, "Forget the mapping (the ring closes)."},
    {"write", (PyCFunction)(void (*)(void))bcast_write, METH_FASTCALL | METH_KEYWORDS,
     "write(data, time_ns=0, flags=0)\n\n"
     "Publish one record; never waits (overwrites the oldest). One writer per ring."},
    {"write_many", (PyCFunction)(void (*)(void))bcast_write_many, METH_FASTCALL | METH_KEYWORDS,
     "write_many(items, time_ns=0, flags=0) -> int\n\n"
     "Publish every record of items; all or none if one is too large."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BcastPortType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rtudp.shmring._fast.BcastPort",
    .tp_basicsize = sizeof(BcastPort),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "C base of BroadcastRing: the writer's paths.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)port_dealloc,
    .tp_traverse = (traverseproc)port_traverse,
    .tp_methods = bcast_methods,
};

/* ------------------------------------------------------------------ BcastCursor */

typedef struct {
    PyObject_HEAD
    BcastPort *port; /* keeps the ring object alive; its h.bound says if it is mapped */
    struct rtudp_bcast_reader rd;
    uint8_t *buf;    /* max_payload bytes for single reads */
    /* the last datagram source as a (host, port) tuple: a channel's packets mostly
     * come from one peer, and formatting an address costs more than the rest */
    struct rtudp_sockaddr last_addr;
    PyObject *last_source;
    /* _recv: packet type, the channel's name (for TimeoutError) and the slow path */
    PyObject *packet_type, *chan_name, *on_slow;
    int64_t spin_ns;
} BcastCursor;

static PyObject *cursor_bind(BcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyObject_TypeCheck(args[0], &BcastPortType)) {
        PyErr_SetString(PyExc_TypeError, "_bind_reader(ring, from_oldest)");
        return NULL;
    }
    BcastPort *port = (BcastPort *)args[0];
    if (!port->h.bound)
        return closed_error(&port->h);
    int from_oldest = PyObject_IsTrue(args[1]);
    if (from_oldest < 0)
        return NULL;
    uint8_t *buf = PyMem_Malloc(port->b.max_payload ? port->b.max_payload : 1);
    if (!buf)
        return PyErr_NoMemory();
    PyMem_Free(self->buf);
    self->buf = buf;
    Py_XSETREF(self->port, (BcastPort *)Py_NewRef(port));
    rtudp_bcast_reader_init(&self->port->b, &self->rd, from_oldest);
    Py_RETURN_NONE;
}

static BcastPort *cursor_port(BcastCursor *self)
{
    if (!self->port) {
        PyErr_SetString(PyExc_ValueError, "reader is not attached to a ring");
        return NULL;
    }
    if (!self->port->h.bound) {
        closed_error(&self->port->h);
        return NULL;
    }
    return self->port;
}

static PyObject *cursor_try_get_record(BcastCursor *self, PyObject *unused)
{
    (void)unused;
    BcastPort *port = cursor_port(self);
    if (!port)
        return NULL;
    uint32_t len;
    uint64_t seq, lost;
    int64_t time_ns;
    uint16_t flags;
    int rc = rtudp_bcast_read(&port->b, &self->rd, self->buf, (uint32_t)port->b.max_payload, &len,
                              &seq, &time_ns, &flags, &lost);
    if (rc == RTUDP_EMPTY)
        Py_RETURN_NONE;
    if (rc != RTUDP_OK)
        return ring_error(&port->h, rc, "read");
    return Py_BuildValue("(y#KLHK)", (const char *)self->buf, (Py_ssize_t)len,
                         (unsigned long long)seq, (long long)time_ns, flags,
                         (unsigned long long)lost);
}

static PyObject *cursor_get_many_nowait(BcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t max_n;
    if (nargs != 1 || get_count(args[0], 1024, "max_n", &max_n) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_get_many_nowait(max_n)");
        return NULL;
    }
    BcastPort *port = cursor_port(self);
    if (!port)
        return NULL;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    while (PyList_GET_SIZE(list) < max_n) {
        uint32_t len;
        int rc = rtudp_bcast_read(&port->b, &self->rd, self->buf, (uint32_t)port->b.max_payload,
                                  &len, NULL, NULL, NULL, NULL);
        if (rc == RTUDP_EMPTY)
            break;
        if (rc != RTUDP_OK) {
            if (PyList_GET_SIZE(list))
                break; /* hand over what we have; the next call reports it */
            Py_DECREF(list);
            return ring_error(&port->h, rc, "read_many");
        }
        PyObject *b = PyBytes_FromStringAndSize((const char *)self->buf, len);
        if (!b || PyList_Append(list, b) < 0) {
            Py_XDECREF(b);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(b);
    }
    return list;
}

/* (host, port) of a datagram source, None when the record names none */
static PyObject *source_tuple(BcastCursor *self, const struct rtudp_sockaddr *a)
{
    if (self->last_source && memcmp(a, &self->last_addr, sizeof *a) == 0)
        return Py_NewRef(self->last_source);
    int af = a->family == AF_INET ? AF_INET : a->family == AF_INET6 ? AF_INET6 : 0;
    if (!af)
        Py_RETURN_NONE;
    char host[INET6_ADDRSTRLEN];
    if (!inet_ntop(af, a->addr, host, sizeof host)) /* cannot fail for these families */
        return PyErr_SetFromErrno(PyExc_OSError);
    PyObject *t = Py_BuildValue("(sH)", host, a->port);
    if (!t)
        return NULL;
    Py_XSETREF(self->last_source, Py_NewRef(t));
    self->last_addr = *a;
    return t;
}

/*
 * One RX record (struct rtudp_rx_meta + datagram) as packet_type(data, source,
 * rx_ns, hw_ns, seq, lost).  packet_type is a NamedTuple: built as the tuple it is
 * (as structseq does), since calling its Python __new__ costs more than the read.
 */
static PyObject *rx_packet(BcastCursor *self, PyTypeObject *type, uint32_t len, uint64_t lost)
{
    if (len < sizeof(struct rtudp_rx_meta)) {
        PyErr_Format(BadSegmentError, "RX record of %u bytes, shorter than its %zu-byte meta",
                     len, sizeof(struct rtudp_rx_meta));
        return NULL;
    }
    struct rtudp_rx_meta m;
    memcpy(&m, self->buf, sizeof m);
    PyObject *items[6] = {
        PyBytes_FromStringAndSize((const char *)self->buf + sizeof m, len - sizeof m),
        source_tuple(self, &m.source),
        PyLong_FromLongLong(m.rx_ns),
        PyLong_FromLongLong(m.hw_ns),
        PyLong_FromUnsignedLongLong(m.rx_seq),
        PyLong_FromUnsignedLongLong(lost),
    };
    PyObject *pkt = NULL;
    for (int i = 0; i < 6; i++)
        if (!items[i])
            goto out;
    if (type->tp_basicsize == PyTuple_Type.tp_basicsize &&
        type->tp_itemsize == sizeof(PyObject *)) {
        pkt = type->tp_alloc(type, 6);
        if (pkt) {
            for (int i = 0; i < 6; i++)
                PyTuple_SET_ITEM(pkt, i, items[i]); /* steals */
            return pkt;
        }
    } else {
        pkt = PyObject_Vectorcall((PyObject *)type, items, 6, NULL);
    }
out:
    for (int i = 0; i < 6; i++)
        Py_XDECREF(items[i]);
    return pkt;
}

/* the next packet or None (deadline passed), waiting until deadline (0: do not wait) */
static PyObject *next_packet(BcastCursor *self, int64_t deadline, int64_t spin, PyTypeObject *type)
{
    for (;;) {
        /* looked up again after every wait: another thread may close the channel */
        BcastPort *port = cursor_port(self);
        if (!port)
            return NULL;
        uint32_t len;
        uint64_t lost;
        int rc = rtudp_bcast_read(&port->b, &self->rd, self->buf, (uint32_t)port->b.max_payload,
                                  &len, NULL, NULL, NULL, &lost);
        if (rc == RTUDP_OK)
            return rx_packet(self, type, len, lost);
        if (rc != RTUDP_EMPTY)
            return ring_error(&port->h, rc, "recv");
        if (deadline == 0)
            Py_RETURN_NONE;
        Py_BEGIN_ALLOW_THREADS
        rc = rtudp_bcast_wait(&port->b, &self->rd, deadline, spin);
        Py_END_ALLOW_THREADS
        if (rc == RTUDP_ETIMEDOUT)
            Py_RETURN_NONE;
        if (rc == RTUDP_EINTR) {
            if (PyErr_CheckSignals() < 0) /* Ctrl-C: KeyboardInterrupt from the handler */
                return NULL;
        } else if (rc != RTUDP_OK) {
            if (rc == RTUDP_ESYS)
                return PyErr_Format(PyExc_OSError, "futex wait failed: %s", strerror(errno));
            return PyErr_Format(RtUdpError, "wait failed with code %d", rc);
        }
    }
}

/*
 * _recv_packet(deadline_ns, spin_ns, packet_type) -> packet | None: the next RX record
 * as a packet, waiting (GIL released) until deadline_ns; deadline 0 = do not wait.
 * One C call for what was a read, a parse and a wait loop in Python: 2.2 µs -> tenths.
 */
static PyObject *cursor_recv_packet(BcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t deadline, spin;
    if (nargs != 3 || get_i64(args[0], INT64_MAX, "deadline_ns", &deadline) < 0 ||
        get_i64(args[1], 0, "spin_ns", &spin) < 0 || !PyType_Check(args[2]) ||
        !PyType_IsSubtype((PyTypeObject *)args[2], &PyTuple_Type)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError,
                            "_recv_packet(deadline_ns, spin_ns, packet_type: a tuple type)");
        return NULL;
    }
    return next_packet(self, deadline, spin, (PyTypeObject *)args[2]);
}

/*
 * Channel.recv(timeout=None) as one C call: the timeout as an exact float or int >= 0
 * (0: poll) or None; anything else, and a closed ring, go to the slow path (Python,
 * every check with its own error).  TimeoutError when the time passes.
 */
static PyObject *cursor_recv(BcastCursor *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    static const char *const names[] = {"timeout"};
    PyObject *a[1];
    if (!self->on_slow) {
        PyErr_SetString(PyExc_RuntimeError, "_recv() before _configure_recv()");
        return NULL;
    }
    if (parse("recv", args, nargs, kwnames, names, 1, 0, a) < 0)
        return NULL;
    PyObject *timeout = a[0] ? a[0] : Py_None;
    double secs;
    if (timeout == Py_None)
        secs = -1;
    else if (PyFloat_CheckExact(timeout))
        secs = PyFloat_AS_DOUBLE(timeout);
    else if (PyLong_CheckExact(timeout))
        secs = PyLong_AsDouble(timeout); /* > DBL_MAX: -1.0 with an error, slow path */
    else
        goto slow;
    if (timeout != Py_None && !(secs >= 0)) { /* negative, NaN, or a conversion error */
        PyErr_Clear();
        goto slow;
    }
    if (!self->port || !self->port->h.bound)
        goto slow;
    int64_t deadline = INT64_MAX; /* None: forever */
    if (secs == 0)
        deadline = 0;
    else if (secs > 0)
        deadline = secs < 9e9 ? rtudp_now_ns() + (int64_t)(secs * 1e9) : INT64_MAX;
    PyObject *pkt = next_packet(self, deadline, self->spin_ns, (PyTypeObject *)self->packet_type);
    if (pkt != Py_None)
        return pkt;
    Py_DECREF(pkt);
    return PyErr_Format(PyExc_TimeoutError, "no datagram on channel %R within %S s",
                        self->chan_name, timeout);
slow:;
    PyObject *call[1] = {timeout};
    return PyObject_Vectorcall(self->on_slow, call, 1, NULL);
}

/* _configure_recv(packet_type, channel_name, spin_ns, on_slow | None) */
static PyObject *cursor_configure_recv(BcastCursor *self, PyObject *const *args,
                                       Py_ssize_t nargs)
{
    int64_t spin;
    if (nargs != 4 || !PyType_Check(args[0]) ||
        !PyType_IsSubtype((PyTypeObject *)args[0], &PyTuple_Type) ||
        get_i64(args[2], 0, "spin_ns", &spin) < 0 ||
        (args[3] != Py_None && !PyCallable_Check(args[3]))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_configure_recv(packet_type: a tuple type, "
                                             "channel_name, spin_ns, on_slow | None)");
        return NULL;
    }
    Py_XSETREF(self->packet_type, Py_NewRef(args[0]));
    Py_XSETREF(self->chan_name, Py_NewRef(args[1]));
    Py_XSETREF(self->on_slow, args[3] == Py_None ? NULL : Py_NewRef(args[3]));
    self->spin_ns = spin;
    Py_RETURN_NONE;
}

/* _wait(deadline_ns, spin_ns) -> RTUDP_* code, with the GIL released */
static PyObject *cursor_wait(BcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t deadline, spin;
    if (nargs != 2 || get_i64(args[0], INT64_MAX, "deadline_ns", &deadline) < 0 ||
        get_i64(args[1], 0, "spin_ns", &spin) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_wait(deadline_ns, spin_ns)");
        return NULL;
    }
    BcastPort *port = cursor_port(self);
    if (!port)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rtudp_bcast_wait(&port->b, &self->rd, deadline, spin);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

static PyObject *cursor_get_lost(BcastCursor *self, void *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong(self->rd.lost);
}

static PyObject *cursor_get_lapped(BcastCursor *self, void *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong(self->rd.lapped);
}

static PyGetSetDef cursor_getset[] = {
    {"lost", (getter)cursor_get_lost, NULL, "Records this reader lost to laps, in total.", NULL},
    {"lapped", (getter)cursor_get_lapped, NULL, "How many times the writer lapped this reader.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef cursor_methods[] = {
    {"_bind_reader", (PyCFunction)(void (*)(void))cursor_bind, METH_FASTCALL,
     "_bind_reader(ring, from_oldest): start a cursor on ring."},
    {"_try_get_record", (PyCFunction)cursor_try_get_record, METH_NOARGS,
     "_try_get_record() -> (data, seq, time_ns, flags, lost) | None"},
    {"_get_many_nowait", (PyCFunction)(void (*)(void))cursor_get_many_nowait, METH_FASTCALL,
     "_get_many_nowait(max_n) -> list[bytes]: what can be read now, up to max_n."},
    {"_wait", (PyCFunction)(void (*)(void))cursor_wait, METH_FASTCALL,
     "_wait(deadline_ns, spin_ns) -> code: wait for a record, GIL released."},
    {"_recv", (PyCFunction)(void (*)(void))cursor_recv, METH_FASTCALL | METH_KEYWORDS,
     "_recv(timeout=None) -> packet: Channel.recv in C (see _configure_recv)."},
    {"_configure_recv", (PyCFunction)(void (*)(void))cursor_configure_recv, METH_FASTCALL,
     "_configure_recv(packet_type, channel_name, spin_ns, on_slow | None): what _recv builds, "
     "names, spins, and where it hands what it does not do itself."},
    {"_recv_packet", (PyCFunction)(void (*)(void))cursor_recv_packet, METH_FASTCALL,
     "_recv_packet(deadline_ns, spin_ns, packet_type) -> packet | None: the next RX record "
     "as packet_type(data, source, rx_ns, hw_ns, seq, lost), waiting until deadline_ns "
     "(0 = do not wait) with the GIL released."},
    {NULL, NULL, 0, NULL},
};

static void cursor_dealloc(BcastCursor *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->port);
    Py_CLEAR(self->last_source);
    Py_CLEAR(self->packet_type);
    Py_CLEAR(self->chan_name);
    Py_CLEAR(self->on_slow);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int cursor_traverse(BcastCursor *self, visitproc visit, void *arg)
{
    Py_VISIT(self->port);
    Py_VISIT(self->last_source);
    Py_VISIT(self->packet_type);
    Py_VISIT(self->chan_name);
    Py_VISIT(self->on_slow);
    return 0;
}

static int cursor_clear(BcastCursor *self)
{
    Py_CLEAR(self->port);
    Py_CLEAR(self->last_source);
    Py_CLEAR(self->packet_type);
    Py_CLEAR(self->chan_name);
    Py_CLEAR(self->on_slow);
    return 0;
}

static PyTypeObject BcastCursorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rtudp.shmring._fast.BcastCursor",
    .tp_basicsize = sizeof(BcastCursor),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "C base of BroadcastReader: one reader's cursor.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)cursor_dealloc,
    .tp_traverse = (traverseproc)cursor_traverse,
    .tp_clear = (inquiry)cursor_clear,
    .tp_methods = cursor_methods,
    .tp_getset = cursor_getset,
};

/* ------------------------------------------------------------------ module */

static struct PyModuleDef fast_module = {
    PyModuleDef_HEAD_INIT, "rtudp.shmring._fast",
    "The rings' per-call and batch paths as CPython methods (see pyfast.c).", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fast(void)
{
    PyObject *errors = PyImport_ImportModule("rtudp.shmring.errors");
    if (!errors)
        return NULL;
    RtUdpError = PyObject_GetAttrString(errors, "RtUdpError");
    BadSegmentError = PyObject_GetAttrString(errors, "BadSegmentError");
    BackPressureError = PyObject_GetAttrString(errors, "BackPressureError");
    Py_DECREF(errors);
    if (!RtUdpError || !BadSegmentError || !BackPressureError)
        return NULL;
    if (PyType_Ready(&MpscPortType) < 0 || PyType_Ready(&BcastPortType) < 0 ||
        PyType_Ready(&BcastCursorType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fast_module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "MpscPort", (PyObject *)&MpscPortType) < 0 ||
        PyModule_AddObjectRef(m, "BcastPort", (PyObject *)&BcastPortType) < 0 ||
        PyModule_AddObjectRef(m, "BcastCursor", (PyObject *)&BcastCursorType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
