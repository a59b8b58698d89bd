"""rtudp histograms in HdrHistogram's file formats, for HdrHistogram's own tools.

* ``.hlog`` - the interval histogram log (jHiccup / ``HistogramLogWriter`` format,
  log format version 1.3): comment header, legend, then one line per interval
  ``start_s,length_s,max_ms,<base64 compressed V2 histogram>``; values are
  nanoseconds and ``Interval_Max`` is in milliseconds (the jHiccup convention), so
  ``HistogramLogProcessor`` and HistogramLogAnalyzer read it as they read jHiccup's.
* ``.hgrm`` (anything else) - the percentile distribution
  (``outputPercentileDistribution``) with values in microseconds, which the
  HdrHistogram plotter (hdrhistogram.github.io/HdrHistogram/plotFiles.html) plots.

The ``hdrhistogram`` package (HdrHistogram_py) encodes both.  rtudp's buckets
(~0.8 % wide) are recorded at their upper bound clamped to [min, max], the value
rtudp's own percentiles report, into an HdrHistogram with 3 significant digits.
"""
from __future__ import annotations

import time
from typing import IO, Sequence

from hdrh.histogram import HdrHistogram

from rtudp.shmring.hist import MAX_VALUE_NS, Histogram

LOG_FORMAT_VERSION = "1.3"
#: .hgrm values in microseconds
HGRM_UNIT_RATIO = 1000.0
#: .hlog Interval_Max in milliseconds (values stay in ns)
HLOG_MAX_RATIO = 1_000_000.0


def to_hdr(h: Histogram) -> HdrHistogram:
    """An HdrHistogram holding ``h``'s values (each at its bucket's reported value)."""
    out = HdrHistogram(1, MAX_VALUE_NS, 3)
    if h.count:
        lo, hi = h.min_ns or 0, h.max_ns or 0
        for _lower, upper, n in h.buckets():
            out.record_value(min(max(upper, lo), hi), n)
    return out


def mono_to_epoch_s(mono_ns: int) -> float:
    """A CLOCK_MONOTONIC stamp as seconds since the epoch (through the clocks' offset now)."""
    return time.time() - (time.monotonic_ns() - mono_ns) / 1e9


def write_hlog(f: IO[str], intervals: Sequence[tuple[int, int, Histogram]], comment: str,
               start_ns: int) -> None:
    """Write ``(start_ns, end_ns, histogram)`` intervals (CLOCK_MONOTONIC) as a log;
    timestamps are seconds since ``start_ns``, which the header gives as StartTime."""
    start_s = mono_to_epoch_s(start_ns)
    f.write(f"#{comment}\n")
    f.write(f"#[Histogram log format version {LOG_FORMAT_VERSION}]\n")
    f.write(f"#[StartTime: {start_s:.3f} (seconds since epoch), "
            f"{time.strftime('%a %b %d %H:%M:%S %Z %Y', time.localtime(start_s))}]\n")
    f.write(f"#[BaseTime: {start_s:.3f} (seconds since epoch)]\n")
    f.write('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"\n')
    for a, b, h in intervals:
        hdr = to_hdr(h)
        payload = hdr.encode().decode("ascii")
        f.write(f"{(a - start_ns) / 1e9:.3f},{(b - a) / 1e9:.3f},"
                f"{hdr.get_max_value() / HLOG_MAX_RATIO:.3f},{payload}\n")


def write_hgrm(f: IO[bytes], h: Histogram) -> None:
    """Write ``h``'s percentile distribution (values in microseconds)."""
    to_hdr(h).output_percentile_distribution(f, HGRM_UNIT_RATIO)


__all__ = ["HGRM_UNIT_RATIO", "HLOG_MAX_RATIO", "to_hdr", "write_hgrm", "write_hlog"]
