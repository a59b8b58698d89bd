"""``rtudp bench udt``: UDT stream goodput, libudt vs rtudp, in the same run.

Four pairs: libudt -> libudt, rtudp -> libudt, libudt -> rtudp, rtudp -> rtudp. They
run on loopback at 0 % loss and through rtudp.tools.udt_peer's relay at 1, 2 and 5 %
random loss. Each sender sends for a fixed time (libudt then closes without linger;
rtudp closes and lingers until all is acknowledged). Goodput is the bytes the receiver
got, divided by the time from the start until the receiver saw the end.

The relay is one Python thread and caps what it forwards (about 100 Mb/s here), so the
lossy figures are lower bounds for the faster side. The ratios print against
libudt -> libudt.
"""
from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .bench_common import (add_common_arguments, bench_pool, cpu_busy, fmt_ratio, header, ratio,
                           run_benchmark, say, target, target_row)
from .udt_peer import LibudtPeer, PeerUnavailable, Relay, build_libudt_peer

LOSSES = (0.0, 0.01, 0.02, 0.05)
QUICK_LOSSES = (0.0, 0.01, 0.05)
FULL_S, QUICK_S = 5.0, 2.0
CASES = {"libudt>libudt": "libudt -> libudt", "rtudp>libudt": "rtudp -> libudt",
         "libudt>rtudp": "libudt -> rtudp", "rtudp>rtudp": "rtudp -> rtudp"}
#: the issue's targets for rtudp's sender against libudt's (loss -> ratio at least)
TARGETS = {0.0: 1.0, 0.01: 10.0, 0.05: 20.0}
CHUNK = 4 << 20
END_WAIT_S = 120.0


def _rtudp_send(udt4: Any, host_port: tuple[str, int], seconds: float, block: bytes) -> None:
    s = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    udt4.connect(s, *host_port)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        view = memoryview(block)
        while view.nbytes and time.monotonic() < end:
            view = view[udt4.send(s, view):]
    udt4.close(s)


def _rtudp_receive(udt4: Any, srv: Any, into: dict) -> None:
    conn, _ = udt4.accept(srv)
    into["start"] = time.monotonic()
    n = 0
    try:
        while True:
            n += len(udt4.recv(conn, 1 << 22))
    except udt4.UDTException:
        pass
    into["bytes"], into["end"] = n, time.monotonic()
    udt4.close(conn)


def _relay_or_direct(port: int, loss: float) -> tuple[int, Relay | None]:
    if not loss:
        return port, None
    relay = Relay(("127.0.0.1", port), loss=loss, seed=int(loss * 1000) + 1)
    return relay.port, relay


def run_case(case: str, loss: float, seconds: float, exe: Path, block_file: Path,
             udt4: Any) -> dict:
    """One pair at one loss rate: goodput in Mb/s and what the relay did."""
    sender, receiver = case.split(">")
    block = block_file.read_bytes()
    relay = None
    peer = None
    t0 = time.monotonic()
    try:
        if receiver == "libudt":
            peer = LibudtPeer(exe, "server", "stream", os.devnull)
            port, relay = _relay_or_direct(int(peer.line().split()[1]), loss)
            t0 = time.monotonic()
            if sender == "libudt":
                client = LibudtPeer(exe, "client", "stream", str(port), str(block_file), "0",
                                    str(seconds))
                try:
                    client.line(seconds + END_WAIT_S)
                finally:
                    client.stop()
            else:
                _rtudp_send(udt4, ("127.0.0.1", port), seconds, block)
            got = int(peer.line(END_WAIT_S).split()[1])
            dt = time.monotonic() - t0
        else:
            srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
            udt4.bind(srv, "127.0.0.1", 0)
            udt4.listen(srv, 4)
            port, relay = _relay_or_direct(udt4.getsockname(srv)[1], loss)
            into: dict = {}
            t = threading.Thread(target=_rtudp_receive, args=(udt4, srv, into), daemon=True)
            t.start()
            t0 = time.monotonic()
            if sender == "libudt":
                peer = LibudtPeer(exe, "client", "stream", str(port), str(block_file), "0",
                                  str(seconds))
                peer.line(seconds + END_WAIT_S)
            else:
                _rtudp_send(udt4, ("127.0.0.1", port), seconds, block)
            t.join(END_WAIT_S)
            udt4.close(srv)
            if "end" not in into:
                raise RuntimeError(f"{case} at {loss:.0%}: the receiver did not see the end")
            got, dt = into["bytes"], into["end"] - t0
        out = {"mbps": got * 8 / dt / 1e6, "bytes": got, "seconds": dt}
        if relay is not None:
            out["relay_dropped"], out["relay_passed"] = relay.dropped, relay.passed
        return out
    finally:
        if peer is not None:
            peer.stop()
        if relay is not None:
            relay.close()


