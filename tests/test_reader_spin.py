"""A channel's reader spins before parking only where a CPU is left for it.

With a worker pinned on every CPU this process may run on, a spinning reader holds
off the very process or worker that is about to answer it (``rtudp bench latency``:
a ping-pong between two channel processes on 2 CPUs took 60 µs a round trip spinning,
29 µs parking at once), so it parks at once there.
"""
from __future__ import annotations

import os

import pytest

import rtudp
from rtudp.shmring._ringbase import DEFAULT_SPIN_NS


def test_no_spin_when_workers_own_every_cpu(rtudp_pool: rtudp.Pool) -> None:
    worker_cpus = {w["cpu"] for w in rtudp_pool.workers()}
    if not os.sched_getaffinity(0) <= worker_cpus:
        pytest.skip(f"this process may run on CPUs {sorted(os.sched_getaffinity(0))}, the "
                    f"pool's workers are on {sorted(worker_cpus)}: a CPU is left over")
    ch = rtudp_pool.open_channel("spin_none")
    assert ch._reader.spin_ns == 0


def test_spin_when_a_cpu_is_left(rtudp_pool: rtudp.Pool,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    worker_cpus = {w["cpu"] for w in rtudp_pool.workers()}
    spare = max(worker_cpus) + 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: worker_cpus | {spare})
    ch = rtudp_pool.open_channel("spin_some")
    assert ch._reader.spin_ns == DEFAULT_SPIN_NS
    # and the channel still receives (the spin is only how it waits)
    tx = rtudp_pool.open_channel("spin_tx", remote=ch.local, direction=0)
    tx.send(b"x")
    assert ch.recv(timeout=5).data == b"x"
