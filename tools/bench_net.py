"""Helpers shared by the network benchmarks (``rtudp bench timing|latency|throughput``).

Same conventions as ``rtudp bench ring``: every figure is measured in the same run
as the peers it is compared with, ratios are printed, targets are reported as
PASS/MISS and never asserted, each row carries an "others" column (CPU used by
processes that are not part of the benchmark), and everything the benchmark
starts (pool, worker processes, child processes, /dev/shm segments) is stopped or
removed in ``finally`` blocks, also on Ctrl-C and SIGTERM.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from rtudp.workers.supervisor import DEFAULT_SPIN_BUDGET

from .bench_ring import OthersMeter, cpu_busy
from .pool_cli import parse_spin_budget

NOISY_CPU = 0.1        # others' CPU share above which a figure gets a '!'
BUSY_FRACTION = 0.2    # CPU use by others before the start above which figures are suspect
CHILD_TIMEOUT_S = 120.0
LOOPBACK = "127.0.0.1"
MSG_SIZE = 64

SCHED_NAMES = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH",
               5: "SCHED_IDLE", 6: "SCHED_DEADLINE"}


# --------------------------------------------------------------------------
# Pool and clean-up
# --------------------------------------------------------------------------

def pool_prefix() -> str:
    """Pool names of this benchmark process start with this (unique: the pid is in it)."""
    return f"bench{os.getpid()}"


def leftovers(prefix: str | None = None) -> list[str]:
    """/dev/shm entries of pools named `prefix`... (default: this process's)."""
    return sorted(glob.glob(f"/dev/shm/rtudp.{prefix or pool_prefix()}*"))


@contextlib.contextmanager
def bench_pool(tag: str, rt_priority: int = 50,
               spin_budget: float | None = None) -> Iterator[tuple[Any, list[str]]]:
    """A started embedded :class:`rtudp.Pool` named ``bench<pid><tag>``; yields
    (pool, warnings it gave at start, e.g. SCHED_FIFO not permitted).  Always stopped.
    ``spin_budget`` None: the pool's default."""
    from rtudp import Pool

    extra = {} if spin_budget is None else {"spin_budget": spin_budget}
    pool = Pool(name=f"{pool_prefix()}{tag}", rt_priority=rt_priority, **extra)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pool.start()
        except BaseException:
            pool.stop()
            raise
    try:
        yield pool, [str(w.message) for w in caught]
    finally:
        pool.stop()


def worker_policies(pool: Any) -> list[dict]:
    """What each worker actually got: cpu, pid, scheduling policy (as the kernel reports
    it for the worker's pid now) and priority."""
    out = []
    for w in pool.workers():
        try:
            policy = os.sched_getscheduler(w["pid"])
            prio = os.sched_getparam(w["pid"]).sched_priority
        except OSError:
            policy, prio = w["policy"], w["priority"]
        out.append({"index": w["index"], "cpu": w["cpu"], "pid": w["pid"],
                    "policy": SCHED_NAMES.get(policy, str(policy)), "priority": prio})
    return out


def policy_line(policies: list[dict]) -> str:
    """'worker 0: CPU 0, SCHED_FIFO priority 50; worker 1: ...'."""
    return "; ".join(f"worker {p['index']}: CPU {p['cpu']}, {p['policy']}"
                     + (f" priority {p['priority']}" if p["priority"] else "")
                     for p in policies)


def free_udp_port(host: str = LOOPBACK) -> int:
    """A UDP port that was free a moment ago (for tools that want a port number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Child processes (multiprocessing "spawn": nothing of the pool is inherited)
# --------------------------------------------------------------------------

def _child_main(fn: Callable[..., dict], args: tuple, conn: Any) -> None:
    """Run fn(*args, ready) in a child; send its result (or the traceback) to the parent.
    ``ready(info)`` tells the parent the child is set up (sends {"ready": info})."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    try:
        conn.send({"result": fn(*args, lambda info=None: conn.send({"ready": info}))})
    except BaseException:  # noqa: BLE001 - report anything to the parent
        with contextlib.suppress(OSError):
            conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


class Child:
    """One helper process: started at once, reaped (terminate, then kill) by :meth:`stop`."""

    def __init__(self, name: str, fn: Callable[..., dict], *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_end = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_child_main, args=(fn, args, child_end),
                                name=name, daemon=True)
        self.proc.start()
        child_end.close()
        self.name = name

    def _get(self, key: str, timeout: float, idle: Callable[[], None] | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no answer within {timeout:.0f} s")
            wait = min(left, 0.002) if idle is not None else left
            ready = multiprocessing.connection.wait([self.conn, self.proc.sentinel], wait)
            if self.conn in ready or self.conn.poll():
                try:
                    msg = self.conn.recv()
                except EOFError:
                    raise RuntimeError(f"{self.name} exited with code "
                                       f"{self.proc.exitcode}") from None
                if "error" in msg:
                    raise RuntimeError(f"{self.name} failed:\n{msg['error']}")
                if key in msg:
                    return msg[key]
            elif ready:
                raise RuntimeError(f"{self.name} exited with code {self.proc.exitcode}")
            if idle is not None:
                idle()

    def ready(self, timeout: float = 30.0) -> Any:
        """Wait for the child's ready(info); returns info."""
        return self._get("ready", timeout)

    def result(self, timeout: float = CHILD_TIMEOUT_S,
               idle: Callable[[], None] | None = None) -> dict:
        """Wait for the child's result; ``idle()`` runs every ~2 ms meanwhile."""
        return self._get("result", timeout, idle)

    def stop(self, grace: float = 5.0) -> None:
        """Join; terminate after `grace` s, kill after 2 more (idempotent)."""
        self.proc.join(grace)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(2.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


# --------------------------------------------------------------------------
# The "others" column
# --------------------------------------------------------------------------

# OthersMeter (in bench_ring) counts the pool's workers as ours through its `pids`.


def noisy(entry: dict | None) -> bool:
    others = (entry or {}).get("others_cpu")
    return others is not None and others > NOISY_CPU


def others_col(entry: dict | None) -> str:
    """The 'others' column: CPU used by other processes during the run, '!' if too much."""
    others = (entry or {}).get("others_cpu")
    if others is None:
        return f"{'?':>7}"
    return f"{others:6.0%}{'!' if noisy(entry) else ' '}"


def others_footer(entries: list[dict | None]) -> None:
    print("\n  others: CPU used by other processes during the run (100% = one CPU)")
    if any(noisy(e) for e in entries):
        print("  ! = the machine was busy meanwhile: that figure is worse than on an idle "
              "machine")


# --------------------------------------------------------------------------
# Figures, ratios, targets
# --------------------------------------------------------------------------

def percentiles_us(values: list[int], ps: tuple[float, ...] = (50, 90, 99, 99.9)) -> dict:
    """Nearest-rank percentiles, min, max and mean of ns `values`, in µs
    (keys p50, p90, p99, p999, min, max, mean; None when empty)."""
    keys = {50: "p50", 90: "p90", 99: "p99", 99.9: "p999"}
    if not values:
        return {**{keys[p]: None for p in ps}, "min": None, "max": None, "mean": None}
    s = sorted(values)
    n = len(s)
    out = {keys[p]: s[min(n - 1, max(0, math.ceil(p * n / 100 - 1e-9) - 1))] / 1e3 for p in ps}
    out.update(min=s[0] / 1e3, max=s[-1] / 1e3, mean=sum(s) / n / 1e3)
    return out


def ratio(x: float | None, y: float | None) -> float | None:
    return x / y if x is not None and y else None


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def fmt_us(v: float | None, width: int = 8) -> str:
    if v is None:
        return f"{'-':>{width}}"
    return f"{v:{width}.1f}" if v >= 10 else f"{v:{width}.2f}"


def target(value: float | None, goal: float, higher: bool) -> dict:
    ok = value is not None and (value >= goal if higher else value <= goal)
    return {"value": value, "target": goal, "pass": ok}


def target_row(label: str, t: dict, op: str, unit: str, fmt: Callable[[float], str]) -> str:
    shown = "-" if t["value"] is None else fmt(t["value"])
    return (f"  {label:<40} {shown + unit:>14}  (target {op} {fmt(t['target'])}{unit})  "
            f"{'PASS' if t['pass'] else 'MISS'}")


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def add_common_arguments(parser: argparse.ArgumentParser, quick_help: str) -> None:
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with every figure instead of the table")


def add_spin_budget_argument(parser: argparse.ArgumentParser,
                             default: float = DEFAULT_SPIN_BUDGET) -> None:
    """``--spin-budget``: the bench pool's spin budget (as ``rtudp pool start``'s)."""
    why = "as a pool's default" if default == DEFAULT_SPIN_BUDGET else "a CPU given over"
    parser.add_argument("--spin-budget", type=parse_spin_budget, default=default,
                        metavar="SHARE",
                        help=f"share of a CPU the worker may busy-wait before deadlines "
                             f"(default {default:g}, {why})")


def header(name: str, quick: bool, quiet: bool, extra: str = "") -> float | None:
    """Print the first line (machine, load before the start); returns the busy share."""
    busy = cpu_busy()
    say(f"rtudp bench {name}: {'quick' if quick else 'full'} run, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
        + ("" if busy is None else f", CPUs {busy:.0%} busy before the start") + extra, quiet)
    if busy is not None and busy > BUSY_FRACTION:
        say("  (other work is running: these figures are worse than on an idle machine)", quiet)
    return busy


def say(text: str, quiet: bool) -> None:
    if not quiet:
        print(text, flush=True)


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_benchmark(args: argparse.Namespace, benchmark: Callable[[bool, bool], dict],
                  print_report: Callable[[dict], None]) -> int:
    """Run `benchmark(quick, quiet)`, print the table or the JSON; 0 when every case
    ran (targets met or not), 1 when one failed, 130 on Ctrl-C."""
    in_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _sigterm) if in_main else None
    try:
        report = benchmark(args.quick, args.json)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old)
    report["leftover_segments"] = leftovers()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
        if report["leftover_segments"]:
            print(f"\nleft in /dev/shm (should be nothing): {report['leftover_segments']}")
    return 1 if report.get("failed") or report["leftover_segments"] else 0
