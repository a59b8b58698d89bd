"""Read-only snapshots of a pool for monitors (rtstat, metrics export, histogram export).

Everything here maps segments read-only (a stray write faults instead of reaching a
worker), takes no lock, validates every segment in C before reading it, copies
what it needs into plain Python values and unmaps again at once.  A snapshot is a
value: it never touches shared memory afterwards.

A pool that disappears or a segment that fails validation raises
:class:`PoolNotRunningError` / :class:`SegmentNotFoundError` /
:class:`BadSegmentError`; a channel that cannot be read gives a
:class:`ChannelSnapshot` with ``error`` set, so one bad channel does not hide the
rest of its pool.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from ._native import ffi, lib
from .channel import (BLOCK_HISTOGRAMS, block_config, block_counters, block_histograms,
                      block_readers, channel_stats)
from .control import (HEARTBEAT_STALE_NS, ControlSegment, channel_segment_name, pid_alive,
                      pool_name)
from .errors import BadSegmentError, SegmentNotFoundError
from .hist import Histogram
from .kinds import COUNTER_GROUPS, find, read_counters, stat_keys
from .segment import PREFIX, Segment, check_message, shm_path

SHM_DIR = "/dev/shm"
DIRECTION_NAMES = {lib.RTUDP_DIR_SEND: "send", lib.RTUDP_DIR_RECV: "recv",
                   lib.RTUDP_DIR_BOTH: "both"}


@dataclass
class ChannelSnapshot:
    """One channel as its segment said at ``taken_ns`` (CLOCK_MONOTONIC)."""

    name: str
    taken_ns: int = 0
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    tx_ring: dict[str, int] = field(default_factory=dict)
    rx_ring: dict[str, int] = field(default_factory=dict)
    reader_pids: list[int] = field(default_factory=list)
    #: the block's histograms by name (tx_lateness, rx_delay)
    histograms: dict[str, Histogram] = field(default_factory=dict)
    #: the channel kind's own counters (its kind area) by name: ints, Histograms
    kind_values: dict[str, Any] = field(default_factory=dict)
    #: the same as stats() keys, prefixed by kind: ``rtp_rx_frames``, ``nf_valid``, ...
    kind_counters: dict[str, Any] = field(default_factory=dict)
    #: the kind's rows (a udt channel's connections), each by counter name
    kind_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tx_lateness(self) -> Histogram:
        """Send lateness: departure - deadline."""
        return self.histograms.get("tx_lateness", Histogram())

    @property
    def rx_delay(self) -> Histogram:
        """Receive delay: published to readers - kernel RX stamp."""
        return self.histograms.get("rx_delay", Histogram())

    @property
    def readers_attached(self) -> int:
        """Readers whose process still exists."""
        return sum(1 for p in self.reader_pids if pid_alive(p))

    def stats(self) -> dict[str, Any]:
        """What the pool keeps of ``Channel.stats()``: counters, histogram percentiles,
        the kind's counters, the TX ring's as ``tx_<name>`` (not a reader's own losses)."""
        out = channel_stats(self.counters, self.histograms, self.kind_counters)
        out.update(stat_keys(COUNTER_GROUPS["tx_ring"], self.tx_ring, "tx_"))
        kind = find(self.config["kind"]) if self.config else None
        if kind is not None:
            out.update(kind.layout.rows_stats(self.kind_rows))
        return out

    def named_histograms(self) -> list[tuple[str, str, Histogram]]:
        """Every histogram of the channel, ``(name, what it measures, histogram)``: its
        block's (``tx_lateness``, ...), then its kind's, named as their stats() keys."""
        out = [(c.name, c.help, self.histograms[c.name]) for c in BLOCK_HISTOGRAMS
               if c.name in self.histograms]
        kind = find(self.config["kind"]) if self.config else None
        for c in kind.layout.counters if kind is not None else ():
            if c.type == "histogram" and c.name in self.kind_values:
                out.append((c.key(kind.layout.prefix), c.help, self.kind_values[c.name]))
        return out


@dataclass
class PoolSnapshot:
    """A pool's control segment and every open channel at ``taken_ns``."""

    name: str
    taken_ns: int
    supervisor_pid: int
    started_ns: int
    heartbeat_ns: int
    workers: list[dict[str, Any]]
    channels: list[ChannelSnapshot]
    #: channels moved between workers since the pool started
    channel_moves: int = 0

    @property
    def supervisor_alive(self) -> bool:
        """The supervisor process exists and its heartbeat is fresh."""
        return (pid_alive(self.supervisor_pid)
                and self.taken_ns - self.heartbeat_ns < HEARTBEAT_STALE_NS)


def _ring_stats(tx: Any, rx: Any) -> tuple[dict[str, int], dict[str, int]]:
    t = ffi.cast("struct rtudp_mpsc_ring *", tx)
    r = ffi.cast("struct rtudp_bcast_ring *", rx)
    cap = int(t.capacity)
    tx_ring = {"capacity": cap, "used_bytes": max(0, min(cap, int(t.tail) - int(t.head))),
               **read_counters(COUNTER_GROUPS["tx_ring"], t)}
    rx_ring = {"capacity": int(r.capacity), **read_counters(COUNTER_GROUPS["rx_ring"], r)}
    return tx_ring, rx_ring


def snapshot_channel(pool: str, channel: str) -> ChannelSnapshot:
    """Map channel ``channel`` of ``pool`` read-only, validate it, copy it, unmap it.

    SegmentNotFoundError if it does not exist, BadSegmentError if it is not valid.
    """
    full = channel_segment_name(pool, channel)
    seg = Segment.open(full, writable=False)
    try:
        block = ffi.new("struct rtudp_channel_block **")
        tx, rx = ffi.new("void **"), ffi.new("void **")
        tx_avail, rx_avail = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        check = ffi.new("struct rtudp_check *")
        if lib.rtudp_channel_segment_validate(seg.base, seg.size, block, tx, tx_avail, rx,
                                              rx_avail, check) != lib.RTUDP_OK:
            raise BadSegmentError(f"channel segment {shm_path(full)}: {check_message(check)}")
        b = block[0]
        config = block_config(b)
        if config["name"] != channel:
            raise BadSegmentError(f"channel segment {shm_path(full)} names channel "
                                  f"{config['name']!r}, not {channel!r}")
        tx_ring, rx_ring = _ring_stats(tx[0], rx[0])
        values, rows = _kind_values(seg, config["kind"], full)
        kind = find(config["kind"])
        return ChannelSnapshot(
            name=channel, taken_ns=time.monotonic_ns(), config=config,
            counters=block_counters(b), tx_ring=tx_ring, rx_ring=rx_ring,
            reader_pids=block_readers(b), histograms=block_histograms(b),
            kind_values=values, kind_counters=kind.layout.stats(values) if kind else {},
            kind_rows=rows)
    finally:
        seg.close()


def _kind_values(seg: Segment, code: int,
                 full: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The kind area's counters by name and its rows, of a kind that has them
    (BadSegmentError if the area is not valid)."""
    kind = find(code)
    if kind is None or not (kind.layout.counters or kind.layout.rows):
        return {}, []
    area, size = ffi.new("void **"), ffi.new("uint64_t *")
    check = ffi.new("struct rtudp_check *")
    if lib.rtudp_channel_area(seg.base, seg.size, area, size, check) != lib.RTUDP_OK:
        raise BadSegmentError(f"channel segment {shm_path(full)}: {check_message(check)}")
    where = f"channel segment {shm_path(full)}"
    return (kind.read(area[0], int(size[0]), where),
            kind.read_rows(area[0], int(size[0]), where))


def snapshot_pool(pool: str, channel_filter: Any = None) -> PoolSnapshot:
    """Everything a monitor shows of ``pool``: supervisor, workers, channels.

    ``channel_filter(name) -> bool`` picks channels (None: all).  PoolNotRunningError
    if the pool has no control segment, BadSegmentError if it is not valid.
    """
    ctl = ControlSegment.open(pool_name(pool), writable=False)
    try:
        p = ctl.c.pool
        snap = PoolSnapshot(name=ctl.pool, taken_ns=time.monotonic_ns(),
                            supervisor_pid=ctl.supervisor_pid, started_ns=int(p.started_ns),
                            heartbeat_ns=int(p.heartbeat_ns), workers=ctl.workers(),
                            channels=[], channel_moves=int(p.channel_moves))
        names = ctl.channel_names()
    finally:
        ctl.close()
    for name in names:
        if channel_filter is not None and not channel_filter(name):
            continue
        try:
            snap.channels.append(snapshot_channel(snap.name, name))
        except SegmentNotFoundError:
            snap.channels.append(ChannelSnapshot(name, error="closed (segment gone)"))
        except (BadSegmentError, ValueError, PermissionError) as exc:
            snap.channels.append(ChannelSnapshot(name, error=f"unreadable: {exc}"))
    return snap


def pool_names() -> list[str]:
    """Names of the pools with a control segment in /dev/shm (other ``rtudp.*`` segments,
    such as standalone rings, are left out).  Takes no lock: never in a supervisor's way."""
    try:
        entries = sorted(os.listdir(SHM_DIR))
    except FileNotFoundError:  # pragma: no cover
        return []
    out = []
    hdr = ffi.sizeof("struct rtudp_segment_header")
    for e in entries:
        name = e[len(PREFIX):]
        if not e.startswith(PREFIX) or not name or "." in name:
            continue
        try:
            with open(os.path.join(SHM_DIR, e), "rb") as f:
                head = f.read(hdr)
        except OSError:
            head = b""
        if len(head) == hdr:
            h = ffi.cast("struct rtudp_segment_header *", ffi.from_buffer(head))
            if (h.magic == lib.RTUDP_SEG_MAGIC and h.layout_version == lib.RTUDP_LAYOUT_VERSION
                    and h.kind in (lib.RTUDP_SEG_RING, lib.RTUDP_SEG_CHANNEL)):
                continue  # a valid segment of another kind: a ring, not a pool
        out.append(name)  # a pool, or something that claims the name: the caller reports it
    return out


__all__ = ["ChannelSnapshot", "DIRECTION_NAMES", "PoolSnapshot", "pid_alive",
           "pool_names", "snapshot_channel", "snapshot_pool"]
