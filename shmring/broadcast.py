"""Broadcast ring: one writer -> any number of readers, in shared memory.

The writer never waits: it overwrites the oldest records.  Each reader keeps its
own cursor; a reader that falls more than a ring behind is told exactly how many
records it lost and resumes at the oldest record still intact.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ._native import ffi, lib
from ._ringbase import (DEFAULT_SPIN_NS, BATCH_BYTES, RingBase, batch_buffer, deadline_ns, loads, pack,
                        wait_until)

_OK = lib.RTUDP_OK
_EMPTY = lib.RTUDP_EMPTY


class BroadcastRecord(NamedTuple):
    """A record as a reader sees it; ``lost`` = records lost just before this one."""

    data: bytes
    seq: int
    time_ns: int
    flags: int
    lost: int


class BroadcastRing(RingBase):
    """The ring itself: the writer's side, and the place readers come from."""

    KIND = lib.RTUDP_RING_BROADCAST
    KIND_NAME = "broadcast"
    VIEW = "struct rtudp_bcast *"
    ATTACH = lib.rtudp_bcast_attach

    def write(self, data: bytes, time_ns: int = 0, flags: int = 0) -> None:
        """Publish one record (never waits). Only one process may write a ring."""
        self._check_open()
        if not isinstance(data, bytes):
            view = memoryview(data)
            data, size = ffi.from_buffer(view), view.nbytes
        else:
            size = len(data)
        rc = lib.rtudp_bcast_write(self._ring, data, size, flags, time_ns)
        if rc != _OK:
            self._raise_for(rc, "write", size)

    def write_many(self, items: list[bytes], time_ns: int = 0, flags: int = 0) -> int:
        """Publish every record of ``items`` in one C call; returns how many."""
        self._check_open()
        data, lens, n, largest = pack(items)
        if largest > self.max_payload:
            self._raise_for(lib.RTUDP_ETOOBIG, "write_many", largest)
        rc = lib.rtudp_bcast_write_many(self._ring, data, ffi.NULL, lens, n, flags, time_ns)
        if rc < 0:
            self._raise_for(rc, "write_many")
        return n

    def reader(self, from_oldest: bool = False) -> "BroadcastReader":
        """A new reader with its own cursor: at the tail (only new records), or at the
        oldest record still in the ring."""
        self._check_open()
        return BroadcastReader(self, from_oldest)

    def stats(self) -> dict[str, int]:
        """Positions and counters, read without locks."""
        self._check_open()
        r = self._ring.ring
        return {
            "capacity": self.capacity,
            "max_payload": self.max_payload,
            "tail": int(r.tail),
            "head": int(r.head),
            "next_seq": int(r.next_seq),
            "records_written": int(r.records_written),
            "bytes_written": int(r.bytes_written),
            "corrupt_records": int(r.corrupt_records),
            "lapped_events": int(r.lapped_events),
            "records_lost": int(r.records_lost),
        }


class BroadcastReader:
    """One reader's cursor on a :class:`BroadcastRing`."""

    def __init__(self, ring: BroadcastRing, from_oldest: bool = False) -> None:
        self._owner = ring
        self._view = ring._ring
        self._rd = ffi.new("struct rtudp_bcast_reader *")
        lib.rtudp_bcast_reader_init(self._view, self._rd, 1 if from_oldest else 0)
        self._buf = ffi.new("char[]", ring.max_payload)
        self._buf_u8 = ffi.cast("uint8_t *", self._buf)
        self._len = ffi.new("uint32_t *")
        self._seq = ffi.new("uint64_t *")
        self._time = ffi.new("int64_t *")
        self._flags = ffi.new("uint16_t *")
        self._lost = ffi.new("uint64_t *")
        self._many: Any = None
        self.spin_ns = DEFAULT_SPIN_NS
        self._wait = lambda deadline, spin: lib.rtudp_bcast_wait(self._view, self._rd, deadline,
                                                                 spin)

    @property
    def lost(self) -> int:
        """Records this reader lost to laps, in total."""
        return int(self._rd.lost)

    @property
    def lapped(self) -> int:
        """How many times the writer lapped this reader."""
        return int(self._rd.lapped)

    def _read(self) -> int:
        self._owner._check_open()
        return lib.rtudp_bcast_read(self._view, self._rd, self._buf_u8, self._owner.max_payload,
                                    self._len, self._seq, self._time, self._flags, self._lost)

    def try_get_record(self) -> BroadcastRecord | None:
        """The next record, or None if there is none now."""
        rc = self._read()
        if rc == _OK:
            return BroadcastRecord(ffi.unpack(self._buf, self._len[0]), int(self._seq[0]),
                                   int(self._time[0]), int(self._flags[0]), int(self._lost[0]))
        if rc != _EMPTY:
            self._owner._raise_for(rc, "read")
        return None

    def get_record(self, timeout: float | None = None) -> BroadcastRecord:
        """The next record, waiting up to ``timeout`` s; TimeoutError if none comes."""
        deadline: int | None = None
        while True:
            rec = self.try_get_record()
            if rec is not None:
                return rec
            if deadline is None:
                deadline = deadline_ns(timeout)
            if not wait_until(self._wait, deadline, self.spin_ns):
                raise TimeoutError(f"no record in broadcast ring {self._owner.name!r} "
                                   f"within {timeout} s")

    def get(self, timeout: float | None = None) -> bytes:
        """The next record's payload (see :meth:`get_record`)."""
        return self.get_record(timeout).data

    def get_many(self, max_n: int = 1024, timeout: float | None = None) -> list[bytes]:
        """Up to ``max_n`` payloads in one C call; [] if none arrived by the timeout."""
        self._owner._check_open()
        if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
            raise ValueError(f"max_n must be an int >= 1, got {max_n!r}")
        size = max(self._owner.max_payload, min(self._owner.capacity, BATCH_BYTES)) + 1024
        if self._many is None:
            self._many = batch_buffer(size)
        buf, buf_u8, used = self._many
        deadline: int | None = None
        while True:
            n = lib.rtudp_bcast_read_pickled(self._view, self._rd, buf_u8, size, max_n, used)
            if n > 0:
                return loads(ffi.buffer(buf, used[0]))
            if n != _EMPTY:
                self._owner._raise_for(n, "read_many")
            if deadline is None:
                deadline = deadline_ns(timeout)
            if not wait_until(self._wait, deadline, self.spin_ns):
                return []

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a record can be read; False if the timeout passed first."""
        self._owner._check_open()
        return wait_until(self._wait, deadline_ns(timeout), self.spin_ns)


__all__ = ["BroadcastRing", "BroadcastReader", "BroadcastRecord"]
