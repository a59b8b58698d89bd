"""``rtudp bench scale``: its figures from the observer's arrivals (exact, on made-up
arrivals), and ``--quick --json`` end to end with every field (figures checked for
presence and sign only: speed and loss are never asserted)."""
from __future__ import annotations

import pytest

from bench_helpers import run_quick_json
from rtudp.tools.bench.scale import (ALL_CASES, DEFAULT_SENDERS, QUICK_N, TIMED_CASES,
                                     TIMED_ONLY_SENDERS, gap_ns, pick_rounds, print_report,
                                     variants_of)
from rtudp.tools.bench.scale_peer import Arrival
from rtudp.tools.bench.scale_streams import packet, stream_figures

GAP = 20_000_000


def _rtp(port: int, seq: int, t: int) -> Arrival:
    return Arrival(port, 172, packet("rtp", 0, seq, 172)[:4], t)


def test_figures_count_each_slot_once_and_measure_from_the_schedule() -> None:
    # stream 1: seq 65534.. wrapping, slot 2 lost, slot 3 twice, slot 5 before 4,
    # slot 1 100 µs late; stream 2: on time throughout
    base = 1_000_000_000
    s1 = [(65534, 0), (65535, GAP + 100_000), (1, 3 * GAP), (1, 3 * GAP), (3, 5 * GAP),
          (2, 4 * GAP)]
    rows = [_rtp(1000, s, base + t) for s, t in s1]
    rows += [_rtp(1001, 7 + k, base + 5_000 + k * GAP) for k in range(6)]
    f = stream_figures(rows, "rtp", GAP, 6)
    assert f["streams_seen"] == 2
    assert f["delivered"] == 5 + 6 and f["duplicates"] == 1 and f["reordered"] == 1
    assert f["beyond"] == 0
    assert f["err_max_us"] == pytest.approx(100.0)
    assert f["err_p50_us"] == 0


def test_figures_by_time_take_the_nearest_slot() -> None:
    # a Netflux sender skipped cycle 2 and numbered on: by its sequence the last
    # packets would be a whole gap late, by time they are on schedule
    base = 2_000_000_000
    rows = [Arrival(7, 22, bytes([seq, 0, 0, 0]), base + slot * 5_000_000)
            for seq, slot in ((250, 0), (251, 1), (252, 3), (253, 4), (254, 5), (255, 6))]
    f = stream_figures(rows, "netflux", 5_000_000, 7, by_time=True)
    assert f["delivered"] == 6 and f["duplicates"] == 0 and f["reordered"] == 0
    assert f["err_max_us"] == 0
    f = stream_figures(rows, "netflux", 5_000_000, 7)
    assert f["err_max_us"] >= 2_500


def test_fairness_counts_the_starved() -> None:
    from rtudp.tools.bench.scale_udt import fairness

    f = fairness([100, 100, 100, 5, 0])
    assert f["served"] == 3 and f["starved"] == 2 and f["bytes_max"] == 100
    assert f["jain"] == pytest.approx(305 ** 2 / (5 * 30025))


def test_gap_keeps_the_total_rate() -> None:
    assert gap_ns("rtp", 1000) == 20_000_000
    assert gap_ns("rtp", 4000) == 80_000_000
    assert gap_ns("netflux", 100) == 5_000_000


