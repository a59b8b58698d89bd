"""Soak (bounded, runs in CI): 120 s of 50 kpps duplex with a worker SIGKILLed every
10 s, alternating between the workers.  Zero loss, duplicates only at kills (at most
the one packet in flight per kill), every restart counted, and nothing left
behind (the conftest leak check and the rtudp_pool fixture fail the test
otherwise).  ``RTUDP_SOAK_S`` shortens it for local runs."""
from __future__ import annotations

import os
import statistics
import subprocess
import time

import pytest

import rtudp
from load_helpers import DuplexLoad, WorkerKiller
from test_fault_worker_kill import RATE, RESPAWN_BOUND_S, RESTART_TARGET_S, in_flight_at_kills

SECONDS = float(os.environ.get("RTUDP_SOAK_S", "120"))
KILL_EVERY_S = 10.0


def _plain_start_s(samples: int = 11) -> float:
    """Median time to start, run and reap a plain program (`true`) here, now."""
    took = []
    for _ in range(samples):
        t0 = time.monotonic()
        subprocess.run(["true"], check=True)
        took.append(time.monotonic() - t0)
    return statistics.median(took)


@pytest.mark.heavy_load
@pytest.mark.rtudp(rt_priority=0)
def test_soak_duplex_with_a_worker_killed_every_10s(rtudp_pool: rtudp.Pool) -> None:
    pool = rtudp_pool
    load = DuplexLoad.long_run(pool, RATE, SECONDS)
    a, b = load.ab.tx, load.ab.rx
    killer = WorkerKiller(pool)
    kills: list[int] = []      # worker index per kill, in order
    n_workers = len(pool.workers())

    def on_tick(elapsed: float) -> None:
        killer.poll()
        due = int(elapsed // KILL_EVERY_S)
        if len(kills) < due and elapsed < SECONDS - 1 and not killer.pending:
            kills.append(len(kills) % n_workers)
            killer.kill(kills[-1])

    load.run(on_tick)
    killer.wait()
    load.finish(timeout=20)
    report = load.report()
    ms = sorted(round(s * 1000, 1) for s in killer.restart_s)
    print(f"\nsoak {SECONDS:.0f} s at {RATE} pps duplex, {len(kills)} kills: restart "
          f"(kill -> running) ms min {ms[0] if ms else '-'} median "
          f"{ms[len(ms) // 2] if ms else '-'} max {ms[-1] if ms else '-'}; respawn max "
          f"{max(killer.respawn_s, default=0) * 1000:.1f} ms; {report}; "
          f"{in_flight_at_kills(a, b)}")

    assert len(kills) >= int(SECONDS // KILL_EVERY_S) - 1
    assert len(killer.restart_s) == len(kills)
    assert max(killer.respawn_s) < RESPAWN_BOUND_S, killer.respawn_s
    # the typical restart (kill -> running again) is a process start and a handshake:
    # the target plus what starting a plain program costs on this machine now
    plain = _plain_start_s()
    assert statistics.median(killer.restart_s) < RESTART_TARGET_S + 10 * plain, (ms, plain)
    for d in load.directions:
        assert d.sent == d.total
        assert d.ring_lost == 0, report
        assert d.lost() == 0, f"{d.name}: {d.lost()} lost: {report}"
        assert d.duplicates() <= len(kills), report
    assert sum(w["restarts"] for w in pool.workers()) == len(kills)
    assert a.stats()["worker_restarts"] + b.stats()["worker_restarts"] >= 1
