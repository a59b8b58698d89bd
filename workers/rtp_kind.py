"""The ``rtp`` channel kind's options and kind area (``csrc/proto/rtp_area.h``).

Options of ``open_channel(..., kind="rtp", options={...})``:

``tx_mode``      ``"paced"`` (default: frames leave one ptime apart at the RTP clock),
                 ``"timed"`` (each frame at its ``at_ns``) or ``"raw"`` (datagrams as
                 given, as on a udp channel).  In paced and timed mode the worker
                 writes the RTP header: SSRC, sequence number, timestamp.
``rx_mode``      ``"jbuf"`` (default: ordered frames and erasures from the jitter
                 buffer) or ``"raw"`` (datagrams as received).
``clock_rate``   RTP clock in Hz (default 8000).
``ptime_ms``     packet time in ms (default 20; fractions allowed, e.g. 2.5).
``payload_type`` default payload type of sent frames (default 0, PCMU).
``jb_capacity``  jitter buffer size in packets (default 64).
``latency_ms``   jitter buffer playout latency (default 60; 0 = count mode, a gap is
                 lost when ``jb_capacity`` packets wait behind it, as librtpsynth).
``rtcp``         ``"port"`` (RTCP on the RTP port + 1, RFC 3550; a pool-chosen RTP
                 port is then even), ``"mux"`` (RTCP on the RTP port, RFC 5761) or
                 ``"off"``.  Default: ``"port"``, but ``"off"`` for a raw channel
                 (``tx_mode`` and ``rx_mode`` both ``"raw"``: RtpServer's).
``rtcp_interval_ms`` the RTCP report interval's minimum (RFC 3550 6.2, randomised
                 over 0.5..1.5 of it; default 5000, at least 100).
"""
from __future__ import annotations

from typing import Any, Mapping

from rtudp.shmring._native import ffi, lib

TX_MODES = {"paced": lib.RTUDP_RTP_TX_PACED, "timed": lib.RTUDP_RTP_TX_TIMED,
            "raw": lib.RTUDP_RTP_TX_RAW}
RX_MODES = {"jbuf": lib.RTUDP_RTP_RX_JBUF, "raw": lib.RTUDP_RTP_RX_RAW}
RTCP_MODES = {"off": lib.RTUDP_RTCP_OFF, "port": lib.RTUDP_RTCP_PORT, "mux": lib.RTUDP_RTCP_MUX}
#: ``rtcp``'s default depends on the modes (:func:`check_options`): None until then
DEFAULTS: dict[str, Any] = {"tx_mode": "paced", "rx_mode": "jbuf", "clock_rate": 8000,
                            "ptime_ms": 20, "payload_type": 0, "jb_capacity": 64,
                            "latency_ms": 60, "rtcp": None, "rtcp_interval_ms": 5000}
MAX_CLOCK_RATE = 10_000_000   # RTP_GEN_MAX_RATE
MAX_PTIME_US = 10_000_000     # RTP_GEN_MAX_PTIME_US
MAX_JB_CAPACITY = 1 << 20     # RTP_JB_MAX_CAPACITY


def _int(options: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"rtp option {key} must be an int, not {type(value).__name__}: "
                        f"{value!r}")
    if not low <= value <= high:
        raise ValueError(f"rtp option {key}={value!r} is out of range {low}..{high}")
    return value


def _choice(options: Mapping[str, Any], key: str, choices: Mapping[str, int]) -> str:
    value = options[key]
    if value not in choices:
        raise ValueError(f"rtp option {key}={value!r} must be one of {sorted(choices)}")
    return str(value)


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The user's rtp options, checked and completed with the defaults."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown rtp channel option(s) {unknown}: known are "
                         f"{sorted(DEFAULTS)}")
    opts = {**DEFAULTS, **options}
    _choice(opts, "tx_mode", TX_MODES)
    _choice(opts, "rx_mode", RX_MODES)
    _int(opts, "clock_rate", 1, MAX_CLOCK_RATE)
    ptime = opts["ptime_ms"]
    if isinstance(ptime, bool) or not isinstance(ptime, (int, float)):
        raise TypeError(f"rtp option ptime_ms must be a number, not {ptime!r}")
    if not 0 < ptime * 1000 <= MAX_PTIME_US or round(ptime * 1000) < 1:
        raise ValueError(f"rtp option ptime_ms={ptime!r} is out of range 0.001..10000")
    pt = _int(opts, "payload_type", 0, 127)
    if 72 <= pt <= 76:
        raise ValueError(f"rtp option payload_type={pt} is in 72..76, which reads as RTCP "
                         f"(RFC 5761)")
    _int(opts, "jb_capacity", 1, MAX_JB_CAPACITY)
    _int(opts, "latency_ms", 0, 60_000)
    if opts["rtcp"] is None:
        raw = opts["tx_mode"] == "raw" and opts["rx_mode"] == "raw"
        opts["rtcp"] = "off" if raw else "port"
    _choice(opts, "rtcp", RTCP_MODES)
    _int(opts, "rtcp_interval_ms", lib.RTUDP_RTCP_MIN_INTERVAL_MS, 3_600_000)
    return opts


def port_pair(options: Mapping[str, Any]) -> bool:
    """Whether the channel's port needs its neighbour: RTCP on the RTP port + 1 (a
    pool-chosen RTP port is then even, with the odd one above it free)."""
    return bool(options.get("rtcp") == "port")


def packet_rate(options: Mapping[str, Any], direction: int) -> float:
    """A paced stream's frames a second, sent, and received when the channel receives
    (its peer sends at the same ptime); RTCP's few are left out."""
    per_s = 1000.0 / options["ptime_ms"]
    sends = direction != lib.RTUDP_DIR_RECV and options["tx_mode"] == "paced"
    receives = direction != lib.RTUDP_DIR_SEND
    return per_s * (int(sends) + int(receives))


def area_bytes(_options: Mapping[str, Any]) -> int:
    """Kind area size: one struct rtudp_rtp_area."""
    return int(ffi.sizeof("struct rtudp_rtp_area"))


def configure(area: Any, size: int, options: Mapping[str, Any], _direction: int) -> None:
    """Write the checked options into the kind area (before the worker sees it)."""
    if size < ffi.sizeof("struct rtudp_rtp_area"):
        raise ValueError(f"rtp kind area of {size} bytes is smaller than struct rtudp_rtp_area")
    a = ffi.cast("struct rtudp_rtp_area *", area)
    a.tx_mode = TX_MODES[options["tx_mode"]]
    a.rx_mode = RX_MODES[options["rx_mode"]]
    a.clock_rate = options["clock_rate"]
    a.ptime_us = round(options["ptime_ms"] * 1000)
    a.payload_type = options["payload_type"]
    a.jb_capacity = options["jb_capacity"]
    a.jb_latency_ms = options["latency_ms"]
    a.rtcp_mode = RTCP_MODES[options["rtcp"]]
    a.rtcp_interval_ms = options["rtcp_interval_ms"]
    a.rtcp_rtt_ns = -1


__all__ = ["DEFAULTS", "RTCP_MODES", "RX_MODES", "TX_MODES", "area_bytes", "check_options",
           "configure", "port_pair"]
