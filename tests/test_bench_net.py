"""`rtudp bench timing|latency|throughput|aio --quick --json` run end to end and clean
up; timing and latency also draw their CDFs (``--plot``).

Figures are checked for presence and sign only: speed is never asserted.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys

import pytest
from bench_helpers import case_entry, positive, run_quick_json
from plot_helpers import HAVE_MATPLOTLIB, check_png, needs_matplotlib
from rtudp.workers.supervisor import DEFAULT_SPIN_BUDGET

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")





def _no_leftovers(report: dict, pid: int) -> None:
    assert report["leftover_segments"] == []
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []
    # no child of the benchmark survives it
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat, encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        assert int(fields[1]) != pid, f"{stat}: a child of the benchmark is still running"


def _target(t: dict) -> None:
    assert positive(t["value"]), t
    assert positive(t["target"])
    assert isinstance(t["pass"], bool)


def _workers(report: dict) -> None:
    assert report["policies"], "no worker policy reported"
    for p in report["policies"]:
        assert p["policy"] in ("SCHED_FIFO", "SCHED_OTHER", "SCHED_RR"), p


@pytest.fixture(scope="module")
def plots(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Where the runs below draw their plots (when matplotlib is installed)."""
    return str(tmp_path_factory.mktemp("plots"))


def _plot(plots: str, name: str) -> tuple[str, ...]:
    return ("--plot", os.path.join(plots, f"{name}.png")) if HAVE_MATPLOTLIB else ()


@pytest.fixture(scope="module")
def timing(plots: str) -> tuple[dict, int]:
    return run_quick_json("timing", extra=_plot(plots, "timing"))


@pytest.fixture(scope="module")
def latency(plots: str) -> tuple[dict, int]:
    return run_quick_json("latency", extra=_plot(plots, "latency"))


@pytest.fixture(scope="module")
def throughput() -> tuple[dict, int]:
    return run_quick_json("throughput")


@pytest.fixture(scope="module")
def aio() -> tuple[dict, int]:
    return run_quick_json("aio")


def test_timing(timing: tuple[dict, int]) -> None:
    report, pid = timing
    assert report["failed"] == {}
    _workers(report)
    w = report["worker"]
    assert positive(w["spin_margin_us"]) and w["spin_s"] >= 0 and w["sleeps"] >= 0
    assert w["spin_budget"] == 1.0  # the targeted case gives the worker its CPU
    assert 0 <= w["spin_other_s"] <= w["spin_s"] and w["demote_preempted"] <= w["demotions"]
    assert report["send"]["ours_default"]["worker"]["spin_budget"] == DEFAULT_SPIN_BUDGET
    assert report["send"]["ours_park"]["worker"]["spin_budget"] == 0  # idle="park"
    assert report["cases"] == ["ours", "ours_default", "ours_park", "py_sleep", "py_busy",
                               "c_floor"]
    for table in ("send", "arrival"):
        for key in report["cases"]:
            e = report[table][key]
            assert e is not None, f"{table}.{key} missing"
            assert e["count"] == report["packets"], f"{table}.{key}: {e['count']} values"
            assert e["received"] == report["packets"], f"{table}.{key}: packets lost"
            for figure in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us"):
                assert positive(e[figure]), f"{table}.{key}.{figure} = {e[figure]!r}"
            assert e["p50_us"] <= e["p99_us"] <= e["p999_us"] <= e["max_us"]
        for key, rs in report["ratios"][table].items():
            for p, v in rs.items():
                assert positive(v), f"ratio {table}.{key}.{p} = {v!r}"
    for t in report["targets"].values():
        _target(t)
    pauses = report["send"]["c_floor"]["pauses"]
    assert pauses["count"] >= pauses["over_target"] >= 0
    if pauses["count"]:
        assert pauses["p50_us"] <= pauses["max_us"]
    # a quick run is one round: its round's figures are the case's
    assert report["rounds"] == 1 and report["seconds"] == report["round_seconds"]
    for key in report["cases"]:
        (only,) = report["send"][key]["rounds"]
        assert only["p99_us"] == report["send"][key]["p99_us"]
    for key, met in report["rounds_met"].items():
        e = report["send"][key]
        assert met == int(e["p99_us"] <= 10 and e["p999_us"] <= 50), (key, met)
    _no_leftovers(report, pid)


