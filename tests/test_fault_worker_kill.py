"""Fault: a worker SIGKILLed under 50 kpps duplex load.

The supervisor restarts it (same CPU, same sockets, same segments); nothing queued
in a TX ring is lost and at most the one packet in flight is sent twice; datagrams
the kernel buffered while no worker read the socket are delivered by the
successor.  The restart shows in the worker table, in ``Channel.stats()`` and in
``rtstat --json``.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rtudp
from rtudp.workers.pool_context import START_TIMEOUT_S

from load_helpers import DuplexLoad, WorkerKiller, open_duplex_pair

RATE = 50_000
#: the issue's target: kill -> successor RUNNING.  Measured 6-22 ms (idle and with a
#: second job on the machine); respawns of 0.27-3.25 s were seen while the watching
#: thread was SCHED_OTHER under heavy shared load (docs/measurements.md).  The soak asserts
#: the median of its 11 restarts against it; single restarts are held only to the
#: hang bounds below, which a loaded CI machine always keeps.
RESTART_TARGET_S = 0.100
RESPAWN_BOUND_S = 10.0
RESTART_BOUND_S = START_TIMEOUT_S + 5.0


def in_flight_at_kills(*channels: rtudp.Channel) -> dict[str, int]:
    """What successors found in the TX journals of these channels: records in flight
    at a kill that their TX stamp proved gone, and records sent again."""
    stats = [c.stats() for c in channels]
    return {"left": sum(s["tx_restart_left"] for s in stats),
            "resent": sum(s["tx_restart_resent"] for s in stats)}


@pytest.mark.heavy_load
@pytest.mark.rtudp(rt_priority=0)
def test_worker_sigkill_under_duplex_load(rtudp_pool: rtudp.Pool) -> None:
    pool = rtudp_pool
    a, b = open_duplex_pair(pool)
    load = DuplexLoad(a, b, RATE, seconds=4.0)
    killer = WorkerKiller(pool)
    kills = {1.0: 0, 2.5: len(pool.cpus) - 1}   # elapsed s -> worker index

    def on_tick(elapsed: float) -> None:
        for at in [t for t in kills if elapsed >= t]:
            killer.kill(kills.pop(at))
        killer.poll()

    load.run(on_tick)
    killer.wait()
    load.finish(timeout=15)
    report = load.report()
    print(f"\nworker kill at {RATE} pps duplex: respawned after "
          f"{[round(s * 1000, 1) for s in killer.respawn_s]} ms, running after "
          f"{[round(s * 1000, 1) for s in killer.restart_s]} ms; {report}; in flight at the "
          f"kills: {in_flight_at_kills(a, b)}")

    assert len(killer.restart_s) == 2
    assert max(killer.respawn_s) < RESPAWN_BOUND_S, killer.respawn_s
    assert max(killer.restart_s) < RESTART_BOUND_S, killer.restart_s
    for d in load.directions:
        assert d.sent == d.total, f"{d.name}: only {d.sent} of {d.total} queued"
        assert d.ring_lost == 0, f"{d.name}: the reader was lapped: {report}"
        assert d.lost() == 0, f"{d.name}: {d.lost()} packets lost: {report}"
        # a kill may repeat at most the one packet in flight: the successor frees what
        # the dead worker's last send call proved gone by TX stamp (txjournal.h)
        assert d.duplicates() <= len(killer.restart_s), \
            f"{d.name}: {d.duplicates()} duplicates over {len(killer.restart_s)} kills: {report}"

    restarts = [w["restarts"] for w in pool.workers()]
    assert sum(restarts) == 2, restarts
    assert a.stats()["worker_restarts"] >= 1 and b.stats()["worker_restarts"] >= 1
    out = subprocess.run([sys.executable, "-m", "rtudp.tools.rtstat", "--pool", pool.name,
                          "--once", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    frame = json.loads(out.stdout.splitlines()[0])
    shown = [w["restarts"] for p in frame["pools"] for w in p["workers"]]
    assert sum(shown) == 2, frame
