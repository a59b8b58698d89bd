/* mpsc.c - MpscPort, the C base of MpscRing: put and get one record, or a batch. */
#include "pyfast.h"

static int mpsc_try_put_one(void *ring, const char *data, uint32_t len, int64_t at_ns,
                            uint16_t flags)
{
    return rtudp_mpsc_try_put(ring, data, len, at_ns, flags);
}

static PyObject *mpsc_try_put(PyfMpscPort *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    int rc = pyf_record_call(&self->h, "try_put", "at_ns", args, nargs, kwnames,
                             mpsc_try_put_one, &self->m);
    if (rc == RTUDP_OK)
        Py_RETURN_TRUE;
    if (rc == RTUDP_EFULL)
        Py_RETURN_FALSE;
    return rc == PYF_ARGS_FAILED ? NULL : pyf_ring_error(&self->h, rc, "put");
}

/* an address argument of the _set_* calls: None (NULL) or an int; -1 with the error set */
static int address_arg(PyObject *arg, void **out)
{
    *out = arg == Py_None ? NULL : PyLong_AsVoidPtr(arg);
    return PyErr_Occurred() ? -1 : 0;
}

/* _set_wake(address | 0): commits also ring the doorbell at address (a worker's) */
static PyObject *mpsc_set_wake(PyfMpscPort *self, PyObject *address)
{
    if (!self->h.bound)
        return pyf_closed_error(&self->h);
    void *bell;
    if (address_arg(address, &bell) < 0)
        return NULL;
    rtudp_mpsc_set_wake(&self->m, bell);
    Py_RETURN_NONE;
}

/* _set_not_before(address | None): records committed leave no earlier than the
 * int64 at address (a paced stream's clock the worker publishes), so commits wake a
 * worker asleep until before it no more (ring.h, rtudp_mpsc_set_not_before) */
static PyObject *mpsc_set_not_before(PyfMpscPort *self, PyObject *address)
{
    if (!self->h.bound)
        return pyf_closed_error(&self->h);
    void *at;
    if (address_arg(address, &at) < 0)
        return NULL;
    if ((uintptr_t)at % _Alignof(int64_t)) {
        PyErr_Format(PyExc_ValueError, "_set_not_before: address %p is not 8-byte aligned", at);
        return NULL;
    }
    rtudp_mpsc_set_not_before(&self->m, at);
    Py_RETURN_NONE;
}

/* the arguments of _set_ready and _set_route: (address | None, ready bit); -1 with the
 * error set */
static int address_and_bit(const char *call, PyObject *const *args, Py_ssize_t nargs,
                           void **address, uint32_t *bit)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s takes 2 arguments, got %zd", call, nargs);
        return -1;
    }
    if (address_arg(args[0], address) < 0)
        return -1;
    unsigned long b = PyLong_AsUnsignedLong(args[1]);
    if (PyErr_Occurred())
        return -1;
    if (b >= RTUDP_MAX_CHANNELS) {
        PyErr_Format(PyExc_ValueError, "ready bit %lu out of range 0..%d", b,
                     RTUDP_MAX_CHANNELS - 1);
        return -1;
    }
    *bit = (uint32_t)b;
    return 0;
}

/* _set_ready(address | None, bit): commits also mark bit in the ready set at address
 * (its worker's), before ringing: the worker reads only the rings marked */
static PyObject *mpsc_set_ready(PyfMpscPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!self->h.bound)
        return pyf_closed_error(&self->h);
    void *set;
    uint32_t bit;
    if (address_and_bit("_set_ready", args, nargs, &set, &bit) < 0)
        return NULL;
    rtudp_mpsc_set_ready(&self->m, set, bit);
    Py_RETURN_NONE;
}

/* _set_route(address, bit): commits wake the worker the struct rtudp_mpsc_route at
 * address names at that moment (copied here), marking bit in its ready set */
static PyObject *mpsc_set_route(PyfMpscPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!self->h.bound)
        return pyf_closed_error(&self->h);
    void *route;
    uint32_t bit;
    if (address_and_bit("_set_route", args, nargs, &route, &bit) < 0)
        return NULL;
    if (!route) {
        PyErr_SetString(PyExc_ValueError, "_set_route: the route's address is NULL");
        return NULL;
    }
    rtudp_mpsc_set_route(&self->m, route, bit);
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

static PyObject *mpsc_try_get(PyfMpscPort *self, PyObject *unused)
{
    (void)unused;
    if (!self->h.bound)
        return pyf_closed_error(&self->h);
    struct bytes_sink s = {NULL, NULL, 0};
    int64_t n = rtudp_mpsc_drain(&self->m, 1, bytes_record, &s);
    if (s.failed)
        return NULL;
    if (n > 0)
        return s.one;
    if (n == RTUDP_EMPTY)
        Py_RETURN_NONE;
    return pyf_ring_error(&self->h, (int)n, "get");
}

