"""MPSC ring: many producer processes -> one consumer, in shared memory.

Producers claim space with a conditional atomic add on the tail, write, and commit;
the consumer reads in order and frees space.  A full ring pushes back (``try_put``
answers False, ``put`` waits then raises ``BackPressureError``); nothing is dropped.

``try_put``, ``try_get`` and the batch paths are C methods inherited from
``_fast.MpscPort``; the rest goes through cffi.  One consumer at a time: the
consumer side is not safe to call from several threads at once.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ._fast import MpscPort
from ._native import ffi, lib
from ._ringbase import DEFAULT_SPIN_NS, FOREVER, RingBase, deadline_ns, wait_for, wait_until
from .errors import BackPressureError, ClaimExpiredError

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


class MpscRing(RingBase, MpscPort):
    """Many producers, one consumer. Create with :meth:`create`, open with :meth:`attach`.

    Inherited from the C port: ``try_put(data, at_ns=0, flags=0) -> bool`` (False when
    full) and ``try_get() -> bytes | None``.
    """

    KIND = lib.RTUDP_RING_MPSC
    KIND_NAME = "MPSC"
    VIEW = "struct rtudp_mpsc *"
    COUNTERS = "tx_ring"
    ATTACH = lib.rtudp_mpsc_attach

    def __init__(self, segment: Any) -> None:
        super().__init__(segment)
        self._one: Any = None  # the consumer's buffer for one record (_get_buffers)
        self.spin_ns = DEFAULT_SPIN_NS

    def _get_buffers(self) -> None:
        """What a consumer's get fills, made at its first get: producers, who never get,
        do not pay for a buffer the size of the largest record."""
        self._one = ffi.new("char[]", self.max_payload)
        self._one_u8 = ffi.cast("uint8_t *", self._one)
        self._len = ffi.new("uint32_t *")
        self._send_at = ffi.new("int64_t *")
        self._flags = ffi.new("uint16_t *")

    def _wait(self, deadline: int, spin_ns: int) -> int:
        return lib.rtudp_mpsc_wait(self._ring, deadline, spin_ns)

    def wire_consumer(self, bell: Any, ready_set: Any, bit: int) -> None:
        """Every commit from here on also marks ``bit`` in ``ready_set`` and rings
        ``bell`` (cdata pointers: a worker's, which reads only the rings marked)."""
        self._check_open()
        self._set_ready(int(ffi.cast("uintptr_t", ready_set)), bit)
        self._set_wake(int(ffi.cast("uintptr_t", bell)))
        lib.rtudp_mpsc_set_ready(self._ring, ready_set, bit)  # the claim/commit view
        lib.rtudp_mpsc_set_wake(self._ring, bell)

    def wire_route(self, route: Any, bit: int) -> None:
        """Every commit from here on marks ``bit`` in the ready set of the worker that
        ``route`` (a cdata ``struct rtudp_mpsc_route *``, copied) names at that moment
        and rings its bell: the channel's worker, wherever the pool moves it."""
        self._check_open()
        self._set_route(int(ffi.cast("uintptr_t", route)), bit)
        lib.rtudp_mpsc_set_route(self._ring, route, bit)  # the claim/commit view

    def wire_not_before(self, clock: Any) -> None:
        """Records committed from here on leave no earlier than the ``int64_t`` at
        ``clock`` (cdata pointer: a time the consumer publishes, such as a paced
        stream's clock; None: nothing known), so a commit leaves a consumer asleep until
        before that time asleep: it drains the ring when it wakes."""
        self._check_open()
        self._set_not_before(None if clock is None else int(ffi.cast("uintptr_t", clock)))
        lib.rtudp_mpsc_set_not_before(self._ring, ffi.NULL if clock is None else clock)

    # ---- producers

    def put(self, data: bytes, at_ns: int = 0, flags: int = 0, timeout: float | None = None) -> None:
        """Queue one record, waiting up to ``timeout`` s for room (None = forever).

        Raises BackPressureError if the ring stays full until then.
        """
        self._check_open()
        deadline = FOREVER if timeout is None else deadline_ns(timeout)
        if isinstance(data, bytes):
            buf, size = data, len(data)
        else:
            view = memoryview(data)
            buf, size = ffi.from_buffer(view), view.nbytes
        while True:
            rc = lib.rtudp_mpsc_put(self._ring, buf, size, at_ns, flags, deadline, self.spin_ns)
            if rc == _OK:
                return
            if rc == _ETIMEDOUT:
                raise BackPressureError(
                    f"ring {self.name!r} stayed full for {timeout} s "
                    f"({self.capacity} bytes, record of {size} bytes)")
            if rc != _EINTR:
                self._raise_for(rc, "put", size)

    def put_many(self, items: list[bytes], at_ns: int = 0, flags: int = 0,
                 timeout: float | None = None) -> int:
        """Queue every record of ``items`` in one C call; returns how many (all of them).

        Raises BackPressureError (with ``.sent``) if the ring stayed full until the
        timeout, ValueError (queueing none) if one record is larger than max_payload.
        """
        deadline = FOREVER if timeout is None else deadline_ns(timeout)
        return self._put_many(items, at_ns, flags, deadline, self.spin_ns)

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

    def get(self, timeout: float | None = None) -> bytes:
        """The next record's payload, waiting up to ``timeout`` s (None = forever).

        Raises TimeoutError when nothing arrives in time.
        """
        data = wait_for(self.try_get, self._wait, timeout, self.spin_ns)
        if data is None:
            raise TimeoutError(f"no record in ring {self.name!r} within {timeout} s")
        return data

    def try_get_record(self) -> TxRecord | None:
        """The next record with its ``send_at_ns`` and ``flags``, or None if there is none."""
        self._check_open()
        if self._one is None:
            self._get_buffers()
        rc = lib.rtudp_mpsc_get(self._ring, self._one_u8, self.max_payload, self._len,
                                self._send_at, self._flags)
        if rc == _OK:
            return TxRecord(ffi.unpack(self._one, self._len[0]), int(self._send_at[0]),
                            int(self._flags[0]))
        if rc != _EMPTY:
            self._raise_for(rc, "get")
        return None

    def get_record(self, timeout: float | None = None) -> TxRecord:
        """Like :meth:`get`, with the record's ``send_at_ns`` and ``flags``."""
        rec = wait_for(self.try_get_record, self._wait, timeout, self.spin_ns)
        if rec is None:
            raise TimeoutError(f"no record in ring {self.name!r} within {timeout} s")
        return rec

    def get_many(self, max_n: int = 1024, timeout: float | None = None) -> list[bytes]:
        """Up to ``max_n`` payloads in one C call; waits up to ``timeout`` s for the first.

        Returns [] if nothing arrived by the timeout (0 = just poll).
        """
        items = wait_for(lambda: self._get_many_nowait(max_n) or None, self._wait, timeout,
                         self.spin_ns)
        return items or []

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
        """Positions and counters, read without locks; ``pending_bytes`` as ``len()``."""
        out = super().stats()
        out["pending_bytes"] = int(lib.rtudp_mpsc_pending_bytes(self._ring))
        return out


__all__ = ["MpscRing", "TxRecord", "Claim", "FOREVER"]
