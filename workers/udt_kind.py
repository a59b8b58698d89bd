"""The udt channel kind as the supervisor knows it: options and the kind area.

A udt channel is one UDP port carrying many UDT sockets (``rtudp.udt``).  Options
(``open_channel(..., kind="udt", options={...})``):

``max_sockets``   UDT sockets the port can hold at once (listeners, accepted and
                  connecting ones), 1 .. 4096
``buffer_packets`` packets of each socket's send and of its receive buffer (16 ..
                  1048576; also the flow window it offers); 1456 bytes each
``mss``           maximum segment size offered, bytes incl. IP + UDP (76 .. 1500)
``congestion``    ``"lt"`` (loss-tolerant, the default) or ``"daimd"`` (libudt's)
``broken_timeout`` seconds of silence after which a connection is broken (libudt:
                  about 46 s; 0: libudt's rule of 17 expiries)
``nak_interval``  seconds: the floor of the periodic NAK (libudt 4.11 sends none and
                  waits for a 0.3 s expiry)

The area layout is ``struct rtudp_udt_area`` (``csrc/proto/udt_area.h``); the
channel needs ``max_datagram`` >= MSS - 28 + 32 (:data:`MIN_MAX_DATAGRAM` for 1500).
"""
from __future__ import annotations

from typing import Any, Mapping

from rtudp.shmring._native import ffi, lib

from .channel_config import check_int

#: option -> default
DEFAULTS: dict[str, Any] = {"max_sockets": 8, "buffer_packets": 1024, "mss": 1500,
                            "congestion": "lt", "broken_timeout": 10.0, "nak_interval": 0.02}
CONGESTION = {"lt": lib.RTUDP_UDT_CC_LT, "daimd": lib.RTUDP_UDT_CC_DAIMD}
#: the smallest max_datagram a udt channel of MSS 1500 takes (a datagram + its request)
MIN_MAX_DATAGRAM = 1500 - 28 + int(ffi.sizeof("struct rtudp_udt_req"))


def _int(name: str, value: object, lo: int, hi: int) -> int:
    return check_int(value, f"udt option {name}", lo, hi)


def _seconds(name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"udt option {name} must be a number of seconds, not {value!r}")
    if not lo <= float(value) <= hi:
        raise ValueError(f"udt option {name}={value!r}: must be {lo} .. {hi} s")
    return float(value)


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Checked, complete udt options (ValueError/TypeError naming the bad one)."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown udt option(s) {unknown}: known are {sorted(DEFAULTS)}")
    o = {**DEFAULTS, **options}
    if o["congestion"] not in CONGESTION:
        raise ValueError(f"udt option congestion={o['congestion']!r}: one of {sorted(CONGESTION)}")
    out = {
        "max_sockets": _int("max_sockets", o["max_sockets"], 1, 4096),
        "buffer_packets": _int("buffer_packets", o["buffer_packets"], 16, 1 << 20),
        "mss": _int("mss", o["mss"], 76, 1500),
        "congestion": o["congestion"],
        "broken_timeout": _seconds("broken_timeout", o["broken_timeout"], 0.0, 3600.0),
        "nak_interval": _seconds("nak_interval", o["nak_interval"], 0.001, 10.0),
    }
    if out["broken_timeout"] and out["broken_timeout"] < 1.0:
        raise ValueError(f"udt option broken_timeout={out['broken_timeout']!r}: 0 or at least 1 s")
    return out


def _layout(options: dict[str, Any]) -> Any:
    cfg = ffi.new("struct rtudp_udt_config *")
    rc = lib.rtudp_udt_layout(cfg, options["max_sockets"], options["buffer_packets"],
                              options["mss"])
    if rc != lib.RTUDP_OK:
        raise ValueError(f"udt options {options!r} give no valid layout")
    return cfg


def area_bytes(options: dict[str, Any]) -> int:
    """Bytes of kind area a udt channel with these options needs."""
    return int(lib.rtudp_udt_area_bytes(_layout(options)))


def configure(area: Any, size: int, options: dict[str, Any], _direction: int) -> None:
    """Write the config into a fresh (zeroed) area; the magic last."""
    need = area_bytes(options)
    if size < need:
        raise ValueError(f"udt kind area of {size} bytes is smaller than {need}")
    a = ffi.cast("struct rtudp_udt_area *", area)
    cfg = _layout(options)
    c = a.config
    for field in ("max_socks", "buf_pkts", "mss", "socks_off", "sock_stride", "conn_off",
                  "snd_off", "rcv_off", "slot_bytes"):
        setattr(c, field, getattr(cfg, field))
    c.cc = CONGESTION[options["congestion"]]
    c.broken_us = round(options["broken_timeout"] * 1e6)
    c.nak_floor_us = round(options["nak_interval"] * 1e6)
    c.magic = lib.RTUDP_UDT_MAGIC


__all__ = ["DEFAULTS", "MIN_MAX_DATAGRAM", "area_bytes", "check_options", "configure"]
