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

from rtudp.tools.bench.netflux import pool_rounds, schedule_figures

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
    assert report["rounds"] == 1  # --quick: one round of 2 s a case
    assert sorted(report["results"]) == ["1ms", "5ms"]
    for key, row in report["results"].items():
        for case in CASES:
            e = row[case]
            assert e is not None and "error" not in e, (key, case, e)
            # figures from the receiver's stamps: real packets, most of those due
            assert e["received"] > 0.3 * e["due"], (key, case, e)
            assert 0 <= e["dev_p50"] <= e["dev_p99"] <= e["dev_max"]
            assert isinstance(e["drift_us"], float)
            assert [b["slots_missing"] for b in e["by_round"]] == [e["slots_missing"]]
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
    assert len(targets) == 6
    assert all(isinstance(t["pass"], bool) for t in targets.values())
    for key in ("1ms", "5ms"):
        assert targets[f"{key} p99 |deviation| (µs)"]["target"] == 20.0
        assert targets[f"{key} drift after the run (µs)"]["target"] == 20.0
        missed = targets[f"{key} cycles missed"]
        assert missed["target"] == 0
        assert missed["value"] == run[0]["results"][key]["ours"]["slots_missing"]


def _stamps(offsets_us: list[float], interval_ns: int = 1_000_000) -> list[int]:
    """Receive stamps of packet k at slot k plus its offset (plus a constant delay)."""
    return [10**12 + 37_000 + k * interval_ns + int(o * 1000) for k, o in enumerate(offsets_us)]


def test_schedule_figures_take_the_phase_from_all_packets() -> None:
    """A first packet 450 µs late of a 1 ms cycle does not shift the others' slots:
    each punctual packet keeps its own slot, none is counted missing."""
    offsets = [450.0] + [(-1) ** k * 60.0 for k in range(1, 400)]
    f = schedule_figures(_stamps(offsets), 1_000_000, True, 400)
    assert f["slots_missing"] == 0
    assert f["received"] == 400
    assert f["dev_max"] == pytest.approx(450.0, abs=61.0)


def test_schedule_figures_count_a_skipped_cycle() -> None:
    """A slot without a packet (the worker skipped it) is one cycle missed."""
    stamps = _stamps([0.0] * 100)
    del stamps[40]
    f = schedule_figures(stamps, 1_000_000, True, 100)
    assert f["slots_missing"] == 1
    assert f["dev_p99"] == 0.0


def test_no_segment_left(run: tuple[dict, int]) -> None:
    report, pid = run
    assert report["leftover_segments"] == []
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []


def test_schedule_figures_count_a_late_cycle_of_a_sender_that_never_skips() -> None:
    """A sender that sends every cycle, one 700 µs late of 1 ms: deviation by index (its
    own slot), but the slot it left empty counts as missed, as for the worker."""
    offsets = [0.0] * 100
    offsets[40] = 700.0
    f = schedule_figures(_stamps(offsets), 1_000_000, False, 100)
    assert f["dev_max"] == pytest.approx(700.0, abs=0.01)
    assert f["slots_missing"] == 1


def test_rounds_pool_into_one_case() -> None:
    """A full run's rounds (every case in turn, so that all meet the host's spells) make
    one row: percentiles over every round's packets, gaps and the worker's counters
    summed, the drift of the round that drifted most, each round's p99 and gaps kept."""
    quiet = schedule_figures(_stamps([0.0] * 100), 1_000_000, True, 100)
    late = [0.0] * 100
    late[10:20] = [300.0] * 10
    stamps = _stamps(late)
    del stamps[50]
    spell = schedule_figures(stamps, 1_000_000, True, 100)
    for part, skipped, sby in ((quiet, 0, 0), (spell, 1, 3)):
        part.update(missed_cycles=skipped, standby_sent=sby, others_cpu=0.1 + skipped,
                    pool_warnings=["w"])
    got = pool_rounds([quiet, spell])
    assert (got["received"], got["due"], got["slots_missing"]) == (199, 200, 1)
    assert got["sent_ratio"] == pytest.approx(199 / 200)
    assert (got["missed_cycles"], got["standby_sent"]) == (1, 3)
    assert got["others_cpu"] == pytest.approx(1.1) and got["pool_warnings"] == ["w"]
    # 10 of 199 packets 300 us off: p99 over both rounds, not either round's own
    assert got["dev_p99"] == pytest.approx(300.0, abs=1.0) and got["dev_p50"] == 0.0
    assert got["drift_us"] in (quiet["drift_us"], spell["drift_us"])
    assert abs(got["drift_us"]) == max(abs(quiet["drift_us"]), abs(spell["drift_us"]))
    assert [b["slots_missing"] for b in got["by_round"]] == [0, 1]
    assert got["by_round"][1]["dev_p99"] == spell["dev_p99"]
    assert "dev_ns" not in got and got["hist"].count == 199
    # a round too short to measure makes the case that round's error
    short = schedule_figures(_stamps([0.0] * 5), 1_000_000, True, 100)
    assert pool_rounds([quiet, short])["error"] == "too few packets"
