/*
 * channel.c - ChannelBase, the C base type of rtudp.Channel: send() and recv() in C for
 * the common case, and a handle's immediate sends made on the channel socket itself
 * (direct_send.h).
 *
 * What the type does itself: send(data, at_ns=None) with data bytes (or a buffer) of at
 * most the send limit, at_ns None or an int >= 0 within the pool's deadline horizon
 * (rtudp_shm.h) and room in the TX ring; recv(timeout)
 * with timeout None or an exact float/int >= 0 on a mapped RX ring.  Everything else
 * (a bad argument, a full or closed ring, a channel that cannot send or receive) it
 * hands to the subclass's own Python methods, _send_checked(data, at_ns) and
 * _recv_checked(timeout), which make every check and raise the API's errors: the type
 * names those two hooks, it knows nothing else of the class above it.
 *
 * The subclass turns the fast paths on with _fast_send(tx_ring, limit, horizon_ns) and
 * _fast_recv(reader, packet_type, name, spin_ns); until then, and after
 * _fast_send(None, ...) / _fast_recv(None, ...), every call takes the Python path.
 */
#include "pyfast.h"

#include "direct_send.h"

typedef struct {
    PyObject_HEAD
    PyfMpscPort *tx;            /* send()'s TX ring; NULL: send() always goes to Python */
    Py_ssize_t send_limit;      /* the largest datagram send() queues itself */
    uint32_t room;              /* zero bytes queued before each datagram: a header the
                                   worker writes (an RTP channel's); 0: none */
    int64_t horizon_ns;         /* how far ahead of now a deadline may be */
    int64_t at_ok_to;           /* a deadline up to this is within the horizon (the last
                                   clock read + horizon_ns: now only grows, so it stays so) */
    struct rtudp_direct direct; /* immediates on the socket itself (off: all zero) */
    PyfBcastCursor *rx;         /* recv()'s cursor; NULL: recv() always goes to Python */
    PyObject *packet_type;      /* what recv() builds (a tuple type) */
    PyObject *chan_name;        /* for recv()'s TimeoutError */
    int64_t spin_ns;            /* how long recv() spins before it parks */
    struct pyf_liveness live;   /* closed or pool gone: send() goes to _send_checked */
    int64_t beat_seen;          /* the pool's heartbeat at the last send */
    uint32_t unchanged;         /* sends since, that found it unchanged */
} ChannelBase;

/* send() reads the pool's heartbeat word at every send (one load of a line the
 * supervisor writes ten times a second) and the clock only when that word has not moved
 * since the sends before: at the 1st, 2nd, 4th, 8th ... such send, then every
 * PYF_SEND_CHECK_EVERY.  A live pool's beat resets the count, so a busy sender reads
 * the clock a few times a beat; after a pool died without a word, a sender notices
 * within about twice the heartbeat's staleness however rarely it sends (a stale beat
 * from a supervisor whose process still runs is no death: liveness.c).  The channel's
 * closed word it reads at every send. */
#define PYF_SEND_CHECK_EVERY 256

static PyObject *str_send_checked, *str_recv_checked, *str_send_many_checked;

/* ------------------------------------------------------------------ send */

/* whether this send looks at the pool's heartbeat with the clock (above) */
static int heartbeat_check_due(ChannelBase *self)
{
    const int64_t *hb = self->live.heartbeat;
    if (!hb)
        return 0;
    int64_t beat = atomic_load_explicit((const _Atomic int64_t *)hb, memory_order_relaxed);
    if (beat != self->beat_seen) {
        self->beat_seen = beat;
        self->unchanged = 0;
        return 0;
    }
    uint32_t n = ++self->unchanged;
    return (n & (n - 1)) == 0 || n % PYF_SEND_CHECK_EVERY == 0;
}

static PyObject *send_slow(ChannelBase *self, PyObject *data, PyObject *at_ns)
{
    PyObject *call[3] = {(PyObject *)self, data, at_ns};
    return PyObject_VectorcallMethod(str_send_checked, call, 3, NULL);
}

/*
 * Whether deadline `at` (> 0) is at most the horizon ahead of now.  The clock is read
 * only for a deadline beyond the bound the last read gave: a stream of deadlines a
 * little ahead reads it about once per horizon.
 */