def test_the_traffics_cpu_leaves_out_reading_the_channels_stats(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """rtudp's CPU is the workers' and this process's while the traffic runs: reading
    every channel's stats afterwards (milliseconds a thousand channels) is the bench's."""
    import dataclasses
    import time

    from rtudp.tools.bench import scale
    from rtudp.tools.bench.scale_cases import CASES

    burn_s = 0.3

    def slow_counters(chans: list[object]) -> dict[str, int]:
        end = time.thread_time() + burn_s
        while time.thread_time() < end:
            pass
        return {"tx_packets": 0, "tx_errors": 0}

    class NoWorkers:
        def workers(self) -> list[dict[str, int]]:
            return []

    monkeypatch.setattr(scale, "_counters", slow_counters)
    monkeypatch.setitem(CASES, "rtp", dataclasses.replace(CASES["rtp"],
                                                          drive=lambda *a: {"ring_full": 0}))
    out = scale._traffic("rtp", NoWorkers(), [], GAP, 1, None)
    assert out["counters"] == {"tx_packets": 0, "tx_errors": 0}
    assert out["cpu_s"] < burn_s / 2, out


def test_bad_options_name_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    from rtudp.tools.bench import main

    for argv, word in ((["--n", "10,x"], "'10,x'"), (["--cases", "udp,tcp"], "'tcp'"),
                       (["--seconds", "0"], "'0'"), (["--rounds", "0"], "'0'"),
                       (["--rounds", "two"], "'two'")):
        with pytest.raises(SystemExit):
            main(["scale", *argv])
        assert word in capsys.readouterr().err, argv


def _round(delivered: int, p99: float, cpu: float) -> dict:
    return {"expected": 100, "delivered": delivered, "err_p99_us": p99, "err_p50_us": 1.0,
            "err_max_us": p99, "cpu_s_per_s": cpu, "cpu_ms_per_1k": cpu, "gap_ms": 20}


def test_rounds_keep_the_worst_and_name_the_best(capsys: pytest.CaptureFixture[str]) -> None:
    rounds = [_round(100, 50.0, 0.5), _round(99, 10.0, 0.4), _round(100, 70.0, 0.6)]
    worst = pick_rounds(rounds)
    # an undelivered packet is worse than any p99; among full deliveries the higher p99
    assert worst["delivered"] == 99 and worst["rounds"] == rounds
    assert rounds[worst["best_round"]]["err_p99_us"] == 50.0
    assert pick_rounds(rounds[:1]) is rounds[0]
    report = {"ns": [10], "seconds": 1.0, "rounds": 3, "drop_caches": True, "failed": {},
              "skipped": {}, "cases": {"udp": {"10": {"rtudp": worst}}}}
    print_report(report)
    out = capsys.readouterr().out
    assert "worst of 3 rounds, page cache dropped before each" in out
    assert "best of 3:" in out and "p99 10..70 µs, CPU 0.400..0.600" in out


def test_quick_json_has_every_field() -> None:
    report, _pid = run_quick_json("scale", timeout=600)
    assert report["failed"] == {} and report["leftover_segments"] == []
    if "all" in report["skipped"]:
        pytest.skip(f"the C peer cannot be built: {report['skipped']}")
    assert report["ns"] == list(QUICK_N)
    assert set(report["cases"]) == set(ALL_CASES) - {"open"}
    for case, table in report["cases"].items():
        assert set(table) == {str(n) for n in QUICK_N}, case
        if case == "udt":
            assert "no peers" in report["skipped"]["udt"]
            for n, rows in table.items():
                e = rows["rtudp"]
                assert set(rows) == {"rtudp"} and e["opened"] == int(n), (case, n)
                assert e["served"] + e["starved"] == int(n) and e["bytes_max"] > 0, (case, n)
                assert 0 < e["jain"] <= 1 and e["cpu_s_per_s"] > 0, (case, n)
            continue
        for n, rows in table.items():
            untimed = set(DEFAULT_SENDERS) - set(TIMED_ONLY_SENDERS)
            want = set(DEFAULT_SENDERS) if case in TIMED_CASES else untimed
            assert set(rows) == want == set(variants_of(case)), (case, n)
            for variant, e in rows.items():
                where = (case, n, variant)
                assert e["expected"] > 0 and 0 <= e["delivered"] <= e["expected"], where
                assert e["cpu_s_per_s"] >= 0 and e["cpu_ms_per_1k"] is not None, where
                if case != "rtp_rx":
                    assert e["err_p99_us"] is not None and e["err_p99_us"] >= 0, where
                    assert e["observer"]["received"] >= e["delivered"], where
            for ours in (rows[v] for v in ("rtudp", "exact") if v in rows):
                assert ours["opened"] == int(n) and ours["refused"] is None, (case, n)
                assert ours["open_ms_per_chan"] > 0 and ours["shm_per_chan"] > 0, (case, n)
                assert ours["locked_per_chan"] >= 0 and "counters" in ours, (case, n)
    opened = report["open"]
    assert opened["opened"] + (opened["refused"] is not None) >= 1
    assert opened["open_ms_per_chan"] > 0 and opened["close_ms_per_chan"] >= 0


def test_neighbours_and_the_spread_row() -> None:
    """``--observer python`` reads every datagram from an ordinary Python process,
    ``--busy-loop`` reports a busy loop's share beside each row, and ``--senders``
    picks the rows: ``spread`` is the pool that puts each channel on the worker with
    the fewest, where the default packs them on as few workers as keep up."""
    report, _pid = run_quick_json(
        "scale", timeout=300,
        extra=("--cases", "rtp", "--n", "8", "--seconds", "0.5", "--senders", "rtudp,spread,C",
               "--observer", "python", "--busy-loop"))
    if "all" in report["skipped"]:
        pytest.skip(f"the C peer cannot be built: {report['skipped']}")
    assert report["failed"] == {} and report["python_reader"] and report["busy_loop"]
    rows = report["cases"]["rtp"]["8"]
    assert set(rows) == {"rtudp", "spread", "C"}
    for variant, e in rows.items():
        assert e["observer"]["received"] + e["observer"]["dropped"] >= e["delivered"], variant
        assert e["busy_loop_share"] is not None and 0 <= e["busy_loop_share"] <= 1.05, variant
    # eight light streams: the default pool packs them on one worker; spread, on both
    assert rows["rtudp"]["workers_used"] == 1 and rows["spread"]["workers_used"] == 2
