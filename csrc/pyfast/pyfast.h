/*
 * pyfast.h - what the pieces of rtudp.shmring._fast share (csrc/pyfast.c says why the
 * module is a CPython extension and names its files).
 *
 * The port types are declared here, not only in their own files, because the
 * channel's base type (channel.c) runs the rings' paths itself: it holds an MpscPort
 * and a BcastCursor and calls into them without a Python call in between.
 *
 * Every non-static name here starts with pyf_ (the module exports only PyInit__fast:
 * setup.py builds it with hidden visibility).
 */
#ifndef RTUDP_PYFAST_H
#define RTUDP_PYFAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdint.h>

#include "direct_recv.h"
#include "ring.h"
#include "rtudp_shm.h"

/* the module's functions (rtwait.c), and the constants they check against */
extern PyMethodDef pyf_rtwait_methods[];
int pyf_rtwait_constants(PyObject *module);

/* rtudp.shmring.errors' classes, looked up once when the module loads */
extern PyObject *pyf_RtUdpError, *pyf_BadSegmentError, *pyf_BackPressureError;

/* ------------------------------------------------------------------ args.c */

/*
 * Positional-or-keyword arguments for METH_FASTCALL|METH_KEYWORDS: fills out[i]
 * (borrowed, NULL when absent) for names[0..n), the first `required` mandatory.
 */
int pyf_parse(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
              const char *const *names, int n, int required, PyObject **out);
/* an int argument (None or absent: dflt); TypeError / ValueError naming `what` */
int pyf_get_i64(PyObject *o, int64_t dflt, const char *what, int64_t *v);
int pyf_get_flags(PyObject *o, uint16_t *v);
/* an int >= 1 (None or absent: dflt), clamped to PY_SSIZE_T_MAX */
int pyf_get_count(PyObject *o, Py_ssize_t dflt, const char *what, Py_ssize_t *v);
/* _get_many_nowait(max_n)'s one argument */
int pyf_max_n_arg(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t *max_n);

/* The arguments of a call that duplicates the channel socket (direct sends, direct
 * receive): call(pid, fd, family, port, <address_name>, <extra_name>), the socket's fd
 * in process pid, the family and port it is bound to, the address of a line of the
 * channel block, and one more int. */
struct pyf_socket_args {
    int pid, fd, family;
    uint16_t port;
    void *address;
    int64_t extra;
};
/* 0, or -1 with a TypeError (the call's signature) or ValueError (out of range) */
int pyf_socket_args(PyObject *const *args, Py_ssize_t nargs, const char *call,
                    const char *address_name, const char *extra_name,
                    struct pyf_socket_args *out);

/* A payload argument: bytes directly, anything else through the buffer protocol. */
struct pyf_payload {
    Py_buffer view;
    int has_view;
    const char *data;
    Py_ssize_t len;
};

/* 0, or -1 with a TypeError naming o's type (inline: every send takes this path) */
static inline int pyf_payload_get(PyObject *o, struct pyf_payload *p)
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

static inline void pyf_payload_release(struct pyf_payload *p)
{
    if (p->has_view)
        PyBuffer_Release(&p->view);
}

/* ------------------------------------------------------------------ ports */

/* What a port needs to name itself in errors and to check it is still mapped. */
struct pyf_port_head {
    PyObject *name;
    int bound;
    uint64_t capacity;
    uint64_t max_payload;
};

/* Every port type starts like this, so bind/unbind/dealloc/traverse are shared. */
typedef struct {
    PyObject_HEAD
    struct pyf_port_head h;
} PyfPort;

/* C base of MpscRing (mpsc.c) */
typedef struct {
    PyObject_HEAD
    struct pyf_port_head h;
    struct rtudp_mpsc m;
} PyfMpscPort;

/* C base of BroadcastRing (bcast.c) */
typedef struct {
    PyObject_HEAD
    struct pyf_port_head h;
    struct rtudp_bcast b;
} PyfBcastPort;

/*
 * What tells a handle that its channel can carry nothing more (liveness.c): the channel
 * block's direct.state, which the supervisor sets REVOKED when it closes the channel
 * or stops the pool, and the pool's heartbeat, which stops when the supervisor dies
 * without a word.  All zero: not watched.
 */
struct pyf_liveness {
    const uint32_t *state;      /* the channel block's direct.state */
    const int64_t *heartbeat;   /* the pool block's heartbeat_ns */
    int64_t stale_ns;           /* a heartbeat older than this: is the supervisor gone? */
    int32_t sup_pid;            /* the supervisor, and its start time (/proc/pid/stat */
    uint64_t sup_start;         /* field 22; 0: unknown): exited, the pool is gone */
};

#define PYF_LIVE 0
#define PYF_GONE_CLOSED 1       /* the pool closed the channel, or stopped */
#define PYF_GONE_POOL 2         /* the supervisor stopped beating and has exited */
/* a wait without end re-checks liveness this often (a stopped pool wakes nobody) */
#define PYF_WATCH_SLICE_NS 200000000

