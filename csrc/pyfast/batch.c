/*
 * batch.c - packets in and out as columns: the C half of Channel.recv_batch and
 * Channel.send_batch (rtudp.batch builds the numpy arrays; this fills them).
 *
 * Why in C: a packet as a Python object costs more than its whole trip through the
 * ring.  Here a batch is one call that writes each record's fields straight into the
 * caller's arrays (any writable buffer: the module needs no numpy headers, so numpy
 * stays an optional extra), and its payload into one buffer with offsets.
 */
#include "pyfast.h"

#include <string.h>

/* the columns recv_batch fills, in _recv_batch's order, and each one's element size */
enum {
    COL_RX_NS, COL_HW_NS, COL_SEQ, COL_LENGTH, COL_LOST, COL_FAMILY, COL_ADDR, COL_PORT,
    COL_OFFSETS, COL_PAYLOAD, N_COLS
};
static const char *const col_name[N_COLS] = {"rx_ns", "hw_ns", "seq", "length", "lost",
                                             "src_family", "src_addr", "src_port", "offsets",
                                             "payload"};
/* bytes a column needs per packet (offsets: one more entry; payload: checked apart) */
static const Py_ssize_t col_size[N_COLS] = {8, 8, 8, 4, 8, 2, 16, 2, 8, 0};

static void release_all(Py_buffer *v, int n)
{
    for (int i = 0; i < n; i++)
        PyBuffer_Release(&v[i]);
}

/* the writable, contiguous buffers of `cols` (a tuple of N_COLS), each large enough for
 * max_n packets; 0, or -1 with an error naming the column */
static int get_columns(PyObject *cols, Py_ssize_t max_n, Py_buffer *v)
{
    if (!PyTuple_Check(cols) || PyTuple_GET_SIZE(cols) != N_COLS) {
        PyErr_Format(PyExc_TypeError, "_recv_batch: columns must be a tuple of %d buffers",
                     N_COLS);
        return -1;
    }
    for (int i = 0; i < N_COLS; i++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(cols, i), &v[i],
                               PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
            release_all(v, i);
            return -1;
        }
        Py_ssize_t need = col_size[i] * (max_n + (i == COL_OFFSETS));
        if (v[i].len < need) {
            PyErr_Format(PyExc_ValueError, "_recv_batch: column %s has %zd bytes, %zd needed",
                         col_name[i], v[i].len, need);
            release_all(v, i + 1);
            return -1;
        }
    }
    return 0;
}

/* one RX record (meta + datagram, in buf) into row i of the columns; the datagram goes
 * to the payload buffer at *used.  -1 with an error if the record is malformed or its
 * payload does not fit (the caller sized the buffer: cannot happen on a sane ring) */
static int put_row(Py_buffer *v, Py_ssize_t i, const uint8_t *buf, uint32_t len, uint64_t lost,
                   Py_ssize_t *used)
{
    if (len < sizeof(struct rtudp_rx_meta)) {
        PyErr_Format(pyf_BadSegmentError, "RX record of %u bytes, shorter than its %zu-byte meta",
                     len, sizeof(struct rtudp_rx_meta));
        return -1;
    }
    struct rtudp_rx_meta m;
    memcpy(&m, buf, sizeof m);
    uint32_t dlen = len - (uint32_t)sizeof m;
    if (*used + (Py_ssize_t)dlen > v[COL_PAYLOAD].len) {
        PyErr_Format(PyExc_ValueError, "_recv_batch: a %u-byte datagram does not fit the "
                     "payload buffer (%zd of %zd bytes used)", dlen, *used, v[COL_PAYLOAD].len);
        return -1;
    }
    ((int64_t *)v[COL_RX_NS].buf)[i] = m.rx_ns;
    ((int64_t *)v[COL_HW_NS].buf)[i] = m.hw_ns;
    ((uint64_t *)v[COL_SEQ].buf)[i] = m.rx_seq;
    ((uint32_t *)v[COL_LENGTH].buf)[i] = dlen;
    ((uint64_t *)v[COL_LOST].buf)[i] = lost;
    ((uint16_t *)v[COL_FAMILY].buf)[i] = m.source.family;
    memcpy((uint8_t *)v[COL_ADDR].buf + 16 * i, m.source.addr, 16);
    ((uint16_t *)v[COL_PORT].buf)[i] = m.source.port;
    ((int64_t *)v[COL_OFFSETS].buf)[i] = *used;
    memcpy((uint8_t *)v[COL_PAYLOAD].buf + *used, buf + sizeof m, dlen);
    *used += dlen;
    return 0;
}

/*
 * _recv_batch(deadline_ns, spin_ns, max_n, columns) -> n: up to max_n RX records into
 * the columns (see col_name; offsets gets n + 1 entries), waiting (GIL released) until
 * deadline_ns for the first one (0: do not wait).  0 when none came in time.
 */
