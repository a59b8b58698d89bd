"""``rtudp bench rtcp``: what RTCP reports and what it costs, on loopback.

- RTT: N rtp channels in pairs send 50 pps to each other with RTCP on (port mode,
  ``--interval-ms``); each channel's ``rtcp_rtt_ns`` (RFC 3550 LSR/DLSR, 1/65536 s
  resolution) is sampled once a report came, against the loopback RTT measured
  another way in the same run: a plain Python UDP ping-pong (send, echo, receive).
- CPU: the same channels with RTCP off, then on at 100 ms: the worker processes' CPU
  seconds per second of run, and the difference per report sent.

Figures only: nothing is asserted.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import time
from typing import Any

from .common import add_common_arguments, pool_prefix, run_benchmark
from .rtpchan import _children_cpu

PPS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench rtcp``."""
    add_common_arguments(parser, "4 channels, 2 s per case")
    parser.add_argument("--channels", type=int, default=20, help="channels per case (20)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per case (5)")
    parser.add_argument("--interval-ms", type=int, default=100,
                        help="RTCP interval of the RTCP case (100, the least)")


def udp_ping_ns(n: int = 2000) -> list[int]:
    """Round trips of a Python UDP ping-pong on loopback (a thread echoes)."""
    import threading
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    b.settimeout(5)
    a.settimeout(5)

    def echo() -> None:
        for _ in range(n):
            data, src = b.recvfrom(64)
            b.sendto(data, src)
    t = threading.Thread(target=echo)
    t.start()
    out = []
    try:
        for _ in range(n):
            t0 = time.monotonic_ns()
            a.sendto(b"x" * 32, b.getsockname())
            a.recv(64)
            out.append(time.monotonic_ns() - t0)
    finally:
        t.join()
        a.close()
        b.close()
    return out


def _case(pool: Any, n: int, seconds: float, rtcp: str, interval_ms: int) -> dict[str, Any]:
    frames = int(seconds * PPS)
    chans = [pool.open_channel(f"rc{rtcp}{i}", kind="rtp", capacity=max(64, frames),
                               max_datagram=256, local=("127.0.0.1", 0),
                               options={"latency_ms": 40, "rtcp": rtcp,
                                        "rtcp_interval_ms": interval_ms})
             for i in range(n)]
    try:
        for i, ch in enumerate(chans):
            ch.set_target(*chans[i ^ 1].local)
        kids0, t0 = _children_cpu(), time.monotonic()
        for ch in chans:
            ch.send_many([b"\xff" * 160] * frames)
        rtts: list[int] = []
        while time.monotonic() < t0 + seconds:
            time.sleep(0.05)
            for ch in chans:
                ch.recv_many(1024, timeout=0)
                if rtcp != "off":
                    r = ch.rtcp_stats()["rtcp_rtt_ns"]
                    if r >= 0:
                        rtts.append(r)
        wall = time.monotonic() - t0
        kids = _children_cpu() - kids0
        reports = sum(ch.rtcp_stats()["rtcp_sr_sent"] + ch.rtcp_stats()["rtcp_rr_sent"]
                      for ch in chans)
    finally:
        for ch in chans:
            ch.close()
    return {"worker_cpu_per_s": kids / wall, "reports": reports, "rtt_ns": rtts,
            "wall_s": wall}


def measure(n: int, seconds: float, interval_ms: int) -> dict[str, Any]:
    """RTT from RTCP and from a UDP ping-pong; worker CPU with RTCP off and on."""
    import rtudp
    n += n % 2
    ping = udp_ping_ns()
    with rtudp.Pool(f"{pool_prefix()}rtcp") as pool:
        off = _case(pool, n, seconds, "off", interval_ms)
        on = _case(pool, n, seconds, "port", interval_ms)
    rtt = on.pop("rtt_ns")
    off.pop("rtt_ns")
    extra = (on["worker_cpu_per_s"] - off["worker_cpu_per_s"]) * on["wall_s"]
    return {"channels": n, "seconds": seconds, "interval_ms": interval_ms,
            "ping_us": {"p50": statistics.median(ping) / 1e3,
                        "min": min(ping) / 1e3},
            "rtcp_rtt_us": ({"p50": statistics.median(rtt) / 1e3, "min": min(rtt) / 1e3,
                             "max": max(rtt) / 1e3, "samples": len(rtt)} if rtt else None),
            "off": off, "on": on,
            "cpu_us_per_report": extra / on["reports"] * 1e6 if on["reports"] else None}


def print_report(r: dict[str, Any]) -> None:
    """The figures as a few lines."""
    print(f"rtudp bench rtcp: {r['channels']} rtp channels x {PPS} pps, {r['seconds']:g} s per "
          f"case, RTCP every {r['interval_ms']} ms (randomised)")
    p = r["ping_us"]
    print(f"loopback RTT, Python UDP ping-pong: p50 {p['p50']:.1f} us, min {p['min']:.1f} us")
    q = r["rtcp_rtt_us"]
    if q:
        print(f"RTT reported by RTCP (LSR/DLSR, 15.3 us steps): p50 {q['p50']:.1f} us, "
              f"min {q['min']:.1f} us, max {q['max']:.1f} us ({q['samples']} samples)")
    else:
        print("RTT reported by RTCP: none came")
    print(f"worker CPU/s: RTCP off {r['off']['worker_cpu_per_s']:.4f}, on "
          f"{r['on']['worker_cpu_per_s']:.4f} ({r['on']['reports']} reports sent)")
    if r["cpu_us_per_report"] is not None:
        print(f"worker CPU per report (on - off): {r['cpu_us_per_report']:.1f} us")


def run(args: argparse.Namespace) -> int:
    """Measure and print (or JSON with --json)."""
    return run_benchmark(args, lambda quick, _quiet: measure(
        *((4, 2.0) if quick else (args.channels, args.seconds)), args.interval_ms), print_report)
