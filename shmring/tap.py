"""A tap on a channel: what its worker sends and receives, as the worker mirrors it.

While at least one tap is attached the worker copies every datagram the channel
sends or receives into the channel segment's two tap rings (``ring_offset[2]``: sent,
``[3]``: received; ``csrc/rtudp_shm.h``, ``struct rtudp_tap_line``), each record a
``struct rtudp_tap_meta`` then the datagram, its time the kernel's stamp as
CLOCK_MONOTONIC ns.  A tap claims one of the block's tap slots with its pid (the
worker mirrors while any slot is held) and reads both rings with cursors of its
own: it never slows the worker, and one that falls a ring behind is told how many
records it lost (:attr:`Tap.lost`; also added to the channel's ``tap_lost``).  A tap
killed without closing leaves its pid in a slot; the next tap, and the worker's
100 ms tick, take such a slot back.
"""
from __future__ import annotations

import os
import socket
import struct
from typing import Any, NamedTuple

from ._native import ffi, lib
from .broadcast import BroadcastReader
from .channel import ChannelSegment, block_config, packed_struct, sockaddr_parts
from .closing import Closing
from .control import ControlSegment, channel_segment_name, pool_name
from .errors import BadSegmentError, RtUdpError, SegmentNotFoundError
from .ringspan import RingSpan, SpanBroadcastRing
from .segment import check_message, reserve, shm_path

TAP_META = ffi.sizeof("struct rtudp_tap_meta")


def _meta_struct() -> struct.Struct:
    """``struct rtudp_tap_meta`` as a ``struct`` format, from cffi's offsets."""
    meta = "struct rtudp_tap_meta"
    parts = sockaddr_parts(ffi.offsetof(meta, "peer"),
                           (("family", "H"), ("port", "H"), ("addr", "16s")))
    return packed_struct(meta, parts + [(ffi.offsetof(meta, "wire_len"), "I"),
                                        (ffi.offsetof(meta, "flags"), "I")])


_META = _meta_struct()


class TapPacket(NamedTuple):
    """One datagram the channel sent (``outbound``) or received."""

    time_ns: int                 #: departure / arrival, CLOCK_MONOTONIC ns
    outbound: bool
    kernel_stamp: bool           #: time_ns is the kernel's stamp (else the send/receive call's)
    peer: tuple[str, int] | None  #: the destination (sent) or the source (received)
    wire_len: int                #: the datagram's length (``data`` may be shorter: cut on receive)
    data: bytes


def parse_tap_record(data: bytes, time_ns: int, flags: int) -> TapPacket:
    """A tap ring record as a :class:`TapPacket` (BadSegmentError when it is too short)."""
    if len(data) < TAP_META:
        raise BadSegmentError(f"tap record of {len(data)} bytes, shorter than its "
                              f"{TAP_META}-byte meta")
    fam, port, addr, wire_len, mflags = _META.unpack_from(data)
    peer: tuple[str, int] | None = None
    if fam == socket.AF_INET:
        peer = (socket.inet_ntop(socket.AF_INET, addr[:4]), port)
    elif fam == socket.AF_INET6:
        peer = (socket.inet_ntop(socket.AF_INET6, addr), port)
    return TapPacket(time_ns, bool(mflags & lib.RTUDP_TAP_OUT),
                     bool(flags & lib.RTUDP_TAP_KERNEL_TS), peer, wire_len,
                     data[TAP_META:])


