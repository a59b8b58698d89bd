"""The measurement of ``rtudp doctor``: how often, and for how long, this machine takes
a CPU away from a program that only wants to keep time.

On each CPU this process may use (in turn, the thread pinned there, SCHED_OTHER),
half the time goes to each of two C loops of the cffi extension:

- the pause scan (``rtudp_bench_pause_scan``): spin on CLOCK_MONOTONIC and record
  every gap between two clock reads longer than 10 µs (an interrupt, another task,
  the host stopping the vCPU);
- the C floor of ``rtudp bench timing`` (``rtudp_bench_spin_send``): spin to each
  deadline (one every 20 µs, 50 kpps) and send a 64-byte datagram on loopback; its
  lateness is the best any sender can get here.  The receiving socket is not read
  (the kernel drops what its buffer cannot hold), so nothing else competes for a CPU.

Involuntary context switches of the thread over each scan tell which pauses were
another task taking the CPU (a real-time worker would not see those).

Then, with more than one CPU, a quarter of the time goes to the pause scan on every
CPU at once (one thread each): a pool under load keeps all its CPUs busy, and a host
may stop a VM's vCPUs far more often then.  Measured on a 2-vCPU VM: a loop on one
vCPU saw 0-2 pauses of 1 ms or more in 20-30 s, a loop on each of the two 20-70 on one
of them, up to 12 ms each.  The long pauses (LONG_PAUSE_NS) of both phases are
compared (``long_alone``, ``together``).
"""
from __future__ import annotations

import os
import resource
import socket
import threading
import time
from typing import Any

from rtudp.shmring.hist import Histogram

__all__ = ["PAUSE_OVER_NS", "LONG_PAUSE_NS", "FLOOR_GAP_NS", "read_cpu_times", "pause_scan",
           "scan_together", "floor_send", "pause_figures", "long_pauses", "measure"]

#: a gap between two clock reads longer than this is a pause
PAUSE_OVER_NS = 10_000
#: a pause at least this long: no interrupt of a guest takes that, the host stopped it
LONG_PAUSE_NS = 1_000_000
#: share of the measurement spent with every CPU busy at once
TOGETHER_SHARE = 0.25
#: the C floor's packet spacing (50 kpps, as ``rtudp bench timing``)
FLOOR_GAP_NS = 20_000
FLOOR_SIZE = 64
MAX_PAUSES = 1 << 17
#: each CPU gets at least this long, else fewer CPUs are measured
MIN_PER_CPU_S = 0.2
PERCENTILES = (50, 90, 99, 99.9)


def read_cpu_times(root: str = "/") -> dict[str, list[int]] | None:
    """The cpu lines of /proc/stat ({"cpu": [user, nice, system, idle, iowait, irq,
    softirq, steal, ...], "cpu0": ...}), in USER_HZ ticks; None if unreadable."""
    from .doctor_read import read_text

    text = read_text(root, "/proc/stat")[0]
    if text is None:
        return None
    out = {}
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0].startswith("cpu"):
            try:
                out[fields[0]] = [int(x) for x in fields[1:]]
            except ValueError:
                continue
    return out or None


def pause_scan(seconds: float, over_ns: int = PAUSE_OVER_NS) -> dict[str, Any]:
    """Spin on the clock for ``seconds`` (C, GIL released) and return the pauses:
    ``starts_ns`` / ``lengths_ns`` (of the first MAX_PAUSES), ``count``, ``reads``,
    ``seconds`` and ``switched`` (involuntary context switches of this thread)."""
    from rtudp.tools.bench._native import ffi, lib

    at = ffi.new("int64_t[]", MAX_PAUSES)
    length = ffi.new("int64_t[]", MAX_PAUSES)
    reads = ffi.new("uint64_t *")
    switches = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
    count = lib.rtudp_bench_pause_scan(int(seconds * 1e9), over_ns, MAX_PAUSES, at, length,
                                       reads)
    switched = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw - switches
    if count < 0:
        raise OSError(-count, f"rtudp_bench_pause_scan: {os.strerror(-count)}")
    kept = min(count, MAX_PAUSES)
    return {"starts_ns": list(at[0:kept]), "lengths_ns": list(length[0:kept]),
            "count": int(count), "reads": int(reads[0]), "seconds": seconds,
            "switched": switched}


def scan_together(seconds: float, cpus: list[int]) -> list[dict[str, Any]]:
    """:func:`pause_scan` on each of ``cpus`` at once, one thread pinned to each (the C
    loops run without the GIL); the scans in the order of ``cpus``."""
    scans: list[dict[str, Any] | None] = [None] * len(cpus)
    errors: list[BaseException] = []

    def scan(i: int, cpu: int) -> None:
        try:
            os.sched_setaffinity(0, {cpu})  # 0: this thread only
            scans[i] = pause_scan(seconds)
        except Exception as exc:  # noqa: BLE001 - raised in the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=scan, args=(i, cpu), name=f"pause-scan-{cpu}")
               for i, cpu in enumerate(cpus)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [s for s in scans if s is not None]


