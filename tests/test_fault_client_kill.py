"""Fault: a client SIGKILLed between claim and commit on a channel's TX ring.

The other producers keep going: what they queued behind the dead claim waits at
most the worker's unblock timeout (1 s) and the tick's sweep (each channel once a
second), is then sent, none of it lost; the dead
claim becomes padding and is counted (``tx_unblocked_claims`` in ``stats()``).
"""
from __future__ import annotations

import os
import signal
import socket
import time

import pytest

import rtudp

UNBLOCK_S = 1.0          # RTUDP_W_UNBLOCK_NS in csrc/worker/worker.h
PER_PRODUCER = 3000


def _claim_and_hang(pool: str, name: str, q: object) -> None:
    ch = rtudp.attach(name, pool=pool)
    claim = ch._tx.claim(32)              # the claim's header is written, never committed
    claim.buffer[:4] = b"dead"
    q.put("claimed")                      # type: ignore[attr-defined]
    time.sleep(120)


def _produce(pool: str, name: str, tag: int, n: int, q: object) -> None:
    ch = rtudp.attach(name, pool=pool)
    q.get(timeout=60)                     # type: ignore[attr-defined]  # after the claim
    for i in range(n):
        while True:
            try:
                ch.send(tag.to_bytes(4, "big") + i.to_bytes(4, "big"))
                break
            except rtudp.BackPressureError:
                time.sleep(0.001)
        if i % 100 == 99:
            time.sleep(0.001)
    ch.close()


@pytest.mark.rtudp(rt_priority=0)
def test_client_killed_between_claim_and_commit(rtudp_pool: rtudp.Pool, children) -> None:
    pool = rtudp_pool
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.05)
    try:
        tx = pool.open_channel("tx", remote=sink.getsockname(), direction=0, capacity=16384,
                               max_datagram=64)
        q = children.ctx.Queue()
        go = children.ctx.Queue()
        claimer = children.start(_claim_and_hang, pool.name, "tx", q, name="claimer")
        assert q.get(timeout=60) == "claimed"
        producers = [children.start(_produce, pool.name, "tx", tag, PER_PRODUCER, go,
                                    name=f"p{tag}") for tag in (1, 2)]
        os.kill(claimer.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        claimer.join(10)
        for _ in range(2):
            go.put("go")
        for i in range(PER_PRODUCER):                 # this process produces too
            tx.send(b"\0\0\0\3" + i.to_bytes(4, "big"))
        got: set[bytes] = set()
        first_after = None
        want = 3 * PER_PRODUCER
        deadline = time.monotonic() + 30
        while len(got) < want and time.monotonic() < deadline:
            try:
                got.add(sink.recv(64))
                if first_after is None:
                    first_after = time.monotonic() - t_kill
            except socket.timeout:
                pass
        for p in producers:
            p.join(30)
        assert [p.exitcode for p in producers] == [0, 0]
    finally:
        sink.close()
    st = tx.stats()
    print(f"\nclaim of a killed client: first packet behind it {first_after:.3f} s after the "
          f"kill; unblocked_claims={st['tx_unblocked_claims']}; {len(got)}/{want} received")
    expected = {t.to_bytes(4, "big") + i.to_bytes(4, "big")
                for t in (1, 2, 3) for i in range(PER_PRODUCER)}
    assert got == expected, f"lost {len(expected - got)}, unexpected {len(got - expected)}"
    assert st["tx_unblocked_claims"] == 1
    assert first_after is not None and first_after < UNBLOCK_S + 4.0  # CI slack, not a figure
    assert st["tx_ring_faults"] == 0
