"""``rtudp bench aio``: a round trip through an asyncio event loop next to the blocking
``recv``, in the same run, on the same channels.

A ping-pong of 64-byte datagrams between this process and an echo process on
127.0.0.1 (the echo of ``rtudp bench latency``: a channel attached with
``rtudp.attach``, blocking ``recv()`` then ``send()``).  This end, in turns of
ROUND_S (rounds alternate so that a change in the machine's load hits every case):

1. blocking: ``ch.send(msg)``, then ``ch.recv()`` (waits in C, on the futex);
2. asyncio: ``await ach.send(msg)``, then ``await ach.recv()`` in ``asyncio.run``
   (``rtudp.aio.AsyncChannel``: the loop waits on the eventfd the worker writes);
3. uvloop: the same on uvloop's loop, when uvloop is installed.

Figures: p50 / p90 / p99 round trip (µs) and each loop's p50 divided by the blocking
one's.  Target (issue 21): asyncio p50 <= 1.5x blocking p50, reported PASS/MISS,
never asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Callable

from .common import (MSG_SIZE, Child, OthersMeter, pool_idle_s, add_common_arguments,
                           add_plot_argument, bench_pool, fmt_ratio, fmt_us, header, others_col,
                           others_footer, print_table, ratio, ratio_target_row, run_benchmark,
                           say, take_curves, target, worker_policies)
from .latency import (RECV_TIMEOUT_S, RTT_HEAD, STOP, WARMUP, _channel_pair, _entry,
                            _same_but_stamps, _SEQ, channel_echo, print_placement, rtt_cols)

FULL_S, QUICK_S = 6.0, 1.5          # per case, over all rounds
ROUNDS_FULL, ROUNDS_QUICK = 6, 3
TARGET_VS_BLOCKING = 1.5

CASES = {
    "blocking": ("blocking recv", "ch.send + ch.recv(): waits in C on the futex"),
    "asyncio": ("asyncio", "await ach.send + await ach.recv() (AsyncChannel; asyncio.run)"),
    "uvloop": ("uvloop", "the same on uvloop's event loop"),
}


def _uvloop() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def _trips(n_warm: int, seconds: float) -> tuple[Callable[[int], bytes], Callable[..., bool]]:
    """The i-th ping payload, and the round's end test (after n_warm trips, `seconds`)."""
    buf = bytearray(MSG_SIZE)
    end: list[int | None] = [None]

    def payload(i: int) -> bytes:
        _SEQ.pack_into(buf, 0, i)
        return bytes(buf)

    def done(i: int, t1: int) -> bool:
        if i == n_warm:
            end[0] = t1 + int(seconds * 1e9)
        return end[0] is not None and t1 >= end[0]

    return payload, done


def blocking_round(ping: Any, seconds: float, warm: int) -> list[int]:
    """Round trips (ns) with the blocking calls."""
    payload, done = _trips(warm, seconds)
    send, recv, now = ping.send, ping.recv, time.monotonic_ns
    rtts: list[int] = []
    i = 0
    while True:
        msg = payload(i)
        t0 = now()
        send(msg)
        reply = recv(timeout=RECV_TIMEOUT_S).data
        t1 = now()
        if not _same_but_stamps(reply, msg):
            raise RuntimeError(f"round trip {i}: got back {reply[:8]!r}..., not what was sent")
        if i >= warm:
            rtts.append(t1 - t0)
        if done(i, t1):
            return rtts
        i += 1


async def async_round(ping: Any, seconds: float, warm: int) -> list[int]:
    """Round trips (ns) through the running event loop."""
    from rtudp.aio import AsyncChannel

    ach = AsyncChannel(ping)
    payload, done = _trips(warm, seconds)
    send, recv, now = ach.send, ach.recv, time.monotonic_ns
    rtts: list[int] = []
    i = 0
    try:
        while True:
            msg = payload(i)
            t0 = now()
            await send(msg)
            reply = (await recv(timeout=RECV_TIMEOUT_S)).data
            t1 = now()
            if not _same_but_stamps(reply, msg):
                raise RuntimeError(f"round trip {i}: got back {reply[:8]!r}..., not what "
                                   f"was sent")
            if i >= warm:
                rtts.append(t1 - t0)
            if done(i, t1):
                return rtts
            i += 1
    finally:
        ach.detach()


