/*
 * cursor.c - BcastCursor, the C base of BroadcastReader: one reader's cursor on a
 * broadcast ring, and the RX record -> packet tuple conversion the channel's recv
 * uses too (pyf_next_packet), one record a call or a list of them.
 */
#include "pyfast.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

static PyObject *cursor_bind(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyObject_TypeCheck(args[0], &pyf_BcastPortType)) {
        PyErr_SetString(PyExc_TypeError, "_bind_reader(ring, from_oldest)");
        return NULL;
    }
    PyfBcastPort *port = (PyfBcastPort *)args[0];
    if (!port->h.bound)
        return pyf_closed_error(&port->h);
    int from_oldest = PyObject_IsTrue(args[1]);
    if (from_oldest < 0)
        return NULL;
    uint8_t *buf = PyMem_Malloc(port->b.max_payload ? port->b.max_payload : 1);
    if (!buf)
        return PyErr_NoMemory();
    PyMem_Free(self->buf);
    self->buf = buf;
    Py_XSETREF(self->port, (PyfBcastPort *)Py_NewRef(port));
    rtudp_bcast_reader_init(&self->port->b, &self->rd, from_oldest);
    Py_RETURN_NONE;
}

PyfBcastPort *pyf_cursor_port(PyfBcastCursor *self)
{
    if (!self->port) {
        PyErr_SetString(PyExc_ValueError, "reader is not attached to a ring");
        return NULL;
    }
    if (!self->port->h.bound) {
        pyf_closed_error(&self->port->h);
        return NULL;
    }
    return self->port;
}

static PyObject *cursor_try_get_record(PyfBcastCursor *self, PyObject *unused)
{
    (void)unused;
    PyfBcastPort *port = pyf_cursor_port(self);
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
        return pyf_ring_error(&port->h, rc, "read");
    return Py_BuildValue("(y#KLHK)", (const char *)self->buf, (Py_ssize_t)len,
                         (unsigned long long)seq, (long long)time_ns, flags,
                         (unsigned long long)lost);
}

