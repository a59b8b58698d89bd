"""rtudp benchmarks: ``rtudp bench <benchmark> [options]`` (or ``python -m rtudp.tools.bench``).

Each benchmark is a subcommand whose module exposes ``add_arguments(parser)``
and ``run(args) -> int``.  The ``rtudp bench`` CLI calls :func:`main` with the
same argument list.  Benchmarks print figures only: they never assert a speed.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module under rtudp.tools.bench, one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "ring": (
        "ring",
        "messages/s and round-trip latency between two processes: rtudp's ring "
        "vs multiprocessing.Queue, faster-fifo and a pure-Python shared-memory ring",
    ),
    "timing": (
        "timing",
        "send lateness at 50 kpps: an rtudp channel vs a plain Python time.sleep + sendto "
        "scheduler (and a busy-wait one)",
    ),
    "latency": (
        "latency",
        "UDP round trip on loopback: rtudp channels (Python -> worker -> worker -> Python) "
        "vs plain Python sockets and sockperf ping-pong",
    ),
    "aio": (
        "aio",
        "round trip through an asyncio (and uvloop) event loop with rtudp.aio vs the "
        "blocking recv, on the same channels",
    ),
    "rtp": (
        "rtp",
        "RTP generation, jitter buffer and G.711 from Python and C: rtudp.rtp vs librtpsynth "
        "(rtpsynth) and audioop",
    ),
    "rtpchan": (
        "rtpchan",
        "many RTP channels at 50 pps: librtpsynth's RtpServer vs rtudp's RtpServer on worker "
        "channels and worker-paced rtp channels (loss, CPU, arrival spacing)",
    ),
    "rtcp": (
        "rtcp",
        "RTCP on rtp channels: the RTT it reports vs a UDP ping-pong on loopback, and the "
        "worker CPU it costs (RTCP off vs on at 100 ms)",
    ),
    "netflux": (
        "netflux",
        "Netflux send-interval accuracy at 1 ms and 5 ms (receiver's kernel stamps): the "
        "worker's cycle vs Python sleep-driven senders",
    ),
    "netflux-standby": (
        "netflux_standby",
        "Netflux at 1 ms with and without its standby worker, quiet and with the serving "
        "worker stopped 1-20 ms at random: cycles missed per 10,000, sequence order on the wire",
    ),
    "throughput": (
        "throughput",
        "64-byte datagrams/s from one Python process: Channel.send_many vs a sendto loop, "
        "and the cost of one send call",
    ),
    "cpu": (
        "cpu",
        "a worker's CPU per packet at 50 kpps: TX only, RX only and full duplex (spin, "
        "bridged gaps, CPU beyond spin) vs a C spin+send loop",
    ),
    "udt": (
        "udt",
        "UDT stream goodput and CPU per GB at 0/1/2/5 %% loss (a C relay): libudt -> libudt, "
        "rtudp -> libudt, libudt -> rtudp and rtudp -> rtudp in the same run (Debian's "
        "libudt built on the fly)",
    ),
    "mechanisms": (
        "mechanisms",
        "each of the pacer's mechanisms switched off in turn against the default pool, "
        "at 50 kpps alone and beside a busy loop and at 200 pps: lateness and CPU",
    ),
    "placement": (
        "placement",
        "the default pool (a worker on every CPU) against the doctor's advice (the pool "
        "off the first CPU, callers on it): timed sends and round trips",
    ),
    "scale": (
        "scale",
        "N = 10 .. 4,000 channels (udp timed, paced rtp, rtp receive, Netflux) on the default "
        "pool vs the same streams in asyncio and a C sender: delivery, pacing at an observer, "
        "CPU per 1,000 packets, open time and memory per channel",
    ),
    "sendpath": (
        "sendpath",
        "CPU per datagram of a group due together: K x send(), K x sendmmsg(1) (the worker), "
        "sendmmsg(K) on one socket and io_uring, on K sockets or one, TX stamps off and on",
    ),
    "rtudp": (
        "rtudp_api",
        "the RtUDP compatibility API at 50 kpps, default pool, alone and with two CPU hogs: "
        "send lateness and loss vs a Python sleep+sendto scheduler",
    ),
}


def _load(name: str):
    """Import the module of benchmark `name` (lazily: only the one being run)."""
    module, _ = BENCHMARKS[name]
    return importlib.import_module(f"{__package__ or 'rtudp.tools.bench'}.{module}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subcommand per benchmark."""
    parser = argparse.ArgumentParser(
        prog="rtudp bench", description="rtudp benchmarks (figures only, never asserts)."
    )
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (_, help_text) in BENCHMARKS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        _load(name).add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark named in `argv` (default: sys.argv[1:]); returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(_load(args.benchmark).run(args))


if __name__ == "__main__":
    sys.exit(main())