static PyObject *mpsc_get_many_nowait(PyfMpscPort *self, PyObject *const *args,
                                      Py_ssize_t nargs)
{
    Py_ssize_t max_n;
    if (pyf_max_n_arg(args, nargs, &max_n) < 0)
        return NULL;
    if (!self->h.bound)
        return pyf_closed_error(&self->h);
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
    return n == RTUDP_EMPTY ? PyList_New(0) : pyf_ring_error(&self->h, (int)n, "get_many");
}

/* _put_many(items, at_ns, flags, deadline_ns, spin_ns) -> count; BackPressureError
 * (with .sent) if the ring stays full until the deadline. */
static PyObject *mpsc_put_many(PyfMpscPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "_put_many(items, at_ns, flags, deadline_ns, spin_ns)");
        return NULL;
    }
    int64_t at_ns, deadline, spin;
    uint16_t flags;
    if (pyf_get_i64(args[1], 0, "at_ns", &at_ns) < 0 || pyf_get_flags(args[2], &flags) < 0 ||
        pyf_get_i64(args[3], INT64_MAX, "deadline_ns", &deadline) < 0 ||
        pyf_get_i64(args[4], 0, "spin_ns", &spin) < 0)
        return NULL;
    PyObject *seq = pyf_batch(&self->h, args[0], "put_many");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t sent = 0;
    for (; sent < n; sent++) {
        struct pyf_payload p;
        if (pyf_payload_get(items[sent], &p) < 0)
            goto fail;
        int rc = rtudp_mpsc_try_put_quiet(&self->m, p.data, (uint32_t)p.len, at_ns, flags);
        while (rc == RTUDP_EFULL || rc == RTUDP_EINTR) {
            /* wait for room with the GIL released; rtudp_mpsc_put wakes the consumer
             * first so it drains what we queued */
            Py_BEGIN_ALLOW_THREADS
            rc = rtudp_mpsc_put(&self->m, p.data, (uint32_t)p.len, at_ns, flags, deadline, spin);
            Py_END_ALLOW_THREADS
            if (rc == RTUDP_EINTR && PyErr_CheckSignals() < 0) {
                pyf_payload_release(&p);
                rtudp_mpsc_wake(&self->m);
                goto fail;
            }
        }
        pyf_payload_release(&p);
        if (rc == RTUDP_ETIMEDOUT) {
            rtudp_mpsc_wake(&self->m);
            PyObject *exc = PyObject_CallFunction(
                pyf_BackPressureError, "Un",
                PyUnicode_FromFormat("ring %R stayed full until the deadline: %zd of %zd records "
                                     "queued", self->h.name, sent, n),
                sent);
            if (exc) {
                PyErr_SetObject(pyf_BackPressureError, exc);
                Py_DECREF(exc);
            }
            goto fail;
        }
        if (rc != RTUDP_OK) {
            rtudp_mpsc_wake(&self->m);
            pyf_ring_error(&self->h, rc, "put_many");
            goto fail;
        }
    }
    if (n)
        rtudp_mpsc_wake_at(&self->m, at_ns);
    Py_DECREF(seq);
    return PyLong_FromSsize_t(n);
fail:
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef mpsc_methods[] = {
    PYF_PORT_METHODS,
    PYF_ONEARG("_set_wake", mpsc_set_wake,
     "_set_wake(address | None): commits also ring the doorbell at address."),
    PYF_ONEARG("_set_not_before", mpsc_set_not_before,
     "_set_not_before(address | None): committed records leave no earlier than the int64 "
     "at address."),
    PYF_FASTCALL("_set_ready", mpsc_set_ready,
     "_set_ready(address | None, bit): commits also mark bit in the ready set at address."),
    PYF_FASTCALL("_set_route", mpsc_set_route,
     "_set_route(address, bit): commits wake the worker the route at address names then."),
    PYF_FASTCALL_KW("try_put", mpsc_try_put,
     "try_put(data, at_ns=0, flags=0) -> bool\n\n"
     "Queue one record if there is room now; False if the ring is full.\n"
     "ValueError if data is larger than max_payload."),
    PYF_NOARGS("try_get", mpsc_try_get,
     "try_get() -> bytes | None\n\nThe next record's payload, or None if there is none now."),
    PYF_FASTCALL("_get_many_nowait", mpsc_get_many_nowait,
     "_get_many_nowait(max_n) -> list[bytes]: what can be read now, up to max_n."),
    PYF_FASTCALL("_put_many", mpsc_put_many,
     "_put_many(items, at_ns, flags, deadline_ns, spin_ns) -> int"),
    PYF_FASTCALL("_put_batch", pyf_mpsc_put_batch,
     "_put_batch(buffer, lengths, at_ns, at_ns_each, limit) -> int: datagrams back to back "
     "in buffer, as many as there is room for (csrc/pyfast/batch.c)."),
    {NULL, NULL, 0, NULL},
};

PyTypeObject pyf_MpscPortType = {
    PYF_PORT_TYPE(PyfMpscPort, "MpscPort", "C base of MpscRing: its per-call and batch paths."),
    .tp_methods = mpsc_methods,
};