static int within_horizon(ChannelBase *self, int64_t at)
{
    if (at <= self->at_ok_to)
        return 1;
    int64_t now = rtudp_now_ns();
    self->at_ok_to = now > INT64_MAX - self->horizon_ns ? INT64_MAX : now + self->horizon_ns;
    return at <= self->at_ok_to;
}

/* at_obj (None or an exact int >= 0 within the horizon) as the deadline *at (0: now);
 * 0 if it is none of those: the Python path says why */
static int fast_deadline(ChannelBase *self, PyObject *at_obj, int64_t *at)
{
    *at = 0;
    if (at_obj == Py_None)
        return 1;
    if (!PyLong_CheckExact(at_obj))
        return 0;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(at_obj, &overflow);
    if (overflow || v < 0 || !within_horizon(self, v))
        return 0;
    *at = v;
    return 1;
}

/* whether the channel can still carry sends: not revoked, its pool not gone (looked at
 * as heartbeat_check_due says); else the Python path raises why */
static int still_live(ChannelBase *self)
{
    return !pyf_revoked(&self->live) && !(heartbeat_check_due(self) && pyf_gone(&self->live));
}

/*
 * send(data, at_ns=None): queues data (ringing the worker's bell), or sends it on the
 * socket at once when direct sends allow (direct_send.h); the rest (a deadline beyond
 * the horizon too: _send_checked's error names it) goes to _send_checked(data, at_ns).
 */
static PyObject *chan_send(ChannelBase *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    static const char *const names[] = {"data", "at_ns"};
    PyObject *data, *at_obj = Py_None;
    if (!kwnames && (nargs == 1 || nargs == 2)) {
        data = args[0];
        if (nargs == 2)
            at_obj = args[1];
    } else {
        PyObject *a[2];
        if (pyf_parse("send", args, nargs, kwnames, names, 2, 1, a) < 0)
            return NULL;
        data = a[0];
        if (a[1])
            at_obj = a[1];
    }
    PyfMpscPort *tx = self->tx;
    if (!tx)
        return send_slow(self, data, at_obj);
    int64_t at;
    if (!fast_deadline(self, at_obj, &at))
        return send_slow(self, data, at_obj);
    if (!tx->h.bound) {
        /* the ring was unmapped: so is the block our direct line points into */
        rtudp_direct_close(&self->direct);
        return send_slow(self, data, at_obj);
    }
    if (!still_live(self)) /* _send_checked raises why */
        return send_slow(self, data, at_obj);
    struct pyf_payload p;
    Py_INCREF(tx); /* a buffer's exporter may run Python code, which may reconfigure us */
    if (pyf_payload_get(data, &p) < 0) {
        Py_DECREF(tx);
        PyErr_Clear();
        return send_slow(self, data, at_obj);
    }
    int rc = RTUDP_EINVAL;
    bool direct = rtudp_direct_on(&self->direct);
    if (p.len <= self->send_limit && tx->h.bound) {
        if (self->room) { /* the worker writes the header: never straight to the socket */
            rc = rtudp_mpsc_try_put_room_quiet(&tx->m, self->room, p.data, (uint32_t)p.len, at, 0);
            if (rc == RTUDP_OK)
                rtudp_mpsc_wake_at(&tx->m, at);
        } else {
            rc = at == 0 && rtudp_direct_try(&self->direct, &tx->m, p.data, (uint32_t)p.len)
                     ? RTUDP_OK
                     : rtudp_mpsc_try_put(&tx->m, p.data, (uint32_t)p.len, at, 0);
        }
    }
    pyf_payload_release(&p);
    Py_DECREF(tx);
    /* direct sends just went off (the channel closed?): our receive duplicate may go too */
    if (direct && !rtudp_direct_on(&self->direct) && self->rx)
        rtudp_drx_on(&self->rx->drx);
    if (rc == RTUDP_OK)
        Py_RETURN_NONE;
    return send_slow(self, data, at_obj);
}

static PyObject *send_many_slow(ChannelBase *self, PyObject *items, PyObject *at_ns,
                                Py_ssize_t done)
{
    PyObject *n = PyLong_FromSsize_t(done);
    if (!n)
        return NULL;
    PyObject *call[4] = {(PyObject *)self, items, at_ns, n};
    PyObject *r = PyObject_VectorcallMethod(str_send_many_checked, call, 4, NULL);
    Py_DECREF(n);
    return r;
}

