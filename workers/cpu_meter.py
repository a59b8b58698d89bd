"""How much of a CPU a process (or one of its threads) used between two looks.

Both the thread placement (``placement.py``) and the packer (``packing.py``) judge a
worker by its share of its CPU; this is where that share is measured.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Hashable, Iterable

#: a process's CPU time read in longer than this (ns) is not used: the reader lost its
#: CPU while it read, so the time it took the reading at is not known (seen: shares of
#: 1.16, then 0.33)
MAX_READ_NS = 1_000_000


def _process_clock(pid: int) -> int:
    """The clock id of process ``pid``'s CPU time, as clock_getcpuclockid(3) makes it
    (Linux: CPUCLOCK_SCHED of the process, MAKE_PROCESS_CPUCLOCK); Python's time module
    has it only for threads of this process."""
    return ((~pid) << 3) | 2


def process_cpu_ns(pid: int) -> int | None:
    """All of process ``pid``'s threads' time on a CPU (ns); None if it is gone.  One
    clock read (a quarter of a microsecond here) where schedstat costs a file a thread
    (tens of microseconds a worker, five times a second for as long as the pool runs);
    schedstat if the clock cannot be read."""
    try:
        return time.clock_gettime_ns(_process_clock(pid))
    except OSError:
        pass  # gone (EINVAL), or no such clocks: the threads' schedstat says
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        used = thread_cpu_ns(int(tid))
        if used is None:
            return None
        total += used
    return total


def thread_cpu_ns(tid: int) -> int | None:
    """Thread ``tid``'s time on a CPU (ns, its schedstat: another process's thread has
    no clock this process may read); None if it is gone."""
    try:
        with open(f"/proc/{tid}/schedstat", "rb") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class ShareMeter:
    """Each process's (or, with ``read=thread_cpu_ns``, each thread's) share of a CPU
    since the previous :meth:`look`, by a key of the caller's: a worker's CPU or
    index."""

    def __init__(self, read: Callable[[int], int | None] = process_cpu_ns) -> None:
        self._read = read
        self._last: dict[int, tuple[int, int]] = {}  # pid -> (cpu ns, at ns)

    def look(self, procs: Iterable[tuple[Hashable, int]]) -> dict[Hashable, float]:
        """``{key: share}`` for each ``(key, pid)`` measured at the previous look too
        (a process seen for the first time, gone, or read too slowly has none)."""
        shares: dict[Hashable, float] = {}
        seen: dict[int, tuple[int, int]] = {}
        for key, pid in procs:
            last = self._last.get(pid)
            before = time.monotonic_ns()
            used = self._read(pid)
            after = time.monotonic_ns()
            if used is None:
                continue
            if after - before > MAX_READ_NS:
                if last is not None:
                    seen[pid] = last  # next look measures from the last good reading
                continue
            at = (before + after) // 2
            seen[pid] = (used, at)
            if last is not None and at > last[1]:
                shares[key] = (used - last[0]) / (at - last[1])
        self._last = seen
        return shares

    def forget(self) -> None:
        """Start over: the next look measures nothing, the one after from it."""
        self._last.clear()


__all__ = ["MAX_READ_NS", "ShareMeter", "process_cpu_ns", "thread_cpu_ns"]
