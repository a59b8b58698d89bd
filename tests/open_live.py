"""What opening channels costs the streams that already run on the same worker.

    python tests/open_live.py [N]

A pool with one worker (``cpus=[1]``) carries N (1,000) paced rtp streams (20 ms
ptime, RTCP off, capacity 64, to a sink that reads nothing), topped up by a client
thread as ``rtudp bench scale`` tops them up; after 1.5 s, N more channels are opened
one by one while the streams run.  It prints the time per ``open_channel`` and the
running streams' ``tx_late_sent`` (packets the worker sent over 100 µs late by its
own doing) during the opens and in a quiet window as long right after.  Run two
builds' venvs one after the other to set them side by side.

Not a test: a measurement for docs/measurements.md; it prints its figures.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time

import rtudp
from rtudp.tools.bench import scale_cases

PTIME_NS = 20_000_000
RUN_S = 9.0


def main(n: int) -> None:
    """Run ``n`` streams, open ``n`` more beside them, print what the streams lost."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    dest = sink.getsockname()
    with rtudp.Pool(f"openlive{os.getpid()}", cpus=[1]) as pool:
        chans = pool.open_channels([scale_cases._rtp_tx("s", i, PTIME_NS, dest)
                                    for i in range(n)])

        def late() -> int:
            return sum(int(ch.stats().get("tx_late_sent") or 0) for ch in chans)
        client = threading.Thread(target=scale_cases.drive_paced,
                                  args=(chans, PTIME_NS, int(RUN_S * 1e9 // PTIME_NS)),
                                  daemon=True)
        client.start()
        time.sleep(1.5)
        late0, t0 = late(), time.monotonic()
        more = [pool.open_channel(scale_cases._rtp_tx("m", i, PTIME_NS, dest))
                for i in range(n)]
        t1, late1 = time.monotonic(), late()
        time.sleep(0.2)
        late2, t2 = late(), time.monotonic()
        time.sleep(t1 - t0)
        late3, t3 = late(), time.monotonic()
        print(f"opening {n} while {n} stream: {(t1 - t0) / n * 1e3:.3f} ms a channel; "
              f"running streams late >100us (worker's doing): {late1 - late0} in the "
              f"{t1 - t0:.2f} s of opening, {late3 - late2} in a quiet {t3 - t2:.2f} s")
        client.join()
        for ch in more:
            ch.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