/* whether every item of seq (a list or tuple) is bytes of at most limit bytes: only
 * then does send_many queue them itself (bytes run no code and cannot change size) */
static int all_small_bytes(PyObject *const *items, Py_ssize_t n, Py_ssize_t limit)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyBytes_CheckExact(items[i]) || PyBytes_GET_SIZE(items[i]) > limit)
            return 0;
    return 1;
}

/* the ring bytes records of items[0..n) take, each with `room` zero bytes before it */
static uint64_t records_bytes(PyObject *const *items, Py_ssize_t n, uint32_t room)
{
    uint64_t bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        bytes += rtudp_mpsc_record_bytes(room + (uint64_t)PyBytes_GET_SIZE(items[i]));
    return bytes;
}

/*
 * send_many(items, at_ns=None) -> count: every datagram of a list or tuple of bytes
 * queued with deadline at_ns, the worker's bell rung once; the rest (another kind of
 * sequence or item, one too big, a deadline send() would not take, a full ring part
 * way: from the first item not queued) goes to _send_many_checked(items, at_ns, done).
 */
static PyObject *chan_send_many(ChannelBase *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    static const char *const names[] = {"items", "at_ns"};
    PyObject *a[2];
    if (pyf_parse("send_many", args, nargs, kwnames, names, 2, 1, a) < 0)
        return NULL;
    PyObject *items = a[0], *at_obj = a[1] ? a[1] : Py_None;
    PyfMpscPort *tx = self->tx;
    if (!tx || !tx->h.bound || !(PyList_CheckExact(items) || PyTuple_CheckExact(items)))
        return send_many_slow(self, items, at_obj, 0);
    int64_t at;
    if (!fast_deadline(self, at_obj, &at))
        return send_many_slow(self, items, at_obj, 0);
    /* a list's items stay put: nothing below runs Python code */
    PyObject *const *item = (PyObject *const *)PySequence_Fast_ITEMS(items);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    if (n == 0 || !all_small_bytes(item, n, self->send_limit))
        return send_many_slow(self, items, at_obj, 0);
    /* the ring's lines asked for first: their misses overlap the liveness look's */
    rtudp_mpsc_prefetch_put(&tx->m, records_bytes(item, n, self->room));
    if (!still_live(self))
        return send_many_slow(self, items, at_obj, 0);
    Py_ssize_t sent = 0;
    int rc = RTUDP_OK;
    for (; sent < n && rc == RTUDP_OK; sent += rc == RTUDP_OK)
        rc = rtudp_mpsc_try_put_room_quiet(&tx->m, self->room, PyBytes_AS_STRING(item[sent]),
                                           (uint32_t)PyBytes_GET_SIZE(item[sent]), at, 0);
    if (sent)
        rtudp_mpsc_wake_at(&tx->m, at);
    if (rc != RTUDP_OK) /* full part way (or worse): the Python path waits or says why */
        return send_many_slow(self, items, at_obj, sent);
    return PyLong_FromSsize_t(n);
}

/* _fast_send(tx_ring | None, limit, horizon_ns[, room]): send()'s ring, largest datagram,
 * deadline horizon (None: off) and the zero bytes queued before each datagram */
