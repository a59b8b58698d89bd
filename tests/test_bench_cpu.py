"""`rtudp bench cpu` and `rtudp bench rtudp` (--quick --json) run end to end, report every
case and field, and leave nothing behind: no segment, no worker, no CPU hog.

Figures are checked for presence, range and sign only: speed is never asserted.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from bench_helpers import positive, report_fixture
from rtudp.workers.registry import process_alive
from rtudp.workers.supervisor import DEFAULT_SPIN_BUDGET

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

TIMEOUT_S = 60.0


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@contextlib.contextmanager
def bench_process(name: str, *args: str) -> Iterator[subprocess.Popen]:
    """``rtudp.tools.bench NAME ARGS`` running; on the way out, whatever happened (a
    timeout, a failed assertion), the benchmark and every process it started are
    ended by pid and its /dev/shm segments removed."""
    proc = subprocess.Popen([sys.executable, "-m", "rtudp.tools.bench", name, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, psutil.Process] = {}
    proc.tracked = seen  # type: ignore[attr-defined]  # a test adds what it saw started
    try:
        yield proc
    finally:
        if proc.poll() is None:
            seen.update((c.pid, c) for c in _descendants(proc.pid))
            proc.send_signal(signal.SIGTERM)  # the benchmark cleans up on SIGTERM
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        for child in seen.values():  # psutil checks the pid still names that process
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        for path in glob.glob(f"/dev/shm/rtudp.bench{proc.pid}*"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def run_bench(name: str, *extra: str, timeout: float = TIMEOUT_S) -> tuple[dict, int]:
    """Run ``rtudp.tools.bench NAME --quick --json``; returns (report, its pid)."""
    with bench_process(name, "--quick", "--json", *extra) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"bench {name} --quick took over {timeout:.0f} s")
        assert proc.returncode == 0, f"exit {proc.returncode}\nstderr:\n{err}\nstdout:\n{out}"
        return json.loads(out), proc.pid


def _no_leftovers(report: dict, pid: int) -> None:
    assert report["leftover_segments"] == []
    assert glob.glob(f"/dev/shm/rtudp.bench{pid}*") == []
    for stat in glob.glob("/proc/[0-9]*/stat"):  # no child of the benchmark survives it
        try:
            with open(stat, encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        assert int(fields[1]) != pid, f"{stat}: a child of the benchmark is still running"


def _lateness(e: dict, where: str) -> None:
    for figure in ("p50_us", "p99_us", "p999_us", "max_us"):
        assert positive(e[figure]), f"{where}.{figure} = {e[figure]!r}"
    assert e["p50_us"] <= e["p99_us"] <= e["p999_us"] <= e["max_us"], where


def _target(t: dict) -> None:
    assert t["value"] is not None and t["value"] >= 0, t
    assert t["target"] >= 0
    assert isinstance(t["pass"], bool)


# --------------------------------------------------------------------------
# rtudp bench cpu
# --------------------------------------------------------------------------

cpu_run = report_fixture("cpu", run_bench)


def test_cpu_cases(cpu_run: tuple[dict, int]) -> None:
    report, _ = cpu_run
    assert report["failed"] == {}
    n = report["packets"]
    assert n == report["rate_pps"] * report["seconds"] == 50_000
    assert report["policies"]
    assert set(report["cases"]) == {"tx_only", "rx_only", "duplex"}
    assert len(report["cases"]["tx_only"]) == len(report["cases"]["rx_only"]) == 1
    assert len(report["cases"]["duplex"]) in (1, 2)  # 2 unless the machine has one CPU
    for key, entries in report["cases"].items():
        for w in entries:
            where = f"{key}.worker{w['index']}"
            assert 0 < w["cpu_share"] < 2, f"{where}: cpu_share {w['cpu_share']}"
            assert positive(w["us_per_packet"]), where
            assert 0 <= w["spin_share"] < 2, where
            assert w["bridged_share"] is None or w["bridged_share"] >= 0, where
            assert w["beyond_spin_share"] == pytest.approx(w["cpu_share"] - w["spin_share"])
            for rate in ("sleeps_per_s", "capped_sleeps_per_s", "rx_turns_per_s",
                         "rx_coalesced_per_s"):
                assert w[rate] >= 0, f"{where}.{rate}"
            assert w["restarted"] is False, where
    tx, rx = report["cases"]["tx_only"][0], report["cases"]["rx_only"][0]
    assert tx["sent"] == n
    assert 0 < rx["received"] <= n
    for w in report["cases"]["duplex"]:
        assert w["sent"] == n * (2 if len(report["cases"]["duplex"]) == 1 else 1)


def test_cpu_channels(cpu_run: tuple[dict, int]) -> None:
    report, _ = cpu_run
    n = report["packets"]
    assert list(report["runs"]["one_way"]["channels"]) == ["A -> B"]
    assert list(report["runs"]["duplex"]["channels"]) == ["A -> B", "B -> A"]
    for run in ("one_way", "duplex"):
        for label, c in report["runs"][run]["channels"].items():
            assert c["sent"] == n, f"{run} {label}: sent {c['sent']} of {n}"
            assert c["count"] == n
            assert 0 <= c["lost"] <= n and c["received"] + c["lost"] == n
            _lateness(c, f"{run} {label}")


def test_cpu_peer_ratios_targets(cpu_run: tuple[dict, int]) -> None:
    report, _ = cpu_run
    c = report["c_loop"]
    assert c["sent"] == report["packets"]
    assert 0 < c["cpu_share"] < 2 and positive(c["us_per_packet"])
    assert positive(c["send_us_per_packet"])
    assert set(report["ratios"]) == {"tx_only", "rx_only", "duplex"}
    for rows in report["ratios"].values():
        for x in rows:
            assert x["vs_c_loop"] is not None and x["vs_c_send"] is not None
    assert report["targets"]
    for key, t in report["targets"].items():
        assert key.startswith("duplex_beyond_spin")
        assert t["target"] == 0.5 and isinstance(t["pass"], bool) and t["value"] is not None


def test_cpu_leaves_nothing(cpu_run: tuple[dict, int]) -> None:
    _no_leftovers(*cpu_run)


def test_cpu_schedule_too_long() -> None:
    """A schedule the rings cannot hold is refused before anything starts."""
    proc = subprocess.run([sys.executable, "-m", "rtudp.tools.bench", "cpu", "--rate",
                           "1000000", "--seconds", "2"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "at most" in proc.stderr


# --------------------------------------------------------------------------
# rtudp bench rtudp
# --------------------------------------------------------------------------

api_run = report_fixture("rtudp", run_bench)


def test_rtudp_api_cases(api_run: tuple[dict, int]) -> None:
    report, _ = api_run
    assert report["failed"] == {}
    n = report["packets"]
    assert n == 100_000 and report["seconds"] == 2
    assert report["cases"] == ["default", "hogs"]
    assert report["senders"] == ["rtudp", "py_sleep", "c_floor"]
    assert report["ahead_ms"] > 0
    for case in report["cases"]:
        for sender in report["senders"]:
            e = report["results"][case][sender]
            where = f"{case}.{sender}"
            assert e is not None, where
            assert e["sent"] == n, f"{where}: sent {e['sent']} of {n}"
            assert 0 <= e["lost"] <= n and e["received"] == n - e["lost"], where
            _lateness(e, where)
            assert e["p50_us"] <= e["p90_us"] <= e["p99_us"], where
        floor = report["results"][case]["c_floor"]
        assert floor["stalls"] >= 0 and floor["stalls_ms"] >= floor["stalls"] * 1.0, floor
        assert set(report["ratios"][case]) == {"py_sleep", "c_floor"}
        r = report["results"][case]["rtudp"]
        assert r["requested"] == n and r["duplicates"] == 0 and r["foreign"] == 0
        assert 0 <= r["queued_late"] <= n and r["queued_late_max_ms"] >= 0
        assert r["spin_budget"] == DEFAULT_SPIN_BUDGET  # the default pool's
    for p in report["policies"]:
        assert p["policy"] in ("SCHED_FIFO", "SCHED_OTHER", "SCHED_RR"), p


def test_rtudp_api_report_says_when_the_host_stopped_the_sender(
        api_run: tuple[dict, int], capsys: pytest.CaptureFixture[str]) -> None:
    """A stall no task of the VM caused is named with its case, not left unexplained."""
    from rtudp.tools.bench.rtudp_api import print_report

    report = json.loads(json.dumps(api_run[0]))  # a copy
    for case in report["cases"]:
        w = report["results"][case]["rtudp"]["tx_worker"]
        assert w["host_pause_ms"] >= 0 and w["host_pause_max_ms"] <= w["host_pause_ms"]
        w.update(host_pauses=0)
    report["results"]["default"]["rtudp"]["tx_worker"].update(
        host_pauses=2, host_pause_ms=3.5, host_pause_max_ms=2.0)
    for case in report["cases"]:
        report["results"][case]["c_floor"].update(stalls=0)
    report["results"]["default"]["c_floor"].update(stalls=3, stalls_ms=4.25)
    print_report(report)
    out = capsys.readouterr().out
    # the floor in the same case met the machine's stalls too: said beside them
    assert ("default pool: the C floor lost its CPU 3 times for 1 ms or more (4.2 ms in "
            "all)") in out, out
    assert out.count("the C floor lost its CPU") == 1, out
    assert ("default pool: the host stopped the sending worker's vCPU at least 2 times for "
            "0.25 ms or more (3.5 ms in all, the longest 2.0 ms)") in out, out
    assert out.count("the host stopped") == 1, out


def test_rtudp_api_targets(api_run: tuple[dict, int]) -> None:
    report, _ = api_run
    assert set(report["targets"]) == {"default_p99_us", "default_p999_us", "default_max_us",
                                      "hogs_p99_us", "hogs_p999_us", "hogs_lost"}
    for t in report["targets"].values():
        _target(t)
    assert report["targets"]["hogs_p99_us"]["target"] == 100
    assert report["targets"]["hogs_lost"]["target"] == 0


def test_rtudp_api_hogs_killed(api_run: tuple[dict, int]) -> None:
    report, pid = api_run
    left = []
    for hog in report["hog_pids"]:
        try:
            p = psutil.Process(hog)
            if p.status() != psutil.STATUS_ZOMBIE and "while :" in " ".join(p.cmdline()):
                left.append(p)
        except psutil.Error:
            pass
    for p in left:  # end them first (by pid), then fail
        p.kill()
    assert not left, f"CPU hogs still running: {[p.pid for p in left]}"
    assert len(report["hog_pids"]) == len(os.sched_getaffinity(0))
    assert report["hogs_left"] == []
    _no_leftovers(report, pid)


def _hogs_of(pid: int) -> list[psutil.Process]:
    out = []
    for c in _descendants(pid):
        try:
            if "while :" in " ".join(c.cmdline()):
                out.append(c)
        except psutil.Error:
            pass
    return out


def test_rtudp_api_ctrl_c_kills_hogs() -> None:
    """Ctrl-C while the hogs run: the benchmark exits 130 and leaves no hog, no segment."""
    with bench_process("rtudp", "--quick") as proc:
        hogs: list[psutil.Process] = []
        deadline = time.monotonic() + 40
        while not hogs and proc.poll() is None and time.monotonic() < deadline:
            hogs = _hogs_of(proc.pid)
            time.sleep(0.05)
        assert hogs, "the CPU hogs never started"
        proc.tracked.update((h.pid, h) for h in hogs)  # type: ignore[attr-defined]
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        for hog in hogs:
            assert not process_alive(hog.pid), f"CPU hog {hog.pid} survived Ctrl-C"
        assert glob.glob(f"/dev/shm/rtudp.bench{proc.pid}*") == []


# --------------------------------------------------------------------------
# pieces, without a pool
# --------------------------------------------------------------------------

def test_percentile_from_packet_stats_matches_histogram() -> None:
    """p90 read from get_packet_stats()'s histogram agrees with the worker's own
    percentile code (the p50/p99/p99.9 it reports)."""
    from rtudp.packet_stats import packet_stats
    from rtudp.shmring.hist import Histogram
    from rtudp.tools.bench.rtudp_api import _pct_from_buckets

    values = [1_000 + (i * 7919) % 250_000 for i in range(10_000)] + [3_000_000]
    hist = Histogram.from_values(values)
    stats = packet_stats({}, hist)
    for p in (50, 90, 99, 99.9, 100):
        assert _pct_from_buckets(stats, p) == hist.percentile(p), p
    assert _pct_from_buckets(packet_stats({}, Histogram()), 90) is None


def test_cpu_hogs_killed_on_error() -> None:
    """The hogs die by pid when the code running under them raises."""
    from rtudp.tools.bench.rtudp_api import cpu_hogs

    pids: list[int] = []
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with cpu_hogs([sorted(os.sched_getaffinity(0))[0]], pids):
                assert len(pids) == 1 and process_alive(pids[0])
                raise RuntimeError("boom")
        assert not process_alive(pids[0])
    finally:
        for pid in pids:  # only if the context manager failed to
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