def benchmark(quick: bool, quiet: bool) -> dict:
    """Every pair at every loss rate; the report."""
    import rtudp.udt.udt4 as udt4

    busy = header("udt", quick, quiet)
    seconds = QUICK_S if quick else FULL_S
    losses = QUICK_LOSSES if quick else LOSSES
    results: dict[str, dict[str, dict | None]] = {}
    failed: dict[str, str] = {}
    try:
        exe = build_libudt_peer()
    except PeerUnavailable as e:
        return {"benchmark": "udt", "quick": quick, "busy_before": busy, "results": {},
                "failed": {"libudt": str(e)}, "targets": {}}
    with tempfile.TemporaryDirectory(prefix="rtudp-bench-udt-") as tmp, \
            bench_pool("udt", rt_priority=0) as (pool, warns):
        block_file = Path(tmp) / "block"
        block_file.write_bytes(os.urandom(CHUNK))
        udt4.startup(pool)
        try:
            for loss in losses:
                row: dict[str, dict | None] = dict.fromkeys(CASES)
                for case in CASES:
                    say(f"  {loss:.0%} loss: {CASES[case]} ...", quiet)
                    try:
                        row[case] = run_case(case, loss, seconds, exe, block_file, udt4)
                    except (RuntimeError, OSError, AssertionError) as e:
                        failed[f"{loss:.0%}/{case}"] = str(e)
                results[f"{loss:.0%}"] = row
        finally:
            udt4.cleanup()
    targets = {}
    for loss, want in TARGETS.items():
        row = results.get(f"{loss:.0%}") or {}
        ours, theirs = (row.get("rtudp>libudt") or {}), (row.get("libudt>libudt") or {})
        r = ratio(ours.get("mbps"), theirs.get("mbps"))
        targets[f"{loss:.0%} loss: rtudp's sender / libudt's"] = target(r, want, True)
    return {"benchmark": "udt", "quick": quick, "seconds": seconds, "busy_before": busy,
            "busy_after": cpu_busy(), "pool_warnings": warns, "results": results,
            "failed": failed, "targets": targets}


def print_report(r: dict) -> None:
    print(f"\nstream goodput, {r.get('seconds', 0):g} s of sending per case (Mb/s; ratio to "
          f"libudt -> libudt)")
    print(f"  {'loss':<6}" + "".join(f"{CASES[c]:>22}" for c in CASES))
    for loss, row in r["results"].items():
        base = (row.get("libudt>libudt") or {}).get("mbps")
        cells = []
        for case in CASES:
            e = row.get(case)
            if not e:
                cells.append(f"{'failed':>22}")
                continue
            cells.append(f"{e['mbps']:>12.1f} ({fmt_ratio(ratio(e['mbps'], base)):>7})")
        print(f"  {loss:<6}" + "".join(cells))
    for case, why in r["failed"].items():
        print(f"  {case}: {why}")
    if r["targets"]:
        print("\ntargets (issue 20):")
        for label, t in r["targets"].items():
            print(target_row(label, t, ">=", "x", lambda v: f"{v:.1f}"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench udt``."""
    add_common_arguments(parser, f"{QUICK_S:g} s a case at 0/1/5 %% loss instead of "
                                 f"{FULL_S:g} s at 0/1/2/5 %%")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench udt``: 0 when every case ran (targets met or not)."""
    return run_benchmark(args, benchmark, print_report)
