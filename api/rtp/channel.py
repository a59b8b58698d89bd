"""The handle of an ``rtp`` channel: frames out, ordered frames and erasures in.

``Pool.open_channel(name, kind="rtp", options={...})`` returns an :class:`RtpChannel`
(options: :mod:`rtudp.workers.rtp_kind`).  The worker does the RTP work:

- send: :meth:`RtpChannel.send` queues a payload; the worker gives it its RTP header
  (SSRC, sequence number, timestamp) and sends it one ptime after the previous frame
  (``tx_mode="paced"``) or at ``at_ns`` (``"timed"``).  ``"raw"`` sends datagrams as
  given.
- receive: the worker parses each datagram and puts it through a jitter buffer;
  :meth:`RtpChannel.recv` returns :class:`RtpFrame`: packets in sequence order and
  erasure records for the gaps declared lost, each with the kernel receive time.
  Invalid datagrams are counted (``stats()["rtp_rx_invalid"]``), never delivered.
  ``rx_mode="raw"`` delivers datagrams as a udp channel does.
"""
from __future__ import annotations

import socket
import struct
from typing import Any, NamedTuple, Sequence

from rtudp.channel import Channel, _deadline_ns
from rtudp.shmring._native import ffi, lib
from rtudp.shmring.channel import RX_META, fill_sockaddr, parse_rx_record
from rtudp.shmring.errors import BadSegmentError
from rtudp.shmring.kinds import get as kind

HDR_ROOM = lib.RTUDP_RTP_HDR_ROOM
_ROOM = bytes(HDR_ROOM)


def _frame_struct() -> struct.Struct:
    """``struct rtudp_rtp_frame`` as a ``struct`` format, checked against cffi's offsets."""
    fields = (("kind", "B"), ("pt", "B"), ("marker", "B"), ("seq", "H"), ("ts", "I"),
              ("ssrc", "I"), ("lseq", "Q"), ("lseq_end", "Q"), ("ts_span", "Q"),
              ("payload_off", "I"), ("payload_len", "I"))
    name = "struct rtudp_rtp_frame"
    fmt, pos = "<", 0
    for field, code in fields:
        off = ffi.offsetof(name, field)
        if off < pos:
            raise ImportError(f"{name} fields overlap: rebuild rtudp")
        fmt += "x" * (off - pos) + code
        pos = off + struct.calcsize("<" + code)
    fmt += "x" * (ffi.sizeof(name) - pos)
    s = struct.Struct(fmt)
    if s.size != ffi.sizeof(name):
        raise ImportError(f"{name} is {s.size} bytes in Python, {ffi.sizeof(name)} in C")
    return s


_FRAME = _frame_struct()

#: the kind area's counters (csrc/proto/rtp_area.h), as stats() keys once prefixed ``rtp_``
AREA_COUNTERS = tuple(c.name for c in kind("rtp").layout.counters)


class RtpFrame(NamedTuple):
    """A frame from the jitter buffer: a packet, or an erasure (packets declared lost).

    Packet: ``data`` is the whole datagram, ``payload`` its payload, ``lseq`` the
    64-bit extended sequence number, ``rx_ns`` the kernel receive time
    (CLOCK_MONOTONIC ns).  Erasure: ``lseq``..``lseq_end`` (inclusive) were lost,
    covering ``ts_span`` timestamp ticks; ``rx_ns`` is when the worker declared them.
    ``lost``: records this reader missed just before this one (it fell a ring behind).
    """

    erasure: bool
    lseq: int
    lseq_end: int
    ts_span: int
    seq: int
    ts: int
    ssrc: int
    pt: int
    marker: bool
    payload: bytes
    data: bytes
    source: tuple[str, int] | None
    rx_ns: int
    rx_seq: int
    lost: int = 0


