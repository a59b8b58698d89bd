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
    """Issues 55 and 68: every pair on every WAN path ran its transfers (none failed),
    and the median, worst, best, fast-mode counts and goals are there and consistent."""
    tail = run[0]["tail"]
    assert tail["failed"] == {}
    assert sorted(tail["cells"]) == sorted(["0% 50ms", "1% 50ms", "0% 200ms", "1% 200ms",
                                            "100Mb 200ms"])
    assert tail["paths"]["100Mb 200ms"]["queue_pkts"] == 1667   # one BDP of 1500 bytes
    for path, row in tail["cells"].items():
        assert sorted(row) == sorted(CASES), path
        for pair, c in row.items():
            want = tail["transfers"]
            assert c["n"] == want and c["failed"] == 0 and len(c["times"]) == want, (path, pair)
            assert 0 < c["best"] <= c["p50"] <= c["slowest"] == max(c["times"]), (path, pair, c)
            if pair.startswith("libudt>"):
                assert 0 <= c["fast"] <= want, (path, pair, c)
            else:
                assert "fast" not in c
    goals = tail["goals"]
    # per path: 3 medians against libudt's, 3 worst/median; the bottleneck's shares
    assert len(goals) == 5 * 6 + 2
    assert all(g["pass"] in (True, False) and g["value"] > 0 for g in goals.values())
    late = tail["cells"]["100Mb 200ms"]["rtudp>rtudp"]["late_mbps"]
    assert len(late) == tail["transfers"] and all(v > 0 for v in late)


def test_fairness_reported(run: tuple[dict, int]) -> None:
    f = run[0]["fair"]
    assert f["n"] == 10 and f["errors"] == [] and f["complete"] == 10
    assert len(f["at_first"]) == 10 and max(f["at_first"]) >= f["size"]
    assert 0.1 <= f["jain"] <= 1.0 and f["goal"]["pass"] in (True, False)


def test_fast_mode_and_goal_rules() -> None:
    """The rules the tail prints, on made-up times (no transfer runs)."""
    from rtudp.tools.bench.udt_tail import WanPath, fast_modes, goals, jain, summary

    row = {"libudt>libudt": summary([1.0, 1.1, 5.0], 0),
           "libudt>rtudp": summary([1.2, 6.0, 6.5], 0),
           "rtudp>libudt": summary([0.9, 1.0, 1.0], 0),
           "rtudp>rtudp": summary([0.8, 0.9, 2.0], 0)}
    cells = {"p": row}
    fast_modes(cells)
    assert row["libudt>libudt"]["fast"] == 2 and row["libudt>rtudp"]["fast"] == 1  # <= 1.6 s
    g = goals(cells, {"p": WanPath(0.0, 0.2, 100.0)}, 16 << 20)
    assert g["p libudt -> rtudp median / libudt -> libudt's"]["pass"] is False  # 6.0 / 1.1
    assert g["p rtudp -> libudt median / libudt -> libudt's"]["pass"] is True
    assert g["p rtudp -> rtudp worst / median"]["value"] == 2.0 / 0.9
    assert g["p rtudp -> rtudp 2nd-half goodput / bottleneck"]["pass"] is None  # none measured
    share = g["p rtudp -> rtudp goodput / bottleneck"]["value"]
    assert abs(share - (16 << 20) * 8 / 0.9 / 100e6) < 1e-9
    assert summary([], 1)["p50"] == 300.0                    # a failure counts as the limit
    assert jain([5.0] * 10) == 1.0 and abs(jain([1.0, 0.0]) - 0.5) < 1e-12