/* Revoked?  One relaxed load: for the hot paths. */
static inline int pyf_revoked(const struct pyf_liveness *l)
{
    return l->state &&
           atomic_load_explicit((const _Atomic uint32_t *)l->state, memory_order_relaxed) ==
               RTUDP_DIRECT_REVOKED;
}
/* PYF_LIVE or why not (reads the clock: off the hot paths) */
int pyf_gone(const struct pyf_liveness *l);
/* Sets ChannelClosedError / PoolNotRunningError for `why` naming channel `name`; NULL */
PyObject *pyf_gone_error(int why, PyObject *name);
/* _watch(state_address, heartbeat_address, stale_ns, supervisor_pid, supervisor_start)
 * parsed into `l` (all 0: off) */
#define PYF_WATCH_NARGS 5
int pyf_watch_args(PyObject *const *args, Py_ssize_t nargs, struct pyf_liveness *l);

/* the module's term_cleanup (termclean.c) */
extern PyMethodDef pyf_term_methods[];
/* drx.c: direct receive's module functions */
extern PyMethodDef pyf_drx_methods[];

/* C base of BroadcastReader: one reader's cursor (cursor.c) */
typedef struct {
    PyObject_HEAD
    PyfBcastPort *port; /* keeps the ring object alive; its h.bound says if it is mapped */
    struct rtudp_bcast_reader rd;
    uint8_t *buf;       /* max_payload bytes for single reads */
    /* the last datagram source as a (host, port) tuple: a channel's packets mostly
     * come from one peer, and formatting an address costs more than the rest */
    struct rtudp_sockaddr last_addr;
    PyObject *last_source;
    /* waits on an empty ring made on the channel socket itself (off: all zero) */
    struct rtudp_drx_reader drx;
    struct pyf_liveness live;   /* a wait on a closed channel or a dead pool raises */
    PyObject *live_name;        /* the channel's name, for that error */
    /* what a record a list read had already taken could not become (a bad record):
     * the list hands over the records before it, the next read raises this */
    PyObject *pending;
} PyfBcastCursor;

extern PyTypeObject pyf_MpscPortType, pyf_BcastPortType, pyf_BcastCursorType,
    pyf_ChannelBaseType;

/* What every type of _fast is: a GC-tracked C base type that a Python class derives
 * from (tp_new only zero-fills; the Python __init__ does the rest).  Each type's own
 * fields (dealloc, traverse, methods, ...) follow it in its initializer. */
#define PYF_BASE_TYPE(ctype, pyname, doc)                                        \
    PyVarObject_HEAD_INIT(NULL, 0)                                               \
    .tp_name = "rtudp.shmring._fast." pyname, .tp_basicsize = sizeof(ctype),    \
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,   \
    .tp_doc = doc, .tp_new = PyType_GenericNew
/* a ring port's type (MpscPort, BcastPort): the base, the port's dealloc and traverse */
#define PYF_PORT_TYPE(ctype, pyname, doc)                                        \
    PYF_BASE_TYPE(ctype, pyname, doc), .tp_dealloc = (destructor)pyf_port_dealloc, \
    .tp_traverse = (traverseproc)pyf_port_traverse

/* ValueError "ring <name> is closed"; NULL */
PyObject *pyf_closed_error(struct pyf_port_head *h);
/* ValueError: a record of len bytes does not fit the ring; NULL */
PyObject *pyf_too_big(struct pyf_port_head *h, Py_ssize_t len);
/* the exception an RTUDP_* code from the ring deserves; NULL */
PyObject *pyf_ring_error(struct pyf_port_head *h, int rc, const char *what);

/* port.c: what both port types (MpscPort, BcastPort) share */
/* _bind(name, address, avail): validate the ring mapped at address (cffi gives it) as
 * the port's kind of ring and use it */
PyObject *pyf_port_bind(PyfPort *self, PyObject *const *args, Py_ssize_t nargs);
/* _unbind(): forget the mapping; every method checks before it touches the ring */
PyObject *pyf_port_unbind(PyfPort *self, PyObject *unused);
void pyf_port_dealloc(PyfPort *self);
int pyf_port_traverse(PyfPort *self, visitproc visit, void *arg);
/* PyMethodDef entries by calling convention (the cast a METH_FASTCALL function needs) */
#define PYF_FASTCALL(name, fn, doc) {name, (PyCFunction)(void (*)(void))(fn), METH_FASTCALL, doc}
#define PYF_FASTCALL_KW(name, fn, doc)                                                 \
    {name, (PyCFunction)(void (*)(void))(fn), METH_FASTCALL | METH_KEYWORDS, doc}
