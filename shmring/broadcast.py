"""Broadcast ring: one writer -> any number of readers, in shared memory.

The writer never waits: it overwrites the oldest records.  Each reader keeps its
own cursor; a reader that falls more than a ring behind is told exactly how many
records it lost and resumes at the oldest record still intact.

``write``/``write_many`` and the readers' cursors are C (``_fast.BcastPort``,
``_fast.BcastCursor``); setup and stats go through cffi.
"""
from __future__ import annotations

from typing import NamedTuple

from ._fast import BcastCursor, BcastPort
from ._native import lib
from ._ringbase import DEFAULT_SPIN_NS, RingBase, deadline_ns, wait_for, wait_until


class BroadcastRecord(NamedTuple):
    """A record as a reader sees it; ``lost`` = records lost just before this one."""

    data: bytes
    seq: int
    time_ns: int
    flags: int
    lost: int


class BroadcastRing(RingBase, BcastPort):
    """The ring itself: the writer's side, and the place readers come from.

    Inherited from the C port: ``write(data, time_ns=0, flags=0)`` and
    ``write_many(items, time_ns=0, flags=0) -> int``.  Only one process may write.
    """

    KIND = lib.RTUDP_RING_BROADCAST
    KIND_NAME = "broadcast"
    VIEW = "struct rtudp_bcast *"
    COUNTERS = "rx_ring"
    ATTACH = lib.rtudp_bcast_attach

    def reader(self, from_oldest: bool = False) -> "BroadcastReader":
        """A new reader with its own cursor: at the tail (only new records), or at the
        oldest record still in the ring."""
        self._check_open()
        return BroadcastReader(self, from_oldest)

    def stats(self) -> dict[str, int]:
        """Positions and counters, read without locks; ``next_seq``: the seq the next
        record gets."""
        out = super().stats()
        out["next_seq"] = int(self._ring.ring.next_seq)
        return out


class BroadcastReader(BcastCursor):
    """One reader's cursor on a :class:`BroadcastRing`.

    ``lost`` and ``lapped`` (from the C cursor) are this reader's totals.
    """

    def __init__(self, ring: BroadcastRing, from_oldest: bool = False) -> None:
        self._owner = ring
        self._bind_reader(ring, bool(from_oldest))
        self.spin_ns = DEFAULT_SPIN_NS

    def try_get_record(self) -> BroadcastRecord | None:
        """The next record, or None if there is none now."""
        rec = self._try_get_record()
        return None if rec is None else BroadcastRecord(*rec)

    def get_record(self, timeout: float | None = None) -> BroadcastRecord:
        """The next record, waiting up to ``timeout`` s; TimeoutError if none comes."""
        rec = wait_for(self.try_get_record, self._wait, timeout, self.spin_ns)
        if rec is None:
            raise TimeoutError(f"no record in broadcast ring {self._owner.name!r} "
                               f"within {timeout} s")
        return rec

    def get(self, timeout: float | None = None) -> bytes:
        """The next record's payload (see :meth:`get_record`)."""
        return self.get_record(timeout).data

    def get_many(self, max_n: int = 1024, timeout: float | None = None) -> list[bytes]:
        """Up to ``max_n`` payloads in one C call; [] if none arrived by the timeout."""
        items = wait_for(lambda: self._get_many_nowait(max_n) or None, self._wait, timeout,
                         self.spin_ns)
        return items or []

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a record can be read; False if the timeout passed first."""
        return wait_until(self._wait, deadline_ns(timeout), self.spin_ns)


__all__ = ["BroadcastRing", "BroadcastReader", "BroadcastRecord"]
