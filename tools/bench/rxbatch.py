"""``rtudp bench throughput``'s receive side: how fast one Python process takes 64-byte
datagrams out of a channel, next to plain Python and C reading a socket, in the same run.

Channel cases: each round fills the receiving channel's RX ring first (a sending channel
queues FILL packets with ``send_many``; the worker receives them and publishes each to
the ring; the round waits until the worker has counted them all, or dropped some), then
times this process draining the ring (``timeout=0``) until it is empty:
``Channel.recv_batch`` (numpy columns, BATCH a call), ``Channel.recv_many`` (a Packet per
datagram, BATCH a call) and ``Channel.recv`` (one call a datagram).

Socket cases, the peers: each round fills a plain UDP socket (a big receive buffer,
SOCKET_FILL datagrams sent to it from this process), then times draining it: a plain
Python loop of ``socket.recv`` (no recvmmsg in Python's socket module) and a C loop of
``recvmmsg``, 64 a call (csrc/bench/recv_bench.c).

So each figure is the reader's own rate, not the network's: packets read / seconds
spent reading.  Rounds alternate between the cases; the best and the median of ROUNDS
each are reported.

Targets (issues 21, 43): recv_batch >= 5 M packets/s; ``recv`` per call against the
plain Python loop.  Reported PASS/MISS, never asserted.
"""
from __future__ import annotations

import os
import socket
import statistics
import time
from typing import Any, Callable

from rtudp.shmring.errors import BackPressureError

from .common import LOOPBACK, MSG_SIZE

FILL_FULL, FILL_QUICK = 200_000, 50_000
ROUNDS_FULL, ROUNDS_QUICK = 5, 2
BATCH = 4096
SEND_CHUNK = 1000
FILL_TIMEOUT_S = 10.0
TARGET_PPS = 5e6

SOCKET_FILL = 20_000
SOCKET_RCVBUF = 64 << 20

CASES = {
    "recv_batch": ("Channel.recv_batch", f"{BATCH} a call -> numpy columns, no object a packet"),
    "recv_many": ("Channel.recv_many", f"{BATCH} a call -> list of Packet tuples"),
    "recv": ("Channel.recv", "one call a datagram -> a Packet"),
    "python_socket": ("python socket.recv", "plain socket, one recv a datagram (the "
                                            "module has no recvmmsg)"),
    "c_recvmmsg": ("C recvmmsg", "plain socket, recvmmsg 64 a call, payloads copied "
                                 "(csrc/bench/recv_bench.c)"),
}
#: the channel cases; the rest read a plain socket
CHANNEL_CASES = ("recv_batch", "recv_many", "recv")


def _fill(src: Any, sink: Any, n: int) -> int:
    """Queue n datagrams on src and wait until sink's worker published them (or the
    kernel dropped some); returns how many it received."""
    start = sink.stats()["rx_packets"]
    msg = [bytes(range(MSG_SIZE))] * SEND_CHUNK
    left = n
    while left:
        chunk = msg[:min(left, SEND_CHUNK)]
        try:
            left -= src.send_many(chunk)
        except BackPressureError as exc:
            left -= exc.sent
            time.sleep(0.0005)
    end = time.monotonic() + FILL_TIMEOUT_S
    last, still = -1, 0
    while time.monotonic() < end:
        got = sink.stats()["rx_packets"] - start
        if got >= n:
            break
        still = still + 1 if got == last else 0
        if still > 100:  # nothing new for 100 ms: the rest was dropped
            break
        last = got
        time.sleep(0.001)
    return sink.stats()["rx_packets"] - start


def _drain(take: Callable[[int, float], Any]) -> tuple[int, int]:
    """Read with take(BATCH, 0) until it gives nothing: (packets, ns spent)."""
    n = 0
    clock = time.perf_counter_ns
    t0 = clock()
    while True:
        got = len(take(BATCH, 0))
        if not got:
            break
        n += got
    return n, clock() - t0


def _recv_each(ch: Any) -> Callable[[int, float], list[Any]]:
    """recv() one call a datagram, as _drain's take: up to n, [] once the ring is empty."""
    recv = ch.recv

    def take(n: int, _timeout: float) -> list[Any]:
        got = []
        try:
            for _ in range(n):
                got.append(recv(0))
        except TimeoutError:
            pass
        return got
    return take


