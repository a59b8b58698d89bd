"""Latency histograms: the Python view (rtudp.shmring.hist) over the C code (csrc/hist.c).

Values are recorded with the same C function a worker uses (``rtudp_hist_record``)
into a cffi-allocated ``struct rtudp_hist``, then read back through
``Histogram.snapshot`` and compared with exact answers computed in Python.
"""
from __future__ import annotations

import json
import math
import mmap
import random
import re
import statistics
from fractions import Fraction

import pytest

from rtudp.shmring._native import ffi, lib
from rtudp.shmring.hist import BUCKETS, MAX_VALUE_NS, Histogram, format_ns

#: a bucket is at most this much wider than the values in it (1/128)
PRECISION = 1 / 128


def new_hist():
    """A zeroed struct rtudp_hist in cffi-owned memory (freed with the object)."""
    return ffi.new("struct rtudp_hist *")


def record_all(h, values) -> None:
    for v in values:
        lib.rtudp_hist_record(h, v)


def kept(v: int) -> int:
    """What a recorded value becomes: negative -> 0, too large -> MAX_VALUE_NS."""
    return min(max(v, 0), MAX_VALUE_NS)


def nearest_rank(sorted_values: list[int], p: float) -> int:
    """Exact nearest-rank percentile: the smallest value with >= p % of the data <= it."""
    n = len(sorted_values)
    rank = math.ceil(Fraction(str(p)) * n / 100)
    return sorted_values[max(rank, 1) - 1]


def bucket_of(v: int) -> int:
    return lib.rtudp_hist_index(v)


def lognormal_ns(seed: int, n: int, mu: float = 10.0, sigma: float = 1.0) -> list[int]:
    rng = random.Random(seed)
    return [int(rng.lognormvariate(mu, sigma)) for _ in range(n)]


@pytest.fixture
def recorded():
    """(raw struct, values) with 50 000 log-normal latencies around 22 us recorded."""
    values = lognormal_ns(1, 50_000)
    h = new_hist()
    record_all(h, values)
    return h, values


# ------------------------------------------------------------------ the buckets


def test_bucket_bounds_tile_the_range() -> None:
    """Bucket bounds seen from Python: contiguous from 0 to 2^36 - 1, index round-trips."""
    assert BUCKETS == 3840
    assert lib.rtudp_hist_lower(0) == 0
    assert lib.rtudp_hist_upper(BUCKETS - 1) == MAX_VALUE_NS == 2**36 - 1
    prev_upper = -1
    for i in range(BUCKETS):
        lo, hi = lib.rtudp_hist_lower(i), lib.rtudp_hist_upper(i)
        assert lo == prev_upper + 1
        assert bucket_of(lo) == i and bucket_of(hi) == i
        if lo >= 256:
            assert (hi - lo + 1) <= lo * PRECISION
        prev_upper = hi


# ------------------------------------------------------------------ empty


def test_empty_histogram() -> None:
    """No values: counts are 0, everything that needs a value is None, nothing raises."""
    for h in (Histogram(), Histogram.snapshot(new_hist())):
        assert h.count == 0 and h.sum_ns == 0
        assert h.min_ns is None and h.max_ns is None and h.mean_ns is None
        assert h.percentile(50) is None
        assert h.percentiles() == {50: None, 90: None, 99: None, 99.9: None}
        assert h.buckets() == []
        assert "empty" in h.text_histogram()
        assert repr(h) == "Histogram(count=0)"
        d = h.to_dict()
        assert d["count"] == 0 and d["min_ns"] is None and d["buckets"] == []
        assert d["percentiles"] == {"p50": None, "p90": None, "p99": None, "p99.9": None}
        json.dumps(d)
        assert (h - h).count == 0
        assert h.merge(h).count == 0
        assert h == Histogram()


# ------------------------------------------------------------------ recording