static PyObject *cursor_get_many_nowait(PyfBcastCursor *self, PyObject *const *args,
                                        Py_ssize_t nargs)
{
    Py_ssize_t max_n;
    if (pyf_max_n_arg(args, nargs, &max_n) < 0)
        return NULL;
    PyfBcastPort *port = pyf_cursor_port(self);
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
            return pyf_ring_error(&port->h, rc, "read_many");
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

PyObject *pyf_source_tuple(PyfBcastCursor *self, const struct rtudp_sockaddr *a)
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
static PyObject *rx_packet(PyfBcastCursor *self, PyTypeObject *type, uint32_t len,
                           uint64_t lost)
{
    if (len < sizeof(struct rtudp_rx_meta)) {
        PyErr_Format(pyf_BadSegmentError, "RX record of %u bytes, shorter than its %zu-byte meta",
                     len, sizeof(struct rtudp_rx_meta));
        return NULL;
    }
    struct rtudp_rx_meta m;
    memcpy(&m, self->buf, sizeof m);
    PyObject *items[6] = {
        PyBytes_FromStringAndSize((const char *)self->buf + sizeof m, len - sizeof m),
        pyf_source_tuple(self, &m.source),
        PyLong_FromLongLong(m.rx_ns),
        PyLong_FromLongLong(m.hw_ns),
        PyLong_FromUnsignedLongLong(m.rx_seq),
        PyLong_FromUnsignedLongLong(lost),
    };
    return pyf_tuple_of(type, items, 6);
}

PyObject *pyf_tuple_of(PyTypeObject *type, PyObject **items, int n)
{
    PyObject *t = NULL;
    for (int i = 0; i < n; i++)
        if (!items[i])
            goto out;
    if (type->tp_basicsize == PyTuple_Type.tp_basicsize &&
        type->tp_itemsize == sizeof(PyObject *)) {
        t = type->tp_alloc(type, n);
        if (t) {
            for (int i = 0; i < n; i++)
                PyTuple_SET_ITEM(t, i, items[i]); /* steals */
            return t;
        }
    } else {
        t = PyObject_Vectorcall((PyObject *)type, items, (size_t)n, NULL);
    }
out:
    for (int i = 0; i < n; i++)
        Py_XDECREF(items[i]);
    return t;
}

int pyf_cursor_wait(PyfBcastCursor *self, PyfBcastPort *port, int64_t deadline, int64_t spin)
{
    int rc = RTUDP_EMPTY;
    if (self->drx.block) {
        /* (with deadline 0 too: a poll must see what waits in a socket we hold) */
        Py_BEGIN_ALLOW_THREADS
        rc = rtudp_drx_wait(&self->drx, &port->b, &self->rd, deadline);
        Py_END_ALLOW_THREADS
    }
    if (rc != RTUDP_EMPTY)
        return rc;
    if (deadline == 0)
        return RTUDP_ETIMEDOUT;
    Py_BEGIN_ALLOW_THREADS
    rc = rtudp_bcast_wait(&port->b, &self->rd, deadline, spin);
    Py_END_ALLOW_THREADS
    return rc;
}

/* keep the error set now for the cursor's next read (one at most: a later one is
 * dropped, as it would have been raised after the first) */
static void keep_pending(PyfBcastCursor *self)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (exc && tb)
        PyException_SetTraceback(exc, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
#endif
    if (!self->pending)
        self->pending = exc;
    else
        Py_XDECREF(exc);
}

/* raise the kept error, if any: -1 with it set, else 0 */
static int raise_pending(PyfBcastCursor *self)
{
    PyObject *exc = self->pending;
    if (!exc)
        return 0;
    self->pending = NULL;
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
    return -1;
}

int pyf_cursor_next(PyfBcastCursor *self, int64_t deadline, int64_t spin, uint32_t *len,
                    uint64_t *lost, const char *what)
{
    if (raise_pending(self) < 0)
        return -1;
    int sliced = 0; /* the last wait ended at a slice, not the deadline */
    for (;;) {
        /* looked up again after every wait: another thread may close the channel */
        PyfBcastPort *port = pyf_cursor_port(self);
        if (!port)
            return -1;
        int rc = rtudp_bcast_read(&port->b, &self->rd, self->buf, (uint32_t)port->b.max_payload,
                                  len, NULL, NULL, NULL, lost);
        if (rc == RTUDP_OK)
            return 1;
        if (rc != RTUDP_EMPTY) {
            pyf_ring_error(&port->h, rc, what);
            return -1;
        }
        /* what was queued is read first; then a closed channel, or (after a slice of
         * waiting) a dead pool, raises.  Looked at with the GIL held and the port
         * bound: close() stops the watch before it unmaps */
        int gone = sliced ? pyf_gone(&self->live)
                          : (pyf_revoked(&self->live) ? PYF_GONE_CLOSED : PYF_LIVE);
        if (gone) {
            pyf_gone_error(gone, self->live_name ? self->live_name : Py_None);
            return -1;
        }
        /* a closed channel, or a dead pool, wakes nobody: a long wait looks again
         * every PYF_WATCH_SLICE_NS */
        int64_t until = deadline;
        if (self->live.state && deadline != 0) {
            int64_t look = rtudp_now_ns() + PYF_WATCH_SLICE_NS;
            if (look < until)
                until = look;
        }
        rc = pyf_cursor_wait(self, port, until, spin);
        sliced = rc == RTUDP_ETIMEDOUT && until != deadline;
        if (sliced) {
            /* a signal that came as the slice ended woke no EINTR: its handler runs now */
            if (PyErr_CheckSignals() < 0)
                return -1;
            continue;
        }
        if (rc == RTUDP_ETIMEDOUT)
            return 0;
        if (rc == RTUDP_EINTR) {
            if (PyErr_CheckSignals() < 0) /* Ctrl-C: KeyboardInterrupt from the handler */
                return -1;
        } else if (rc != RTUDP_OK) {
            if (rc == RTUDP_ESYS)
                PyErr_Format(PyExc_OSError, "futex wait failed: %s", strerror(errno));
            else
                PyErr_Format(pyf_RtUdpError, "wait failed with code %d", rc);
            return -1;
        }
    }
}

/* the next RX record built by `build`, or None once deadline passed */
static PyObject *next_record(PyfBcastCursor *self, int64_t deadline, int64_t spin,
                             PyTypeObject *type, pyf_record_builder build)
{
    uint32_t len;
    uint64_t lost;
    int got = pyf_cursor_next(self, deadline, spin, &len, &lost, "recv");
    if (got < 0)
        return NULL;
    if (got == 0)
        Py_RETURN_NONE;
    return build(self, type, len, lost);
}

PyObject *pyf_next_packet(PyfBcastCursor *self, int64_t deadline, int64_t spin,
                          PyTypeObject *type)
{
    return next_record(self, deadline, spin, type, rx_packet);
}

PyObject *pyf_recv_one(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs,
                       const char *usage, pyf_record_builder build)
{
    int64_t deadline, spin;
    if (nargs != 3 || pyf_get_i64(args[0], INT64_MAX, "deadline_ns", &deadline) < 0 ||
        pyf_get_i64(args[1], 0, "spin_ns", &spin) < 0 || !PyType_Check(args[2]) ||
        !PyType_IsSubtype((PyTypeObject *)args[2], &PyTuple_Type)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, usage);
        return NULL;
    }
    return next_record(self, deadline, spin, (PyTypeObject *)args[2], build);
}

