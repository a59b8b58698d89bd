"""``rtudp bench rtpchan``: many RTP channels at 50 packets/s, librtpsynth's RtpServer
vs the same API on rtudp's worker channels, and rtudp's worker-paced rtp channels.

Each case opens N channels on loopback in a ring (channel i sends to channel i+1)
and sends 50 packets/s of 172 bytes (PCMU, 20 ms) on every channel for D seconds:

- ``rtpsynth``: rtpsynth.RtpServer (its C thread polls and sends every tick);
  Python calls send_pkt on every channel every 20 ms.
- ``rtudp RtpServer``: rtudp.rtp.RtpServer, same Python loop; the pool's workers send
  and receive, pkt_in runs on the dispatcher thread.
- ``rtudp paced``: rtp channels in paced mode: Python queues all frames up front and
  the workers send them one ptime apart; receivers read ordered frames.

Figures: packets delivered (and lost), CPU seconds of this Python process (all its
threads) and of the worker processes, per second of run; and for the receivers,
the spread of arrival intervals (kernel receive times; ideal 20 ms) where the API
gives receive times (rtpsynth gives its poll time, which is what its callers see).
Figures only: nothing is asserted.
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import psutil

from .common import add_common_arguments, percentiles_us, pool_prefix, run_benchmark

PAYLOAD = bytes(12) + b"\xff" * 160
PPS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench rtpchan``."""
    add_common_arguments(parser, "50 channels, 1 s per case")
    parser.add_argument("--channels", type=int, default=200, help="channels per case (200)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per case (3)")


def _children_cpu() -> float:
    total = 0.0
    for p in psutil.Process().children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _intervals(times: list[list[int]]) -> dict[str, float | None]:
    """Arrival interval spread over all channels: p50/p99 of |interval - 20 ms| in us."""
    p = percentiles_us([abs((b - a) - 20_000_000) for ts in times for a, b in zip(ts, ts[1:])],
                       (50, 99))
    return {"interval_dev_p50_us": p["p50"], "interval_dev_p99_us": p["p99"]}


def _server_case(make: Callable[[], Any], n: int, seconds: float, queue_full: type) -> dict:
    """N channels of one RtpServer implementation, Python sending every 20 ms."""
    srv = make()
    times: list[list[int]] = [[] for _ in range(n)]
    try:
        chans = [srv.create_channel(pkt_in=(lambda i: lambda _p, _a, t: times[i].append(t))(i),
                                    bind_host="127.0.0.1", bind_port=0) for i in range(n)]
        for i, ch in enumerate(chans):
            ch.set_target(*chans[(i + 1) % n].local_addr)
        time.sleep(0.1)
        cpu0, kids0, t0 = time.process_time(), _children_cpu(), time.monotonic()
        sent = full = 0
        rounds = int(seconds * PPS)
        for r in range(rounds):
            for ch in chans:
                try:
                    ch.send_pkt(PAYLOAD)
                    sent += 1
                except queue_full:
                    full += 1
            delay = t0 + (r + 1) / PPS - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and sum(map(len, times)) < sent:
            time.sleep(0.01)
        wall = time.monotonic() - t0
        cpu, kids = time.process_time() - cpu0, _children_cpu() - kids0
        for ch in chans:
            ch.close()
    finally:
        srv.shutdown()
    got = sum(map(len, times))
    return {"sent": sent, "queue_full": full, "delivered": got, "lost": sent - got,
            "python_cpu_per_s": cpu / wall, "worker_cpu_per_s": kids / wall, **_intervals(times)}


