"""`rtudp bench mechanisms --quick --json`, cut to two cases of the slow scenario and one
of the hog scenario, runs end to end: every case's packets counted, figures present,
nothing left behind.  Speed is never asserted."""
from __future__ import annotations

import glob

from bench_helpers import run_quick_json

from rtudp.workers.mechanisms import MECHANISMS


def test_bench_mechanisms_quick_counts_every_packet() -> None:
    report, pid = run_quick_json("mechanisms", timeout=240,
                                 extra=("--only", "warmup", "--scenario", "200pps",
                                        "--scenario", "50kpps+hog"))
    assert report["failed"] == {}
    assert report["cases"] == ["all on", "-warmup", "C floor"]
    assert list(report["mechanisms"]) == list(MECHANISMS)
    for scenario, meta in report["scenarios"].items():
        n = int(meta["seconds"] * 1e6 // meta["gap_us"])
        for case in report["cases"]:
            e = report["results"][scenario][case]
            assert e["count"] == n, (scenario, case, e)
            assert e["p50_us"] is not None and e["max_us"] >= e["p99_us"] >= e["p50_us"]
            assert (e["cpu"] is None) == (case == "C floor"), e
            assert e["cpu"] is None or e["cpu"] > 0
    assert report["leftover_segments"] == []
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []


def test_bench_mechanisms_rx_scenarios_count_every_datagram() -> None:
    scenarios = ("rx 50kpps", "duplex 50kpps")
    report, pid = run_quick_json("mechanisms", timeout=240,
                                 extra=("--only", "rx_turns", "--scenario", scenarios[0],
                                        "--scenario", scenarios[1]))
    assert report["failed"] == {}
    for scenario in scenarios:
        meta = report["scenarios"][scenario]
        assert meta["receives"]
        n = int(meta["seconds"] * 1e6 // meta["gap_us"])
        results = report["results"][scenario]
        assert set(results) == {"all on", "-rx_turns"}  # receiving: no C floor
        for case, e in results.items():
            # every datagram sent is published (its receive delay counted) or a kernel drop
            assert e["count"] + e["kernel_drops"] == n, (scenario, case, e)
            assert e["p50_us"] is not None and e["max_us"] >= e["p99_us"] >= e["p50_us"]
            assert e["cpu"] > 0
    assert report["leftover_segments"] == []
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []
