/* port.c - what the ring port types share: binding to a mapped ring, record arguments. */
#include "pyfast.h"

/* _bind(name, address, avail): the arguments */
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

PyObject *pyf_port_bind(PyfPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *name;
    void *mem;
    uint64_t avail;
    if (bind_args(args, nargs, &name, &mem, &avail) < 0)
        return NULL;
    struct rtudp_check why;
    int rc;
    if (PyObject_TypeCheck(self, &pyf_MpscPortType)) {
        struct rtudp_mpsc *m = &((PyfMpscPort *)self)->m;
        rc = rtudp_mpsc_attach(m, mem, avail, &why);
        self->h.capacity = m->capacity;
        self->h.max_payload = m->max_payload;
    } else {
        struct rtudp_bcast *b = &((PyfBcastPort *)self)->b;
        rc = rtudp_bcast_attach(b, mem, avail, &why);
        self->h.capacity = b->capacity;
        self->h.max_payload = b->max_payload;
    }
    if (rc != RTUDP_OK) {
        PyErr_SetString(pyf_BadSegmentError, why.msg);
        return NULL;
    }
    Py_XSETREF(self->h.name, Py_NewRef(name));
    self->h.bound = 1;
    Py_RETURN_NONE;
}

PyObject *pyf_port_unbind(PyfPort *self, PyObject *unused)
{
    (void)unused;
    self->h.bound = 0; /* every method checks it before touching the view */
    Py_RETURN_NONE;
}

void pyf_port_dealloc(PyfPort *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->h.name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

int pyf_port_traverse(PyfPort *self, visitproc visit, void *arg)
{
    Py_VISIT(self->h.name);
    return 0;
}

int pyf_record_call(struct pyf_port_head *h, const char *fn, const char *time_name,
                    PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                    pyf_one_record one, void *ring)
{
    const char *const names[] = {"data", time_name, "flags"};
    PyObject *a[3];
    int64_t time_ns;
    uint16_t flags;
    struct pyf_payload p;
    if (pyf_parse(fn, args, nargs, kwnames, names, 3, 1, a) < 0 ||
        pyf_get_i64(a[1], 0, time_name, &time_ns) < 0 || pyf_get_flags(a[2], &flags) < 0)
        return PYF_ARGS_FAILED;
    if (!h->bound) {
        pyf_closed_error(h);
        return PYF_ARGS_FAILED;
    }
    if (pyf_payload_get(a[0], &p) < 0)
        return PYF_ARGS_FAILED;
    int rc = p.len > (Py_ssize_t)h->max_payload
                 ? (pyf_too_big(h, p.len), PYF_ARGS_FAILED)
                 : one(ring, p.data, (uint32_t)p.len, time_ns, flags);
    pyf_payload_release(&p);
    return rc;
}

PyObject *pyf_batch(struct pyf_port_head *h, PyObject *items, const char *fn)
{
    if (!h->bound)
        return pyf_closed_error(h);
    char msg[64];
    snprintf(msg, sizeof msg, "%s() takes a list of bytes", fn);
    PyObject *seq = PySequence_Fast(items, msg);
    if (!seq)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        struct pyf_payload p;
        if (pyf_payload_get(PySequence_Fast_GET_ITEM(seq, i), &p) < 0)
            goto fail;
        Py_ssize_t len = p.len;
        pyf_payload_release(&p);
        if (len > (Py_ssize_t)h->max_payload) {
            pyf_too_big(h, len);
            goto fail;
        }
    }
    return seq;
fail:
    Py_DECREF(seq);
    return NULL;
}
