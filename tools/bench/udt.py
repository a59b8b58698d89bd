"""``rtudp bench udt``: UDT stream goodput and CPU, libudt vs rtudp, in the same run,
then the completion-time tail of many seeded transfers over WAN paths and the fair
share of one bottleneck (tools/bench/udt_tail.py).

Four pairs: libudt -> libudt, rtudp -> libudt, libudt -> rtudp, rtudp -> rtudp. They
run on loopback at 0 % loss and through rtudp.tools.bench.udt_relay's relay (C, its own
process, batched: it forwards at loopback speed) at 1, 2 and 5 % random loss both
ways. Each sender sends for a fixed time (libudt then closes without linger; rtudp
closes and lingers until all is acknowledged). Goodput is the bytes the receiver got,
divided by the time from the start until the last of them came (not until the end
was seen: a lost shutdown would cost libudt a timeout that is not transfer time).

rtudp's sockets get libudt's default buffers (8192 packets each way; rtudp's
default is 1024): a window of 1024 packets stalls behind one hole for a round trip,
and under this machine's load a round trip is tens of ms.

CPU per GB received: the rtudp workers' (all of the pool's, /proc), this Python
process's (getrusage: the rtudp sender's and receiver's loops) and the libudt peers'
(their /proc figures after their last line), each divided by the GB the receiver
got. The ratios print against libudt -> libudt.
"""
from __future__ import annotations

import argparse
import functools
import os
import resource
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .common import (OthersMeter, pool_idle_s, add_common_arguments, bench_pool, cpu_busy,
                           fmt_ratio, header, others_col, proc_cpu_s, ratio, run_benchmark, say,
                           target, target_row)
from .udt_peer import LibudtPeer, PeerUnavailable, build_libudt_peer
from .udt_relay import CRelay, build_relay
from .udt_tail import LAN_PATHS, PATHS, print_fair, print_tail, run_fair, run_tail

LOSSES = (0.0, 0.01, 0.02, 0.05)
QUICK_LOSSES = (0.0, 0.01, 0.05)
FULL_S, QUICK_S = 5.0, 2.0
CASES = {"libudt>libudt": "libudt -> libudt", "rtudp>libudt": "rtudp -> libudt",
         "libudt>rtudp": "libudt -> rtudp", "rtudp>rtudp": "rtudp -> rtudp"}
#: the issue's targets for rtudp's sender against libudt's (loss -> ratio at least)
TARGETS = {0.0: 1.0, 0.01: 10.0, 0.05: 20.0}
CHUNK = 4 << 20
#: rtudp's udt options: libudt's default buffer sizes (UDT_SNDBUF/UDT_RCVBUF 8192 packets)
UDT_OPTIONS = {"buffer_packets": 8192, "max_sockets": 4}
END_WAIT_S = 120.0


def _self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


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
    n, last = 0, None
    try:
        while True:
            got = len(udt4.recv(conn, 1 << 22))
            if got:
                n += got
                last = time.monotonic()
    except udt4.UDTException:
        pass
    into["bytes"], into["end"], into["last"] = n, time.monotonic(), last
    udt4.close(conn)


