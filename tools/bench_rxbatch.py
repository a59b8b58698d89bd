"""``rtudp bench throughput``'s receive side: how fast one Python process takes 64-byte
datagrams out of a channel, ``Channel.recv_batch`` (numpy columns) next to
``Channel.recv_many`` (a Packet per datagram), in the same run.

Each round fills the receiving channel's RX ring first (a sending channel queues
FILL packets with ``send_many``; the worker receives them and publishes each to the
ring; the round waits until the worker has counted them all, or dropped some), then
times this process draining the ring with one of the two calls (``timeout=0``, BATCH
a call) until it is empty.  So the figure is the reader's own rate, not the network's:
packets read / seconds spent reading.  Rounds alternate between the two calls;
the best and the median of ROUNDS each are reported.

Target (issue 21): recv_batch >= 5 M packets/s.  Reported PASS/MISS, never asserted.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from rtudp.shmring.errors import BackPressureError

from .bench_common import LOOPBACK, MSG_SIZE

FILL_FULL, FILL_QUICK = 200_000, 50_000
ROUNDS_FULL, ROUNDS_QUICK = 5, 2
BATCH = 4096
SEND_CHUNK = 1000
FILL_TIMEOUT_S = 10.0
TARGET_PPS = 5e6

CASES = {
    "recv_batch": ("Channel.recv_batch", f"{BATCH} a call -> numpy columns, no object a packet"),
    "recv_many": ("Channel.recv_many", f"{BATCH} a call -> list of Packet tuples"),
}


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


def measure(pool: Any, cpus: list[int], quick: bool) -> dict:
    """{case: entry | None, "failed": {case: why}} for both cases of CASES."""
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
        try:
            drains = {"recv_batch": sink.recv_batch, "recv_many": sink.recv_many}
            rates: dict[str, list[float]] = {k: [] for k in CASES}
            counts = dict.fromkeys(CASES, 0)
            for _ in range(rounds):
                for key, take in drains.items():
                    if key in failed:
                        continue
                    _fill(src, sink, fill)
                    n, ns = _drain(take)
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
            src.close()
    finally:
        sink.close()
    out["failed"] = failed
    return out


def print_report(r: dict, print_table: Callable[..., None], fmt_ratio: Callable[[Any], str],
                 ratio: Callable[[Any, Any], Any]) -> None:
    """The table of both cases and the ratio (print_table etc. from bench_common)."""
    many = (r.get("recv_many") or {}).get("pps_median")
    rows = {k: (dict(e, vs=ratio(e["pps_median"], many)) if e else None)
            for k, e in r.items() if k in CASES}
    print_table("receive, one Python process: 64-byte datagrams/s taken from a filled RX "
                "ring (reader's own rate)",
                f"{'median/s':>10} {'best/s':>10} {'vs many':>8} {'packets':>9}   how", CASES,
                rows,
                lambda e, how: (f"{e['pps_median'] / 1e6:8.2f} M {e['pps_best'] / 1e6:8.2f} M "
                                f"{fmt_ratio(e['vs']):>8} {e['packets']:>9}   {how}"),
                lambda key: r.get("failed", {}).get(key, "failed"), 22)
