"""``rtudp bench mechanisms``: what each of the pacer's mechanisms buys, and costs.

Every case is the default pool (idle strategy ``balanced``) sending 64-byte datagrams
on one channel at absolute CLOCK_MONOTONIC deadlines to a plain socket on loopback,
with one thing changed: a mechanism switched off (``Pool(pacer_off=[...])``,
csrc/worker/mechanisms.h), or one of the tunables that switch a mechanism (the idle
poller and PM QoS: ``idle_poll``; RX coalescing: ``rx_coalesce_us``), or the thread
placement (``place_threads``), or the idle strategy (``idle=spin``, ``idle=park``;
``all on`` is ``balanced``).  The case ``all on`` is the pool as users get it, and
``C floor`` a C loop spinning to each deadline in its own process (the machine's
floor, its CPU not counted).

Five scenarios, each a traffic pattern a mechanism was made for:

- ``50kpps``: one datagram every 20 µs (the budget runs out, the RT cap comes into play);
- ``50kpps+hog``: the same with a busy loop pinned to the worker's CPU (and to the C
  floor's: the floor shares its CPU alike);
- ``1000pps`` and ``200pps``: one datagram every 1 ms or 5 ms (long parks: warm-up,
  the idle poller, a long park's early end);
- ``rx 50kpps``: the channel receives, from a C sender in another process, one
  datagram every 20 µs, and a reader here drains it (the RX thread, its turns on the
  TX thread, its cap, coalescing).  The figure is the receive delay: the worker's
  publish in the ring - the kernel's RX stamp.  It has no C floor;
- ``rx flood+hog``: the same as fast as the C sender can (a datagram due every 2 µs)
  beside a busy loop on the worker's CPU: what the RX thread's cap leaves the loop;
- ``duplex 50kpps``: the channel sends at 50 kpps (as ``50kpps``) to the C sender's
  socket while receiving its 50 kpps: the receive delay while the TX thread spins
  (the TX thread's RX turns).

A round runs every case of every scenario once, in an order shuffled per round (seeded:
``--seed``), so that each meets the same spells of host noise; the report gives each
case's figures over all rounds and its worst and best round's p99.  Lateness = the
kernel's TX stamp - deadline (the worker's histogram); CPU = the pool's worker
processes and their idle pollers, in CPUs, over the case's run.  Figures only; nothing
is asserted.
"""
from __future__ import annotations

import argparse
import functools
import os
import random
import socket
import time
from abc import ABC, abstractmethod
from typing import Any, Callable

from rtudp.shmring.hist import Histogram
from rtudp.workers.mechanisms import MECHANISMS

from .common import (LOOPBACK, MSG_SIZE, Child, Hog, add_common_arguments, bench_pool,
                           drain_child, fmt_ratio, fmt_us, free_udp_port, header, paced_submit,
                           proc_cpu_s, ratio, run_benchmark, say)
from .timing import c_scheduler

ROUNDS = 3
LEAD_NS = 30_000_000                        # first deadline this long after setup
AHEAD_NS = 20_000_000                       # keep this much of the schedule queued
TOPUP_S = 0.002
CAPACITY = 4096
SEND, RECEIVE, DUPLEX = "send", "receive", "duplex"
#: scenario -> (gap between deadlines in ns, seconds a case, hog on the worker's CPU,
#: what the channel does)
SCENARIOS: dict[str, tuple[int, float, bool, str]] = {
    "50kpps": (20_000, 1.0, False, SEND),
    "50kpps+hog": (20_000, 1.0, True, SEND),
    "1000pps": (1_000_000, 2.0, False, SEND),
    "200pps": (5_000_000, 2.0, False, SEND),
    "rx 50kpps": (20_000, 1.0, False, RECEIVE),
    "rx flood+hog": (2_000, 1.0, True, RECEIVE),
    "duplex 50kpps": (20_000, 1.0, False, DUPLEX),
}
#: the cases besides the mechanisms switched off: label -> Pool arguments
TUNABLE_CASES: dict[str, dict[str, Any]] = {
    "all on": {},
    "idle_poll=False": {"idle_poll": False},
    "rx_coalesce_us=0": {"rx_coalesce_us": 0},
    "tx_coalesce_us=0": {"tx_coalesce_us": 0},
    "place_threads=True": {"place_threads": True},
    "idle=spin": {"idle": "spin"},
    "idle=park": {"idle": "park"},
}
FLOOR = "C floor"