static PyObject *chan_fast_send(ChannelBase *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t limit, room = 0;
    int64_t horizon;
    if ((nargs != 3 && nargs != 4) ||
        (args[0] != Py_None && !PyObject_TypeCheck(args[0], &pyf_MpscPortType)) ||
        pyf_get_count(args[1], PY_SSIZE_T_MAX, "limit", &limit) < 0 ||
        pyf_get_i64(args[2], 0, "horizon_ns", &horizon) < 0 ||
        (nargs == 4 && pyf_get_count(args[3], UINT32_MAX, "room", &room) < 0)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_fast_send(tx_ring: MpscPort | None, limit, "
                                             "horizon_ns[, room])");
        return NULL;
    }
    PyfMpscPort *tx = args[0] == Py_None ? NULL : (PyfMpscPort *)args[0];
    if (tx && ((uint64_t)room > tx->h.max_payload ||
               (uint64_t)limit > tx->h.max_payload - (uint64_t)room))
        return PyErr_Format(PyExc_ValueError, "send limit %zd and room %zd are over the "
                            "ring's max payload %llu", limit, room,
                            (unsigned long long)tx->h.max_payload);
    if (horizon < 1 || horizon > RTUDP_HORIZON_MAX_NS)
        return PyErr_Format(PyExc_ValueError, "horizon_ns %lld is outside 1..%lld",
                            (long long)horizon, (long long)RTUDP_HORIZON_MAX_NS);
    if (tx != self->tx)
        rtudp_direct_close(&self->direct); /* it sent for the old ring only */
    Py_XSETREF(self->tx, (PyfMpscPort *)Py_XNewRef(tx));
    self->send_limit = limit;
    self->room = (uint32_t)room;
    self->horizon_ns = horizon;
    self->at_ok_to = 0; /* read the clock at the next timed send */
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ direct sends */

/*
 * _configure_direct(pid, fd, family, port, line_address, quiet_ns) -> None | str:
 * let send() make immediate sends itself on a duplicate of fd `fd` of process `pid`
 * (direct_send.h), counting them in the struct rtudp_direct_tx at line_address.
 * None when on; else why not (a str: the ring path stays, nothing else changes).
 */
static PyObject *chan_configure_direct(ChannelBase *self, PyObject *const *args,
                                       Py_ssize_t nargs)
{
    struct pyf_socket_args a;
    if (pyf_socket_args(args, nargs, "_configure_direct", "line_address", "quiet_ns", &a) < 0)
        return NULL;
    if (!self->tx) {
        PyErr_SetString(PyExc_ValueError, "_configure_direct() before _fast_send()");
        return NULL;
    }
    if (!self->tx->h.bound)
        return pyf_closed_error(&self->tx->h);
    rtudp_direct_close(&self->direct);
    struct rtudp_check why = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rtudp_direct_open(&self->direct, a.pid, a.fd, a.family, a.port, a.address, a.extra,
                           &why);
    Py_END_ALLOW_THREADS
    if (rc != RTUDP_OK)
        return PyUnicode_FromString(why.msg);
    Py_RETURN_NONE;
}

/* _close_direct(): no more direct sends (the duplicate socket is closed) */
static PyObject *chan_close_direct(ChannelBase *self, PyObject *unused)
{
    (void)unused;
    rtudp_direct_close(&self->direct);
    Py_RETURN_NONE;
}

/* _direct_on() -> bool: direct sends on (off once the channel revoked them) */
static PyObject *chan_direct_on(ChannelBase *self, PyObject *unused)
{
    (void)unused;
    if (self->tx && !self->tx->h.bound)
        rtudp_direct_close(&self->direct);
    return PyBool_FromLong(rtudp_direct_on(&self->direct));
}

/* ------------------------------------------------------------------ recv */

static PyObject *recv_slow(ChannelBase *self, PyObject *timeout)
{
    PyObject *call[2] = {(PyObject *)self, timeout};
    return PyObject_VectorcallMethod(str_recv_checked, call, 2, NULL);
}

/*
 * recv(timeout=None): the next packet, waiting (GIL released) up to timeout seconds
 * given as None or an exact float or int >= 0 (0: poll); TimeoutError when the time
 * passes.  Anything else, and a closed ring, go to _recv_checked(timeout).
 */
static PyObject *chan_recv(ChannelBase *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    static const char *const names[] = {"timeout"};
    PyObject *timeout = Py_None;
    if (!kwnames && nargs <= 1) {
        if (nargs)
            timeout = args[0];
    } else {
        PyObject *a[1];
        if (pyf_parse("recv", args, nargs, kwnames, names, 1, 0, a) < 0)
            return NULL;
        if (a[0])
            timeout = a[0];
    }
    PyfBcastCursor *rx = self->rx;
    if (!rx)
        return recv_slow(self, timeout);
    double secs;
    if (timeout == Py_None)
        secs = -1;
    else if (PyFloat_CheckExact(timeout))
        secs = PyFloat_AS_DOUBLE(timeout);
    else if (PyLong_CheckExact(timeout))
        secs = PyLong_AsDouble(timeout); /* > DBL_MAX: -1.0 with an error, slow path */
    else
        return recv_slow(self, timeout);
    if (timeout != Py_None && !(secs >= 0)) { /* negative, NaN, or a conversion error */
        PyErr_Clear();
        return recv_slow(self, timeout);
    }
    if (!rx->port || !rx->port->h.bound)
        return recv_slow(self, timeout);
    int64_t deadline = INT64_MAX; /* None: forever */
    if (secs == 0)
        deadline = 0;
    else if (secs > 0)
        deadline = secs < 9e9 ? rtudp_now_ns() + (int64_t)(secs * 1e9) : INT64_MAX;
    /* ours for the call: another thread may reconfigure us while it waits */
    PyObject *type = Py_NewRef(self->packet_type), *name = Py_NewRef(self->chan_name);
    Py_INCREF(rx);
    PyObject *pkt = pyf_next_packet(rx, deadline, self->spin_ns, (PyTypeObject *)type);
    Py_DECREF(rx);
    Py_DECREF(type);
    if (pkt == Py_None) {
        Py_DECREF(pkt);
        pkt = PyErr_Format(PyExc_TimeoutError, "no datagram on channel %R within %S s", name,
                           timeout);
    }
    Py_DECREF(name);
    return pkt;
}

/* _fast_recv(reader | None, packet_type, channel_name, spin_ns): recv()'s cursor, what
 * it builds, names and spins (None: off) */
static PyObject *chan_fast_recv(ChannelBase *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t spin;
    if (nargs != 4 ||
        (args[0] != Py_None && !PyObject_TypeCheck(args[0], &pyf_BcastCursorType)) ||
        !PyType_Check(args[1]) || !PyType_IsSubtype((PyTypeObject *)args[1], &PyTuple_Type) ||
        pyf_get_i64(args[3], 0, "spin_ns", &spin) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_fast_recv(reader: BcastCursor | None, "
                                             "packet_type: a tuple type, channel_name, "
                                             "spin_ns)");
        return NULL;
    }
    PyObject *rx = args[0] == Py_None ? NULL : args[0];
    Py_XSETREF(self->rx, (PyfBcastCursor *)Py_XNewRef(rx));
    Py_XSETREF(self->packet_type, Py_NewRef(args[1]));
    Py_XSETREF(self->chan_name, Py_NewRef(args[2]));
    self->spin_ns = spin;
    Py_RETURN_NONE;
}

/* _watch(state_address, heartbeat_address, stale_ns, supervisor_pid, supervisor_start):
 * what says the channel is gone (pyfast.h, struct pyf_liveness); all 0: nothing (before
 * the block is unmapped) */
static PyObject *chan_watch(ChannelBase *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (pyf_watch_args(args, nargs, &self->live) < 0)
        return NULL;
    self->beat_seen = 0;
    self->unchanged = 0;
    Py_RETURN_NONE;
}

/* _count_direct(line_address, nbytes): one datagram of nbytes a client sent itself on
 * the channel socket (send_to), counted in the block's direct line as a direct send is */
static PyObject *chan_count_direct(ChannelBase *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    unsigned long long addr, bytes;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_count_direct(line_address, nbytes)");
        return NULL;
    }
    addr = PyLong_AsUnsignedLongLong(args[0]);
    bytes = PyLong_AsUnsignedLongLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    if (!addr || addr % 8) {
        PyErr_SetString(PyExc_ValueError, "_count_direct: bad line address");
        return NULL;
    }
    struct rtudp_direct_tx *line = (struct rtudp_direct_tx *)(uintptr_t)addr;
    atomic_fetch_add_explicit((_Atomic uint64_t *)&line->packets, 1, memory_order_relaxed);
    atomic_fetch_add_explicit((_Atomic uint64_t *)&line->bytes, bytes, memory_order_relaxed);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ type */

static PyMethodDef chan_methods[] = {
    PYF_FASTCALL_KW("send", chan_send,
     "send($self, /, data, at_ns=None)\n--\n\n"
     "Queue one datagram, to leave at ``at_ns`` (CLOCK_MONOTONIC ns; None/0 = now).\n\n"
     "BackPressureError if the TX ring is full (nothing is dropped silently);\n"
     "ValueError if ``data`` is larger than the channel's max_datagram, or ``at_ns``\n"
     "is further ahead of time.monotonic_ns() than the pool's horizon.  The common\n"
     "case runs in C (csrc/pyfast/channel.c), everything else in ``_send_checked``;\n"
     "an immediate datagram may go out on the socket at once (``direct_send``)."),
    PYF_FASTCALL_KW("send_many", chan_send_many,
     "send_many($self, /, items, at_ns=None)\n--\n\n"
     "Queue every datagram of ``items`` (all with deadline ``at_ns``); returns how many.\n\n"
     "BackPressureError (``.sent`` = how many went in) if the ring fills up; ValueError\n"
     "(queueing none) if one is larger than the channel takes.  A list or tuple of\n"
     "bytes is queued in C with one ring of the worker's bell (csrc/pyfast/channel.c);\n"
     "everything else goes to ``_send_many_checked``."),
    PYF_FASTCALL_KW("recv", chan_recv,
     "recv($self, /, timeout=None)\n--\n\n"
     "The next datagram, waiting up to ``timeout`` s (None = forever, 0 = poll).\n\n"
     "TimeoutError if none arrives in time.  The wait runs in C without the GIL;\n"
     "the common case is one C call (csrc/pyfast/channel.c), the rest\n"
     "``_recv_checked``."),
    PYF_FASTCALL("_fast_send", chan_fast_send,
     "_fast_send(tx_ring | None, limit, horizon_ns[, room]): the MPSC ring send() and\n"
     "send_many() queue into themselves, the largest datagram, how far ahead of now a\n"
     "deadline may be and the zero bytes queued before each datagram; None: every\n"
     "send() goes to _send_checked, every send_many() to _send_many_checked."),
    PYF_FASTCALL("_fast_recv", chan_fast_recv,
     "_fast_recv(reader | None, packet_type, channel_name, spin_ns): the cursor recv()\n"
     "reads itself, what it builds, names and spins; None: every recv() goes to\n"
     "_recv_checked."),
    PYF_FASTCALL("_configure_direct", chan_configure_direct,
     "_configure_direct(pid, fd, family, port, line_address, quiet_ns) -> None | str:\n"
     "send() makes immediate sends itself on a duplicate of the socket; why not, if not."),
    PYF_FASTCALL("_count_direct", chan_count_direct,
     "_count_direct(line_address, nbytes): count one datagram sent on the socket itself."),
    PYF_FASTCALL("_watch", chan_watch,
     "_watch(state_address, heartbeat_address, stale_ns): send() hands a closed channel\n"
     "or a dead pool's to _send_checked (0, 0, 0: stop watching)."),
    PYF_NOARGS("_close_direct", chan_close_direct,
     "_close_direct(): no more direct sends."),
    PYF_NOARGS("_direct_on", chan_direct_on,
     "_direct_on() -> bool: direct sends on (off once the channel revoked them)."),
    {NULL, NULL, 0, NULL},
};

/* the objects a ChannelBase holds: traverse and clear go over this one list */
#define CHAN_REFS(X) X(tx) X(rx) X(packet_type) X(chan_name)
#define CHAN_VISIT(field) Py_VISIT(self->field);
#define CHAN_CLEAR(field) Py_CLEAR(self->field);

static int chan_traverse(ChannelBase *self, visitproc visit, void *arg)
{
    CHAN_REFS(CHAN_VISIT)
    return 0;
}

static int chan_clear(ChannelBase *self)
{
    CHAN_REFS(CHAN_CLEAR)
    return 0;
}

static void chan_dealloc(ChannelBase *self)
{
    PyObject_GC_UnTrack(self);
    rtudp_direct_close(&self->direct);
    chan_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyTypeObject pyf_ChannelBaseType = {
    PYF_BASE_TYPE(ChannelBase, "ChannelBase",
                  "C base of rtudp.Channel: send() and recv() in C for the common case, the "
                  "rest in the subclass's _send_checked / _recv_checked."),
    .tp_dealloc = (destructor)chan_dealloc,
    .tp_traverse = (traverseproc)chan_traverse,
    .tp_clear = (inquiry)chan_clear,
    .tp_methods = chan_methods,
};

int pyf_channel_ready(void)
{
    str_send_checked = PyUnicode_InternFromString("_send_checked");
    str_send_many_checked = PyUnicode_InternFromString("_send_many_checked");
    str_recv_checked = PyUnicode_InternFromString("_recv_checked");
    if (!str_send_checked || !str_recv_checked || !str_send_many_checked)
        return -1;
    return PyType_Ready(&pyf_ChannelBaseType);
}
