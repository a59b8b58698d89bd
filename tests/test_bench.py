"""`rtudp bench ring --quick --json` runs end to end and cleans up after itself.

Figures are checked for presence and sign only: speed is never asserted.
"""
from __future__ import annotations

import glob
import importlib.util

from bench_helpers import case_entry, positive, report_fixture

THROUGHPUT_KEYS = ("mp_queue", "faster_fifo", "py_ring", "ours_call", "ours_batch", "c_to_c")
LATENCY_KEYS = ("ours", "py_ring")
TARGET_KEYS = ("ours_call_vs_py_ring", "ours_batch_msg_per_s", "ours_latency_p50_us")


#: the quick ring benchmark, run once: (report, pid of the benchmark process)
bench_run = report_fixture("ring")



def test_throughput_figures(bench_run: tuple[dict, int]) -> None:
    report, _ = bench_run
    have_ff = importlib.util.find_spec("faster_fifo") is not None
    for key in THROUGHPUT_KEYS:
        entry = case_entry(report, report["throughput"], key, key != "faster_fifo" or have_ff)
        if entry is None:
            continue
        for figure in ("messages", "seconds", "msg_per_s", "vs_mp_queue"):
            assert positive(entry[figure]), f"{key}.{figure} = {entry[figure]!r}"


def test_latency_figures(bench_run: tuple[dict, int]) -> None:
    report, _ = bench_run
    for key in LATENCY_KEYS:
        entry = report["latency"][key]
        assert entry is not None, f"{key}: {report['skipped'].get(key)}"
        for figure in ("p50_us", "p99_us", "mean_us", "round_trips"):
            assert positive(entry[figure]), f"latency {key}.{figure} = {entry[figure]!r}"
        assert entry["p99_us"] >= entry["p50_us"]


def test_targets_reported(bench_run: tuple[dict, int]) -> None:
    report, _ = bench_run
    for key in TARGET_KEYS:
        target = report["targets"][key]
        assert positive(target["value"]), f"target {key} = {target!r}"
        assert positive(target["target"])
        assert isinstance(target["pass"], bool)


def test_no_segment_left(bench_run: tuple[dict, int]) -> None:
    _, pid = bench_run
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []
