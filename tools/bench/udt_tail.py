"""``rtudp bench udt``'s tail: completion times of many seeded transfers over WAN
paths (issues 55, 68), and the fair share of one bottleneck.

A median hides the transfer that crawls once in twenty.  Each transfer here sends one
block (16 MB in the full run) over a fresh connection through a fresh relay
(rtudp.tools.bench.udt_relay) whose loss is seeded by the transfer's number, and its
completion time runs from the start of the sender to the receiver's last byte.

Pairs: rtudp -> libudt, libudt -> rtudp, rtudp -> rtudp, and libudt -> libudt (the
baseline), the same number of transfers each.  Paths (PATHS): 0 and 1 % random loss
both ways at 50 and 200 ms RTT (the relay's delay, half of it each way), and a
100 Mb/s bottleneck at 200 ms RTT with a drop-tail queue of one bandwidth-delay
product; LAN_PATHS (no delay: 0, 1, 5 %) on request.  rtudp's UDT is started afresh
for each transfer, so no channel or socket of an earlier one is reused.

Per pair and path: the median, the worst and the best, and for a libudt sender how
often its fast mode happened.  libudt's sender (CUDTCC) is bimodal on these paths:
it either leaves its slow start at a high receive rate or crawls up from a low one,
and the slow mode takes several times as long.  The rule: a transfer is fast when it
took at most FAST_WITHIN times the path's best transfer of any pair in the run.

Goals (issue 68, same run): libudt -> rtudp's median within 1.2x libudt -> libudt's;
rtudp -> libudt's and rtudp -> rtudp's at most libudt -> libudt's; on a bottleneck,
rtudp -> rtudp's goodput at least 90 % of the link, both as the block over the
median completion time (which includes the handshake's round trip and the slow
start) and as the median of the goodputs over each transfer's second half (the
receiver's bytes from when half had come to the last); the worst transfer of each
pair with an rtudp end within 2x its median.

Fairness (run_fair): N rtudp -> rtudp connections at once through one relay with the
100 Mb/s bottleneck (the clients share one port, so one relay carries them all);
each connection's bytes when the first of them has its whole block, and Jain's index
of them (goal >= 0.9).
"""
from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .udt_peer import LibudtPeer
from .udt_relay import CRelay, bdp_packets


@dataclass(frozen=True)
class WanPath:
    """What the relay does on a path: loss each way, RTT (half each way), and a
    bottleneck of rate_mbps (0: none) with a queue of one bandwidth-delay product."""
    loss: float
    rtt: float
    rate_mbps: float = 0.0

    def relay_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"loss": self.loss, "delay": self.rtt / 2}
        if self.rate_mbps:
            args.update(rate_mbps=self.rate_mbps,
                        queue_pkts=bdp_packets(self.rate_mbps, self.rtt))
        return args


PATHS = {"0% 50ms": WanPath(0.0, 0.05), "1% 50ms": WanPath(0.01, 0.05),
         "0% 200ms": WanPath(0.0, 0.2), "1% 200ms": WanPath(0.01, 0.2),
         "100Mb 200ms": WanPath(0.0, 0.2, 100.0)}
LAN_PATHS = {"0%": WanPath(0.0, 0.0), "1%": WanPath(0.01, 0.0), "5%": WanPath(0.05, 0.0)}
PAIRS = {"rtudp>libudt": "rtudp -> libudt", "libudt>rtudp": "libudt -> rtudp",
         "rtudp>rtudp": "rtudp -> rtudp", "libudt>libudt": "libudt -> libudt"}
BASELINE = "libudt>libudt"
FULL = {"size": 16 << 20, "transfers": 9, "fair_size": 16 << 20}
QUICK = {"size": 2 << 20, "transfers": 2, "fair_size": 2 << 20}
#: a transfer still running after this long is counted as failed (and as this slow)
LIMIT_S = 300.0
#: a libudt sender's transfer is "fast" within this factor of the path's best one
FAST_WITHIN = 2.0
LIBUDT_RECEIVER_WITHIN = 1.2    # libudt -> rtudp median / libudt -> libudt median
RTUDP_SENDER_WITHIN = 1.0       # rtudp -> * median / libudt -> libudt median
BOTTLENECK_SHARE = 0.9          # rtudp -> rtudp goodput / the link's rate
WORST_VS_MEDIAN = 2.0
FAIR_N = 10
FAIR_PATH = "100Mb 200ms"
JAIN_GOAL = 0.9


