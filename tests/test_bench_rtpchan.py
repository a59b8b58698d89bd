"""`rtudp bench rtpchan --quick --json` runs end to end and reports every figure.

Figures are checked for presence and sign only: speed and loss are never asserted
(the benchmark measures; test_rtp_scale.py asserts no loss)."""
from __future__ import annotations

import importlib.util

from bench_helpers import run_quick_json


def test_rtpchan_reports_every_case() -> None:
    report, _pid = run_quick_json("rtpchan", timeout=240)
    cases = report["cases"]
    expected = {"rtudp_server", "rtudp_paced"}
    if importlib.util.find_spec("rtpsynth") is not None:
        expected.add("rtpsynth")
    else:
        assert "not installed" in report["skipped"]["rtpsynth"]
    assert set(cases) == expected
    for name, c in cases.items():
        assert c["sent"] > 0 and 0 <= c["delivered"] <= c["sent"], name
        assert c["python_cpu_per_s"] >= 0 and c["worker_cpu_per_s"] >= 0, name
        assert c["interval_dev_p50_us"] is None or c["interval_dev_p50_us"] >= 0, name
    assert report["channels"] == 50 and report["pps_per_channel"] == 50
