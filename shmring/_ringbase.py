"""What both ring kinds share: a validated segment, deadlines, waiting, errors."""
from __future__ import annotations

import os
import time
from typing import Any, Callable, TypeVar

from ._native import ffi, lib
from .errors import BadSegmentError, RtUdpError
from .kinds import COUNTER_GROUPS, read_counters
from .segment import Segment, c_checked, check_message, shm_path

FOREVER = 2**63 - 1
#: how long a blocking call spins before it parks on the futex: long enough to catch
#: a reply in a ping-pong, short enough that an idle reader costs no CPU
DEFAULT_SPIN_NS = 50_000

_T = TypeVar("_T", bound="RingBase")
_R = TypeVar("_R")


def deadline_ns(timeout: float | None) -> int:
    """Absolute CLOCK_MONOTONIC deadline for ``timeout`` seconds (None = forever)."""
    if timeout is None:
        return FOREVER
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if timeout < 0 or timeout != timeout:
        raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")
    return time.monotonic_ns() + int(timeout * 1e9)


def wait_until(wait: Callable[[int, int], int], deadline: int, spin_ns: int) -> bool:
    """Run a C wait until it reports ready (True) or the deadline passes (False).

    The C call releases the GIL.  A signal interrupts it (EINTR); returning here lets
    Python run the handler (so Ctrl-C raises KeyboardInterrupt) and then we go on.
    """
    while True:
        rc = wait(deadline, spin_ns)
        if rc == lib.RTUDP_OK:
            return True
        if rc == lib.RTUDP_ETIMEDOUT:
            return False
        if rc == lib.RTUDP_EINTR:
            continue
        if rc == lib.RTUDP_ESYS:
            raise OSError(ffi.errno, f"futex wait failed: {os.strerror(ffi.errno)}")
        raise RtUdpError(f"wait failed with code {rc}")


def wait_for(fetch: Callable[[], _R | None], wait: Callable[[int, int], int],
             timeout: float | None, spin_ns: int) -> _R | None:
    """The first result of ``fetch()`` that is not None, sleeping on the ring's doorbell
    between tries; None if ``timeout`` seconds pass first."""
    got = fetch()
    if got is not None:
        return got
    deadline = deadline_ns(timeout)
    while wait_until(wait, deadline, spin_ns):
        got = fetch()
        if got is not None:
            return got
    return None