def _recv_size(udt4: Any, conn: Any, size: int, into: dict) -> None:
    """Receive ``size`` bytes on ``conn``: into["last"] is when the last came,
    into["half"] (bytes, time) when at least half had come."""
    got = 0
    try:
        while got < size:
            got += len(udt4.recv(conn, 1 << 22))
            into["last"] = time.monotonic()
            if "half" not in into and 2 * got >= size:
                into["half"] = (got, into["last"])
    except udt4.UDTException as e:
        into["error"] = f"receiver: {e}"
    into["bytes"] = got


class _Transfer:
    """One transfer of ``block`` from ``sender`` to ``receiver`` ("rtudp" or "libudt")
    through a relay on ``path`` seeded ``seed``; run() gives the completion time in s
    (raises RuntimeError when it failed)."""

    def __init__(self, exe: Path, relay_exe: Path, block_file: Path, block: bytes,
                 udt4: Any) -> None:
        self.exe, self.relay_exe, self.block_file, self.block = exe, relay_exe, block_file, block
        self.udt4 = udt4
        #: an rtudp receiver's goodput over the second half of the block, Mb/s
        self.late_mbps: float | None = None
        self.peers: list[LibudtPeer] = []
        self.relay: CRelay | None = None

    def _peer(self, *args: str) -> LibudtPeer:
        p = LibudtPeer(self.exe, *args)
        self.peers.append(p)
        return p

    def _via(self, port: int, path: WanPath, seed: int) -> int:
        self.relay = CRelay(("127.0.0.1", port), seed=seed, exe=self.relay_exe,
                            **path.relay_args())
        return self.relay.port

    def _send(self, sender: str, port: int) -> None:
        if sender == "libudt":
            self._peer("client", "stream", str(port), str(self.block_file), "0")
            return
        s = self.udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
        self.udt4.connect(s, "127.0.0.1", port)
        view = memoryview(self.block)
        while view.nbytes:
            view = view[self.udt4.send(s, view):]
        self.udt4.close(s)  # it lingers until all is acknowledged

    def run(self, sender: str, receiver: str, path: WanPath, seed: int) -> float:
        size = len(self.block)
        if receiver == "libudt":
            server = self._peer("server", "stream", os.devnull, "times")
            port = self._via(int(server.line().split()[1]), path, seed)
            t0 = time.monotonic()
            self._send(sender, port)
            try:
                _, got, _first, last = server.line(LIMIT_S).split()
            except AssertionError as e:
                raise RuntimeError(f"no end within {LIMIT_S:g} s ({e})") from None
            if int(got) != size:
                raise RuntimeError(f"libudt received {got} of {size} bytes")
            return float(last) - t0
        udt4 = self.udt4
        srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
        try:
            udt4.bind(srv, "127.0.0.1", 0)
            udt4.listen(srv, 4)
            port = self._via(udt4.getsockname(srv)[1], path, seed)
            into: dict = {}

            def serve() -> None:
                conn, _ = udt4.accept(srv)
                _recv_size(udt4, conn, size, into)
                udt4.close(conn)

            t = threading.Thread(target=serve, daemon=True, name="udt-tail-recv")
            t.start()
            t0 = time.monotonic()
            self._send(sender, port)
            t.join(LIMIT_S)
        finally:
            udt4.close(srv)
        if t.is_alive() or into.get("bytes") != size:
            raise RuntimeError(into.get("error") or
                               f"rtudp received {into.get('bytes', 0)} of {size} bytes "
                               f"within {LIMIT_S:g} s")
        got_half, at_half = into["half"]
        if into["last"] > at_half:
            self.late_mbps = (size - got_half) * 8 / (into["last"] - at_half) / 1e6
        return into["last"] - t0

    def close(self) -> None:
        for p in self.peers:
            p.stop()
        if self.relay is not None:
            self.relay.close()


