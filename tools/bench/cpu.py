"""``rtudp bench cpu``: what a worker's CPU costs per packet at a steady rate.

On a VM a timed sleep costs the sleeping thread tens of µs of CPU and wakes it tens
of µs late, so a worker bridges short gaps between deadlines by spinning (and its TX
thread does the RX thread's work meanwhile).  This benchmark says what that costs:
an embedded pool (workers pinned, SCHED_FIFO when permitted, the default spin
budget, ``placement="spread"``) runs two channels A and B on loopback, each on its
own worker, as ``rtudp demo`` does (its helpers: the whole schedule queued first,
packet i due at ``t0 + i / rate``), in two runs of ``--seconds`` each:

1. one way: A sends to B.  The A worker's figures are case "TX only", the B
   worker's case "RX only" (measured in the same run, attributed by worker).
2. full duplex: A and B each send to the other at the rate (case "full duplex",
   both workers).

For each worker: its process CPU time (every thread; the process's CPU-time clock,
psutil's user + system where that cannot be read)
from before the schedule is queued to after its last packet left, as a share of one
CPU over the schedule's length; CPU µs per packet it handled (sent or received); the
share of a CPU it spun (the worker's ``spin_ns``) and, of that, the share that
bridged gaps (``bridge_ns``); "beyond spin" = CPU share - spin share (what the
worker costs beyond busy-waiting); sleeps, capped sleeps, RX turns and RX gathering waits
per second.
For each sending channel: send lateness p50/p99/p99.9/max from the worker's
histogram (``Channel.lateness()``).

Peer, in the same run: a C loop (``rtudp_bench_spin_send``, the floor of ``rtudp
bench timing``) in its own process that spins on the clock to each deadline and
sends the same datagrams at the same rate to a socket this process reads; its
thread CPU time (``time.thread_time``) per packet, and its send cost per packet
(the time it was not spinning: from each deadline, or the previous send's end, to
the end of the send).  Ratios: rtudp's µs per packet beyond spin / the C loop's
µs per packet (and / its send cost).  Target (the issue): full duplex at 50 kpps
each way, CPU beyond spin <= 0.5 of a CPU per worker, reported PASS/MISS, never
asserted.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from typing import Any, Callable

import psutil

from rtudp.shmring.hist import Histogram
from rtudp.workers.supervisor import MAX_CAPACITY

from .. import demo
from .common import (OthersMeter, pool_idle_s, drain_child, add_common_arguments, bench_pool,
                           fmt_ratio, fmt_us, header, others_col, others_footer, policy_line, ratio,
                           run_benchmark, say, target, target_row, worker_policies)
from .timing import Receiver as SocketReceiver
from .timing import _hist_entry
from ..cli_args import ranged

DEFAULT_RATE = 50_000
DEFAULT_SECONDS = 5.0
QUICK_SECONDS = 1.0
TARGET_BEYOND_SPIN = 0.5        # full duplex: CPU beyond spin per worker <= 0.5 of a CPU
SETTLE_S = 0.25                 # after the last send: > 2 worker ticks (counters published)
C_LEAD_NS = 2_000_000           # the C loop's first deadline this long after the call
MSG_SIZE = demo.PAYLOAD.size    # the demo's payload: magic, direction, sequence, deadline

CASES = {
    "tx_only": ("TX only", "one way A -> B: the worker of A (sends)"),
    "rx_only": ("RX only", "one way A -> B: the worker of B (receives), same run"),
    "duplex": ("full duplex", "A <-> B, each at the rate: each worker sends and receives"),
}
#: worker counters reported as differences over a run
COUNTERS = ("spin_ns", "bridge_ns", "spin_other_ns", "sleeps", "loops", "capped_sleeps",
            "rx_turns", "rx_coalesced", "demotions", "demote_preempted")


# --------------------------------------------------------------------------
# Measuring workers
# --------------------------------------------------------------------------

def _proc_cpu_ns(pid: int) -> int | None:
    """CPU time of process ``pid`` (every thread, also those that ended), ns; None if
    it is gone.  Read from its CPU-time clock (the scheduler's runtime, to the ns);
    where that cannot be read, user + system from psutil (clock ticks: 10 ms)."""
    try:
        # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), what clock_getcpuclockid() gives
        return time.clock_gettime_ns(((~pid) << 3) | 2)
    except (OSError, OverflowError):
        pass
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return int((t.user + t.system) * 1e9)


def worker_snapshot(pool: Any) -> dict[int, dict]:
    """Each worker's counters and process CPU time, by worker index."""
    out = {}
    for w in pool.workers():
        out[w["index"]] = {**{k: w[k] for k in COUNTERS}, "pid": w["pid"], "cpu": w["cpu"],
                           "restarts": w["restarts"], "cpu_ns": _proc_cpu_ns(w["pid"]),
                           "spin_margin_ns": w["spin_margin_ns"],
                           "sleep_cpu_ns": w["sleep_cpu_ns"]}
    return out


def worker_entry(before: dict, after: dict, seconds: float, sent: int, received: int,
                 role: str) -> dict:
    """A worker's figures over a run of ``seconds`` (the schedule's length) in which it
    sent ``sent`` and received ``received`` packets."""
    d = {k: after[k] - before[k] for k in COUNTERS}
    cpu_ns = (None if after["cpu_ns"] is None or before["cpu_ns"] is None
              or after["pid"] != before["pid"] else after["cpu_ns"] - before["cpu_ns"])
    packets = sent + received
    cpu_share = None if cpu_ns is None else cpu_ns / 1e9 / seconds
    spin_share = d["spin_ns"] / 1e9 / seconds
    beyond = None if cpu_share is None else cpu_share - spin_share
    return {
        "index": after.get("index", 0), "cpu": after["cpu"], "pid": after["pid"], "role": role,
        "sent": sent, "received": received, "packets": packets,
        "cpu_s": None if cpu_ns is None else cpu_ns / 1e9,
        "cpu_share": cpu_share,
        "us_per_packet": None if cpu_ns is None or not packets else cpu_ns / 1e3 / packets,
        "spin_share": spin_share,
        "bridged_share": d["bridge_ns"] / d["spin_ns"] if d["spin_ns"] else None,
        "beyond_spin_share": beyond,
        "beyond_spin_us_per_packet": (None if beyond is None or not packets
                                      else beyond * seconds * 1e6 / packets),
        "spin_other_share": d["spin_other_ns"] / 1e9 / seconds,
        "sleeps_per_s": d["sleeps"] / seconds,
        "capped_sleeps_per_s": d["capped_sleeps"] / seconds,
        "rx_turns_per_s": d["rx_turns"] / seconds,
        "rx_coalesced_per_s": d["rx_coalesced"] / seconds,
        "loops_per_s": d["loops"] / seconds,
        "demotions": d["demotions"], "demote_preempted": d["demote_preempted"],
        "spin_margin_us": after["spin_margin_ns"] / 1e3,
        "sleep_cpu_us": after["sleep_cpu_ns"] / 1e3,
        "restarted": after["restarts"] != before["restarts"] or after["pid"] != before["pid"],
    }


# --------------------------------------------------------------------------
# rtudp: one run (one way or full duplex) on a fresh pool
# --------------------------------------------------------------------------

def run_traffic(duplex: bool, n: int, rate: int, quiet: bool) -> dict:
    """A and B on a fresh pool; A sends n packets to B at ``rate`` (and B to A when
    ``duplex``), the whole schedule queued first.  Returns workers (figures of each
    worker that serves A or B), channels (lateness of each sender), policies."""
    seconds = n / rate
    # spread: each channel on its own worker, whose figures are its role's (TX, RX)
    with bench_pool("cpu2" if duplex else "cpu1", horizon_s=demo.schedule_horizon_s(n, rate),
                    placement="spread") as (pool, pool_warnings):
        for w in pool_warnings:
            say(f"  warning: {w}", quiet)
        a = b = None
        try:
            a, b = demo._open_pair(pool, n)
            senders = [(a, b, 0, "A -> B")] + ([(b, a, 1, "B -> A")] if duplex else [])
            # A's packets (direction 0) arrive on B, B's (direction 1) on A
            receivers = [demo.Receiver(rx_ch, direction, n)
                         for _tx_ch, rx_ch, direction, _label in senders]
            policies = worker_policies(pool)
            meter = OthersMeter(lambda: [w["pid"] for w in pool.workers()], pool_idle_s(pool))
            before = worker_snapshot(pool)
            t0 = (time.monotonic_ns() + demo.START_DELAY_NS
                  + n * demo.QUEUE_NS_PER_PACKET * len(senders) // 2)
            full = (demo._queue_all(a, b, n, rate, t0) if duplex
                    else demo.queue_schedule(a, 0, n, rate, t0))
            last = t0 + ((n - 1) * 1_000_000_000) // rate
            if time.monotonic_ns() > t0:
                say("  note: queueing the schedule took longer than its lead: the first "
                    "packets were queued after their deadlines", quiet)
            demo._drain_until_done(receivers, last)
            end = time.monotonic() + 2.0
            while time.monotonic() < end and min(
                    tx_ch.stats()["tx_packets"] for tx_ch, *_ in senders) < n:
                time.sleep(0.01)
            time.sleep(SETTLE_S)  # the workers publish their counters every 100 ms
            after = worker_snapshot(pool)
            others = meter.others()
            channels = {}
            sent_by: dict[int, int] = {}
            received_by: dict[int, int] = {}
            for (tx_ch, rx_ch, _direction, label), r in zip(senders, receivers):
                st, rst = tx_ch.stats(), rx_ch.stats()
                channels[label] = {
                    **_hist_entry(tx_ch.lateness()), "sent": st["tx_packets"],
                    "received": r.received, "lost": n - r.received,
                    "immediate": st["tx_immediate"], "tx_errors": st["tx_errors"],
                    "kernel_stamped": st["tx_kernel_stamped"],
                    "rx_kernel_drops": rst["rx_kernel_drops"], "ring_lost": r.ring_lost,
                    "tx_worker": tx_ch.worker, "rx_worker": rx_ch.worker}
                sent_by[tx_ch.worker] = sent_by.get(tx_ch.worker, 0) + st["tx_packets"]
                received_by[rx_ch.worker] = received_by.get(rx_ch.worker, 0) + rst["rx_packets"]
            workers = {}
            for index in sorted({a.worker, b.worker}):
                if duplex:
                    role = "sends and receives"
                elif a.worker == b.worker:
                    role = "sends A, receives on B"
                else:
                    role = "sends (A)" if index == a.worker else "receives (B)"
                after[index]["index"] = index
                workers[index] = worker_entry(before[index], after[index], seconds,
                                              sent_by.get(index, 0), received_by.get(index, 0),
                                              role)
                workers[index]["others_cpu"] = others
            return {"seconds": seconds, "packets": n,
                    "workers": workers, "channels": channels, "policies": policies,
                    "pool_warnings": pool_warnings, "back_pressure_events": full,
                    "worker_of": {"A": a.worker, "B": b.worker}, "others_cpu": others}
        finally:
            for ch in (a, b):
                if ch is not None:
                    try:
                        ch.close()
                    except Exception:  # noqa: BLE001 - the pool stops anyway
                        pass


# --------------------------------------------------------------------------
# The peer: a C spin + send loop in its own process
# --------------------------------------------------------------------------

def c_loop(addr: tuple[str, int], n: int, gap_ns: int, size: int,
           ready: Callable[[Any], None]) -> dict:
    """Send n datagrams of ``size`` bytes, one every ``gap_ns``, from C
    (rtudp_bench_spin_send: spin on the clock to each deadline, send); returns its
    thread CPU time, wall time, send lateness and the time it was not spinning."""
    from rtudp.tools.bench._native import ffi, lib

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect(addr)
        late = ffi.new("int64_t[]", n)
        ready(None)
        w0 = time.monotonic_ns()
        c0 = time.thread_time_ns()
        start = w0 + C_LEAD_NS
        rc = lib.rtudp_bench_spin_send(sock.fileno(), n, size, start, gap_ns, late)
        c1 = time.thread_time_ns()
        w1 = time.monotonic_ns()
        if rc < 0:
            raise OSError(-rc, f"rtudp_bench_spin_send: {os.strerror(-rc)}")
        values = list(late)
        # time not spinning: each send from its deadline (or the previous send's end,
        # when that was later) to its end
        busy = 0
        prev_end = start
        for i, lt in enumerate(values):
            deadline = start + i * gap_ns
            end = deadline + lt
            busy += max(0, end - max(deadline, prev_end))
            prev_end = end
        return {"cpu_ns": c1 - c0, "wall_ns": w1 - w0, "lead_ns": start - w0, "sent": n,
                "send_busy_ns": busy, "hist": Histogram.from_values(values).to_bytes()}
    finally:
        sock.close()


def run_c_loop(n: int, rate: int) -> dict:
    """The C loop at ``rate`` for n packets to a socket this process drains."""
    rx = SocketReceiver()
    try:
        result, others = drain_child(rx, n, "bench-cpu-c", c_loop, rx.addr, n,
                                  1_000_000_000 // rate, MSG_SIZE)
    finally:
        rx.close()
    seconds = n / rate
    cpu_s = result["cpu_ns"] / 1e9
    return {"sent": result["sent"], "received": rx.count, "cpu_s": cpu_s,
            "wall_s": result["wall_ns"] / 1e9,
            "cpu_share": result["cpu_ns"] / max(1, result["wall_ns"]),
            "us_per_packet": cpu_s * 1e6 / n,
            "send_us_per_packet": result["send_busy_ns"] / 1e3 / n,
            "send_share": result["send_busy_ns"] / 1e9 / seconds,
            "lateness": _hist_entry(Histogram.snapshot(result["hist"])),
            "others_cpu": others}


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------

def benchmark(quick: bool, quiet: bool, rate: int = DEFAULT_RATE,
              seconds: float | None = None) -> dict:
    seconds = seconds if seconds is not None else (QUICK_SECONDS if quick else DEFAULT_SECONDS)
    n = max(1, int(rate * seconds))
    seconds = n / rate
    busy = header("cpu", quick, quiet, f", {rate / 1000:g} kpps for {seconds:g} s a run")
    runs: dict[str, dict | None] = {"one_way": None, "duplex": None}
    failed: dict[str, str] = {}
    for key, duplex in (("one_way", False), ("duplex", True)):
        try:
            runs[key] = r = run_traffic(duplex, n, rate, quiet)
        except Exception as exc:  # noqa: BLE001 - report the run failed and go on
            failed[key] = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
            say(f"{key}: {exc}", quiet)
            continue
        say(f"  ... {'full duplex' if duplex else 'one way'}: " + ", ".join(
            f"worker {w['index']} CPU {w['cpu_share']:.0%} (spin {w['spin_share']:.0%})"
            for w in r["workers"].values() if w["cpu_share"] is not None), quiet)
    c_peer = None
    try:
        c_peer = run_c_loop(n, rate)
        say(f"  ... C spin+send loop: {c_peer['us_per_packet']:.2f} µs CPU a packet", quiet)
    except Exception as exc:  # noqa: BLE001
        failed["c_loop"] = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
        say(f"c_loop: {exc}", quiet)

    cases: dict[str, list[dict] | None] = dict.fromkeys(CASES)
    one, dup = runs["one_way"], runs["duplex"]
    if one:
        cases["tx_only"] = [one["workers"][one["worker_of"]["A"]]]
        cases["rx_only"] = [one["workers"][one["worker_of"]["B"]]]
    if dup:
        cases["duplex"] = list(dup["workers"].values())
    c_us = (c_peer or {}).get("us_per_packet")
    c_send = (c_peer or {}).get("send_us_per_packet")
    ratios = {key: [{"worker": w["index"],
                     "vs_c_loop": ratio(w["beyond_spin_us_per_packet"], c_us),
                     "vs_c_send": ratio(w["beyond_spin_us_per_packet"], c_send)}
                    for w in entries]
              for key, entries in cases.items() if entries}
    targets = {}
    for w in (cases["duplex"] or []):
        targets[f"duplex_beyond_spin_worker{w['index']}"] = target(
            w["beyond_spin_share"], TARGET_BEYOND_SPIN, False)
    if not targets:
        targets["duplex_beyond_spin"] = target(None, TARGET_BEYOND_SPIN, False)
    first = one or dup or {}
    return {"quick": quick, "rate_pps": rate, "seconds": seconds, "packets": n,
            "msg_size": MSG_SIZE, "cpu_busy_before": busy,
            "policies": first.get("policies", []),
            "pool_warnings": first.get("pool_warnings", []),
            "cases": cases, "runs": runs, "c_loop": c_peer, "ratios": ratios,
            "targets": targets, "failed": failed}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _pct(v: float | None, width: int = 6) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:{width}.1%}"


def _num(v: float | None, width: int = 7, fmt: str = ".0f") -> str:
    return f"{'-':>{width}}" if v is None else f"{v:{width}{fmt}}"


def print_report(r: dict) -> None:
    print(f"\nworkers: {policy_line(r['policies']) or '-'}")
    for w in r["pool_warnings"]:
        print(f"  warning: {w}")
    print(f"\nworker CPU, {r['packets']:,} x {r['msg_size']}-byte datagrams at "
          f"{r['rate_pps']:,} pps a direction for {r['seconds']:g} s (100% = one CPU; "
          f"'pkts' = sent + received)")
    print(f"  {'case':<12} {'worker':<9} {'role':<19} {'pkts':>7} {'CPU':>6} {'µs/pkt':>7} "
          f"{'spin':>6} {'bridged':>7} {'beyond':>6} {'µs/pkt':>7} {'sleeps/s':>8} "
          f"{'capped/s':>8} {'rxturn/s':>8} {'gather/s':>8} {'others':>7}")
    print(f"  {'':<12} {'':<9} {'':<19} {'':>7} {'':>6} {'':>7} {'':>6} {'of spin':>7} "
          f"{'spin':>6} {'beyond':>7}")
    for key, (name, _how) in CASES.items():
        entries = r["cases"].get(key)
        if not entries:
            run = "duplex" if key == "duplex" else "one_way"
            print(f"  {name:<12} {r['failed'].get(run, 'failed')}")
            continue
        for w in entries:
            print(f"  {name:<12} {w['index']} (CPU {w['cpu']}) {w['role']:<19} "
                  f"{w['packets']:>7} {_pct(w['cpu_share'])} "
                  f"{fmt_us(w['us_per_packet'], 7)} {_pct(w['spin_share'])} "
                  f"{_pct(w['bridged_share'], 7)} {_pct(w['beyond_spin_share'])} "
                  f"{fmt_us(w['beyond_spin_us_per_packet'], 7)} "
                  f"{_num(w['sleeps_per_s'], 8)} {_num(w['capped_sleeps_per_s'], 8)} "
                  f"{_num(w['rx_turns_per_s'], 8)} {_num(w['rx_coalesced_per_s'], 8)} "
                  f"{others_col(w)}")
    notes = []
    for key in CASES:
        for w in r["cases"].get(key) or []:
            if w["demotions"]:
                notes.append(f"{CASES[key][0]}, worker {w['index']}: spun "
                             f"{w['spin_other_share']:.1%} of a CPU at SCHED_OTHER past the RT "
                             f"cap in {w['demotions']} drops ({w['demote_preempted']} cut short)")
            if w["restarted"]:
                notes.append(f"{CASES[key][0]}, worker {w['index']} was restarted during the "
                             "run: its CPU figures are incomplete")
    for line in notes:
        print(f"  {line}")
    print("  CPU: the worker process (all its threads, its CPU clock) from before the "
          "schedule was queued\n  to after its last send, over the schedule's length; "
          "spin: the worker's busy-wait before\n  deadlines; bridged: of the spin, gaps too "
          "short to sleep (timed around the spin call: a little\n  over 100% when every "
          "spin bridged a gap); beyond spin = CPU - spin; rxturn: the TX thread's looks at the\n"
          "  sockets for the RX thread; gather: the RX thread's waits for datagrams coming fast to "
          "gather\n  (Pool(rx_coalesce_us=...))")

    print("\nsend lateness (µs), the worker's histogram (departure - deadline)")
    print(f"  {'run':<12} {'channel':<8} {'sent':>8} {'lost':>6} {'p50':>8} {'p99':>8} "
          f"{'p99.9':>8} {'max':>8}")
    for key, name in (("one_way", "one way"), ("duplex", "full duplex")):
        run = r["runs"].get(key)
        if not run:
            print(f"  {name:<12} {r['failed'].get(key, 'failed')}")
            continue
        for label, c in run["channels"].items():
            print(f"  {name:<12} {label:<8} {c['sent']:>8} {c['lost']:>6} "
                  f"{fmt_us(c['p50_us'])} {fmt_us(c['p99_us'])} {fmt_us(c['p999_us'])} "
                  f"{fmt_us(c['max_us'])}"
                  + (f"  ({c['immediate']} already due when the worker took them)"
                     if c["immediate"] else ""))

    c = r["c_loop"]
    print("\npeer: a C loop in its own process (rtudp_bench_spin_send: spin on the clock to "
          "each deadline,\n  send), the same datagrams at the same rate to a socket on "
          "loopback, SCHED_OTHER, not pinned")
    if not c:
        print(f"  {r['failed'].get('c_loop', 'failed')}")
    else:
        print(f"  CPU {c['cpu_share']:.1%} of its wall time ({c['cpu_s']:.3f} s, thread "
              f"CPU time), {c['us_per_packet']:.2f} µs a packet; of it sending (not "
              f"spinning)\n  {c['send_share']:.1%} of a CPU, {c['send_us_per_packet']:.2f} µs "
              f"a packet; sent {c['sent']}, received {c['received']}; lateness p99 "
              f"{fmt_us(c['lateness']['p99_us'], 0)} µs  others {others_col(c).strip()}")
    print("\nratios: rtudp µs a packet beyond spin / the C loop's µs a packet (its whole "
          "CPU, spin included)\n  and / the C loop's send cost a packet (< 1: rtudp "
          "costs less)")
    for key, rows in r["ratios"].items():
        for x in rows:
            print(f"  {CASES[key][0]:<12} worker {x['worker']}   vs C loop "
                  f"{fmt_ratio(x['vs_c_loop']):>7}   vs C loop's send "
                  f"{fmt_ratio(x['vs_c_send']):>7}")
    others_footer([w for entries in r["cases"].values() for w in (entries or [])] + [c])
    print("\ntargets")
    for key, t in r["targets"].items():
        label = ("full duplex CPU beyond spin, worker " + key.rsplit("worker", 1)[1]
                 if "worker" in key else "full duplex CPU beyond spin")
        print(target_row(label, t, "<=", " CPU", lambda v: f"{v:.2f}"))
    if r["rate_pps"] != DEFAULT_RATE:
        print(f"  (the target is about {DEFAULT_RATE // 1000} kpps each way; this run was "
              f"{r['rate_pps']:,} pps)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench cpu``."""
    add_common_arguments(parser, f"{QUICK_SECONDS:g} s a run instead of {DEFAULT_SECONDS:g}")
    parser.add_argument("--rate", type=ranged(int, "rate", 1, 1_000_000, hint="packets/s"),
                        default=DEFAULT_RATE, metavar="PPS",
                        help=f"packets/s a direction (default {DEFAULT_RATE:,})")
    parser.add_argument("--seconds", type=ranged(float, "--seconds", 0, 3600.0, above_lo=True),
                        default=None, metavar="S",
                        help=f"length of each run (default {DEFAULT_SECONDS:g}; --quick "
                             f"{QUICK_SECONDS:g})")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench cpu``: 0 when every run ran (targets met or not)."""
    seconds = args.seconds or (QUICK_SECONDS if args.quick else DEFAULT_SECONDS)
    if args.rate * seconds + 1024 > MAX_CAPACITY:
        print(f"rtudp bench cpu: {args.rate:,} pps for {seconds:g} s is "
              f"{int(args.rate * seconds):,} packets; a run queues its whole schedule, at "
              f"most {MAX_CAPACITY - 1024:,} packets", file=sys.stderr)
        return 2
    return run_benchmark(args, lambda quick, quiet: benchmark(quick, quiet, args.rate, seconds),
                         print_report)