class RingBase:
    """A ring in its own segment ``/dev/shm/rtudp.<name>``. Subclasses say which kind.

    Each subclass also derives from a C port type of ``_fast`` (the per-call and batch
    paths); ``_bind`` hands it the validated ring, ``_unbind`` takes it away on close.
    """

    KIND: int = 0
    KIND_NAME = ""
    VIEW = ""  # the process-local view: "struct rtudp_mpsc *" / "struct rtudp_bcast *"
    ATTACH: Callable[..., int]  # the C function that validates a ring and fills the view
    COUNTERS = ""  # its counters' group in COUNTER_GROUPS: "tx_ring" / "rx_ring"

    def __init__(self, segment: Segment) -> None:
        self._segment = segment
        try:
            self._mem, self._avail = self._validate(segment)
            self._ring = ffi.new(self.VIEW)
            check = ffi.new("struct rtudp_check *")
            rc = self.ATTACH(self._ring, self._mem, self._avail, check)
            if rc != lib.RTUDP_OK:
                raise BadSegmentError(f"segment {shm_path(segment.name)}: {check_message(check)}")
            self._bind(segment.name, int(ffi.cast("uintptr_t", self._mem)), self._avail)
        except BaseException:
            segment.close()
            raise
        self.capacity: int = int(self._ring.capacity)
        self.max_payload: int = int(self._ring.max_payload)

    # provided by the C port type the subclass derives from
    _bind: Callable[[str, int, int], None]
    _unbind: Callable[[], None]

    def _validate(self, segment: Segment) -> tuple[Any, int]:
        kind = ffi.new("uint32_t *")
        mem = ffi.new("void **")
        avail = ffi.new("uint64_t *")
        check = ffi.new("struct rtudp_check *")
        rc = lib.rtudp_ring_segment_validate(segment.base, segment.size, kind, mem, avail, check)
        if rc != lib.RTUDP_OK:
            raise BadSegmentError(f"segment {shm_path(segment.name)}: {check_message(check)}")
        if kind[0] != self.KIND:
            raise BadSegmentError(f"segment {shm_path(segment.name)} holds a "
                                  f"{_KIND_NAMES.get(kind[0], kind[0])} ring, not {self.KIND_NAME}")
        return mem[0], int(avail[0])

    @classmethod
    def create(cls: type[_T], name: str, capacity: int = 1 << 20, mode: int = 0o600) -> _T:
        """Create the ring's segment (``FileExistsError`` if the name is taken).

        ``capacity`` is in bytes, a power of two from 1 KiB to 1 TiB.
        """
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be an int (bytes), not {capacity!r}")
        size = lib.rtudp_ring_segment_size(cls.KIND, capacity)
        if size == 0:
            raise ValueError(
                f"capacity {capacity} is not a power of two between "
                f"{lib.RTUDP_RING_MIN_CAPACITY} and {lib.RTUDP_RING_MAX_CAPACITY} bytes")
        with Segment.create(name, size, mode).removed_on_error() as segment:
            c_checked(lib.rtudp_ring_segment_init, segment.base, size, cls.KIND, capacity)
            return cls(segment)

    @classmethod
    def attach(cls: type[_T], name: str) -> _T:
        """Map an existing ring by name, validating everything in its header."""
        return cls(Segment.open(name))

    @property
    def name(self) -> str:
        """The segment name (without the ``rtudp.`` prefix)."""
        return self._segment.name

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._segment.closed

    @property
    def created(self) -> bool:
        """True if this object created the segment (then closing it also unlinks it)."""
        return self._segment.created

    def _check_open(self) -> None:
        if self._segment.closed:
            raise ValueError(f"{self.KIND_NAME} ring {self.name!r} is closed")

    def _raise_for(self, rc: int, what: str, size: int | None = None) -> None:
        """Turn a negative C result into the matching exception."""
        self._check_open()
        if rc == lib.RTUDP_ETOOBIG:
            raise ValueError(
                f"record of {size} bytes is larger than the ring's max_payload of "
                f"{self.max_payload} bytes (capacity {self.capacity} bytes / 4 - header, "
                f"at most {lib.RTUDP_MAX_PAYLOAD})")
        if rc == lib.RTUDP_ECORRUPT:
            raise BadSegmentError(f"{what}: ring {shm_path(self.name)} is corrupt "
                                  f"(a record failed validation)")
        if rc == lib.RTUDP_ESYS:
            raise OSError(ffi.errno, f"{what}: {os.strerror(ffi.errno)}")
        raise RtUdpError(f"{what}: ring {self.name!r} returned code {rc}")

    def close(self) -> None:
        """Unmap the ring (idempotent). The creator also unlinks it."""
        if not self._segment.closed:
            self._unbind()
            self._ring = None
            self._segment.close()

    def unlink(self) -> None:
        """Remove the segment's name; attached processes keep their mapping."""
        self._segment.unlink()

    def stats(self) -> dict[str, int]:
        """Geometry, positions and the ring's counters (as C describes them), read
        without locks."""
        self._check_open()
        r = self._ring.ring
        out = {"capacity": self.capacity, "max_payload": self.max_payload, "head": int(r.head),
               "tail": int(r.tail)}
        out.update(read_counters(COUNTER_GROUPS[self.COUNTERS], r))
        return out

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        created = self._segment.created
        self.close()
        if created:
            self.unlink()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"capacity={self.capacity}"
        return f"<{type(self).__name__} {self.name!r} {state}>"


_KIND_NAMES = {lib.RTUDP_RING_MPSC: "MPSC", lib.RTUDP_RING_BROADCAST: "broadcast"}

