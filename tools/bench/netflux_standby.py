"""``rtudp bench netflux-standby``: what the netflux standby worker buys, and its order.

A netflux channel sends at 1 ms to a plain UDP socket on 127.0.0.1, which reads every
packet's sequence byte.  Four cases, interleaved round by round so that each meets the
same host:

* standby on / off (the channel option ``standby``; on is the default with two CPUs);
* quiet / stalled: in the stalled cases a thread stops the channel's serving worker
  (SIGSTOP) for 1-20 ms at random moments, 50-300 ms apart, as a host stops a vCPU.

Figures per case, from the wire alone:

* cycles missed per 10,000: cycles due in the run that no packet was sent for
  (due - received; loopback loses nothing at this rate);
* sequence faults: consecutive packets whose sequence byte did not advance by exactly
  one (a repeat, a step back, a gap), the promise of ``docs/guarantees.md``;
* the standby's sends and the cycles the channel counts as sent by neither worker
  (its counters ``nf_standby_sent``, ``nf_missed``).

Nothing is asserted: this is what decides whether the standby stays (it stays while
it saves cycles without a sequence fault).
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import threading
import time
from typing import Any

from .common import add_common_arguments, bench_pool, header, run_benchmark, say

INTERVAL_NS = 1_000_000
IMAGE_SIZE = 20
LEAD_NS = 50_000_000
FULL_ROUNDS, QUICK_ROUNDS = 5, 1
ROUND_S, QUICK_ROUND_S = 4.0, 2.0
STALL_MS = (1.0, 20.0)
GAP_MS = (50.0, 300.0)
SEED = 41
CASES = {
    "standby_quiet": (True, False),
    "no_standby_quiet": (False, False),
    "standby_stalled": (True, True),
    "no_standby_stalled": (False, True),
}


class SeqReceiver:
    """A plain socket that keeps the sequence byte of every packet, in arrival order."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.addr = self.sock.getsockname()
        self.seqs: list[int] = []

    def collect_until(self, end: float) -> None:
        while time.monotonic() < end:
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            if data:
                self.seqs.append(data[0])

    def close(self) -> None:
        self.sock.close()


def sequence_faults(seqs: list[int]) -> dict[str, int]:
    """Steps between consecutive sequence bytes other than +1: repeats, steps back
    (``(b - a) & 0xFF`` >= 128), gaps, and the sequence numbers the gaps skipped."""
    out = {"repeats": 0, "back": 0, "gaps": 0, "skipped": 0}
    for a, b in zip(seqs, seqs[1:]):
        d = (b - a) & 0xFF
        if d == 0:
            out["repeats"] += 1
        elif d >= 128:
            out["back"] += 1
        elif d > 1:
            out["gaps"] += 1
            out["skipped"] += d - 1
    return out


class Staller(threading.Thread):
    """Stops the process `pid_fn()` names for STALL_MS at random moments."""

    def __init__(self, pid_fn: Any, rnd: random.Random) -> None:
        super().__init__(daemon=True)
        self.pid_fn, self.rnd = pid_fn, rnd
        self.halt = threading.Event()
        self.stalls = 0
        self.stalled_ms = 0.0

    def run(self) -> None:
        while not self.halt.wait(self.rnd.uniform(*GAP_MS) / 1e3):
            pid, ms = self.pid_fn(), self.rnd.uniform(*STALL_MS)
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(ms / 1e3)
            finally:
                os.kill(pid, signal.SIGCONT)
            self.stalls += 1
            self.stalled_ms += ms


