"""`rtudp bench netflux --quick --json` runs end to end and reports every figure.

Figures are checked for presence and plausibility only: timing is never asserted.
"""
from __future__ import annotations

import glob

from bench_helpers import report_fixture

CASES = ("ours", "py_sleep", "py_deadline")


run = report_fixture("netflux", timeout=240)


def test_every_case_measured(run: tuple[dict, int]) -> None:
    report = run[0]
    assert report["failed"] == {}
    assert sorted(report["results"]) == ["1ms", "5ms"]
    for key, row in report["results"].items():
        for case in CASES:
            e = row[case]
            assert e is not None and "error" not in e, (key, case, e)
            # figures from the receiver's stamps: real packets, most of those due
            assert e["received"] > 0.3 * e["due"], (key, case, e)
            assert 0 <= e["dev_p50"] <= e["dev_p99"] <= e["dev_max"]
            assert isinstance(e["drift_us"], float)
        assert row["ours"]["policies"], "the pool's workers are reported"


def test_targets_reported(run: tuple[dict, int]) -> None:
    targets = run[0]["targets"]
    assert len(targets) == 4
    assert all(isinstance(t["pass"], bool) and t["target"] == 20.0 for t in targets.values())


def test_no_segment_left(run: tuple[dict, int]) -> None:
    report, pid = run
    assert report["leftover_segments"] == []
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []
