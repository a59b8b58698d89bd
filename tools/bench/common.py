"""What every ``rtudp bench`` benchmark shares: the runner, CPU accounting, child
processes, percentiles, ratios, targets and the pieces of its tables.

Conventions: every figure is measured in the same run as the peers it is compared
with, ratios are printed, targets are reported as PASS/MISS and never asserted, each
row carries an "others" column (CPU used by processes that are not part of the
benchmark: :class:`OthersMeter`), and everything a benchmark starts (pool, worker
processes, child processes, /dev/shm segments named ``rtudp.bench<pid>...``) is
stopped or removed in ``finally`` blocks, also on Ctrl-C and SIGTERM
(:func:`run_benchmark`).  A benchmark module exposes ``add_arguments(parser)``
(:func:`add_common_arguments`: ``--quick``, ``--json``) and ``run(args)``, and
imports nothing of rtudp at module level that a child process would not need.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import glob
import io
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

NOISY_CPU = 0.1        # others' CPU share above which a figure gets a '!'
BUSY_FRACTION = 0.2    # CPU use by others before the start above which figures are suspect
CHILD_TIMEOUT_S = 120.0
LOOPBACK = "127.0.0.1"
MSG_SIZE = 64

SCHED_NAMES = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH",
               5: "SCHED_IDLE", 6: "SCHED_DEADLINE"}
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


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
def bench_pool(tag: str, rt_priority: int | None = None, spin_budget: float | None = None,
               horizon_s: float | None = None, idle: str | None = None,
               caller_cpu: int | None = None, **pool_args: Any
               ) -> Iterator[tuple[Any, list[str]]]:
    """A started embedded :class:`rtudp.Pool` named ``bench<pid><tag>``; yields
    (pool, warnings it gave at start, e.g. SCHED_FIFO not permitted).  Always stopped.
    ``idle``, ``rt_priority``, ``spin_budget``, ``horizon_s`` None: the pool's default;
    ``caller_cpu``: once the pool runs, this process (and what it starts) runs there
    until the pool stops (a pool's CPUs must be this process's when it starts);
    ``pool_args`` go to the Pool as they are."""
    from rtudp import Pool

    extra = {"horizon_s": horizon_s} if horizon_s is not None else {}
    pool = Pool(name=f"{pool_prefix()}{tag}", idle=idle, rt_priority=rt_priority,
                spin_budget=spin_budget, **extra, **pool_args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pool.start()
        except BaseException:
            pool.stop()
            raise
    affinity = os.sched_getaffinity(0)
    try:
        if caller_cpu is not None:
            os.sched_setaffinity(0, {caller_cpu})
        yield pool, [str(w.message) for w in caught]
    finally:
        os.sched_setaffinity(0, affinity)
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

def _child_main(fn: Callable[..., dict], args: tuple, conn: Any,
                cpus: frozenset[int] | None = None) -> None:
    """Run fn(*args, ready) in a child; send its result (or the traceback) to the parent.
    ``ready(info)`` tells the parent the child is set up (sends {"ready": info});
    ``cpus``: where the child runs (None: where its parent's thread ran)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    try:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        conn.send({"result": fn(*args, lambda info=None: conn.send({"ready": info}))})
    except BaseException:  # noqa: BLE001 - report anything to the parent
        with contextlib.suppress(OSError):
            conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


class Child:
    """One helper process: started at once, reaped (terminate, then kill) by :meth:`stop`.

    It inherits the affinity of the thread that starts it, which a pool's thread
    placement may hold off a worker's CPU for a while (rtudp.workers.placement):
    ``cpus`` sets where it runs instead."""

    def __init__(self, name: str, fn: Callable[..., dict], *args: Any,
                 cpus: frozenset[int] | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_end = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_child_main, args=(fn, args, child_end, cpus),
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


def results(children: list[Child], timeout: float = CHILD_TIMEOUT_S) -> list[dict]:
    """Every child's result, waited for together: RuntimeError as soon as one of them
    fails (with its own error, not another's reaction to it) or after `timeout` s."""
    out: list[dict | None] = [None] * len(children)
    deadline = time.monotonic() + timeout
    while any(r is None for r in out):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"timed out after {timeout:.0f} s")
        waiting = [c for c, r in zip(children, out, strict=True) if r is None]
        multiprocessing.connection.wait([c.conn for c in waiting]
                                        + [c.proc.sentinel for c in waiting], left)
        for i, c in enumerate(children):
            if out[i] is None and (c.conn.poll() or not c.proc.is_alive()):
                out[i] = c.result(max(left, 0.001))
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------
# CPU: the machine's load before a run, the "others" column
# --------------------------------------------------------------------------

def drain_child(rx: Any, n: int, name: str, fn: Callable[..., dict], *args: Any,
             meter: "OthersMeter | None" = None) -> tuple[dict, float | None]:
    """Run a peer ``fn(*args)`` in a child process while this one drains ``rx`` (a
    receiver with ``drain()`` and ``wait_for(n, seconds)``) until the child's result and
    the last of its ``n`` packets are in: (its result, the others' CPU meanwhile)."""
    meter = meter or OthersMeter()
    child = Child(name, fn, *args)
    try:
        child.ready()
        result = child.result(idle=rx.drain)
        rx.wait_for(n, 1.0)
    finally:
        child.stop()
    return result, meter.others()


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(seconds: float = 0.25) -> float | None:
    """Fraction of CPU time used (by anything) over the next `seconds`; None off Linux."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(seconds)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(1, total1 - total0)


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by live process `pid`."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


class OthersMeter:
    """CPU used by processes that are not this one, its reaped children, or the live
    processes listed in `pids` (e.g. the pool's workers): the share of the machine
    that someone else took while a figure was measured (in CPUs).  `idle` gives the
    CPU seconds so far that were idle time although a process had them: a pool's idle
    pollers (pool_idle_s), which run only when nobody else wants the CPU."""

    def __init__(self, pids: Callable[[], list[int]] = list,
                 idle: Callable[[], float] = float) -> None:
        self._pids = pids
        self._idle = idle
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            busy, _ = _cpu_times()
        except (OSError, ValueError, IndexError):
            return None
        own = sum(ru.ru_utime + ru.ru_stime for ru in
                  (resource.getrusage(resource.RUSAGE_SELF),
                   resource.getrusage(resource.RUSAGE_CHILDREN)))
        own += sum(proc_cpu_s(p) for p in self._pids()) + self._idle()
        return busy / _CLK_TCK, own, time.monotonic()

    def others(self) -> float | None:
        """Average CPUs used by everything else since this meter was made."""
        end = self._sample()
        if self._start is None or end is None:
            return None
        (busy0, own0, t0), (busy1, own1, t1) = self._start, end
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / max(t1 - t0, 1e-3))


def pool_idle_s(pool: Any) -> Callable[[], float]:
    """For OthersMeter(idle=...): CPU seconds the pool's workers' idle pollers had
    (csrc/worker/idlepoller.h: where idle CPUs halt, they keep them polling)."""
    return lambda: sum(w["idle_poller_cpu_ns"] for w in pool.workers()) / 1e9


def noisy(entry: dict | None) -> bool:
    others = (entry or {}).get("others_cpu")
    return others is not None and others > NOISY_CPU


def others_col(entry: dict | None) -> str:
    """The 'others' column: CPU used by other processes during the run, '!' if too much."""
    others = (entry or {}).get("others_cpu")
    if others is None:
        return f"{'?':>7}"
    return f"{others:6.0%}{'!' if noisy(entry) else ' '}"


BUSY_NOTE = "the machine was busy meanwhile: that figure is worse than on an idle machine"


def others_footer(entries: list[dict | None], busy_note: str = BUSY_NOTE) -> None:
    """The 'others' column's legend (and what a '!' means, if a figure has one)."""
    print("\n  others: CPU used by other processes during the run (100% = one CPU)")
    if any(noisy(e) for e in entries):
        print(f"  ! = {busy_note}")


def print_table(title: str, columns: str, cases: Mapping[str, tuple[str, str]],
                entries: Mapping[str, dict | None], row: Callable[[dict, str], str],
                missing: Callable[[str], str], width: int, first: str = "name") -> None:
    """A table: its title, its column header (``first`` then ``columns``), then one row
    a case: ``  name  row(entry, how)``, or ``  name  why`` for a case without figures
    (``missing(key)``).  ``cases``: key -> (name, how); names are ``width`` wide."""
    print(f"\n{title}")
    print(f"  {first:<{width}} {columns}")
    for key, (name, how) in cases.items():
        e = entries.get(key)
        print(f"  {name:<{width}} {row(e, how) if e else missing(key)}")


def print_workers(policies: list[dict], pool_warnings: list[str]) -> None:
    """The workers' line of a report: each one's CPU and scheduling, the pool's warnings."""
    print(f"\nworkers: {policy_line(policies) or '-'}")
    for w in pool_warnings:
        print(f"  warning: {w}")


# --------------------------------------------------------------------------
# A paced sender
# --------------------------------------------------------------------------

#: what a paced packet starts with: its index and its deadline (ns)
PACED_HEAD = struct.Struct("<qq")


def paced_submit(send: Callable[[bytes, int], Any], n: int, drain: Callable[[], Any],
                 gap_ns: int, ahead_ns: int, lead_ns: int, topup_s: float) -> dict:
    """Queue packet i (MSG_SIZE bytes, :data:`PACED_HEAD` first) with ``send(data,
    deadline)`` for start + i * gap_ns, never more than ``ahead_ns`` ahead of now,
    calling ``drain()`` (the receiver) between chunks and sleeping ``topup_s``.

    The garbage collector is paused meanwhile, as a Python program that keeps deadlines
    tens of ms ahead must run: one full collection took 36 ms, longer than the queue
    ahead, and the worker then got packets already due.  Returns start (ns), how often
    the sender was full (BackPressureError), and how many packets this loop queued
    after their deadline and by how much at most (this process was short of CPU: that
    lateness is Python's, whatever the worker does)."""
    from rtudp.shmring.errors import BackPressureError

    now, sleep = time.monotonic_ns, time.sleep
    # the head then zeros, packed straight into bytes: a pack_into a bytearray and its
    # copy took 1.2 us a packet in place, more than send_data itself (0.6-0.8 us); with
    # two CPU hogs this process gets about what it needs, no more
    packet = struct.Struct(PACED_HEAD.format + f"{MSG_SIZE - PACED_HEAD.size}x").pack
    gc.collect()
    gc.disable()
    try:
        start = now() + lead_ns
        i = full = late = lag = 0
        while i < n:
            horizon = now() + ahead_ns
            while i < n:
                d = start + i * gap_ns
                if d >= horizon:
                    break
                try:
                    send(packet(i, d), d)
                except BackPressureError:
                    full += 1
                    break
                t = now()
                if d < t:
                    late += 1
                    lag = max(lag, t - d)
                i += 1
            drain()
            sleep(topup_s)
    finally:
        gc.enable()
    return {"start": start, "full": full, "late": late, "lag_ns": lag}


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


def target_row(label: str, t: dict, op: str, unit: str, fmt: Callable[[float], str],
               goal_fmt: Callable[[float], str] | None = None, width: int = 40) -> str:
    """``  label   value unit  (target op goal unit)  PASS|MISS``."""
    shown = "-" if t["value"] is None else fmt(t["value"])
    goal = (goal_fmt or fmt)(t["target"])
    return (f"  {label:<{width}} {shown + unit:>14}  (target {op} {goal}{unit})  "
            f"{'PASS' if t['pass'] else 'MISS'}")


def ratio_target_row(label: str, t: dict, why_na: str) -> str:
    """The row of a ``ratio <= goal x`` target; N/A (``why_na``) when it has nothing to
    compare with (``t["pass"]`` None)."""
    if t["pass"] is None:
        return f"  {label:<40} {'-':>14}  (target <= {t['target']:g}x)  N/A ({why_na})"
    return target_row(label, t, "<=", "x", lambda v: f"{v:.2f}")


class Hog:
    """A busy loop in its own process, pinned to one CPU (None: no hog; ``ANYWHERE``:
    where the kernel puts it, as an ordinary program's)."""

    ANYWHERE = -1

    def __init__(self, cpu: int | None) -> None:
        self.proc = None
        if cpu is not None:
            pin = "" if cpu == self.ANYWHERE else f"os.sched_setaffinity(0, {{{cpu}}})\n"
            code = f"import os\n{pin}while True: pass"
            self.proc = subprocess.Popen([sys.executable, "-c", code])

    def __enter__(self) -> "Hog":
        return self

    def cpu_s(self) -> float | None:
        """CPU seconds the busy loop got so far (None: no hog)."""
        return None if self.proc is None else proc_cpu_s(self.proc.pid)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()



# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def add_common_arguments(parser: argparse.ArgumentParser, quick_help: str) -> None:
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with every figure instead of the table")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as a section to paste into docs/measurements.md: "
                             "the command, the commit, the machine, then the table")


def add_spin_budget_argument(parser: argparse.ArgumentParser,
                             default: float | None = None) -> None:
    """``--spin-budget``: the bench pool's spin budget (as ``rtudp pool start``'s;
    default None: a pool's default)."""
    from rtudp.workers.supervisor import DEFAULT_SPIN_BUDGET

    from ..pool_cli import parse_spin_budget

    if default is None:
        default = DEFAULT_SPIN_BUDGET
    why = "as a pool's default" if default == DEFAULT_SPIN_BUDGET else "a CPU given over"
    parser.add_argument("--spin-budget", type=parse_spin_budget, default=default,
                        metavar="SHARE",
                        help=f"share of a CPU the worker may busy-wait before deadlines "
                             f"(default {default:g}, {why})")


def add_plot_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--plot FILE.png``: also draw ``what`` (matplotlib, the ``plot`` extra, is
    imported only when it is given, and checked before the run)."""
    from ..plot import plot_path

    parser.add_argument("--plot", type=plot_path, metavar="FILE.png",
                        help=f"also draw {what} into FILE (.png, .svg, .pdf; needs "
                             "matplotlib: pip install 'rtudp[plot]')")


def take_curves(tables: Mapping[str, Mapping[str, dict | None]]) -> dict[str, dict[str, Any]]:
    """The ``hist`` (a Histogram: what --plot draws, not JSON) of every entry of each
    table, taken out of the entries: ``{table: {case: hist}}``."""
    return {name: {case: e.pop("hist") for case, e in table.items()
                   if isinstance(e, dict) and "hist" in e}
            for name, table in tables.items()}


def header(name: str, quick: bool, quiet: bool, extra: str = "",
           busy_note: str = "these figures are worse than on an idle machine") -> float | None:
    """Print the first line (machine, load before the start); returns the busy share."""
    busy = cpu_busy()
    say(f"rtudp bench {name}: {'quick' if quick else 'full'} run, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
        + ("" if busy is None else f", CPUs {busy:.0%} busy before the start") + extra, quiet)
    if busy is not None and busy > BUSY_FRACTION:
        say(f"  (other work is running: {busy_note})", quiet)
    return busy


def say(text: str, quiet: bool) -> None:
    if not quiet:
        print(text, flush=True)


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


class _CtrlC:
    """SIGINT that is not lost: Python raises KeyboardInterrupt in whatever code runs,
    and one raised inside a finalizer or a weakref callback is printed and dropped
    ("Exception ignored"); the benchmark would then go on and exit 0.  This remembers
    the signal, so the run still ends as interrupted."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.seen = True
        raise KeyboardInterrupt


def failed_cases(report: dict) -> bool:
    """Whether a case failed: the report's ``failed`` (case -> why) is not empty."""
    return bool(report.get("failed"))


def _commit() -> str:
    """The checkout's commit (with ``+`` if it has changes), else the package version."""
    import rtudp

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("+" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"rtudp {rtudp.__version__}"


def _machine() -> str:
    """The machine a figure was taken on, in a line: CPUs, kernel, uptime, load."""
    uname = os.uname()
    try:
        with open("/proc/uptime") as f:
            up_min = float(f.read().split()[0]) / 60
    except (OSError, ValueError, IndexError):
        up_min = float("nan")
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} CPUs, {uname.machine}, kernel {uname.release}, "
            f"up {up_min:.0f} min, load {load:.2f}")