class SocketPeer:
    """A plain UDP socket with a big receive buffer, and a socket that fills it."""

    def __init__(self) -> None:
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.rx.setsockopt(socket.SOL_SOCKET, 33, SOCKET_RCVBUF)  # SO_RCVBUFFORCE
        except OSError:
            self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_RCVBUF)
        self.rx.bind((LOOPBACK, 0))
        self.rx.setblocking(False)
        self.tx.connect(self.rx.getsockname())

    def fill(self, n: int) -> None:
        msg, send = bytes(range(MSG_SIZE)), self.tx.send
        for _ in range(n):
            send(msg)

    def python_drain(self) -> tuple[int, int]:
        recv, n = self.rx.recv, 0
        clock = time.perf_counter_ns
        t0 = clock()
        try:
            while True:
                recv(2048)
                n += 1
        except BlockingIOError:
            pass
        return n, clock() - t0

    def c_drain(self) -> tuple[int, int]:
        from rtudp.tools.bench._native import lib

        clock = time.perf_counter_ns
        t0 = clock()
        n = lib.rtudp_bench_recvmmsg(self.rx.fileno(), 1 << 40, 2048)
        took = clock() - t0
        if n < 0:
            raise OSError(-n, os.strerror(-n))
        return n, took

    def close(self) -> None:
        self.rx.close()
        self.tx.close()


def measure(pool: Any, cpus: list[int], quick: bool) -> dict:
    """{case: entry | None, "failed": {case: why}} for every case of CASES."""
    out: dict[str, Any] = dict.fromkeys(CASES)
    failed: dict[str, str] = {}
    try:
        import numpy  # noqa: F401
    except ImportError:
        failed["recv_batch"] = "skipped: numpy is not installed (pip install 'rtudp[numpy]')"
    fill = FILL_QUICK if quick else FILL_FULL
    rounds = ROUNDS_QUICK if quick else ROUNDS_FULL
    sink = pool.open_channel("rxbatch_sink", local=(LOOPBACK, 0), direction=1,
                             capacity=fill, max_datagram=MSG_SIZE, cpu=cpus[-1])
    try:
        src = pool.open_channel("rxbatch_src", local=(LOOPBACK, 0), remote=sink.local,
                                direction=0, capacity=1 << 16, max_datagram=MSG_SIZE,
                                cpu=cpus[0])
        peer = SocketPeer()
        try:
            drains: dict[str, Callable[[], tuple[int, int]]] = {
                "recv_batch": lambda: _drain(sink.recv_batch),
                "recv_many": lambda: _drain(sink.recv_many),
                "recv": lambda: _drain(_recv_each(sink)),
                "python_socket": peer.python_drain,
                "c_recvmmsg": peer.c_drain,
            }
            rates: dict[str, list[float]] = {k: [] for k in CASES}
            counts = dict.fromkeys(CASES, 0)
            for _ in range(rounds):
                for key, drain in drains.items():
                    if key in failed:
                        continue
                    if key in CHANNEL_CASES:
                        _fill(src, sink, fill)
                    else:
                        peer.fill(min(fill, SOCKET_FILL))
                    try:
                        n, ns = drain()
                    except OSError as exc:
                        failed[key] = f"failed: {exc}"
                        continue
                    if n and ns:
                        rates[key].append(n / (ns / 1e9))
                        counts[key] += n
            for key, rs in rates.items():
                if rs:
                    out[key] = {"pps_best": max(rs), "pps_median": statistics.median(rs),
                                "packets": counts[key], "rounds": len(rs)}
                elif key not in failed:
                    failed[key] = "failed: nothing received"
        finally:
            peer.close()
            src.close()
    finally:
        sink.close()
    out["failed"] = failed
    return out


def print_report(r: dict, print_table: Callable[..., None], fmt_ratio: Callable[[Any], str],
                 ratio: Callable[[Any, Any], Any]) -> None:
    """The table of every case and its ratios (print_table etc. from common.py)."""
    py = (r.get("python_socket") or {}).get("pps_median")
    c = (r.get("c_recvmmsg") or {}).get("pps_median")
    rows = {k: (dict(e, vs_py=ratio(e["pps_median"], py), vs_c=ratio(e["pps_median"], c))
                if e else None)
            for k, e in r.items() if k in CASES}
    print_table("receive, one Python process: 64-byte datagrams/s taken from a filled RX "
                "ring or socket (reader's own rate)",
                f"{'median/s':>10} {'best/s':>10} {'vs py':>7} {'vs C':>7} {'packets':>9}   how",
                CASES, rows,
                lambda e, how: (f"{e['pps_median'] / 1e6:8.2f} M {e['pps_best'] / 1e6:8.2f} M "
                                f"{fmt_ratio(e['vs_py']):>7} {fmt_ratio(e['vs_c']):>7} "
                                f"{e['packets']:>9}   {how}"),
                lambda key: r.get("failed", {}).get(key, "failed"), 22)
    print("  vs py / vs C: median rate divided by the plain Python loop's / the C recvmmsg "
          "loop's (> 1: faster)")
