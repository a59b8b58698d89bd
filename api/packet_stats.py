"""The RtUDP statistics dictionary, identical for every implementation.

Latency here means send lateness: actual departure - requested send time, as
RtUDP defined it.  Values go into the same log-linear histogram the workers write
(``struct rtudp_hist``), so percentiles mean the same thing everywhere.
"""
from __future__ import annotations

from typing import Any

from rtudp.shmring._native import ffi, lib
from rtudp.shmring.hist import Histogram

#: the keys get_packet_stats() returns, in this order, for every implementation
PACKET_STATS_KEYS = (
    "n_packets_sent", "n_packets_rec", "n_packets_req", "n_immediate_packets",
    "n_tx_packets_dropped", "n_rx_packets_dropped", "min_latency_ns", "max_latency_ns",
    "avg_latency_ns", "total_latency_ns", "p50_latency_ns", "p99_latency_ns",
    "p999_latency_ns", "histogram",
)


def packet_stats(counts: dict[str, int], lateness: Histogram) -> dict[str, Any]:
    """Build the RtUDP stats dict from the counters and the lateness histogram.

    ``counts`` holds the six ``n_*`` counters; latency figures come from the
    histogram (0 when nothing was sent, as RtUDP reported).
    """
    pct = lateness.percentiles((50, 99, 99.9))
    stats: dict[str, Any] = {key: int(counts.get(key, 0)) for key in PACKET_STATS_KEYS[:6]}
    stats.update({
        "min_latency_ns": lateness.min_ns or 0,
        "max_latency_ns": lateness.max_ns or 0,
        "avg_latency_ns": int(lateness.mean_ns or 0),
        "total_latency_ns": lateness.sum_ns,
        "p50_latency_ns": pct[50] or 0,
        "p99_latency_ns": pct[99] or 0,
        "p999_latency_ns": pct[99.9] or 0,
        "histogram": {
            "upper_ns": [upper for _lower, upper, _n in lateness.buckets()],
            "counts": [n for _lower, _upper, n in lateness.buckets()],
        },
    })
    return stats


class LatencyRecorder:
    """A private ``struct rtudp_hist`` that Python code records into (one writer)."""

    def __init__(self) -> None:
        self._hist = ffi.new("struct rtudp_hist *")

    def record(self, value_ns: int) -> None:
        """Add one value (negative values count as 0, as in the worker)."""
        lib.rtudp_hist_record(self._hist, value_ns)

    def reset(self) -> None:
        """Forget every value."""
        lib.rtudp_hist_reset(self._hist)

    def snapshot(self) -> Histogram:
        """The values so far, as an immutable Histogram."""
        return Histogram.snapshot(self._hist)
