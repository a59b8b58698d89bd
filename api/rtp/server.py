"""librtpsynth's ``RtpServer`` on rtudp's worker channels.

librtpsynth runs one C thread per server that polls every channel's socket each
tick, calls ``pkt_in(pkt, addr, rtime)`` and sends what ``send_pkt`` queued.  Here the
sockets belong to the pool's native workers: ``send_pkt`` puts the datagram in the
channel's TX ring and the worker sends it at once (not at the next tick); the worker
receives into the RX ring with the kernel's receive time.  What stays in Python is
calling ``pkt_in``: one dispatcher thread per server, waking every tick (as
librtpsynth's), hands each channel's new datagrams to its callback, with ``rtime`` the
kernel receive time (CLOCK_MONOTONIC ns; librtpsynth gives the poll time).

Channels are ``rtp`` channels in raw mode (datagrams as they are, like librtpsynth,
which does not parse them).  Differences: ``queue_size`` is the TX ring's capacity in
packets of up to ``max_datagram`` bytes (a keyword librtpsynth does not have; default
1472, larger datagrams raise ValueError), and ``pool=`` picks the pool (a
:class:`rtudp.Pool`, a pool name, or None for ``$RTUDP_POOL``/``"default"``: a
standalone pool if one runs, else this program's embedded one).

Receiving: ``queue_size`` is the send side's only.  The RX ring and the socket's
receive buffer hold ``rx_queue_size`` packets (a keyword; default
:data:`DEFAULT_RX_QUEUE_SIZE`), where librtpsynth has the kernel's socket buffer.  The
worker never waits for the dispatcher: when ``pkt_in`` falls a whole RX ring behind,
the oldest datagrams are overwritten.  Nothing goes unseen: what never reached
``pkt_in`` is counted in :meth:`RtpServerChannel.stats` (``rx_lost``; the kernel's
drops in ``rx_kernel_drops``), in rtstat and ``rtudp metrics`` (the channel's RX ring
``records_lost``), and logged as a warning on the ``rtudp.rtp.server`` logger (at most
once a second per channel; librtpsynth's ``pkt_in`` has no place for it).
"""
from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from typing import Any, Callable

from rtudp.embedded import open_channel
from rtudp.shmring.errors import BackPressureError

from . import RtpQueueFullError
from .channel import RtpChannel

log = logging.getLogger("rtudp.rtp.server")

DEFAULT_TICK_HZ = 200
DEFAULT_QUEUE_SIZE = 32
DEFAULT_MAX_DATAGRAM = 1472
#: packets a channel's receive side holds for ``pkt_in`` (a pool channel's default capacity)
DEFAULT_RX_QUEUE_SIZE = 1024
MAX_QUEUE_SIZE = 1 << 20  # the pool's channel capacity limit
#: a channel's losses are logged at most once in this many ns (with the count since)
LOSS_WARN_NS = 1_000_000_000
_FAMILIES: dict[Any, int] = {None: socket.AF_UNSPEC, 0: socket.AF_UNSPEC, 4: socket.AF_INET,
                             6: socket.AF_INET6, socket.AF_INET: socket.AF_INET,
                             socket.AF_INET6: socket.AF_INET6, "auto": socket.AF_UNSPEC,
                             "unspec": socket.AF_UNSPEC, "any": socket.AF_UNSPEC,
                             "ipv4": socket.AF_INET, "inet": socket.AF_INET,
                             "af_inet": socket.AF_INET, "ipv6": socket.AF_INET6,
                             "inet6": socket.AF_INET6, "af_inet6": socket.AF_INET6}
_ids = itertools.count(1)

PktIn = Callable[[bytes, tuple[str, int], int], Any]


class _Entry:
    """A channel as the dispatcher keeps it: its handle, its callback, and the losses
    it has not yet logged."""

    __slots__ = ("handle", "pkt_in", "unlogged", "logged_ns")

    def __init__(self, handle: RtpChannel, pkt_in: PktIn) -> None:
        self.handle = handle
        self.pkt_in = pkt_in
        self.unlogged = 0
        self.logged_ns = 0

    def lost(self, n: int, now: int) -> None:
        """``n`` more datagrams never reached pkt_in: log those not yet logged, at most
        once per LOSS_WARN_NS (the rest at a later call, n = 0 or not); ``now`` is
        time.monotonic_ns()."""
        self.unlogged += n
        if not self.unlogged or (self.logged_ns and now - self.logged_ns < LOSS_WARN_NS):
            return
        log.warning("RtpServer: channel %s: %d datagram(s) never reached pkt_in (it fell a "
                    "whole receive queue behind; a larger rx_queue_size holds more); "
                    "RtpServerChannel.stats()['rx_lost'] counts them all",
                    self.handle.name, self.unlogged)
        self.unlogged = 0
        self.logged_ns = now


