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
    """``sender.get_stats()``."""

    total_packets_sent: int = 0
    total_send_errors: int = 0
    missed_cycles: int = 0


__all__ = ["NetfluxData", "NetfluxStatistics", "ReceiverStats", "SenderStats"]