def summary(times: list[float], failed: int) -> dict:
    """Count, median, worst and best (a failed transfer counts as LIMIT_S) of a cell."""
    all_ = times + [LIMIT_S] * failed
    return {"n": len(all_), "failed": failed,
            "p50": statistics.median(all_) if all_ else None,
            "slowest": max(all_) if all_ else None, "best": min(all_) if all_ else None,
            "times": list(times)}


def fast_modes(cells: dict[str, dict[str, dict]]) -> None:
    """Per path, each libudt sender's count of fast transfers (``fast``: at most
    FAST_WITHIN x the path's best transfer of any pair) into its cell."""
    for row in cells.values():
        best = min((c["best"] for c in row.values() if c.get("best")), default=None)
        for pair, c in row.items():
            if pair.startswith("libudt>") and best:
                c["fast"] = sum(t <= FAST_WITHIN * best for t in c["times"])


def run_tail(udt4: Any, pool: Any, options: dict, exe: Path, relay_exe: Path,
             block_file: Path, quick: bool, transfers: int | None, quiet: bool,
             say: Any, paths: dict[str, WanPath] | None = None) -> dict:
    """Every pair on every path (default PATHS), ``transfers`` times each: the
    cells' summaries, the goals, and the failures."""
    plan = QUICK if quick else FULL
    per = transfers or plan["transfers"]
    paths = PATHS if paths is None else paths
    block = os.urandom(plan["size"])
    tail_file = block_file.with_name("tail-block")
    tail_file.write_bytes(block)
    cells: dict[str, dict[str, dict]] = {}
    failures: dict[str, str] = {}
    for pi, (name, path) in enumerate(paths.items()):
        cells[name] = {}
        for pair in PAIRS:
            times: list[float] = []
            late: list[float] = []
            failed = 0
            for k in range(per):
                sender, receiver = pair.split(">")
                seed = 1000 * pi + k + 1
                udt4.startup(pool, **options)
                tr = _Transfer(exe, relay_exe, tail_file, block, udt4)
                try:
                    times.append(tr.run(sender, receiver, path, seed))
                    if tr.late_mbps is not None:
                        late.append(tr.late_mbps)
                except (RuntimeError, OSError, AssertionError, udt4.UDTException) as e:
                    failed += 1
                    failures[f"{name}/{pair}/seed {seed}"] = str(e)
                finally:
                    tr.close()
                    udt4.cleanup()
            cells[name][pair] = summary(times, failed)
            c = cells[name][pair]
            if late:
                c["late_mbps"] = late
            say(f"  tail {name:<12} {PAIRS[pair]:<17} {c['n']:>3} x {len(block) >> 20} MB: "
                f"median {c['p50']:.2f} s, worst {c['slowest']:.2f} s, best {c['best']:.2f} s"
                + (f", {failed} failed" if failed else ""), quiet)
    fast_modes(cells)
    return {"size": len(block), "transfers": per,
            "paths": {n: p.relay_args() for n, p in paths.items()},
            "cells": cells, "failed": failures, "goals": goals(cells, paths, len(block))}


def _goal(value: float | None, target: float, at_most: bool) -> dict:
    ok = None if value is None else (value <= target if at_most else value >= target)
    return {"value": value, "target": target, "op": "<=" if at_most else ">=", "pass": ok}


