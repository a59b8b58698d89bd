"""The RtUDP interface (``RtUdpBase``) and the argument checks its implementations share.

Users import these names from ``rtudp.compat`` (or ``rtudp``).
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

from rtudp.shmring._native import lib
from rtudp.shmring.channel import DEFAULT_MAX_DATAGRAM, MAX_DATAGRAM
from rtudp.shmring.deadline import Horizon
from rtudp.shmring.errors import RtUdpError
from rtudp.workers.channel_config import MAX_CAPACITY, check_direction, check_int

#: RtUDP's direction codes
DIRECTION_SEND, DIRECTION_RECV, DIRECTION_BOTH = (lib.RTUDP_DIR_SEND, lib.RTUDP_DIR_RECV,
                                                  lib.RTUDP_DIR_BOTH)


class RtUdpBase(ABC):
    """What every RtUDP implementation offers (``socket`` and ``emulated``)."""

    local: tuple[str, int]
    remote: tuple[str, int]
    direction: int
    capacity: int
    cpu: int | None
    max_datagram: int
    #: what repr() calls the implementation
    REPR_NAME = "RtUdp"
    #: get_packet_stats() as it was when the endpoint closed (None: never closed open)
    _final_stats: dict[str, Any] | None = None

    def _take_arguments(self, local_ip: object, local_port: object, remote_ip: object,
                        remote_port: object, cpu: object, capacity: object, direction: object,
                        max_datagram: object) -> None:
        """Check and keep the arguments every implementation takes: the same ranges and
        errors for all of them (those of a pool's channel), whatever each does with them."""
        self.local = check_endpoint(local_ip, local_port, "local")
        self.remote = check_endpoint(remote_ip, remote_port, "remote")
        self.capacity = check_capacity(capacity)
        self.direction = check_direction(direction)
        self.cpu = check_cpu(cpu)
        self.max_datagram = check_int(max_datagram, "max_datagram", 1, MAX_DATAGRAM)

    def _check_send(self, horizon: Horizon, data: object, ts_ns: object) -> tuple[bytes, int]:
        """send_data's arguments, checked alike by every implementation: (payload,
        deadline), or ValueError/TypeError naming the bad one."""
        if self.direction == DIRECTION_RECV:
            raise ValueError(f"{self!r} is receive-only (direction=1): it cannot send")
        deadline = check_ts_ns(horizon, ts_ns)
        return check_payload(data, self.max_datagram), deadline

    def _check_receive(self, n: object, timeout_ns: object) -> tuple[int, int]:
        """receive_batch's arguments, checked alike by every implementation: (n,
        timeout_ns), or ValueError/TypeError naming the bad one."""
        if self.direction == DIRECTION_SEND:
            raise ValueError(f"{self!r} is send-only (direction=0): it cannot receive")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.capacity:
            raise ValueError(f"n must be an int in 1..capacity ({self.capacity}), got {n!r}")
        return n, check_timeout_ns(timeout_ns)

    def _keep_final_stats(self) -> None:
        """Called by close_socket while still open: get_packet_stats() answers with these
        counts once closed, whichever implementation."""
        self._final_stats = self._read_packet_stats()

    def get_packet_stats(self) -> dict[str, Any]:
        """Counters and send-lateness figures, the same keys for every implementation
        (see rtudp.packet_stats.PACKET_STATS_KEYS); after close_socket(), the last ones.
        RtUdpError before init_socket()."""
        if self._is_open():
            return self._read_packet_stats()
        if self._final_stats is None:
            raise self._not_initialised("get_packet_stats")
        return dict(self._final_stats)

    @abstractmethod
    def _is_open(self) -> bool:
        """True between init_socket() and close_socket()."""

    @abstractmethod
    def _read_packet_stats(self) -> dict[str, Any]:
        """get_packet_stats() of an open endpoint."""

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
    """Validate an (ip, port) pair for messages that name the bad value: a local port
    may be 0 (any), a remote one may not (sends need a destination)."""
    if not isinstance(ip, str) or not ip:
        raise TypeError(f"{what}_ip must be a non-empty str, not {ip!r}")
    low = 0 if what == "local" else 1
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        raise ValueError(f"{what}_port must be an int in {low}..65535, got {port!r}")
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


def check_payload(data: object, max_datagram: int) -> bytes:
    """A datagram: bytes-like, at most the endpoint's ``max_datagram`` bytes (the error
    says how to allow more)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_datagram:
        raise ValueError(oversized(len(data), max_datagram))
    return data


def oversized(size: int, max_datagram: int) -> str:
    """The message of a ``size``-byte datagram on an endpoint of ``max_datagram``."""
    more = max(9000, size) if size <= MAX_DATAGRAM else None
    fix = (f"create the endpoint with max_datagram={more} (at most {MAX_DATAGRAM})"
           if more is not None else f"a UDP datagram here is at most {MAX_DATAGRAM} bytes")
    return (f"send_data: datagram of {size} bytes is larger than this endpoint's "
            f"max_datagram={max_datagram}: {fix}")


def check_capacity(capacity: object) -> int:
    """Queue capacity in packets: an int in 1..MAX_CAPACITY (a pool channel's range)."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not (
            1 <= capacity <= MAX_CAPACITY):
        raise ValueError(f"capacity must be an int in 1..{MAX_CAPACITY} (packets), "
                         f"got {capacity!r}")
    return capacity


def check_cpu(cpu: object) -> int | None:
    """None, or a CPU of this machine (where the socket endpoint's worker runs; the pool
    may have fewer, which init_socket() says)."""
    if cpu is None:
        return None
    last = (os.cpu_count() or 1) - 1
    if isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 <= cpu <= last:
        raise ValueError(f"cpu={cpu!r} is not a CPU of this machine: use None (any) or "
                         f"0..{last}")
    return cpu


__all__ = ["DEFAULT_MAX_DATAGRAM", "DIRECTION_BOTH", "DIRECTION_RECV", "DIRECTION_SEND",
           "MAX_DATAGRAM", "RtUdpBase", "RtUdpType", "check_capacity", "check_cpu",
           "check_endpoint", "check_payload", "check_timeout_ns", "check_ts_ns", "oversized"]