class Tap(Closing):
    """An attached tap on channel ``channel`` of ``pool``: :meth:`read` returns what the
    channel sent and received since it attached.  Close it (or use ``with``) to stop
    the mirroring it caused.

    Raises PoolNotRunningError (no such pool), SegmentNotFoundError (no such
    channel), BadSegmentError, or RtUdpError when every tap slot holds a live tap.
    """

    def __init__(self, channel: str, pool: str | None = None) -> None:
        self.pool = pool_name(pool)
        ctl = ControlSegment.open(self.pool, writable=False)
        try:
            known = ctl.find_channel(channel) is not None
        finally:
            ctl.close()
        if not known:
            raise SegmentNotFoundError(f"no channel {channel!r} in pool {self.pool!r}")
        self.channel = channel
        self._seg = ChannelSegment.open(channel_segment_name(self.pool, channel))
        self._slot = -1
        try:
            self.config: dict[str, Any] = block_config(self._seg.block)
            seg = self._seg.segment
            mem = [ffi.new("void **"), ffi.new("void **")]
            avail = [ffi.new("uint64_t *"), ffi.new("uint64_t *")]
            check = ffi.new("struct rtudp_check *")
            if lib.rtudp_channel_tap_rings(seg.base, seg.size, mem[0], avail[0], mem[1],
                                           avail[1], check) != lib.RTUDP_OK:
                raise BadSegmentError(f"channel segment {shm_path(seg.name)}: "
                                      f"{check_message(check)}")
            # the tap rings' pages are left for the first tap to allocate (channel.py,
            # _untapped): allocated before the slot makes the worker write them
            tap_from = int(ffi.cast("uintptr_t", mem[0][0])) - int(ffi.cast("uintptr_t", seg.base))
            reserve(seg.name, tap_from, seg.size - tap_from)
            self._rings = [SpanBroadcastRing(RingSpan(f"{channel}/tap-{d}", m[0], int(a[0])))  # type: ignore[arg-type]
                           for d, m, a in zip(("tx", "rx"), mem, avail)]
            # cursors first, then the slot: nothing mirrored after the claim is missed
            self._readers: list[BroadcastReader] = [r.reader() for r in self._rings]
            self._slot = int(lib.rtudp_tap_claim(self._seg.block, os.getpid()))
            if self._slot < 0:
                pids = [int(lib.rtudp_tap_pid(self._seg.block, i))
                        for i in range(lib.RTUDP_TAP_SLOTS)]
                raise RtUdpError(f"channel {channel!r} has {lib.RTUDP_TAP_SLOTS} taps "
                                 f"attached already (pids {pids})")
            self._unmirrored0 = self.unmirrored_total()
            self._lost_reported = 0
        except BaseException:
            self.close()
            raise

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._seg.closed

    def read(self, max_n: int = 4096) -> list[TapPacket]:
        """Up to ``max_n`` packets that are waiting now (sent ones first), without waiting."""
        out: list[TapPacket] = []
        for rd in self._readers:
            while len(out) < max_n:
                rec = rd.try_get_record()
                if rec is None:
                    break
                out.append(parse_tap_record(rec.data, rec.time_ns, rec.flags))
        self._report_lost()
        return out

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for something to read (on the received ring, then a
        look at the sent one); True if there is something."""
        if self._readers[1].wait(timeout / 2):
            return True
        return self._readers[0].wait(timeout / 2)

    @property
    def lost(self) -> int:
        """Records this tap lost because it fell a tap ring behind."""
        return sum(int(rd.lost) for rd in self._readers)

    def unmirrored_total(self) -> int:
        """The channel's count of sent datagrams the worker could not mirror."""
        return int(self._seg.block.tap_count.unmirrored)

    @property
    def dropped(self) -> int:
        """Datagrams this tap did not get: lost, plus those the worker could not mirror
        since it attached."""
        return self.lost + max(0, self.unmirrored_total() - self._unmirrored0)

    def _report_lost(self) -> None:
        lost = self.lost
        if lost > self._lost_reported:
            lib.rtudp_tap_add_lost(self._seg.block, lost - self._lost_reported)
            self._lost_reported = lost

    def close(self) -> None:
        """Give the slot back (the worker stops mirroring when no tap is left); idempotent."""
        if self._seg.closed:
            return
        if self._slot >= 0:
            self._report_lost()
            lib.rtudp_tap_release(self._seg.block, self._slot, os.getpid())
            self._slot = -1
        for r in getattr(self, "_rings", []):
            r.close()
        self._seg.close()

    def __repr__(self) -> str:
        return f"<Tap {self.pool}.{self.channel}{' closed' if self.closed else ''}>"


__all__ = ["TAP_META", "Tap", "TapPacket", "parse_tap_record"]