def parse_frame_record(record: bytes, lost: int = 0) -> RtpFrame:
    """An RX ring record of a jbuf rtp channel as an :class:`RtpFrame`
    (BadSegmentError if it does not hold together)."""
    meta, rest = parse_rx_record(record)
    if len(rest) < _FRAME.size:
        raise BadSegmentError(f"rtp RX record of {len(record)} bytes is shorter than its "
                              f"{RX_META + _FRAME.size}-byte header")
    (kind, pt, marker, seq, ts, ssrc, lseq, lseq_end, span, off,
     plen) = _FRAME.unpack_from(rest)
    data = rest[_FRAME.size:]
    if kind == lib.RTUDP_RTP_FRAME_ERASURE:
        return RtpFrame(True, lseq, lseq_end, span, 0, 0, 0, 0, False, b"", b"", None,
                        meta.rx_ns, meta.rx_seq, lost)
    if kind != lib.RTUDP_RTP_FRAME_PACKET or off + plen > len(data):
        raise BadSegmentError(f"rtp RX record: frame kind {kind}, payload {off}+{plen} in a "
                              f"{len(data)}-byte datagram")
    return RtpFrame(False, lseq, lseq, 0, seq, ts, ssrc, pt, bool(marker), data[off:off + plen],
                    data, meta.source, meta.rx_ns, meta.rx_seq, lost)


_NTP_UNIX_S = 2208988800


def ntp_to_ns(ntp: int) -> int:
    """An NTP timestamp (32.32 fixed point, seconds since 1900) as CLOCK_REALTIME ns."""
    return ((ntp >> 32) - _NTP_UNIX_S) * 1_000_000_000 + ((ntp & 0xFFFFFFFF) * 1_000_000_000
                                                           + (1 << 31) >> 32)


def place_on_sender_clock(ts: int, sr_ns: int, sr_ts: int, clock_rate: int) -> int:
    """The wall-clock time (ns) of RTP timestamp ``ts`` of a sender whose SR said that
    ``sr_ts`` was sampled at ``sr_ns``: timestamps differ by a signed 32-bit amount."""
    if clock_rate <= 0:
        raise ValueError(f"clock_rate must be positive, got {clock_rate!r}")
    d = (ts - sr_ts) & 0xFFFFFFFF
    if d >= 1 << 31:
        d -= 1 << 32
    return sr_ns + d * 1_000_000_000 // clock_rate


def _flags(pt: int | None, marker: bool) -> int:
    flags = lib.RTUDP_RTP_F_MARKER if marker else 0
    if pt is not None:
        if isinstance(pt, bool) or not isinstance(pt, int) or not 0 <= pt <= 127 or \
                72 <= pt <= 76:
            raise ValueError(f"payload type must be an int 0..127 outside 72..76 (RTCP), "
                             f"got {pt!r}")
        flags |= lib.RTUDP_RTP_F_PT | pt
    return flags