def _paced_case(pool: Any, n: int, seconds: float) -> dict:
    """N worker-paced rtp channels: frames queued once, the workers keep the time."""
    frames = int(seconds * PPS)
    chans = [pool.open_channel(f"bp{i}", kind="rtp", capacity=max(64, frames),
                               max_datagram=256, options={"latency_ms": 40})
             for i in range(n)]
    try:
        for i, ch in enumerate(chans):
            ch.set_target(*chans[(i + 1) % n].local)
        cpu0, kids0, t0 = time.process_time(), _children_cpu(), time.monotonic()
        for ch in chans:
            ch.send_many([PAYLOAD[12:]] * frames)
        times: list[list[int]] = [[] for _ in range(n)]
        erasures = 0
        deadline = t0 + seconds + 3
        while time.monotonic() < deadline and sum(map(len, times)) < n * frames:
            time.sleep(0.05)
            for i, ch in enumerate(chans):
                for f in ch.recv_many(1024, timeout=0):
                    if f.erasure:
                        erasures += 1
                    else:
                        times[i].append(f.rx_ns)
        wall = time.monotonic() - t0
        cpu, kids = time.process_time() - cpu0, _children_cpu() - kids0
    finally:
        for ch in chans:
            ch.close()
    got = sum(map(len, times))
    return {"sent": n * frames, "queue_full": 0, "delivered": got, "lost": n * frames - got,
            "erasures": erasures, "python_cpu_per_s": cpu / wall,
            "worker_cpu_per_s": kids / wall, **_intervals(times)}


def measure(n: int, seconds: float) -> dict[str, Any]:
    """Every case that can run here; the ones that cannot say why in ``skipped``."""
    import rtudp
    from rtudp.rtp import RtpQueueFullError
    from rtudp.rtp.server import RtpServer
    cases: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    try:
        from rtpsynth.RtpServer import RtpQueueFullError as TheirFull
        from rtpsynth.RtpServer import RtpServer as TheirServer
    except ImportError as exc:
        skipped["rtpsynth"] = f"rtpsynth is not installed ({exc}): pip install 'rtudp[bench]'"
    else:
        cases["rtpsynth"] = _server_case(lambda: TheirServer(tick_hz=200), n, seconds, TheirFull)
    with rtudp.Pool(f"{pool_prefix()}rtpchan") as pool:
        cases["rtudp_server"] = _server_case(lambda: RtpServer(tick_hz=200, pool=pool), n,
                                             seconds, RtpQueueFullError)
        cases["rtudp_paced"] = _paced_case(pool, n, seconds)
    return {"channels": n, "seconds": seconds, "pps_per_channel": PPS, "cases": cases,
            "skipped": skipped}


def print_report(report: dict[str, Any]) -> None:
    """The table: each case's packets, CPU and arrival spacing; CPU against rtpsynth's."""
    n, seconds = report["channels"], report["seconds"]
    print(f"rtudp bench rtpchan: {n} channels x {PPS} pps, {seconds:g} s per case")
    print(f"{'case':16} {'sent':>8} {'lost':>6} {'qfull':>6} {'py CPU/s':>9} {'wk CPU/s':>9} "
          f"{'dev p50':>9} {'dev p99':>9}")
    for name, c in report["cases"].items():
        def us(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f} us"
        print(f"{name:16} {c['sent']:>8} {c['lost']:>6} {c['queue_full']:>6} "
              f"{c['python_cpu_per_s']:>9.3f} {c['worker_cpu_per_s']:>9.3f} "
              f"{us(c['interval_dev_p50_us']):>9} {us(c['interval_dev_p99_us']):>9}")
    cs = report["cases"]
    if "rtpsynth" in cs:
        theirs = cs["rtpsynth"]["python_cpu_per_s"]
        for name in ("rtudp_server", "rtudp_paced"):
            ours = cs[name]["python_cpu_per_s"] + cs[name]["worker_cpu_per_s"]
            print(f"total CPU {name} / rtpsynth: {ours / theirs:.2f}x" if theirs else "")
    for why in report["skipped"].values():
        print(f"skipped: {why}")
    print("dev = |arrival interval - 20 ms| at the receiver (rtpsynth: its poll time)")


def run(args: argparse.Namespace) -> int:
    """Measure and print (a table, or JSON with --json); 0 unless something was left
    behind (a missing rtpsynth is a skipped case, not a failure)."""
    return run_benchmark(args, lambda quick, _quiet: measure(
        *((50, 1.0) if quick else (args.channels, args.seconds))), print_report)