def print_markdown(report: dict, print_report: Callable[[dict], None], name: str) -> None:
    """The report of benchmark ``name`` as a section of docs/measurements.md: the
    command that made it, the commit and the machine, then the table as printed."""
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        print_report(report)
    given = sys.argv[sys.argv.index(name) + 1:] if name in sys.argv else []
    argv = ["bench", name, *(a for a in given if a != "--markdown")]
    print(f"`rtudp {' '.join(argv)}` at {_commit()}, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; {_machine()}.\n")
    print("```text")
    print(table.getvalue().strip("\n"))
    print("```")


def run_benchmark(args: argparse.Namespace, benchmark: Callable[[bool, bool], dict],
                  print_report: Callable[[dict], None],
                  failed: Callable[[dict], bool] = failed_cases,
                  plot: Callable[[dict, dict, str], None] | None = None) -> int:
    """Run `benchmark(quick, quiet)`, print the table or the JSON; 0 when every case
    ran (targets met or not), 1 when one failed (``failed(report)``), a segment was
    left in /dev/shm or the plot could not be written, 130 on Ctrl-C.  SIGTERM ends it
    as Ctrl-C would, cleaning up.  The report's ``curves`` (Histograms, of
    :func:`take_curves`) are taken out of it and, with ``--plot FILE``, drawn by
    ``plot(report, curves, FILE)``."""
    in_main = threading.current_thread() is threading.main_thread()
    ctrl_c = _CtrlC()
    if in_main:
        old = signal.signal(signal.SIGTERM, _sigterm)
        old_int = signal.signal(signal.SIGINT, ctrl_c)
    try:
        report = benchmark(args.quick, args.json)
        if ctrl_c.seen:      # raised where it was dropped (see _CtrlC)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old)
            signal.signal(signal.SIGINT, old_int)
    report["leftover_segments"] = leftovers()
    curves = report.pop("curves", {})
    if args.json:
        print(json.dumps(report, indent=2))
    elif getattr(args, "markdown", False):
        print_markdown(report, print_report, getattr(args, "benchmark", "?"))
    else:
        print_report(report)
        if report["leftover_segments"]:
            print(f"\nleft in /dev/shm (should be nothing): {report['leftover_segments']}")
    plotted = True
    path = getattr(args, "plot", None)
    if path is not None and plot is not None:
        try:
            plot(report, curves, path)
            print(f"\nplot: {path}", file=sys.stderr if args.json else sys.stdout)
        except OSError as exc:
            print(f"cannot write the plot {path!r}: {exc}", file=sys.stderr)
            plotted = False
    return 1 if failed(report) or report["leftover_segments"] or not plotted else 0
