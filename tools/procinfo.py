"""What the kernel says about a process: scheduling policy and priority, CPU use, ages;
and how its clocks relate."""
from __future__ import annotations

import os
import time

POLICIES = {
    os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR",
    getattr(os, "SCHED_BATCH", 3): "SCHED_BATCH", getattr(os, "SCHED_IDLE", 5): "SCHED_IDLE",
}


def realtime_offset_ns(tries: int = 16) -> int:
    """CLOCK_REALTIME - CLOCK_MONOTONIC (ns), from the tightest of ``tries`` brackets."""
    best: tuple[int, int] | None = None
    for _ in range(tries):
        m0 = time.monotonic_ns()
        r = time.time_ns()
        m1 = time.monotonic_ns()
        if best is None or m1 - m0 < best[0]:
            best = (m1 - m0, r - (m0 + m1) // 2)
    assert best is not None
    return best[1]


def fmt_age(ns: float) -> str:
    """A duration in ns as a short age: ``850 ms``, ``12.3 s``, ``4m05s``, ``2h03m04s``."""
    s = ns / 1e9
    if s < 0:
        return "-"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    m, s = divmod(int(s), 60)
    h, m = divmod(m, 60)
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h{m:02d}m" if d else (f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s")


def kernel_policy(pid: int) -> tuple[int, int] | None:
    """(policy, priority) of the weakest thread of ``pid`` as the kernel reports it (a
    worker's conductor thread, SCHED_OTHER by design, left out)."""
    import psutil

    from ..workers.process import is_conductor

    try:
        tids = [t.id for t in psutil.Process(pid).threads()]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        tids = [pid]
    seen = set()
    for tid in tids:
        if is_conductor(pid, tid):
            continue
        try:
            seen.add((os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority))
        except (ProcessLookupError, PermissionError):
            continue
    if not seen:
        return None
    # the weakest thread is what the worker gets: SCHED_OTHER (0) < FIFO (1); lower prio
    return min(seen, key=lambda pp: (pp[0] == os.SCHED_FIFO, pp[1]))


def policy_text(pp: tuple[int, int] | None) -> str:
    """``SCHED_FIFO 50``, ``SCHED_OTHER``, ``?`` (unknown)."""
    if pp is None:
        return "?"
    policy, prio = pp
    name = POLICIES.get(policy, f"policy {policy}")
    return f"{name} {prio}" if policy in (os.SCHED_FIFO, os.SCHED_RR) else name


class CpuMeter:
    """CPU % of processes between successive calls (psutil keeps the previous sample)."""

    def __init__(self) -> None:
        self._procs: dict[int, object] = {}

    def percent(self, pid: int) -> float | None:
        """CPU % of ``pid`` since the last call for it (None on the first call, or if it
        is gone or not ours to read)."""
        import psutil

        proc = self._procs.get(pid)
        try:
            if proc is None:
                proc = psutil.Process(pid)
                proc.cpu_percent(None)
                self._procs[pid] = proc
                return None
            return float(proc.cpu_percent(None))  # type: ignore[attr-defined]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self._procs.pop(pid, None)
            return None

    def forget_others(self, keep: set[int]) -> None:
        """Drop the samples of processes not in ``keep``."""
        for pid in list(self._procs):
            if pid not in keep:
                del self._procs[pid]


__all__ = ["CpuMeter", "POLICIES", "fmt_age", "kernel_policy", "policy_text",
           "realtime_offset_ns"]
