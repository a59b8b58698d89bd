"""``rtudp bench netflux``: how exactly a Netflux cycle keeps its schedule, rtudp vs Python.

For a send interval of 1 ms and of 5 ms, each case sends Netflux packets (sequence,
feedback, a 20-byte image) for 10 s (--quick: 2 s) to a plain UDP socket on
127.0.0.1 that takes the kernel's receive timestamp of each (SO_TIMESTAMPNS).
A full run goes in five rounds of 2 s a case; each round runs every case once, one
after the other.  This VM's host has spells (tens of ms) in which every vCPU that
halts wakes 0.3-0.9 ms late: interleaved, every case meets the same spells, and the
by-round lines show how much of a figure is the machine's (measured: 10 s cases one
after the other, rtudp missed 17 cycles at 1 ms in a run whose C loops missed none;
interleaved over 5 rounds of 10 s, rtudp 16 in all, the parking C loop 23, the
spinning one 2).  Cases:

1. rtudp: a netflux worker channel (embedded pool, SCHED_FIFO when permitted); the
   worker's TX thread sends packet n at start + n x interval, and with more than one
   CPU a standby worker sends a cycle the serving one is 100 µs late for (the
   channel's default: workers/netflux_kind.py).
2. python sleep (reference style): its own process, ``sendto`` then
   ``time.sleep(interval)``, as the Python reference implementation does.
3. python deadline sleep: its own process, ``time.sleep`` until start + n x interval,
   then ``sendto`` (the best a sleeping Python loop can do).
4. C park + spin: its own process, SCHED_FIFO when permitted (as the workers),
   ``clock_nanosleep`` until 200 µs (C_PARK_SPIN_NS) before each slot, spin, ``send``
   (``rtudp_bench_park_send``): the floor of a program that leaves its CPU idle
   between cycles, as the worker does.
5. C spin (the machine's floor): the same without the sleeps, spinning on the clock
   all the time at SCHED_OTHER (``rtudp_bench_spin_send``): what is left is the host's.

From the receive stamps alone: packet k's schedule slot n_k (rtudp: the nearest slot,
so a cycle the worker skipped shows as a missing slot; the other senders never skip:
n_k = k), its offset t_k - n_k x interval, and

* deviation: offset - the median offset (the constant loopback delay drops out), as
  |deviation| p50 / p99 / max;
* drift: the median offset of the last 10 % of packets - that of the first 10 % (µs
  behind schedule at the end), and sent / due (packets sent of those due in the run);
* gaps (cycles missed): slots of the schedule's phase that no packet arrived nearest
  to, for every sender alike: a cycle skipped, or one sent so late (half an interval)
  that it and the next share a slot.

Pooled over the rounds: the percentiles over every round's packets, the gaps summed,
the drift of the round that drifted most.

Target (issue 7): rtudp p99 |deviation| <= 20 µs, zero drift (<= 20 µs after the
run) and no cycle missed (no slot without a packet), reported PASS/MISS, never
asserted; next to it, rtudp's p99 over each C loop's in the same run: whether the
machine lets any sleeping sender (or any sender) meet it.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from typing import Any, Callable

from rtudp.shmring.hist import Histogram
from rtudp.workers.supervisor import DEFAULT_SPIN_BUDGET

from .common import (LOOPBACK, Child, OthersMeter, pool_idle_s, add_common_arguments,
                           add_plot_argument, add_spin_budget_argument, bench_pool, fmt_ratio,
                           fmt_us, header, others_col, others_footer, percentiles_us,
                           policy_line, ratio, run_benchmark, say, take_curves, target,
                           target_row, worker_policies)
from .timing import _STAMP, SO_TIMESTAMPNS, Receiver
from ..why_late import host_pauses_counted

INTERVALS_MS = (1, 5)
FULL_S, QUICK_S = 10.0, 2.0
ROUND_S = 2.0                   # one case's run in a round: a full run has 5 rounds
IMAGE_SIZE = 20
LEAD_NS = 50_000_000            # the schedule starts this long after setup
TARGET_P99_US = 20.0
TARGET_DRIFT_US = 20.0

C_PARK_SPIN_NS = 200_000        # the parking C loop spins this long before each slot
C_PARK_PRIORITY = 50            # ... at SCHED_FIFO, as the workers (bench_pool's default)
CASES = {
    "ours": "rtudp netflux channel (worker TX thread, absolute schedule)",
    "py_sleep": "python sendto + time.sleep(interval) (the reference's loop)",
    "py_deadline": "python time.sleep to start + n x interval, then sendto",
    "c_park": f"C sleep to {C_PARK_SPIN_NS // 1000} µs before each slot, spin, send "
              "(SCHED_FIFO)",
    "c_spin": "C spin on the clock to each slot, send (the machine's floor)",
}


class StampReceiver(Receiver):
    """bench timing's receiving socket (kernel RX stamps), keeping each packet's stamp
    as CLOCK_MONOTONIC ns (whatever the payload)."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[int] = []

    def drain(self) -> None:
        space = socket.CMSG_SPACE(_STAMP.size)
        offset = self._offset()
        try:
            while True:
                _data, anc, _flags, _addr = self.sock.recvmsg(2048, space)
                for level, kind, raw in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = _STAMP.unpack_from(raw)
                        self.stamps.append(sec * 1_000_000_000 + nsec - offset)
                        break
                else:
                    self.unstamped += 1
        except BlockingIOError:
            pass

    def collect(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        """Drain for `seconds` (or until `until()`), then once more after a short pause."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until is not None and until()):
            self.drain()
            time.sleep(0.005)
        time.sleep(0.05)
        self.drain()


def _wrapped(offset_ns: int, interval_ns: int) -> int:
    """offset_ns from its nearest multiple of interval_ns, in [-interval/2, interval/2)."""
    return (offset_ns + interval_ns // 2) % interval_ns - interval_ns // 2


def schedule_figures(stamps: list[int], interval_ns: int, nearest_slot: bool,
                     due: int) -> dict[str, Any]:
    """Deviation and drift of arrival stamps from a cyclic schedule (see the module doc);
    ``dev_ns`` holds every packet's |deviation| for :func:`pool_rounds`."""
    if len(stamps) < 10:
        return {"received": len(stamps), "due": due, "error": "too few packets"}
    t0 = stamps[0]
    # the schedule's phase: the median of every stamp's offset from its nearest slot as
    # seen from the first (a first packet late by half an interval would otherwise put
    # every punctual one in the slot before its own)
    phase = int(statistics.median(_wrapped(t - t0, interval_ns) for t in stamps))
    nearest = [round((t - t0 - phase) / interval_ns) for t in stamps]
    if nearest_slot:  # only the run's `due` slots (the channel runs on until closed)
        t0 += phase
        kept = [(t, n) for t, n in zip(stamps, nearest) if n < due]
        stamps, nearest = [t for t, _ in kept], [n for _, n in kept]
    slots = nearest if nearest_slot else list(range(len(stamps)))
    offsets = [t - t0 - n * interval_ns for t, n in zip(stamps, slots)]
    med = statistics.median(offsets)
    dev = [abs(o - med) for o in offsets]
    tenth = max(1, len(offsets) // 10)
    drift_ns = statistics.median(offsets[-tenth:]) - statistics.median(offsets[:tenth])
    whole = [int(d) for d in dev]
    out: dict[str, Any] = {f"dev_{k}": v for k, v in percentiles_us(whole).items()}
    out["dev_ns"] = whole  # for pool_rounds (which takes it out)
    # slots no packet arrived nearest to, the same yardstick for every sender: a skipped
    # cycle, or one sent so late that it and the next share a slot
    missing = max(nearest) - min(nearest) + 1 - len(set(nearest))
    out.update(received=len(stamps), due=due, slots_missing=missing,
               drift_us=drift_ns / 1e3, sent_ratio=len(stamps) / due if due else None)
    return out


#: per-case figures of a round that pool_rounds sums, and those it takes the worst of
SUMMED = ("missed_cycles", "standby_sent", "host_pauses", "host_pause_ms", "sent")
WORST = ("others_cpu", "worker_lateness_p99_us")


def pool_rounds(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One case's figures over its rounds (each from :func:`schedule_figures` plus the
    case's own): percentiles over every round's deviations, counts summed, the drift of
    the round that drifted most, the worst of :data:`WORST`; ``by_round`` keeps each
    round's p99 and gaps.  A round without figures (too few packets) makes the whole
    case that round's error."""
    bad = next((p for p in parts if "error" in p), None)
    if bad is not None:
        return {k: v for k, v in bad.items() if k != "dev_ns"}
    devs = [d for p in parts for d in p["dev_ns"]]
    out: dict[str, Any] = {**parts[-1]}  # policies and the like: the last round's
    del out["dev_ns"]
    out.update({f"dev_{k}": v for k, v in percentiles_us(devs).items()})
    out["hist"] = Histogram.from_values(devs)  # for --plot
    received, due = sum(p["received"] for p in parts), sum(p["due"] for p in parts)
    out.update(received=received, due=due, sent_ratio=received / due if due else None,
               slots_missing=sum(p["slots_missing"] for p in parts),
               drift_us=max((p["drift_us"] for p in parts), key=abs),
               by_round=[{"dev_p99": p["dev_p99"], "slots_missing": p["slots_missing"]}
                         for p in parts])
    for key in SUMMED:
        if key in out:
            out[key] = sum(p.get(key) or 0 for p in parts)
    for key in WORST:
        if key in out:
            got = [p[key] for p in parts if p.get(key) is not None]
            out[key] = max(got) if got else None
    if "pool_warnings" in out:  # each warning once
        out["pool_warnings"] = list(dict.fromkeys(
            w for p in parts for w in p.get("pool_warnings", [])))
    return out


# ------------------------------------------------------------ the cases

def run_ours(interval_ns: int, seconds: float, spin_budget: float) -> dict[str, Any]:
    rx = StampReceiver()
    try:
        with bench_pool("nf", spin_budget=spin_budget) as (pool, warns):
            start = time.monotonic_ns() + LEAD_NS
            ch = pool.open_channel(
                "nf", local=(LOOPBACK, 0), remote=rx.addr, kind="netflux",
                max_datagram=2 + IMAGE_SIZE,
                options={"send_interval": interval_ns / 1e9, "watch_interval": 1.0,
                         "send_size": IMAGE_SIZE, "recv_size": IMAGE_SIZE, "start_ns": start})
            meter = OthersMeter(lambda: [w["pid"] for w in pool.workers()], pool_idle_s(pool))
            before = pool.workers()
            with ch:
                ch.write(bytes(range(IMAGE_SIZE)))
                due = int(seconds * 1e9 // interval_ns)
                rx.collect(LEAD_NS / 1e9 + seconds + 1.0,
                           until=lambda: ch.stats()["nf_cycle"] >= due)
                s = ch.stats()
            others = meter.others()
            policies = worker_policies(pool)
            after = pool.workers()
        out = schedule_figures(rx.stamps, interval_ns, True, due)
        out.update(missed_cycles=s["nf_missed"], standby_sent=s["nf_standby_sent"],
                   worker_lateness_p99_us=(
            (s["tx_lateness_p99_ns"] or 0) / 1e3), others_cpu=others, policies=policies,
            pool_warnings=warns, host_pauses=_grown(before, after, "host_pauses"),
            host_pause_ms=_grown(before, after, "host_pause_ns") / 1e6)
        return out
    finally:
        rx.close()


def _grown(before: list[dict[str, Any]], after: list[dict[str, Any]], key: str) -> int:
    """How much the workers' counter ``key`` grew, all workers together."""
    return sum(int(w[key]) for w in after) - sum(int(w[key]) for w in before)


def py_sender(addr: tuple[str, int], interval_ns: int, due: int, deadline: bool,
              ready: Callable[..., None]) -> dict[str, Any]:
    """A Python Netflux sender (child process): sequence byte, feedback 0, the image."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    image = bytes(range(IMAGE_SIZE))
    ready()
    start = time.monotonic_ns() + LEAD_NS
    time.sleep(LEAD_NS / 1e9)
    end = start + due * interval_ns
    sent = 0
    seq = 0
    while True:
        now = time.monotonic_ns()
        if now >= end:
            break
        if deadline:
            at = start + sent * interval_ns
            if at >= end:
                break
            if at > now:
                time.sleep((at - now) / 1e9)
        seq = (seq + 1) & 0xFF
        sock.sendto(bytes([seq, 0]) + image, addr)
        sent += 1
        if not deadline:
            time.sleep(interval_ns / 1e9)
    sock.close()
    return {"sent": sent}


def c_sender(addr: tuple[str, int], interval_ns: int, due: int, park: bool,
             ready: Callable[..., None]) -> dict[str, Any]:
    """A C sender (child process) of `due` Netflux-sized datagrams, one a slot: parking
    at SCHED_FIFO between them (`park`, when permitted), else spinning throughout."""
    from rtudp.tools.bench._native import ffi, lib

    policy = "SCHED_OTHER"
    if park:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(C_PARK_PRIORITY))
            policy = f"SCHED_FIFO {C_PARK_PRIORITY}"
        except PermissionError:
            pass  # as a worker without the permission: it parks at SCHED_OTHER
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect(addr)
        late = ffi.new("int64_t[]", due)
        ready()
        start = time.monotonic_ns() + LEAD_NS
        if park:
            rc = lib.rtudp_bench_park_send(sock.fileno(), due, 2 + IMAGE_SIZE, start,
                                           interval_ns, C_PARK_SPIN_NS, late)
        else:
            rc = lib.rtudp_bench_spin_send(sock.fileno(), due, 2 + IMAGE_SIZE, start,
                                           interval_ns, late)
        if rc < 0:
            raise OSError(-rc, f"the C sender: {os.strerror(-rc)}")
        return {"sent": int(rc), "policy": policy}
    finally:
        sock.close()


#: each peer case's sender (a child process) and its flag (deadline / park)
PEERS: dict[str, tuple[Callable[..., dict[str, Any]], bool]] = {
    "py_sleep": (py_sender, False), "py_deadline": (py_sender, True),
    "c_park": (c_sender, True), "c_spin": (c_sender, False)}


def run_peer(interval_ns: int, seconds: float, sender: str) -> dict[str, Any]:
    """One peer case: `sender` one of PEERS."""
    rx = StampReceiver()
    try:
        due = int(seconds * 1e9 // interval_ns)
        meter = OthersMeter()
        fn, flag = PEERS[sender]
        child = Child(f"bench-netflux-{sender}", fn, rx.addr, interval_ns, due, flag)
        try:
            child.ready()
            result = child.result(idle=rx.drain)
            rx.collect(0.1)
        finally:
            child.stop()
        others = meter.others()
        out = schedule_figures(rx.stamps, interval_ns, False, due)
        out.update(sent=result["sent"], others_cpu=others)
        if "policy" in result:
            out["policy"] = result["policy"]
        return out
    finally:
        rx.close()


# ------------------------------------------------------------ report

def benchmark(quick: bool, quiet: bool, spin_budget: float = DEFAULT_SPIN_BUDGET) -> dict:
    seconds = QUICK_S if quick else FULL_S
    rounds = max(1, round(seconds / ROUND_S))
    busy = header("netflux", quick, quiet,
                  f", {seconds:g} s a case in {rounds} round{'s' * (rounds > 1)}, worker "
                  f"spin budget {spin_budget:g}")
    results: dict[str, dict[str, dict | None]] = {}
    failed: dict[str, str] = {}
    each = seconds / rounds
    for ms in INTERVALS_MS:
        iv = ms * 1_000_000
        runs: dict[str, Callable[[], dict]] = {
            "ours": lambda: run_ours(iv, each, spin_budget),
            **{peer: (lambda peer=peer: run_peer(iv, each, peer)) for peer in PEERS},
        }
        parts: dict[str, list[dict]] = {case: [] for case in runs}
        for r in range(rounds):
            for case, fn in runs.items():
                if f"{ms}ms/{case}" in failed:
                    continue  # it failed in an earlier round
                say(f"  {ms} ms, round {r + 1} of {rounds}: {CASES[case]} ...", quiet)
                try:
                    parts[case].append(fn())
                except (RuntimeError, OSError) as exc:
                    failed[f"{ms}ms/{case}"] = str(exc)
        row: dict[str, dict | None] = dict.fromkeys(CASES)
        for case, got in parts.items():
            if got and f"{ms}ms/{case}" not in failed:
                row[case] = pool_rounds(got)
        results[f"{ms}ms"] = row
    curves = take_curves(results)
    targets = {}
    for key, row in results.items():
        ours = row["ours"] or {}
        targets[f"{key} p99 |deviation| (µs)"] = target(ours.get("dev_p99"), TARGET_P99_US,
                                                       False)
        d = ours.get("drift_us")
        targets[f"{key} drift after the run (µs)"] = target(None if d is None else abs(d),
                                                           TARGET_DRIFT_US, False)
        # slots the receiver saw no packet in (the worker's skipped cycles among them)
        targets[f"{key} cycles missed"] = target(ours.get("slots_missing"), 0, False)
    # rtudp's p99 over each C loop's, same interval, same run (None: a case missing)
    vs_c = {key: {c: ratio((row["ours"] or {}).get("dev_p99"), (row[c] or {}).get("dev_p99"))
                  for c in ("c_park", "c_spin")} for key, row in results.items()}
    return {"benchmark": "netflux", "quick": quick, "seconds": seconds, "rounds": rounds,
            "busy_before": busy,
            "spin_budget": spin_budget, "vs_c": vs_c,
            "results": results, "failed": failed, "targets": targets, "curves": curves}


def print_report(r: dict) -> None:
    cols = ("case", "sent/due", "p50 µs", "p99 µs", "max µs", "drift µs", "gaps", "others")
    for key, row in r["results"].items():
        print(f"\nsend interval {key}: |deviation| of each arrival from its schedule slot "
              f"(kernel RX stamps), drift at the end")
        print("  " + f"{cols[0]:<16}" + "".join(f"{c:>10}" for c in cols[1:]))
        for case, e in row.items():
            if e is None or "error" in e:
                why = r["failed"].get(f"{key}/{case}") or (e or {}).get("error", "did not run")
                print(f"  {case:<16} {why}")
                continue
            print(f"  {case:<16}{e['sent_ratio']:>10.1%}{fmt_us(e['dev_p50'], 10)}"
                  f"{fmt_us(e['dev_p99'], 10)}{fmt_us(e['dev_max'], 10)}"
                  f"{e['drift_us']:>10.1f}{e['slots_missing']:>10}  {others_col(e)}")
        if r.get("rounds", 1) > 1:
            print(f"  p99 µs / gaps by round ({r['seconds'] / r['rounds']:g} s a case, every "
                  "case in turn): the spread is the host's, which every case meets")
            for case, e in row.items():
                if e and e.get("by_round"):
                    print(f"  {case:<16}" + "".join(
                        f"{fmt_us(b['dev_p99'], 9)} /{b['slots_missing']:>2}"
                        for b in e["by_round"]))
        ours, peer = row.get("ours") or {}, row.get("py_sleep") or {}
        deadline = row.get("py_deadline") or {}
        print(f"  p99 ratio: python sleep / rtudp "
              f"{fmt_ratio(ratio(peer.get('dev_p99'), ours.get('dev_p99')))}, python deadline "
              f"/ rtudp {fmt_ratio(ratio(deadline.get('dev_p99'), ours.get('dev_p99')))}")
        floors = r.get("vs_c", {}).get(key, {})
        print(f"  p99 ratio: rtudp / C park + spin {fmt_ratio(floors.get('c_park'))}, "
              f"rtudp / C spin (the machine's floor) {fmt_ratio(floors.get('c_spin'))}"
              + (f"; the C park loop ran at {row['c_park']['policy']}"
                 if (row.get("c_park") or {}).get("policy") else ""))
        if ours:
            print(f"  rtudp: {ours.get('missed_cycles', 0)} cycles skipped by the worker, "
                  f"{ours.get('standby_sent', 0)} sent by its standby, worker's own departure "
                  f"lateness p99 {ours['worker_lateness_p99_us']:.1f} µs; "
                  f"{policy_line(ours.get('policies', []))}")
            if ours.get("host_pauses"):
                counted = host_pauses_counted(ours["host_pauses"], ours["host_pause_ms"])
                print(f"  the host stopped the workers' vCPUs {counted}: cycles due then "
                      f"left that late")
            for w in ours.get("pool_warnings", []):
                print(f"  note: {w}")
    others_footer([e for row in r["results"].values() for e in row.values()])
    print("\ntargets (issue 7):")
    for label, t in r["targets"].items():
        if label.endswith("(µs)"):
            print(target_row(label, t, "<=", " µs", lambda v: f"{v:.1f}"))
        else:
            print(target_row(label, t, "<=", "", lambda v: f"{v:g}"))


def plot_report(r: dict, curves: dict, path: str) -> None:
    """--plot: each interval's |deviation| CDFs of every case, the p99 target marked."""
    from ..plot import Curve, Panel, Target, plot_cdfs

    labels = {"ours": "rtudp netflux channel", "py_sleep": "python sendto + sleep(interval)",
              "py_deadline": "python sleep to each deadline",
              "c_park": f"C park, spin {C_PARK_SPIN_NS // 1000} µs, send",
              "c_spin": "C spin, send (floor)"}
    panels = []
    for key, row in r["results"].items():
        got = curves.get(key, {})
        drift = (row.get("ours") or {}).get("drift_us")
        panels.append(Panel(
            f"send interval {key}: |deviation| of each arrival from its slot", "|deviation| (log)",
            [Curve(labels[case], got[case], case == "ours") for case in CASES if case in got],
            [Target(f"target p99 ≤ {TARGET_P99_US:g} µs", TARGET_P99_US * 1e3, 0.99)],
            "rtudp drift after the run: " + ("-" if drift is None else f"{drift:.1f} µs")
            + f" (target ≤ {TARGET_DRIFT_US:g} µs)"))
    plot_cdfs(path, f"rtudp bench netflux: {r['seconds']:g} s a case, receiver's kernel RX "
                    "stamps", panels,
              "a curve that passes left of and above a red star meets that target")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench netflux``."""
    add_common_arguments(parser, f"{QUICK_S:g} s a case instead of {FULL_S:g} s")
    add_spin_budget_argument(parser)
    add_plot_argument(parser, "each interval's |deviation| CDFs of every case")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench netflux``: 0 when every case ran (targets met or not)."""
    return run_benchmark(args, lambda quick, quiet: benchmark(quick, quiet, args.spin_budget),
                         print_report, plot=plot_report)