def long_pauses(scans: list[dict[str, Any]]) -> dict[str, Any]:
    """The pauses of LONG_PAUSE_NS or more in ``scans``: ``count``, ``per_s`` (a
    second of one CPU's scan), ``max_ms`` and ``lost_ms`` (their total)."""
    long = [x for s in scans for x in s["lengths_ns"] if x >= LONG_PAUSE_NS]
    cpu_seconds = sum(s["seconds"] for s in scans)
    return {"count": len(long), "per_s": len(long) / cpu_seconds if cpu_seconds else 0.0,
            "max_ms": max(long) / 1e6 if long else 0.0, "lost_ms": sum(long) / 1e6}


def floor_send(seconds: float) -> list[int]:
    """The C floor of ``rtudp bench timing`` for ``seconds``: lateness (ns) of each
    datagram, sent at one every FLOOR_GAP_NS to a loopback socket nobody reads."""
    from rtudp.tools.bench._native import ffi, lib

    n = max(1, int(seconds * 1e9) // FLOOR_GAP_NS)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        sink.bind(("127.0.0.1", 0))
        tx.connect(sink.getsockname())
        late = ffi.new("int64_t[]", n)
        rc = lib.rtudp_bench_spin_send(tx.fileno(), n, FLOOR_SIZE,
                                       time.monotonic_ns() + 1_000_000, FLOOR_GAP_NS, late)
        if rc < 0:
            raise OSError(-rc, f"rtudp_bench_spin_send: {os.strerror(-rc)}")
        return list(late)


def pause_figures(scans: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures of one or more pause scans: ``count``, ``per_s``, typical ``spacing_ms``
    and the share of spacings within 2 % of it (``periodic_share``), lengths
    ``p50_us`` / ``p99_us`` / ``max_us``, ``over_50us``, ``lost_share`` (of the time,
    the CPU was away) and ``switched`` (how many were other tasks)."""
    from .bench.timing import summarize_pauses

    rounds = [(s["starts_ns"], s["lengths_ns"], int(s["seconds"] * 1e9)) for s in scans]
    base = summarize_pauses(rounds, 1)
    lengths = sorted(x for s in scans for x in s["lengths_ns"])
    total_ns = sum(s["seconds"] for s in scans) * 1e9
    count = sum(s["count"] for s in scans)
    p99 = lengths[min(len(lengths) - 1, int(len(lengths) * 0.99))] / 1e3 if lengths else None
    return {"count": count, "per_s": count / total_ns * 1e9 if total_ns else 0.0,
            "spacing_ms": base["spacing_ms"], "periodic_share": base["periodic_share"],
            "p50_us": base["p50_us"], "p99_us": p99, "max_us": base["max_us"],
            "over_50us": base["over_target"],
            "lost_share": sum(lengths) / total_ns if total_ns else 0.0,
            "switched": sum(s["switched"] for s in scans),
            "seconds": sum(s["seconds"] for s in scans)}


def floor_figures(hist: Histogram) -> dict[str, Any]:
    """p50 / p90 / p99 / p99.9 / max of the floor's lateness, in µs."""
    pct = hist.percentiles(PERCENTILES)

    def us(v: float | None) -> float | None:
        return None if v is None else v / 1e3

    return {"packets": hist.count, "p50_us": us(pct[50]), "p90_us": us(pct[90]),
            "p99_us": us(pct[99]), "p999_us": us(pct[99.9]), "max_us": us(hist.max_ns)}


def measure(seconds: float, cpus: list[int] | None = None) -> dict[str, Any]:
    """Pause scan and C floor on each CPU in turn (half each of what the scan on every
    CPU at once leaves of ``seconds``): ``per_cpu`` [{cpu, pauses, floor}], ``pauses``
    and ``floor`` over all of them, ``each_s`` (each scan's and floor's length),
    ``long_alone`` (:func:`long_pauses` of the scans in turn) and, with more than one
    CPU, ``together`` ({seconds, long, per_cpu}: the scan on every CPU at once)."""
    allowed = sorted(os.sched_getaffinity(0))
    cpus = allowed if cpus is None else cpus
    cpus = cpus[:max(1, int(seconds / MIN_PER_CPU_S))]
    together_s = seconds * TOGETHER_SHARE if len(cpus) > 1 else 0.0
    share = (seconds - together_s) / len(cpus) / 2
    per_cpu, scans, total = [], [], Histogram()
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            scan = pause_scan(share)
            hist = Histogram.from_values(floor_send(share))
            scans.append(scan)
            total = total + hist
            per_cpu.append({"cpu": cpu, "pauses": pause_figures([scan]),
                            "floor": floor_figures(hist)})
    finally:
        os.sched_setaffinity(0, allowed)
    together = None
    if together_s:
        both = scan_together(together_s, cpus)
        together = {"seconds": together_s, "long": long_pauses(both),
                    "per_cpu": [{"cpu": cpu, "long": long_pauses([scan])}
                                for cpu, scan in zip(cpus, both)]}
    return {"seconds": seconds, "cpus": cpus, "each_s": share, "over_us": PAUSE_OVER_NS / 1e3,
            "floor_rate_pps": 1_000_000_000 // FLOOR_GAP_NS, "per_cpu": per_cpu,
            "pauses": pause_figures(scans), "floor": floor_figures(total),
            "long_alone": long_pauses(scans), "together": together}
