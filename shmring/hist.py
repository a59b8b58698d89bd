"""Latency histograms: Python's view of ``struct rtudp_hist`` (csrc/hist.h).

A worker records latencies into a histogram in shared memory; anyone reads it
without locks.  :meth:`Histogram.snapshot` copies one (through the C
``rtudp_hist_snapshot``, word by word, repaired so that its count, buckets and
min/max agree) into memory private to the :class:`Histogram`, so everything here
works on a stable copy and never touches shared memory again.  A snapshot is a
value: :meth:`Histogram.merge` and ``-`` (what happened between two snapshots)
return new histograms.

Buckets (from the C side): one per nanosecond up to 255 ns, then 128 per power of
two, so a reported value is at most ~0.8 % above the true one; values clamp at
2^36 - 1 ns (~68.7 s), negative values are recorded as 0.  Percentiles are
nearest-rank and report the upper bound of the bucket holding the value, clamped
to [min, max].  An empty histogram has no min, max, mean or percentiles: those
are ``None`` (not 0 ns, which would read as a perfect latency).
"""
from __future__ import annotations

from numbers import Real
from typing import Any, Iterable, Sequence, Union

from ._native import ffi, lib

__all__ = ["BUCKETS", "MAX_VALUE_NS", "DEFAULT_PERCENTILES", "Histogram", "format_ns"]

#: number of buckets (RTUDP_HIST_BUCKETS)
BUCKETS: int = lib.RTUDP_HIST_BUCKETS
#: largest value kept as is; larger ones are recorded as this and counted in ``clamped``
MAX_VALUE_NS: int = (1 << lib.RTUDP_HIST_MAX_BIT) - 1
#: what :meth:`Histogram.percentiles` and :meth:`Histogram.to_dict` report by default
DEFAULT_PERCENTILES: tuple[float, ...] = (50, 90, 99, 99.9)

#: percentiles of :meth:`Histogram.stat_keys` and their key names
_STAT_PCTS = {50: "p50", 90: "p90", 99: "p99", 99.9: "p999"}
_CTYPE = "struct rtudp_hist *"
_PTR = ffi.typeof(_CTYPE)
_SIZE: int = ffi.sizeof("struct rtudp_hist")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

#: what :meth:`Histogram.snapshot` accepts
Source = Union["Histogram", Any, bytes, bytearray, memoryview]


def format_ns(ns: float | None) -> str:
    """A duration in ns as a short human string: ``850 ns``, ``12.3 us``, ``4.56 ms``, ``1.20 s``."""
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            x = ns / scale
            break
    else:
        return f"{ns:.0f} ns"
    if x >= 100:
        return f"{x:.0f} {unit}"
    if x >= 10:
        return f"{x:.1f} {unit}"
    return f"{x:.2f} {unit}"


def _check_percentile(p: object) -> float:
    """p as a float in [0, 100], or TypeError/ValueError naming the offending value."""
    if isinstance(p, bool) or not isinstance(p, Real):
        raise TypeError(f"percentile must be a number in [0, 100], not {p!r}")
    value = float(p)
    if not 0.0 <= value <= 100.0:  # also rejects NaN
        raise ValueError(f"percentile must be in [0, 100], got {p!r}")
    return value


