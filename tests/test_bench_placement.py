"""`rtudp bench placement --quick --json` runs end to end: every case of every scenario
ran where it says (the pool's CPUs, the caller's), its counts and figures present,
nothing left behind.  Speed is never asserted."""
from __future__ import annotations

import glob
import os

import pytest

from bench_helpers import run_quick_json


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                    reason="bench placement compares placements on 2 CPUs or more")
def test_bench_placement_quick_runs_every_case() -> None:
    report, pid = run_quick_json("placement", timeout=240)
    assert report["failed"] == {}
    cpus = sorted(os.sched_getaffinity(0))
    assert report["cpus"] == cpus
    assert report["placements"] == {
        "every CPU": {"pool_cpus": None, "caller_cpu": None},
        "CPUs 1.., caller free": {"pool_cpus": cpus[1:], "caller_cpu": None},
        "CPUs 1.., caller on 0": {"pool_cpus": cpus[1:], "caller_cpu": cpus[0]}}
    timed = int(report["seconds"]["timed 50kpps"] * 1e9 // 20_000)
    for scenario, by_case in report["results"].items():
        assert set(by_case) == set(report["cases"]), scenario
        for case, e in by_case.items():
            if scenario == "timed 50kpps":
                assert e["count"] == timed and e["cpu"] > 0, (case, e)
            else:
                assert e["count"] > 0 and e["cpu"] is None, (case, e)
            assert e["max_us"] >= e["p99_us"] >= e["p50_us"] > 0, (scenario, case, e)
    assert report["leftover_segments"] == []
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []
