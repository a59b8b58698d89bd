"""Netflux's parts on their own: ``NetfluxReceiver``, ``NetfluxSender`` and
``NetfluxStatisticsTracker``, with the reference's constructors and attributes, each
on a worker channel (``rtudp.compat.netflux_receiver`` and its siblings export them).

The reference runs each as a Python thread with its own socket.  Here the worker
does the work: a receiver is a receive-only netflux channel (a monitor of a PLC that
only listens), a sender a send-only one on the worker's clock, and the tracker reads
what the worker measures.  A thread of the receiver calls ``data_callback`` with each
new image (and zeros after a watchdog trip, unless ``keep_values_on_timeout``); one of
the sender polls ``data_provider`` once an interval and hands the worker the latest
image, which it sends on its absolute schedule.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any, Callable

from .channel import NetfluxChannel
from .data import (NetfluxStatistics, ReceiverStats, SenderStats, receiver_stats_of,
                   sender_stats_of, statistics_of)

_names = itertools.count()
#: how long after a sender's channel opens its first cycle is due
FIRST_CYCLE_LEAD_NS = 50_000_000


def _open(name: str, pool: Any, **args: Any) -> NetfluxChannel:
    """A netflux channel on ``pool`` (a Pool, a PoolClient, a pool name or None)."""
    if pool is not None and hasattr(pool, "open_channel"):
        return pool.open_channel(name, kind="netflux", **args)
    from rtudp.embedded import open_channel
    return open_channel(name, pool=pool, kind="netflux", **args)


class _Part:
    """What the receiver and the sender share: a channel, a thread, start and stop."""

    channel: NetfluxChannel | None
    _what = "part"

    def _init_part(self, pool: Any, name: str | None) -> None:
        self.pool = pool
        self.name = name or f"netflux-{self._what}-{os.getpid()}-{next(_names)}"
        self.channel = None
        self._start_error = "Not started"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._final: dict[str, Any] = {}

    def _open(self) -> NetfluxChannel:
        raise NotImplementedError

    def _loop(self) -> None:
        raise NotImplementedError

    def start(self) -> bool:
        """Open the channel and start; False (``error_message`` says why) if that fails,
        as the reference does."""
        if self.channel is not None and not self.channel.closed:
            return True
        try:
            self.channel = self._open()
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            self._start_error = f"Failed to start {self._what}: {exc}"
            return False
        self._start_error = ""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-thread",
                                        daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop the thread and close the channel (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.channel is not None and not self.channel.closed:
            self._final = self.channel.stats()  # get_stats() after stop(): the totals
            self.channel.close()

    def _stats(self) -> dict[str, Any]:
        ch = self.channel
        return ch.stats() if ch is not None and not ch.closed else self._final


class NetfluxReceiver(_Part):
    """The reference's receiver: ``NetfluxReceiver(local_port, data_callback, data_size,
    watch_interval=1.0, keep_values_on_timeout=False)``; ``start()``, ``stop()``,
    ``get_last_data()``, ``get_stats()``, ``error``, ``error_message``,
    ``partner_seq_number``, ``current_feedback_seq_number``, ``stats``.  rtudp adds
    ``local_ip``, ``pool`` and ``name`` (keywords) and ``channel``."""

    _what = "receiver"

    def __init__(self, local_port: int, data_callback: Callable[[bytes], None], data_size: int,
                 watch_interval: float = 1.0, keep_values_on_timeout: bool = False, *,
                 local_ip: str = "0.0.0.0", pool: Any = None, name: str | None = None) -> None:
        self.local_port, self.local_ip = local_port, local_ip
        self.data_callback = data_callback
        self.data_size = data_size
        self.watch_interval = watch_interval
        self.keep_values_on_timeout = keep_values_on_timeout
        self._init_part(pool, name)

    def _open(self) -> NetfluxChannel:
        return _open(self.name, self.pool, local=(self.local_ip, self.local_port), direction=1,
                     max_datagram=2 + max(self.data_size, 1),
                     options={"send_interval": 0, "watch_interval": self.watch_interval,
                              "send_size": 0, "recv_size": self.data_size,
                              "keep_values_on_timeout": self.keep_values_on_timeout})

    def _loop(self) -> None:
        ch = self.channel
        assert ch is not None
        seen, updates, link = ch.events, ch.read().updates, ch.link
        while not self._stop.is_set():
            seen = ch.wait_event(seen, 0.1)
            if self._stop.is_set() or ch.closed:
                return
            img = ch.read()
            if img.updates != updates:
                self._call(img.data)
            elif ch.link == "lost" and link != "lost" and not self.keep_values_on_timeout:
                self._call(bytes(self.data_size))  # the reference's cleared image
            updates, link = img.updates, ch.link

    def _call(self, data: bytes) -> None:
        try:
            self.data_callback(data)
        except Exception as exc:  # noqa: BLE001 - as the reference: reported, not fatal
            print(f"Error in data callback: {exc}")

    @property
    def error(self) -> bool:
        """True unless valid packets arrive within the watchdog interval."""
        ch = self.channel
        return ch is None or ch.closed or ch.link != "up"

    @property
    def error_message(self) -> str:
        """Why :attr:`error` is set ("" when it is not)."""
        ch = self.channel
        if ch is None or ch.closed:
            return self._start_error or "Not started"
        return {"up": "", "waiting": "No valid packet received yet",
                "lost": f"Watchdog timeout ({self.watch_interval:g}s)"}.get(ch.link, ch.link)

    @property
    def partner_seq_number(self) -> int:
        """Sequence byte of the partner's last valid packet."""
        return int(self._stats().get("nf_partner_seq", 0))

    @property
    def current_feedback_seq_number(self) -> int:
        """Feedback byte of the partner's last valid packet."""
        return int(self._stats().get("nf_partner_feedback", 0))

    def get_last_data(self) -> bytes:
        """The last received image (zeros before the first, and after a watchdog trip
        unless keep_values_on_timeout)."""
        ch = self.channel
        if ch is None or ch.closed:
            return bytes(self.data_size)
        return ch.read().data

    def get_stats(self) -> ReceiverStats:
        """Counts of received and rejected packets and watchdog events."""
        return receiver_stats_of(self._stats())

    @property
    def stats(self) -> ReceiverStats:
        """:meth:`get_stats` (the reference's attribute)."""
        return self.get_stats()


