"""What a move costs the channel moved: one channel sending on a 100 µs grid, moved
between two workers again and again.

    python tests/move_gap.py [--hog]

A two-worker pool (``cpus=[0, 1]``) carries one udp channel with 12,000 datagrams
queued, one due every 100 µs; it is moved to the other worker every 20 ms, 40 times,
while a thread reads every datagram.  ``--hog``: a Python thread of this process holds
the GIL 2 ms of every 4, as a busy program's own thread does.  It prints whether every
datagram arrived once and in order, the channel's ``tx_late_sent`` (over 100 µs late
by the worker's doing), its lateness p99 and max, and how long ``move_channel`` took.
Run two builds' venvs one after the other to set them side by side.

Not a test: a measurement for docs/measurements.md; it prints its figures.
"""
from __future__ import annotations

import os
import struct
import sys
import threading
import time

import rtudp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ports import loopback_sink, receive_up_to  # noqa: E402

TOTAL = 12_000
GAP_NS = 100_000
MOVES = 40
MOVE_EVERY_S = 0.02


def hog(stop: threading.Event) -> None:
    """Hold the GIL 2 ms of every 4 until ``stop``."""
    while not stop.is_set():
        t = time.perf_counter()
        while time.perf_counter() - t < 0.002:
            pass
        time.sleep(0.002)


def main(with_hog: bool) -> None:
    pool = rtudp.Pool(f"movegap{os.getpid()}", cpus=[0, 1])
    pool.start()
    stop = threading.Event()
    try:
        sink = loopback_sink(rcvbuf=8 << 20)
        ch = pool.open_channel("mover", remote=sink.getsockname(), direction="tx",
                               capacity=16384)
        at = time.monotonic_ns() + 50_000_000
        for i in range(TOTAL):
            ch.send(struct.pack("<I", i), at_ns=at + i * GAP_NS)
        if with_hog:
            threading.Thread(target=hog, args=(stop,), daemon=True).start()
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.extend(receive_up_to(sink, TOTAL)))
        reader.start()
        took = []
        for _ in range(MOVES):
            here = pool.channel_info("mover")["cpu"]
            t = time.monotonic_ns()
            pool.move_channel("mover", next(c for c in pool.cpus if c != here))
            took.append((time.monotonic_ns() - t) / 1e6)
            time.sleep(MOVE_EVERY_S)
        stop.set()
        reader.join()
        time.sleep(0.3)  # the last TX stamps
        st = ch.stats()
        in_order = [struct.unpack("<I", d)[0] for d in got] == list(range(TOTAL))
        took.sort()
        print(f"arrived {len(got)}/{TOTAL}, in order: {in_order}; late sent "
              f"{st['tx_late_sent']}, lateness p99 {st['tx_lateness_p99_ns'] / 1e3:.0f} µs, "
              f"max {st['tx_lateness_max_ns'] / 1e3:.0f} µs; move_channel median "
              f"{took[len(took) // 2]:.2f} ms, max {took[-1]:.2f} ms")
        ch.close()
        sink.close()
    finally:
        stop.set()
        pool.stop()


if __name__ == "__main__":
    main("--hog" in sys.argv[1:])
