/*
 * pyrtp.c - rtudp.rtp._rtp: the RTP library (csrc/rtp/) as CPython types.
 *
 * Why the C API and not cffi: a cffi call costs ~200 ns of argument conversion
 * and cannot return a bytes object or a list; per-packet calls here are tens of
 * ns (csrc/pyfast.c measured the same for the rings).  Batch forms
 * (next_many/next_into/udp_in_many) cross into C once per batch.
 *
 * A released jitter-buffer packet is one object (Frame) that answers every
 * librtpsynth attribute path itself (frame.content.frame.rtp.info.seq is the
 * frame's own seq): librtpsynth built five objects per packet.
 *
 * The jitter buffer keeps a strong reference to each buffered datagram (the
 * bytes, or a (bytes, opaque) tuple) in the C slot's `ref`; it comes back in
 * exactly one frame (released) or drop (dropped, DECREF'd here).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <time.h>

#include "g711.h"
#include "generator.h"
#include "header.h"
#include "jbuf.h"
#include "resample.h"

static PyObject *RtpParseError, *RtpError, *ArrayType;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int as_u64(PyObject *o, const char *what, uint64_t max, uint64_t *v)
{
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    unsigned long long x = PyLong_AsUnsignedLongLong(o);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be in 0..%llu, got %R", what,
                     (unsigned long long)max, o);
        return -1;
    }
    if (x > max) {
        PyErr_Format(PyExc_ValueError, "%s must be in 0..%llu, got %llu", what,
                     (unsigned long long)max, x);
        return -1;
    }
    *v = x;
    return 0;
}

static int check_nargs(const char *fn, Py_ssize_t nargs, Py_ssize_t lo, Py_ssize_t hi)
{
    if (nargs < lo || nargs > hi) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd to %zd arguments (%zd given)", fn, lo, hi,
                     nargs);
        return -1;
    }
    return 0;
}

/* ================================================================== Synth */

typedef struct {
    PyObject_HEAD
    struct rtp_gen g;
} Synth;

static int ptime_us_of(PyObject *o, uint32_t *us)
{
    double ms = PyFloat_AsDouble(o);
    if (ms == -1.0 && PyErr_Occurred())
        return -1;
    if (!(ms > 0) || ms * 1000.0 > RTP_GEN_MAX_PTIME_US) {
        PyErr_Format(PyExc_ValueError, "ptime must be > 0 and <= %u ms, got %R",
                     RTP_GEN_MAX_PTIME_US / 1000, o);
        return -1;
    }
    *us = (uint32_t)(ms * 1000.0 + 0.5);
    if (*us == 0)
        *us = 1;
    return 0;
}

static int Synth_init(Synth *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"srate", "ptime", "ssrc", "seq", "ts", NULL};
    PyObject *srate_o, *ptime_o, *ssrc = Py_None, *seq = Py_None, *ts = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$OOO:RtpSynth", names, &srate_o, &ptime_o,
                                     &ssrc, &seq, &ts))
        return -1;
    uint64_t srate, v;
    uint32_t ptime_us;
    if (as_u64(srate_o, "srate", RTP_GEN_MAX_RATE, &srate) < 0 || ptime_us_of(ptime_o, &ptime_us) < 0)
        return -1;
    if (srate == 0) {
        PyErr_Format(PyExc_ValueError, "srate must be > 0, got %R", srate_o);
        return -1;
    }
    int rc = rtp_gen_init(&self->g, (uint32_t)srate, ptime_us);
    if (rc < 0) {
        if (rc == RTP_E_ARG)
            PyErr_Format(PyExc_ValueError, "bad srate %R or ptime %R", srate_o, ptime_o);
        else {
            errno = -rc;
            PyErr_SetFromErrno(PyExc_OSError);
        }
        return -1;
    }
    if (ssrc != Py_None) {
        if (as_u64(ssrc, "ssrc", 0xFFFFFFFFu, &v) < 0)
            return -1;
        self->g.ssrc = (uint32_t)v;
    }
    if (seq != Py_None) {
        if (as_u64(seq, "seq", 0xFFFFu, &v) < 0)
            return -1;
        self->g.seq = (uint16_t)v;
    }
    if (ts != Py_None) {
        if (as_u64(ts, "ts", 0xFFFFFFFFu, &v) < 0)
            return -1;
        self->g.ts = (uint32_t)v;
    }
    return 0;
}

static int gen_error(int rc, uint64_t plen, uint64_t pt)
{
    if (rc == RTP_E_RTCP)
        PyErr_Format(PyExc_ValueError, "pt %llu with the marker bit reads as RTCP (PT 72-76)",
                     (unsigned long long)pt);
    else
        PyErr_Format(PyExc_ValueError, "cannot generate plen=%llu pt=%llu: %s",
                     (unsigned long long)plen, (unsigned long long)pt, rtp_strerror(rc));
    return -1;
}

#define MAX_PLEN 65507u /* largest UDP payload over IPv4, minus nothing: header included below */

static int plen_pt(PyObject *const *args, uint64_t *plen, uint64_t *pt)
{
    if (as_u64(args[0], "plen", MAX_PLEN - RTP_HDR_MIN, plen) < 0 ||
        as_u64(args[1], "pt", 127, pt) < 0)
        return -1;
    return 0;
}

