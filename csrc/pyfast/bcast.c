/* bcast.c - BcastPort, the C base of BroadcastRing: the writer's paths. */
#include "pyfast.h"

static int bcast_write_one(void *ring, const char *data, uint32_t len, int64_t time_ns,
                           uint16_t flags)
{
    return rtudp_bcast_write(ring, data, len, flags, time_ns);
}

static PyObject *bcast_write(PyfBcastPort *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    int rc = pyf_record_call(&self->h, "write", "time_ns", args, nargs, kwnames, bcast_write_one,
                             &self->b);
    if (rc == RTUDP_OK)
        Py_RETURN_NONE;
    return rc == PYF_ARGS_FAILED ? NULL : pyf_ring_error(&self->h, rc, "write");
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
    PyObject *seq = pyf_batch(&self->h, a[0], "write_many");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i = 0;
    for (; i < n; i++) {
        struct pyf_payload p;
        if (pyf_payload_get(PySequence_Fast_GET_ITEM(seq, i), &p) < 0)
            break;
        int rc = rtudp_bcast_write(&self->b, p.data, (uint32_t)p.len, flags, time_ns);
        pyf_payload_release(&p);
        if (rc < 0) {
            pyf_ring_error(&self->h, (int)rc, "write_many");
            break;
        }
    }
    Py_DECREF(seq);
    return i == n ? PyLong_FromSsize_t(n) : NULL;
}

static PyMethodDef bcast_methods[] = {
    PYF_PORT_METHODS,
    PYF_FASTCALL_KW("write", bcast_write,
     "write(data, time_ns=0, flags=0)\n\n"
     "Publish one record; never waits (overwrites the oldest). One writer per ring."),
    PYF_FASTCALL_KW("write_many", bcast_write_many,
     "write_many(items, time_ns=0, flags=0) -> int\n\n"
     "Publish every record of items; all or none if one is too large."),
    {NULL, NULL, 0, NULL},
};

PyTypeObject pyf_BcastPortType = {
    PYF_PORT_TYPE(PyfBcastPort, "BcastPort", "C base of BroadcastRing: the writer's paths."),
    .tp_methods = bcast_methods,
};
