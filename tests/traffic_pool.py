"""A pool with traffic, run as a child process by the rtstat tests.

    python traffic_pool.py POOL [RATE_PPS]

Starts pool POOL (rt_priority 0: tests must not spin under SCHED_FIFO) with
channels ``rx`` (receive) and ``tx`` (connected to rx), keeps a reader attached
to ``rx``, sends RATE_PPS 100-byte datagrams per second on ``tx`` (deadlines
1 ms ahead), prints ``ready`` and then, for each line ``stats`` read on stdin,
one JSON line ``{"tx": tx.stats(), "rx": rx.stats()}``.  Stops cleanly on EOF,
SIGTERM or SIGINT.
"""
from __future__ import annotations

import json
import select
import sys
import time

import rtudp


def main() -> int:
    name = sys.argv[1]
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with rtudp.Pool(name, rt_priority=0) as pool:
        rx = pool.open_channel("rx", direction=1)
        tx = pool.open_channel("tx", remote=rx.local, direction=0)
        print("ready", flush=True)
        period = 1.0 / rate
        batch = max(1, rate // 100)
        nxt = time.monotonic()
        while True:
            now = time.monotonic_ns()
            tx.send_many([b"x" * 100] * batch, at_ns=now + 1_000_000)
            rx.recv_many(10_000, timeout=0)
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
