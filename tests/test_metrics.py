"""``rtudp metrics`` (Prometheus) and ``rtudp stats --hdr`` (HdrHistogram) against a live
pool with traffic, parsed with the formats' own libraries."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest
from hdrh.histogram import HdrHistogram
from prometheus_client.parser import text_string_to_metric_families

from rtstat_helpers import BIN, traffic  # noqa: F401  (a fixture)
from rtudp.shmring.hist import Histogram
from rtudp.tools.hdr_export import to_hdr, write_hgrm
from rtudp.tools.metrics import BOUNDS_S, cumulative_buckets

RTUDP = os.path.join(BIN, "rtudp")


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([RTUDP, *args], capture_output=True, text=True, timeout=timeout)


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(fam, suffix: str, **labels) -> float:
    for s in fam.samples:
        if s.name == fam.name + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no sample {fam.name}{suffix} {labels}")


def _check_histogram(fam, channel: str, lo_count: int, hi_count: int) -> None:
    buckets = [(s.labels["le"], s.value) for s in fam.samples
               if s.name.endswith("_bucket") and s.labels["channel"] == channel]
    assert [le for le, _ in buckets] == [repr(b) for b in BOUNDS_S] + ["+Inf"]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "le buckets must be cumulative"
    count = _value(fam, "_count", channel=channel)
    assert counts[-1] == count and lo_count <= count <= hi_count
    assert _value(fam, "_sum", channel=channel) > 0


def test_cumulative_buckets_never_count_a_value_above_its_bound():
    h = Histogram.from_values([500, 1500, 3000, 2_000_000])
    got = dict(cumulative_buckets(h))
    assert got["1e-06"] == 1 and got["2e-06"] == 2 and got["5e-06"] == 3
    # 2 ms itself sits in a bucket whose upper bound is just above 2 ms: the next bound
    assert got["0.002"] == 3 and got["0.005"] == 4 and got["+Inf"] == 4
    assert dict(cumulative_buckets(Histogram()))["+Inf"] == 0


def test_serve_prometheus_matches_stats(traffic):
    proc = subprocess.Popen([RTUDP, "metrics", "--pool", traffic.name, "--serve",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "serving Prometheus metrics on http://127.0.0.1:" in line, line
        url = line.split()[4]
        before = traffic.stats()
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        after = traffic.stats()
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == 0
    fams = _families(text)
    assert _value(fams["rtudp_pool_up"], "", pool=traffic.name) == 1
    for key, side in (("tx_packets", "tx"), ("tx_bytes", "tx"), ("rx_packets", "rx"),
                      ("tx_late", "tx"), ("tx_late_arrival", "tx"), ("tx_late_sent", "tx"),
                      ("tx_late_left", "tx")):
        v = _value(fams[f"rtudp_channel_{key}"], "_total", channel=side)
        assert before[side][key] <= v <= after[side][key], key
    # late sends by cause: how many, the lateness summed (seconds) and the latest
    for cause in ("arrival", "sent"):
        assert fams[f"rtudp_channel_tx_late_{cause}_seconds"].type == "counter"
        assert fams[f"rtudp_channel_tx_late_{cause}_max_seconds"].type == "gauge"
    assert "submitter" in fams["rtudp_channel_tx_late_arrival"].documentation
    assert _value(fams["rtudp_channel_readers"], "", channel="rx") == 1
    _check_histogram(fams["rtudp_channel_tx_lateness_seconds"], "tx",
                     before["tx"]["tx_lateness_count"], after["tx"]["tx_lateness_count"])
    _check_histogram(fams["rtudp_channel_rx_delay_seconds"], "rx",
                     before["rx"]["rx_delay_count"], after["rx"]["rx_delay_count"])
    workers = [s for s in fams["rtudp_worker_restarts"].samples]
    assert len(workers) == len(os.sched_getaffinity(0))
    # the rings' and the workers' counters come from their descriptions, with their help
    assert _value(fams["rtudp_channel_tx_full_events"], "_total", channel="tx") == 0
    assert _value(fams["rtudp_channel_rx_records_lost"], "_total", channel="rx") == 0
    written = _value(fams["rtudp_channel_rx_records_written"], "_total", channel="rx")
    assert before["rx"]["rx_packets"] <= written <= after["rx"]["rx_packets"]
    assert fams["rtudp_channel_tx_unblocked_claims"].documentation.startswith("claims of dead")
    assert sum(s.value for s in fams["rtudp_worker_loops"].samples
               if s.name.endswith("_total")) > 0
    assert fams["rtudp_worker_spin_seconds"].type == "counter"


def test_textfile_is_written_atomically_and_parses(traffic, tmp_path):
    path = tmp_path / "rtudp.prom"
    out = _run("metrics", "--pool", traffic.name, "--textfile", str(path))
    assert out.returncode == 0, out.stderr
    assert os.listdir(tmp_path) == ["rtudp.prom"]  # no temporary file left
    fams = _families(path.read_text())
    assert _value(fams["rtudp_channel_tx_packets"], "_total", channel="tx") > 0
    missing = tmp_path / "nope" / "x.prom"
    out = _run("metrics", "--textfile", str(missing))
    assert out.returncode == 1 and str(missing) in out.stderr


def test_metrics_bad_arguments_name_the_value():
    out = _run("metrics", "--serve", "localhost:http")
    assert out.returncode == 2 and "'http'" in out.stderr
    out = _run("metrics", "--serve", "127.0.0.1:70000")
    assert out.returncode == 2 and "70000" in out.stderr
    out = _run("metrics")
    assert out.returncode == 2 and "--serve" in out.stderr


def test_stats_json_matches_channel_stats(traffic):
    before = traffic.stats()
    out = _run("stats", "tx", "--pool", traffic.name, "--json")
    after = traffic.stats()
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    for key in ("tx_packets", "tx_requested", "tx_lateness_count"):
        assert before["tx"][key] <= got[key] <= after["tx"][key], key
    assert got["readers_attached"] == 0 and got["tx_errors"] == 0
    out = _run("stats", "nope", "--pool", traffic.name)
    assert out.returncode == 1 and "no channel 'nope'" in out.stderr


def test_hdr_percentile_distribution(traffic, tmp_path):
    path = tmp_path / "lat.hgrm"
    before = traffic.wait_sent(500)["tx"]
    out = _run("stats", "tx", "--pool", traffic.name, "--hdr", str(path))
    after = traffic.stats()["tx"]
    assert out.returncode == 0, out.stderr
    lines = path.read_text().splitlines()
    assert lines[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    rows = [ln.split() for ln in lines[2:] if ln and not ln.startswith("#")]
    total = int(rows[-1][2])
    assert float(rows[-1][1]) == 1.0
    assert before["tx_lateness_count"] <= total <= after["tx_lateness_count"]
    assert any(ln.startswith("#[Max") for ln in lines)


def test_hgrm_percentiles_are_rtudps_own(tmp_path):
    import random

    rng = random.Random(4)
    h = Histogram.from_values([int(rng.lognormvariate(10, 1.5)) for _ in range(20_000)])
    path = tmp_path / "x.hgrm"
    with open(path, "wb") as f:
        write_hgrm(f, h)
    rows = [ln.split() for ln in path.read_text().splitlines()[2:]
            if ln and not ln.startswith("#")]
    assert int(rows[-1][2]) == h.count
    values = [float(r[0]) for r in rows]
    assert values == sorted(values)
    assert values[-1] * 1000 == pytest.approx(h.max_ns, rel=0.001)
    # what the file is made from reports rtudp's own percentiles (HdrHistogram keeps
    # 3 significant digits: 0.1 %)
    hdr = to_hdr(h)
    for p in (1, 50, 90, 99, 99.9):
        assert hdr.get_value_at_percentile(p) == pytest.approx(h.percentile(p), rel=0.001)


def test_hdr_interval_log_decodes(traffic, tmp_path):
    path = tmp_path / "lat.hlog"
    first = traffic.stats()["tx"]["tx_lateness_count"]
    out = _run("stats", "tx", "--pool", traffic.name, "--hdr", str(path), "--every", "0.3",
               "--count", "3")
    last = traffic.stats()["tx"]["tx_lateness_count"]
    assert out.returncode == 0, out.stderr
    lines = path.read_text().splitlines()
    assert "#[Histogram log format version 1.3]" in lines
    assert any(ln.startswith("#[StartTime: ") for ln in lines)
    legend = lines.index('"StartTimestamp","Interval_Length","Interval_Max",'
                         '"Interval_Compressed_Histogram"')
    data = [ln.split(",") for ln in lines[legend + 1:]]
    assert len(data) == 3
    counts = []
    for start, length, mx, payload in data:
        assert 0.2 <= float(length) <= 3.0
        h = HdrHistogram.decode(payload)
        counts.append(h.get_total_count())
        assert abs(h.get_max_value() / 1e6 - float(mx)) <= 0.002 * max(1.0, float(mx))
    # an interval may be empty: the traffic's Python sender, starved by a loaded CPU,
    # may queue nothing in 0.3 s; what the intervals hold was all recorded in the run
    assert sum(counts) > 0
    assert sum(counts) <= last - first
    starts = [float(d[0]) for d in data]
    assert starts == sorted(starts)
    out = _run("stats", "tx", "--pool", traffic.name, "--hdr", str(tmp_path / "x.hgrm"),
               "--every", "1")
    assert out.returncode == 1 and ".hlog" in out.stderr
