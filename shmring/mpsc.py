"""MPSC ring: many producer processes -> one consumer, in shared memory.

Producers claim space with a conditional atomic add on the tail, write, and commit;
the consumer reads in order and frees space.  A full ring pushes back (``try_put``
answers False, ``put`` waits then raises ``BackPressureError``); nothing is dropped.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ._native import ffi, lib
from ._ringbase import (DEFAULT_SPIN_NS, FOREVER, BATCH_BYTES, RingBase, batch_buffer as _batch_buffer,
                        deadline_ns, loads as _loads, pack, wait_until)
from .errors import BackPressureError, ClaimExpiredError

# bound once: the per-call paths are a handful of C calls and nothing else
_try_put = lib.rtudp_mpsc_try_put
_put = lib.rtudp_mpsc_put
_take = lib.rtudp_mpsc_take
_unpack = ffi.unpack
_OK = lib.RTUDP_OK
_EMPTY = lib.RTUDP_EMPTY
_EFULL = lib.RTUDP_EFULL
_ETIMEDOUT = lib.RTUDP_ETIMEDOUT
_EINTR = lib.RTUDP_EINTR


class TxRecord(NamedTuple):
    """A record as the consumer sees it."""

    data: bytes
    send_at_ns: int
    flags: int


class Claim:
    """Space claimed in the ring for one record; write ``buffer``, then ``commit``.

    A producer that dies before committing blocks the consumer until the consumer's
    ``unblock`` turns the claim into padding.
    """

    def __init__(self, ring: "MpscRing", pos: int, size: int) -> None:
        self._ring = ring
        self._pos = pos
        self.size = size
        payload = lib.rtudp_mpsc_claim_payload(ring._ring, pos)
        self.buffer: memoryview = memoryview(ffi.buffer(payload, size))
        self.committed = False

    def commit(self, at_ns: int = 0, flags: int = 0) -> None:
        """Publish the record. ClaimExpiredError if the consumer unblocked it meanwhile."""
        if self.committed:
            raise ValueError("claim already committed")
        self._ring._check_open()
        self.buffer.release()
        self.committed = True
        rc = lib.rtudp_mpsc_commit(self._ring._ring, self._pos, at_ns, flags)
        if rc != _OK:
            raise ClaimExpiredError(
                f"claim of {self.size} bytes in ring {self._ring.name!r} was unblocked by the "
                f"consumer before it was committed: the record is lost")


class MpscRing(RingBase):
    """Many producers, one consumer. Create with :meth:`create`, open with :meth:`attach`."""

    KIND = lib.RTUDP_RING_MPSC
    KIND_NAME = "MPSC"
    VIEW = "struct rtudp_mpsc *"
    ATTACH = lib.rtudp_mpsc_attach

    def __init__(self, segment: Any) -> None:
        super().__init__(segment)
        self._one = ffi.new("char[]", self.max_payload)
        self._one_u8 = ffi.cast("uint8_t *", self._one)
        self._many_len = max(self.max_payload, min(self.capacity, BATCH_BYTES)) + 1024
        self._many: Any = None  # get_many's buffers, allocated on first use
        self._wait = lambda deadline, spin: lib.rtudp_mpsc_wait(self._ring, deadline, spin)
        self.spin_ns = DEFAULT_SPIN_NS

    # ---- producers

    def try_put(self, data: bytes, at_ns: int = 0, flags: int = 0) -> bool:
        """Queue one record if there is room now; False if the ring is full."""
        try:
            rc = _try_put(self._ring, data, len(data), at_ns, flags)
        except TypeError:
            rc = self._put_buffer(data, at_ns, flags, 0)
        if rc == _OK:
            return True
        if rc == _EFULL:
            return False
        return self._put_failed(rc, data)

    def put(self, data: bytes, at_ns: int = 0, flags: int = 0, timeout: float | None = None) -> None:
        """Queue one record, waiting up to ``timeout`` s for room (None = forever).

        Raises BackPressureError if the ring stays full until then.
        """
        deadline = FOREVER if timeout is None else deadline_ns(timeout)
        while True:
            try:
                rc = _put(self._ring, data, len(data), at_ns, flags, deadline, self.spin_ns)
            except TypeError:
                rc = self._put_buffer(data, at_ns, flags, deadline)
            if rc == _OK:
                return
            if rc == _ETIMEDOUT:
                raise BackPressureError(
                    f"ring {self.name!r} stayed full for {timeout} s "
                    f"({self.capacity} bytes, record of {_nbytes(data)} bytes)")
            if rc != _EINTR:
                self._put_failed(rc, data)

    def _put_buffer(self, data: Any, at_ns: int, flags: int, deadline: int) -> int:
        """The slow path: any buffer object, and/or waiting for room until deadline."""
        self._check_open()
        if isinstance(data, (bytes, ffi.CData)):
            buf, size = data, len(data)
        else:
            view = memoryview(data)
            buf, size = ffi.from_buffer(view), view.nbytes
        if deadline == 0:
            return _try_put(self._ring, buf, size, at_ns, flags)
        return lib.rtudp_mpsc_put(self._ring, buf, size, at_ns, flags, deadline, self.spin_ns)

    def _put_failed(self, rc: int, data: Any) -> bool:
        self._raise_for(rc, "put", _nbytes(data))
        return False

    def put_many(self, items: list[bytes], at_ns: int = 0, flags: int = 0,
                 timeout: float | None = None) -> int:
        """Queue every record of ``items`` in one C call; returns how many (all of them).

        Raises BackPressureError (with ``.sent``) if the ring stayed full until the timeout.
        """
        self._check_open()
        data, lens, n, largest = pack(items)
        if largest > self.max_payload:  # refuse the whole batch, not a prefix of it
            self._raise_for(lib.RTUDP_ETOOBIG, "put_many", largest)
        deadline = deadline_ns(timeout)
        sent = 0
        while sent < n:
            got = lib.rtudp_mpsc_put_many(self._ring, data[_offset(lens, sent):], ffi.NULL,
                                          lens + sent, n - sent, at_ns, flags, deadline,
                                          self.spin_ns)
            if got > 0:
                sent += got
            elif got == _ETIMEDOUT or got == _EFULL:
                raise BackPressureError(
                    f"ring {self.name!r} stayed full for {timeout} s: {sent} of {n} records "
                    f"queued", sent)
            elif got != _EINTR:
                self._raise_for(got, "put_many")
        return n

    def claim(self, size: int) -> Claim:
        """Claim room for a ``size``-byte record to fill in place (zero copy)."""
        self._check_open()
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"claim size must be an int >= 0, got {size!r}")
        if size > self.max_payload:
            self._raise_for(lib.RTUDP_ETOOBIG, "claim", size)
        pos = ffi.new("uint64_t *")
        rc = lib.rtudp_mpsc_claim(self._ring, size, pos)
        if rc == _EFULL:
            raise BackPressureError(f"ring {self.name!r} is full: no room for {size} bytes")
        if rc != _OK:
            self._raise_for(rc, "claim", size)
        return Claim(self, int(pos[0]), size)

    # ---- the consumer

    def try_get(self) -> bytes | None:
        """The next record's payload, or None if there is none now."""
        try:
            n = _take(self._ring, self._one_u8, self.max_payload)
        except TypeError:
            self._check_open()
            raise
        if n >= 0:
            return _unpack(self._one, n)
        if n == _EMPTY:
            return None
        self._raise_for(n, "get")
        return None

    def get(self, timeout: float | None = None) -> bytes:
        """The next record's payload, waiting up to ``timeout`` s (None = forever).

        Raises TimeoutError when nothing arrives in time.
        """
        data = self.try_get()
        if data is not None:
            return data
        deadline = deadline_ns(timeout)
        while True:
            if not wait_until(self._wait, deadline, self.spin_ns):
                raise TimeoutError(f"no record in ring {self.name!r} within {timeout} s")
            data = self.try_get()
            if data is not None:
                return data

    def get_record(self, timeout: float | None = None) -> TxRecord:
        """Like :meth:`get`, with the record's ``send_at_ns`` and ``flags``."""
        self._check_open()
        length = ffi.new("uint32_t *")
        send_at = ffi.new("int64_t *")
        flags = ffi.new("uint16_t *")
        deadline = deadline_ns(timeout)
        while True:
            rc = lib.rtudp_mpsc_get(self._ring, self._one_u8, self.max_payload, length, send_at,
                                    flags)
            if rc == _OK:
                return TxRecord(_unpack(self._one, length[0]), int(send_at[0]), int(flags[0]))
            if rc != _EMPTY:
                self._raise_for(rc, "get")
            if not wait_until(self._wait, deadline, self.spin_ns):
                raise TimeoutError(f"no record in ring {self.name!r} within {timeout} s")

    def get_many(self, max_n: int = 1024, timeout: float | None = None) -> list[bytes]:
        """Up to ``max_n`` payloads in one C call; waits up to ``timeout`` s for the first.

        Returns [] if nothing arrived by the timeout (0 = just poll).
        """
        self._check_open()
        if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
            raise ValueError(f"max_n must be an int >= 1, got {max_n!r}")
        if self._many is None:
            self._many = _batch_buffer(self._many_len)
        buf, buf_u8, used = self._many
        deadline: int | None = None
        while True:
            n = lib.rtudp_mpsc_get_pickled(self._ring, buf_u8, self._many_len, max_n, used)
            if n > 0:
                return _loads(ffi.buffer(buf, used[0]))
            if n != _EMPTY:
                self._raise_for(n, "get_many")
            if deadline is None:
                deadline = deadline_ns(timeout)
            if not wait_until(self._wait, deadline, self.spin_ns):
                return []

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a record can be read; False if the timeout passed first."""
        self._check_open()
        return wait_until(self._wait, deadline_ns(timeout), self.spin_ns)

    def unblock(self, timeout_ns: int) -> bool:
        """Consumer side: if a producer's open claim has blocked the ring for longer than
        ``timeout_ns``, turn it into padding (counted in ``unblocked_claims``).

        Call it periodically while the ring seems stuck; the first call starts the clock.
        """
        self._check_open()
        if isinstance(timeout_ns, bool) or not isinstance(timeout_ns, int) or timeout_ns < 0:
            raise ValueError(f"timeout_ns must be an int >= 0, got {timeout_ns!r}")
        head = self._ring.ring.head
        rc = lib.rtudp_mpsc_unblock(self._ring, head, timeout_ns)
        if rc < 0:
            self._raise_for(rc, "unblock")
        return rc == 1

    # ---- observation

    def __len__(self) -> int:
        """Bytes waiting in the ring (records, headers and padding)."""
        self._check_open()
        return int(lib.rtudp_mpsc_pending_bytes(self._ring))

    def stats(self) -> dict[str, int]:
        """Positions and counters, read without locks."""
        self._check_open()
        r = self._ring.ring
        return {
            "capacity": self.capacity,
            "max_payload": self.max_payload,
            "head": int(r.head),
            "tail": int(r.tail),
            "pending_bytes": int(lib.rtudp_mpsc_pending_bytes(self._ring)),
            "records_consumed": int(r.records_consumed),
            "bytes_consumed": int(r.bytes_consumed),
            "unblocked_claims": int(r.unblocked_claims),
            "corrupt_records": int(r.corrupt_records),
            "full_events": int(r.full_events),
        }


def _nbytes(data: Any) -> int:
    try:
        return memoryview(data).nbytes
    except TypeError:
        return len(data)


def _offset(lens: Any, i: int) -> int:
    """Byte offset of record i in a packed batch."""
    return sum(ffi.unpack(lens, i)) if i else 0


__all__ = ["MpscRing", "TxRecord", "Claim", "FOREVER"]