class NetfluxSender(_Part):
    """The reference's sender: ``NetfluxSender(remote_ip, remote_port, data_provider,
    data_size, send_interval=0.005, peer_socket=None)``; ``start()``, ``stop()``,
    ``set_partner_seq_number()``, ``get_stats()``, ``sequence_number``, ``error``,
    ``error_message``, ``stats``.  The worker sends on its own schedule the latest image
    ``data_provider()`` gave (polled once an interval).  rtudp adds ``local_port``,
    ``local_ip``, ``pool`` and ``name`` (keywords) and ``channel``."""

    _what = "sender"

    def __init__(self, remote_ip: str, remote_port: int, data_provider: Callable[[], bytes],
                 data_size: int, send_interval: float = 0.005, peer_socket: Any = None, *,
                 local_port: int = 0, local_ip: str = "0.0.0.0", pool: Any = None,
                 name: str | None = None) -> None:
        if peer_socket is not None:
            raise ValueError(f"peer_socket={peer_socket!r}: rtudp's worker owns the sockets; "
                             f"for one socket that sends and receives use NetfluxMain")
        self.remote_ip, self.remote_port = remote_ip, remote_port
        self.local_port, self.local_ip = local_port, local_ip
        self.data_provider = data_provider
        self.data_size = data_size
        self.send_interval = send_interval
        self.peer_socket = None
        self.partner_seq_number = 0
        self._provider_error = ""
        self._init_part(pool, name)

    def _open(self) -> NetfluxChannel:
        ch = _open(self.name, self.pool, local=(self.local_ip, self.local_port),
                   remote=(self.remote_ip, self.remote_port), direction=0,
                   max_datagram=2 + max(self.data_size, 1),
                   options={"send_interval": self.send_interval,
                            "watch_interval": max(1.0, 2 * self.send_interval),
                            "send_size": self.data_size, "recv_size": 0,
                            # the first cycle after the first image is written (as the
                            # reference's first packet carries the provider's data),
                            # unless this thread is held off the CPU that long
                            "start_ns": time.monotonic_ns() + FIRST_CYCLE_LEAD_NS})
        try:
            self._provide(ch)
        except BaseException:
            ch.close()
            raise
        return ch

    def _provide(self, ch: NetfluxChannel) -> None:
        """Hand the worker what ``data_provider()`` gives now (checked)."""
        try:
            data = bytes(self.data_provider())
            if len(data) != self.data_size:
                raise ValueError(f"Data provider returned {len(data)} bytes, expected "
                                 f"{self.data_size}")
        except Exception as exc:  # noqa: BLE001 - the reference reports it in error_message
            self._provider_error = f"Data provider error: {exc}"
            return
        self._provider_error = ""
        ch.write(data)

    def _loop(self) -> None:
        ch = self.channel
        assert ch is not None
        while not self._stop.wait(self.send_interval):
            if ch.closed:
                return
            self._provide(ch)

    def set_partner_seq_number(self, seq_num: int) -> None:
        """Kept for the reference's callers: the worker writes the feedback byte itself."""
        self.partner_seq_number = seq_num

    @property
    def sequence_number(self) -> int:
        """Sequence byte of our last packet."""
        return int(self._stats().get("nf_seq", 0))

    @property
    def error(self) -> bool:
        """True when not running, the provider failed, or sends failed."""
        return bool(self.error_message)

    @property
    def error_message(self) -> str:
        """Why :attr:`error` is set ("" when it is not)."""
        ch = self.channel
        if ch is None or ch.closed:
            return self._start_error or "Not started"
        if self._provider_error:
            return self._provider_error
        failed = self._stats().get("nf_send_errors", 0)
        return f"Socket send error ({failed} sends failed)" if failed else ""

    def get_stats(self) -> SenderStats:
        """Packets sent, failed, and cycles the worker skipped."""
        return sender_stats_of(self._stats())

    @property
    def stats(self) -> SenderStats:
        """:meth:`get_stats` (the reference's attribute)."""
        return self.get_stats()