def goals(cells: dict[str, dict[str, dict]], paths: dict[str, WanPath], size: int
          ) -> dict[str, dict]:
    """Issue 68's goals per path, each {"value", "target", "op", "pass"} (pass None:
    not measured)."""
    out: dict[str, dict] = {}
    for name, row in cells.items():
        base = (row.get(BASELINE) or {}).get("p50")

        def vs_base(pair: str) -> float | None:
            mine = (row.get(pair) or {}).get("p50")
            return mine / base if mine and base else None

        out[f"{name} libudt -> rtudp median / libudt -> libudt's"] = _goal(
            vs_base("libudt>rtudp"), LIBUDT_RECEIVER_WITHIN, True)
        for pair in ("rtudp>libudt", "rtudp>rtudp"):
            out[f"{name} {PAIRS[pair]} median / libudt -> libudt's"] = _goal(
                vs_base(pair), RTUDP_SENDER_WITHIN, True)
        rate = paths[name].rate_mbps if name in paths else 0.0
        med = (row.get("rtudp>rtudp") or {}).get("p50")
        if rate:
            # the whole block over the median time (handshake and slow start in it),
            # and the steady state: the median of the second halves' goodputs
            share = size * 8 / med / (rate * 1e6) if med else None
            out[f"{name} rtudp -> rtudp goodput / bottleneck"] = _goal(
                share, BOTTLENECK_SHARE, False)
            late = (row.get("rtudp>rtudp") or {}).get("late_mbps")
            out[f"{name} rtudp -> rtudp 2nd-half goodput / bottleneck"] = _goal(
                statistics.median(late) / rate if late else None, BOTTLENECK_SHARE, False)
        for pair, c in row.items():
            if pair == BASELINE or not c.get("n"):
                continue
            out[f"{name} {PAIRS[pair]} worst / median"] = _goal(
                c["slowest"] / c["p50"] if c["p50"] else None, WORST_VS_MEDIAN, True)
    return out


def print_goals(title: str, gs: dict[str, dict]) -> None:
    print(title)
    for label, g in gs.items():
        verdict = "N/A" if g["pass"] is None else ("PASS" if g["pass"] else "MISS")
        value = "-" if g["value"] is None else f"{g['value']:.2f}"
        print(f"  {label:<58} {value:>7}  (target {g['op']} {g['target']:g})  {verdict}")


def print_tail(t: dict) -> None:
    """The tail table and its goals."""
    print(f"\ncompletion time of {t['size'] >> 20} MB transfers, each over a fresh "
          f"connection through a relay seeded per transfer ({t['transfers']} per pair and "
          f"path; s).  fast: a libudt sender's transfers within {FAST_WITHIN:g}x the "
          f"path's best transfer of any pair")
    for name, args in t.get("paths", {}).items():
        print(f"  {name}: relay " + ", ".join(f"{k}={v:g}" for k, v in args.items()))
    print(f"  {'path':<13}{'pair':<18}{'n':>4}{'median':>9}{'worst':>9}{'best':>9}"
          f"{'worst/med':>11}{'fast':>8}")
    for name, row in t["cells"].items():
        for pair, c in row.items():
            if not c.get("n"):
                continue
            fast = f"{c['fast']}/{len(c['times'])}" if "fast" in c else "-"
            print(f"  {name:<13}{PAIRS[pair]:<18}{c['n']:>4}{c['p50']:>9.2f}"
                  f"{c['slowest']:>9.2f}{c['best']:>9.2f}{c['slowest'] / c['p50']:>10.2f}x"
                  f"{fast:>8}" + (f"  ({c['failed']} failed)" if c["failed"] else ""))
    for what, why in t["failed"].items():
        print(f"  {what}: {why}")
    print_goals("\ntail goals (issue 68):", t["goals"])


def _fair_receive(udt4: Any, srv: Any, size: int, got: list[int], done: dict,
                  lock: threading.Lock, i: int) -> None:
    conn, _ = udt4.accept(srv)
    try:
        while got[i] < size:
            n = len(udt4.recv(conn, 1 << 22))
            with lock:
                got[i] += n
                if got[i] >= size and "at_first" not in done:
                    done["at_first"] = list(got)
                    done["t_first"] = time.monotonic()
    except udt4.UDTException as e:
        done.setdefault("errors", []).append(f"receiver {i}: {e}")
    finally:
        udt4.close(conn)


def _fair_send(udt4: Any, s: Any, block: bytes, done: dict) -> None:
    try:
        view = memoryview(block)
        while view.nbytes:
            view = view[udt4.send(s, view):]
    except udt4.UDTException as e:
        done.setdefault("errors", []).append(f"sender: {e}")
    finally:
        udt4.close(s)


def jain(xs: list[float]) -> float | None:
    """Jain's fairness index: (sum x)^2 / (n sum x^2), 1 when all are equal."""
    sq = sum(x * x for x in xs)
    return sum(xs) ** 2 / (len(xs) * sq) if sq else None


