"""`rtudp bench udt --quick --json` runs end to end and reports every figure.

Figures are checked for presence and plausibility only: speed is never asserted.
Without libudt-dev or a C++ compiler (probed here, before the bench runs) the tests are
skipped saying so; where both are present, a peer that does not build fails them.
"""
from __future__ import annotations

import glob
import shutil
from pathlib import Path

import pytest
from bench_helpers import run_quick_json

CASES = ("libudt>libudt", "rtudp>libudt", "libudt>rtudp", "rtudp>rtudp")


@pytest.fixture(scope="module")
def run() -> tuple[dict, int]:
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler to build the libudt peer (apt-get install g++)")
    if not Path("/usr/include/udt/udt.h").exists():
        pytest.skip("libudt-dev is not installed (apt-get install libudt-dev)")
    report, pid = run_quick_json("udt", timeout=900, failed_ok=True)
    assert "libudt" not in report["failed"], \
        f"the libudt peer failed where libudt-dev and c++ are present: {report['failed']}"
    return report, pid


def test_every_pair_measured_at_every_loss(run: tuple[dict, int]) -> None:
    report = run[0]
    assert report["failed"] == {}
    assert sorted(report["results"]) == ["0%", "1%", "5%"]
    for loss, row in report["results"].items():
        for case in CASES:
            e = row[case]
            assert e is not None and e["bytes"] > 0 and e["mbps"] > 0, (loss, case, e)
            if loss != "0%":
                assert e["relay_dropped"] > 0, (loss, case, e)   # the loss was real


def test_targets_reported(run: tuple[dict, int]) -> None:
    targets = run[0]["targets"]
    assert len(targets) == 3
    assert all(isinstance(t["pass"], bool) and t["value"] > 0 for t in targets.values())


def test_no_segment_left(run: tuple[dict, int]) -> None:
    report, pid = run
    assert report["leftover_segments"] == []
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []


def test_tail_of_seeded_transfers_reported(run: tuple[dict, int]) -> None:
    """Issue 55's tail: every pair on every path ran its transfers (none failed), and
    the percentiles and goals are there and consistent."""
    tail = run[0]["tail"]
    assert tail["failed"] == {}
    assert sorted(tail["cells"]) == ["0%", "1%", "1% 50ms", "5%"]
    for path, row in tail["cells"].items():
        assert sorted(row) == sorted(CASES), path
        for pair, c in row.items():
            want = tail["baseline_transfers"] if pair == "libudt>libudt" else tail["transfers"]
            assert c["n"] == want and c["failed"] == 0 and len(c["times"]) == want, (path, pair)
            assert 0 < c["p50"] <= c["p99"] <= c["slowest"] == max(c["times"]), (path, pair, c)
    goals = tail["goals"]
    assert len(goals) == 4 * 3 * 2
    assert all(g["pass"] in (True, False) and g["value"] > 0 for g in goals.values())