class _Case:
    """What one case runs and measures: the peers, the relay, the CPU they used."""

    def __init__(self, exe: Path, relay_exe: Path | None, worker_pids: list[int],
                 idle: Callable[[], float]) -> None:
        self.exe, self.relay_exe, self.worker_pids = exe, relay_exe, worker_pids
        self.peers: list[LibudtPeer] = []
        self.libudt_cpu: dict[int, float] = {}
        self.relay: CRelay | None = None
        self.relay_cpu = 0.0
        self.meter = OthersMeter(lambda: list(worker_pids), idle)
        self.workers0 = self._workers_cpu()
        self.self0 = _self_cpu_s()

    def _workers_cpu(self) -> float:
        return sum(proc_cpu_s(p) for p in self.worker_pids)

    def peer(self, *args: str) -> LibudtPeer:
        p = LibudtPeer(self.exe, *args)
        self.peers.append(p)
        return p

    def line(self, peer: LibudtPeer, timeout: float = 30.0) -> str:
        """The peer's next line; its CPU so far noted (it exits soon after its last)."""
        out = peer.line(timeout)
        self.libudt_cpu[peer.proc.pid] = proc_cpu_s(peer.proc.pid)
        return out

    def via_relay(self, port: int, loss: float) -> int:
        if not loss:
            return port
        self.relay = CRelay(("127.0.0.1", port), loss=loss, seed=int(loss * 1000) + 1,
                            exe=self.relay_exe)
        return self.relay.port

    def cpu(self) -> dict:
        """CPU seconds since the start: workers, this process, libudt peers, relay."""
        if self.relay is not None:
            self.relay_cpu = proc_cpu_s(self.relay.proc.pid)
        return {"worker_cpu_s": self._workers_cpu() - self.workers0,
                "python_cpu_s": _self_cpu_s() - self.self0,
                "libudt_cpu_s": sum(self.libudt_cpu.values()), "relay_cpu_s": self.relay_cpu}

    def close(self) -> dict:
        """Everything stopped; what the relay did."""
        for p in self.peers:
            p.stop()
        out: dict = {}
        if self.relay is not None:
            self.relay.close()
            st = self.relay.final or {}
            out = {"relay_dropped": self.relay.dropped, "relay_passed": self.relay.passed,
                   "relay_overflow": st.get("fwd_overflow", 0) + st.get("back_overflow", 0)}
        out["others_cpu"] = self.meter.others()
        return out


def _send_for(k: _Case, sender: str, port: int, seconds: float, block_file: Path,
              block: bytes, udt4: Any) -> None:
    """``sender`` ("libudt" or "rtudp") streams ``block`` to port for ``seconds``."""
    if sender == "libudt":
        client = k.peer("client", "stream", str(port), str(block_file), "0", str(seconds))
        k.line(client, seconds + END_WAIT_S)
    else:
        _rtudp_send(udt4, ("127.0.0.1", port), seconds, block)


def _libudt_receiver(k: _Case, sender: str, loss: float, seconds: float, block_file: Path,
                     block: bytes, udt4: Any) -> tuple[int, float, float]:
    server = k.peer("server", "stream", os.devnull, "times")
    port = k.via_relay(int(k.line(server).split()[1]), loss)
    t0 = time.monotonic()
    _send_for(k, sender, port, seconds, block_file, block, udt4)
    _, got, _first, last = k.line(server, END_WAIT_S).split()
    return int(got), t0, float(last)


def _rtudp_receiver(k: _Case, sender: str, loss: float, seconds: float, block_file: Path,
                    block: bytes, udt4: Any) -> tuple[int, float, float]:
    srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    try:
        udt4.bind(srv, "127.0.0.1", 0)
        udt4.listen(srv, 4)
        port = k.via_relay(udt4.getsockname(srv)[1], loss)
        into: dict = {}
        t = threading.Thread(target=_rtudp_receive, args=(udt4, srv, into), daemon=True)
        t.start()
        t0 = time.monotonic()
        _send_for(k, sender, port, seconds, block_file, block, udt4)
        t.join(END_WAIT_S)
    finally:
        udt4.close(srv)
    if "end" not in into:
        raise RuntimeError(f"{sender} -> rtudp at {loss:.0%}: the receiver did not see the end")
    return into["bytes"], t0, into["last"] or into["end"]


