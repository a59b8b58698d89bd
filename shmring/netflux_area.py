"""Read a netflux channel's kind area (``struct rtudp_nf_area``, csrc/proto/netflux_shm.h)
into plain values: for the netflux handle's ``stats()`` and for monitors (rtstat).

Counters have one writer thread each in the worker and are read without locks; a
value is a 64-bit word, never torn.  Histograms are snapshots.
"""
from __future__ import annotations

from typing import Any

from ._native import ffi, lib
from .errors import BadSegmentError
from .hist import Histogram

LINK_NAMES = {lib.RTUDP_NF_WAITING: "waiting", lib.RTUDP_NF_UP: "up", lib.RTUDP_NF_LOST: "lost"}

_TX = ("sent", "missed", "send_errors", "image_busy", "max_lateness_ns", "own_jitter_ns",
       "seq", "feedback", "cycle", "start_ns", "last_sent_ns")
_RX = ("valid", "duplicate", "old", "short_pkts", "partner_lost", "feedback_lost",
       "watchdog_trips", "recoveries", "resyncs", "last_rtt_ns", "partner_jitter_ns",
       "partner_seq", "partner_feedback", "last_valid_ns", "lost_at_ns", "recovered_at_ns",
       "events")
HISTOGRAMS = ("own_interval", "partner_interval", "rtt")


def nf_area(area: Any, area_bytes: int, where: str) -> Any:
    """``area`` as a checked ``struct rtudp_nf_area *`` (BadSegmentError naming ``where``)."""
    a = ffi.cast("struct rtudp_nf_area *", area)
    check = ffi.new("struct rtudp_check *")
    if lib.rtudp_nf_check_area(a, area_bytes, check) != lib.RTUDP_OK:
        raise BadSegmentError(f"{where}: {ffi.string(check.msg).decode(errors='replace')}")
    return a


def nf_counters(a: Any) -> dict[str, Any]:
    """The area's counters and state, named ``nf_<field>`` (``nf_link`` as a name)."""
    out: dict[str, Any] = {f"nf_{k}": int(getattr(a.tx, k)) for k in _TX}
    out.update({f"nf_{k}": int(getattr(a.rx, k)) for k in _RX})
    out["nf_rejected"] = out["nf_duplicate"] + out["nf_old"] + out["nf_short_pkts"]
    out["nf_link"] = LINK_NAMES.get(int(a.rx.link), f"state {int(a.rx.link)}")
    return out


def nf_histograms(a: Any) -> dict[str, Histogram]:
    """Snapshots of the interval and RTT histograms."""
    return {k: Histogram.snapshot(ffi.addressof(a, k)) for k in HISTOGRAMS}


def nf_stats(a: Any) -> dict[str, Any]:
    """Counters plus percentile keys of each histogram (``nf_rtt_p99_ns``, ...)."""
    out = nf_counters(a)
    for k, h in nf_histograms(a).items():
        out.update(h.stat_keys(f"nf_{k}"))
    return out


__all__ = ["HISTOGRAMS", "LINK_NAMES", "nf_area", "nf_counters", "nf_histograms", "nf_stats"]
