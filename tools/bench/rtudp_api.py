"""``rtudp bench rtudp``: the RtUDP compatibility API at 50 kpps, alone and under load.

The issue's acceptance figures: a default pool, 50 kpps for 10 s through the RtUDP
API, send lateness p99 <= 50 µs, p99.9 <= 300 µs, max <= 2 ms; the same with two CPU
hogs running (a ``while :; do :; done`` pinned to each CPU): p99 <= 100 µs, p99.9
<= 1 ms, nothing lost.

Each case sends 64-byte datagrams at 50 kpps (one every 20 µs) for ``--seconds``
(default 10, --quick 2), packet i due at ``start + i * 20 µs`` (CLOCK_MONOTONIC):

- rtudp: ``create_rtudp("socket", ...)`` sender and receiver on a pool with the default
  settings (its own name, workers pinned, SCHED_FIFO when permitted, spin budget 0.3):
  the sender (direction 0) gets ``send_data(data, ts_ns)`` from a Python loop that
  keeps 500 ms of deadlines queued (tops up every 2 ms, the garbage collector paused),
  so what is measured is the worker, not Python (at 50 kpps the workers leave this
  SCHED_OTHER process little CPU, less with the hogs; a packet already due when the
  worker takes it from the queue is counted and shown); the receiver (direction 1, its ring holds
  a whole case) is read by the same loop, which checks every packet.  Lateness =
  ``get_packet_stats()`` (the worker's histogram: departure, from the kernel's TX
  timestamp when it gives one, - deadline); p90 from the histogram it returns.
- peers: a Python ``time.sleep`` + ``sendto`` scheduler in its own process (as in
  ``rtudp bench timing``), lateness = clock after ``sendto`` - deadline; and the C floor
  (``rtudp bench timing``'s): a C loop in its own process that spins on the clock to
  each deadline and sends, SCHED_OTHER, not pinned.  Its max is what the machine itself
  allows in that case: the host stops busy vCPUs for milliseconds at times, and a loop
  that never sleeps meets those stops as any sender does.

Cases: "default pool", then "default pool + 2 CPU hogs": ``taskset -c N bash -c
'while :; do :; done'`` on each CPU (SCHED_OTHER; they die with this process and
are killed by pid in a ``finally``, also on Ctrl-C), running through both senders.
Targets as above, PASS/MISS, never asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from rtudp.shmring.hist import Histogram
from rtudp.workers.supervisor import MAX_CAPACITY

from .common import (LOOPBACK, PACED_HEAD, OthersMeter, pool_idle_s, add_common_arguments,
                           bench_pool, drain_child, fmt_ratio, fmt_us, header, others_col,
                           others_footer, paced_submit, policy_line, ratio, run_benchmark, say,
                           target, target_row, worker_policies)
from ..cli_args import ranged
from .timing import Receiver as SocketReceiver
from .timing import _hist_entry, c_scheduler, py_scheduler
from ..demo import free_ports
from ..why_late import host_pauses_counted

RATE_PPS = 50_000
GAP_NS = 1_000_000_000 // RATE_PPS         # 20 µs
MSG_SIZE = 64
DEFAULT_SECONDS = 10.0
QUICK_SECONDS = 2.0
LEAD_NS = 50_000_000                       # first deadline this long after the loop starts
# keep this much of the schedule queued: at 50 kpps the two SCHED_FIFO workers leave
# this (SCHED_OTHER) process little of the machine, and with the hogs it shares what
# is left with them; a packet queued after its deadline would count Python's delay
AHEAD_NS = 500_000_000
TOPUP_S = 0.002                            # top the queue up this often
CAPACITY = 32768                           # sender's queue (packets): > AHEAD_NS / GAP_NS
# the receiver's ring holds every packet of a case (this process reads it when it gets
# the CPU; a reader lapped by the ring would count as loss the system did not make)
RX_SLACK = 1024
MAX_SECONDS = 20.0                         # (MAX_CAPACITY - RX_SLACK) / RATE_PPS, rounded down
_HEAD = PACED_HEAD                         # payload: index, deadline (ns)

HOG_CPUS = sorted(os.sched_getaffinity(0))   # one hog per CPU this process may use
CASES = {
    "default": "default pool",
    "hogs": f"default pool + {len(HOG_CPUS)} CPU hogs",
}
SENDERS = {
    "rtudp": ("rtudp RtUdpSocket", f"send_data(data, ts_ns), {AHEAD_NS // 1_000_000} ms queued "
                                   "ahead; worker's histogram"),
    "py_sleep": ("python sleep+sendto", "own process: time.sleep to the deadline, sendto; "
                                        "clock after sendto"),
    "c_floor": ("C busy-wait+send", "own process: C spin on the clock, send; clock after send "
                                    "(the floor: 1 CPU)"),
}
PEERS = ("py_sleep", "c_floor")
#: the issue's figures (µs; lost: packets)
TARGETS = {
    "default": {"p99_us": 50.0, "p999_us": 300.0, "max_us": 2000.0},
    "hogs": {"p99_us": 100.0, "p999_us": 1000.0, "lost": 0},
}
HOG_CMD = "while :; do :; done"
FLOOR_STALL_NS = 1_000_000                 # a C floor packet this late: a stall, counted
PR_SET_PDEATHSIG = 1


# --------------------------------------------------------------------------
# CPU hogs
# --------------------------------------------------------------------------

def _die_with_parent() -> None:
    """In the hog (before exec): SIGKILL when this benchmark's process dies, so a
    benchmark killed with SIGKILL leaves no hog spinning."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def cpu_hogs(cpus: list[int], pids_out: list[int]) -> Iterator[list[int]]:
    """One ``taskset -c CPU bash -c 'while :; do :; done'`` per CPU (SCHED_OTHER);
    yields their pids (also appended to ``pids_out``), kills them by pid on the way
    out, whatever happens."""
    procs: list[subprocess.Popen] = []
    try:
        for cpu in cpus:
            procs.append(subprocess.Popen(["taskset", "-c", str(cpu), "bash", "-c", HOG_CMD],
                                          stdin=subprocess.DEVNULL,
                                          preexec_fn=_die_with_parent))
            pids_out.append(procs[-1].pid)
        time.sleep(0.1)  # taskset has exec'd bash: the loop runs
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"CPU hog (pid {p.pid}) exited with code {p.returncode}: "
                                   "is taskset installed?")
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait()