static PyObject *Synth_next_pkt(Synth *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    PyObject *pload = Py_None;
    if (kwnames && PyTuple_GET_SIZE(kwnames)) {
        if (PyTuple_GET_SIZE(kwnames) != 1 ||
            PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "pload") != 0 ||
            nargs != 2) {
            PyErr_SetString(PyExc_TypeError, "next_pkt(plen, pt, pload=None)");
            return NULL;
        }
        pload = args[2];
    } else {
        if (check_nargs("next_pkt", nargs, 2, 3) < 0)
            return NULL;
        if (nargs == 3)
            pload = args[2];
    }
    uint64_t plen, pt;
    if (plen_pt(args, &plen, &pt) < 0)
        return NULL;
    Py_buffer view = {0};
    const uint8_t *pl = NULL;
    size_t pl_len = 0;
    if (pload != Py_None) {
        if (PyBytes_CheckExact(pload)) {
            pl = (const uint8_t *)PyBytes_AS_STRING(pload);
            pl_len = (size_t)PyBytes_GET_SIZE(pload);
        } else {
            if (PyObject_GetBuffer(pload, &view, PyBUF_SIMPLE) < 0)
                return NULL;
            pl = view.buf;
            pl_len = (size_t)view.len;
        }
        if (pl_len > plen) {
            PyErr_Format(PyExc_ValueError, "pload is %zu bytes, longer than plen=%llu", pl_len,
                         (unsigned long long)plen);
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(RTP_HDR_MIN + plen));
    if (out) {
        int rc = rtp_gen_next(&self->g, (uint8_t *)PyBytes_AS_STRING(out), RTP_HDR_MIN + plen,
                              (uint8_t)pt, pl, pl_len, plen, now_ns());
        if (rc < 0) {
            Py_CLEAR(out);
            gen_error(rc, plen, pt);
        }
    }
    if (view.obj)
        PyBuffer_Release(&view);
    return out;
}

static PyObject *Synth_next_many(Synth *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("next_many", nargs, 3, 3) < 0)
        return NULL;
    uint64_t n, plen, pt;
    if (as_u64(args[0], "n", 1u << 24, &n) < 0 || plen_pt(args + 1, &plen, &pt) < 0)
        return NULL;
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list)
        return NULL;
    int64_t now = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(RTP_HDR_MIN + plen));
        if (!b) {
            Py_DECREF(list);
            return NULL;
        }
        int rc = rtp_gen_batch(&self->g, (uint8_t *)PyBytes_AS_STRING(b), RTP_HDR_MIN + plen, 1,
                               (uint8_t)pt, plen, now);
        if (rc < 0) {
            Py_DECREF(b);
            Py_DECREF(list);
            gen_error(rc, plen, pt);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, b);
    }
    return list;
}

static PyObject *Synth_next_into(Synth *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("next_into", nargs, 4, 4) < 0)
        return NULL;
    uint64_t n, plen, pt;
    if (as_u64(args[1], "n", INT32_MAX, &n) < 0 || plen_pt(args + 2, &plen, &pt) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    int rc = rtp_gen_batch(&self->g, view.buf, (size_t)view.len, (uint32_t)n, (uint8_t)pt, plen,
                           now_ns());
    PyBuffer_Release(&view);
    if (rc == RTP_E_NOSPACE) {
        PyErr_Format(PyExc_ValueError, "buffer of %zd bytes cannot hold %llu packets of %llu bytes",
                     view.len, (unsigned long long)n, (unsigned long long)(RTP_HDR_MIN + plen));
        return NULL;
    }
    if (rc < 0)
        return gen_error(rc, plen, pt), NULL;
    return PyLong_FromLong(rc);
}

static PyObject *Synth_set_mbt(Synth *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    return PyLong_FromLong(rtp_gen_set_marker(&self->g, on));
}

static PyObject *Synth_skip(Synth *self, PyObject *arg)
{
    uint64_t n;
    if (as_u64(arg, "npkts", 0xFFFFFFFFu, &n) < 0)
        return NULL;
    rtp_gen_skip(&self->g, (uint32_t)n);
    Py_RETURN_NONE;
}

static PyObject *Synth_resync(Synth *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"ts", "seq", NULL};
    PyObject *ts = Py_None, *seq = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:resync", names, &ts, &seq))
        return NULL;
    uint64_t v;
    if (ts == Py_None && seq == Py_None) {
        rtp_gen_resync_clock(&self->g, now_ns());
        Py_RETURN_NONE;
    }
    /* explicit values are honoured (librtpsynth overwrote them with its own) */
    if (ts != Py_None) {
        if (as_u64(ts, "ts", 0xFFFFFFFFu, &v) < 0)
            return NULL;
        self->g.ts = (uint32_t)v;
        self->g.frac = 0;
    }
    if (seq != Py_None) {
        if (as_u64(seq, "seq", 0xFFFFu, &v) < 0)
            return NULL;
        self->g.seq = (uint16_t)v;
    }
    self->g.marker = true;
    self->g.last_ns = now_ns();
    Py_RETURN_NONE;
}

