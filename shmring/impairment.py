"""Impairment: what a channel's worker (or the emulated network) does to datagrams.

One :class:`Impairment` describes loss, duplication, corruption, delay, jitter,
reordering and a rate limit, seeded.  ``rtudp.Pool.open_channel(..., impairment=)`` and
``Channel.set_impairment()`` hand it to the channel's worker through the channel
segment (a seqlock, ``struct rtudp_impair_shm`` in ``csrc/rtudp_shm.h``);
``rtudp.EmulatedNetwork`` applies the same fields in process.  docs/impairment.md
says how the worker applies each one.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping

from ._native import ffi, lib

#: the directions an impairment may apply to
DIRECTIONS = ("tx", "rx", "both")
_WHERE = {"tx": lib.RTUDP_IMPAIR_TX, "rx": lib.RTUDP_IMPAIR_RX,
          "both": lib.RTUDP_IMPAIR_TX | lib.RTUDP_IMPAIR_RX}
_ONE = lib.RTUDP_IMPAIR_ONE
#: the most delay_ns + jitter_ns + reorder_ns a worker holds a datagram for
MAX_DELAY_NS = lib.RTUDP_IMPAIR_MAX_DELAY_NS
#: the largest token bucket beyond one datagram (bytes)
MAX_BURST = lib.RTUDP_IMPAIR_MAX_BURST
#: the smallest rate limit (bits/s) other than 0 (none)
MIN_RATE_BPS = 1000
#: the largest rate limit (bits/s): 1 Tbit/s
MAX_RATE_BPS = 10 ** 12
_PROBABILITIES = ("loss", "duplicate", "corrupt", "reorder")
_DURATIONS = ("delay_ns", "jitter_ns", "reorder_ns")
#: how long a writer waits for another one before taking the lock over (it died in it)
_PUBLISH_WAIT_NS = 100_000_000


@dataclass(frozen=True)
class Impairment:
    """What to do to each datagram; checked when made (ValueError/TypeError naming the
    bad value).

    ``loss``, ``duplicate``, ``corrupt`` (one bit flipped) and ``reorder`` are
    probabilities in 0..1.  Each datagram is held ``delay_ns`` plus a uniform
    0..``jitter_ns``, plus ``reorder_ns`` when ``reorder`` picks it (so later ones
    overtake it).  ``rate_bps`` limits the payload bits per second (0: no limit).
    ``seed`` makes the draws reproducible (None: a fresh random seed each time it is
    applied).  ``direction``: ``"tx"`` impairs what the channel sends, ``"rx"`` what it
    receives, ``"both"`` both ways (each way its own stream of draws and rate limit).
    """

    loss: float = 0.0
    delay_ns: int = 0
    jitter_ns: int = 0
    reorder: float = 0.0
    reorder_ns: int = 1_000_000
    duplicate: float = 0.0
    corrupt: float = 0.0
    rate_bps: int = 0
    burst_bytes: int = 0
    seed: int | None = None
    direction: str = "tx"

    def __post_init__(self) -> None:
        for name in _PROBABILITIES:
            p = getattr(self, name)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in 0..1, got {p!r}")
        for name in _DURATIONS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an int >= 0 (nanoseconds), got {v!r}")
        held = self.delay_ns + self.jitter_ns + (self.reorder_ns if self.reorder else 0)
        if held > MAX_DELAY_NS:
            raise ValueError(f"delay_ns + jitter_ns + reorder_ns = {held} ns: at most "
                             f"{MAX_DELAY_NS} ns (10 s) (delay_ns={self.delay_ns}, "
                             f"jitter_ns={self.jitter_ns}, reorder_ns={self.reorder_ns})")
        r = self.rate_bps
        if isinstance(r, bool) or not isinstance(r, int) or not (
                r == 0 or MIN_RATE_BPS <= r <= MAX_RATE_BPS):
            raise ValueError(f"rate_bps must be 0 (no limit) or an int in {MIN_RATE_BPS}.."
                             f"{MAX_RATE_BPS} (bits/s), got {r!r}")
        b = self.burst_bytes
        if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= MAX_BURST:
            raise ValueError(f"burst_bytes must be an int in 0..{MAX_BURST}, got {b!r}")
        s = self.seed
        if s is not None and (isinstance(s, bool) or not isinstance(s, int)
                              or not 0 <= s < 2 ** 64):
            raise ValueError(f"seed must be None or an int in 0..2**64-1, got {s!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")

    @classmethod
    def of(cls, value: "Impairment | Mapping[str, Any] | None") -> "Impairment | None":
        """``value`` as an Impairment: one itself, a dict of its fields, or None."""
        if value is None or isinstance(value, Impairment):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(FIELDS))
            if unknown:
                raise ValueError(f"unknown impairment fields {unknown}: allowed {list(FIELDS)}")
            return cls(**value)
        raise TypeError(f"impairment must be an rtudp.Impairment, a dict of its fields or "
                        f"None, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Its fields, JSON-ready."""
        return dataclasses.asdict(self)

    def held_bytes(self) -> int:
        """Payload bytes the rate limit lets through while a datagram is held for its
        longest (delay + jitter + reorder): what the TX ring must hold at that rate
        (0 without a rate limit)."""
        longest = self.delay_ns + self.jitter_ns + (self.reorder_ns if self.reorder else 0)
        return self.rate_bps * longest // 8_000_000_000

    def check_fits(self, tx_ring_bytes: int, where: str) -> None:
        """ValueError if holding datagrams for the delay at ``rate_bps`` needs more than
        a TX ring of ``tx_ring_bytes`` holds (the worker keeps held datagrams there)."""
        need = self.held_bytes()
        if need > tx_ring_bytes:
            raise ValueError(
                f"{where}: delay_ns={self.delay_ns} + jitter_ns={self.jitter_ns}"
                f"{f' + reorder_ns={self.reorder_ns}' if self.reorder else ''} at "
                f"rate_bps={self.rate_bps} holds {need} bytes, more than the channel's TX "
                f"ring of {tx_ring_bytes} bytes: open it with a larger capacity= or lower "
                f"the delay or the rate")


