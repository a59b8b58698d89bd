/* bcast.c - BcastPort, the C base of BroadcastRing: the writer's paths. */
#include "pyfast.h"

static int bcast_attach(PyfPort *port, void *mem, uint64_t avail, struct rtudp_check *why)
{
    PyfBcastPort *self = (PyfBcastPort *)port;
    int rc = rtudp_bcast_attach(&self->b, mem, avail, why);
    self->h.capacity = self->b.capacity;
    self->h.max_payload = self->b.max_payload;
    return rc;
}

static PyObject *bcast_bind(PyfPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    return pyf_port_bind(self, args, nargs, bcast_attach);
}

static PyObject *bcast_write(PyfBcastPort *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    struct pyf_payload p;
    int64_t time_ns;
    uint16_t flags;
    if (pyf_record_args(&self->h, "write", "time_ns", args, nargs, kwnames, &p, &time_ns,
                        &flags) < 0)
        return NULL;
    int rc = rtudp_bcast_write(&self->b, p.data, (uint32_t)p.len, flags, time_ns);
    pyf_payload_release(&p);
    if (rc == RTUDP_OK)
        Py_RETURN_NONE;
    return pyf_ring_error(&self->h, rc, "write");
}

static PyObject *bcast_write_many(PyfBcastPort *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    static const char *const names[] = {"items", "time_ns", "flags"};
    PyObject *a[3];
    int64_t time_ns;
    uint16_t flags;
    if (pyf_parse("write_many", args, nargs, kwnames, names, 3, 1, a) < 0 ||
        pyf_get_i64(a[1], 0, "time_ns", &time_ns) < 0 || pyf_get_flags(a[2], &flags) < 0)
        return NULL;
    if (!self->h.bound)
        return pyf_closed_error(&self->h);
    PyObject *seq = PySequence_Fast(a[0], "write_many() takes a list of bytes");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    if (pyf_check_batch(&self->h, items, n) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        struct pyf_payload p;
        if (pyf_payload_get(items[i], &p) < 0)
            goto fail;
        int rc = rtudp_bcast_write(&self->b, p.data, (uint32_t)p.len, flags, time_ns);
        pyf_payload_release(&p);
        if (rc < 0) {
            pyf_ring_error(&self->h, (int)rc, "write_many");
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
    {"_unbind", (PyCFunction)pyf_port_unbind, METH_NOARGS,
     "Forget the mapping (the ring closes)."},
    {"write", (PyCFunction)(void (*)(void))bcast_write, METH_FASTCALL | METH_KEYWORDS,
     "write(data, time_ns=0, flags=0)\n\n"
     "Publish one record; never waits (overwrites the oldest). One writer per ring."},
    {"write_many", (PyCFunction)(void (*)(void))bcast_write_many, METH_FASTCALL | METH_KEYWORDS,
     "write_many(items, time_ns=0, flags=0) -> int\n\n"
     "Publish every record of items; all or none if one is too large."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject pyf_BcastPortType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rtudp.shmring._fast.BcastPort",
    .tp_basicsize = sizeof(PyfBcastPort),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "C base of BroadcastRing: the writer's paths.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)pyf_port_dealloc,
    .tp_traverse = (traverseproc)pyf_port_traverse,
    .tp_methods = bcast_methods,
};