PyObject *pyf_cursor_recv_batch(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t deadline, spin;
    Py_ssize_t max_n;
    if (nargs != 4 || pyf_get_i64(args[0], INT64_MAX, "deadline_ns", &deadline) < 0 ||
        pyf_get_i64(args[1], 0, "spin_ns", &spin) < 0 ||
        pyf_get_count(args[2], 1, "max_n", &max_n) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_recv_batch(deadline_ns, spin_ns, max_n, columns)");
        return NULL;
    }
    Py_buffer v[N_COLS];
    if (get_columns(args[3], max_n, v) < 0)
        return NULL;
    Py_ssize_t n = 0, used = 0;
    PyObject *ret = NULL;
    while (n < max_n) {
        uint32_t len;
        uint64_t lost;
        /* the first record may be waited for, the rest are what is there */
        int got = pyf_cursor_next(self, n ? 0 : deadline, spin, &len, &lost, "recv_batch");
        if (got < 0) {
            if (!n)
                goto out;
            PyErr_Clear(); /* hand over what we have; the next call reports it */
            break;
        }
        if (!got)
            break;
        if (put_row(v, n, self->buf, len, lost, &used) < 0)
            goto out;
        n++;
    }
    ((int64_t *)v[COL_OFFSETS].buf)[n] = used;
    ret = PyLong_FromSsize_t(n);
out:
    release_all(v, N_COLS);
    return ret;
}

/* a read-only contiguous buffer argument; 0, or -1 with an error naming `what` */
static int get_readonly(PyObject *o, Py_buffer *v, const char *what)
{
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous buffer, not %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    return 0;
}

/*
 * _put_batch(buffer, lengths, at_ns, at_ns_each, limit) -> count: the datagrams of
 * `buffer` back to back, lengths[i] bytes each (uint32 buffer), each due at at_ns, or
 * at at_ns_each[i] (int64 buffer; None: all at at_ns), none larger than limit.  Stops
 * at the first one the ring has no room for (the caller raises BackPressureError with
 * the count) and wakes the worker once.
 */
PyObject *pyf_mpsc_put_batch(PyfMpscPort *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t at_ns, limit;
    if (nargs != 5 || pyf_get_i64(args[2], 0, "at_ns", &at_ns) < 0 ||
        pyf_get_i64(args[4], 0, "limit", &limit) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_put_batch(buffer, lengths, at_ns, at_ns_each, "
                                             "limit)");
        return NULL;
    }
    if (!self->h.bound)
        return pyf_closed_error(&self->h);
    Py_buffer data, lens, each = {0};
    if (get_readonly(args[0], &data, "buffer") < 0)
        return NULL;
    if (get_readonly(args[1], &lens, "lengths") < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    int has_each = args[3] != Py_None;
    if (has_each && get_readonly(args[3], &each, "at_ns") < 0) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&lens);
        return NULL;
    }
    PyObject *ret = NULL;
    Py_ssize_t n = lens.len / 4, sent = 0, off = 0;
    const uint32_t *len = lens.buf;
    const int64_t *at = each.buf;
    if (has_each && each.len / 8 != n) {
        PyErr_Format(PyExc_ValueError, "send_batch: %zd deadlines for %zd datagrams", each.len / 8,
                     n);
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((int64_t)len[i] > limit || (Py_ssize_t)len[i] > data.len - off) {
            PyErr_Format(PyExc_ValueError, len[i] > limit
                         ? "send_batch: datagram %zd has %u bytes, over the limit of %lld"
                         : "send_batch: datagram %zd (%u bytes) runs past the end of the buffer",
                         i, len[i], (long long)limit);
            goto out;
        }
        if (has_each && at[i] < 0) {
            PyErr_Format(PyExc_ValueError, "send_batch: at_ns[%zd] is %lld, must be >= 0 (a "
                         "time.monotonic_ns() value)", i, (long long)at[i]);
            goto out;
        }
        off += len[i];
    }
    off = 0;
    int64_t earliest = INT64_MAX; /* of what went in (0 = now) */
    for (; sent < n; sent++) {
        int64_t when = has_each ? at[sent] : at_ns;
        int rc = rtudp_mpsc_try_put_quiet(&self->m, (const uint8_t *)data.buf + off, len[sent],
                                          when, 0);
        if (rc == RTUDP_EFULL)
            break;
        if (rc != RTUDP_OK) {
            pyf_ring_error(&self->h, rc, "send_batch");
            break;
        }
        off += len[sent];
        if (when < earliest)
            earliest = when;
    }
    if (sent)
        rtudp_mpsc_wake_at(&self->m, earliest);
    if (!PyErr_Occurred())
        ret = PyLong_FromSsize_t(sent);
out:
    PyBuffer_Release(&data);
    PyBuffer_Release(&lens);
    if (has_each)
        PyBuffer_Release(&each);
    return ret;
}