def _check_size(value: object, what: str, power_of_two: bool) -> int:
    """A queue size: an int 1..MAX_QUEUE_SIZE (a power of two if asked)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {value!r}")
    if value <= 0:
        raise ValueError(f"{what} must be > 0, got {value}")
    if power_of_two and value & (value - 1):
        raise ValueError(f"{what} must be a power of two, got {value}")
    if value > MAX_QUEUE_SIZE:
        raise OverflowError(f"{what} {value} is more than a channel holds ({MAX_QUEUE_SIZE})")
    return value


def _family(bind_family: object) -> int:
    if isinstance(bind_family, bool) or not isinstance(bind_family, (int, str, type(None))):
        raise TypeError(f"bind_family must be an int, str, or None, not {bind_family!r}")
    key = bind_family.lower() if isinstance(bind_family, str) else bind_family
    if key not in _FAMILIES:
        raise ValueError(f"bind_family {bind_family!r} must be one of 0, 4, 6, AF_INET, "
                         f"AF_INET6, 'auto', 'ipv4', 'ipv6'")
    return _FAMILIES[key]


def _resolve(host: str | None, port: int, family: int, passive: bool) -> tuple[int, str]:
    """(family, numeric host) of a UDP address, as getaddrinfo gives it first."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be in range 0..65535, got {port!r}")
    flags = socket.AI_NUMERICSERV | (socket.AI_PASSIVE if passive else 0)
    try:
        infos = socket.getaddrinfo(host or None, port, family, socket.SOCK_DGRAM,
                                   socket.IPPROTO_UDP, flags)
    except socket.gaierror as exc:
        raise OSError(f"getaddrinfo failed for {host!r}: {exc}") from None
    for fam, _t, _p, _c, addr in infos:
        if fam in (socket.AF_INET, socket.AF_INET6):
            return fam, str(addr[0])
    raise OSError(f"{host!r} has no IPv4/IPv6 UDP address")


class RtpServerChannel:
    """One channel of an :class:`RtpServer` (librtpsynth's ``RtpChannel``)."""

    def __init__(self, server: "RtpServer", handle: RtpChannel) -> None:
        self._server = server
        self._handle = handle
        self._has_target = False
        self.closed = False

    @property
    def local_addr(self) -> tuple[str, int]:
        """(host, port) the channel's socket is bound to."""
        return self._handle.local  # type: ignore[return-value]

    def set_target(self, host: str, port: int) -> None:
        """Send to (host, port) from now on (resolved like librtpsynth: getaddrinfo)."""
        self._check_open()
        family = socket.AF_INET6 if ":" in self.local_addr[0] else socket.AF_INET
        _fam, numeric = _resolve(host, port, family, passive=False)
        self._handle.set_target(numeric, port)
        self._has_target = True

    def send_pkt(self, data: bytes) -> None:
        """Send one datagram now.  RtpQueueFullError when the channel's queue is full,
        RuntimeError without a target or after close."""
        self._check_open()
        if not self._has_target:
            raise RuntimeError("channel target is not set")
        try:
            self._handle.send(data)
        except BackPressureError as exc:
            raise RtpQueueFullError(f"channel send queue is full: {exc}") from None
        except ValueError:
            limit = self._handle.max_datagram
            if len(data) > limit:  # named as create_channel's argument that allows it
                raise ValueError(f"send_pkt: datagram of {len(data)} bytes is larger than "
                                 f"this channel's max_datagram={limit}: create the channel "
                                 f"with create_channel(..., max_datagram="
                                 f"{max(9000, len(data))})") from None
            raise

    def stats(self) -> dict[str, Any]:
        """The channel's counters (:meth:`rtudp.Channel.stats`; an rtudp extension).

        They add up: every ``send_pkt`` either raised RtpQueueFullError or is, once
        sent, in ``tx_packets`` (or ``tx_errors``: the kernel refused it).  Every
        datagram that reached the socket is in ``rx_packets`` or ``rx_kernel_drops``
        (socket buffer full; the kernel reports its count with the next datagram), and
        ``rx_packets - rx_errors`` = pkt_in calls + ``rx_lost`` (overwritten in the RX
        ring before the dispatcher read them: ``rx_queue_size`` was too small for how
        far pkt_in fell behind).  RuntimeError after close.
        """
        self._check_open()
        return self._handle.stats()

    def close(self) -> None:
        """Close the channel (RuntimeError if it already is); no pkt_in call follows."""
        self._check_open()
        self.closed = True
        self._server._drop(self)

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("channel is closed")

    def __del__(self) -> None:
        # librtpsynth: a channel nobody holds is destroyed.  Closing takes pool locks,
        # so the dispatcher thread does it, not whatever thread runs this finaliser.
        if not getattr(self, "closed", True):
            self.closed = True
            self._server._orphan(self._handle)

    def __repr__(self) -> str:
        return f"<RtpServerChannel {self._handle.name!r}{' closed' if self.closed else ''}>"