def run_case(case: str, loss: float, seconds: float, exe: Path, relay_exe: Path | None,
             block_file: Path, udt4: Any, worker_pids: list[int],
             idle: Callable[[], float]) -> dict:
    """One pair at one loss rate: goodput in Mb/s, CPU used, what the relay did."""
    sender, receiver = case.split(">")
    block = block_file.read_bytes()
    k = _Case(exe, relay_exe, worker_pids, idle)
    try:
        run = _libudt_receiver if receiver == "libudt" else _rtudp_receiver
        got, t0, last = run(k, sender, loss, seconds, block_file, block, udt4)
        dt = max(last - t0, 1e-6)
        out = {"mbps": got * 8 / dt / 1e6, "bytes": got, "seconds": dt, **k.cpu()}
    finally:
        closed = k.close()
    return {**out, **closed}


def benchmark(quick: bool, quiet: bool, tail: str = "yes", transfers: int | None = None,
              paths: str = "wan", fair: bool = True) -> dict:
    """Every pair at every loss rate, then the tail (``tail``: "yes", "no", "only";
    ``transfers`` per pair and path, None: the run's default; ``paths``: "wan",
    "lan" or "all") and, with the tail, the fairness run; the report."""
    import rtudp.udt.udt4 as udt4

    busy = header("udt", quick, quiet)
    seconds = QUICK_S if quick else FULL_S
    losses = QUICK_LOSSES if quick else LOSSES
    results: dict[str, dict[str, dict | None]] = {}
    failed: dict[str, str] = {}
    tail_report: dict | None = None
    fair_report: dict | None = None
    try:
        exe = build_libudt_peer()
        relay_exe = build_relay()
    except PeerUnavailable as e:
        return {"benchmark": "udt", "quick": quick, "busy_before": busy, "results": {},
                "failed": {"libudt": str(e)}, "targets": {}}
    with tempfile.TemporaryDirectory(prefix="rtudp-bench-udt-") as tmp, \
            bench_pool("udt", rt_priority=0) as (pool, warns):
        block_file = Path(tmp) / "block"
        block_file.write_bytes(os.urandom(CHUNK))
        udt4.startup(pool, **UDT_OPTIONS)
        worker_pids = [w["pid"] for w in pool.workers()]
        try:
            for loss in (losses if tail != "only" else ()):
                row: dict[str, dict | None] = dict.fromkeys(CASES)
                for case in CASES:
                    say(f"  {loss:.0%} loss: {CASES[case]} ...", quiet)
                    try:
                        row[case] = run_case(case, loss, seconds, exe, relay_exe, block_file,
                                             udt4, worker_pids, pool_idle_s(pool))
                    except (RuntimeError, OSError, AssertionError) as e:
                        failed[f"{loss:.0%}/{case}"] = str(e)
                results[f"{loss:.0%}"] = row
            udt4.cleanup()
            chosen = {"wan": PATHS, "lan": LAN_PATHS, "all": {**LAN_PATHS, **PATHS}}[paths]
            tail_report = None if tail == "no" else run_tail(
                udt4, pool, UDT_OPTIONS, exe, relay_exe, block_file, quick, transfers, quiet, say,
                chosen)
            if tail != "no" and fair:
                say("  fairness: 10 rtudp -> rtudp transfers through one bottleneck ...", quiet)
                fair_report = run_fair(udt4, pool, UDT_OPTIONS, relay_exe, quick)
        finally:
            udt4.cleanup()
    targets = {}
    for loss, want in TARGETS.items() if results else ():
        row = results.get(f"{loss:.0%}") or {}
        ours, theirs = (row.get("rtudp>libudt") or {}), (row.get("libudt>libudt") or {})
        r = ratio(ours.get("mbps"), theirs.get("mbps"))
        targets[f"{loss:.0%} loss: rtudp's sender / libudt's"] = target(r, want, True)
    return {"benchmark": "udt", "quick": quick, "seconds": seconds, "busy_before": busy,
            "busy_after": cpu_busy(), "pool_warnings": warns, "results": results,
            "failed": failed, "targets": targets, "tail": tail_report, "fair": fair_report}