static PyObject *Synth_get(Synth *self, void *which)
{
    switch ((intptr_t)which) {
    case 0: return PyLong_FromUnsignedLong(self->g.ssrc);
    case 1: return PyLong_FromUnsignedLong(self->g.seq);
    case 2: return PyLong_FromUnsignedLong(self->g.ts);
    case 3: return PyLong_FromUnsignedLong(self->g.clock_rate);
    default: return PyFloat_FromDouble(self->g.ptime_us / 1000.0);
    }
}

static PyGetSetDef Synth_getset[] = {
    {"ssrc", (getter)Synth_get, NULL, "SSRC of the stream", (void *)0},
    {"seq", (getter)Synth_get, NULL, "sequence number of the next packet", (void *)1},
    {"ts", (getter)Synth_get, NULL, "timestamp of the next packet", (void *)2},
    {"srate", (getter)Synth_get, NULL, "RTP clock rate (Hz)", (void *)3},
    {"ptime", (getter)Synth_get, NULL, "packet time (ms)", (void *)4},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Synth_methods[] = {
    {"next_pkt", (PyCFunction)(void (*)(void))Synth_next_pkt, METH_FASTCALL | METH_KEYWORDS,
     "next_pkt(plen, pt, pload=None) -> bytes: the next packet, 12-byte header + plen bytes"},
    {"next_many", (PyCFunction)(void (*)(void))Synth_next_many, METH_FASTCALL,
     "next_many(n, plen, pt) -> list[bytes]: n packets, zero payload"},
    {"next_into", (PyCFunction)(void (*)(void))Synth_next_into, METH_FASTCALL,
     "next_into(buffer, n, plen, pt) -> n: n packets back to back into a writable buffer"},
    {"set_mbt", (PyCFunction)Synth_set_mbt, METH_O,
     "set_mbt(on) -> previous: marker bit for the next packet"},
    {"skip", (PyCFunction)Synth_skip, METH_O,
     "skip(npkts): advance the timestamp by npkts packet times; next packet gets the marker"},
    {"resync", (PyCFunction)(void (*)(void))Synth_resync, METH_VARARGS | METH_KEYWORDS,
     "resync(ts=None, seq=None): explicit values are used as given; with none, the "
     "timestamp advances by the time since the last packet"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SynthType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rtudp.rtp._rtp.RtpSynth",
    .tp_basicsize = sizeof(Synth),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "RtpSynth(srate, ptime, *, ssrc=None, seq=None, ts=None): RTP packet generator",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Synth_init,
    .tp_methods = Synth_methods,
    .tp_getset = Synth_getset,
};

/* ================================================================== frames */

/* A released RTP packet; every librtpsynth path to its fields ends here. */
typedef struct {
    PyObject_HEAD
    PyObject *data;     /* the datagram (bytes) */
    PyObject *opaque;
    PyObject *rtp_data; /* payload slice, made on first access */
    uint64_t lseq;
    int64_t arrival_ns;
    struct rtp_jb_pkt pkt;
} Frame;

typedef struct {
    PyObject_HEAD
    uint64_t lseq_start, lseq_end, ts_diff;
} Erasure;

static PyTypeObject FrameType, ErasureType;

static void Frame_dealloc(Frame *self)
{
    Py_XDECREF(self->data);
    Py_XDECREF(self->opaque);
    Py_XDECREF(self->rtp_data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *self_ref(PyObject *self, void *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *Frame_get(Frame *self, void *which)
{
    const struct rtp_jb_pkt *p = &self->pkt;
    switch ((intptr_t)which) {
    case 0: return PyLong_FromLong(0); /* type: RTPFrameType.RTP */
    case 1: return PyLong_FromUnsignedLongLong(self->lseq);
    case 2: return PyLong_FromUnsignedLong(p->seq);
    case 3: return PyLong_FromUnsignedLong(p->ts);
    case 4: return PyLong_FromUnsignedLong(p->ssrc);
    case 5: return PyLong_FromLong(p->pt);
    case 6: return PyBool_FromLong(p->marker);
    case 7: return PyLong_FromUnsignedLong(p->payload_len);
    case 8: return PyLong_FromUnsignedLong(p->payload_off);
    case 9: return PyLong_FromLongLong(self->arrival_ns);
    case 10:
        if (!self->rtp_data)
            self->rtp_data = PyBytes_FromStringAndSize(PyBytes_AS_STRING(self->data) + p->payload_off,
                                                       p->payload_len);
        return Py_XNewRef(self->rtp_data);
    case 11: return Py_NewRef(self->data);
    default: return Py_NewRef(self->opaque);
    }
}

static PyObject *Frame_repr(Frame *self)
{
    return PyUnicode_FromFormat("RTP_Frame(seq=%llu)", (unsigned long long)self->lseq);
}

static PyGetSetDef Frame_getset[] = {
    {"content", self_ref, NULL, "this frame (librtpsynth FrameWrapper.content)", NULL},
    {"frame", self_ref, NULL, "this frame (librtpsynth RTPFrame.frame)", NULL},
    {"rtp", self_ref, NULL, "this frame (librtpsynth RTPFrameUnion.rtp)", NULL},
    {"info", self_ref, NULL, "this frame (librtpsynth RTPPacket.info)", NULL},
    {"type", (getter)Frame_get, NULL, "RTPFrameType.RTP (0)", (void *)0},
    {"lseq", (getter)Frame_get, NULL, "64-bit extended sequence number", (void *)1},
    {"seq", (getter)Frame_get, NULL, "sequence number on the wire", (void *)2},
    {"ts", (getter)Frame_get, NULL, "RTP timestamp", (void *)3},
    {"ssrc", (getter)Frame_get, NULL, "SSRC", (void *)4},
    {"pt", (getter)Frame_get, NULL, "payload type", (void *)5},
    {"marker", (getter)Frame_get, NULL, "marker bit", (void *)6},
    {"data_size", (getter)Frame_get, NULL, "payload length", (void *)7},
    {"data_offset", (getter)Frame_get, NULL, "payload offset in data", (void *)8},
    {"arrival_ns", (getter)Frame_get, NULL, "CLOCK_MONOTONIC arrival time", (void *)9},
    {"rtp_data", (getter)Frame_get, NULL, "payload bytes", (void *)10},
    {"data", (getter)Frame_get, NULL, "the whole datagram", (void *)11},
    {"opaque", (getter)Frame_get, NULL, "what udp_in() was given with it", (void *)12},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FrameType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rtudp.rtp._rtp.Frame",
    .tp_basicsize = sizeof(Frame),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A released RTP packet (librtpsynth's FrameWrapper/RTPFrame/RTPPacket/RTPInfo in one)",
    .tp_dealloc = (destructor)Frame_dealloc,
    .tp_repr = (reprfunc)Frame_repr,
    .tp_getset = Frame_getset,
};

static PyObject *Erasure_get(Erasure *self, void *which)
{
    switch ((intptr_t)which) {
    case 0: return PyLong_FromLong(1); /* RTPFrameType.ERS */
    case 1: return PyLong_FromUnsignedLongLong(self->lseq_start);
    case 2: return PyLong_FromUnsignedLongLong(self->lseq_end);
    case 3: return PyLong_FromUnsignedLongLong(self->ts_diff);
    default: Py_RETURN_NONE;
    }
}

static PyObject *Erasure_repr(Erasure *self)
{
    return PyUnicode_FromFormat("RTP_Erasure(seq_range=%llu -- %llu)",
                                (unsigned long long)self->lseq_start,
                                (unsigned long long)self->lseq_end);
}

static PyGetSetDef Erasure_getset[] = {
    {"content", self_ref, NULL, "this erasure", NULL},
    {"frame", self_ref, NULL, "this erasure", NULL},
    {"ers", self_ref, NULL, "this erasure", NULL},
    {"type", (getter)Erasure_get, NULL, "RTPFrameType.ERS (1)", (void *)0},
    {"lseq_start", (getter)Erasure_get, NULL, "first lost extended seq", (void *)1},
    {"lseq_end", (getter)Erasure_get, NULL, "last lost extended seq (inclusive)", (void *)2},
    {"ts_diff", (getter)Erasure_get, NULL, "timestamp ticks the lost packets cover (64-bit)",
     (void *)3},
    {"data", (getter)Erasure_get, NULL, "None", (void *)4},
    {"rtp_data", (getter)Erasure_get, NULL, "None", (void *)4},
    {"opaque", (getter)Erasure_get, NULL, "None", (void *)4},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ErasureType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rtudp.rtp._rtp.Erasure",
    .tp_basicsize = sizeof(Erasure),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Packets declared lost: lseq_start..lseq_end, covering ts_diff timestamp ticks",
    .tp_repr = (reprfunc)Erasure_repr,
    .tp_getset = Erasure_getset,
};

/* ================================================================== JBuf */

typedef struct {
    PyObject_HEAD
    struct rtp_jbuf jb;
    int ready;
    uint64_t dropped;
} JBuf;

struct emit_ctx {
    JBuf *self;
    PyObject *out; /* list */
    int failed;
};

/* the ref is a bytes object, or (bytes, opaque) when an opaque was given */
static void ref_parts(PyObject *ref, PyObject **data, PyObject **opaque)
{
    if (PyTuple_CheckExact(ref)) {
        *data = Py_NewRef(PyTuple_GET_ITEM(ref, 0));
        *opaque = Py_NewRef(PyTuple_GET_ITEM(ref, 1));
        Py_DECREF(ref);
    } else {
        *data = ref; /* the slot's reference moves into the frame */
        *opaque = Py_NewRef(Py_None);
    }
}

static void emit_py(void *vctx, const struct rtp_jb_frame *f)
{
    struct emit_ctx *c = vctx;
    PyObject *ref = (PyObject *)(uintptr_t)f->pkt.ref, *obj = NULL;
    if (f->kind == RTP_JB_DROP) {
        c->self->dropped++;
        Py_DECREF(ref);
        return;
    }
    if (f->kind == RTP_JB_PACKET) {
        Frame *fr = PyObject_New(Frame, &FrameType);
        if (!fr) {
            Py_DECREF(ref);
            c->failed = 1;
            return;
        }
        ref_parts(ref, &fr->data, &fr->opaque);
        fr->rtp_data = NULL;
        fr->lseq = f->lseq;
        fr->arrival_ns = f->pkt.arrival_ns;
        fr->pkt = f->pkt;
        obj = (PyObject *)fr;
    } else {
        Erasure *e = PyObject_New(Erasure, &ErasureType);
        if (!e) {
            c->failed = 1;
            return;
        }
        e->lseq_start = f->lseq;
        e->lseq_end = f->lseq_end;
        e->ts_diff = f->ts_span;
        obj = (PyObject *)e;
    }
    /* frames are never lost: an append that fails marks the call failed */
    if (c->failed || PyList_Append(c->out, obj) < 0)
        c->failed = 1;
    Py_DECREF(obj);
}

static void JBuf_dealloc(JBuf *self)
{
    if (self->ready) {
        struct emit_ctx c = {self, NULL, 0};
        rtp_jbuf_destroy(&self->jb, emit_py, &c); /* only drops: DECREF every ref */
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int JBuf_init(JBuf *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"capacity", "latency_ms", "clock_rate", NULL};
    PyObject *cap_o, *lat_o = NULL, *rate_o = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO:RtpJBuf", names, &cap_o, &lat_o, &rate_o))
        return -1;
    uint64_t cap, lat = 0, rate = 8000;
    if (as_u64(cap_o, "capacity", RTP_JB_MAX_CAPACITY, &cap) < 0 ||
        (lat_o && lat_o != Py_None && as_u64(lat_o, "latency_ms", 600000, &lat) < 0) ||
        (rate_o && rate_o != Py_None && as_u64(rate_o, "clock_rate", RTP_GEN_MAX_RATE, &rate) < 0))
        return -1;
    if (cap == 0) {
        PyErr_Format(PyExc_ValueError, "capacity must be >= 1, got %R", cap_o);
        return -1;
    }
    if (self->ready) {
        struct emit_ctx c = {self, NULL, 0};
        rtp_jbuf_destroy(&self->jb, emit_py, &c);
        self->ready = 0;
    }
    int rc = rtp_jbuf_init(&self->jb, (uint32_t)cap, (uint32_t)lat, (uint32_t)rate);
    if (rc < 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->ready = 1;
    self->dropped = 0;
    return 0;
}

/* RtpParseError(text) with .code = the C error code */
static void raise_parse_error(int rc, Py_ssize_t len)
{
    PyObject *exc = PyObject_CallFunction(RtpParseError, "N",
                                          PyUnicode_FromFormat("not an RTP packet (%zd bytes): "
                                                               "%s (error %d)",
                                                               len, rtp_strerror(rc), rc));
    if (!exc)
        return;
    PyObject *code = PyLong_FromLong(rc);
    if (code && PyObject_SetAttrString(exc, "code", code) == 0)
        PyErr_SetObject(RtpParseError, exc);
    Py_XDECREF(code);
    Py_DECREF(exc);
}

static int push_one(JBuf *self, PyObject *data, PyObject *opaque, int64_t now, struct emit_ctx *c,
                    int raise)
{
    PyObject *bytes;
    if (PyBytes_CheckExact(data)) {
        bytes = Py_NewRef(data);
    } else {
        bytes = PyBytes_FromObject(data);
        if (!bytes)
            return -1;
    }
    PyObject *ref = bytes;
    if (opaque && opaque != Py_None) {
        ref = PyTuple_Pack(2, bytes, opaque);
        Py_DECREF(bytes);
        if (!ref)
            return -1;
    }
    Py_ssize_t len = PyBytes_GET_SIZE(bytes);
    int rc = rtp_jbuf_push(&self->jb, (const uint8_t *)PyBytes_AS_STRING(bytes), (size_t)len,
                           (uint64_t)(uintptr_t)ref, now, emit_py, c);
    if (rc == RTP_JB_TAKEN)
        return 0;
    Py_DECREF(ref);
    if (rc > 0) { /* duplicate or late */
        self->dropped++;
        return 0;
    }
    if (raise) {
        raise_parse_error(rc, len);
        return -1;
    }
    return 0;
}

static PyObject *finish(struct emit_ctx *c)
{
    if (c->failed || PyErr_Occurred()) {
        Py_DECREF(c->out);
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return NULL;
    }
    return c->out;
}

#define JBUF_READY(self)                                                                   \
    do {                                                                                   \
        if (!(self)->ready) {                                                              \
            PyErr_SetString(RtpError, "RtpJBuf is not initialised");                       \
            return NULL;                                                                   \
        }                                                                                  \
    } while (0)

static PyObject *JBuf_udp_in(JBuf *self, PyObject *const *args, Py_ssize_t nargs)
{
    JBUF_READY(self);
    if (check_nargs("udp_in", nargs, 1, 2) < 0)
        return NULL;
    struct emit_ctx c = {self, PyList_New(0), 0};
    if (!c.out)
        return NULL;
    if (push_one(self, args[0], nargs > 1 ? args[1] : NULL, now_ns(), &c, 1) < 0) {
        /* a datagram that does not parse releases nothing: no frame is lost here */
        Py_DECREF(c.out);
        return NULL;
    }
    return finish(&c);
}

static PyObject *JBuf_udp_in_many(JBuf *self, PyObject *arg)
{
    JBUF_READY(self);
    PyObject *seq = PySequence_Fast(arg, "udp_in_many() wants a sequence of datagrams");
    if (!seq)
        return NULL;
    struct emit_ctx c = {self, PyList_New(0), 0};
    if (!c.out) {
        Py_DECREF(seq);
        return NULL;
    }
    int64_t now = now_ns();
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n && !c.failed; i++)
        if (push_one(self, items[i], NULL, now, &c, 0) < 0)
            c.failed = 1;
    Py_DECREF(seq);
    return finish(&c);
}

static PyObject *JBuf_poll(JBuf *self, PyObject *const *args, Py_ssize_t nargs)
{
    JBUF_READY(self);
    if (check_nargs("poll", nargs, 0, 1) < 0)
        return NULL;
    int64_t now = now_ns();
    if (nargs && args[0] != Py_None) {
        uint64_t v;
        if (as_u64(args[0], "now_ns", INT64_MAX, &v) < 0)
            return NULL;
        now = (int64_t)v;
    }
    struct emit_ctx c = {self, PyList_New(0), 0};
    if (!c.out)
        return NULL;
    rtp_jbuf_poll(&self->jb, now, emit_py, &c);
    return finish(&c);
}

static PyObject *JBuf_flush(JBuf *self, PyObject *unused)
{
    (void)unused;
    JBUF_READY(self);
    struct emit_ctx c = {self, PyList_New(0), 0};
    if (!c.out)
        return NULL;
    rtp_jbuf_flush(&self->jb, emit_py, &c);
    return finish(&c);
}

static PyObject *JBuf_stats(JBuf *self, PyObject *unused)
{
    (void)unused;
    JBUF_READY(self);
    struct rtp_jb_stats s;
    rtp_jbuf_stats(&self->jb, &s);
    return Py_BuildValue(
        "{s:k,s:K,s:K,s:K,s:K,s:K,s:L,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "ssrc",
        (unsigned long)s.ssrc, "received", s.received, "duplicates", s.duplicates, "late", s.late,
        "reordered", s.reordered, "expected", s.expected, "lost", (long long)s.lost, "erased",
        s.erased, "restarts", s.restarts, "jitter", s.jitter, "other_ssrc", s.other_ssrc,
        "bad_seq", s.bad_seq, "invalid", s.invalid, "probation_dropped", s.probation_dropped,
        "dropped", (unsigned long long)self->dropped);
}

static PyObject *JBuf_get_dropped(JBuf *self, void *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong(self->dropped);
}

static PyGetSetDef JBuf_getset[] = {
    {"dropped", (getter)JBuf_get_dropped, NULL,
     "packets given back without release: duplicates, late, strays", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef JBuf_methods[] = {
    {"udp_in", (PyCFunction)(void (*)(void))JBuf_udp_in, METH_FASTCALL,
     "udp_in(data, opaque=None) -> list of frames released by this datagram"},
    {"udp_in_many", (PyCFunction)JBuf_udp_in_many, METH_O,
     "udp_in_many(datagrams) -> list of frames (invalid datagrams are counted, not raised)"},
    {"poll", (PyCFunction)(void (*)(void))JBuf_poll, METH_FASTCALL,
     "poll(now_ns=None) -> frames whose playout deadline passed (time mode)"},
    {"flush", (PyCFunction)JBuf_flush, METH_NOARGS,
     "flush() -> every buffered packet in order, with erasures for the gaps"},
    {"stats", (PyCFunction)JBuf_stats, METH_NOARGS, "stats() -> dict of per-SSRC statistics"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject JBufType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rtudp.rtp._rtp.RtpJBuf",
    .tp_basicsize = sizeof(JBuf),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "RtpJBuf(capacity, latency_ms=0, clock_rate=8000): RTP jitter buffer",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)JBuf_init,
    .tp_dealloc = (destructor)JBuf_dealloc,
    .tp_methods = JBuf_methods,
    .tp_getset = JBuf_getset,
};

/* ================================================================== G.711 */

static int pcm16_view(PyObject *o, Py_buffer *v)
{
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (v->len % 2 || (v->itemsize != 1 && v->itemsize != 2)) {
        PyErr_Format(PyExc_ValueError,
                     "PCM16 input must be 16-bit samples (itemsize 2, or an even number of bytes); "
                     "got itemsize %zd, %zd bytes", v->itemsize, v->len);
        PyBuffer_Release(v);
        return -1;
    }
    return 0;
}

static PyObject *array_h(Py_ssize_t n, int16_t **data)
{
    PyObject *raw = PyBytes_FromStringAndSize(NULL, n * 2);
    if (!raw)
        return NULL;
    *data = (int16_t *)PyBytes_AS_STRING(raw);
    return raw;
}

/* bytes -> array('h') (one call: array's constructor copies the bytes) */
static PyObject *to_array(PyObject *raw)
{
    if (!raw)
        return NULL;
    PyObject *res = PyObject_CallFunction(ArrayType, "sO", "h", raw);
    Py_DECREF(raw);
    return res;
}

typedef void (*encode_fn)(uint8_t *, const int16_t *, size_t);
typedef void (*decode_fn)(int16_t *, const uint8_t *, size_t);

static PyObject *encode(PyObject *arg, encode_fn enc, uint8_t (*one)(int16_t))
{
    if (PyLong_Check(arg)) {
        long s = PyLong_AsLong(arg);
        if (s == -1 && PyErr_Occurred())
            return NULL;
        if (s < -32768 || s > 32767) {
            PyErr_Format(PyExc_ValueError, "sample must be in -32768..32767, got %ld", s);
            return NULL;
        }
        return PyLong_FromLong(one((int16_t)s));
    }
    Py_buffer v;
    if (pcm16_view(arg, &v) < 0)
        return NULL;
    size_t n = (size_t)v.len / 2;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (out) {
        if (((uintptr_t)v.buf & 1) == 0) {
            enc((uint8_t *)PyBytes_AS_STRING(out), v.buf, n);
        } else { /* odd address: copy sample by sample */
            for (size_t i = 0; i < n; i++) {
                int16_t s;
                memcpy(&s, (const uint8_t *)v.buf + 2 * i, 2);
                PyBytes_AS_STRING(out)[i] = (char)one(s);
            }
        }
    }
    PyBuffer_Release(&v);
    return out;
}

static PyObject *decode(PyObject *arg, decode_fn dec, int16_t (*one)(uint8_t), int as_array)
{
    if (PyLong_Check(arg)) {
        long c = PyLong_AsLong(arg);
        if (c == -1 && PyErr_Occurred())
            return NULL;
        if (c < 0 || c > 255) {
            PyErr_Format(PyExc_ValueError, "G.711 code must be in 0..255, got %ld", c);
            return NULL;
        }
        return PyLong_FromLong(one((uint8_t)c));
    }
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    int16_t *pcm;
    PyObject *raw = array_h(v.len, &pcm);
    if (raw)
        dec(pcm, v.buf, (size_t)v.len);
    PyBuffer_Release(&v);
    return as_array ? to_array(raw) : raw;
}

static PyObject *py_linear2ulaw(PyObject *m, PyObject *a)
{
    (void)m;
    return encode(a, g711_ulaw_encode, g711_linear2ulaw);
}
static PyObject *py_linear2alaw(PyObject *m, PyObject *a)
{
    (void)m;
    return encode(a, g711_alaw_encode, g711_linear2alaw);
}
static PyObject *py_ulaw2linear(PyObject *m, PyObject *a)
{
    (void)m;
    return decode(a, g711_ulaw_decode, g711_ulaw2linear, 1);
}
static PyObject *py_alaw2linear(PyObject *m, PyObject *a)
{
    (void)m;
    return decode(a, g711_alaw_decode, g711_alaw2linear, 1);
}
static PyObject *py_ulaw2pcm(PyObject *m, PyObject *a)
{
    (void)m;
    return decode(a, g711_ulaw_decode, g711_ulaw2linear, 0);
}
static PyObject *py_alaw2pcm(PyObject *m, PyObject *a)
{
    (void)m;
    return decode(a, g711_alaw_decode, g711_alaw2linear, 0);
}

static PyObject *py_resample_linear(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    if (check_nargs("resample_linear", nargs, 3, 3) < 0)
        return NULL;
    uint64_t in_rate, out_rate;
    if (as_u64(args[1], "in_rate", RTP_GEN_MAX_RATE, &in_rate) < 0 ||
        as_u64(args[2], "out_rate", RTP_GEN_MAX_RATE, &out_rate) < 0)
        return NULL;
    if (!in_rate || !out_rate) {
        PyErr_Format(PyExc_ValueError, "in_rate and out_rate must be > 0, got %R and %R", args[1],
                     args[2]);
        return NULL;
    }
    Py_buffer v;
    if (pcm16_view(args[0], &v) < 0)
        return NULL;
    size_t n_in = (size_t)v.len / 2;
    int64_t n_out = resample_out_len(n_in, (uint32_t)in_rate, (uint32_t)out_rate);
    PyObject *raw = NULL;
    int16_t *in = NULL;
    if (n_out < 0 || n_out > PY_SSIZE_T_MAX / 2) {
        PyErr_Format(PyExc_OverflowError, "resampling %zu samples gives too many", n_in);
    } else if ((in = PyMem_Malloc(n_in ? n_in * 2 : 1)) == NULL) {
        PyErr_NoMemory();
    } else {
        memcpy(in, v.buf, n_in * 2); /* aligned copy: the input may be any bytes */
        int16_t *out;
        raw = array_h((Py_ssize_t)n_out, &out);
        if (raw)
            resample_linear(out, (size_t)n_out, in, n_in, (uint32_t)in_rate, (uint32_t)out_rate);
    }
    PyMem_Free(in);
    PyBuffer_Release(&v);
    return to_array(raw);
}

static PyObject *py_strerror(PyObject *m, PyObject *a)
{
    (void)m;
    long c = PyLong_AsLong(a);
    if (c == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(rtp_strerror((int)c));
}

/* parse(data) -> dict of the header fields, or RtpParseError naming the defect */
static PyObject *py_parse(PyObject *m, PyObject *a)
{
    (void)m;
    Py_buffer v;
    if (PyObject_GetBuffer(a, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    struct rtp_hdr h;
    int rc = rtp_parse(v.buf, (size_t)v.len, &h);
    PyObject *res = NULL, *csrc = NULL, *ext = NULL;
    if (rc < 0) {
        raise_parse_error(rc, v.len);
        goto out;
    }
    csrc = PyTuple_New(h.cc);
    ext = PyList_New(0);
    if (!csrc || !ext)
        goto out;
    for (unsigned i = 0; i < h.cc; i++)
        PyTuple_SET_ITEM(csrc, i, PyLong_FromUnsignedLong(h.csrc[i]));
    uint32_t pos = 0;
    struct rtp_ext_elem el;
    int erc;
    while ((erc = rtp_ext_next(v.buf, &h, &pos, &el)) == 1) {
        PyObject *t = Py_BuildValue("(iy#)", el.id, (const char *)v.buf + el.off, (Py_ssize_t)el.len);
        if (!t || PyList_Append(ext, t) < 0) {
            Py_XDECREF(t);
            goto out;
        }
        Py_DECREF(t);
    }
    if (erc < 0) {
        raise_parse_error(erc, v.len);
        goto out;
    }
    res = Py_BuildValue("{s:i,s:i,s:I,s:k,s:k,s:O,s:i,s:i,s:O,s:I,s:I,s:i}", "marker", h.marker,
                        "pt", h.pt, "seq", (unsigned)h.seq, "ts", (unsigned long)h.ts, "ssrc",
                        (unsigned long)h.ssrc, "csrc", csrc, "ext_profile", h.ext_profile,
                        "ext_words", h.ext_words, "ext", ext, "payload_offset", h.payload_off,
                        "payload_len", h.payload_len, "pad_len", h.pad_len);
out:
    Py_XDECREF(csrc);
    Py_XDECREF(ext);
    PyBuffer_Release(&v);
    return res;
}

static PyMethodDef module_methods[] = {
    {"linear2ulaw", py_linear2ulaw, METH_O, "linear2ulaw(sample | pcm16) -> code | bytes"},
    {"linear2alaw", py_linear2alaw, METH_O, "linear2alaw(sample | pcm16) -> code | bytes"},
    {"ulaw2linear", py_ulaw2linear, METH_O, "ulaw2linear(code | bytes) -> sample | array('h')"},
    {"alaw2linear", py_alaw2linear, METH_O, "alaw2linear(code | bytes) -> sample | array('h')"},
    {"ulaw2pcm", py_ulaw2pcm, METH_O, "ulaw2pcm(bytes) -> PCM16 bytes (native order)"},
    {"alaw2pcm", py_alaw2pcm, METH_O, "alaw2pcm(bytes) -> PCM16 bytes (native order)"},
    {"resample_linear", (PyCFunction)(void (*)(void))py_resample_linear, METH_FASTCALL,
     "resample_linear(pcm16, in_rate, out_rate) -> array('h')"},
    {"parse", py_parse, METH_O, "parse(datagram) -> dict of RTP header fields"},
    {"strerror", py_strerror, METH_O, "strerror(code) -> text of an RTP error code"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef rtp_module = {
    PyModuleDef_HEAD_INIT, "rtudp.rtp._rtp", "RTP generator, parser, jitter buffer, G.711 (C).",
    -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__rtp(void)
{
    PyObject *errors = PyImport_ImportModule("rtudp.shmring.errors");
    PyObject *array = PyImport_ImportModule("array");
    if (!errors || !array) {
        Py_XDECREF(errors);
        Py_XDECREF(array);
        return NULL;
    }
    PyObject *base = PyObject_GetAttrString(errors, "RtUdpError");
    ArrayType = PyObject_GetAttrString(array, "array");
    Py_DECREF(errors);
    Py_DECREF(array);
    if (!base || !ArrayType)
        return NULL;
    RtpError = PyErr_NewExceptionWithDoc("rtudp.rtp.RtpError", "Base of the RTP errors.", base, NULL);
    Py_DECREF(base);
    if (!RtpError)
        return NULL;
    PyObject *bases = PyTuple_Pack(2, RtpError, PyExc_ValueError);
    if (!bases)
        return NULL;
    RtpParseError = PyErr_NewExceptionWithDoc(
        "rtudp.rtp.RtpParseError", "A datagram is not a valid RTP packet; .code is the C error.",
        bases, NULL);
    Py_DECREF(bases);
    if (!RtpParseError)
        return NULL;
    PyTypeObject *types[] = {&SynthType, &JBufType, &FrameType, &ErasureType};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    PyObject *m = PyModule_Create(&rtp_module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "RtpSynth", (PyObject *)&SynthType) < 0 ||
        PyModule_AddObjectRef(m, "RtpJBuf", (PyObject *)&JBufType) < 0 ||
        PyModule_AddObjectRef(m, "Frame", (PyObject *)&FrameType) < 0 ||
        PyModule_AddObjectRef(m, "Erasure", (PyObject *)&ErasureType) < 0 ||
        PyModule_AddObjectRef(m, "RtpError", RtpError) < 0 ||
        PyModule_AddObjectRef(m, "RtpParseError", RtpParseError) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
