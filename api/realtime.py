"""A thread that waits in rtudp at real-time priority, within a CPU budget; and a
process whose memory is resident before its deadlines.

``with rtudp.RealtimeWaits():`` around a receive loop, ``rtudp.realtime.lock_memory()``
at the start of a process that submits just in time: docs/realtime-waits.md says
when each pays and what it costs; csrc/rt_wait.h and csrc/memlock.h are the mechanisms.
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from types import TracebackType

from rtudp.shmring import _fast
from rtudp.shmring._native import lib

from .memory_lock import MemoryLock, lock_memory

__all__ = ["MemoryLock", "RealtimeWaitCounts", "RealtimeWaits", "lock_memory"]

#: SCHED_FIFO priorities a thread may ask for; the pool's workers run at 50 unless
#: told otherwise, and a waiting thread below them never delays their timed sends
PRIORITY_RANGE = (os.sched_get_priority_min(os.SCHED_FIFO),
                  os.sched_get_priority_max(os.SCHED_FIFO))
#: the CPU budget's bounds, ms (csrc/rt_wait.h): a CPU-time timer's useful floor, the RT
#: throttle's period
BUDGET_RANGE_MS = (_fast.RT_WAIT_MIN_BUDGET_NS / 1e6, _fast.RT_WAIT_MAX_BUDGET_NS / 1e6)


@dataclass(frozen=True)
class RealtimeWaitCounts:
    """What a :class:`RealtimeWaits` did: ``realtime`` whether the thread is at its
    real-time priority now, ``demotions`` how often the CPU budget ran out (the thread
    then ran at its own policy), ``promotions`` how often a sleep in a wait made it
    real-time again after that."""
    realtime: bool
    demotions: int
    promotions: int


class RealtimeWaits:
    """Inside ``with RealtimeWaits():`` the calling thread sleeps in a channel's receive
    waits (``recv``, ``recv_many``, ``recv_batch``, UDT's reads) at
    SCHED_FIFO ``priority``, so a datagram wakes it at once even beside busy normal
    tasks on its CPU; and it stays real-time after the wake-up, so what it sends in
    answer does not queue behind them either.

    ``cpu_budget_ms`` bounds what that costs everyone else: once the thread has used
    that much CPU without sleeping in an rtudp wait, it goes back to the policy it had
    at entry until it next sleeps in one (looked at on the kernel's tick, so up to a
    tick later).  A thread that always finds data waiting therefore runs at its own
    priority.  Leaving restores the policy it had; children it forks start at normal
    priority.

    Needs CAP_SYS_NICE or an RLIMIT_RTPRIO of ``priority`` or more: entering without it
    raises PermissionError.  The budget's timer signals SIGXCPU to the thread: a handler
    installed for SIGXCPU afterwards (``signal.signal``) replaces the budget's.  One per
    thread at a time; enter and leave it in the same thread.
    """

    def __init__(self, priority: int = 1, cpu_budget_ms: float = 10.0) -> None:
        lo, hi = PRIORITY_RANGE
        if isinstance(priority, bool) or not isinstance(priority, int) \
                or not lo <= priority <= hi:
            raise ValueError(f"priority={priority!r}: a SCHED_FIFO priority, an int in "
                             f"{lo}..{hi}")
        blo, bhi = BUDGET_RANGE_MS
        if isinstance(cpu_budget_ms, bool) or not isinstance(cpu_budget_ms, (int, float)) \
                or not math.isfinite(cpu_budget_ms) or not blo <= cpu_budget_ms <= bhi:
            raise ValueError(f"cpu_budget_ms={cpu_budget_ms!r}: a number of ms in {blo}..{bhi}")
        self.priority = priority
        self.cpu_budget_ms = float(cpu_budget_ms)
        self._thread: int | None = None
        self._final: RealtimeWaitCounts | None = None

    def __enter__(self) -> RealtimeWaits:
        if self._thread is not None:
            raise RuntimeError("this RealtimeWaits is entered already")
        _fast.rt_wait_enter(self.priority, round(self.cpu_budget_ms * 1e6))
        # the waits reached through cffi (UDT's) are another copy of the engine's
        lib.rtudp_set_before_sleep(_fast.rt_wait_hook())
        self._thread = threading.get_ident()
        self._final = None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._own_thread("leave")
        self._final = self._live()
        self._thread = None
        lib.rtudp_set_before_sleep(0)
        _fast.rt_wait_leave()

    def counts(self) -> RealtimeWaitCounts:
        """The counts so far (inside, from the thread that entered), or the final ones
        (after leaving)."""
        if self._thread is None:
            return self._final or RealtimeWaitCounts(False, 0, 0)
        self._own_thread("read the counts of")
        return self._live()

    def _own_thread(self, what: str) -> None:
        if self._thread != threading.get_ident():
            raise RuntimeError(f"cannot {what} a RealtimeWaits from another thread than the "
                               f"one that entered it")

    @staticmethod
    def _live() -> RealtimeWaitCounts:
        _on, realtime, _prio, _budget, demotions, promotions = _fast.rt_wait_counts()
        return RealtimeWaitCounts(bool(realtime), int(demotions), int(promotions))

    def __repr__(self) -> str:
        return f"RealtimeWaits(priority={self.priority}, cpu_budget_ms={self.cpu_budget_ms})"