#define PYF_NOARGS(name, fn, doc) {name, (PyCFunction)(fn), METH_NOARGS, doc}
#define PYF_ONEARG(name, fn, doc) {name, (PyCFunction)(fn), METH_O, doc}

/* their _bind and _unbind, first in each port type's method table */
#define PYF_PORT_METHODS                                                                \
    PYF_FASTCALL("_bind", pyf_port_bind,                                                \
                 "_bind(name, address, avail): validate and use the ring mapped at address."), \
    PYF_NOARGS("_unbind", pyf_port_unbind, "Forget the mapping (the ring closes).")
/*
 * One record as try_put and write take it: parse (data, <time_name>=0, flags=0), check
 * that the ring is bound and the payload fits, then pass it to `one` on `ring`.  Returns
 * what `one` returned (an RTUDP_ code), or PYF_ARGS_FAILED with a Python error set.
 */
typedef int (*pyf_one_record)(void *ring, const char *data, uint32_t len, int64_t time_ns,
                              uint16_t flags);
#define PYF_ARGS_FAILED INT32_MIN
int pyf_record_call(struct pyf_port_head *h, const char *fn, const char *time_name,
                    PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                    pyf_one_record one, void *ring);
/* A batch for put_many / write_many, all or nothing: items as a fast sequence (a new
 * reference) of buffers of at most max_payload bytes each, on a bound ring; NULL with
 * the error set if not.  fn names the method in the error. */
PyObject *pyf_batch(struct pyf_port_head *h, PyObject *items, const char *fn);

/* cursor.c: the cursor's ring if it is still mapped, else NULL with the error set */
PyfBcastPort *pyf_cursor_port(PyfBcastCursor *self);
/* wait (GIL released) until the ring has a record for self: on the channel socket
 * itself when direct receive is on and can be had, else on the ring's doorbell;
 * deadline 0: look once.  RTUDP_OK, RTUDP_ETIMEDOUT, RTUDP_EINTR or RTUDP_ESYS. */
int pyf_cursor_wait(PyfBcastCursor *self, PyfBcastPort *port, int64_t deadline, int64_t spin);
/*
 * The next RX record as packet type `type` (a tuple type: packet_type(data, source,
 * rx_ns, hw_ns, seq, lost)), or None once `deadline` (CLOCK_MONOTONIC ns; 0: do not
 * wait) passed; waits with the GIL released, running signal handlers on EINTR.
 */
PyObject *pyf_next_packet(PyfBcastCursor *self, int64_t deadline, int64_t spin,
                          PyTypeObject *type);
/*
 * The next RX record into self->buf (*len bytes; *lost records lost just before it),
 * waiting as pyf_next_packet does: 1, 0 once `deadline` passed (0: do not wait), or -1
 * with the error set (`what` names the call in it).
 */
int pyf_cursor_next(PyfBcastCursor *self, int64_t deadline, int64_t spin, uint32_t *len,
                    uint64_t *lost, const char *what);

/* (host, port) of a datagram source, None when the record names none (the last one
 * is kept: a channel's packets mostly come from one peer) */
PyObject *pyf_source_tuple(PyfBcastCursor *self, const struct rtudp_sockaddr *a);
/* an instance of tuple type `type` holding items[0..n), new references it steals
 * (all of them, on failure too); NULL with the error set if one is NULL */
PyObject *pyf_tuple_of(PyTypeObject *type, PyObject **items, int n);
/* one RX record of len bytes in self->buf as an instance of `type` (NULL: error set) */
typedef PyObject *(*pyf_record_builder)(PyfBcastCursor *self, PyTypeObject *type, uint32_t len,
                                        uint64_t lost);
/* _recv_many and its kin: (deadline_ns, spin_ns, max_n, type) parsed (a TypeError
 * naming `usage` if not), then up to max_n RX records built by `build`, the first
 * waited for until deadline_ns (0: do not wait), the rest what is there; an error
 * after the first is left for the next read */
PyObject *pyf_recv_list(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs,
                        const char *usage, pyf_record_builder build);
/* _recv_packet and its kin: (deadline_ns, spin_ns, type) parsed (a TypeError naming
 * `usage` if not), then the next RX record built by `build`, or None once deadline_ns
 * passed, waiting as pyf_next_packet does */
PyObject *pyf_recv_one(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs,
                       const char *usage, pyf_record_builder build);

/* rtpframe.c: a jitter-buffered rtp channel's RX records as frames */
PyObject *pyf_cursor_recv_frame(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyf_cursor_recv_frames(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs);

/* batch.c: BcastCursor._recv_batch and MpscPort._put_batch (columns in and out) */
PyObject *pyf_cursor_recv_batch(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyf_mpsc_put_batch(PyfMpscPort *self, PyObject *const *args, Py_ssize_t nargs);

/* channel.c: ChannelBase ready (its type and the names it calls); -1 with an error */
int pyf_channel_ready(void);

#endif /* RTUDP_PYFAST_H */