def cpu_per_gb(e: dict | None) -> dict[str, float] | None:
    """CPU seconds per GB received of a case: rtudp workers, Python, libudt peers."""
    if not e or not e.get("bytes"):
        return None
    gb = e["bytes"] / 1e9
    return {"worker": e["worker_cpu_s"] / gb, "python": e["python_cpu_s"] / gb,
            "libudt": e["libudt_cpu_s"] / gb}


def _cpu_cell(case: str, c: dict[str, float] | None) -> str:
    if c is None:
        return f"{'-':>22}"
    parts = []
    if "rtudp" in case:
        parts.append(f"{c['worker']:.1f}+{c['python']:.1f}")
    if "libudt" in case:
        parts.append(f"{c['libudt']:.1f}")
    return f"{' | '.join(parts):>22}"


def print_report(r: dict) -> None:
    """The goodput and CPU tables, the targets, and the tail's table."""
    if r["results"]:
        _print_goodput(r)
    else:
        for case, why in r["failed"].items():
            print(f"  {case}: {why}")
    if r.get("tail"):
        print_tail(r["tail"])
    if r.get("fair"):
        print_fair(r["fair"])


def _print_goodput(r: dict) -> None:
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
    print("\nCPU s per GB received (rtudp: worker + Python | libudt peers); both ends of\n"
          "rtudp -> rtudp against both of libudt -> libudt; others: CPU of other processes")
    print(f"  {'loss':<6}" + "".join(f"{CASES[c]:>22}" for c in CASES)
          + f"{'rtudp/libudt':>14}{'others':>8}")
    for loss, row in r["results"].items():
        cpus = {case: cpu_per_gb(row.get(case)) for case in CASES}
        ours, theirs = cpus["rtudp>rtudp"], cpus["libudt>libudt"]
        rel = ratio(ours["worker"] + ours["python"] if ours else None,
                    theirs["libudt"] if theirs else None)
        others = max((e.get("others_cpu") or 0.0 for e in row.values() if e), default=None)
        print(f"  {loss:<6}" + "".join(_cpu_cell(case, cpus[case]) for case in CASES)
              + f"{fmt_ratio(rel):>14}{others_col({'others_cpu': others})}")
    for case, why in r["failed"].items():
        print(f"  {case}: {why}")
    if r["targets"]:
        print("\ntargets (issue 20):")
        for label, t in r["targets"].items():
            print(target_row(label, t, ">=", "x", lambda v: f"{v:.1f}"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench udt``."""
    add_common_arguments(parser, f"{QUICK_S:g} s a case at 0/1/5 %% loss instead of "
                                 f"{FULL_S:g} s at 0/1/2/5 %%; the tail: 2 MB transfers, 2 a "
                                 f"pair and path, instead of 16 MB, 9")
    parser.add_argument("--tail", choices=("yes", "no", "only"), default="yes",
                        help="the completion-time tail of many seeded transfers: after the "
                             "goodput (yes), not at all (no), or alone (only)")
    parser.add_argument("--transfers", type=_positive, default=None,
                        help="tail transfers per pair and path")
    parser.add_argument("--paths", choices=("wan", "lan", "all"), default="wan",
                        help="the tail's paths: 0/1 %% loss at 50 and 200 ms RTT and a "
                             "100 Mb/s bottleneck (wan), 0/1/5 %% without delay (lan), both")
    parser.add_argument("--fair", choices=("yes", "no"), default="yes",
                        help="after the tail, 10 rtudp -> rtudp transfers through one "
                             "100 Mb/s bottleneck: Jain's fairness index")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--transfers takes a count >= 1, not {text!r}")
    return n


def run(args: argparse.Namespace) -> int:
    """``rtudp bench udt``: 0 when every case ran (targets met or not)."""
    bench = functools.partial(benchmark, tail=args.tail, transfers=args.transfers,
                              paths=args.paths, fair=args.fair == "yes")
    return run_benchmark(args, bench, print_report)
