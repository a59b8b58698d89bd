"""Why a run's send lateness was off: what the machine and the workers did meanwhile.

``rtudp demo`` and ``rtudp bench timing`` take a :func:`snapshot` before and after
the timed part of a run; when a figure misses its target, :func:`explain` turns the
difference into plain sentences: what was detected (the RT throttle, a worker at its
CPU cap, the host stealing time or stopping a worker's vCPU, the submitter late
(``tx_late_arrival``), another task on a worker's CPU) and what to change, followed by
``rtudp doctor``'s verdict on this machine.

Everything here reads counters that exist anyway (``/proc/stat``, the kernel log,
the pool's worker table, the channels' counters): nothing is measured twice.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

import psutil

from .cold import REPORTED_KIB, reported_kib

#: kernel log line the RT throttle prints (once per boot)
THROTTLE_LINE = "RT throttling activated"
#: share of a CPU a worker used above which it counts as saturated
SATURATED = 0.85
#: steal share of the run above which the host is named
STEAL_SHARE = 0.005


@dataclass
class Snapshot:
    """Counters at one moment: machine-wide, per worker, per sending channel."""

    t: float
    steal_s: float
    throttle_lines: int | None
    workers: dict[int, dict[str, Any]] = field(default_factory=dict)
    worker_cpu_s: dict[int, float] = field(default_factory=dict)
    #: sends late on arrival: queued after their deadline or too close to it
    late_arrival: int = 0
    #: the CPUs the process may run on, whatever the pool's thread placement does
    allowed_cpus: frozenset[int] | None = None
    #: KiB of free memory the guest has handed back to its host (None: not a guest
    #: that reports free pages)
    reported_kib: int | None = None


def _steal_seconds() -> float:
    return float(getattr(psutil.cpu_times(), "steal", 0.0))


def _throttle_lines() -> int | None:
    """How often the kernel log says the RT throttle fired (None: log not readable)."""
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.count(THROTTLE_LINE)




def snapshot(pool: Any, channels: list[Any]) -> Snapshot:
    """The counters of ``pool``'s workers and of ``channels`` (those that send) now."""
    import time

    snap = Snapshot(time.monotonic(), _steal_seconds(), _throttle_lines(),
                    allowed_cpus=getattr(pool, "allowed_cpus", None),
                    reported_kib=reported_kib())
    for w in pool.workers():
        snap.workers[w["index"]] = dict(w)
        try:
            t = psutil.Process(w["pid"]).cpu_times()
            snap.worker_cpu_s[w["index"]] = t.user + t.system
        except (psutil.Error, OSError):
            pass
    snap.late_arrival = sum(int(ch.stats().get("tx_late_arrival", 0)) for ch in channels)
    return snap


#: the shortest stall a worker counts in ``host_pauses`` (RTUDP_HOST_PAUSE_MIN_NS,
#: csrc/worker/hostpause.h)
HOST_PAUSE_MIN_MS = 0.25


def host_pauses_counted(pauses: int, total_ms: float, more: str = "") -> str:
    """How the workers' host-pause counters read in a sentence: "at least N times for
    0.25 ms or more (T ms in all<more>)"."""
    times = "once" if pauses == 1 else f"{pauses} times"
    return (f"at least {times} for {HOST_PAUSE_MIN_MS:g} ms or more ({total_ms:.1f} ms in "
            f"all{more})")


def _delta(after: dict[str, Any], before: dict[str, Any], key: str) -> int:
    return int(after.get(key, 0)) - int(before.get(key, 0))


