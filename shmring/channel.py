"""A channel segment ``/rtudp.<pool>.<channel>``: config block, TX ring, RX ring.

The supervisor creates it (:meth:`ChannelSegment.create`) and fills the block's
configuration; every client maps it (:meth:`ChannelSegment.open`), validated in
C (``rtudp_channel_segment_validate``).  ``tx`` is the MPSC ring clients queue
datagrams in (``ring_offset[0]``), ``rx`` the broadcast ring the worker publishes
received datagrams on (``ring_offset[1]``), each record a ``struct rtudp_rx_meta``
followed by the datagram.
"""
from __future__ import annotations

import os
import socket
import struct
from typing import Any, NamedTuple

from ._native import ffi, lib
from .errors import BadSegmentError
from .hist import Histogram
from . import impairment
from .impairment import Impairment
from .kinds import CHANNEL_COUNTERS, Kind, find, read_counters, stat_keys
from .ringspan import LazyRing, RingSpan, SpanBroadcastRing, SpanMpscRing
from .segment import DEFAULT_MODE, Segment, c_checked, check_message, shm_path

TX_RECORD = ffi.sizeof("struct rtudp_tx_record")
RX_RECORD = ffi.sizeof("struct rtudp_bcast_record")
RX_META = ffi.sizeof("struct rtudp_rx_meta")
#: the largest datagram a channel can carry: an RX record holds meta + datagram
MAX_DATAGRAM = lib.RTUDP_MAX_PAYLOAD - RX_META
DEFAULT_MAX_DATAGRAM = 1472


def _align8(n: int) -> int:
    return (n + lib.RTUDP_RECORD_ALIGN - 1) & ~(lib.RTUDP_RECORD_ALIGN - 1)


def _pow2_at_least(n: int) -> int:
    return max(lib.RTUDP_RING_MIN_CAPACITY, 1 << (n - 1).bit_length())


#: the most bytes a channel's TX ring is given for its ``capacity`` (unless four records
#: of max_datagram need more).  Records are variable-length, so a ring of capacity x
#: the largest datagram (1e6 x 1472 B: 2 GiB) is mostly never used, yet all of it is
#: allocated when the channel opens, and its worker keeps an in-flight entry (24 B,
#: made resident at ADD) per 16 bytes of TX ring (the smallest record:
#: csrc/worker/channels.c).  A full TX ring is back-pressure (BackPressureError).
TX_RING_BYTES_MAX = 8 << 20
#: the same for the RX ring: how far behind a reader may fall before it is told how
#: many records it lost.  It costs the supervisor's allocation of the segment and the
#: worker's page tables for it, nothing per record.
RX_RING_BYTES_MAX = 64 << 20


def ring_capacities(capacity: int, max_datagram: int,
                    direction: int = lib.RTUDP_DIR_BOTH,
                    rx_capacity: int | None = None) -> tuple[int, int]:
    """(TX, RX) ring sizes in bytes for ``capacity`` packets of up to ``max_datagram``
    (the RX ring for ``rx_capacity`` packets, when given).

    Each is a power of two holding ``capacity`` full-size records, but no more than
    :data:`TX_RING_BYTES_MAX` / :data:`RX_RING_BYTES_MAX` bytes (then it holds fewer
    datagrams that large, more small ones), and at least four full-size records (a
    ring's largest record is a quarter of it): the least for the ring a channel of
    ``direction`` does not use (the RX ring of a send-only one, the TX ring of a
    receive-only one).
    """
    tx_rec = _align8(TX_RECORD + max_datagram)
    rx_rec = _align8(RX_RECORD + RX_META + max_datagram)
    tx_want = 0 if direction == lib.RTUDP_DIR_RECV else min(capacity * tx_rec, TX_RING_BYTES_MAX)
    rx_packets = capacity if rx_capacity is None else rx_capacity
    rx_want = 0 if direction == lib.RTUDP_DIR_SEND else min(rx_packets * rx_rec, RX_RING_BYTES_MAX)
    tx = _pow2_at_least(max(tx_want, 4 * (TX_RECORD + max_datagram)))
    rx = _pow2_at_least(max(rx_want, 4 * (RX_RECORD + RX_META + max_datagram)))
    return tx, rx