def run_case(standby: bool, stalled: bool, seconds: float, rnd: random.Random) -> dict:
    rx = SeqReceiver()
    try:
        with bench_pool("nfsb") as (pool, _warns):
            if len(pool.cpus) < 2:
                raise RuntimeError("one CPU: no standby worker can be placed")
            start = time.monotonic_ns() + LEAD_NS
            ch = pool.open_channel(
                "nf", local=("127.0.0.1", 0), remote=rx.addr, kind="netflux",
                cpu=pool.cpus[0], max_datagram=2 + IMAGE_SIZE,
                options={"send_interval": INTERVAL_NS / 1e9, "watch_interval": 1.0,
                         "send_size": IMAGE_SIZE, "recv_size": IMAGE_SIZE,
                         "start_ns": start, "standby": standby})
            serving = next(w["pid"] for w in pool.workers() if w["cpu"] == pool.cpus[0])
            staller = Staller(lambda: serving, rnd)
            with ch:
                if stalled:
                    staller.start()
                end_ns = start + int(seconds * 1e9)
                try:
                    rx.collect_until(time.monotonic() + (end_ns - time.monotonic_ns()) / 1e9)
                finally:
                    staller.halt.set()
                    if staller.is_alive():
                        staller.join()
                pool.pause_channel("nf")  # its counters stand still from here
                s = ch.stats()
                rx.collect_until(time.monotonic() + 0.1)
        sent = s["nf_sent"] + s["nf_standby_sent"]
        # the cycles counted: each one the claim word passed, sent by either worker or
        # by nobody (the pause counts them)
        due = s["nf_cycle"]
        received = len(rx.seqs)
        return {"due": due, "received": received, "missed": max(0, due - received),
                "sent": sent,
                **sequence_faults(rx.seqs), "standby_sent": s["nf_standby_sent"],
                "nf_missed": s["nf_missed"], "claim_breaks": s.get("nf_claim_breaks", 0),
                "stalls": staller.stalls, "stalled_ms": staller.stalled_ms}
    finally:
        rx.close()


def benchmark(quick: bool, quiet: bool) -> dict:
    rounds = QUICK_ROUNDS if quick else FULL_ROUNDS
    round_s = QUICK_ROUND_S if quick else ROUND_S
    header("netflux-standby", quick, quiet, f", {rounds} round(s) of {round_s:g} s a case, "
           f"1 ms cycles, stalls of {STALL_MS[0]:g}-{STALL_MS[1]:g} ms")
    rnd = random.Random(SEED)
    totals: dict[str, dict[str, float]] = {c: {} for c in CASES}
    by_round: dict[str, list[int]] = {c: [] for c in CASES}
    failed: dict[str, str] = {}
    for r in range(rounds):
        for case, (standby, stalled) in CASES.items():
            say(f"  round {r + 1} of {rounds}: {case} ...", quiet)
            try:
                got = run_case(standby, stalled, round_s, rnd)
            except (RuntimeError, OSError) as exc:
                failed[case] = str(exc)
                continue
            for k, v in got.items():
                totals[case][k] = totals[case].get(k, 0) + v
            by_round[case].append(got["missed"])
    results = {}
    for case, t in totals.items():
        if not t:
            continue
        per = 10_000 * t["missed"] / t["due"] if t["due"] else None
        results[case] = {**t, "missed_per_10k": per, "missed_by_round": by_round[case]}
    return {"benchmark": "netflux-standby", "quick": quick, "rounds": rounds,
            "round_s": round_s, "results": results, "failed": failed}


def print_report(r: dict) -> None:
    print(f"\n1 ms cycles, {r['rounds']} round(s) of {r['round_s']:g} s a case "
          "(sequence faults: repeats / steps back / gaps on the wire)")
    cols = ("case", "due", "missed", "/10k", "faults", "standby", "stalls", "by round")
    print(f"  {cols[0]:<20}{cols[1]:>8}{cols[2]:>8}{cols[3]:>8}{cols[4]:>12}{cols[5]:>9}"
          f"{cols[6]:>8}  {cols[7]}")
    for case, e in r["results"].items():
        faults = f"{e['repeats']:.0f}/{e['back']:.0f}/{e['gaps']:.0f}"
        print(f"  {case:<20}{e['due']:>8.0f}{e['missed']:>8.0f}{e['missed_per_10k']:>8.1f}"
              f"{faults:>12}{e['standby_sent']:>9.0f}{e['stalls']:>8.0f}  "
              + " ".join(str(m) for m in e["missed_by_round"]))
    for case, why in r["failed"].items():
        print(f"  {case:<20}{why}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench netflux-standby``."""
    add_common_arguments(parser, f"{QUICK_ROUNDS} round of {QUICK_ROUND_S:g} s a case "
                                 f"instead of {FULL_ROUNDS} of {ROUND_S:g} s")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench netflux-standby``: 0 when every case ran."""
    return run_benchmark(args, benchmark, print_report,
                         failed=lambda rep: bool(rep["failed"]))
