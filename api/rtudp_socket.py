"""RtUdpSocket: RtUDP's API on a worker-pool channel.

The channel's worker (a pinned SCHED_FIFO process when permitted) sends each
packet at its deadline and receives with kernel timestamps; this object only
queues and reads.  What RtUDP's README promised and its code did not do, this
does: full duplex on one endpoint, ``cpu=`` places the channel on the worker of
that CPU (not the calling thread), blocking calls release the GIL, a full queue
raises BackPressureError instead of dropping, and ``cpu`` outside the pool is a
ValueError naming it.
"""
from __future__ import annotations

import itertools
import os
import time
from collections import deque
from typing import Any, Mapping

from rtudp.shmring.errors import ChannelNotFoundError, PoolNotRunningError, RtUdpError
from rtudp.shmring.impairment import Impairment

from .channel import Channel, Packet
from .compat_base import (DEFAULT_MAX_DATAGRAM, DIRECTION_BOTH, DIRECTION_RECV, DIRECTION_SEND,
                          RtUdpBase)
from .embedded import channel_host
from .packet_stats import packet_stats
from .pool import Pool
from .pool_client import PoolClient

_names = itertools.count()


class RtUdpSocket(RtUdpBase):
    """An RtUDP endpoint served by a worker of ``pool`` (a :class:`Pool` or a
    :class:`PoolClient`).  None: the pool ``$RTUDP_POOL`` (or ``"default"``) names, as
    ``rtudp.open_channel`` finds it: this program's embedded pool, or the standalone
    one another process runs (``rtudp pool start``), or a new embedded pool.

    At most ``capacity`` packets are queued to send; the queue's ring holds ``capacity``
    datagrams of ``max_datagram`` bytes, or at most
    ``rtudp.shmring.channel.TX_RING_BYTES_MAX`` bytes (8 MiB) of them, so a large
    capacity of large datagrams gives back-pressure (BackPressureError) before
    ``capacity`` is reached; nothing is dropped.  ``impairment``: an
    :class:`rtudp.Impairment` (or a dict of its fields) the worker applies to what this
    endpoint sends (and, with ``direction="rx"`` or ``"both"``, receives).
    """

    REPR_NAME = "RtUdpSocket"

    def __init__(self, local_ip: str, local_port: int, remote_ip: str, remote_port: int,
                 cpu: int | None = None, capacity: int = 1024,
                 direction: int | str = DIRECTION_BOTH, pool: Pool | PoolClient | None = None,
                 max_datagram: int = DEFAULT_MAX_DATAGRAM,
                 impairment: Impairment | Mapping[str, Any] | None = None) -> None:
        self._take_arguments(local_ip, local_port, remote_ip, remote_port, cpu, capacity,
                             direction, max_datagram)
        #: what the worker does to this endpoint's datagrams (rtudp.Impairment), or None
        self.impairment = Impairment.of(impairment)
        self._pool = pool
        self._own_client: PoolClient | None = None  # made by init_socket: closed with us
        self._name = f"rtudp{os.getpid()}_{next(_names)}"
        self._chan: Channel | None = None
        self._running = False
        self._requested = 0
        self._purged = 0
        self._done_seen = 0  # tx_packets + tx_errors when last read (they only grow)
        self._pending: deque[Packet] = deque()

    # ---- lifecycle

    def init_socket(self) -> None:
        """Bind the local address and open the channel (paused until start())."""
        if self._chan is not None:
            raise RtUdpError(f"{self!r} is already initialised")
        pool = self._pool
        if pool is None:
            pool = channel_host()
            if isinstance(pool, PoolClient):
                self._own_client = pool
        try:
            chan = pool.open_channel(self._name, local=self.local, remote=self.remote,
                                     direction=self.direction, capacity=self.capacity,
                                     max_datagram=self.max_datagram, cpu=self.cpu,
                                     impairment=self.impairment)
            try:
                pool.pause_channel(self._name)
            except BaseException:
                chan.close()
                raise
        except BaseException:
            self._close_client()
            raise
        self._chan, self._pool = chan, pool

    def close_socket(self) -> None:
        """Stop, close the channel, release the address."""
        if self._chan is None:
            return
        # off its worker first: the counts kept then include every send it made
        try:
            self.stop()
        except (PoolNotRunningError, ChannelNotFoundError):
            self._running = False  # no worker serves it: its counts are final already
        self._keep_final_stats()
        chan, self._chan = self._chan, None
        try:
            chan.close()  # the pool's own handle: closing it closes the channel in the pool
        finally:
            self._close_client()

    def _close_client(self) -> None:
        if self._own_client is not None:
            if self._pool is self._own_client:
                self._pool = None  # the next init_socket looks for the pool again
            self._own_client.close()
            self._own_client = None

    def start(self) -> None:
        """Hand the channel to its worker: queued packets leave at their deadlines."""
        self._need("start")
        if self._running:
            raise RtUdpError(f"{self!r} is already running")
        assert self._pool is not None
        self._pool.resume_channel(self._name)
        self._running = True

    def stop(self) -> None:
        """Take the channel off its worker; queued packets wait for start()."""
        if self._chan is None or not self._running:
            return
        assert self._pool is not None
        self._pool.pause_channel(self._name)
        self._running = False

    def is_running(self) -> bool:
        """True between start() and stop()."""
        return self._running

    def purge(self) -> None:
        """Drop what is queued to send (while paused: the worker is off the ring) and
        what was received but not read."""
        chan = self._need("purge")
        was_running = self._running
        self.stop()
        try:
            while True:  # we are the ring's only consumer while the channel is paused
                dropped = len(chan._tx._get_many_nowait(1024))
                if not dropped:
                    break
                self._purged += dropped
        finally:
            if was_running:
                self.start()
        self._pending.clear()
        if self.direction != DIRECTION_SEND:
            while chan.recv_many(1024, timeout=0):
                pass

    # ---- sending

    def send_data(self, data: bytes, ts_ns: int | None = None) -> None:
        """Queue ``data`` to leave at ``ts_ns`` (None/0 = now; a ``time.monotonic_ns()``
        value at most the pool's ``horizon_s`` ahead, else ValueError); BackPressureError
        if the queue is full."""
        chan = self._chan
        # the common case without a Python check per argument: bytes, a deadline that
        # is None or an int (Channel.send checks the rest), room by a count kept here
        # (the worker's counters, on a line it writes, are read only near capacity)
        if (chan is not None and type(data) is bytes and self.direction != DIRECTION_RECV
                and (ts_ns is None or type(ts_ns) is int)
                and self._requested - self._purged - self._done_seen < self.capacity):
            try:
                chan.send(data, ts_ns)
            except ValueError:
                self._check_send(chan.horizon, data, ts_ns)  # named as send_data calls them
                raise
            self._requested += 1
            return
        chan = self._need("send_data")
        payload, ts_ns = self._check_send(chan.horizon, data, ts_ns)
        if self.get_send_length() >= self.capacity:
            raise chan._full(len(payload))
        chan.send(payload, ts_ns)
        self._requested += 1

    # ---- receiving

    def receive_data(self, timeout_ns: int) -> tuple[bytes, int]:
        """The next packet and its kernel receive time (CLOCK_MONOTONIC ns)."""
        return self.receive_batch(1, timeout_ns)[0]

    def receive_batch(self, n: int, timeout_ns: int) -> list[tuple[bytes, int]]:
        """Exactly ``n`` packets, or TimeoutError consuming none (what arrived is kept
        for the next call)."""
        chan = self._need("receive")
        n, timeout_ns = self._check_receive(n, timeout_ns)
        timeout_s = timeout_ns / 1e9
        deadline = time.monotonic() + timeout_s
        while len(self._pending) < n:
            left = deadline - time.monotonic()
            got = chan.recv_many(n - len(self._pending), timeout=max(left, 0))
            self._pending.extend(got)
            if not got and left <= 0:
                raise TimeoutError(f"{self!r}: {len(self._pending)} of {n} packets arrived "
                                   f"within {timeout_ns} ns")
        return [(p.data, p.rx_ns) for p in (self._pending.popleft() for _ in range(n))]

    # ---- observation

    def _is_open(self) -> bool:
        return self._chan is not None

    def _read_packet_stats(self) -> dict[str, Any]:
        """RtUDP's statistics (the same keys as the emulated implementation)."""
        chan = self._need("get_packet_stats")
        s = chan.stats()
        counts = {
            "n_packets_sent": s["tx_packets"],
            "n_packets_rec": s["rx_packets"],
            "n_packets_req": self._requested,
            "n_immediate_packets": s["tx_immediate"],
            "n_tx_packets_dropped": s["tx_errors"],
            "n_rx_packets_dropped": s["rx_kernel_drops"] + s.get("rx_lost", 0),
        }
        return packet_stats(counts, chan.lateness())

    def get_send_length(self) -> int:
        """Packets queued by this endpoint and not yet sent (or failed)."""
        block = self._need("get_send_length")._seg.block  # two counters, no histogram copy
        self._done_seen = block.tx_packets + block.tx_errors + block.direct.packets
        return max(0, self._requested - self._purged - self._done_seen)

    def get_receive_length(self) -> int:
        """Packets received and not yet read."""
        chan = self._need("get_receive_length")
        if self.direction != DIRECTION_SEND:
            self._pending.extend(chan.recv_many(1024, timeout=0))
        return len(self._pending)

    def _need(self, what: str) -> Channel:
        if self._chan is None:
            raise self._not_initialised(what)
        return self._chan
