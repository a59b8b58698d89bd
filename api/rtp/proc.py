"""librtpsynth's ``RtpProc``: callbacks run on a schedule each one sets itself.

``RtpProc()`` is a process-wide singleton (a new one after ``shutdown()``).
``create_channel(proc_in)`` calls ``proc_in(now_ns, 0)`` at once, in the caller's
thread; from then on ``proc_in(now_ns, deadline_ns)`` runs on the scheduler thread
when the deadline it returned has come (``now_ns >= deadline_ns``,
CLOCK_MONOTONIC ns).  Returning None unschedules the channel.  An exception
unschedules it too and is raised by ``close()`` as :class:`ChannelProcError` with the
exception as its ``__cause__``.

The callbacks are Python, so they run in a Python thread (librtpsynth's runs them in
its C thread with the GIL): waking is as precise as the interpreter lets a thread
wake.  Time-critical sending belongs in the worker (an rtp channel's paced or timed
mode), with RtpProc deciding what to send.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any, Callable

from . import ChannelProcError

ProcIn = Callable[[int, int], Any]

_instance: "RtpProc | None" = None
_instance_lock = threading.Lock()


class RtpProcChannel:
    """One scheduled callback of :class:`RtpProc`."""

    def __init__(self, proc: "RtpProc", proc_in: ProcIn) -> None:
        self._proc = proc
        self._proc_in = proc_in
        self._error: BaseException | None = None
        self.closed = False

    def _run(self, now_ns: int, deadline_ns: int) -> int | None:
        """Call proc_in; the next deadline, or None (unscheduled, error kept)."""
        try:
            nxt = self._proc_in(now_ns, deadline_ns)
        except Exception as exc:  # noqa: BLE001 - raised again by close()
            self._error = exc
            return None
        if nxt is None:
            return None
        if isinstance(nxt, bool) or not isinstance(nxt, int):
            self._error = TypeError(f"proc_in must return an int deadline (CLOCK_MONOTONIC "
                                    f"ns) or None, not {nxt!r}")
            return None
        return nxt

    def close(self) -> None:
        """Unschedule; ChannelProcError if a call of proc_in raised, RuntimeError if
        already closed."""
        if self.closed:
            raise RuntimeError("channel is already closed")
        self.closed = True
        self._proc._unschedule(self)
        if self._error is not None:
            raise ChannelProcError(f"proc_in raised {type(self._error).__name__}: "
                                   f"{self._error}") from self._error


class RtpProc:
    """The scheduler (one per process, see the module docstring)."""

    _started = False

    def __new__(cls) -> "RtpProc":
        global _instance
        with _instance_lock:
            if _instance is None or _instance._stop.is_set():
                obj = super().__new__(cls)
                obj._setup()
                _instance = obj
            return _instance

    def _setup(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[tuple[int, int, RtpProcChannel]] = []
        self._order = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rtudp-RtpProc", daemon=True)
        self._thread.start()

    def create_channel(self, proc_in: ProcIn) -> RtpProcChannel:
        """Call ``proc_in(now_ns, 0)`` now, then whenever the deadline it returns comes."""
        if not callable(proc_in):
            raise TypeError(f"proc_in must be callable, not {proc_in!r}")
        if self._stop.is_set():
            raise RuntimeError("RtpProc is shut down")
        ch = RtpProcChannel(self, proc_in)
        nxt = ch._run(time.monotonic_ns(), 0)
        if nxt is not None:
            self._schedule(ch, nxt)
        return ch

    def _schedule(self, ch: RtpProcChannel, deadline: int) -> None:
        with self._cv:
            heapq.heappush(self._heap, (deadline, next(self._order), ch))
            self._cv.notify()

    def _unschedule(self, ch: RtpProcChannel) -> None:
        with self._cv:  # a closed channel is skipped when its entry comes up
            self._cv.notify()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stop.is_set():
                    while self._heap and self._heap[0][2].closed:
                        heapq.heappop(self._heap)
                    now = time.monotonic_ns()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    wait = (self._heap[0][0] - now) / 1e9 if self._heap else None
                    self._cv.wait(wait)
                if self._stop.is_set():
                    return
                deadline, _o, ch = heapq.heappop(self._heap)
            now = time.monotonic_ns()
            nxt = ch._run(now, deadline)
            if nxt is not None and not ch.closed:
                self._schedule(ch, nxt)

    def shutdown(self) -> None:
        """Stop the scheduler; create_channel raises RuntimeError afterwards."""
        with self._cv:
            self._stop.set()
            self._heap.clear()
            self._cv.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()


__all__ = ["RtpProc", "RtpProcChannel"]