def run_fair(udt4: Any, pool: Any, options: dict, relay_exe: Path, quick: bool,
             n: int = FAIR_N, path_name: str = FAIR_PATH) -> dict:
    """n rtudp -> rtudp transfers of one block each, started together through one
    relay on ``path_name``: each one's bytes when the first had all of its block,
    their Jain's index, and the relay's counts."""
    size = (QUICK if quick else FULL)["fair_size"]
    path = PATHS[path_name]
    block = os.urandom(size)
    udt4.startup(pool, **{**options, "max_sockets": n + 2})
    got, done, lock = [0] * n, {}, threading.Lock()
    relay: CRelay | None = None
    threads: list[threading.Thread] = []
    try:
        srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
        udt4.bind(srv, "127.0.0.1", 0)
        udt4.listen(srv, n)
        relay = CRelay(("127.0.0.1", udt4.getsockname(srv)[1]), seed=68, exe=relay_exe,
                       **path.relay_args())
        # the clients share one port: the relay has one client address
        clients, bound = [], 0
        for _ in range(n):
            c = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
            udt4.bind(c, "127.0.0.1", bound)
            bound = udt4.getsockname(c)[1]
            clients.append(c)
        for i in range(n):
            threads.append(threading.Thread(target=_fair_receive, daemon=True,
                                            args=(udt4, srv, size, got, done, lock, i)))
        for c in clients:
            udt4.connect(c, "127.0.0.1", relay.port)
        t0 = time.monotonic()
        threads += [threading.Thread(target=_fair_send, args=(udt4, c, block, done),
                                     daemon=True) for c in clients]
        for t in threads:
            t.start()
        end = time.monotonic() + LIMIT_S
        for t in threads:
            t.join(max(0.0, end - time.monotonic()))
        elapsed = time.monotonic() - t0
        udt4.close(srv)
    finally:
        if relay is not None:
            relay.close()
        udt4.cleanup()
    at_first = done.get("at_first") or list(got)
    t_first = done.get("t_first", t0 + elapsed) - t0
    st = (relay.final if relay is not None else None) or {}
    index = jain([float(g) for g in at_first])
    goal = _goal(index, JAIN_GOAL, False)
    if done.get("errors") or sum(g >= size for g in got) < n:
        goal["pass"] = False  # a share of transfers that failed is no fair share
    return {"n": n, "size": size, "path": path_name, "relay": path.relay_args(),
            "at_first": at_first, "t_first": t_first, "complete": sum(g >= size for g in got),
            "elapsed": elapsed, "jain": index, "relay_stats": st,
            "aggregate_mbps": sum(at_first) * 8 / t_first / 1e6 if t_first > 0 else None,
            "errors": done.get("errors", []),
            "relay_qdropped": (st or {}).get("fwd_qdropped", 0),
            "goal": goal}


def print_fair(f: dict) -> None:
    mb = [g / 1e6 for g in f["at_first"]]
    print(f"\nfairness: {f['n']} rtudp -> rtudp transfers of {f['size'] >> 20} MB at once "
          f"through one relay ({f['path']}: "
          + ", ".join(f"{k}={v:g}" for k, v in f["relay"].items()) + ")")
    print(f"  MB each when the first was done ({f['t_first']:.2f} s): "
          + " ".join(f"{m:.1f}" for m in mb))
    agg = f["aggregate_mbps"]
    print(f"  aggregate {agg:.1f} Mb/s until then; {f['complete']}/{f['n']} complete after "
          f"{f['elapsed']:.1f} s; bottleneck queue drops {f['relay_qdropped']}"
          if agg is not None else "  nothing arrived")
    for e in sorted(set(f["errors"])):
        print(f"  {e} (x{f['errors'].count(e)})")
    if not f["relay_stats"]:
        print("  the relay gave no final counts (it had exited)")
    print_goals("fairness goal (issue 68):", {"Jain's index": f["goal"]})


__all__ = ["LAN_PATHS", "PATHS", "PAIRS", "WanPath", "fast_modes", "goals", "jain",
           "print_fair", "print_tail", "run_fair", "run_tail", "summary"]
