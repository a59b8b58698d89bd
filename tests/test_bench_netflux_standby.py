"""`rtudp bench netflux-standby --quick --json` runs end to end: every case measured,
its counts adding up, and the wire in sequence order in every case (the promise of
docs/guarantees.md; how many cycles each case missed is a figure, never asserted)."""
from __future__ import annotations

import pytest
from bench_helpers import run_quick_json

from rtudp.tools.bench.netflux_standby import CASES, sequence_faults


@pytest.fixture(scope="module")
def report() -> dict:
    return run_quick_json("netflux-standby", timeout=240)[0]


def test_every_case_measured_and_in_order(report: dict) -> None:
    assert report["failed"] == {}
    assert sorted(report["results"]) == sorted(CASES)
    for case, e in report["results"].items():
        assert e["due"] > 1000, (case, e)  # 2 s of 1 ms cycles
        # what the workers counted as sent is what the plain socket received
        assert e["received"] == e["sent"], (case, e)
        assert e["missed"] == e["due"] - e["received"], (case, e)
        assert e["missed_per_10k"] == pytest.approx(10_000 * e["missed"] / e["due"])
        assert (e["repeats"], e["back"], e["gaps"]) == (0, 0, 0), (case, e)
        standby, stalled = CASES[case]
        assert (e["stalls"] > 0) == stalled, (case, e)
        if not standby:
            assert e["standby_sent"] == 0, (case, e)


def test_sequence_faults_counts_each_kind_of_step() -> None:
    assert sequence_faults([1, 2, 4, 255, 0]) == {"repeats": 0, "back": 1, "gaps": 1,
                                                   "skipped": 1}
    assert sequence_faults([5, 5, 4, 7]) == {"repeats": 1, "back": 1, "gaps": 1, "skipped": 2}
    assert sequence_faults([]) == {"repeats": 0, "back": 0, "gaps": 0, "skipped": 0}
