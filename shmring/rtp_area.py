"""The rtp channel kind's area (``csrc/proto/rtp_area.h``) as plain values: its
counters, for ``RtpChannel.stats()``, rtstat and the metrics export."""
from __future__ import annotations

from typing import Any

from ._native import ffi, lib

#: the counters of struct rtudp_rtp_area, in the order rtstat shows them
RTP_AREA_COUNTERS = ("tx_ssrc", "tx_next_seq", "tx_next_ts", "tx_frames", "tx_underruns",
                     "tx_bad_records", "rx_frames", "rx_erasures", "rx_erased", "rx_invalid",
                     "rx_duplicates", "rx_late", "rx_reordered", "rx_restarts", "rx_ssrc",
                     "rx_lost", "rx_expected", "rx_jitter", "rx_other_ssrc", "rx_no_buffer",
                     "rx_published_errors")
AREA_SIZE = ffi.sizeof("struct rtudp_rtp_area")


def rtp_area_counters(area: Any, area_bytes: int) -> dict[str, int]:
    """The counters of an rtp kind area (``void *``); {} when it is too small to be one."""
    if area == ffi.NULL or area_bytes < AREA_SIZE:
        return {}
    a = ffi.cast("struct rtudp_rtp_area *", area)
    return {k: int(getattr(a, k)) for k in RTP_AREA_COUNTERS}


def kind_counters(kind: int, area: Any, area_bytes: int) -> dict[str, int]:
    """A channel kind's own counters from its area, keys prefixed with the kind
    (``rtp_rx_frames``); {} for kinds without any."""
    if kind == lib.RTUDP_KIND_RTP:
        return {f"rtp_{k}": v for k, v in rtp_area_counters(area, area_bytes).items()}
    return {}


__all__ = ["AREA_SIZE", "RTP_AREA_COUNTERS", "kind_counters", "rtp_area_counters"]