@needs_matplotlib
def test_timing_plot(timing: tuple[dict, int], plots: str) -> None:
    """Both panels, five cases each, the targets in red: many colours, a wide image."""
    assert "curves" not in timing[0]  # drawn, not printed
    check_png(os.path.join(plots, "timing.png"), colours=8, width=1400)


@needs_matplotlib
def test_latency_plot(latency: tuple[dict, int], plots: str) -> None:
    check_png(os.path.join(plots, "latency.png"), colours=7)


def test_timing_rounds_merge_every_packet() -> None:
    """A full run's rounds: percentiles over all packets of all rounds, counters and
    worker counters summed, pauses spaced within a round only, and a round meets the
    targets on its own figures."""
    from rtudp.shmring.hist import Histogram
    from rtudp.tools.bench.timing import GAP_NS, merge_rounds, pause_runs, rounds_met

    def one(late: list[int], cpu: int) -> dict:
        return {"hist": Histogram.from_values(late), "arrival": [x + 100 for x in late],
                "received": len(late), "others": 0.1 * (cpu + 1),
                "counts": {"sent": len(late), "immediate": cpu},
                "pause_runs": (*pause_runs(late), len(late)),
                "worker": {"index": cpu, "cpu": cpu, "spin_budget": 1.0,
                           "spin_margin_us": 20.0 + cpu, "spin_ns": 10**9, "sleeps": 2,
                           "spin_other_ns": 10**8, "demotions": 3, "demote_preempted": 1,
                           "loops": 7, "bridge_ns": 5 * 10**8, "capped_sleeps": 11,
                           "host_pauses": cpu, "host_pause_ns": cpu * 6_400_000}}

    calm = [1_000] * 1000
    stormy = [1_000] * 1000
    for i in range(0, 1000, 100):               # a pause every 2 ms, 60 µs long
        stormy[i] = 60_000
    send, arrival = merge_rounds([one(calm, 0), one(stormy, 1)], 4.0)
    assert send["count"] == arrival["count"] == send["received"] == send["sent"] == 2000
    assert send["immediate"] == 1
    assert send["others_cpu"] == pytest.approx(0.15)
    assert send["max_us"] == 60.0 and 0.99 <= send["p99_us"] <= 1.01
    assert 59.5 <= send["p999_us"] <= 60.5      # 10 of 2000 are 60 µs late
    assert [r["p999_us"] is not None and r["p999_us"] < 2 for r in send["rounds"]] == [True,
                                                                                       False]
    assert arrival["min_us"] == 1.1
    w = send["worker"]
    assert (w["cpu"], w["cpus"], w["spin_margin_us"]) == (1, [0, 1], 21.0)
    assert (w["spin_s"], w["spin_share"], w["sleeps"], w["demotions"]) == (2.0, 0.5, 4, 6)
    assert w["spin_other_s"] == pytest.approx(0.2)
    assert (w["bridge_s"], w["capped_sleeps"]) == (1.0, 22)
    assert (w["host_pauses"], w["host_pause_ms"]) == (1, 6.4)
    pauses = send["pauses"]
    assert pauses["count"] == 10 and pauses["spacing_ms"] == 100 * GAP_NS / 1e6
    assert pauses["periodic_share"] == 1.0      # no spacing across the two rounds
    assert rounds_met(send) == 1 and rounds_met(None) is None


def test_machine_pauses_found_counted_and_spaced() -> None:
    """The floor's pause analysis: runs of late packets are pauses, their spacing and
    length are read off the packets (20 µs apart), a long one is counted as over the
    p99.9 target."""
    from rtudp.tools.bench.timing import machine_pauses

    late = [1_000] * 2000
    for start in range(100, 2000, 500):        # every 10 ms: 60, 40 µs late, then back
        late[start:start + 2] = [60_000, 40_000]
    late[1234] = 25_000                         # one short pause off the beat
    p = machine_pauses(late, 20_000)
    assert p["count"] == 5
    assert p["spacing_ms"] == 10.0 and p["periodic_share"] == 0.5  # 2 of 4 spacings
    assert p["p50_us"] == 60.0 and p["max_us"] == 60.0
    assert p["over_target"] == 4
    assert p["per_s"] == 5 / 0.04
    assert machine_pauses([1_000] * 10, 20_000)["count"] == 0
    assert machine_pauses([], 20_000)["spacing_ms"] is None