def alive(pid: int) -> bool:
    """True while process ``pid`` exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# --------------------------------------------------------------------------
# rtudp through the RtUDP API
# --------------------------------------------------------------------------

def _pct_from_buckets(stats: dict, p: float) -> int | None:
    """Nearest-rank percentile from get_packet_stats()'s histogram (bucket upper bound,
    clamped to max), as the worker's own percentiles are computed."""
    counts = stats["histogram"]["counts"]
    n = sum(counts)
    if not n:
        return None
    rank = max(1, -(-int(p * n * 1000) // 100_000))  # ceil(p/100 * n) without floats
    seen = 0
    for upper, c in zip(stats["histogram"]["upper_ns"], counts):
        seen += c
        if seen >= rank:
            return min(upper, stats["max_latency_ns"])
    return stats["max_latency_ns"]


def _lateness_entry(stats: dict) -> dict:
    """p50/p90/p99/p99.9/max (µs) from get_packet_stats()."""
    us = (lambda v: None if v is None else v / 1e3)  # noqa: E731
    sent = stats["n_packets_sent"]
    return {"count": sent,
            "p50_us": us(stats["p50_latency_ns"]) if sent else None,
            "p90_us": us(_pct_from_buckets(stats, 90)),
            "p99_us": us(stats["p99_latency_ns"]) if sent else None,
            "p999_us": us(stats["p999_latency_ns"]) if sent else None,
            "max_us": us(stats["max_latency_ns"]) if sent else None,
            "mean_us": us(stats["avg_latency_ns"]) if sent else None,
            "min_us": us(stats["min_latency_ns"]) if sent else None}


class Checker:
    """Reads the receiving RtUdpSocket and checks every packet (index, duplicates)."""

    def __init__(self, sock: Any, n: int) -> None:
        self.sock, self.n = sock, n
        self.seen = bytearray(n)
        self.received = self.duplicates = self.foreign = 0

    def drain(self) -> None:
        sock, seen, unpack = self.sock, self.seen, _HEAD.unpack_from
        while True:
            k = min(sock.get_receive_length(), sock.capacity)
            if not k:
                return
            for data, _rx_ns in sock.receive_batch(k, 0):
                i = unpack(data)[0] if len(data) >= _HEAD.size else -1
                if not 0 <= i < self.n:
                    self.foreign += 1
                elif seen[i]:
                    self.duplicates += 1
                else:
                    seen[i] = 1
                    self.received += 1




def run_rtudp(n: int, tag: str, quiet: bool, extra_pids: list[int]) -> dict:
    """One case's rtudp sender: a fresh default pool, a sender/receiver RtUDP pair."""
    from rtudp import AddressInUseError
    from rtudp.compat import create_rtudp

    with bench_pool(tag) as (pool, pool_warnings):
        for w in pool_warnings:
            say(f"  warning: {w}", quiet)
        tx = rx = None
        try:
            for attempt in range(5):
                p1, p2 = free_ports(2)
                tx = create_rtudp("socket", LOOPBACK, p1, LOOPBACK, p2, direction=0,
                                  pool=pool, capacity=CAPACITY, max_datagram=MSG_SIZE)
                rx = create_rtudp("socket", LOOPBACK, p2, LOOPBACK, p1, direction=1,
                                  pool=pool, capacity=min(MAX_CAPACITY, n + RX_SLACK),
                                  max_datagram=MSG_SIZE)
                try:
                    rx.init_socket()
                    tx.init_socket()
                    break
                except AddressInUseError:
                    for s in (tx, rx):
                        s.close_socket()
                    tx = rx = None
                    if attempt == 4:
                        raise
            assert tx is not None and rx is not None
            rx.start()
            tx.start()
            policies = worker_policies(pool)
            meter = OthersMeter(lambda: [w["pid"] for w in pool.workers()] + extra_pids,
                                pool_idle_s(pool))
            checker = Checker(rx, n)
            submitted = paced_submit(tx.send_data, n, checker.drain, GAP_NS, AHEAD_NS, LEAD_NS,
                                     TOPUP_S)
            start = submitted["start"]
            end = time.monotonic() + 2.0 + max(0, start + n * GAP_NS - time.monotonic_ns()) / 1e9
            while time.monotonic() < end and (tx.get_send_length() or checker.received < n):
                checker.drain()
                time.sleep(0.002)
            end = time.monotonic() + 0.5
            while checker.received < n and time.monotonic() < end:
                checker.drain()
                time.sleep(0.01)
            others = meter.others()
            st = tx.get_packet_stats()
            rst = rx.get_packet_stats()
            workers = {w["index"]: w for w in pool.workers()}
            wtx = workers[tx._chan.worker]
            return {**_lateness_entry(st), "sent": st["n_packets_sent"],
                    "requested": st["n_packets_req"], "received": checker.received,
                    "lost": n - checker.received, "duplicates": checker.duplicates,
                    "foreign": checker.foreign, "immediate": st["n_immediate_packets"],
                    "tx_dropped": st["n_tx_packets_dropped"],
                    "rx_dropped": rst["n_rx_packets_dropped"],
                    "back_pressure_events": submitted["full"],
                    "queued_late": submitted["late"],
                    "queued_late_max_ms": submitted["lag_ns"] / 1e6, "others_cpu": others,
                    "policies": policies, "pool_warnings": pool_warnings,
                    "spin_budget": pool.spin_budget,
                    "tx_worker": {**wtx, "spin_margin_us": wtx["spin_margin_ns"] / 1e3,
                                  "host_pause_ms": wtx["host_pause_ns"] / 1e6,
                                  "host_pause_max_ms": wtx["host_pause_max_ns"] / 1e6}}
        finally:
            for s in (tx, rx):
                if s is not None:
                    with contextlib.suppress(Exception):
                        s.close_socket()


def run_peer(sender: str, n: int, extra_pids: list[int]) -> dict:
    """A peer sender (bench timing's) in its own process: "py_sleep" (Python sleep +
    sendto) or "c_floor" (C spin + send)."""
    rx = SocketReceiver()
    meter = OthersMeter(lambda: list(extra_pids))
    try:
        if sender == "c_floor":
            result, others = drain_child(rx, n, "bench-rtudp-c", c_scheduler, rx.addr, n,
                                         GAP_NS, None, meter=meter)
        else:
            result, others = drain_child(rx, n, "bench-rtudp-py-sleep", py_scheduler, rx.addr,
                                         n, False, meter=meter)
    finally:
        rx.close()
    out = {**_hist_entry(Histogram.snapshot(result["hist"])), "sent": result["sent"],
           "received": rx.count, "lost": result["sent"] - rx.count, "others_cpu": others,
           "policy": result["policy"]}
    if "pause_runs" in result:  # the floor: its stalls of a millisecond or more
        stalls = [x for x in result["pause_runs"][1] if x >= FLOOR_STALL_NS]
        out.update(stalls=len(stalls), stalls_ms=sum(stalls) / 1e6)
    return out


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------

def _case(key: str, n: int, quiet: bool, hog_pids: list[int],
          failed: dict[str, str]) -> dict[str, dict | None]:
    """Run both senders of case ``key`` (with hogs for "hogs")."""
    out: dict[str, dict | None] = dict.fromkeys(SENDERS)
    mine: list[int] = []
    with contextlib.ExitStack() as stack:
        if key == "hogs":
            stack.enter_context(cpu_hogs(HOG_CPUS, mine))
            hog_pids.extend(mine)
        for sender in SENDERS:
            try:
                if sender == "rtudp":
                    out[sender] = run_rtudp(n, f"rtudp{key}", quiet, mine)
                else:
                    out[sender] = run_peer(sender, n, mine)
            except Exception as exc:  # noqa: BLE001 - report the case failed and go on
                failed[f"{key}.{sender}"] = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
                say(f"{key}.{sender}: {exc}", quiet)
                continue
            e = out[sender]
            say(f"  ... {CASES[key]}, {SENDERS[sender][0]}: p99 {fmt_us(e['p99_us'], 0)} µs, "
                f"p99.9 {fmt_us(e['p999_us'], 0)} µs, max {fmt_us(e['max_us'], 0)} µs, "
                f"lost {e['lost']}", quiet)
    return out


def benchmark(quick: bool, quiet: bool, seconds: float | None = None) -> dict:
    seconds = seconds if seconds is not None else (QUICK_SECONDS if quick else DEFAULT_SECONDS)
    n = max(1, int(RATE_PPS * seconds))
    seconds = n / RATE_PPS
    busy = header("rtudp", quick, quiet, f", {RATE_PPS // 1000} kpps for {seconds:g} s a case")
    failed: dict[str, str] = {}
    hog_pids: list[int] = []
    results = {key: _case(key, n, quiet, hog_pids, failed) for key in CASES}
    hogs_left = [p for p in hog_pids if alive(p)]
    targets = {}
    for key, goals in TARGETS.items():
        e = results[key]["rtudp"] or {}
        for figure, goal in goals.items():
            targets[f"{key}_{figure}"] = target(e.get(figure), goal, False)
    ratios = {key: {peer: {p: ratio((r[peer] or {}).get(f"{p}_us"),
                                    (r["rtudp"] or {}).get(f"{p}_us"))
                           for p in ("p50", "p99", "p999", "max")}
                    for peer in PEERS}
              for key, r in results.items()}
    first = next((r["rtudp"] for r in results.values() if r["rtudp"]), {})
    return {"quick": quick, "rate_pps": RATE_PPS, "seconds": seconds, "packets": n,
            "msg_size": MSG_SIZE, "ahead_ms": AHEAD_NS / 1e6, "capacity": CAPACITY,
            "cpu_busy_before": busy, "policies": first.get("policies", []),
            "pool_warnings": first.get("pool_warnings", []),
            "cases": list(CASES), "senders": list(SENDERS), "results": results,
            "ratios": ratios, "hog_pids": hog_pids, "hogs_left": hogs_left,
            "targets": targets, "failed": failed}


def print_report(r: dict) -> None:
    print(f"\nworkers: {policy_line(r['policies']) or '-'}")
    for w in r["pool_warnings"]:
        print(f"  warning: {w}")
    first = next((x["rtudp"] for x in r["results"].values() if x["rtudp"]), None)
    if first:
        print(f"  rtudp: a pool with the default settings (spin budget "
              f"{first['spin_budget']:g}); sender queue {r['capacity']} packets, "
              f"{r['ahead_ms']:g} ms of deadlines queued ahead")
    for peer in PEERS:
        e = next((x[peer] for x in r["results"].values() if x[peer]), None)
        if e:
            print(f"  {SENDERS[peer][0]}: {e['policy']}, not pinned")
    print(f"  hogs: 'taskset -c CPU bash -c \"{HOG_CMD}\"' on each CPU, SCHED_OTHER "
          f"(pids {', '.join(map(str, r['hog_pids'])) or '-'}; "
          + (f"STILL RUNNING: {r['hogs_left']}" if r["hogs_left"] else "all killed") + ")")
    print(f"\nsend lateness (µs), {r['packets']:,} x {r['msg_size']}-byte datagrams at "
          f"{r['rate_pps'] // 1000} kpps on loopback a case")
    print(f"  {'case':<26} {'sender':<20} {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} "
          f"{'max':>8} {'sent':>7} {'lost':>5} {'others':>7}")
    for key, name in CASES.items():
        for sender, (sname, _how) in SENDERS.items():
            e = r["results"][key][sender]
            if not e:
                print(f"  {name:<26} {sname:<20} {r['failed'].get(f'{key}.{sender}', 'failed')}")
                continue
            print(f"  {name:<26} {sname:<20} {fmt_us(e['p50_us'])} {fmt_us(e['p90_us'])} "
                  f"{fmt_us(e['p99_us'])} {fmt_us(e['p999_us'])} {fmt_us(e['max_us'])} "
                  f"{e['sent']:>7} {e['lost']:>5} {others_col(e)}")
            name = ""
    for sender, (sname, how) in SENDERS.items():
        print(f"  {sname}: {how}")
    for key, name in CASES.items():
        e = r["results"][key]["rtudp"]
        if e and (e["immediate"] or e["back_pressure_events"] or e["duplicates"]
                  or e["tx_dropped"] or e["rx_dropped"]):
            print(f"  {name}: {e['immediate']} already due when the worker took them from "
                  f"the queue (queued late, or the worker was held up), "
                  f"{e['back_pressure_events']} queue-full events, {e['duplicates']} "
                  f"duplicates, {e['tx_dropped']} send errors, {e['rx_dropped']} RX drops")
        if e and e["queued_late"]:
            print(f"  {name}: this process queued {e['queued_late']} packets after their "
                  f"deadline (up to {e['queued_late_max_ms']:.1f} ms late): it was short of "
                  "CPU\n    (SCHED_OTHER, behind the SCHED_FIFO workers and the hogs); their "
                  "lateness is Python's, not the worker's")
        w = e["tx_worker"] if e else {}
        if w.get("host_pauses"):
            counted = host_pauses_counted(w["host_pauses"], w["host_pause_ms"],
                                          f", the longest {w['host_pause_max_ms']:.1f} ms")
            print(f"  {name}: the host stopped the sending worker's vCPU {counted}: no task "
                  "of this machine had the CPU, and packets due then left that late")
    for key, name in CASES.items():
        e = r["results"][key].get("c_floor")
        if e and e.get("stalls"):
            print(f"  {name}: the C floor lost its CPU {e['stalls']} times for 1 ms or more "
                  f"({e['stalls_ms']:.1f} ms in all): to the host stopping its vCPU, or to "
                  "tasks sharing that CPU\n    (it is SCHED_OTHER: the hogs' slices)")
    print("\nratios, peer / rtudp (> 1: rtudp is closer to the deadline)")
    for key, by_peer in r["ratios"].items():
        for peer, rs in by_peer.items():
            print(f"  {CASES[key]:<26} {SENDERS[peer][0]:<20} " + "  ".join(
                f"{p.replace('p999', 'p99.9')} {fmt_ratio(v):>8}" for p, v in rs.items()))
    others_footer([e for x in r["results"].values() for e in x.values()])
    print("\ntargets (the issue's acceptance figures, rtudp through the RtUDP API)")
    fmt = lambda v: f"{v:.1f}"  # noqa: E731
    labels = {"p99_us": "lateness p99", "p999_us": "lateness p99.9",
              "max_us": "lateness max", "lost": "packets lost"}
    for key, t in r["targets"].items():
        case, figure = key.split("_", 1)
        if figure == "lost":
            print(target_row(f"{CASES[case]}: {labels[figure]}", t, "<=", "",
                             lambda v: f"{v:.0f}"))
        else:
            print(target_row(f"{CASES[case]}: {labels[figure]}", t, "<=", " µs", fmt))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench rtudp``."""
    add_common_arguments(parser, f"{QUICK_SECONDS:g} s a case instead of {DEFAULT_SECONDS:g}")
    parser.add_argument("--seconds", default=None, metavar="S",
                        type=ranged(float, "--seconds", 0, MAX_SECONDS, above_lo=True,
                                    hint="the receiver's ring holds every packet of a case"),
                        help=f"length of each case (default {DEFAULT_SECONDS:g}; --quick "
                             f"{QUICK_SECONDS:g})")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench rtudp``: 0 when every case ran (targets met or not)."""
    return run_benchmark(args, lambda quick, quiet: benchmark(quick, quiet, args.seconds),
                         print_report)
