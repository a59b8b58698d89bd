"""A worker with spin budget 1 spins before every deadline: at SCHED_FIFO up to the CPU
cap (the kernel's RT throttle stops real-time threads at 95 %), the rest at
SCHED_OTHER, where the CPU still serves ordinary tasks."""
from __future__ import annotations

import multiprocessing
import os
import socket
import struct
import time

import pytest

from fake_worker import can_fifo

SEQ = struct.Struct("<Q")
GAP_NS = 20_000          # 50 kpps: a deadline every 20 µs, so the worker never parks
N = 50_000               # 1 s of deadlines: about 50 of the spin's 20 ms windows



def _count(cpu: int, seconds: float, out: multiprocessing.Queue) -> None:
    """An ordinary task pinned to the worker's CPU: how many loops it got to run."""
    os.sched_setaffinity(0, {cpu})
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    out.put(n)


def test_budget_1_spins_past_the_rt_cap_and_the_cpu_still_serves_others(request):
    if not can_fifo():
        pytest.skip("SCHED_FIFO needs root or CAP_SYS_NICE: without it there is no RT cap")
    cpu = max(os.sched_getaffinity(0))
    request.applymarker(pytest.mark.rtudp(cpus=[cpu], rt_priority=10, spin_budget=1.0))
    pool = request.getfixturevalue("rtudp_pool")
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: room for all of them
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10.0)
    ch = pool.open_channel("spin", local=("127.0.0.1", 0), remote=rx.getsockname(),
                           direction=0, capacity=N, max_datagram=64)
    ctx = multiprocessing.get_context("spawn")
    counts: multiprocessing.Queue = ctx.Queue()
    other = ctx.Process(target=_count, args=(cpu, 1.5, counts), daemon=True)
    try:
        before = pool.workers()[ch.worker]
        start = time.monotonic_ns() + 100_000_000
        for i in range(N):
            ch.send(SEQ.pack(i), at_ns=start + i * GAP_NS)
        other.start()
        got = [SEQ.unpack(rx.recv(64))[0] for _ in range(N)]
        assert got == list(range(N))  # everything, in deadline order
        ran = counts.get(timeout=30)
        other.join(10)
        time.sleep(0.3)  # the worker publishes its spin figures with its heartbeat
        after = pool.workers()[ch.worker]
    finally:
        if other.is_alive():
            other.kill()
        ch.close()
        rx.close()
    demotions = after["demotions"] - before["demotions"]
    spun_other = after["spin_other_ns"] - before["spin_other_ns"]
    print(f"\n{demotions} drops to SCHED_OTHER, {spun_other / 1e6:.1f} ms spun there, "
          f"{after['demote_preempted'] - before['demote_preempted']} cut short; "
          f"the pinned ordinary task ran {ran} loops")
    assert demotions > 0 and spun_other > 0
    assert after["spin_ns"] - before["spin_ns"] >= spun_other
    # the worker's CPU was not frozen: an ordinary task pinned there got to run
    assert ran > 0
