"""The netflux channel kind as the supervisor knows it: options and the kind area.

Options (``open_channel(..., kind="netflux", options={...})``):

``send_interval``   seconds between our packets (absolute schedule); 0: receive only
``watch_interval``  seconds without a valid packet before the watchdog trips
``send_size``       payload bytes we send (the send image)
``recv_size``       payload bytes a partner's packet must carry (the received image)
``keep_values_on_timeout``  keep the last received image when the watchdog trips
``start_ns``        CLOCK_MONOTONIC origin of the schedule (0: when the worker opens it;
                    at most the pool's deadline horizon ahead, as a send's deadline)
``standby``         a second worker guards the schedule (default True; used when the
                    pool has another worker and send_interval >= 0.5 ms): a cycle the
                    serving worker has not sent a quarter interval (at most 100 µs)
                    after it was due, the standby sends, with the next sequence byte.
                    A host that stops one vCPU for a millisecond (a VM) then costs no
                    cycle, and neither does a serving worker that died, until its
                    restart.  Not while the channel has an impairment set or a tap
                    attached (both are the serving worker's: docs/netflux.md).

The area layout is ``struct rtudp_nf_area`` (``csrc/proto/netflux_shm.h``).
"""
from __future__ import annotations

from typing import Any, Mapping

from rtudp.shmring._native import ffi, lib

from .channel_config import check_int

#: option -> default
DEFAULTS: dict[str, Any] = {"send_interval": 0.005, "watch_interval": 0.030, "send_size": 0,
                            "recv_size": 0, "keep_values_on_timeout": False, "start_ns": 0,
                            "standby": True}
MIN_INTERVAL_S = 50e-6
#: shorter cycles get no standby: its lag (a quarter of the interval) would be within
#: a wake-up's lateness on a VM (tens of µs), so it would send cycles that were on time
STANDBY_MIN_INTERVAL_S = 0.5e-3
MAX_INTERVAL_S = 3600.0


def _seconds(name: str, value: object, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"netflux option {name} must be a number of seconds, not {value!r}")
    v = float(value)
    if allow_zero and v == 0:
        return 0.0
    if not MIN_INTERVAL_S <= v <= MAX_INTERVAL_S:
        raise ValueError(f"netflux option {name}={value!r}: must be {MIN_INTERVAL_S} .. "
                         f"{MAX_INTERVAL_S} s" + (" (or 0)" if allow_zero else ""))
    return v


def _int(name: str, value: object, lo: int, hi: int) -> int:
    return check_int(value, f"netflux option {name}", lo, hi)


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Checked, complete netflux options (ValueError/TypeError naming the bad one)."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown netflux option(s) {unknown}: known are {sorted(DEFAULTS)}")
    o = {**DEFAULTS, **options}
    for flag in ("keep_values_on_timeout", "standby"):
        if not isinstance(o[flag], bool):
            raise TypeError(f"netflux option {flag} must be a bool, not {o[flag]!r}")
    return {
        "send_interval": _seconds("send_interval", o["send_interval"], True),
        "watch_interval": _seconds("watch_interval", o["watch_interval"], False),
        "send_size": _int("send_size", o["send_size"], 0, lib.RTUDP_NF_MAX_PAYLOAD),
        "recv_size": _int("recv_size", o["recv_size"], 0, lib.RTUDP_NF_MAX_PAYLOAD),
        "keep_values_on_timeout": o["keep_values_on_timeout"],
        "start_ns": _int("start_ns", o["start_ns"], 0, 2**63 - 1),
        "standby": o["standby"],
    }


def standby(options: dict[str, Any]) -> bool:
    """Whether a channel with these checked options gets a standby worker."""
    return bool(options["standby"]) and options["send_interval"] >= STANDBY_MIN_INTERVAL_S


def deadlines(options: dict[str, Any]) -> dict[str, int]:
    """The schedule's origin, a deadline like a send's (not when 0: the worker's now)."""
    return {"start_ns": options["start_ns"]} if options["start_ns"] else {}


def packet_rate(options: dict[str, Any], direction: int) -> float:
    """Cycles a second, each way: ours sent every send_interval, and a partner's
    received as often (a receive-only channel's partner is not known: none)."""
    interval = options["send_interval"]
    if not interval:
        return 0.0
    sends = direction != lib.RTUDP_DIR_RECV
    receives = direction != lib.RTUDP_DIR_SEND
    return (int(sends) + int(receives)) / interval


def area_bytes(_options: dict[str, Any]) -> int:
    """Bytes of kind area a netflux channel needs."""
    return int(ffi.sizeof("struct rtudp_nf_area"))


def configure(area: Any, size: int, options: dict[str, Any], _direction: int) -> None:
    """Write the config into a fresh (zeroed) area; the magic last."""
    if size < area_bytes(options):
        raise ValueError(f"netflux kind area of {size} bytes is smaller than "
                         f"{area_bytes(options)}")
    a = ffi.cast("struct rtudp_nf_area *", area)
    c = a.config
    c.send_interval_ns = round(options["send_interval"] * 1e9)
    c.watch_interval_ns = round(options["watch_interval"] * 1e9)
    c.send_size = options["send_size"]
    c.recv_size = options["recv_size"]
    c.flags = lib.RTUDP_NF_KEEP_VALUES if options["keep_values_on_timeout"] else 0
    c.start_ns = options["start_ns"]
    c.magic = lib.RTUDP_NF_MAGIC


__all__ = ["DEFAULTS", "STANDBY_MIN_INTERVAL_S", "area_bytes", "check_options", "configure",
           "deadlines", "standby"]
