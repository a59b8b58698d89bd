"""Deadlines of timed sends: CLOCK_MONOTONIC ns, at most a horizon ahead of now.

Every send that takes a deadline (``at_ns``; RtUDP's ``ts_ns``) takes a
``time.monotonic_ns()`` value: 0 or None sends now, a past deadline sends now and
counts as late.  A deadline further ahead than the pool's horizon (``Pool(horizon_s=)``,
``rtudp pool start --horizon-s``; 10 s by default, the fq qdisc's default horizon) is
refused with a ValueError at the call: it is almost always a value from another clock
(``time.time_ns()`` is decades ahead of ``time.monotonic_ns()``), and queued it would
hold its ring space for ever.
"""
from __future__ import annotations

from time import monotonic_ns
from ._native import lib

#: a pool's horizon unless it says otherwise, and the largest it may say (rtudp_shm.h)
DEFAULT_HORIZON_NS: int = lib.RTUDP_HORIZON_DEFAULT_NS
MAX_HORIZON_NS: int = lib.RTUDP_HORIZON_MAX_NS

_NS_PER_S = 1_000_000_000
#: (unit, its length in s, up to how many seconds it is used) for spans in messages
_SPAN_UNITS = (("s", 1, 120), ("min", 60, 7_200), ("h", 3_600, 172_800),
               ("days", 86_400, 2 * 31_557_600), ("years", 31_557_600, float("inf")))


def describe_span(ns: int) -> str:
    """``ns`` in the unit a reader takes in at once: ``11.0 s``, ``3.5 h``, ``56.0 years``."""
    secs = ns / _NS_PER_S
    unit, length = next((u, n) for u, n, below in _SPAN_UNITS if abs(secs) < below)
    return f"{secs / length:.1f} {unit}"


class Horizon:
    """The deadlines a sender accepts: ``time.monotonic_ns()`` values at most ``ns``
    ahead of now.  ``owner`` says whose horizon it is in messages (``"pool 'lab'"``)."""

    __slots__ = ("ns", "owner")

    def __init__(self, ns: int, owner: str) -> None:
        if isinstance(ns, bool) or not isinstance(ns, int) or not 1 <= ns <= MAX_HORIZON_NS:
            raise ValueError(f"a deadline horizon is 1..{MAX_HORIZON_NS} ns, got {ns!r}")
        self.ns = ns
        self.owner = owner

    @property
    def seconds(self) -> float:
        """The horizon in seconds (``horizon_s``)."""
        return self.ns / _NS_PER_S

    def check(self, at_ns: object, what: str = "at_ns") -> int:
        """``at_ns`` as the int a ring takes (None: 0, now), or TypeError / ValueError
        naming the value: not an int, negative, or beyond the horizon."""
        if at_ns is None:
            return 0
        if isinstance(at_ns, bool) or not isinstance(at_ns, int):
            raise TypeError(f"{what} must be an int (a time.monotonic_ns() value) or None, "
                            f"not {at_ns!r}")
        if at_ns < 0:
            raise ValueError(f"{what} {at_ns} is negative: deadlines are time.monotonic_ns() "
                             f"values (None or 0: now)")
        self.check_latest(at_ns, what)
        return at_ns

    def check_latest(self, latest: int, what: str = "at_ns") -> None:
        """ValueError unless ``latest`` (the latest of some deadlines >= 0) is at most the
        horizon ahead of now: one clock read for any number of deadlines."""
        now = monotonic_ns()
        if latest - now > self.ns:
            raise self.too_far(latest, now, what)

    def too_far(self, at_ns: int, now: int, what: str = "at_ns") -> ValueError:
        """The error of deadline ``at_ns``, later than ``now`` plus the horizon."""
        span = f"{self.seconds:g}"
        return ValueError(
            f"{what} {at_ns}: {describe_span(at_ns - now)} after now on CLOCK_MONOTONIC; "
            f"deadlines are time.monotonic_ns() values and may be at most {span} s ahead "
            f"(horizon_s={span} of {self.owner})")

    def __repr__(self) -> str:
        return f"Horizon(horizon_s={self.seconds:g}, {self.owner})"


def horizon_ns_of(horizon_s: object) -> int:
    """``horizon_s`` (seconds, int or float) as whole ns, checked: > 0 and at most
    MAX_HORIZON_NS; TypeError / ValueError naming it."""
    if isinstance(horizon_s, bool) or not isinstance(horizon_s, (int, float)):
        raise TypeError(f"horizon_s must be a number of seconds, got {horizon_s!r}")
    if not 0 < horizon_s <= MAX_HORIZON_NS / _NS_PER_S:
        raise ValueError(f"horizon_s={horizon_s!r} is out of range: more than 0, at most "
                         f"{MAX_HORIZON_NS // _NS_PER_S} s (one day); it bounds how far ahead "
                         f"of time.monotonic_ns() a send may be due")
    ns = round(horizon_s * _NS_PER_S)
    if ns < 1:
        raise ValueError(f"horizon_s={horizon_s!r} is less than a nanosecond")
    return ns


__all__ = ["DEFAULT_HORIZON_NS", "Horizon", "MAX_HORIZON_NS", "describe_span", "horizon_ns_of"]
