"""`rtudp bench netflux --quick --json` runs end to end, reports every figure and draws
its CDFs (``--plot``).

Figures are checked for presence and plausibility only: timing is never asserted.
"""
from __future__ import annotations

import glob
import os

import pytest
from bench_helpers import run_quick_json
from plot_helpers import HAVE_MATPLOTLIB, check_png, needs_matplotlib

CASES = ("ours", "py_sleep", "py_deadline", "c_park", "c_spin")


@pytest.fixture(scope="module")
def plot_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("plots") / "netflux.png")


@pytest.fixture(scope="module")
def run(plot_file: str) -> tuple[dict, int]:
    return run_quick_json("netflux", timeout=240,
                          extra=("--plot", plot_file) if HAVE_MATPLOTLIB else ())


@needs_matplotlib
def test_plot(run: tuple[dict, int], plot_file: str) -> None:
    """Two panels (1 ms, 5 ms), five cases each, the target in red."""
    assert "curves" not in run[0]
    assert os.path.exists(plot_file)
    check_png(plot_file, colours=6, width=1400)


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
        assert row["c_park"]["policy"].startswith(("SCHED_FIFO", "SCHED_OTHER"))
        # rtudp against each C loop of the same run, as a ratio of the p99s
        for c in ("c_park", "c_spin"):
            got = report["vs_c"][key][c]
            if row[c]["dev_p99"]:
                assert got == pytest.approx(row["ours"]["dev_p99"] / row[c]["dev_p99"]), (key, c)
            else:
                assert got is None, (key, c)


def test_targets_reported(run: tuple[dict, int]) -> None:
    targets = run[0]["targets"]
    assert len(targets) == 4
    assert all(isinstance(t["pass"], bool) and t["target"] == 20.0 for t in targets.values())


def test_no_segment_left(run: tuple[dict, int]) -> None:
    report, pid = run
    assert report["leftover_segments"] == []
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []
