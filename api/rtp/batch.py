"""An rtp channel's frames as numpy columns: what :meth:`RtpChannel.recv_batch` returns
for a jitter-buffered channel (``rx_mode="jbuf"``), and the frame room
:meth:`RtpChannel.send_batch` puts before each payload of a framed channel.

A jbuf channel's RX ring record is ``struct rtudp_rx_meta``, ``struct rtudp_rtp_frame``
(csrc/proto/rtp_area.h), then the datagram.  The C batch read (csrc/pyfast/batch.c)
fills the columns every record has; here numpy splits the frame headers off into their
own columns, without a Python object per frame.
"""
from __future__ import annotations

from typing import Any

from rtudp.batch import PacketBatch, numpy_module
from rtudp.shmring._native import ffi, lib
from rtudp.shmring.errors import BadSegmentError

_FRAME_T = "struct rtudp_rtp_frame"
#: bytes of the frame header before each datagram in a jbuf record
FRAME_BYTES: int = ffi.sizeof(_FRAME_T)
#: the frame header's fields as numpy types (offsets from cffi: no constants of our own)
_FIELDS = (("kind", "u1"), ("pt", "u1"), ("marker", "u1"), ("seq", "<u2"), ("ts", "<u4"),
           ("ssrc", "<u4"), ("lseq", "<u8"), ("lseq_end", "<u8"), ("ts_span", "<u8"),
           ("payload_off", "<u4"), ("payload_len", "<u4"))


def _frame_dtype() -> Any:
    np = numpy_module()
    return np.dtype({"names": [f for f, _ in _FIELDS], "formats": [t for _, t in _FIELDS],
                     "offsets": [ffi.offsetof(_FRAME_T, f) for f, _ in _FIELDS],
                     "itemsize": FRAME_BYTES})


class RtpFrameBatch(PacketBatch):
    """Frames of a jitter-buffered rtp channel as columns: packets in sequence order and
    erasures (gaps declared lost), as :class:`rtudp.rtp.RtpFrame` has them one by one.

    Besides :class:`~rtudp.batch.PacketBatch`'s columns (``payload``/``offsets``/
    ``length``: each frame's whole datagram, empty for an erasure; ``seq``: the
    channel's receive sequence number; ``rx_ns``: the kernel receive time, or when the
    worker declared an erasure): ``erasure`` (bool), ``pt`` (uint8), ``marker`` (bool),
    ``rtp_seq`` (uint16), ``ts`` and ``ssrc`` (uint32), ``lseq`` (uint64, the extended
    sequence number; an erasure's first lost), ``lseq_end`` (uint64, an erasure's last
    lost), ``ts_span`` (uint64, timestamp ticks an erasure covers), ``payload_off`` and
    ``payload_len`` (uint32: the RTP payload within the datagram).
    """

    __slots__ = ("erasure", "pt", "marker", "rtp_seq", "ts", "ssrc", "lseq", "lseq_end",
                 "ts_span", "payload_off", "payload_len")

    def rtp_payload(self, i: int) -> bytes:
        """Frame ``i``'s RTP payload as bytes (one object: for a few, not for all)."""
        start = int(self.offsets[i]) + int(self.payload_off[i])
        return bytes(self.payload[start:start + int(self.payload_len[i])])

    def __repr__(self) -> str:
        return (f"<RtpFrameBatch {len(self)} frames ({int(self.erasure.sum())} erasures), "
                f"{len(self.payload)} payload bytes>")


def split_frames(records: PacketBatch) -> RtpFrameBatch:
    """A batch of jbuf records (each one's bytes: frame header, then datagram) as an
    :class:`RtpFrameBatch`; BadSegmentError naming the record if one does not hold
    together."""
    np = numpy_module()
    n = len(records)
    lengths = records.length.astype(np.int64)
    short = np.flatnonzero(lengths < FRAME_BYTES)
    if short.size:
        i = int(short[0])
        raise BadSegmentError(f"rtp RX record {i} of the batch has {int(lengths[i])} bytes "
                              f"after its meta, less than its {FRAME_BYTES}-byte frame header")
    starts = records.offsets[:n]
    head_at = starts[:, None] + np.arange(FRAME_BYTES)
    heads = records.payload[head_at].reshape(n * FRAME_BYTES).view(_frame_dtype())
    kinds = heads["kind"]
    data_len = lengths - FRAME_BYTES
    packet = kinds == lib.RTUDP_RTP_FRAME_PACKET
    bad = ~(packet | (kinds == lib.RTUDP_RTP_FRAME_ERASURE)) | (packet & (
        heads["payload_off"].astype(np.int64) + heads["payload_len"] > data_len))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise BadSegmentError(f"rtp RX record {i} of the batch: frame kind {int(kinds[i])}, "
                              f"payload {int(heads['payload_off'][i])}+"
                              f"{int(heads['payload_len'][i])} in a {int(data_len[i])}-byte "
                              f"datagram")
    keep = np.ones(int(records.offsets[n]), bool)
    keep[head_at.reshape(-1)] = False
    out = RtpFrameBatch.__new__(RtpFrameBatch)
    for name in ("rx_ns", "hw_ns", "seq", "lost", "src_family", "src_addr", "src_port"):
        setattr(out, name, getattr(records, name))
    out.length = data_len.astype(np.uint32)
    out.offsets = np.concatenate(([0], np.cumsum(data_len))).astype(np.int64)
    out.payload = records.payload[keep]
    # as RtpFrame has them: a packet's lseq_end is its lseq; an erasure has no header
    # fields, no payload
    out.erasure = ~packet
    out.marker = packet & (heads["marker"] != 0)
    out.rtp_seq = np.where(packet, heads["seq"], 0).astype(np.uint16)
    for name in ("pt", "ts", "ssrc", "payload_off", "payload_len"):
        setattr(out, name, np.where(packet, heads[name], 0).astype(heads.dtype[name]))
    out.lseq = heads["lseq"].copy()
    out.lseq_end = np.where(packet, heads["lseq"], heads["lseq_end"]).astype(np.uint64)
    out.ts_span = np.where(packet, 0, heads["ts_span"]).astype(np.uint64)
    return out


def with_room(data: Any, lens: Any) -> tuple[Any, Any]:
    """The payloads data[...] of lengths ``lens`` (back to back), each after
    ``RTUDP_RTP_HDR_ROOM`` zero bytes, as a framed channel's records carry them (the
    worker writes the RTP header there): (buffer, lengths)."""
    np = numpy_module()
    room = int(lib.RTUDP_RTP_HDR_ROOM)
    new_lens = lens.astype(np.int64) + room
    starts = np.cumsum(new_lens) - new_lens
    out = np.zeros(int(new_lens.sum()), np.uint8)
    is_payload = np.ones(out.size, bool)
    is_payload[(starts[:, None] + np.arange(room)).reshape(-1)] = False
    out[is_payload] = data.reshape(-1)[:int(lens.sum(dtype=np.uint64))]
    return out, new_lens.astype(np.uint32)


__all__ = ["FRAME_BYTES", "RtpFrameBatch", "split_frames", "with_room"]
