/*
 * rtpframe.c - the RX records of a jitter-buffered rtp channel (struct rtudp_rx_meta,
 * struct rtudp_rtp_frame, then for a packet its datagram) as frame tuples, one a call
 * or a list of them.  A receiver of many streams spends most of its time here per
 * frame, so the record becomes the frame without a Python call in between.
 */
#include "pyfast.h"

#include <string.h>

#include "proto/rtp_area.h"

/* RtpFrame's fields, in its order (api/rtp/channel.py) */
enum {
    F_ERASURE, F_LSEQ, F_LSEQ_END, F_TS_SPAN, F_SEQ, F_TS, F_SSRC, F_PT, F_MARKER, F_PAYLOAD,
    F_DATA, F_SOURCE, F_RX_NS, F_RX_SEQ, F_LOST, N_FIELDS
};

static PyObject *bad_frame(uint32_t len, const struct rtudp_rtp_frame *f)
{
    if (!f)
        PyErr_Format(pyf_BadSegmentError,
                     "rtp RX record of %u bytes is shorter than its %zu-byte header", len,
                     sizeof(struct rtudp_rx_meta) + sizeof(struct rtudp_rtp_frame));
    else
        PyErr_Format(pyf_BadSegmentError,
                     "rtp RX record: frame kind %u, payload %u+%u in a %zu-byte datagram",
                     (unsigned)f->kind, f->payload_off, f->payload_len,
                     (size_t)len - sizeof(struct rtudp_rx_meta) - sizeof *f);
    return NULL;
}

/* the datagram's fields of a packet frame: seq, ts, ssrc, pt, marker, payload, data,
 * source (new references into items; NULL entries on failure) */
static void packet_fields(PyfBcastCursor *self, const struct rtudp_rx_meta *m,
                          const struct rtudp_rtp_frame *f, const uint8_t *dgram, uint32_t dlen,
                          PyObject **items)
{
    items[F_SEQ] = PyLong_FromUnsignedLong(f->seq);
    items[F_TS] = PyLong_FromUnsignedLong(f->ts);
    items[F_SSRC] = PyLong_FromUnsignedLong(f->ssrc);
    items[F_PT] = PyLong_FromUnsignedLong(f->pt);
    items[F_MARKER] = PyBool_FromLong(f->marker);
    items[F_PAYLOAD] = PyBytes_FromStringAndSize((const char *)dgram + f->payload_off,
                                                 (Py_ssize_t)f->payload_len);
    items[F_DATA] = PyBytes_FromStringAndSize((const char *)dgram, (Py_ssize_t)dlen);
    items[F_SOURCE] = pyf_source_tuple(self, &m->source);
}

/* an erasure carries no datagram: its fields are zeros and empties */
static void erasure_fields(PyObject **items)
{
    for (int i = F_SEQ; i <= F_PT; i++)
        items[i] = PyLong_FromLong(0);
    items[F_MARKER] = Py_NewRef(Py_False);
    items[F_PAYLOAD] = PyBytes_FromStringAndSize(NULL, 0);
    items[F_DATA] = PyBytes_FromStringAndSize(NULL, 0);
    items[F_SOURCE] = Py_NewRef(Py_None);
}

/* the record in self->buf (len bytes, checked here) as frame_type(...) */
static PyObject *rx_frame(PyfBcastCursor *self, PyTypeObject *type, uint32_t len, uint64_t lost)
{
    const size_t head = sizeof(struct rtudp_rx_meta) + sizeof(struct rtudp_rtp_frame);
    if (len < head)
        return bad_frame(len, NULL);
    struct rtudp_rx_meta m;
    struct rtudp_rtp_frame f;
    memcpy(&m, self->buf, sizeof m);
    memcpy(&f, self->buf + sizeof m, sizeof f);
    const uint8_t *dgram = self->buf + head;
    uint32_t dlen = (uint32_t)(len - head);
    int erasure = f.kind == RTUDP_RTP_FRAME_ERASURE;
    if (!erasure && (f.kind != RTUDP_RTP_FRAME_PACKET || f.payload_off > dlen ||
                     f.payload_len > dlen - f.payload_off))
        return bad_frame(len, &f);
    PyObject *items[N_FIELDS];
    items[F_ERASURE] = PyBool_FromLong(erasure);
    items[F_LSEQ] = PyLong_FromUnsignedLongLong(f.lseq);
    items[F_LSEQ_END] = PyLong_FromUnsignedLongLong(erasure ? f.lseq_end : f.lseq);
    items[F_TS_SPAN] = PyLong_FromUnsignedLongLong(erasure ? f.ts_span : 0);
    if (erasure)
        erasure_fields(items);
    else
        packet_fields(self, &m, &f, dgram, dlen, items);
    items[F_RX_NS] = PyLong_FromLongLong(m.rx_ns);
    items[F_RX_SEQ] = PyLong_FromUnsignedLongLong(m.rx_seq);
    items[F_LOST] = PyLong_FromUnsignedLongLong(lost);
    return pyf_tuple_of(type, items, N_FIELDS);
}

/* _recv_frame(deadline_ns, spin_ns, frame_type) -> frame | None */
PyObject *pyf_cursor_recv_frame(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    return pyf_recv_one(self, args, nargs,
                        "_recv_frame(deadline_ns, spin_ns, frame_type: a tuple type)", rx_frame);
}

/* _recv_frames(deadline_ns, spin_ns, max_n, frame_type) -> list */
PyObject *pyf_cursor_recv_frames(PyfBcastCursor *self, PyObject *const *args, Py_ssize_t nargs)
{
    return pyf_recv_list(self, args, nargs,
                         "_recv_frames(deadline_ns, spin_ns, max_n, frame_type: a tuple type)",
                         rx_frame);
}