def findings(before: Snapshot, after: Snapshot) -> list[str]:
    """What happened between two snapshots that costs timing, one sentence each, with
    what to change.  Empty when nothing was detected."""
    out: list[str] = []
    span = max(after.t - before.t, 1e-9)
    if before.throttle_lines is not None and after.throttle_lines is not None \
            and after.throttle_lines > before.throttle_lines:
        out.append("the kernel's RT throttle fired (kernel log: 'RT throttling activated'): "
                   "real-time tasks were stopped for the rest of a period (up to 50 ms). "
                   "Something at SCHED_FIFO held a CPU for more than 95 % of a second; "
                   "check for other real-time programs (ps -eLo pid,cls,rtprio,comm)")
    steal = (after.steal_s - before.steal_s) / span
    if steal > STEAL_SHARE:
        out.append(f"the host took {100 * steal:.1f} % of the CPU time (steal): the virtual "
                   f"machine's vCPUs were not running; nothing inside it can fix that "
                   f"(dedicated host cores can)")
    for i, w in after.workers.items():
        b = before.workers.get(i)
        if b is None:
            continue
        where = f"worker {i} (CPU {w.get('cpu')})"
        cpu = after.worker_cpu_s.get(i, 0.0) - before.worker_cpu_s.get(i, 0.0)
        if cpu / span >= SATURATED:
            out.append(f"{where} used {100 * cpu / span:.0f} % of its CPU: it is saturated "
                       f"(its sends and receives, and spinning across gaps too short to "
                       f"sleep); lower the rate, spread channels over more workers, or "
                       f"give the pool a CPU of its own")
        capped = _delta(w, b, "capped_sleeps")
        if capped:
            out.append(f"{where} reached its real-time CPU cap {capped} times and slept "
                       f"up to the next deadline (30 µs at most) to stay clear of the RT "
                       f"throttle and the fair server: the packet due then left as late as "
                       f"the wake-up came (~20 µs on a VM)")
        contended = _delta(w, b, "cpu_contended")
        if contended:
            out.append(f"another task on the CPU of {where} wanted more of it than it got, "
                       f"for {contended * 20} ms: past its cap the worker slept in longer "
                       f"pieces (up to 60 µs instead of 30), so that the task got enough and "
                       f"the fair server did not take the CPU for 50 ms; packets due "
                       f"meanwhile left that much later.  Keep busy programs off the pool's "
                       f"CPUs (taskset), or give the pool fewer CPUs")
        pauses = _delta(w, b, "host_pauses")
        if pauses:
            longest_ms = int(w.get("host_pause_max_ns", 0)) / 1e6
            counted = host_pauses_counted(
                pauses, _delta(w, b, "host_pause_ns") / 1e6,
                f", the longest {longest_ms:.1f} ms; seen only while its TX thread held the CPU")
            out.append(f"the host stopped the vCPU of {where} {counted}: no task of this machine "
                       f"had the CPU meanwhile, the virtual machine's host did, and packets "
                       f"due then left that late.  Hosts do it more "
                       f"often while all of a VM's vCPUs are busy at once; nothing inside the "
                       f"VM can stop it (a host that gives each vCPU a core of its own can)")
        preempted = _delta(w, b, "demote_preempted")
        if preempted:
            out.append(f"{where} was taken off its CPU {preempted} times by another task while "
                       f"spinning at SCHED_OTHER past its cap: keep other busy programs off "
                       f"the pool's CPUs (taskset), or give the pool fewer CPUs")
    if before.reported_kib is not None and after.reported_kib is not None \
            and after.reported_kib > before.reported_kib:
        mib = (after.reported_kib - before.reported_kib) / 1024
        out.append(f"the guest handed {mib:,.0f} MiB of free memory back to its host during "
                   f"the run (free page reporting, {REPORTED_KIB}): the host takes such "
                   f"memory back while the vCPUs run and may stop them meanwhile.  Memory "
                   f"freed in bulk (emptying the page cache, a large process exiting) is "
                   f"reported seconds later; a run started once that settled misses it")
    late = after.late_arrival - before.late_arrival
    if late:
        out.append(f"{late} packets were late on arrival, queued after their deadline or too "
                   f"close to it: the submitter (the Python program) was late, not the worker; "
                   f"queue further ahead")
    return out


def explain(before: Snapshot, after: Snapshot, missed: list[str],
            with_doctor: bool = True) -> list[str]:
    """Lines to print when ``missed`` (the figures that missed their target) is not
    empty: the findings, then ``rtudp doctor``'s verdict for this machine."""
    if not missed:
        return []
    lines = [f"why: {', '.join(missed)} missed the target. Detected during the run:"]
    found = findings(before, after)
    lines += [f"  - {f}" for f in found] or ["  - nothing in the counters: the pauses came "
                                              "from the machine (see below)"]
    if with_doctor:
        from .doctor import verdict

        # the pool's CPUs, not this thread's: its placement may keep it on one of them
        lines += ["", *verdict(cpus=before.allowed_cpus).splitlines()]
    return lines


__all__ = ["HOST_PAUSE_MIN_MS", "REPORTED_KIB", "Snapshot", "snapshot", "findings", "explain",
           "host_pauses_counted"]