class Histogram:
    """A private, immutable copy of a ``struct rtudp_hist``.

    Build one with :meth:`snapshot` (from shared memory, a cffi pointer, bytes or
    another Histogram), :meth:`from_values`, or ``Histogram()`` (empty).
    """

    __slots__ = ("_h", "_counts")

    def __init__(self) -> None:
        """An empty histogram."""
        self._h = ffi.new(_CTYPE)  # zeroed: an empty histogram
        self._counts: list[int] | None = None

    # ------------------------------------------------------------ construction

    @classmethod
    def snapshot(cls, source: Source) -> Histogram:
        """Copy a histogram that may be being written right now.

        ``source`` is a cffi ``struct rtudp_hist *`` (e.g. into a mapped segment:
        copied word by word with atomic loads, so no word is torn), bytes-like of
        exactly ``sizeof(struct rtudp_hist)`` (a copy already taken, e.g. from
        :meth:`to_bytes`), or another :class:`Histogram`.
        """
        out = cls()
        if isinstance(source, Histogram):
            ffi.memmove(out._h, source._h, _SIZE)
            return out
        if isinstance(source, ffi.CData):
            if ffi.typeof(source) is not _PTR:
                raise TypeError(f"expected a cffi '{_CTYPE}', got {ffi.typeof(source).cname!r}")
            if source == ffi.NULL:
                raise ValueError("cannot snapshot a NULL struct rtudp_hist pointer")
            lib.rtudp_hist_snapshot(source, out._h)
            return out
        if isinstance(source, (bytes, bytearray, memoryview)):
            with memoryview(source) as view:
                if view.nbytes != _SIZE:
                    raise ValueError(f"a struct rtudp_hist is {_SIZE} bytes, got {view.nbytes}")
                # copy first: the buffer need not be 8-byte aligned for the C loads
                ffi.memmove(out._h, view.cast("B"), _SIZE)
            lib.rtudp_hist_snapshot(out._h, out._h)
            return out
        raise TypeError(
            f"cannot snapshot {type(source).__name__!r}: expected a cffi '{_CTYPE}', "
            f"bytes of one, or a Histogram")

    @classmethod
    def from_values(cls, values: Iterable[int]) -> Histogram:
        """A histogram of these nanosecond values, recorded by the C code a worker uses."""
        out = cls()
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"histogram values are integer nanoseconds, not {v!r}")
            lib.rtudp_hist_record(out._h, min(max(v, _INT64_MIN), _INT64_MAX))
        return out

    # ------------------------------------------------------------ raw numbers

    def _bucket_counts(self) -> list[int]:
        """Every bucket's count, indexed like the C array (cached: a Histogram is immutable)."""
        if self._counts is None:
            self._counts = ffi.unpack(self._h.buckets, BUCKETS)
        return self._counts

    @property
    def count(self) -> int:
        """Number of values recorded."""
        return int(self._h.count)

    @property
    def sum_ns(self) -> int:
        """Sum of the values (as recorded: negative ones as 0, large ones clamped)."""
        return int(self._h.sum_ns)

    @property
    def clamped(self) -> int:
        """Values above :data:`MAX_VALUE_NS`, recorded as that."""
        return int(self._h.clamped)

    @property
    def negative(self) -> int:
        """Negative values, recorded as 0."""
        return int(self._h.negative)

    @property
    def min_ns(self) -> int | None:
        """Smallest value (a bucket bound for a difference), None when empty."""
        return int(self._h.min_ns) if self._h.count else None

    @property
    def max_ns(self) -> int | None:
        """Largest value (a bucket bound for a difference), None when empty."""
        return int(self._h.max_ns) if self._h.count else None

    @property
    def mean_ns(self) -> float | None:
        """Mean value, None when empty."""
        n = self._h.count
        return self._h.sum_ns / n if n else None

    # ------------------------------------------------------------ statistics

    def percentile(self, p: float) -> int | None:
        """The p-th percentile (nearest rank, p in [0, 100]) in ns, None when empty.

        Reported as the upper bound of the bucket holding it, clamped to
        [min, max]: never below the exact value, and at most ~0.8 % above it.
        """
        value = _check_percentile(p)
        if not self._h.count:
            return None
        return int(lib.rtudp_hist_percentile(self._h, value))

    def percentiles(self, ps: Sequence[float] = DEFAULT_PERCENTILES) -> dict[float, int | None]:
        """``{p: percentile(p)}`` for each p, in the order given."""
        return {p: self.percentile(p) for p in ps}

    def buckets(self) -> list[tuple[int, int, int]]:
        """``(lower_ns, upper_ns, count)`` of every non-empty bucket, bounds inclusive."""
        return [(int(lib.rtudp_hist_lower(i)), int(lib.rtudp_hist_upper(i)), c)
                for i, c in enumerate(self._bucket_counts()) if c]

    # ------------------------------------------------------------ combining

    def __sub__(self, other: object) -> Histogram:
        """What was recorded between snapshot ``other`` and this later one.

        min/max of the result are bounds taken from its extreme buckets.  If the
        histogram was reset in between, the result is all of ``self``.
        """
        if not isinstance(other, Histogram):
            return NotImplemented
        out = Histogram()
        lib.rtudp_hist_diff(self._h, other._h, out._h)
        return out

    def merge(self, other: Histogram) -> Histogram:
        """A new histogram holding the values of both (e.g. several workers' together)."""
        if not isinstance(other, Histogram):
            raise TypeError(f"can only merge a Histogram, not {type(other).__name__!r}")
        out = Histogram.snapshot(self)
        lib.rtudp_hist_merge(out._h, other._h)
        return out

    def __add__(self, other: object) -> Histogram:
        """Same as :meth:`merge`."""
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.merge(other)

    def __eq__(self, other: object) -> bool:
        """Same data: count, sum, min, max, counters and every bucket."""
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------ output

    def to_bytes(self) -> bytes:
        """The raw ``struct rtudp_hist`` (what :meth:`snapshot` accepts back)."""
        return bytes(ffi.buffer(self._h))

    def to_dict(self, ps: Sequence[float] = DEFAULT_PERCENTILES) -> dict[str, Any]:
        """A JSON-ready summary: counters, min/mean/max, ``percentiles`` keyed
        ``"p50"``, ``"p99.9"``..., and the non-empty ``buckets`` as [lower, upper, count]."""
        return {
            "count": self.count,
            "sum_ns": self.sum_ns,
            "min_ns": self.min_ns,
            "max_ns": self.max_ns,
            "mean_ns": self.mean_ns,
            "clamped": self.clamped,
            "negative": self.negative,
            "percentiles": {f"p{float(p):g}": v for p, v in self.percentiles(ps).items()},
            "buckets": [list(b) for b in self.buckets()],
        }

    def stat_keys(self, prefix: str) -> dict[str, Any]:
        """Flat keys as ``Channel.stats()`` reports them: ``<prefix>_count``, ``_min_ns``,
        ``_max_ns``, ``_mean_ns``, ``_p50_ns``, ``_p90_ns``, ``_p99_ns``, ``_p999_ns``."""
        out: dict[str, Any] = {f"{prefix}_count": self.count, f"{prefix}_min_ns": self.min_ns,
                               f"{prefix}_max_ns": self.max_ns,
                               f"{prefix}_mean_ns": self.mean_ns}
        for p, v in self.percentiles(tuple(_STAT_PCTS)).items():
            out[f"{prefix}_{_STAT_PCTS[p]}_ns"] = v
        return out

    def summary(self) -> str:
        """One line: count, min, mean, default percentiles, max (and the odd counters)."""
        if not self.count:
            return "count 0"
        parts = [f"count {self.count}", f"min {format_ns(self.min_ns)}",
                 f"mean {format_ns(self.mean_ns)}"]
        parts += [f"p{float(p):g} {format_ns(v)}" for p, v in self.percentiles().items()]
        parts.append(f"max {format_ns(self.max_ns)}")
        if self.clamped:
            parts.append(f"clamped {self.clamped}")
        if self.negative:
            parts.append(f"negative {self.negative}")
        return "  ".join(parts)

    def _row_starts(self, lo: int, hi: int, rows: int) -> list[int]:
        """First bucket of each row: log-spaced value edges between the extreme
        non-empty buckets, snapped to bucket boundaries (so rows never split one)."""
        if hi - lo + 1 <= rows:
            return list(range(lo, hi + 1))
        a = max(int(lib.rtudp_hist_lower(lo)), 1)
        b = int(lib.rtudp_hist_upper(hi)) + 1
        ratio = b / a
        starts = {lo}
        for r in range(1, rows):
            i = int(lib.rtudp_hist_index(int(round(a * ratio ** (r / rows)))))
            if lo < i <= hi:
                starts.add(i)
        return sorted(starts)

    def rows(self, rows: int = 20) -> list[tuple[int, int, int]]:
        """About ``rows`` log-spaced rows ``(lower_ns, upper_ns, count)`` from min to max
        (rows never split a bucket; the first starts at min, the last ends at max);
        empty when nothing was recorded.  What bar charts of it draw."""
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"rows must be an integer >= 1, got {rows!r}")
        if not self.count:
            return []
        counts = self._bucket_counts()
        nonempty = [i for i, c in enumerate(counts) if c]
        lo, hi = nonempty[0], nonempty[-1]
        starts = self._row_starts(lo, hi, rows)
        ends = starts[1:] + [hi + 1]
        # label rows with bucket bounds, except that the chart spans exactly min..max
        mn, mx = int(self._h.min_ns), int(self._h.max_ns)
        return [(max(int(lib.rtudp_hist_lower(s)), mn), min(int(lib.rtudp_hist_upper(e - 1)), mx),
                 sum(counts[s:e])) for s, e in zip(starts, ends)]

    def text_histogram(self, width: int = 50, rows: int = 20) -> str:
        """A text bar chart: a summary line, then about ``rows`` log-scale rows
        ``lower - upper | ####  count  cumulative%`` from min to max."""
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be an integer >= 1, got {width!r}")
        table = self.rows(rows)
        if not table:
            return "(empty histogram: no values recorded)"
        total = sum(c for _, _, c in table)
        biggest = max(c for _, _, c in table)
        cw = len(str(biggest))
        lines = [self.summary()]
        seen = 0
        for lower, upper, c in table:
            seen += c
            bar = "#" * max(1, round(c * width / biggest)) if c else ""
            lines.append(f"{format_ns(lower):>9} - {format_ns(upper):>9} | {bar:<{width}} "
                         f"{c:>{cw}} {100.0 * seen / total:6.2f}%")
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not self.count:
            return "Histogram(count=0)"
        p = self.percentiles((50, 99))
        return (f"Histogram(count={self.count}, min_ns={self.min_ns}, p50_ns={p[50]}, "
                f"p99_ns={p[99]}, max_ns={self.max_ns})")