class RtpServer:
    """librtpsynth's ``RtpServer(tick_hz)``: UDP channels whose datagrams reach
    ``pkt_in`` callbacks every tick; sends go out through the pool's workers."""

    def __init__(self, tick_hz: int = DEFAULT_TICK_HZ, *, pool: Any = None) -> None:
        if isinstance(tick_hz, bool) or not isinstance(tick_hz, int):
            raise TypeError(f"tick_hz must be an int, not {tick_hz!r}")
        if tick_hz <= 0:
            raise ValueError(f"tick_hz must be > 0, got {tick_hz!r}")
        self.tick_ns = max(1, 1_000_000_000 // tick_hz)
        self._pool = pool
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}  # by channel name
        self._orphans: list[RtpChannel] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtudp-RtpServer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ channels

    def create_channel(self, pkt_in: PktIn, bind_host: str | None = None, bind_port: int = 0,
                       queue_size: int = DEFAULT_QUEUE_SIZE, bind_family: Any = None, *,
                       max_datagram: int = DEFAULT_MAX_DATAGRAM,
                       rx_queue_size: int = DEFAULT_RX_QUEUE_SIZE) -> RtpServerChannel:
        """A channel bound to (bind_host, bind_port) whose datagrams go to
        ``pkt_in(pkt, addr, rtime)``.  ``queue_size`` (a power of two) packets may wait
        to be sent; ``rx_queue_size`` received ones may wait for pkt_in (what falls
        further behind is counted in ``stats()["rx_lost"]``)."""
        if not callable(pkt_in):
            raise TypeError(f"pkt_in must be callable, not {pkt_in!r}")
        _check_size(queue_size, "queue_size", power_of_two=True)
        _check_size(rx_queue_size, "rx_queue_size", power_of_two=False)
        _fam, host = _resolve(bind_host, bind_port, _family(bind_family), passive=True)
        if self._stop.is_set():
            raise RuntimeError("RtpServer is shutting down")
        name = f"rtpsrv-{os.getpid()}-{next(_ids)}"
        opts = {"tx_mode": "raw", "rx_mode": "raw"}
        kwargs = dict(local=(host, bind_port), capacity=queue_size, rx_capacity=rx_queue_size,
                      max_datagram=max_datagram, kind="rtp", options=opts)
        if self._pool is None or isinstance(self._pool, str):
            handle = open_channel(name, pool=self._pool, **kwargs)
        else:
            handle = self._pool.open_channel(name, **kwargs)
        with self._lock:
            self._entries[name] = _Entry(handle, pkt_in)
        return RtpServerChannel(self, handle)

    def _drop(self, ch: RtpServerChannel) -> None:
        with self._lock:
            self._entries.pop(ch._handle.name, None)
        ch._handle.close()

    def _orphan(self, handle: RtpChannel) -> None:
        with self._lock:
            if self._entries.pop(handle.name, None) is not None:
                self._orphans.append(handle)

    # ------------------------------------------------------------ the dispatcher

    def _dispatch(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            orphans, self._orphans = self._orphans, []
        for handle in orphans:
            handle.close()
        for entry in entries:
            self._deliver(entry)

    def _deliver(self, entry: _Entry) -> None:
        """Hand one channel's new datagrams to its pkt_in; log what it lost."""
        handle, pkt_in = entry.handle, entry.pkt_in
        if handle.closed:
            return
        lost = 0
        for _ in range(4096):  # bounded per tick: one flooded channel cannot starve
            try:
                pkt = handle._try_recv()
            except ValueError:  # closed meanwhile by its owner
                break
            if pkt is None:
                break
            lost += pkt.lost
            if handle.name not in self._entries:
                break  # closed by another thread: no more calls for it
            try:
                pkt_in(pkt.data, pkt.source, pkt.rx_ns)
            except Exception:  # noqa: BLE001 - librtpsynth reports and goes on
                log.exception("RtpServer: pkt_in of channel %s raised", handle.name)
        if lost or entry.unlogged:
            entry.lost(lost, time.monotonic_ns())

    def _run(self) -> None:
        next_tick = time.monotonic_ns()
        while not self._stop.is_set():
            self._dispatch()
            next_tick += self.tick_ns
            now = time.monotonic_ns()
            if next_tick <= now:  # behind: skip the missed ticks
                next_tick = now + self.tick_ns - (now - next_tick) % self.tick_ns
            self._stop.wait((next_tick - now) / 1e9)

    def shutdown(self) -> None:
        """Stop dispatching and close every channel (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            handles = [e.handle for e in self._entries.values()] + self._orphans
            self._entries.clear()
            self._orphans = []
        for handle in handles:
            handle.close()

    def __enter__(self) -> "RtpServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


__all__ = ["RtpServer", "RtpServerChannel"]