# ------------------------------------------------------------ addresses


def sockaddr_to_tuple(sa: Any) -> tuple[str, int] | None:
    """A ``struct rtudp_sockaddr`` as (host, port); None when its family is 0."""
    fam = int(sa.family)
    if fam == 0:
        return None
    raw = bytes(ffi.buffer(sa.addr, 16))
    if fam == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4]), int(sa.port)
    if fam == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw), int(sa.port)
    raise BadSegmentError(f"address family {fam} in a channel segment")


def fill_sockaddr(sa: Any, family: int, host: str, port: int, scope_id: int = 0) -> None:
    """Write (host, port) of ``family`` into a ``struct rtudp_sockaddr``."""
    packed = socket.inet_pton(family, host)
    sa.family = family
    sa.port = port
    sa.scope_id = scope_id
    ffi.memmove(sa.addr, packed.ljust(16, b"\0"), 16)


def packed_struct(ctype: str, parts: list[tuple[int, str]]) -> struct.Struct:
    """A ``struct`` format for the C struct ``ctype`` from its fields' (offset, code)
    pairs in order (cffi's offsets: no constants of our own), padded to its size."""
    size = ffi.sizeof(ctype)
    fmt, pos = "<", 0
    for off, code in parts:
        if off < pos:
            raise ImportError(f"{ctype} fields overlap: rebuild rtudp")
        fmt += "x" * (off - pos) + code
        pos = off + struct.calcsize("<" + code)
    s = struct.Struct(fmt + "x" * (size - pos))
    if s.size != size:
        raise ImportError(f"{ctype} is {s.size} bytes in Python, {size} in C")
    return s


def sockaddr_parts(at: int, fields: tuple[tuple[str, str], ...]) -> list[tuple[int, str]]:
    """(offset, code) of a ``struct rtudp_sockaddr``'s ``fields`` when it sits at ``at``."""
    return [(at + ffi.offsetof("struct rtudp_sockaddr", f), c) for f, c in fields]


class _MetaLayout:
    """``struct rtudp_rx_meta`` as a ``struct`` format built from cffi's offsets."""

    FIELDS = (("source", None), ("rx_ns", "q"), ("hw_ns", "q"), ("rx_seq", "Q"),
              ("flags", "I"))
    ADDR = (("family", "H"), ("port", "H"), ("scope_id", "I"), ("addr", "16s"))

    @classmethod
    def build(cls) -> struct.Struct:
        meta = "struct rtudp_rx_meta"
        parts = sockaddr_parts(ffi.offsetof(meta, "source"), cls.ADDR)
        parts += [(ffi.offsetof(meta, f), c) for f, c in cls.FIELDS if c]
        return packed_struct(meta, parts)


RX_META_STRUCT = _MetaLayout.build()


class RxMeta(NamedTuple):
    """What the worker puts before each received datagram."""

    source: tuple[str, int] | None
    rx_ns: int
    hw_ns: int
    rx_seq: int
    flags: int


def parse_rx_record(record: bytes) -> tuple[RxMeta, bytes]:
    """Split an RX ring record into its meta and the datagram (BadSegmentError if short)."""
    if len(record) < RX_META:
        raise BadSegmentError(f"RX record of {len(record)} bytes, shorter than its "
                              f"{RX_META}-byte meta")
    fam, port, _scope, addr, rx_ns, hw_ns, seq, flags = RX_META_STRUCT.unpack_from(record)
    if fam == socket.AF_INET:
        source: tuple[str, int] | None = (socket.inet_ntop(socket.AF_INET, addr[:4]), port)
    elif fam == socket.AF_INET6:
        source = (socket.inet_ntop(socket.AF_INET6, addr), port)
    else:
        source = None
    return RxMeta(source, rx_ns, hw_ns, seq, flags), record[RX_META:]