def test_known_values() -> None:
    """Exact counters and buckets for a handful of values."""
    h = new_hist()
    record_all(h, [1000, 5, 70_000, 1000])
    s = Histogram.snapshot(h)
    assert s.count == 4
    assert s.sum_ns == 72_005
    assert s.min_ns == 5 and s.max_ns == 70_000
    assert s.mean_ns == pytest.approx(72_005 / 4)
    b1000, b70k = bucket_of(1000), bucket_of(70_000)
    assert s.buckets() == [
        (5, 5, 1),
        (lib.rtudp_hist_lower(b1000), lib.rtudp_hist_upper(b1000), 2),
        (lib.rtudp_hist_lower(b70k), lib.rtudp_hist_upper(b70k), 1),
    ]
    # values below 256 are exact; the others are reported as their bucket's top
    assert s.percentile(0) == 5
    assert s.percentile(25) == 5
    assert s.percentile(50) == lib.rtudp_hist_upper(b1000)
    assert s.percentile(100) == 70_000  # clamped to max, not the bucket's top


def test_clamped_and_negative() -> None:
    """Negative values count as 0, values past 2^36 - 1 ns as that; both are counted."""
    h = new_hist()
    record_all(h, [-5, -(2**63), 2**40, 2**63 - 1, 100])
    s = Histogram.snapshot(h)
    assert s.count == 5
    assert s.negative == 2 and s.clamped == 2
    assert s.min_ns == 0 and s.max_ns == MAX_VALUE_NS
    assert s.sum_ns == 2 * MAX_VALUE_NS + 100
    assert s.percentile(100) == MAX_VALUE_NS
    # from_values accepts any Python int (saturated to int64 before the C call)
    f = Histogram.from_values([-5, -(2**70), 2**40, 2**90, 100])
    assert f == s
    with pytest.raises(TypeError, match="1.5"):
        Histogram.from_values([1.5])
    with pytest.raises(TypeError, match="True"):
        Histogram.from_values([True])


# ------------------------------------------------------------------ percentiles


@pytest.mark.parametrize("seed,mu,sigma", [(1, 10.0, 1.0), (2, 4.0, 0.5), (3, 14.0, 2.0)])
def test_percentiles_match_statistics(seed: int, mu: float, sigma: float) -> None:
    """On random data: mean, median and percentiles agree with exact Python answers
    within the histogram's precision (one bucket, <= 1/128 of the value)."""
    values = lognormal_ns(seed, 20_000, mu, sigma)
    h = new_hist()
    record_all(h, values)
    s = Histogram.snapshot(h)
    data = sorted(values)
    assert s.count == len(values)
    assert s.min_ns == data[0] and s.max_ns == data[-1]
    assert s.mean_ns == pytest.approx(statistics.fmean(values), rel=1e-12)

    # the median: nearest-rank p50 is statistics.median_low, reported in its bucket
    med = statistics.median_low(values)
    got = s.percentile(50)
    assert bucket_of(got) == bucket_of(med) and got >= med

    # every percentile: never below the exact nearest-rank value, within one bucket
    for p in (0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100):
        ref = nearest_rank(data, p)
        got = s.percentile(p)
        assert bucket_of(got) == bucket_of(ref), (p, got, ref)
        assert ref <= got <= max(ref, ref + ref * PRECISION), (p, got, ref)

    # statistics.quantiles interpolates between neighbours; on dense data that is
    # within the same precision (plus a hair for the interpolation)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for p in (10, 50, 90, 99):
        q = cuts[p - 1]
        assert s.percentile(p) == pytest.approx(q, rel=PRECISION + 0.002, abs=1), p

    # percentiles() is percentile() for each p, in order
    ps = s.percentiles((99, 50, 99.9))
    assert list(ps) == [99, 50, 99.9]
    assert all(v == s.percentile(p) for p, v in ps.items())


