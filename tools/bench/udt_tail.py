"""``rtudp bench udt``'s tail: completion times of many seeded transfers (issue 55).

A median hides the transfer that crawls once in twenty.  Each transfer here sends one
block (16 MB in the full run) over a fresh connection through a fresh relay
(rtudp.tools.bench.udt_relay) whose loss is seeded by the transfer's number, and its
completion time runs from the start of the sender to the receiver's last byte.  Per
pair and path the table gives the count, p50, p99 and the slowest, and the two goals:
the slowest within 3x the pair's median, and within 10x libudt -> libudt's median on
the same path in the same run.

Pairs: rtudp -> libudt, libudt -> rtudp, rtudp -> rtudp, and libudt -> libudt (the
baseline, fewer transfers: at 5 % loss one takes about a minute).  Paths: 0, 1 and 5 %
random loss both ways, and 1 % at 50 ms RTT (the relay's delay, 25 ms each way).
rtudp's UDT is started afresh for each transfer, so no channel or socket of an earlier
one is reused.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from .udt_peer import LibudtPeer
from .udt_relay import CRelay

#: path name -> (loss each way, one-way delay s)
PATHS = {"0%": (0.0, 0.0), "1%": (0.01, 0.0), "5%": (0.05, 0.0), "1% 50ms": (0.01, 0.025)}
PAIRS = {"rtudp>libudt": "rtudp -> libudt", "libudt>rtudp": "libudt -> rtudp",
         "rtudp>rtudp": "rtudp -> rtudp", "libudt>libudt": "libudt -> libudt"}
BASELINE = "libudt>libudt"
FULL = {"size": 16 << 20, "transfers": 18, "baseline": 4}
QUICK = {"size": 2 << 20, "transfers": 3, "baseline": 2}
#: a transfer still running after this long is counted as failed (and as this slow)
LIMIT_S = 300.0
SLOWEST_VS_MEDIAN = 3.0
SLOWEST_VS_LIBUDT = 10.0


def _recv_size(udt4: Any, conn: Any, size: int, into: dict) -> None:
    """Receive ``size`` bytes on ``conn``: into["last"] is when the last came."""
    got = 0
    try:
        while got < size:
            got += len(udt4.recv(conn, 1 << 22))
            into["last"] = time.monotonic()
    except udt4.UDTException as e:
        into["error"] = f"receiver: {e}"
    into["bytes"] = got


class _Transfer:
    """One transfer of ``block`` from ``sender`` to ``receiver`` ("rtudp" or "libudt")
    through a relay of ``loss`` and ``delay`` seeded ``seed``; run() gives the
    completion time in s (raises RuntimeError when it failed)."""

    def __init__(self, exe: Path, relay_exe: Path, block_file: Path, block: bytes,
                 udt4: Any) -> None:
        self.exe, self.relay_exe, self.block_file, self.block = exe, relay_exe, block_file, block
        self.udt4 = udt4
        self.peers: list[LibudtPeer] = []
        self.relay: CRelay | None = None

    def _peer(self, *args: str) -> LibudtPeer:
        p = LibudtPeer(self.exe, *args)
        self.peers.append(p)
        return p

    def _via(self, port: int, loss: float, delay: float, seed: int) -> int:
        self.relay = CRelay(("127.0.0.1", port), loss=loss, delay=delay, seed=seed,
                            exe=self.relay_exe)
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

    def run(self, sender: str, receiver: str, loss: float, delay: float, seed: int) -> float:
        size = len(self.block)
        if receiver == "libudt":
            server = self._peer("server", "stream", os.devnull, "times")
            port = self._via(int(server.line().split()[1]), loss, delay, seed)
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
            port = self._via(udt4.getsockname(srv)[1], loss, delay, seed)
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
        return into["last"] - t0

    def close(self) -> None:
        for p in self.peers:
            p.stop()
        if self.relay is not None:
            self.relay.close()


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by nearest rank; None for no values."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, -(-len(v) * q // 100) - 1))
    return v[int(k)]


def summary(times: list[float], failed: int) -> dict:
    """Count, p50, p99, slowest (a failed transfer counts as LIMIT_S) of a cell."""
    all_ = times + [LIMIT_S] * failed
    return {"n": len(all_), "failed": failed, "p50": percentile(all_, 50),
            "p99": percentile(all_, 99), "slowest": max(all_) if all_ else None,
            "times": list(times)}


def run_tail(udt4: Any, pool: Any, options: dict, exe: Path, relay_exe: Path,
             block_file: Path, quick: bool, transfers: int | None, quiet: bool,
             say: Any) -> dict:
    """Every pair on every path, ``transfers`` times each (the baseline fewer): the
    cells' summaries, the goals, and the failures."""
    plan = QUICK if quick else FULL
    per = transfers or plan["transfers"]
    base_n = min(per, plan["baseline"])
    block = os.urandom(plan["size"])
    tail_file = block_file.with_name("tail-block")
    tail_file.write_bytes(block)
    cells: dict[str, dict[str, dict]] = {}
    failures: dict[str, str] = {}
    for pi, (path, (loss, delay)) in enumerate(PATHS.items()):
        cells[path] = {}
        for pair in PAIRS:
            n = base_n if pair == BASELINE else per
            times: list[float] = []
            failed = 0
            for k in range(n):
                sender, receiver = pair.split(">")
                seed = 1000 * pi + k + 1
                udt4.startup(pool, **options)
                tr = _Transfer(exe, relay_exe, tail_file, block, udt4)
                try:
                    times.append(tr.run(sender, receiver, loss, delay, seed))
                except (RuntimeError, OSError, AssertionError, udt4.UDTException) as e:
                    failed += 1
                    failures[f"{path}/{pair}/seed {seed}"] = str(e)
                finally:
                    tr.close()
                    udt4.cleanup()
            cells[path][pair] = summary(times, failed)
            c = cells[path][pair]
            say(f"  tail {path:<8} {PAIRS[pair]:<17} {c['n']:>3} x {len(block) >> 20} MB: "
                f"p50 {c['p50']:.2f} s, slowest {c['slowest']:.2f} s"
                + (f", {failed} failed" if failed else ""), quiet)
    return {"size": len(block), "transfers": per, "baseline_transfers": base_n,
            "cells": cells, "failed": failures, "goals": goals(cells)}