/*
 * _recv_packet(deadline_ns, spin_ns, packet_type) -> packet | None: the next RX record
 * as a packet, waiting (GIL released) until deadline_ns; deadline 0 = do not wait.
 * One C call for what was a read, a parse and a wait loop in Python: 2.2 µs -> tenths.
 */
static PyObject *cursor_recv_packet(PyfBcastCursor *self, PyObject *const *args,
                                    Py_ssize_t nargs)
{
    return pyf_recv_one(self, args, nargs,
                        "_recv_packet(deadline_ns, spin_ns, packet_type: a tuple type)", rx_packet);
}

/* up to max_n records built by `build`, the first waited for until deadline */
static PyObject *recv_list(PyfBcastCursor *self, int64_t deadline, int64_t spin,
                           Py_ssize_t max_n, PyTypeObject *type, pyf_record_builder build)
{
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    while (PyList_GET_SIZE(list) < max_n) {
        uint32_t len;
        uint64_t lost;
        /* the first record may be waited for, the rest are what is there */
        int got = pyf_cursor_next(self, PyList_GET_SIZE(list) ? 0 : deadline, spin, &len, &lost,
                                  "recv_many");
        if (got == 0)
            break;
        PyObject *item = got > 0 ? build(self, type, len, lost) : NULL;
        if (!item) {
            /* hand over what we have: a ring's or a channel's error recurs at the next
             * read; a bad record, already taken, is kept for it.  An interrupt is not
             * kept waiting */
            if (PyList_GET_SIZE(list) && PyErr_ExceptionMatches(PyExc_Exception)) {
                if (got > 0)
                    keep_pending(self);
                else
                    PyErr_Clear();
                break;
            }
            Py_DECREF(list);
            return NULL;
        }
        int rc = PyList_Append(list, item);
        Py_DECREF(item);
        if (rc < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    return list;
}

PyObject *pyf_recv_list(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs,
                        const char *usage, pyf_record_builder build)
{
    int64_t deadline, spin;
    Py_ssize_t max_n;
    if (nargs != 4 || pyf_get_i64(args[0], INT64_MAX, "deadline_ns", &deadline) < 0 ||
        pyf_get_i64(args[1], 0, "spin_ns", &spin) < 0 ||
        pyf_get_count(args[2], 1, "max_n", &max_n) < 0 || !PyType_Check(args[3]) ||
        !PyType_IsSubtype((PyTypeObject *)args[3], &PyTuple_Type)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, usage);
        return NULL;
    }
    return recv_list(self, deadline, spin, max_n, (PyTypeObject *)args[3], build);
}

/*
 * _recv_many(deadline_ns, spin_ns, max_n, packet_type) -> list: up to max_n RX records
 * as packets, the first waited for until deadline_ns (0: do not wait), the rest what is
 * there.  One C call for recv_many's loop of reads.
 */
static PyObject *cursor_recv_many(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    return pyf_recv_list(self, args, nargs, "_recv_many(deadline_ns, spin_ns, max_n, packet_type)",
                         rx_packet);
}

/* _wait(deadline_ns, spin_ns) -> RTUDP_* code, with the GIL released */
static PyObject *cursor_wait(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t deadline, spin;
    if (nargs != 2 || pyf_get_i64(args[0], INT64_MAX, "deadline_ns", &deadline) < 0 ||
        pyf_get_i64(args[1], 0, "spin_ns", &spin) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_wait(deadline_ns, spin_ns)");
        return NULL;
    }
    PyfBcastPort *port = pyf_cursor_port(self);
    if (!port)
        return NULL;
    return PyLong_FromLong(pyf_cursor_wait(self, port, deadline, spin));
}

/*
 * _configure_direct_recv(pid, fd, family, port, block_address) -> None | str: let waits
 * on an empty ring read the channel socket themselves (direct_recv.h), on a duplicate
 * of fd `fd` of process `pid`, for the channel block at block_address.  None when on;
 * else why not (a str: waits stay on the ring, nothing else changes).
 */
static PyObject *cursor_configure_direct_recv(PyfBcastCursor *self, PyObject *const *args,
                                              Py_ssize_t nargs)
{
    struct pyf_socket_args a;
    if (pyf_socket_args(args, nargs, "_configure_direct_recv", "block_address", "spin_ns",
                        &a) < 0)
        return NULL;
    PyfBcastPort *port = pyf_cursor_port(self);
    if (!port)
        return NULL;
    rtudp_drx_close(&self->drx);
    struct rtudp_check why = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rtudp_drx_open(&self->drx, a.pid, a.fd, a.family, a.port, a.address, &port->b,
                        a.extra, &why);
    Py_END_ALLOW_THREADS
    if (rc != RTUDP_OK)
        return PyUnicode_FromString(why.msg);
    Py_RETURN_NONE;
}

/* _direct_recv_on() -> bool: direct receive on (off once the channel revoked it) */
static PyObject *cursor_direct_recv_on(PyfBcastCursor *self, PyObject *unused)
{
    (void)unused;
    if (self->port && !self->port->h.bound)
        rtudp_drx_close(&self->drx);
    return PyBool_FromLong(rtudp_drx_on(&self->drx));
}

/* _close_direct_recv(): waits stay on the ring (the duplicate socket is closed) */
static PyObject *cursor_close_direct_recv(PyfBcastCursor *self, PyObject *unused)
{
    (void)unused;
    rtudp_drx_close(&self->drx);
    Py_RETURN_NONE;
}

/* _watch(state_address, heartbeat_address, stale_ns, supervisor_pid, supervisor_start,
 * name): a wait on a closed channel or a dead pool raises, naming the channel
 * (pyfast.h); 0, 0, 0, 0, 0, None: no more */
static PyObject *cursor_watch(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != PYF_WATCH_NARGS + 1) {
        PyErr_SetString(PyExc_TypeError, "_watch(state_address, heartbeat_address, stale_ns, "
                                         "supervisor_pid, supervisor_start, name)");
        return NULL;
    }
    if (pyf_watch_args(args, PYF_WATCH_NARGS, &self->live) < 0)
        return NULL;
    Py_XSETREF(self->live_name, Py_NewRef(args[PYF_WATCH_NARGS]));
    Py_RETURN_NONE;
}

