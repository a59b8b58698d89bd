"""``rtudp bench placement``: where a pool's workers and its callers should run.

The doctor advises, on a machine whose every CPU gets a worker: "give the pool fewer
CPUs and keep callers on the first".  This bench puts that advice beside the default,
on the same boot, in rounds whose cases run in a shuffled order (seeded: ``--seed``):

- ``every CPU``: the default pool, a worker on each CPU; the caller (this process and
  its echo) wherever the kernel puts it;
- ``CPUs 1.., caller free``: the pool on every CPU but the first; the caller free;
- ``CPUs 1.., caller on 0``: the same, and the caller pinned to the first CPU
  (``os.sched_setaffinity``), as the doctor advises.

Three scenarios, each something a caller does:

- ``timed 50kpps``: one channel sends 64-byte datagrams at absolute deadlines 20 µs
  apart, queued by this process; lateness = kernel TX stamp - deadline, and the pool's
  CPU;
- ``round trip``: a ping-pong of 64-byte datagrams between a channel here and a plain
  Python socket echo in another process (``rtudp bench latency``'s "python echo");
- ``both ends``: the same between two channels, the echo process attached to the pool
  (``rtudp bench latency``'s "rtudp both ends").

Figures only; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from .common import add_common_arguments, fmt_ratio, fmt_us, header, ratio, run_benchmark
from .latency import run_ours
from .mechanisms import merge, run_pool_case, shuffled_rounds

ROUNDS = 3
TIMED_GAP_NS = 20_000
SECONDS = {"timed 50kpps": 1.0, "round trip": 2.0, "both ends": 2.0}
QUICK_SECONDS = {"timed 50kpps": 0.5, "round trip": 0.5, "both ends": 0.5}
SCENARIOS = list(SECONDS)
WHAT = {"timed 50kpps": "lateness (kernel TX stamp - deadline)",
        "round trip": "round trip, a channel here and a plain socket echo",
        "both ends": "round trip, a channel at both ends"}
DEFAULT = "every CPU"


def cases(cpus: list[int]) -> dict[str, tuple[list[int] | None, int | None]]:
    """label -> (the pool's CPUs, None: the default; the caller's CPU, None: free)."""
    rest = cpus[1:]
    return {DEFAULT: (None, None),
            "CPUs 1.., caller free": (rest, None),
            "CPUs 1.., caller on 0": (rest, cpus[0])}


def run_case(scenario: str, seconds: float, pool_cpus: list[int] | None,
             caller_cpu: int | None, quiet: bool) -> dict:
    """One run of ``scenario``: a histogram (lateness or round trip, ns) and CPU or None."""
    pool_args: dict[str, Any] = {"caller_cpu": caller_cpu}
    if pool_cpus is not None:
        pool_args["cpus"] = pool_cpus
    if scenario == "timed 50kpps":
        return run_pool_case(TIMED_GAP_NS, seconds, False, pool_args)
    entry, _facts = run_ours(seconds, scenario == "round trip", quiet, pool_args=pool_args)
    return {"hist": entry["hist"], "cpu": None}


def benchmark(quick: bool, quiet: bool, rounds: int, seed: int,
              cpus: list[int] | None = None) -> dict:
    """Every case of every scenario, ``rounds`` times interleaved (``quick``: once)."""
    cpus = sorted(os.sched_getaffinity(0)) if cpus is None else cpus
    if len(cpus) < 2:
        raise SystemExit(f"bench placement needs 2 CPUs or more; this process may use {cpus}")
    rounds = 1 if quick else rounds
    seconds = QUICK_SECONDS if quick else SECONDS
    table = cases(cpus)
    busy = header("placement", quick, quiet, f", {len(table)} cases x {len(SCENARIOS)} "
                  f"scenarios in {rounds} round(s), shuffled (seed {seed})")
    got, failed = shuffled_rounds(
        rounds, SCENARIOS, list(table), seed,
        lambda s, c: run_case(s, seconds[s], table[c][0], table[c][1], quiet), quiet)
    return {"quick": quick, "rounds": rounds, "seed": seed, "cpu_busy_before": busy,
            "cpus": cpus, "seconds": seconds, "cases": list(table),
            "placements": {c: {"pool_cpus": p, "caller_cpu": k} for c, (p, k) in table.items()},
            "results": {s: {c: merge(r) for c, r in by.items() if r} for s, by in got.items()},
            "failed": failed}


def print_report(report: dict) -> None:
    """One table per scenario: each case's p50 / p99 / p99.9 / max, its rounds' worst and
    best p99, CPU, and its p99 against the default's."""
    for s in SCENARIOS:
        res = report["results"].get(s, {})
        base = res.get(DEFAULT, {})
        print(f"\n{s}: {WHAT[s]}, {report['seconds'][s]:g} s a case "
              f"({report['rounds']} rounds)")
        print(f"  {'case':<24} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8} "
              f"{'p99 rounds':>19} {'CPU':>6} {'p99/default':>12}")
        for c in report["cases"]:
            e = res.get(c)
            if not e:
                print(f"  {c:<24} {report['failed'].get(f'{s} / {c}', 'no run')}")
                continue
            rp = [p for p in e["round_p99_us"] if p is not None]
            rounds = f"{fmt_us(max(rp), 0)}..{fmt_us(min(rp), 0)}" if rp else "-"
            cpu = f"{e['cpu']:6.3f}" if e["cpu"] is not None else f"{'-':>6}"
            print(f"  {c:<24} {fmt_us(e['p50_us'])} {fmt_us(e['p99_us'])} "
                  f"{fmt_us(e['p999_us'])} {fmt_us(e['max_us'])} {rounds:>19} {cpu} "
                  f"{fmt_ratio(ratio(e['p99_us'], base.get('p99_us'))):>12}")
    print(f"\nin µs; CPUs {report['cpus']}; p99 rounds: worst..best; CPU: the pool's "
          "workers and idle pollers, in CPUs (timed sends only)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench placement``."""
    add_common_arguments(parser, f"one round of short cases instead of {ROUNDS}")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="the shuffle's seed")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench placement``: 0 when every case ran."""
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be 1 or more, got {args.rounds}")
    return run_benchmark(args, lambda quick, quiet: benchmark(quick, quiet, args.rounds,
                                                              args.seed), print_report)