class RtpChannel(Channel):
    """One process's handle on an ``rtp`` channel (see the module docstring)."""

    KIND = lib.RTUDP_KIND_RTP
    HANDLE_NAME = "rtudp.rtp.RtpChannel"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        size = ffi.sizeof("struct rtudp_rtp_area")
        if self._seg.area_bytes < size:
            raise BadSegmentError(f"rtp channel {self.name!r}: kind area of "
                                  f"{self._seg.area_bytes} bytes, needs {size}")
        self._area = ffi.cast("struct rtudp_rtp_area *", self._seg.area)
        a = self._area
        self.tx_mode = {v: k for k, v in _TX.items()}.get(int(a.tx_mode), "?")
        self.rx_mode = "raw" if a.rx_mode == lib.RTUDP_RTP_RX_RAW else "jbuf"
        self.clock_rate = int(a.clock_rate)
        self.ptime_us = int(a.ptime_us)
        self.payload_type = int(a.payload_type)
        self._framed = a.tx_mode != lib.RTUDP_RTP_TX_RAW
        if self._framed and self._can_send:
            # send_many() queues each payload behind the header's room, in C
            self._fast_send(self._tx, max(self.max_datagram - HDR_ROOM, 0), self._horizon.ns,
                            HDR_ROOM)
        if a.tx_mode == lib.RTUDP_RTP_TX_PACED:
            # a paced frame leaves no earlier than the stream's clock: a top-up wakes a
            # worker asleep until before then no more
            self._tx.wire_not_before(ffi.addressof(a, "tx_next_at_ns"))

    # ------------------------------------------------------------ sending

    def send(self, data: bytes, at_ns: int | None = None, pt: int | None = None,
             marker: bool = False) -> None:
        """Queue one frame's payload (tx_mode raw: one datagram as it is).

        Paced: it leaves one ptime after the previous frame (the first at once, or at
        ``at_ns``); timed: at ``at_ns`` (None = now), its timestamp following the
        deadline.  ``pt`` overrides the channel's payload type, ``marker`` sets the
        marker bit.  BackPressureError when the TX ring is full.
        """
        if not self._framed:
            if pt is not None or marker:
                raise ValueError(f"channel {self.name!r} sends raw datagrams (tx_mode raw): "
                                 f"pt/marker are the sender's to write")
            super().send(data, at_ns)
            return
        flags = _flags(pt, marker)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"payload must be bytes-like, not {type(data).__name__}")
        frame = _ROOM + bytes(data)
        if not self._can_send or len(frame) > self.max_datagram:
            self._send_error(frame, at_ns)
        if not self._try_put(frame, self._horizon.check(at_ns), flags):
            raise self._full(len(frame))

    # send_many(items, at_ns=None) is ChannelBase's (C): several payloads queued in
    # order (paced: they leave one ptime apart), each with the header's room in front
    # (framed tx modes, _fast_send's room); the rest goes to _send_many_checked.

    def _as_datagrams(self, items: Sequence[bytes]) -> Sequence[bytes]:
        """send_many's records: each payload behind the header's room (framed tx
        modes), or as it is (raw)."""
        if not self._framed:
            return items
        return [_ROOM + bytes(p) for p in items]

    def set_target(self, host: str, port: int) -> None:
        """Send to (host, port) from now on (numeric address; any process may retarget)."""
        self._check_send()
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
            raise ValueError(f"port must be an int 1..65535, got {port!r}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sa = ffi.new("struct rtudp_sockaddr *")
        try:
            fill_sockaddr(sa, family, host, port)
        except OSError:
            raise ValueError(f"target host {host!r} is not a numeric IPv4/IPv6 address") \
                from None
        rc = lib.rtudp_rtp_set_target(self._seg.area, self._seg.area_bytes, sa)
        if rc != lib.RTUDP_OK:
            raise RuntimeError(f"channel {self.name!r}: set_target({host!r}, {port}) failed "
                               f"(code {rc})")

    def send_batch(self, buffer: Any, lengths: Any = None, at_ns: Any = None) -> int:
        """:meth:`rtudp.Channel.send_batch` for frames: each payload of ``buffer`` is one
        frame's (framed tx modes: the worker gives it its RTP header, with the channel's
        payload type; raw: one datagram as it is).  Needs numpy."""
        if not self._framed:
            return super().send_batch(buffer, lengths, at_ns)
        from rtudp.batch import batch_arrays
        from .batch import with_room
        self._check_send()
        data, lens, at, each = batch_arrays(buffer, lengths, at_ns, self._horizon)
        return self._put_columns(*with_room(data, lens), at, each)

    # ------------------------------------------------------------ receiving

    def recv_batch(self, max_n: int = 1024, timeout: float | None = None) -> Any:
        """Up to ``max_n`` received frames as numpy columns, waiting up to ``timeout`` s
        for the first: rx_mode raw, a :class:`rtudp.batch.PacketBatch` of datagrams;
        jbuf, an :class:`rtudp.rtp.batch.RtpFrameBatch` (packets in order and erasures,
        with their RTP fields as columns).  Needs numpy."""
        if self.rx_mode == "raw":  # datagrams as a udp channel's
            return self._recv_records(max_n, timeout, self.max_datagram)
        from .batch import FRAME_BYTES, split_frames
        return split_frames(self._recv_records(max_n, timeout, FRAME_BYTES + self.max_datagram))

    # jbuf: each RX record becomes an RtpFrame in C (csrc/pyfast/rtpframe.c), as
    # parse_frame_record does in Python

    def _try_recv(self) -> Any:
        if self.rx_mode == "raw":
            return super()._try_recv()
        return self._reader._recv_frame(0, 0, RtpFrame)

    def _next(self, timeout: float | None) -> Any:
        if self.rx_mode == "raw":
            return super()._next(timeout)
        return self._reader._recv_frame(_deadline_ns(timeout), self._reader.spin_ns, RtpFrame)

    def _recv_list(self, max_n: int, timeout: float | None) -> list[Any]:
        if self.rx_mode == "raw":
            return super()._recv_list(max_n, timeout)
        return self._reader._recv_frames(_deadline_ns(timeout), self._reader.spin_ns, max_n,
                                         RtpFrame)

    # ------------------------------------------------------------ observation

    @property
    def ssrc(self) -> int:
        """The SSRC the worker sends with."""
        self._check_open()
        return int(self._area.tx_ssrc)

    def _check_open(self) -> None:
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")

    def rtp_stats(self) -> dict[str, int]:
        """The rtp counters of the kind area (no prefix), read without locks.
        (``stats()`` has them too, prefixed ``rtp_``.)"""
        self._check_open()
        return self._seg.kind_values()

    def rtcp_stats(self) -> dict[str, Any]:
        """The RTCP counters (``rtcp_sr_sent``, ``rtcp_rtt_ns``,
        ``rtcp_remote_fraction_lost`` as 0..1, ...): ``stats()``'s ``rtcp_*`` keys."""
        return {k: v for k, v in self.stats().items() if k.startswith("rtcp_")}

    def remote_clock(self) -> tuple[int, int, int] | None:
        """The remote sender's clock from its last RTCP SR: (NTP time as CLOCK_REALTIME
        ns, the RTP timestamp of that instant, its SSRC); None before an SR came."""
        self._check_open()
        ntp = ffi.new("uint64_t *")
        ts = ffi.new("uint32_t *")
        ssrc = ffi.new("uint32_t *")
        for _ in range(100):  # a write in progress: read again
            if lib.rtudp_rtp_remote_clock(self._seg.area, self._seg.area_bytes, ntp, ts, ssrc):
                return ntp_to_ns(int(ntp[0])), int(ts[0]), int(ssrc[0])
            if int(self._area.rtcp_clock_gen) == 0:
                return None
        return None

    def sender_time_ns(self, frame: RtpFrame) -> int | None:
        """When ``frame`` was sampled on its sender's wall clock (CLOCK_REALTIME ns), from
        the sender's last SR (its NTP/RTP mapping: RFC 3550 6.4.1); None for an erasure,
        before an SR came, or for a frame of another source."""
        clock = self.remote_clock()
        if frame.erasure or clock is None or clock[2] != frame.ssrc:
            return None
        return place_on_sender_clock(frame.ts, clock[0], clock[1], self.clock_rate)

    def __repr__(self) -> str:
        return (f"<RtpChannel {self.name!r} pool={self.pool!r} local={self.local} "
                f"tx={self.tx_mode} rx={self.rx_mode}{' closed' if self.closed else ''}>")


_TX = {"paced": lib.RTUDP_RTP_TX_PACED, "timed": lib.RTUDP_RTP_TX_TIMED,
       "raw": lib.RTUDP_RTP_TX_RAW}

__all__ = ["AREA_COUNTERS", "RtpChannel", "RtpFrame", "parse_frame_record"]