def goals(cells: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per rtudp pair and path: slowest / own median (<= 3) and slowest / libudt ->
    libudt's median (<= 10), each {"value", "target", "pass"}."""
    out: dict[str, dict] = {}
    for path, row in cells.items():
        base = (row.get(BASELINE) or {}).get("p50")
        for pair, c in row.items():
            if pair == BASELINE or not c.get("n"):
                continue
            own = c["slowest"] / c["p50"] if c["p50"] else None
            vs = c["slowest"] / base if base else None
            out[f"{path} {PAIRS[pair]}: slowest / its median"] = {
                "value": own, "target": SLOWEST_VS_MEDIAN,
                "pass": own is not None and own <= SLOWEST_VS_MEDIAN}
            out[f"{path} {PAIRS[pair]}: slowest / libudt's median"] = {
                "value": vs, "target": SLOWEST_VS_LIBUDT,
                "pass": None if vs is None else vs <= SLOWEST_VS_LIBUDT}
    return out


def print_tail(t: dict) -> None:
    """The tail table and its goals."""
    print(f"\ncompletion time of {t['size'] >> 20} MB transfers, each over a fresh "
          f"connection through a relay seeded per transfer ({t['transfers']} per rtudp "
          f"pair, {t['baseline_transfers']} libudt -> libudt; s)")
    print(f"  {'path':<9}{'pair':<18}{'n':>4}{'p50':>9}{'p99':>9}{'slowest':>9}"
          f"{'slow/p50':>10}{'slow/libudt p50':>17}")
    for path, row in t["cells"].items():
        base = (row.get(BASELINE) or {}).get("p50")
        for pair, c in row.items():
            if not c.get("n"):
                continue
            rel = f"{c['slowest'] / base:.2f}x" if base and pair != BASELINE else "-"
            print(f"  {path:<9}{PAIRS[pair]:<18}{c['n']:>4}{c['p50']:>9.2f}{c['p99']:>9.2f}"
                  f"{c['slowest']:>9.2f}{c['slowest'] / c['p50']:>9.2f}x{rel:>17}"
                  + (f"  ({c['failed']} failed)" if c["failed"] else ""))
    for what, why in t["failed"].items():
        print(f"  {what}: {why}")
    print(f"\ntail goals (issue 55): slowest <= {SLOWEST_VS_MEDIAN:g}x its median, "
          f"<= {SLOWEST_VS_LIBUDT:g}x libudt -> libudt's median")
    for label, g in t["goals"].items():
        verdict = "N/A" if g["pass"] is None else ("PASS" if g["pass"] else "MISS")
        value = "-" if g["value"] is None else f"{g['value']:.2f}x"
        print(f"  {label:<52} {value:>8}  (target <= {g['target']:g}x)  {verdict}")


__all__ = ["PATHS", "PAIRS", "goals", "percentile", "print_tail", "run_tail", "summary"]
