"""RtUdpEmulated: RtUDP's API in pure Python, in process, with a seeded impaired network.

Endpoints bind to an ``EmulatedNetwork`` by (ip, port).  The network delivers
each datagram after its delay, and can lose, delay, jitter, reorder, duplicate and
corrupt datagrams and limit the rate (:class:`rtudp.Impairment`, the same fields a
worker applies to a real channel; ``direction`` does not matter here: one network);
the same seed gives the same impairments.  Useful for tests that
need bad networks without netem, and as the reference the ``socket``
implementation is compared with: the same methods, errors and stats keys.
"""
from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import deque
from typing import Any

from rtudp.shmring.deadline import DEFAULT_HORIZON_NS, Horizon, horizon_ns_of
from rtudp.shmring.errors import BackPressureError, RtUdpError
from rtudp.shmring.impairment import Impairment

from .compat_base import (DEFAULT_MAX_DATAGRAM, DIRECTION_BOTH, DIRECTION_RECV, DIRECTION_SEND,
                          RtUdpBase)
from .packet_stats import LatencyRecorder, packet_stats

Endpoint = tuple[str, int]


class EmulatedNetwork:
    """An in-process network between RtUdpEmulated endpoints.

    ``stats()`` counts what it did: sent, delivered, lost, duplicated, reordered,
    corrupted, rate_held, unroutable (no endpoint bound at the destination).
    """

    _default: "EmulatedNetwork | None" = None
    _default_lock = threading.Lock()

    def __init__(self, impairment: Impairment | None = None) -> None:
        self.impairment = impairment or Impairment()
        self._rng = random.Random(self.impairment.seed)
        self._cond = threading.Condition()
        self._endpoints: dict[Endpoint, RtUdpEmulated] = {}
        self._in_flight: list[tuple[int, int, Endpoint, bytes]] = []
        self._order = itertools.count()
        self._counts = dict.fromkeys(
            ("sent", "delivered", "lost", "duplicated", "reordered", "corrupted", "rate_held",
             "unroutable"), 0)
        self._rate_tat_ns = 0  # the rate limit's bucket is full from then on
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def default(cls) -> "EmulatedNetwork":
        """The process's default network (unimpaired), for endpoints given none."""
        with cls._default_lock:
            if cls._default is None or cls._default._closed:
                cls._default = cls()
            return cls._default

    def bind(self, endpoint: Endpoint, owner: "RtUdpEmulated") -> None:
        """Attach ``owner`` at ``endpoint``; OSError if taken (as a real bind)."""
        with self._cond:
            if self._closed:
                raise RtUdpError("the emulated network is closed")
            if endpoint in self._endpoints:
                raise OSError(98, f"emulated address {endpoint[0]}:{endpoint[1]} is already in use")
            self._endpoints[endpoint] = owner

    def unbind(self, endpoint: Endpoint) -> None:
        """Detach whatever is bound at ``endpoint``."""
        with self._cond:
            self._endpoints.pop(endpoint, None)

    def transmit(self, dst: Endpoint, data: bytes, depart_ns: int) -> None:
        """Send ``data`` to ``dst`` as if it left at ``depart_ns``."""
        imp = self.impairment
        with self._cond:
            self._counts["sent"] += 1
            if imp.loss and self._rng.random() < imp.loss:
                self._counts["lost"] += 1
                return
            copies = 1
            if imp.duplicate and self._rng.random() < imp.duplicate:
                copies = 2
                self._counts["duplicated"] += 1
            if data and imp.corrupt and self._rng.random() < imp.corrupt:
                bit = self._rng.randrange(len(data) * 8)
                flipped = bytearray(data)
                flipped[bit // 8] ^= 1 << (bit % 8)
                data = bytes(flipped)
                self._counts["corrupted"] += 1
            for _ in range(copies):
                arrive = depart_ns + imp.delay_ns
                if imp.jitter_ns:
                    arrive += self._rng.randint(0, imp.jitter_ns)
                if imp.reorder and self._rng.random() < imp.reorder:
                    arrive += imp.reorder_ns
                    self._counts["reordered"] += 1
                if imp.rate_bps:  # a token bucket, as the worker's (csrc/impair.c)
                    tolerance = imp.burst_bytes * 8_000_000_000 // imp.rate_bps
                    depart = max(arrive, self._rate_tat_ns - tolerance)
                    if depart > arrive:
                        self._counts["rate_held"] += 1
                    self._rate_tat_ns = (max(self._rate_tat_ns, depart)
                                         + len(data) * 8_000_000_000 // imp.rate_bps)
                    arrive = depart
                heapq.heappush(self._in_flight, (arrive, next(self._order), dst, data))
            if self._thread is None:
                self._thread = threading.Thread(target=self._deliver_loop,
                                                name="rtudp-emulated-net", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _deliver_loop(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic_ns()
                while self._in_flight and self._in_flight[0][0] <= now:
                    arrive, _, dst, data = heapq.heappop(self._in_flight)
                    owner = self._endpoints.get(dst)
                    if owner is None:
                        self._counts["unroutable"] += 1
                    else:
                        self._counts["delivered"] += 1
                        owner._arrive(data, arrive)
                wait = (self._in_flight[0][0] - now) / 1e9 if self._in_flight else None
                self._cond.wait(wait)

    def stats(self) -> dict[str, int]:
        """What the network did to the datagrams it carried."""
        with self._cond:
            return dict(self._counts, in_flight=len(self._in_flight))

    def close(self) -> None:
        """Stop delivering; datagrams still in flight are dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)


class RtUdpEmulated(RtUdpBase):
    """An RtUDP endpoint on an ``EmulatedNetwork`` (default: the process's own).

    ``horizon_s``: how far ahead of now a ``send_data`` deadline may be, as a pool's
    (``rtudp.Pool(horizon_s=)``, the same default): a later one is a ValueError.
    ``cpu``, ``capacity``, ``direction`` and ``max_datagram`` are checked as
    :class:`RtUdpSocket` checks them (the same ranges and errors), so code that runs here
    runs on the network; ``cpu`` places nothing (no worker in process)."""

    REPR_NAME = "RtUdpEmulated"

    def __init__(self, local_ip: str, local_port: int, remote_ip: str, remote_port: int,
                 cpu: int | None = None, capacity: int = 1024,
                 direction: int | str = DIRECTION_BOTH, network: EmulatedNetwork | None = None,
                 horizon_s: float = DEFAULT_HORIZON_NS / 1e9,
                 max_datagram: int = DEFAULT_MAX_DATAGRAM) -> None:
        self._take_arguments(local_ip, local_port, remote_ip, remote_port, cpu, capacity,
                             direction, max_datagram)
        #: the deadlines send_data takes (as a pool's channels do)
        self.horizon = Horizon(horizon_ns_of(horizon_s), repr(self))
        self.network = network or EmulatedNetwork.default()
        self._cond = threading.Condition()
        self._outbox: list[tuple[int, int, bytes]] = []
        self._order = itertools.count()
        self._inbox: deque[tuple[bytes, int]] = deque()
        self._counts = dict.fromkeys(("n_packets_sent", "n_packets_rec", "n_packets_req",
                                      "n_immediate_packets", "n_tx_packets_dropped",
                                      "n_rx_packets_dropped"), 0)
        self._lateness = LatencyRecorder()
        self._bound = False
        self._running = False
        self._sender: threading.Thread | None = None

    # ---- lifecycle

    def init_socket(self) -> None:
        """Bind the local endpoint on the network."""
        if self._bound:
            raise RtUdpError(f"{self!r} is already initialised")
        self.network.bind(self.local, self)
        self._bound = True

    def close_socket(self) -> None:
        """Stop, and release the local endpoint."""
        self.stop()
        if self._bound:
            self._keep_final_stats()
            self.network.unbind(self.local)
            self._bound = False

    def start(self) -> None:
        """Start the sender (packets queued before start leave now, at their time)."""
        self._need_bound("start")
        with self._cond:
            if self._running:
                raise RtUdpError(f"{self!r} is already running")
            self._running = True
        if self.direction != DIRECTION_RECV:
            self._sender = threading.Thread(target=self._send_loop, name="rtudp-emulated-tx",
                                            daemon=True)
            self._sender.start()

    def stop(self) -> None:
        """Stop the sender; queued packets stay queued."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(timeout=2)
            self._sender = None

    def is_running(self) -> bool:
        """True between start() and stop()."""
        return self._running

    def purge(self) -> None:
        """Drop what is queued to send and what was received but not read."""
        self._need_bound("purge")
        with self._cond:
            self._outbox.clear()
            self._inbox.clear()

    # ---- sending

    def send_data(self, data: bytes, ts_ns: int | None = None) -> None:
        """Queue ``data`` to leave at ``ts_ns`` (None/0 = now; a ``time.monotonic_ns()``
        value at most ``horizon_s`` ahead, else ValueError); BackPressureError if
        ``capacity`` packets are already queued."""
        self._need_bound("send_data")
        payload, ts_ns = self._check_send(self.horizon, data, ts_ns)
        with self._cond:
            if len(self._outbox) >= self.capacity:
                raise BackPressureError(f"{self!r}: {self.capacity} packets already queued")
            self._counts["n_packets_req"] += 1
            if ts_ns <= time.monotonic_ns():
                self._counts["n_immediate_packets"] += 1
            heapq.heappush(self._outbox, (ts_ns, next(self._order), payload))
            self._cond.notify_all()

    def _send_loop(self) -> None:
        with self._cond:
            while self._running:
                now = time.monotonic_ns()
                while self._outbox and self._outbox[0][0] <= now:
                    ts_ns, _, payload = heapq.heappop(self._outbox)
                    self._counts["n_packets_sent"] += 1
                    if ts_ns:
                        self._lateness.record(now - ts_ns)
                    else:
                        self._lateness.record(0)
                    self.network.transmit(self.remote, payload, now)
                wait = (self._outbox[0][0] - now) / 1e9 if self._outbox else None
                self._cond.wait(wait)

    # ---- receiving

    def _arrive(self, data: bytes, arrive_ns: int) -> None:
        """Called by the network at delivery time."""
        with self._cond:
            if self.direction == DIRECTION_SEND:
                return
            if len(self._inbox) >= self.capacity:
                self._counts["n_rx_packets_dropped"] += 1
                return
            self._counts["n_packets_rec"] += 1
            self._inbox.append((data, arrive_ns))
            self._cond.notify_all()

    def receive_data(self, timeout_ns: int) -> tuple[bytes, int]:
        """The next packet and its arrival time; TimeoutError if none in time."""
        return self.receive_batch(1, timeout_ns)[0]

    def receive_batch(self, n: int, timeout_ns: int) -> list[tuple[bytes, int]]:
        """Exactly ``n`` packets, or TimeoutError consuming none."""
        self._need_bound("receive")
        n, timeout_ns = self._check_receive(n, timeout_ns)
        deadline = time.monotonic_ns() + timeout_ns
        with self._cond:
            while len(self._inbox) < n:
                left = deadline - time.monotonic_ns()
                if left <= 0:
                    raise TimeoutError(f"{self!r}: {len(self._inbox)} of {n} packets arrived "
                                       f"within {timeout_ns} ns")
                self._cond.wait(left / 1e9)
            return [self._inbox.popleft() for _ in range(n)]

    # ---- observation

    def _is_open(self) -> bool:
        return self._bound

    def _read_packet_stats(self) -> dict[str, Any]:
        """RtUDP's statistics (the same keys as the socket implementation)."""
        with self._cond:
            counts = dict(self._counts)
        return packet_stats(counts, self._lateness.snapshot())

    def get_send_length(self) -> int:
        """Packets queued, not yet sent."""
        self._need_bound("get_send_length")
        with self._cond:
            return len(self._outbox)

    def get_receive_length(self) -> int:
        """Packets arrived, not yet read."""
        self._need_bound("get_receive_length")
        with self._cond:
            return len(self._inbox)

    def _need_bound(self, what: str) -> None:
        if not self._bound:
            raise self._not_initialised(what)
