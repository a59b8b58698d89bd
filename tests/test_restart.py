"""A worker killed with packets queued: restarted, nothing queued lost, nothing sent
twice beyond the one in flight (records sent out of ring order are marked SENT)."""
from __future__ import annotations

import os
import signal
import socket
import time

import pytest

import rtudp


@pytest.mark.rtudp(rt_priority=0)
def test_kill_worker_with_queued_packets_loses_and_repeats_nothing(
        rtudp_pool: rtudp.Pool) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.05)
    n = 400
    try:
        pool = rtudp_pool
        cpu = pool.cpus[0]
        tx = pool.open_channel("tx", remote=sink.getsockname(), direction=0, capacity=n,
                               max_datagram=64, cpu=cpu)
        start = time.monotonic_ns() + 50_000_000
        # deadlines descend in ring order, so the worker sends from the ring's end and
        # cannot free space until the very last one leaves: all sent ones stay behind
        # head, marked SENT
        for i in reversed(range(n)):
            tx.send(i.to_bytes(4, "big"), start + i * 1_000_000)
        got: list[int] = []
        deadline = time.monotonic() + 0.25
        while time.monotonic() < deadline:
            try:
                got.append(int.from_bytes(sink.recv(64), "big"))
            except socket.timeout:
                pass
        assert got, "nothing left before the kill: the test proves nothing"
        old = pool.workers()[[w["cpu"] for w in pool.workers()].index(cpu)]
        os.kill(old["pid"], signal.SIGKILL)
        until = time.monotonic() + 15
        quiet_until = None  # after the last one arrives, listen a little longer for repeats
        while time.monotonic() < until and (quiet_until is None
                                            or time.monotonic() < quiet_until):
            try:
                got.append(int.from_bytes(sink.recv(64), "big"))
            except socket.timeout:
                pass
            if quiet_until is None and len(set(got)) == n:
                quiet_until = time.monotonic() + 0.2
        restarted = [w for w in pool.workers() if w["cpu"] == cpu][0]
        assert restarted["restarts"] == 1 and restarted["pid"] != old["pid"]
    finally:
        sink.close()
    assert set(got) == set(range(n)), f"lost: {sorted(set(range(n)) - set(got))[:20]}"
    dups = len(got) - n
    assert dups <= 1, f"{dups} packets were sent twice (at most the one in flight may be)"
