"""What opening channels one by one costs: the caller's wait and the worker's CPU.

    python tests/open_cost.py [N]

A pool with one worker (``cpus=[1]``) opens N (1,000) paced rtp channels one at a time
(capacity 64, 20 ms ptime, RTCP off, sending to the discard port), as a program that
opens them as calls come would, then closes them.  It prints the wall time per
``open_channel`` and the worst one, the worker process's CPU per channel (its threads'
user + system time, before and after), and its locked memory per channel (VmLck).
Run two builds' venvs one after the other to set them side by side.

Not a test: a measurement for docs/measurements.md; it prints its figures.
"""
from __future__ import annotations

import os
import sys
import time

import psutil

from rtudp import Pool
from rtudp.tools.bench.scale_cases import locked_bytes


def main(n: int) -> None:
    """Open ``n`` channels one by one and print what it cost."""
    with Pool(f"opencost{os.getpid()}", cpus=[1]) as pool:
        spawned = pool._watcher.workers[0].spawned  # the one worker's process
        assert spawned is not None
        worker = psutil.Process(spawned.proc.pid)

        def cpu_s() -> float:
            return sum(t.user_time + t.system_time for t in worker.threads())
        chans = []
        cpu0, lck0, worst = cpu_s(), locked_bytes([worker.pid]), 0.0
        t0 = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            chans.append(pool.open_channel(
                f"s{i}", kind="rtp", local=("127.0.0.1", 0), remote=("127.0.0.1", 9),
                direction="tx", capacity=64,
                options={"tx_mode": "paced", "ptime_ms": 20, "rtcp": "off"}))
            worst = max(worst, time.perf_counter() - t)
        wall = time.perf_counter() - t0
        locked = (locked_bytes([worker.pid]) - lck0) / n / 1024
        print(f"{n} rtp channels one by one: open {wall / n * 1e3:.3f} ms a channel (worst "
              f"{worst * 1e3:.1f} ms), worker CPU {(cpu_s() - cpu0) / n * 1e3:.3f} ms a "
              f"channel, locked {locked:.0f} KiB a channel")
        for ch in chans:
            ch.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