#: the fields of an Impairment
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Impairment))


def _fraction(p: float) -> int:
    return min(_ONE, round(p * _ONE))


def publish(block: Any, imp: Impairment | None) -> Impairment | None:
    """Make ``imp`` the impairment of the channel whose ``struct rtudp_channel_block *``
    is ``block`` (None: none); returns it as applied (a None seed replaced by the random
    one drawn for it)."""
    cfg = ffi.new("struct rtudp_impair_cfg *")
    if imp is not None:
        if imp.seed is None:
            imp = dataclasses.replace(imp, seed=int.from_bytes(os.urandom(8), "little"))
        cfg.where = _WHERE[imp.direction]
        cfg.loss, cfg.duplicate = _fraction(imp.loss), _fraction(imp.duplicate)
        cfg.corrupt, cfg.reorder = _fraction(imp.corrupt), _fraction(imp.reorder)
        cfg.delay_ns, cfg.jitter_ns, cfg.reorder_ns = imp.delay_ns, imp.jitter_ns, imp.reorder_ns
        cfg.rate_bps, cfg.burst_bytes, cfg.seed = imp.rate_bps, imp.burst_bytes, imp.seed
    lib.rtudp_impair_publish(block, cfg, _PUBLISH_WAIT_NS)
    return imp


def _probability(fixed: int) -> float:
    """A probability the worker holds as a multiple of 2**-32, as the shortest decimal
    that the worker would hold the same way (0.05, not 0.05000000004656613)."""
    fixed = int(fixed)
    exact = fixed / _ONE
    for digits in range(1, 12):
        short = round(exact, digits)
        if round(short * _ONE) == fixed:
            return short
    return exact


def read(block: Any) -> Impairment | None:
    """The impairment published in a ``struct rtudp_channel_block *`` (None: none).
    Probabilities come back as the worker uses them (multiples of 2**-32)."""
    cfg = ffi.new("struct rtudp_impair_cfg *")
    for _ in range(100):
        if lib.rtudp_impair_read(ffi.addressof(block, "impair"), cfg) == lib.RTUDP_OK:
            break
    else:
        raise TimeoutError("the channel's impairment kept changing while being read")
    where = int(cfg.where)
    if not where:
        return None
    direction = next(d for d, w in _WHERE.items() if w == where)
    return Impairment(loss=_probability(cfg.loss), duplicate=_probability(cfg.duplicate),
                      corrupt=_probability(cfg.corrupt), reorder=_probability(cfg.reorder),
                      delay_ns=int(cfg.delay_ns), jitter_ns=int(cfg.jitter_ns),
                      reorder_ns=int(cfg.reorder_ns), rate_bps=int(cfg.rate_bps),
                      burst_bytes=int(cfg.burst_bytes), seed=int(cfg.seed),
                      direction=direction)


__all__ = ["DIRECTIONS", "FIELDS", "Impairment", "MAX_DELAY_NS", "publish", "read"]
