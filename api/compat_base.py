"""The RtUDP interface (``RtUdpBase``) and the argument checks its implementations share.

Users import these names from ``rtudp.compat`` (or ``rtudp``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from rtudp.shmring._native import lib
from rtudp.shmring.deadline import Horizon
from rtudp.shmring.errors import RtUdpError

#: RtUDP's direction codes
DIRECTION_SEND, DIRECTION_RECV, DIRECTION_BOTH = (lib.RTUDP_DIR_SEND, lib.RTUDP_DIR_RECV,
                                                  lib.RTUDP_DIR_BOTH)
MAX_DATAGRAM = lib.RTUDP_MAX_PAYLOAD


class RtUdpBase(ABC):
    """What every RtUDP implementation offers (``socket`` and ``emulated``)."""

    #: set by each implementation
    local: tuple[str, int]
    remote: tuple[str, int]
    direction: int
    #: what repr() calls the implementation
    REPR_NAME = "RtUdp"

    def __hash__(self) -> int:
        return hash((self.local, self.remote))

    def __repr__(self) -> str:
        mode = {DIRECTION_SEND: "send", DIRECTION_RECV: "recv", DIRECTION_BOTH: "both"}
        return (f"{self.REPR_NAME}[{mode[self.direction]}]({self.local[0]}:{self.local[1]} -> "
                f"{self.remote[0]}:{self.remote[1]})")

    def _not_initialised(self, what: str) -> RtUdpError:
        """The error of a call that needs init_socket() first."""
        return RtUdpError(f"{what}: {self!r} is not initialised (call init_socket() first)")

    @abstractmethod
    def init_socket(self) -> None:
        """Bind the local endpoint (OSError if the address is taken)."""

    @abstractmethod
    def close_socket(self) -> None:
        """Release the local endpoint (stops first if running)."""

    @abstractmethod
    def start(self) -> None:
        """Start sending and receiving."""

    @abstractmethod
    def stop(self) -> None:
        """Stop sending and receiving; queued packets stay queued until start()."""

    @abstractmethod
    def is_running(self) -> bool:
        """True between start() and stop()."""

    @abstractmethod
    def purge(self) -> None:
        """Drop every packet not yet sent and every packet not yet read."""

    @abstractmethod
    def send_data(self, data: bytes, ts_ns: int | None = None) -> None:
        """Queue ``data`` to leave at CLOCK_MONOTONIC ``ts_ns`` (None or 0 = now).

        Raises BackPressureError when ``capacity`` packets are already queued, or
        earlier when the send queue's bytes are full (see ``RtUdpSocket``); ValueError
        naming ``ts_ns`` when it is not a ``time.monotonic_ns()`` value within the
        horizon (rtudp.shmring.deadline: 10 s ahead unless the pool says otherwise).
        """

    @abstractmethod
    def receive_data(self, timeout_ns: int) -> tuple[bytes, int]:
        """The next packet and its receive time (ns); TimeoutError if none in time."""

    @abstractmethod
    def receive_batch(self, n: int, timeout_ns: int) -> list[tuple[bytes, int]]:
        """Exactly ``n`` packets; TimeoutError (consuming none) if they do not all
        arrive in time."""

    @abstractmethod
    def get_packet_stats(self) -> dict[str, Any]:
        """Counters and send-lateness figures, the same keys for every implementation
        (see rtudp.packet_stats.PACKET_STATS_KEYS)."""

    @abstractmethod
    def get_send_length(self) -> int:
        """Packets queued and not yet sent."""

    @abstractmethod
    def get_receive_length(self) -> int:
        """Packets received and not yet read."""

    def __enter__(self) -> "RtUdpBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_socket()


RtUdpType = RtUdpBase


def check_endpoint(ip: object, port: object, what: str) -> tuple[str, int]:
    """Validate an (ip, port) pair for messages that name the bad value."""
    if not isinstance(ip, str) or not ip:
        raise TypeError(f"{what} ip must be a non-empty str, not {ip!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"{what} port must be an int in 0..65535, got {port!r}")
    return ip, port


def check_timeout_ns(timeout_ns: object) -> int:
    """A timeout in ns must be an int >= 0."""
    if isinstance(timeout_ns, bool) or not isinstance(timeout_ns, int):
        raise TypeError(f"timeout_ns must be an int (nanoseconds), not {timeout_ns!r}")
    if timeout_ns < 0:
        raise ValueError(f"timeout_ns must be >= 0, got {timeout_ns}")
    return timeout_ns


def check_ts_ns(horizon: Horizon, ts_ns: object) -> int:
    """send_data's deadline checked as every send's is (``horizon``: a
    ``time.monotonic_ns()`` value, None or 0 = now); ValueError naming any bad value,
    a wrong type too, as RtUDP raised."""
    try:
        return horizon.check(ts_ns, "ts_ns")
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def check_payload(data: object) -> bytes:
    """A datagram: bytes-like, at most 65,507 bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_DATAGRAM:
        raise ValueError(f"datagram of {len(data)} bytes is larger than the UDP maximum "
                         f"of {MAX_DATAGRAM} bytes")
    return data


def check_direction(direction: object) -> int:
    """0 send, 1 receive, 2 both."""
    if direction not in (DIRECTION_SEND, DIRECTION_RECV, DIRECTION_BOTH) or isinstance(direction,
                                                                                      bool):
        raise ValueError(f"direction must be 0 (send), 1 (receive) or 2 (both), got {direction!r}")
    return int(direction)  # type: ignore[call-overload]


def check_capacity(capacity: object) -> int:
    """Queue capacity in packets: an int >= 1."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be an int >= 1 (packets), got {capacity!r}")
    return capacity