def cases(only: list[str] | None) -> dict[str, dict[str, Any] | None]:
    """label -> Pool arguments (None: the C floor), the mechanisms as ``-name``."""
    out: dict[str, dict[str, Any] | None] = dict(TUNABLE_CASES)
    out.update({f"-{m}": {"pacer_off": [m]} for m in MECHANISMS})
    if only:
        unknown = [o for o in only if o not in MECHANISMS and o not in TUNABLE_CASES]
        if unknown:
            raise SystemExit(f"--only: no mechanism or case named {', '.join(unknown)}: "
                             f"pick from {', '.join([*MECHANISMS, *TUNABLE_CASES])}")
        out = {k: v for k, v in out.items()
               if k == "all on" or k in only or k.lstrip("-") in only}
    out[FLOOR] = None
    return out


class Counted(ABC):
    """A receiver that counts what ``drain()`` reads (``drain_child``'s receiver)."""

    count = 0

    @abstractmethod
    def drain(self) -> None:
        """Read what waits, adding it to ``count``."""

    def wait_for(self, n: int, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self.count < n and time.monotonic() < end:
            self.drain()
            time.sleep(0.001)


class Sink(Counted):
    """The receiving socket: read and counted, so that nothing backs up."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((LOOPBACK, 0))
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self.count = 0

    def drain(self) -> None:
        while True:
            try:
                self.sock.recv(2048)
            except BlockingIOError:
                return
            self.count += 1

    def close(self) -> None:
        self.sock.close()


class ChannelReader(Counted):
    """A reader draining a receiving channel, counted."""

    def __init__(self, ch: Any) -> None:
        self.ch = ch
        self.count = 0

    def drain(self) -> None:
        while True:
            got = len(self.ch.recv_batch(1024, timeout=0))
            if not got:
                return
            self.count += got


class CpuMeter:
    """From now on: the pool's CPU and the busy loop's share of its CPU, in CPUs."""

    def __init__(self, pool: Any, hog: Hog) -> None:
        self.pool, self.hog = pool, hog
        self.pool0, self.hog0, self.t0 = _pool_cpu_s(pool), hog.cpu_s(), time.monotonic()

    def read(self) -> tuple[float, float | None]:
        """(the pool's CPU, the hog's share or None) since this meter started."""
        took = time.monotonic() - self.t0
        hog1 = self.hog.cpu_s()
        return ((_pool_cpu_s(self.pool) - self.pool0) / took,
                None if hog1 is None or self.hog0 is None else (hog1 - self.hog0) / took)


def _pool_cpu_s(pool: Any) -> float:
    """CPU seconds the pool's workers and their idle pollers used so far."""
    total = 0.0
    for w in pool.workers():
        total += proc_cpu_s(w["pid"]) + w["idle_poller_cpu_ns"] / 1e9
    return total


def run_pool_case(gap_ns: int, seconds: float, hog: bool, args: dict[str, Any]) -> dict:
    """One run of a pool case: its lateness histogram and the pool's CPU (in CPUs)."""
    n = int(seconds * 1e9 // gap_ns)
    sink = Sink()
    try:
        with bench_pool("mech", **args) as (pool, _warnings):
            ch = pool.open_channel("mech", local=(LOOPBACK, 0), remote=sink.addr, direction=0,
                                   capacity=CAPACITY, max_datagram=MSG_SIZE)
            try:
                cpu = pool.workers()[ch.worker]["cpu"]
                with Hog(cpu if hog else None) as busy:
                    meter = CpuMeter(pool, busy)
                    paced_submit(ch.send, n, sink.drain, gap_ns, AHEAD_NS, LEAD_NS, TOPUP_S)
                    end = time.monotonic() + 2.0 + (LEAD_NS + n * gap_ns) / 1e9
                    while ch.lateness().count < n and time.monotonic() < end:
                        sink.drain()
                        time.sleep(0.002)
                    used, hog_share = meter.read()
                hist = ch.lateness()
            finally:
                ch.close()
    finally:
        sink.close()
    return {"hist": hist, "cpu": used, "hog_cpu": hog_share}


def run_rx_case(gap_ns: int, seconds: float, hog: bool, args: dict[str, Any]) -> dict:
    """One run of a receiving pool case: its receive delay histogram, the pool's CPU, and
    with ``hog`` a busy loop on the worker's CPU and its share of that CPU."""
    n = int(seconds * 1e9 // gap_ns)
    with bench_pool("mech", **args) as (pool, _warnings):
        ch = pool.open_channel("mech", local=(LOOPBACK, 0), direction=1, capacity=CAPACITY,
                               max_datagram=MSG_SIZE)
        try:
            reader = ChannelReader(ch)
            cpu = pool.workers()[ch.worker]["cpu"]
            with Hog(cpu if hog else None) as busy:
                meter = CpuMeter(pool, busy)
                drain_child(reader, n, "bench-mech-rx-sender", c_scheduler, ch.local, n,
                            gap_ns, None)
                used, hog_share = meter.read()
            hist = ch.rx_delay()
            drops = ch.stats()["rx_kernel_drops"]
        finally:
            ch.close()
    return {"hist": hist, "cpu": used, "kernel_drops": drops, "hog_cpu": hog_share}


def run_duplex_case(gap_ns: int, seconds: float, args: dict[str, Any]) -> dict:
    """One run of a full-duplex pool case: timed sends to a C peer that sends back at
    the same rate; the receive delay histogram and the pool's CPU."""
    n = int(seconds * 1e9 // gap_ns)
    peer = (LOOPBACK, free_udp_port())
    with bench_pool("mech", **args) as (pool, _warnings):
        ch = pool.open_channel("mech", local=(LOOPBACK, 0), remote=peer, direction=2,
                               capacity=CAPACITY, max_datagram=MSG_SIZE)
        try:
            reader = ChannelReader(ch)
            meter = CpuMeter(pool, Hog(None))
            child = Child("bench-mech-duplex-peer", functools.partial(c_scheduler, bind=peer),
                          ch.local, n, gap_ns, None)
            try:
                child.ready()
                paced_submit(ch.send, n, reader.drain, gap_ns, AHEAD_NS, LEAD_NS, TOPUP_S)
                child.result(idle=reader.drain)
                end = time.monotonic() + 2.0
                while (reader.count < n or ch.lateness().count < n) and time.monotonic() < end:
                    reader.drain()
                    time.sleep(0.002)
            finally:
                child.stop()
            used, _ = meter.read()
            hist = ch.rx_delay()
            drops = ch.stats()["rx_kernel_drops"]
        finally:
            ch.close()
    return {"hist": hist, "cpu": used, "kernel_drops": drops}


def run_floor_case(gap_ns: int, seconds: float, hog: bool) -> dict:
    """One run of the C floor, beside a hog on its CPU when ``hog``."""
    n = int(seconds * 1e9 // gap_ns)
    cpu = min(os.sched_getaffinity(0)) if hog else None
    sink = Sink()
    try:
        with Hog(cpu):
            result, _ = drain_child(sink, n, "bench-mech-floor", c_scheduler, sink.addr, n,
                                    gap_ns, cpu)
    finally:
        sink.close()
    return {"hist": Histogram.snapshot(result["hist"]), "cpu": None}


def figures(hist: Histogram) -> dict:
    """A lateness histogram's figures in µs."""
    pct = hist.percentiles((50, 99, 99.9))

    def us(v: float | None) -> float | None:
        return None if v is None else v / 1e3

    return {"count": hist.count, "p50_us": us(pct[50]), "p99_us": us(pct[99]),
            "p999_us": us(pct[99.9]), "max_us": us(hist.max_ns),
            "early_pct": 100 * hist.negative / hist.count if hist.count else None}


def merge(runs: list[dict]) -> dict:
    """A case's figures over its runs, with its rounds' p99s and mean CPU."""
    total = Histogram()
    for r in runs:
        total = total + r["hist"]
    p99s = [figures(r["hist"])["p99_us"] for r in runs]
    cpus = [r["cpu"] for r in runs if r["cpu"] is not None]
    hogs = [r["hog_cpu"] for r in runs if r.get("hog_cpu") is not None]
    return {**figures(total), "round_p99_us": p99s,
            "cpu": sum(cpus) / len(cpus) if cpus else None,
            "hog_cpu": sum(hogs) / len(hogs) if hogs else None,
            "kernel_drops": sum(r.get("kernel_drops", 0) for r in runs)}


def shuffled_rounds(rounds: int, scenarios: list[str], case_names: list[str], seed: int,
                    run_one: Callable[[str, str], dict | None], quiet: bool
                    ) -> tuple[dict[str, dict[str, list[dict]]], dict[str, str]]:
    """``run_one(scenario, case)`` for every pair, ``rounds`` times, in an order shuffled
    per round (seeded) so that each case meets the same spells of host noise: (the runs
    by scenario and case, ``"scenario / case"`` -> why it failed).  A case that fails is
    not run again; one that returns None has no run in that scenario."""
    rng = random.Random(seed)
    got: dict[str, dict[str, list[dict]]] = {s: {c: [] for c in case_names} for s in scenarios}
    failed: dict[str, str] = {}
    for i in range(rounds):
        order = [(s, c) for s in scenarios for c in case_names]
        rng.shuffle(order)
        for s, c in order:
            key = f"{s} / {c}"
            if key in failed:
                continue
            try:
                run = run_one(s, c)
            except Exception as exc:  # noqa: BLE001 - report the case failed and go on
                first = (str(exc).splitlines() or [repr(exc)])[0]
                failed[key] = f"failed in round {i + 1}: {first}"
                say(f"{key}: {exc}", quiet)
                continue
            if run is None:
                continue
            got[s][c].append(run)
            say(f"  ... round {i + 1}/{rounds} {key}: p99 "
                f"{fmt_us(figures(run['hist'])['p99_us'], 0)} µs", quiet)
    return got, failed


def benchmark(quick: bool, quiet: bool, rounds: int, only: list[str] | None,
              scenarios: list[str], seed: int) -> dict:
    """Every case of every scenario, ``rounds`` times interleaved (``quick``: once)."""
    rounds = 1 if quick else rounds
    table = cases(only)
    busy = header("mechanisms", quick, quiet, f", {len(table)} cases x {len(scenarios)} "
                  f"scenarios in {rounds} round(s), shuffled (seed {seed})")
    def run_one(s: str, c: str) -> dict | None:
        gap, seconds, hog, mode = SCENARIOS[s]
        args = table[c]
        if args is None:
            return run_floor_case(gap, seconds, hog) if mode == SEND else None
        if mode == RECEIVE:
            return run_rx_case(gap, seconds, hog, args)
        if mode == DUPLEX:
            return run_duplex_case(gap, seconds, args)
        return run_pool_case(gap, seconds, hog, args)

    got, failed = shuffled_rounds(rounds, scenarios, list(table), seed, run_one, quiet)
    results = {s: {c: merge(runs) for c, runs in by_case.items() if runs}
               for s, by_case in got.items()}
    return {"quick": quick, "rounds": rounds, "seed": seed, "cpu_busy_before": busy,
            "scenarios": {s: {"gap_us": SCENARIOS[s][0] / 1e3, "seconds": SCENARIOS[s][1],
                              "hog": SCENARIOS[s][2], "receives": SCENARIOS[s][3] != SEND,
                              "mode": SCENARIOS[s][3]}
                          for s in scenarios},
            "cases": list(table), "results": results, "failed": failed,
            "mechanisms": MECHANISMS}


def print_report(report: dict) -> None:
    """One table per scenario: each case's p50 / p99 / p99.9 / max, its rounds' worst and
    best p99, its CPU, its p99 and CPU against ``all on``, and beside a hog, the hog's
    share of its CPU (what the worker left to others)."""
    for s, meta in report["scenarios"].items():
        res = report["results"].get(s, {})
        base = res.get("all on", {})
        print(f"\n{s}: a datagram every {meta['gap_us']:g} µs, {meta['seconds']:g} s a case"
              f"{', a busy loop on the CPU' if meta['hog'] else ''}"
              f"{', received: receive delay' if meta.get('receives') else ''} "
              f"({report['rounds']} rounds)")
        print(f"  {'case':<22} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8} "
              f"{'p99 rounds':>19} {'CPU':>6} {'p99/on':>7} {'CPU/on':>7}"
              f"{'  hog' if meta['hog'] else ''}")
        for c in report["cases"]:
            e = res.get(c)
            if not e:
                if meta.get("receives") and c == FLOOR:
                    continue
                print(f"  {c:<22} {report['failed'].get(f'{s} / {c}', 'no run')}")
                continue
            rp = [p for p in e["round_p99_us"] if p is not None]
            rounds = f"{fmt_us(max(rp), 0)}..{fmt_us(min(rp), 0)}" if rp else "-"
            cpu = f"{e['cpu']:6.3f}" if e["cpu"] is not None else f"{'-':>6}"
            print(f"  {c:<22} {fmt_us(e['p50_us'])} {fmt_us(e['p99_us'])} "
                  f"{fmt_us(e['p999_us'])} {fmt_us(e['max_us'])} {rounds:>19} {cpu} "
                  f"{fmt_ratio(ratio(e['p99_us'], base.get('p99_us'))):>7} "
                  f"{fmt_ratio(ratio(e['cpu'], base.get('cpu'))):>7}"
                  + (f" {e['hog_cpu']:5.3f}" if e.get("hog_cpu") is not None else "")
                  + (f"  early {e['early_pct']:.1f} %" if e.get("early_pct") else ""))
    print("\nlateness in µs (kernel TX stamp - deadline; the C floor: clock after send; "
          "received: the worker's publish - kernel RX stamp); "
          "p99 rounds: worst..best; CPU: the pool's workers and idle pollers, in CPUs; "
          "hog: what the busy loop got of its CPU; early: sent before the deadline, with "
          "a group (tx_coalesce_us), counted as 0 lateness in the percentiles; "
          "-name: that mechanism off (rtudp-worker --help says what each does)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench mechanisms``."""
    add_common_arguments(parser, f"one round instead of {ROUNDS}")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds (default %(default)s)")
    parser.add_argument("--only", type=lambda v: [x for x in v.split(",") if x], default=None,
                        metavar="NAME,...", help="these mechanisms or cases only (with 'all on' "
                        "and the C floor)")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), default=None,
                        help="run this scenario (repeat for more; default: all)")
    parser.add_argument("--seed", type=int, default=1, help="the shuffle's seed")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench mechanisms``: 0 when every case ran."""
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be 1 or more, got {args.rounds}")
    scenarios = args.scenario or list(SCENARIOS)
    return run_benchmark(args, lambda quick, quiet: benchmark(
        quick, quiet, args.rounds, args.only, scenarios, args.seed), print_report)