def test_latency(latency: tuple[dict, int]) -> None:
    report, pid = latency
    assert report["failed"] == {}
    _workers(report)
    have_sockperf = shutil.which("sockperf") is not None
    # where the round trip goes: four legs on one clock, together about the round trip
    for legs, case in ((report["legs"], "ours"), (report["legs_pinned"], "ours_pinned"),
                       (report["legs_queued"], "ours_queued"), (report["legs_hog"], "ours_hog"),
                       (report["legs_hog_rt"], "ours_hog_rt")):
        assert len(legs) == 4 and all(positive(leg["p50_us"]) for leg in legs)
        assert sum(leg["p50_us"] for leg in legs) < 3 * report["results"][case]["p90_us"]
    # the queued case sent and received nothing directly; the others did, unless the
    # kernel refused pidfd_getfd (then every datagram went through a worker, which the
    # shares say)
    assert report["results"]["ours_queued"]["direct_share"] == 0
    assert report["results"]["ours_queued"]["direct_rx_share"] == 0
    for key in ("ours", "ours_pinned", "ours_hog", "ours_hog_rt"):
        assert 0 <= report["results"][key]["direct_share"] <= 1
        assert 0 <= report["results"][key]["direct_rx_share"] <= 1
    # the pinned case ran where it says: each end on its channel's worker CPU
    assert set(report["results"]["ours_pinned"]["channel_cpus"]) == {"ping", "pong"}
    for key in ("ours", "ours_pinned", "ours_queued", "ours_py_echo", "python", "sockperf",
                "sockperf_pinned", "ours_hog", "ours_hog_rt", "python_hog", "python_hog_fifo"):
        e = case_entry(report, report["results"], key,
                       not key.startswith("sockperf") or have_sockperf)
        if e is None:
            continue
        for figure in ("p50_us", "p99_us", "round_trips", "p50_vs_python"):
            assert positive(e[figure]), f"{key}.{figure} = {e[figure]!r}"
        assert e["p99_us"] >= e["p50_us"]
        if have_sockperf:
            assert positive(e["p50_vs_sockperf"])
    for name in ("ours_p50_vs_python", "ours_p99_vs_python", "ours_pinned_p50_vs_python",
                 "ours_hog_p99_vs_python_hog"):
        _target(report["targets"][name])
    if have_sockperf:
        _target(report["targets"]["ours_p50_vs_sockperf"])
    else:
        assert report["targets"]["ours_p50_vs_sockperf"]["pass"] is None
    _no_leftovers(report, pid)


def test_throughput(throughput: tuple[dict, int]) -> None:
    report, pid = throughput
    assert report["failed"] == {}
    _workers(report)
    for key in ("ours", "python"):
        e = report["results"][key]
        assert e is not None
        for figure in ("pps", "submit_pps", "sent", "received", "seconds", "vs_python"):
            assert positive(e[figure]), f"{key}.{figure} = {e[figure]!r}"
        assert e["received"] + e["kernel_drops"] == e["sent"], f"{key}: not all counted"
    expected = ["send", "send_at", "send_data", "sendto"]
    if len(os.sched_getaffinity(0)) > 1:
        expected.append("send_same_cpu")
    for key in expected:
        c = report["calls"][key]
        assert c is not None, key
        for figure in ("median_ns", "best_ns", "calls", "vs_sendto"):
            assert positive(c[figure]), f"calls.{key}.{figure} = {c[figure]!r}"
    rx = report["rx"]
    assert rx["failed"] == {}
    for key in ("recv_batch", "recv_many", "recv", "python_socket", "c_recvmmsg"):
        e = rx[key]
        assert e is not None, key
        for figure in ("pps_best", "pps_median", "packets", "rounds"):
            assert positive(e[figure]), f"rx.{key}.{figure} = {e[figure]!r}"
    for t in report["targets"].values():
        _target(t)
    _no_leftovers(report, pid)


def test_aio(aio: tuple[dict, int]) -> None:
    """The asyncio round trips next to the blocking ones (uvloop's when installed)."""
    report, pid = aio
    assert report["failed"] == {}
    _workers(report)
    cases = ["blocking", "asyncio"] + ([] if "uvloop" in report["skipped"] else ["uvloop"])
    for key in cases:
        e = report["results"][key]
        assert e is not None, key
        for figure in ("p50_us", "p90_us", "p99_us", "round_trips", "vs_blocking"):
            assert positive(e[figure]), f"{key}.{figure} = {e[figure]!r}"
    _target(report["targets"]["asyncio"])
    _no_leftovers(report, pid)
