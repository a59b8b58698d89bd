"""A pool with traffic, run as a child process by the rtstat tests.

    python traffic_pool.py POOL [RATE_PPS [kinds]]

Starts pool POOL (rt_priority 0: tests must not spin under SCHED_FIFO) with
channels ``rx`` (receive) and ``tx`` (connected to rx), keeps a reader attached
to ``rx``, sends RATE_PPS 100-byte datagrams per second on ``tx`` (deadlines
1 ms ahead); with ``kinds``, also a netflux pair (``nf_a``, ``nf_b``: a 2 ms
cycle) and an rtp pair (``rtp_tx`` pacing 20 ms frames to ``rtp_rx``), so that
every kind's table has rows.  Prints ``ready`` and then, for each line ``stats`` read on stdin,
one JSON line ``{"tx": tx.stats(), "rx": rx.stats()}``.  Stops cleanly on EOF,
SIGTERM or SIGINT.
"""
from __future__ import annotations

import json
import select
import sys
import time

import rtudp


def _other_kinds(pool: rtudp.Pool) -> tuple[object, object, float]:
    """The netflux and rtp pairs; (rtp_tx, rtp_rx, frames due before now)."""
    opts = {"send_interval": 0.002, "watch_interval": 0.1, "send_size": 4, "recv_size": 4}
    a = pool.open_channel("nf_a", local=("127.0.0.1", 0), kind="netflux", options=opts)
    b = pool.open_channel("nf_b", local=("127.0.0.1", 0), remote=a.local, kind="netflux",
                          options=opts)
    local = a.local
    a.close()  # again, now that b's port is known
    pool.open_channel("nf_a", local=local, remote=b.local, kind="netflux", options=opts)
    rtp_rx = pool.open_channel("rtp_rx", kind="rtp", direction=1, options={"latency_ms": 20})
    rtp_tx = pool.open_channel("rtp_tx", remote=rtp_rx.local, direction=0, kind="rtp",
                               options={"ptime_ms": 20})
    return rtp_tx, rtp_rx, time.monotonic() * 50


def main() -> int:
    name = sys.argv[1]
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with rtudp.Pool(name, rt_priority=0) as pool:
        rx = pool.open_channel("rx", direction=1)
        tx = pool.open_channel("tx", remote=rx.local, direction=0)
        rtp = _other_kinds(pool) if sys.argv[3:4] == ["kinds"] else None
        print("ready", flush=True)
        period = 1.0 / rate
        batch = max(1, rate // 100)
        nxt = time.monotonic()
        while True:
            now = time.monotonic_ns()
            tx.send_many([b"x" * 100] * batch, at_ns=now + 1_000_000)
            rx.recv_many(10_000, timeout=0)
            if rtp is not None:
                rtp_tx, rtp_rx, t0 = rtp
                if rtp_tx.stats()["tx_requested"] < time.monotonic() * 50 - t0:
                    rtp_tx.send(b"\x55" * 160)  # one frame per 20 ms, paced by the worker
                rtp_rx.recv_many(100, timeout=0)
            nxt += period * batch
            wait = max(0.0, nxt - time.monotonic())
            ready, _, _ = select.select([sys.stdin], [], [], wait)
            if ready:
                line = sys.stdin.readline()
                if not line:
                    return 0
                if line.strip() == "stats":
                    print(json.dumps({"tx": tx.stats(), "rx": rx.stats()}), flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
