"""A submitting process's memory made resident before its deadlines, and kept so.

``rtudp.lock_memory()`` (also ``rtudp.realtime.lock_memory``) is what real-time
practice does at the start of a time-critical process, within what the system allows:
docs/realtime-waits.md ("A submitter that holds cold") says when to call it and what
it costs; csrc/memlock.h has the system calls.
"""
from __future__ import annotations

import errno
import os
import resource
import sys
from dataclasses import dataclass

from rtudp.shmring._native import lib

#: the libraries every Python process runs in, locked first when not all code fits
_CORE_LIBS = ("libpython", "libc.so", "libm.so", "ld-linux")
#: CAP_IPC_LOCK: locking without RLIMIT_MEMLOCK's bound
_CAP_IPC_LOCK = 14
MIB = float(1 << 20)


@dataclass(frozen=True)
class MemoryLock:
    """What :func:`lock_memory` did.

    ``locked_bytes`` the process's locked memory after it (VmLck), ``mapped_bytes`` its
    address space (VmSize), ``limit_bytes`` RLIMIT_MEMLOCK (None: no bound, unlimited
    or CAP_IPC_LOCK); ``whole`` whether every current mapping is locked, ``future``
    whether later ones are locked as they are made; ``stack_bytes`` and ``heap_bytes``
    what was made resident ahead of use; ``missed`` what could not be done, and why
    (empty: all of it)."""
    locked_bytes: int
    mapped_bytes: int
    limit_bytes: int | None
    whole: bool
    future: bool
    stack_bytes: int
    heap_bytes: int
    missed: tuple[str, ...]

    def __str__(self) -> str:
        limit = "no limit" if self.limit_bytes is None else \
            f"RLIMIT_MEMLOCK {self.limit_bytes / MIB:.1f} MiB"
        scope = "all mappings" if self.whole else "code only"
        later = ", later mappings too" if self.future else ""
        head = (f"locked {self.locked_bytes / MIB:.1f} MiB of {self.mapped_bytes / MIB:.1f} "
                f"MiB mapped ({scope}{later}; {limit}); stack {self.stack_bytes >> 10} KiB "
                f"and heap {self.heap_bytes >> 10} KiB made resident")
        return "; ".join((head, *self.missed))


def lock_memory(*, stack_bytes: int = 256 << 10, heap_bytes: int = 8 << 20,
                future: bool = True) -> MemoryLock:
    """Make this process's memory resident now and keep it so, as far as the system
    lets it: call it once, after the imports and before the first deadline.

    - Locks every current mapping (``mlockall(MCL_CURRENT)``): code, data, channel
      rings; so no page the process runs or touches is read back from disk after the
      page cache is emptied, or faulted in on first use at a deadline.
    - With ``future``, and only where nothing bounds locked memory (RLIMIT_MEMLOCK
      unlimited, or CAP_IPC_LOCK), also every later mapping as it is made
      (``MCL_FUTURE``): under a bound the kernel would make mappings past it fail.
    - Where the whole address space does not fit RLIMIT_MEMLOCK, locks the code
      mappings instead, the interpreter's and rtudp's first, as many as fit.
    - Keeps freed heap memory in the process (no trim) and makes ``heap_bytes`` of
      heap and ``stack_bytes`` of the calling thread's stack resident.

    Returns a :class:`MemoryLock` saying what was locked and what could not be
    (``str()`` of it is one line to log).  Nothing is undone on return: the locks hold
    for the life of the process (``fork`` children do not inherit them).  rtudp's own
    waits (``recv`` and ``send`` timeouts, ``RealtimeWaits``) release the GIL; a thread
    that submits just in time still waits for the GIL behind the process's other
    Python threads (``sys.getswitchinterval()``), so it is best a process of its own.
    """
    for name, value in (("stack_bytes", stack_bytes), ("heap_bytes", heap_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r}: a number of bytes, an int >= 0")
    if not isinstance(future, bool):
        raise ValueError(f"future={future!r}: True or False")
    limit = _lock_limit()
    missed: list[str] = []
    want_future = future and limit is None
    if future and limit is not None:
        missed.append(f"later mappings not locked: RLIMIT_MEMLOCK {limit / MIB:.1f} MiB "
                      f"would make mappings past it fail (raise it to unlimited, or grant "
                      f"CAP_IPC_LOCK)")
    err = lib.rtudp_memlock_all(1, int(want_future))
    whole = err == 0
    if not whole:
        if err not in (errno.ENOMEM, errno.EPERM, errno.EAGAIN):
            raise OSError(err, f"mlockall: {os.strerror(err)}")
        missed.append(f"the whole address space ({_status_bytes('VmSize') / MIB:.1f} MiB) "
                      f"is over RLIMIT_MEMLOCK ({(limit or 0) / MIB:.1f} MiB): code locked "
                      f"instead, as far as it fits")
        missed.extend(_lock_code(limit or 0))
    heap = heap_bytes if lib.rtudp_memlock_keep_heap(heap_bytes) == 0 else 0
    if heap_bytes and not heap:
        missed.append(f"heap_bytes={heap_bytes}: the allocator refused it")
    stack = int(lib.rtudp_memlock_prefault_stack(stack_bytes))
    if stack < stack_bytes - 4096:
        missed.append(f"stack_bytes={stack_bytes}: only {stack} bytes fit this thread's stack")
    return MemoryLock(locked_bytes=_status_bytes("VmLck"), mapped_bytes=_status_bytes("VmSize"),
                      limit_bytes=limit, whole=whole, future=want_future, stack_bytes=stack,
                      heap_bytes=heap, missed=tuple(missed))


def _lock_limit() -> int | None:
    """Bytes this process may lock; None: no bound (CAP_IPC_LOCK, or unlimited)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY or _has_ipc_lock():
        return None
    return int(soft)


def _has_ipc_lock() -> bool:
    """Whether CAP_IPC_LOCK is among this process's effective capabilities."""
    for line in _status_lines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> _CAP_IPC_LOCK & 1)
    return False


def _status_lines() -> list[str]:
    with open("/proc/self/status", encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status, in bytes (0 when absent)."""
    for line in _status_lines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _code_mappings() -> list[tuple[int, int, str]]:
    """This process's executable file mappings (start, end, path), those the
    interpreter and rtudp run first, then the smaller before the larger."""
    exe = os.path.realpath(sys.executable)
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = []
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) < 6 or "x" not in parts[1] or not parts[5].startswith("/"):
                continue
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            found.append((lo, hi, parts[5].strip()))

    def first(m: tuple[int, int, str]) -> tuple[int, int]:
        path = m[2]
        core = path == exe or path.startswith(ours) or \
            os.path.basename(path).startswith(_CORE_LIBS)
        return (0 if core else 1, m[1] - m[0])
    return sorted(found, key=first)


def _lock_code(limit: int) -> list[str]:
    """Locks the code mappings that fit ``limit``; what did not, as one line."""
    left: list[tuple[int, int, str]] = []
    locked = _status_bytes("VmLck")
    for lo, hi, path in _code_mappings():
        if locked + (hi - lo) > limit or lib.rtudp_memlock_range(lo, hi - lo):
            left.append((lo, hi, path))
        else:
            locked += hi - lo
    if not left:
        return []
    names = sorted({os.path.basename(p) for _lo, _hi, p in left})
    size = sum(hi - lo for lo, hi, _p in left)
    return [f"{len(left)} code mappings ({size / MIB:.1f} MiB) did not fit: "
            f"{', '.join(names[:6])}{', ...' if len(names) > 6 else ''}"]