def test_percentile_arguments() -> None:
    """p must be a real number in [0, 100]: the offending value is in the message."""
    s = Histogram.from_values([10, 20, 30])
    assert s.percentile(0) == 10 and s.percentile(100) == 30
    assert s.percentile(Fraction(1, 2)) == 10
    for bad in (-0.001, 100.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            s.percentile(bad)
    for bad in ("50", None, True, 1j):
        with pytest.raises(TypeError, match=re.escape(repr(bad))):
            s.percentile(bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ snapshots


def test_snapshot_sources(recorded) -> None:
    """A cffi pointer, bytes-likes of one and another Histogram all give the same copy."""
    h, _ = recorded
    s = Histogram.snapshot(h)
    raw = bytes(ffi.buffer(h))
    assert s.to_bytes() == raw  # a quiet histogram is copied exactly
    assert Histogram.snapshot(raw) == s
    assert Histogram.snapshot(bytearray(raw)) == s
    assert Histogram.snapshot(memoryview(b"x" + raw)[1:]) == s  # not 8-byte aligned
    assert Histogram.snapshot(s) == s


def test_snapshot_rejects() -> None:
    with pytest.raises(ValueError, match="bytes"):
        Histogram.snapshot(b"\0" * 100)
    with pytest.raises(TypeError, match="int"):
        Histogram.snapshot(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rtudp_mpsc_ring"):
        Histogram.snapshot(ffi.new("struct rtudp_mpsc_ring *"))
    with pytest.raises(ValueError, match="NULL"):
        Histogram.snapshot(ffi.cast("struct rtudp_hist *", 0))


def test_snapshot_is_a_private_copy(recorded) -> None:
    """Recording after the snapshot does not change it."""
    h, values = recorded
    s = Histogram.snapshot(h)
    lib.rtudp_hist_record(h, 10**9)
    assert s.count == len(values)
    assert s.max_ns == max(values)
    assert Histogram.snapshot(h).count == len(values) + 1


def test_snapshot_of_shared_mapping() -> None:
    """A histogram inside a shared mapping (as in a segment): written through one
    pointer, read through a snapshot of another to the same memory."""
    size = ffi.sizeof("struct rtudp_hist")
    with mmap.mmap(-1, size) as mm:
        writer = ffi.from_buffer("struct rtudp_hist *", mm)
        reader = ffi.cast("struct rtudp_hist *", writer)
        record_all(writer, range(0, 1_000_000, 997))
        s = Histogram.snapshot(reader)
        assert s.count == len(range(0, 1_000_000, 997))
        assert s.min_ns == 0 and s.max_ns == max(range(0, 1_000_000, 997))
        del writer, reader


def test_snapshot_repairs_a_torn_copy() -> None:
    """Bytes caught half-way through a record (bucket bumped, count not yet) come
    out consistent: count = bucket sum, min/max inside the extreme buckets."""
    h = new_hist()
    record_all(h, [1000, 2000])
    h.buckets[bucket_of(9000)] += 1  # the writer's next record, half done
    s = Histogram.snapshot(bytes(ffi.buffer(h)))
    assert s.count == 3 == sum(c for _, _, c in s.buckets())
    assert s.min_ns == 1000
    assert s.max_ns == lib.rtudp_hist_upper(bucket_of(9000))


# ------------------------------------------------------------------ diff and merge


def test_diff_between_snapshots() -> None:
    """later - earlier holds exactly what was recorded in between."""
    first = lognormal_ns(4, 10_000, 8.0, 1.0)
    second = lognormal_ns(5, 10_000, 12.0, 0.5) + [-3, 2**37]
    h = new_hist()
    record_all(h, first)
    before = Histogram.snapshot(h)
    record_all(h, second)
    after = Histogram.snapshot(h)
    d = after - before
    only = Histogram.from_values(second)

    assert d.count == len(second)
    assert d.sum_ns == only.sum_ns
    assert d.negative == 1 and d.clamped == 1
    assert d.buckets() == only.buckets()
    # the extremes of an interval are bucket bounds on the safe side
    lo, hi = min(map(kept, second)), max(map(kept, second))
    assert d.min_ns <= lo and bucket_of(d.min_ns) == bucket_of(lo)
    assert d.max_ns >= hi and bucket_of(d.max_ns) == bucket_of(hi)
    # ... so its percentiles are those of the interval's data, within a bucket
    data = sorted(map(kept, second))
    for p in (50, 90, 99):
        ref = nearest_rank(data, p)
        assert bucket_of(d.percentile(p)) == bucket_of(ref)
    # the operands are unchanged, and nothing happened between a snapshot and itself
    assert before.count == len(first) and after.count == len(first) + len(second)
    assert (after - after).count == 0
    assert (after - after).percentile(50) is None


def test_diff_across_a_reset() -> None:
    """If the owner reset the histogram between the snapshots, the diff is all of the later one."""
    h = new_hist()
    record_all(h, range(100, 200))
    before = Histogram.snapshot(h)
    lib.rtudp_hist_reset(h)
    record_all(h, [5000, 6000])
    after = Histogram.snapshot(h)
    assert after - before == after
    with pytest.raises(TypeError):
        after - 5  # type: ignore[operator]


def test_merge() -> None:
    """Merging equals recording everything into one histogram; operands unchanged."""
    a_vals, b_vals = lognormal_ns(6, 5000), lognormal_ns(7, 3000, 6.0, 0.3) + [-1]
    a, b = Histogram.from_values(a_vals), Histogram.from_values(b_vals)
    m = a.merge(b)
    assert m == Histogram.from_values(a_vals + b_vals)
    assert a + b == m
    assert m.min_ns == 0 and m.max_ns == max(a_vals)
    assert a.count == len(a_vals) and b.count == len(b_vals)
    assert Histogram().merge(a) == a and a.merge(Histogram()) == a
    with pytest.raises(TypeError, match="list"):
        a.merge([1, 2])  # type: ignore[arg-type]


# ------------------------------------------------------------------ output


def test_to_dict_is_json(recorded) -> None:
    h, values = recorded
    d = Histogram.snapshot(h).to_dict()
    back = json.loads(json.dumps(d))
    assert back["count"] == len(values)
    assert back["min_ns"] == min(values) and back["max_ns"] == max(values)
    assert set(back["percentiles"]) == {"p50", "p90", "p99", "p99.9"}
    assert sum(c for _, _, c in back["buckets"]) == len(values)
    assert all(lo <= hi for lo, hi, _ in back["buckets"])


_ROW = re.compile(r"^\s*(.+?) - (.+?) \| (#*)\s* (\d+)\s+(\d+\.\d\d)%$")


@pytest.mark.parametrize("width", [10, 50])
def test_text_histogram(recorded, width: int) -> None:
    """A summary line, then ~20 log-scale rows covering every value, bars scaled to width."""
    h, values = recorded
    s = Histogram.snapshot(h)
    text = s.text_histogram(width=width)
    lines = text.splitlines()
    assert lines[0].startswith(f"count {len(values)}")
    assert format_ns(s.percentile(99)) in lines[0]
    rows = [_ROW.match(line) for line in lines[1:]]
    assert all(rows), text
    assert 10 <= len(rows) <= 21
    counts = [int(m.group(4)) for m in rows]
    bars = [len(m.group(3)) for m in rows]
    assert sum(counts) == len(values)
    assert max(bars) == width and all(b <= width for b in bars)
    assert all((b > 0) == (c > 0) for b, c in zip(bars, counts))
    assert rows[-1].group(5) == "100.00"
    assert rows[0].group(1).strip() == format_ns(min(values))
    assert rows[-1].group(2).strip() == format_ns(max(values))
    # cumulative percentages never go down
    cum = [float(m.group(5)) for m in rows]
    assert cum == sorted(cum)


def test_text_histogram_small_and_invalid() -> None:
    one = Histogram.from_values([7] * 3)
    lines = one.text_histogram(width=5).splitlines()
    assert len(lines) == 2 and lines[1].endswith("##### 3 100.00%")
    few = Histogram.from_values([1, 3, 3, 9])
    assert len(few.text_histogram().splitlines()) == 1 + 9  # one row per bucket 1..9
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            one.text_histogram(width=bad)  # type: ignore[arg-type]


def test_format_ns() -> None:
    assert format_ns(None) == "-"
    assert format_ns(850) == "850 ns"
    assert format_ns(12_345) == "12.3 us"
    assert format_ns(4_560_000) == "4.56 ms"
    assert format_ns(1.2e9) == "1.20 s"
