"""The default process image and the reference implementation's statistics records."""
from __future__ import annotations

import struct
from dataclasses import dataclass

_FMT = struct.Struct("<ffIII")


@dataclass
class NetfluxData:
    """The reference implementation's example image: 2 floats, 3 unsigned 32-bit ints
    (20 bytes, little endian).  Any dataclass with the same three methods works."""

    value1: float = 0.0
    value2: float = 0.0
    value3: int = 0
    value4: int = 0
    flags: int = 0

    def to_bytes(self) -> bytes:
        """The 20-byte payload."""
        return _FMT.pack(self.value1, self.value2, self.value3, self.value4, self.flags)

    @classmethod
    def from_bytes(cls, data: bytes) -> "NetfluxData":
        """Decode a payload (a short one is zero-padded, as the reference does)."""
        return cls(*_FMT.unpack(bytes(data[:_FMT.size]).ljust(_FMT.size, b"\0")))

    @staticmethod
    def get_size() -> int:
        """Payload bytes."""
        return _FMT.size


@dataclass
class NetfluxStatistics:
    """``statistics.get_stats()``: intervals and RTT in ms, losses as counts."""

    avg_partner_interval: float = 0.0
    avg_own_interval: float = 0.0
    last_rtt: float = 0.0
    total_partner_lost_packets: int = 0
    total_feedback_lost_packets: int = 0
    partner_jitter: float = 0.0        # ms, RFC 3550-style smoothed
    own_jitter: float = 0.0            # ms
    rtt_p99: float = 0.0               # ms
    watchdog_trips: int = 0


def _ms(ns: float | None) -> float:
    return 0.0 if not ns else ns / 1e6


def statistics_of(s: dict) -> NetfluxStatistics:
    """A netflux channel's ``stats()`` as the reference's statistics record (ms)."""
    return NetfluxStatistics(
        avg_partner_interval=_ms(s["nf_partner_interval_mean_ns"]),
        avg_own_interval=_ms(s["nf_own_interval_mean_ns"]),
        last_rtt=_ms(s["nf_last_rtt_ns"]),
        total_partner_lost_packets=s["nf_partner_lost"],
        total_feedback_lost_packets=s["nf_feedback_lost"],
        partner_jitter=_ms(s["nf_partner_jitter_ns"]), own_jitter=_ms(s["nf_own_jitter_ns"]),
        rtt_p99=_ms(s["nf_rtt_p99_ns"]), watchdog_trips=s["nf_watchdog_trips"])


@dataclass
class ReceiverStats:
    """``receiver.get_stats()``."""

    total_packets_received: int = 0
    total_packets_rejected: int = 0
    watchdog_timeout: bool = False
    duplicates: int = 0
    old: int = 0
    short: int = 0
    watchdog_trips: int = 0
    recoveries: int = 0


@dataclass
class SenderStats:
    """``sender.get_stats()``: the channel's packets, whichever worker sent them (the
    serving one or its standby)."""

    total_packets_sent: int = 0
    total_send_errors: int = 0
    missed_cycles: int = 0


def receiver_stats_of(s: dict) -> ReceiverStats:
    """A netflux channel's ``stats()`` as the receiver's record (empty: all zero)."""
    return ReceiverStats(s.get("nf_valid", 0), s.get("nf_rejected", 0),
                         s.get("nf_link") == "lost", s.get("nf_duplicate", 0),
                         s.get("nf_old", 0), s.get("nf_short_pkts", 0),
                         s.get("nf_watchdog_trips", 0), s.get("nf_recoveries", 0))


def sender_stats_of(s: dict) -> SenderStats:
    """A netflux channel's ``stats()`` as the sender's record (empty: all zero).  The
    standby's sends are the channel's packets on the wire too: a receiver counts them."""
    return SenderStats(s.get("nf_sent", 0) + s.get("nf_standby_sent", 0),
                       s.get("nf_send_errors", 0) + s.get("nf_standby_errors", 0),
                       s.get("nf_missed", 0))


__all__ = ["NetfluxData", "NetfluxStatistics", "ReceiverStats", "SenderStats",
           "receiver_stats_of", "sender_stats_of", "statistics_of"]
