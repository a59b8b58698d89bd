"""Memory: the RSS of every worker and of a client stays flat over a 60 s run at
50 kpps duplex (after a warm-up in which the rings' pages are touched once).
``RTUDP_MEMORY_S`` shortens it for local runs."""
from __future__ import annotations

import gc
import os

import pytest

import rtudp
from load_helpers import DuplexLoad, rss_kib, worker_pids
from test_fault_worker_kill import RATE

SECONDS = float(os.environ.get("RTUDP_MEMORY_S", "60"))
WARMUP_S = 10.0
#: allowed growth from the end of the warm-up to the end of the run
WORKER_DRIFT_KIB = 512
CLIENT_DRIFT_KIB = 4096


@pytest.mark.heavy_load
@pytest.mark.rtudp(rt_priority=0)
def test_rss_flat_over_a_run_at_50kpps(rtudp_pool: rtudp.Pool) -> None:
    load = DuplexLoad.long_run(rtudp_pool, RATE, SECONDS)
    pids = {"client": os.getpid(),
            **{f"worker{i}": p for i, p in enumerate(worker_pids(rtudp_pool))}}
    samples: dict[str, list[tuple[float, int, int]]] = {k: [] for k in pids}
    next_sample = [0.0]

    def on_tick(elapsed: float) -> None:
        if elapsed >= next_sample[0]:
            next_sample[0] += 1.0
            for k, pid in pids.items():
                samples[k].append((elapsed, *rss_kib(pid)))

    gc.collect()
    load.run(on_tick)
    load.finish(timeout=20)
    drift = {}
    for k, rows in samples.items():
        after = [r for r in rows if r[0] >= WARMUP_S]
        assert len(after) >= 3, f"too few samples of {k}: {rows}"
        base_rss, base_anon = after[0][1], after[0][2]
        drift[k] = {"rss_kib": after[0][1], "rss_drift_kib": max(r[1] for r in after) - base_rss,
                    "anon_drift_kib": max(r[2] for r in after) - base_anon}
    print(f"\nRSS over {SECONDS:.0f} s at {RATE} pps duplex (from {WARMUP_S:.0f} s on): {drift}; "
          f"traffic {load.report()}")
    for d in load.directions:
        assert d.lost() == 0 and d.ring_lost == 0, load.report()
    for k, d in drift.items():
        limit = CLIENT_DRIFT_KIB if k == "client" else WORKER_DRIFT_KIB
        assert d["rss_drift_kib"] <= limit and d["anon_drift_kib"] <= limit, (k, d, samples[k])