static PyObject *cursor_get_lost(PyfBcastCursor *self, void *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong(self->rd.lost);
}

static PyObject *cursor_get_lapped(PyfBcastCursor *self, void *unused)
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
    PYF_FASTCALL("_bind_reader", cursor_bind,
     "_bind_reader(ring, from_oldest): start a cursor on ring."),
    PYF_NOARGS("_try_get_record", cursor_try_get_record,
     "_try_get_record() -> (data, seq, time_ns, flags, lost) | None"),
    PYF_FASTCALL("_get_many_nowait", cursor_get_many_nowait,
     "_get_many_nowait(max_n) -> list[bytes]: what can be read now, up to max_n."),
    PYF_FASTCALL("_wait", cursor_wait,
     "_wait(deadline_ns, spin_ns) -> code: wait for a record, GIL released."),
    PYF_FASTCALL("_configure_direct_recv", cursor_configure_direct_recv,
     "_configure_direct_recv(pid, fd, family, port, block_address, spin_ns) -> None | str: waits "
     "read the channel socket themselves (csrc/direct_recv.h); a str says why not."),
    PYF_NOARGS("_close_direct_recv", cursor_close_direct_recv,
     "_close_direct_recv(): waits on the ring only."),
    PYF_FASTCALL("_watch", cursor_watch,
     "_watch(state_address, heartbeat_address, stale_ns, name): a read or wait on a closed "
     "channel or a dead pool raises (0, 0, 0, None: no more)."),
    PYF_NOARGS("_direct_recv_on", cursor_direct_recv_on,
     "_direct_recv_on() -> bool: direct receive on (off once the pool closed the channel)."),
    PYF_FASTCALL("_recv_packet", cursor_recv_packet,
     "_recv_packet(deadline_ns, spin_ns, packet_type) -> packet | None: the next RX record "
     "as packet_type(data, source, rx_ns, hw_ns, seq, lost), waiting until deadline_ns "
     "(0 = do not wait) with the GIL released."),
    PYF_FASTCALL("_recv_many", cursor_recv_many,
     "_recv_many(deadline_ns, spin_ns, max_n, packet_type) -> list: up to max_n RX records as "
     "packets, the first waited for until deadline_ns (0 = do not wait)."),
    PYF_FASTCALL("_recv_frame", pyf_cursor_recv_frame,
     "_recv_frame(deadline_ns, spin_ns, frame_type) -> frame | None: the next RX record of a "
     "jitter-buffered rtp channel as frame_type (csrc/pyfast/rtpframe.c)."),
    PYF_FASTCALL("_recv_frames", pyf_cursor_recv_frames,
     "_recv_frames(deadline_ns, spin_ns, max_n, frame_type) -> list: up to max_n rtp frames, "
     "the first waited for until deadline_ns (0 = do not wait)."),
    PYF_FASTCALL("_recv_batch", pyf_cursor_recv_batch,
     "_recv_batch(deadline_ns, spin_ns, max_n, columns) -> n: up to max_n RX records into "
     "the column buffers (csrc/pyfast/batch.c), waiting until deadline_ns for the first."),
    {NULL, NULL, 0, NULL},
};

static int cursor_traverse(PyfBcastCursor *self, visitproc visit, void *arg)
{
    Py_VISIT(self->port);
    Py_VISIT(self->last_source);
    Py_VISIT(self->live_name);
    Py_VISIT(self->pending);
    return 0;
}

static int cursor_clear(PyfBcastCursor *self)
{
    Py_CLEAR(self->port);
    Py_CLEAR(self->last_source);
    Py_CLEAR(self->live_name);
    Py_CLEAR(self->pending);
    return 0;
}

static void cursor_dealloc(PyfBcastCursor *self)
{
    PyObject_GC_UnTrack(self);
    cursor_clear(self);
    rtudp_drx_close(&self->drx);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyTypeObject pyf_BcastCursorType = {
    PYF_BASE_TYPE(PyfBcastCursor, "BcastCursor",
                  "C base of BroadcastReader: one reader's cursor."),
    .tp_dealloc = (destructor)cursor_dealloc,
    .tp_traverse = (traverseproc)cursor_traverse,
    .tp_clear = (inquiry)cursor_clear,
    .tp_methods = cursor_methods,
    .tp_getset = cursor_getset,
};