def build_rx_record(source: tuple[str, int], rx_ns: int, rx_seq: int, data: bytes,
                    hw_ns: int = 0, flags: int = 0) -> bytes:
    """An RX ring record (meta + datagram), as a worker writes it (tests, emulation)."""
    family = socket.AF_INET6 if ":" in source[0] else socket.AF_INET
    addr = socket.inet_pton(family, source[0]).ljust(16, b"\0")
    return RX_META_STRUCT.pack(family, source[1], 0, addr, rx_ns, hw_ns, rx_seq, flags) + data


# ------------------------------------------------------------ rings inside a channel


class ChannelTxRing(SpanMpscRing):
    """The channel's TX ring (clients produce, its worker consumes)."""


class ChannelRxRing(SpanBroadcastRing):
    """The channel's RX ring (its worker writes, every reader has its own cursor)."""


# ------------------------------------------------------------ the segment

#: the channel block's counters that are numbers (its histograms apart): the worker's,
#: then the direct sends clients made themselves, already included in tx_packets,
#: tx_bytes and tx_immediate (rtudp_shm.h: RTUDP_CHANNEL_COUNTERS)
BLOCK_COUNTERS = tuple(c for c in CHANNEL_COUNTERS if c.type != "histogram")
#: the channel block's histograms (tx_lateness, rx_delay)
BLOCK_HISTOGRAMS = tuple(c for c in CHANNEL_COUNTERS if c.type == "histogram")


def block_config(b: Any) -> dict[str, Any]:
    """The configuration of a ``struct rtudp_channel_block *`` as a dict."""
    return {
        "name": ffi.string(b.name, ffi.sizeof(b.name)).decode("utf-8", "replace"),
        "kind": int(b.kind), "direction": int(b.direction),
        "local": sockaddr_to_tuple(b.local), "remote": sockaddr_to_tuple(b.remote),
        "capacity": int(b.capacity_packets), "flags": int(b.flags),
        "worker": int(b.worker), "max_datagram": int(b.max_datagram),
        "socket_fd": int(b.socket_fd), "table_slot": int(b.table_slot),
    }


def block_counters(b: Any) -> dict[str, int]:
    """The counters of a ``struct rtudp_channel_block *``, read without locks."""
    return read_counters(BLOCK_COUNTERS, b)


def block_histograms(b: Any) -> dict[str, Histogram]:
    """Snapshots of the histograms of a ``struct rtudp_channel_block *``."""
    return read_counters(BLOCK_HISTOGRAMS, b)


def channel_stats(counters: dict[str, int], histograms: dict[str, Histogram],
                  kind_stats: dict[str, Any]) -> dict[str, Any]:
    """``stats()`` keys of a channel: its counters, its histograms as ``<name>_count``,
    ``<name>_p99_ns``, ..., then its kind's."""
    out: dict[str, Any] = dict(counters)
    out.update(stat_keys(BLOCK_HISTOGRAMS, histograms))
    out.update(kind_stats)
    return out


def block_readers(b: Any) -> list[int]:
    """The pids in the block's reader slots (dead ones included: the caller judges)."""
    return [p for p in (int(lib.rtudp_reader_pid(b, i)) for i in range(lib.RTUDP_READER_SLOTS))
            if p]