class NetfluxStatisticsTracker:
    """The reference's tracker: ``NetfluxStatisticsTracker(cycle_time_ms=1.0)``,
    ``update()``, ``reset()``, ``get_stats()``, ``stats``; the worker measures
    intervals, RTT and loss from every packet, so ``update()`` has nothing to do.  Give
    it the channel to read: ``channel=`` (a netflux channel, or anything with one:
    NetfluxMain, NetfluxReceiver, NetfluxSender), or :meth:`attach` later."""

    def __init__(self, cycle_time_ms: float = 1.0, *, channel: Any = None) -> None:
        self.cycle_time_ms = cycle_time_ms
        self._source = channel
        self._base: NetfluxStatistics | None = None

    def attach(self, channel: Any) -> None:
        """Read the statistics of ``channel`` (see the class docstring)."""
        self._source, self._base = channel, None

    def update(self, recv_seq_number: int, send_seq_number: int,
               feedback_seq_number: int) -> None:
        """Kept for the reference's callers: the worker measures every packet itself."""

    def reset(self) -> None:
        """Count the losses from now on (the worker's intervals and RTT go on)."""
        self._base = self._read()

    def _read(self) -> NetfluxStatistics:
        ch = getattr(self._source, "channel", self._source)
        if ch is None or ch.closed:
            return NetfluxStatistics()
        return statistics_of(ch.stats())

    def get_stats(self) -> NetfluxStatistics:
        """Mean intervals, last RTT (ms) and loss counts (since :meth:`reset`)."""
        now = self._read()
        if self._base is not None:
            now.total_partner_lost_packets -= self._base.total_partner_lost_packets
            now.total_feedback_lost_packets -= self._base.total_feedback_lost_packets
        return now

    @property
    def stats(self) -> NetfluxStatistics:
        """:meth:`get_stats` (the reference's attribute)."""
        return self.get_stats()


__all__ = ["NetfluxReceiver", "NetfluxSender", "NetfluxStatisticsTracker"]