def benchmark(quick: bool, quiet: bool) -> dict:
    seconds = QUICK_S if quick else FULL_S
    rounds = ROUNDS_QUICK if quick else ROUNDS_FULL
    busy = header("aio", quick, quiet, f", {seconds:g} s a case in {rounds} rounds")
    uvloop = _uvloop()
    runners: dict[str, Callable[[Any, float, int], list[int]]] = {
        "blocking": blocking_round,
        "asyncio": lambda ping, s, w: asyncio.run(async_round(ping, s, w)),
    }
    skipped: dict[str, str] = {}
    if uvloop is not None:
        runners["uvloop"] = lambda ping, s, w: uvloop.run(async_round(ping, s, w))
    else:
        skipped["uvloop"] = "uvloop: not installed (pip install 'rtudp[uvloop]')"
    rtts: dict[str, list[int]] = {k: [] for k in runners}
    failed: dict[str, str] = {}
    facts: dict = {}
    with bench_pool("aio") as (pool, pool_warnings):
        for w in pool_warnings:
            say(f"  warning: {w}", quiet)
        ping, pong = _channel_pair(pool)
        pong.receives = False  # the echo process is pong's one reader
        child = Child("bench-aio-channel-echo", channel_echo, pool.name, "pong", False, True,
                      False)
        try:
            child.ready()
            facts = {"policies": worker_policies(pool), "pool_warnings": pool_warnings,
                     "channel_cpus": {ch.name: pool.workers()[ch.worker]["cpu"]
                                      for ch in (ping, pong)}}
            meter = OthersMeter(lambda: [w["pid"] for w in pool.workers()] + [child.proc.pid],
                                pool_idle_s(pool))
            for r in range(rounds):
                for key, fn in runners.items():
                    if key in failed:
                        continue
                    try:
                        rtts[key] += fn(ping, seconds / rounds, WARMUP if r == 0 else 20)
                    except Exception as exc:  # noqa: BLE001 - report it and go on
                        failed[key] = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
                        say(f"{key}: {exc}", quiet)
            others = meter.others()
            ping.send(STOP)
            child.result(timeout=10.0)
        finally:
            ping.close()
            pong.close()
            child.stop(grace=2.0)
    results: dict[str, dict | None] = dict.fromkeys(CASES)
    for key, values in rtts.items():
        if values and key not in failed:
            results[key] = _entry(values, others)
            say(f"  ... {CASES[key][0]}: p50 {fmt_us(results[key]['p50_us'], 0)} µs", quiet)
    curves = take_curves({"rtt": results})
    p50 = {k: (e or {}).get("p50_us") for k, e in results.items()}
    for key, e in results.items():
        if e:
            e["vs_blocking"] = ratio(p50[key], p50["blocking"])
    targets = {k: target(ratio(p50[k], p50["blocking"]), TARGET_VS_BLOCKING, False)
               for k in ("asyncio", "uvloop")}
    if "uvloop" in skipped:
        targets["uvloop"]["pass"] = None
    return {"quick": quick, "seconds": seconds, "rounds": rounds, "msg_size": MSG_SIZE,
            "cpu_busy_before": busy, **facts, "results": results, "failed": failed,
            "skipped": skipped, "targets": targets, "curves": curves}


def print_report(r: dict) -> None:
    print_placement(r)
    print_table(f"round trip (µs), {r['msg_size']}-byte datagrams on loopback to a blocking "
                f"channel echo, {r['seconds']:g} s a case in {r['rounds']} alternating rounds",
                f"{RTT_HEAD} {'trips':>8} {'vs block':>9} {'others':>7}   how", CASES,
                r["results"],
                lambda e, how: (f"{rtt_cols(e)} "
                                f"{e['round_trips']:>8} {fmt_ratio(e['vs_blocking']):>9} "
                                f"{others_col(e)}   {how}"),
                lambda key: r["skipped"].get(key) or r["failed"].get(key, "failed"), 16)
    others_footer([*r["results"].values()])
    print("\ntargets")
    for key in ("asyncio", "uvloop"):
        print(ratio_target_row(f"{key} p50 / blocking recv p50", r["targets"][key],
                               r["skipped"].get(key, "")))


def plot_report(r: dict, curves: dict, path: str) -> None:
    """--plot: the round-trip CDF of each case, the 1.5x-of-blocking target marked."""
    from ..plot import Curve, Panel, Target, plot_cdfs

    rtt = curves.get("rtt", {})
    base = (r["results"].get("blocking") or {}).get("p50_us")
    targets = [Target(f"target: p50 ≤ {TARGET_VS_BLOCKING:g}× blocking recv's",
                      TARGET_VS_BLOCKING * base * 1e3, 0.5)] if base else []
    panel = Panel(f"round trip, {r['msg_size']}-byte datagrams, loopback", "round trip (log)",
                  [Curve(CASES[k][0], rtt[k], k != "blocking") for k in CASES if k in rtt],
                  targets, "; ".join(r["skipped"].values()))
    plot_cdfs(path, "rtudp bench aio: a round trip through the event loop vs blocking recv",
              [panel], "a curve that passes left of and above the red star meets the target")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench aio``."""
    add_common_arguments(parser, f"{QUICK_S:g} s a case instead of {FULL_S:g} s")
    add_plot_argument(parser, "the round-trip CDF of each case")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench aio``: 0 when every case ran (targets met or not)."""
    return run_benchmark(args, benchmark, print_report, plot=plot_report)


__all__ = ["add_arguments", "run"]