def _untapped(tx_cap: int, rx_cap: int, area_bytes: int) -> tuple[tuple[int, int], ...]:
    """What of a new channel segment is allocated at once: all but its tap rings, which
    only a tap fills (:class:`~rtudp.shmring.tap.Tap` allocates them when it attaches),
    save their headers, which the segment's init writes."""
    off = ffi.new("uint64_t[2]")
    if lib.rtudp_channel_tap_offsets(tx_cap, rx_cap, area_bytes, off, off + 1) != lib.RTUDP_OK:
        raise ValueError(f"no channel segment of rings {tx_cap}/{rx_cap} bytes and a kind "
                         f"area of {area_bytes}")
    header = ffi.sizeof("struct rtudp_bcast_ring")
    return (0, int(off[0]) + header), (int(off[1]), header)


class ChannelSegment:
    """A mapped channel segment: ``block`` (``struct rtudp_channel_block *``), ``tx``, ``rx``."""

    def __init__(self, name: str, segment: Segment) -> None:
        self.name = name
        self.segment = segment
        try:
            block = ffi.new("struct rtudp_channel_block **")
            tx, rx = ffi.new("void **"), ffi.new("void **")
            tx_avail, rx_avail = ffi.new("uint64_t *"), ffi.new("uint64_t *")
            check = ffi.new("struct rtudp_check *")
            rc = lib.rtudp_channel_segment_validate(segment.base, segment.size, block, tx,
                                                    tx_avail, rx, rx_avail, check)
            if rc != lib.RTUDP_OK:
                raise BadSegmentError(f"channel segment {shm_path(name)}: "
                                      f"{check_message(check)}")
            self.block: Any = block[0]
            area, area_bytes = ffi.new("void **"), ffi.new("uint64_t *")
            if lib.rtudp_channel_area(segment.base, segment.size, area, area_bytes,
                                      check) != lib.RTUDP_OK:
                raise BadSegmentError(f"channel segment {shm_path(name)}: "
                                      f"{check_message(check)}")
            #: the channel kind's own shared state (``void *``; ``area_bytes`` long)
            self.area: Any = area[0]
            self.area_bytes = int(area_bytes[0])
            #: the TX and RX rings' places (their objects: tx, rx)
            self._spans = (RingSpan(name + "/tx", tx[0], int(tx_avail[0])),
                           RingSpan(name + "/rx", rx[0], int(rx_avail[0])))
        except BaseException:
            segment.close()
            raise

    tx = LazyRing(0, ChannelTxRing, "The TX ring (clients produce, the worker consumes).")
    rx = LazyRing(1, ChannelRxRing, "The RX ring (the worker writes, each reader has its "
                                    "own cursor).")

    @classmethod
    def create(cls, name: str, capacity: int, max_datagram: int,
               mode: int = DEFAULT_MODE, area_bytes: int = 0,
               direction: int = lib.RTUDP_DIR_BOTH,
               rx_capacity: int | None = None) -> "ChannelSegment":
        """Create ``/rtudp.<name>`` sized for ``capacity`` packets of ``max_datagram`` bytes
        (the RX ring for ``rx_capacity``, when given; :func:`ring_capacities`: a channel
        of ``direction`` that only sends or only receives gets the smallest ring for the
        other way), with ``area_bytes`` (rounded up to cache lines) for the channel
        kind's own state.

        The caller fills the configuration (:meth:`configure`) before publishing the
        channel in the pool's table.
        """
        if not 0 <= area_bytes <= lib.RTUDP_KIND_AREA_MAX:
            raise ValueError(f"kind area of {area_bytes} bytes: must be 0.."
                             f"{lib.RTUDP_KIND_AREA_MAX}")
        tx_cap, rx_cap = ring_capacities(capacity, max_datagram, direction, rx_capacity)
        size = int(lib.rtudp_channel_segment_size(tx_cap, rx_cap, area_bytes))
        if size == 0:
            raise ValueError(f"capacity {capacity} packets of {max_datagram} bytes needs rings "
                             f"of {tx_cap}/{rx_cap} bytes, more than "
                             f"{lib.RTUDP_RING_MAX_CAPACITY}")
        with Segment.create(name, size, mode, _untapped(tx_cap, rx_cap, area_bytes)) \
                .removed_on_error() as seg:
            c_checked(lib.rtudp_channel_segment_init, seg.base, size, tx_cap, rx_cap, area_bytes)
            return cls(name, seg)

    @classmethod
    def open(cls, name: str) -> "ChannelSegment":
        """Map and validate an existing channel segment (SegmentNotFoundError if none)."""
        return cls(name, Segment.open(name))

    def configure(self, channel: str, kind: int, direction: int, local: tuple[int, str, int],
                  remote: tuple[int, str, int] | None, capacity: int, flags: int,
                  worker: int, max_datagram: int, socket_fd: int = -1,
                  table_slot: int = 0) -> None:
        """Supervisor: write the configuration (addresses as (family, host, port));
        ``socket_fd``: the channel socket's fd number in the supervisor (clients
        duplicate it for their direct sends), -1 for none; ``table_slot``: its index
        in the pool's channel table (its bit in the worker's ready set)."""
        b = self.block
        raw = channel.encode()
        ffi.memmove(b.name, raw, len(raw))
        b.kind, b.direction = kind, direction
        fill_sockaddr(b.local, *local)
        if remote is not None:
            fill_sockaddr(b.remote, *remote)
        b.capacity_packets = capacity
        b.flags = flags
        b.worker = worker
        b.max_datagram = max_datagram
        b.socket_fd = socket_fd
        b.table_slot = table_slot

    def revoke_direct_sends(self) -> None:
        """Supervisor, closing the channel: clients stop sending on their duplicates of
        its socket, and close them at their next send, so none keeps the port bound."""
        if not self.segment.closed:
            self.block.direct.state = lib.RTUDP_DIRECT_REVOKED

    def set_worker(self, worker: int) -> None:
        """Supervisor, moving the channel: its producers wake worker ``worker`` from
        now on (before the channel is handed to it)."""
        if not self.segment.closed:
            lib.rtudp_channel_set_worker(self.block, worker)

    def expect_handoff(self, to: int) -> None:
        """Supervisor, before a TAKE_OVER: worker ``to`` serves the channel once the
        worker serving it lets go (at its REMOVE)."""
        if not self.segment.closed:
            lib.rtudp_channel_expect_handoff(self.block, to)

    def handoff_released(self) -> bool:
        """Whether the last handoff is released but not yet served: its worker let go,
        and the worker it went to has not yet woken to take it."""
        return not self.segment.closed and bool(lib.rtudp_channel_released(self.block))

    def cancel_handoff(self) -> None:
        """Supervisor, a TAKE_OVER refused: the worker serving it keeps it."""
        if not self.segment.closed:
            self.block.handoff = lib.RTUDP_HANDOFF_NONE

    def hand_over(self, n_workers: int) -> int:
        """Supervisor, when the worker serving it is gone: what its REMOVE would have
        done, route the producers to the awaited worker and release the channel to it.
        That worker's index, or -1 when no handoff was awaited."""
        if self.segment.closed:
            return -1
        return int(lib.rtudp_channel_hand_over(self.block, n_workers))

    def hold_direct_sends(self) -> None:
        """Supervisor, pausing the channel: clients send nothing on the socket until its
        worker takes it back (and says so)."""
        if not self.segment.closed:
            self.block.direct.state = lib.RTUDP_DIRECT_NOT_NOW

    def set_impairment(self, imp: "Impairment | None") -> "Impairment | None":
        """Make ``imp`` the channel's impairment (None: none), at once and while its
        worker runs; ValueError if what it holds back at its rate would not fit the TX
        ring.  Returns it as applied (with the seed drawn for a None seed)."""
        imp = Impairment.of(imp)
        if imp is not None and imp.direction != "rx":
            imp.check_fits(self.tx.capacity, f"channel {self.name!r}")
        return impairment.publish(self.block, imp)

    def impairment(self) -> "Impairment | None":
        """The channel's impairment as its worker reads it (None: none)."""
        return impairment.read(self.block)

    def config(self) -> dict[str, Any]:
        """The configuration block as a dict."""
        return block_config(self.block)

    def counters(self) -> dict[str, int]:
        """The worker's counters, read without locks."""
        return block_counters(self.block)

    def claim_reader(self) -> int:
        """Count this process as a reader of the channel: its slot, or -1 when every
        slot holds a live reader (the reader works, it is just not counted)."""
        return int(lib.rtudp_reader_claim(self.block, os.getpid()))

    def release_reader(self, slot: int) -> None:
        """Give back a slot from :meth:`claim_reader` (no-op for -1)."""
        if slot >= 0 and not self.segment.closed:
            lib.rtudp_reader_release(self.block, slot, os.getpid())

    def readers(self) -> list[int]:
        """Pids of the readers attached (slots holding a pid; dead ones included)."""
        return block_readers(self.block)

    def tx_lateness(self) -> Histogram:
        """A snapshot of the send-lateness histogram."""
        return Histogram.snapshot(ffi.addressof(self.block, "tx_lateness"))

    def rx_delay(self) -> Histogram:
        """A snapshot of the receive-delay histogram (published - kernel RX stamp)."""
        return Histogram.snapshot(ffi.addressof(self.block, "rx_delay"))

    def histograms(self) -> dict[str, Histogram]:
        """Snapshots of every histogram of the block, by name."""
        return block_histograms(self.block)

    def kind(self) -> Kind | None:
        """The channel's kind (None: a kind this process has not registered)."""
        return find(int(self.block.kind))

    def kind_values(self) -> dict[str, Any]:
        """The kind area's counters by name, read without locks ({} for a kind with
        none; BadSegmentError if the area may not be read)."""
        kind = self.kind()
        if kind is None:
            return {}
        return kind.read(self.area, self.area_bytes, f"channel segment {shm_path(self.name)}")

    def kind_rows(self) -> list[dict[str, Any]]:
        """The kind's rows (a udt channel's connections), each by counter name, read
        without locks ([] for a kind with none)."""
        kind = self.kind()
        if kind is None:
            return []
        return kind.read_rows(self.area, self.area_bytes,
                              f"channel segment {shm_path(self.name)}")

    def kind_stats(self) -> dict[str, Any]:
        """The kind area's counters as ``stats()`` keys (``rtp_rx_frames``, ``nf_sent``),
        and its rows as a list under their name (``connections``)."""
        kind = self.kind()
        if kind is None:
            return {}
        return {**kind.layout.stats(self.kind_values()),
                **kind.layout.rows_stats(self.kind_rows())}

    def stats(self) -> dict[str, Any]:
        """What the segment says of ``Channel.stats()``: the block's counters, its
        histograms' count/min/mean/percentiles/max, the kind's counters."""
        return channel_stats(self.counters(), self.histograms(), self.kind_stats())

    @property
    def closed(self) -> bool:
        """True once unmapped."""
        return self.segment.closed

    def close(self) -> None:
        """Forget the rings and unmap (idempotent)."""
        if not self.segment.closed:
            LazyRing.close_all(self)
            self.block = None
            self.area = None
            self.segment.close()

    def unlink(self) -> None:
        """Remove the segment's name (idempotent)."""
        self.segment.unlink()

    def __repr__(self) -> str:
        return f"<ChannelSegment {shm_path(self.name)}{' closed' if self.closed else ''}>"


__all__ = ["BLOCK_COUNTERS", "BLOCK_HISTOGRAMS", "ChannelSegment", "block_config",
           "block_counters", "block_histograms", "block_readers", "channel_stats",
           "ChannelRxRing", "ChannelTxRing", "MAX_DATAGRAM", "RX_META", "RxMeta",
           "build_rx_record", "fill_sockaddr", "parse_rx_record", "ring_capacities",
           "sockaddr_to_tuple"]
