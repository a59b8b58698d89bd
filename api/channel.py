"""Channels as users see them: send timed datagrams, receive them with their timestamps.

``rtudp.attach(name, pool=None)`` works from any process: it maps the pool's control
segment, finds the channel by name and maps its segment.  Every :class:`Channel`
may send (many processes may send on one channel: the TX ring has many
producers) and has its own receive cursor (every attached reader gets every
packet, from the moment it attached).

Loss on receive: a reader that falls more than the RX ring behind is not stopped;
each :class:`Packet` says in ``lost`` how many packets this reader missed just before
it, and ``stats()["rx_lost"]`` counts them all.  Nothing is dropped silently on send:
a full TX ring raises :class:`BackPressureError`.
"""
from __future__ import annotations

import os
import socket
from time import monotonic_ns
from typing import Any, Callable, NamedTuple, Sequence

from rtudp.shmring._fast import ChannelBase, drx_reader_joined
from rtudp.shmring._native import ffi, lib
from rtudp.shmring._ringbase import FOREVER
from rtudp.shmring.channel import ChannelSegment
from rtudp.shmring.control import HEARTBEAT_STALE_NS, ControlSegment, pid_alive
from rtudp.shmring.deadline import Horizon
from rtudp.shmring.errors import (BackPressureError, BadSegmentError, ChannelClosedError,
                                  ChannelNotFoundError, PoolNotRunningError, RtUdpError)
from rtudp.shmring.kinds import COUNTER_GROUPS, stat_keys
from rtudp.shmring.segment import shm_path, validate_name

from .batch import MAX_BATCH, ColumnCache, PacketBatch, batch_arrays
from .handles import ChannelHandle, Impairable, check_kind, open_handle
from .reply import count_direct_send, duplicate_socket

_DIRECTIONS = {0: "send-only", 1: "receive-only", 2: "full duplex"}


class Packet(NamedTuple):
    """A received datagram.

    ``source`` (host, port); ``rx_ns`` the kernel's receive time as CLOCK_MONOTONIC
    ns (``time.monotonic_ns()``); ``hw_ns`` the raw hardware stamp (0 if none);
    ``seq`` the channel's receive sequence number; ``lost`` how many packets this
    reader missed (overwritten before it read them) just before this one.
    """

    data: bytes
    source: tuple[str, int] | None
    rx_ns: int
    hw_ns: int
    seq: int
    lost: int = 0


def _cpu_left_for_spinning(control: ControlSegment) -> bool:
    """Whether this process may run on a CPU no worker of the pool is pinned to.

    A reader spins briefly before it parks on the futex, which saves a wake-up when
    a CPU is free for it.  When a worker owns every CPU this process can use, the
    spinning reader instead holds off the process or worker that is about to answer
    it: measured on 2 CPUs, a ping-pong between two channel processes took 60 µs a
    round trip with readers spinning 50 µs and 29 µs without (``rtudp bench latency``).
    """
    try:
        mine = os.sched_getaffinity(0)
        taken = {int(control.worker(i).cpu) for i in range(control.n_workers)}
    except (OSError, BadSegmentError):
        return True
    return bool(mine - taken)


#: a handle that found the worker idle less than this long ago is in a burst: it
#: queues (one wake-up then serves the batch) instead of sending directly
DIRECT_QUIET_NS = 5_000


#: how long a direct receive may spin before it sleeps, when recent waits say a spin
#: catches the datagram (csrc/direct_recv.c); $RTUDP_DIRECT_RECV_SPIN_US overrides it
DIRECT_RECV_SPIN_NS = 50_000

#: why a handle with ``receives = False`` cannot receive (its errors, direct_recv_off)
_NOT_RECEIVING = "this handle does not receive (receives = False)"


def direct_recv_spin_ns() -> int:
    """The spin budget of a direct receive: DIRECT_RECV_SPIN_NS, or
    ``$RTUDP_DIRECT_RECV_SPIN_US`` (µs, 0: never spin) when set."""
    raw = os.environ.get("RTUDP_DIRECT_RECV_SPIN_US")
    if raw is None:
        return DIRECT_RECV_SPIN_NS
    try:
        us = int(raw)
    except ValueError:
        us = -1
    if us < 0:
        raise ValueError(f"$RTUDP_DIRECT_RECV_SPIN_US must be a whole number of µs >= 0, "
                         f"got {raw!r}")
    return us * 1000


def payload_size(data: object) -> int:
    """The size of a datagram to send; TypeError naming anything that is not bytes-like."""
    try:
        return memoryview(data).nbytes  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"a datagram must be bytes-like (bytes, bytearray, memoryview), "
                        f"not {type(data).__name__}: {data!r:.60}") from None


#: the types recv() takes as seconds without the full check (bool is neither)
_SECONDS = (float, int)


def _plainly_seconds(timeout: object) -> bool:
    """None, or an exact float / int >= 0: a timeout that needs no further check."""
    return timeout is None or (type(timeout) in _SECONDS and timeout >= 0)  # type: ignore[operator]


def _deadline_ns(timeout: float | None) -> int:
    """A receive's deadline for the C reads: FOREVER for None, 0 (poll) for 0, else
    CLOCK_MONOTONIC ns ``timeout`` s from now."""
    if timeout is None:
        return FOREVER
    if timeout == 0:
        return 0
    return monotonic_ns() + int(timeout * 1e9)


def _check_timeout(timeout: object) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if not timeout >= 0:
        raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")


class Channel(ChannelBase, ChannelHandle, Impairable):
    """One process's handle on a channel: its own send side and receive cursor.

    ``send()`` and ``recv()`` are the C base type's (``ChannelBase``,
    csrc/pyfast/channel.c): each does the common case in one C call and hands the rest
    to :meth:`_send_checked` / :meth:`_recv_checked` here, which check everything and
    raise the API's errors.
    """

    #: the channel kind this handle serves, and its name in messages (a subclass for
    #: another kind that shares the rings' handling sets its own)
    KIND: int = lib.RTUDP_KIND_UDP
    HANDLE_NAME = "rtudp.Channel"

    def __init__(self, pool: str, name: str, control: ControlSegment, seg: ChannelSegment,
                 on_close: Callable[[str], None] | None = None) -> None:
        self.pool = pool
        self.name = name
        self._control = control
        self._seg = seg
        self._on_close = on_close
        cfg = seg.config()
        if cfg["name"] != name:
            raise BadSegmentError(f"channel segment {shm_path(seg.name)} names channel "
                                  f"{cfg['name']!r}, not {name!r}")
        check_kind(name, pool, cfg["kind"], self.KIND, self.HANDLE_NAME)
        self.direction: int = cfg["direction"]
        self.max_datagram: int = cfg["max_datagram"]
        if not 0 < self.max_datagram <= seg.tx.max_payload:
            raise BadSegmentError(f"channel {name!r}: max_datagram {self.max_datagram} does "
                                  f"not fit its TX ring")
        self.local: tuple[str, int] | None = cfg["local"]
        self.remote: tuple[str, int] | None = cfg["remote"]
        self._tx = seg.tx
        self._try_put = seg.tx.try_put
        # every commit into the TX ring also marks the channel in the worker's ready
        # set and rings its bell, in C
        control.wire_producer(self._tx, seg.block, cfg["table_slot"])
        self._can_send = self.direction != lib.RTUDP_DIR_RECV
        self._horizon = Horizon(control.horizon_ns, f"pool {pool!r}")
        if self._can_send and not self._needs_remote():
            # send() queues into the TX ring in C; the rest goes to _send_checked (all
            # of it without a remote: it says to use send_to)
            self._fast_send(self._tx, self.max_datagram, self._horizon.ns)
        self._reply_sock: socket.socket | None = None  # send_to's, made on first use
        self._columns: ColumnCache | None = None  # recv_batch's arrays, made on first use
        self._direct_off: str | None = "not enabled yet"
        self.direct_send = True
        self._reader_slot = -1
        self._rx_open = False  # True while this handle receives (not closed, receives)
        self._start_receiving()
        self._direct_recv_off: str | None = "not enabled yet"
        self.direct_recv = True
        self._watch_liveness(True)

    def _start_receiving(self) -> None:
        """Count as a reader and place the cursor (the ring's tail), for a channel that
        receives.  The reader slot (the channel's "readers attached") is claimed before
        the cursor is placed: a read of the socket another process makes now is
        published first, and every later one is the worker's (csrc/direct_recv.h)."""
        seg = self._seg
        if self.direction != lib.RTUDP_DIR_SEND:
            self._reader_slot = seg.claim_reader()
            if self._reader_slot >= 0:
                drx_reader_joined(int(ffi.cast("uintptr_t", seg.block)))
        self._reader = seg.rx.reader()
        if not _cpu_left_for_spinning(self._control):
            self._reader.spin_ns = 0
        self._rx_open = self.direction != lib.RTUDP_DIR_SEND
        if self._rx_open and type(self)._next is Channel._next:  # (a kind's own reads stay)
            # recv() reads the RX ring in C; the rest goes to _recv_checked
            self._fast_recv(self._reader, Packet, self.name, self._reader.spin_ns)

    @property
    def receives(self) -> bool:
        """Whether this handle receives (default: True where the channel does).

        Set False on a handle that will not receive, such as the one a program keeps
        open while another process reads the channel: it stops counting as a reader
        (``readers_attached``), and the other process may then read the channel socket
        itself (:attr:`direct_recv`: a reader does only while no other process is
        attached as one).  Its receives raise ValueError until set True again, which
        receives from then on.
        """
        return self._rx_open

    @receives.setter
    def receives(self, on: bool) -> None:
        self._check_switch("receives", on)
        if on == self._rx_open:
            return
        if not on:
            self._stop_receiving()
            self._direct_recv_off = _NOT_RECEIVING
            return
        if self.direction == lib.RTUDP_DIR_SEND:
            raise ValueError(f"channel {self.name!r} is send-only (direction=0): "
                             f"it cannot receive")
        self._start_receiving()
        self._watch_liveness(True)
        self.direct_recv = True

    def _stop_receiving(self) -> None:
        """No more receives on this handle: its reader slot, direct receive and the C
        recv() go."""
        self._rx_open = False
        self._seg.release_reader(self._reader_slot)
        self._reader_slot = -1
        self._reader._close_direct_recv()
        # recv() takes the Python path from now on (it says why it cannot)
        self._fast_recv(None, Packet, self.name, 0)

    # ------------------------------------------------------------ liveness

    def _watch_liveness(self, on: bool) -> None:
        """Have send() and recv() (in C: csrc/pyfast/liveness.c) check that the channel
        can still carry traffic: its block's closed word at each call, the pool's
        heartbeat every few sends and while a receive waits, and when that is stale,
        whether the supervisor's process has exited.  Off before unmapping."""
        if not on:
            self._watch(0, 0, 0, 0, 0)
            self._reader._watch(0, 0, 0, 0, 0, None)
            return
        state = int(ffi.cast("uintptr_t", ffi.addressof(self._seg.block.direct, "state")))
        beat = int(ffi.cast("uintptr_t", ffi.addressof(self._control.c.pool, "heartbeat_ns")))
        sup = (self._control.supervisor_pid, self._control.supervisor_start)
        self._watch(state, beat, HEARTBEAT_STALE_NS, *sup)
        self._reader._watch(state, beat, HEARTBEAT_STALE_NS, *sup, self.name)

    def _gone(self) -> RtUdpError | None:
        """Why nothing can be sent or received any more (the error to raise), or None."""
        if self._seg.block.direct.state == lib.RTUDP_DIRECT_REVOKED:
            return ChannelClosedError(f"channel {self.name!r} was closed by pool {self.pool!r} "
                                      f"(or the pool stopped): nothing more can be sent or "
                                      f"received on it")
        if self._control.supervisor_exited():
            return PoolNotRunningError(f"pool {self.pool!r} is not running (its supervisor "
                                       f"has exited): channel {self.name!r} can send and "
                                       f"receive nothing more")
        return None

    def _raise_if_gone(self) -> None:
        """Raise :meth:`_gone`'s error, if any, having let go of our duplicates of the
        channel socket (they must not keep its port bound)."""
        gone = self._gone()
        if gone is not None:
            self._close_direct()
            self._reader._close_direct_recv()
            if self._reply_sock is not None:
                self._reply_sock.close()
                self._reply_sock = None
            raise gone

    @property
    def closed(self) -> bool:
        """True once closed: by this handle, or by the pool from elsewhere (it closed the
        channel or stopped), or when the pool's supervisor is gone.  Sends and receives
        on a closed channel raise (ValueError here; ChannelClosedError or
        PoolNotRunningError when it was closed from elsewhere)."""
        return self._seg.closed or self._gone() is not None

    # ------------------------------------------------------------ direct sends

    @property
    def direct_send(self) -> bool:
        """Whether ``send(data)`` may send an immediate datagram itself (default True).

        With nothing queued and the worker parked, an immediate ``send`` from this
        handle goes out on the channel socket at once (a duplicate of the supervisor's,
        taken with ``pidfd_getfd``) instead of waking the worker to send it: on a
        2-vCPU VM that takes ~10 µs off a loopback round trip (``rtudp bench
        latency``).  Order, counters and back-pressure stay as through the worker: it
        happens only when everything queued before has left, a handle in a burst
        (an idle worker found again within DIRECT_QUIET_NS) queues instead, and any
        refusal by the kernel queues the datagram.  Timed sends always go through the
        worker.  Setting False keeps every send on the worker;
        :attr:`direct_send_off` says why it is off when it cannot be on.
        """
        return self.direct_send_off is None

    @property
    def direct_send_off(self) -> str | None:
        """Why this handle does not send immediates on the socket itself (None: it does)."""
        if self._direct_off is None and not self._direct_on():
            return ("the pool closed the channel" if self._seg.block.direct.state ==
                    lib.RTUDP_DIRECT_REVOKED else "its worker cannot key TX stamps per packet")
        return self._direct_off

    def _check_switch(self, what: str, on: object) -> None:
        """A direct_send / direct_recv / receives value: a bool, on a channel still open."""
        if not isinstance(on, bool):
            raise TypeError(f"{what} must be True or False, not {on!r}")
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")

    @direct_send.setter
    def direct_send(self, on: bool) -> None:
        self._check_switch("direct_send", on)
        self._close_direct()
        self._direct_off = self._open_direct() if on else "turned off (direct_send = False)"

    def _open_direct(self) -> str | None:
        """Turn direct sends on: None, or why they cannot be."""
        if not self._can_send:
            return "the channel is receive-only"
        if type(self).send is not ChannelBase.send:
            return f"{type(self).__name__} sends through its own protocol"
        cfg = self._seg.config()
        if cfg["remote"] is None or cfg["socket_fd"] < 0:
            return "the channel has no fixed remote" if cfg["remote"] is None else \
                "the supervisor published no socket"
        state = self._seg.block.direct.state
        if state == lib.RTUDP_DIRECT_NEVER:
            return ("its worker cannot key TX stamps per packet (SCM_TS_OPT_ID, Linux >= "
                    "6.13), which a send of ours must not shift")
        if state == lib.RTUDP_DIRECT_REVOKED:
            return "the pool closed the channel"
        block = self._seg.block
        line = int(ffi.cast("uintptr_t", ffi.addressof(block, "direct")))
        return self._configure_direct(self._control.supervisor_pid, cfg["socket_fd"],
                                      int(block.local.family), int(block.local.port),
                                      line, DIRECT_QUIET_NS)

    # ------------------------------------------------------------ direct receive

    @property
    def direct_recv(self) -> bool:
        """Whether a wait in ``recv()`` may read the channel socket itself (default True).

        A reader that finds the RX ring empty waits on its own duplicate of the channel
        socket (taken with ``pidfd_getfd``, as for :attr:`direct_send`) and publishes
        what comes into the ring as the worker would: one wake-up, its own, where the
        worker's path has two.  Every attached reader still gets every datagram, in
        order, with its kernel RX stamp, counted in ``stats()`` (``rx_direct`` says how
        many a reader read itself).  The reader keeps the socket between calls for a
        short lease, so the reply to its next send comes to it too; the worker reads
        again when the lease passes, and whenever a tap, an impairment of received
        datagrams or an event-loop reader needs it (docs/direct-receive.md).  Setting
        False leaves every receive to the worker; :attr:`direct_recv_off` says why it
        is off when it cannot be on.
        """
        return self.direct_recv_off is None

    @property
    def direct_recv_off(self) -> str | None:
        """Why waits in ``recv()`` do not read the channel socket themselves (None: they do)."""
        if self._direct_recv_off is None and not self._reader._direct_recv_on():
            return "the pool closed the channel"
        return self._direct_recv_off

    @direct_recv.setter
    def direct_recv(self, on: bool) -> None:
        self._check_switch("direct_recv", on)
        self._reader._close_direct_recv()
        self._direct_recv_off = (self._open_direct_recv() if on
                                 else "turned off (direct_recv = False)")

    def _open_direct_recv(self) -> str | None:
        """Turn direct receive on: None, or why it cannot be."""
        if self.direction == lib.RTUDP_DIR_SEND:
            return "the channel is send-only"
        if not self._rx_open:
            return _NOT_RECEIVING
        if self.KIND != lib.RTUDP_KIND_UDP or type(self)._next is not Channel._next:
            return f"{type(self).__name__} receives through its kind's own work in the worker"
        cfg = self._seg.config()
        if cfg["socket_fd"] < 0:
            return "the supervisor published no socket"
        block = self._seg.block
        address = int(ffi.cast("uintptr_t", block))
        return self._reader._configure_direct_recv(self._control.supervisor_pid,
                                                   cfg["socket_fd"], int(block.local.family),
                                                   int(block.local.port), address,
                                                   direct_recv_spin_ns())

    @property
    def horizon(self) -> Horizon:
        """The deadlines sends on this channel take: ``time.monotonic_ns()`` values at
        most ``horizon.ns`` ahead of now (the pool's ``horizon_s``); a later one is
        refused with a ValueError naming it."""
        return self._horizon

    # ------------------------------------------------------------ attach

    @classmethod
    def attach(cls, name: str, pool: str | None = None) -> "Channel":
        """Map channel ``name`` of ``pool`` (None: ``$RTUDP_POOL`` or ``"default"``).

        PoolNotRunningError if the pool does not run, ChannelNotFoundError if it has no
        such channel, BadSegmentError if a segment fails validation.
        """
        validate_name(name)
        control = ControlSegment.open(pool)
        try:
            if not control.supervisor_alive():
                raise PoolNotRunningError(
                    f"pool {control.pool!r}: its supervisor (pid {control.supervisor_pid}) "
                    f"is gone or has not written its heartbeat for "
                    f"{control.heartbeat_age_ns() / 1e9:.1f} s")
            if control.find_channel(name) is None:
                raise ChannelNotFoundError(
                    f"no channel {name!r} in pool {control.pool!r} (open channels: "
                    f"{control.channel_names() or 'none'})")
        except BaseException:
            control.close()
            raise
        return cls.from_control(control, name)

    @classmethod
    def from_control(cls, control: ControlSegment, name: str,
                     on_close: Callable[[str], None] | None = None) -> "Channel":
        """Map channel ``name``'s segment of the pool ``control`` belongs to; the handle
        owns ``control`` (everything opened is closed again if this fails)."""
        return open_handle(cls, control, name, on_close)

    # ------------------------------------------------------------ sending

    def _needs_remote(self) -> bool:
        """A plain udp channel without a remote: send() has nowhere to send (a kind
        with targets of its own, rtp's set_target, decides itself)."""
        return self.remote is None and self.KIND == lib.RTUDP_KIND_UDP

    def _check_send(self) -> None:
        """Raise if this handle can send nothing at all (closed, gone, receive-only)."""
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")
        self._raise_if_gone()
        if self.direction == lib.RTUDP_DIR_RECV:
            raise ValueError(f"channel {self.name!r} is receive-only (direction=1): "
                             f"it cannot send")

    def _check_destination(self) -> None:
        """Raise if send() has nowhere to send (checked after the arguments)."""
        if self._needs_remote():
            raise ValueError(f"channel {self.name!r} has no remote address, so send() has "
                             f"nowhere to send: answer a packet with send_to(data, "
                             f"pkt.source), or open the channel with remote=(host, port)")

    def _full(self, size: int, sent: int = 0) -> BackPressureError:
        gone = self._gone()
        if gone is not None:
            return gone  # type: ignore[return-value]
        return BackPressureError(
            f"channel {self.name!r}: TX ring full ({self._tx.capacity} bytes), a "
            f"{size}-byte datagram was not queued; the worker is behind or the deadlines "
            f"are far ahead", sent)

    # send(data, at_ns=None) is ChannelBase's (C): queue one datagram, to leave at
    # at_ns (CLOCK_MONOTONIC ns; None/0 = now; at most the horizon ahead), or send an
    # immediate one on the socket at once (direct_send); whatever it does not do itself
    # it hands to _send_checked.

    def _send_checked(self, data: bytes, at_ns: int | None = None) -> None:
        """send() in Python: every check, each failure its own error (BackPressureError
        if the TX ring is full, ValueError if ``data`` is larger than max_datagram or
        ``at_ns`` beyond the horizon)."""
        try:
            if not self._can_send or self._needs_remote() or len(data) > self.max_datagram:
                self._send_error(data, at_ns)
            self._check_send()  # closed here (its block unmapped), or from elsewhere
            ok = self._try_put(data, self._horizon.check(at_ns))
        except (TypeError, ValueError, OverflowError):
            self._check_send()  # a closed channel says so before any other error
            payload_size(data)  # data that is not bytes says so plainly
            raise
        if not ok:
            raise self._full(len(data))

    def _send_error(self, data: Any, at_ns: object) -> None:
        """Raise the error a send of ``data`` at ``at_ns`` deserves."""
        self._check_send()
        self._horizon.check(at_ns)
        size = payload_size(data)
        if size > self.max_datagram:
            raise ValueError(f"datagram of {size} bytes is larger than channel {self.name!r} "
                             f"takes: max_datagram of {self.max_datagram}")
        self._check_destination()

    def send_to(self, data: bytes, addr: tuple[str, int]) -> None:
        """Send ``data`` now to ``addr`` (host, port), from the channel's own socket and
        address: the answer to a received packet is ``ch.send_to(reply, pkt.source)``.

        It leaves at once on this process's duplicate of the channel socket (as a
        direct send does: counted in ``tx_packets``, ``tx_direct``; no TX timestamp),
        ahead of anything still queued in the TX ring.  Works with or without a
        ``remote``.  ValueError/TypeError name a bad ``data`` or ``addr``;
        ChannelClosedError / PoolNotRunningError when the channel can send nothing more.
        """
        self._check_send()
        size = payload_size(data)
        if size > self.max_datagram:
            raise ValueError(f"datagram of {size} bytes is larger than channel {self.name!r} "
                             f"takes: max_datagram of {self.max_datagram}")
        if (not isinstance(addr, tuple) or len(addr) not in (2, 4)
                or not isinstance(addr[0], str) or isinstance(addr[1], bool)
                or not isinstance(addr[1], int) or not 0 < addr[1] < 65536):
            raise ValueError(f"send_to: addr must be a (host, port) tuple with a port in "
                             f"1..65535, got {addr!r}")
        sock = self._reply_socket()
        try:
            sent = sock.sendto(data, addr)
        except socket.gaierror as exc:
            raise ValueError(f"send_to: address {addr!r} cannot be resolved: "
                             f"{exc.strerror}") from None
        except OSError as exc:
            raise OSError(exc.errno, f"send_to {addr!r} on channel {self.name!r}: "
                                     f"{exc.strerror}") from None
        count_direct_send(self, self._seg.block, sent)

    def _reply_socket(self) -> socket.socket:
        """send_to's duplicate of the channel socket (pidfd_getfd), taken once."""
        if self._reply_sock is None:
            cfg = self._seg.config()
            self._reply_sock = duplicate_socket(self._control.supervisor_pid,
                                                cfg["socket_fd"], self.name)
        return self._reply_sock

    # send_many(items, at_ns=None) is ChannelBase's (C): a list or tuple of bytes is
    # queued in one C call; the rest goes to _send_many_checked.

    def _send_many_checked(self, items: Sequence[bytes], at_ns: int | None = None,
                           done: int = 0) -> int:
        """send_many() in Python, from item ``done`` on (those before it the C path
        queued): every check, each failure its own error; returns how many of ``items``
        went in (``done`` included, as ``BackPressureError.sent`` counts them)."""
        self._check_send()
        at = self._horizon.check(at_ns)
        if not isinstance(items, (list, tuple)):
            items = list(items)
        items = self._as_datagrams(items[done:])
        try:
            return done + self._put_checked_many(items, at)
        except BackPressureError as exc:
            exc.sent += done
            raise

    def _as_datagrams(self, items: Sequence[bytes]) -> Sequence[bytes]:
        """What send_many queues for ``items``: the items themselves (a kind that
        frames its payloads says otherwise)."""
        return items

    def _put_checked_many(self, items: Sequence[bytes], at: int) -> int:
        """Queue ``items`` (a list or tuple) with deadline ``at`` after checking their
        sizes and the destination; how many went in."""
        if items:
            big = max(map(len, items))
            if big > self.max_datagram:
                raise ValueError(f"a datagram of {big} bytes in send_many is larger than "
                                 f"channel {self.name!r} takes: max_datagram of "
                                 f"{self.max_datagram}")
        self._check_destination()
        try:
            n = self._tx.put_many(list(items), at, 0, 0)
        except BackPressureError as exc:
            raise self._full(len(items[exc.sent]), exc.sent) from None
        return n

    # ------------------------------------------------------------ receiving

    def _check_recv(self, timeout: object) -> None:
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")
        if self.direction == lib.RTUDP_DIR_SEND:
            raise ValueError(f"channel {self.name!r} is send-only (direction=0): "
                             f"it cannot receive")
        if not self._rx_open:
            raise ValueError(f"channel {self.name!r}: {_NOT_RECEIVING}")
        _check_timeout(timeout)

    def _try_recv(self) -> Packet | None:
        return self._reader._recv_packet(0, 0, Packet)

    def _next(self, timeout: float | None) -> Packet | None:
        """The next packet within ``timeout`` s (checked), or None: read, parse and wait
        are one C call (csrc/pyfast/cursor.c), the GIL released while it waits."""
        return self._reader._recv_packet(_deadline_ns(timeout), self._reader.spin_ns, Packet)

    # recv(timeout=None) is ChannelBase's (C): the next datagram, waiting up to timeout
    # s (None = forever, 0 = poll), TimeoutError if none arrives in time; the wait runs
    # without the GIL.  What it does not do itself (a handle whose _next is its own, a
    # timeout to check, a closed channel) it hands to _recv_checked.

    def _recv_checked(self, timeout: float | None = None) -> Packet:
        """recv() in Python: every check, each failure its own error."""
        # the full checks only when the quick ones fail: they cost more than the read
        if not self._rx_open or not _plainly_seconds(timeout):
            self._check_recv(timeout)  # raises, unless timeout is a float subclass
        pkt = self._next(timeout)
        if pkt is None:
            raise TimeoutError(f"no datagram on channel {self.name!r} within {timeout} s")
        return pkt

    def recv_many(self, max_n: int = 64, timeout: float | None = None) -> list[Packet]:
        """Up to ``max_n`` datagrams: what is there, after waiting up to ``timeout`` s for
        the first one.  [] if none arrived in time (never raises TimeoutError)."""
        if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
            raise ValueError(f"max_n must be an int >= 1, got {max_n!r}")
        if not self._rx_open or not _plainly_seconds(timeout):
            self._check_recv(timeout)  # raises, unless timeout is a float subclass
        return self._recv_list(max_n, timeout)

    def _recv_list(self, max_n: int, timeout: float | None) -> list[Packet]:
        """recv_many's read (checked arguments): one C call (csrc/pyfast/cursor.c)."""
        return self._reader._recv_many(_deadline_ns(timeout), self._reader.spin_ns, max_n,
                                       Packet)

    # ------------------------------------------------------------ numpy batches

    def recv_batch(self, max_n: int = 1024, timeout: float | None = None) -> PacketBatch:
        """Up to ``max_n`` datagrams as a :class:`~rtudp.batch.PacketBatch` of numpy
        arrays, after waiting up to ``timeout`` s (None = forever, 0 = poll) for the
        first; an empty batch if none came in time.  One C call fills the arrays: no
        Python object per packet.  Needs numpy (``pip install 'rtudp[numpy]'``).
        A kind whose RX records are not datagrams raises TypeError naming it."""
        if type(self)._next is not Channel._next:
            raise TypeError(f"{type(self).__name__} (channel {self.name!r}) delivers its own "
                            f"records, not datagrams: recv_batch is for channels whose RX "
                            f"ring holds datagrams (udp, rtp)")
        return self._recv_records(max_n, timeout, self.max_datagram)

    def _recv_records(self, max_n: int, timeout: float | None, record_bytes: int) -> PacketBatch:
        """recv_batch's read: up to max_n RX records of at most ``record_bytes`` after
        their meta, as columns (checked arguments, the wait as recv_batch says)."""
        if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
            raise ValueError(f"max_n must be an int >= 1, got {max_n!r}")
        self._check_recv(timeout)
        max_n = min(max_n, MAX_BATCH)
        if self._columns is None:
            self._columns = ColumnCache()
        cols = self._columns.get(max_n, record_bytes)
        if timeout is None:
            deadline = FOREVER
        elif timeout == 0:
            deadline = 0
        else:
            deadline = monotonic_ns() + int(timeout * 1e9)
        n = self._reader._recv_batch(deadline, self._reader.spin_ns, max_n, cols)
        return PacketBatch(cols, n)

    def send_batch(self, buffer: Any, lengths: Any = None, at_ns: Any = None) -> int:
        """Queue the datagrams of ``buffer`` (bytes-like or a numpy array, payloads back to
        back), ``lengths[i]`` bytes each (None: a 2-D buffer, one row a datagram), due at
        ``at_ns``: None (now), one int, or an array with a deadline per datagram
        (CLOCK_MONOTONIC ns, each at most the horizon ahead).  Returns how many were
        queued; BackPressureError (``.sent`` = how many went in) if the TX ring fills up.
        Needs numpy."""
        self._check_send()
        columns = batch_arrays(buffer, lengths, at_ns, self._horizon)
        self._check_destination()
        return self._put_columns(*columns)

    def _put_columns(self, data: Any, lens: Any, at: int, each: Any) -> int:
        """send_batch's queueing of checked columns (batch_arrays')."""
        n = self._tx._put_batch(data, lens, at, each, self.max_datagram)
        if n < len(lens):
            raise self._full(int(lens[n]), n)
        return n

    # ------------------------------------------------------------ observation

    def stats(self) -> dict[str, Any]:
        """The worker's counters for this channel, send lateness and receive delay
        percentiles (ns, None when nothing was measured), the channel kind's own
        counters, the rings' counters (``tx_``/``rx_`` prefixed), and this reader's
        losses (``rx_lost``; ``rx_records_lost`` sums every reader's).

        Sends that left more than 100 µs after their deadline (``tx_late_left``) are
        split by whose lateness it is: ``tx_late_arrival``, the submitter's (the record
        came into the ring with its deadline past or nearer than the worker's spin
        margin: the program queued it too late), and ``tx_late_sent``, the worker's (it
        came in time); each with ``_ns`` (the lateness summed) and ``_max_ns`` (the
        latest)."""
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")
        out: dict[str, Any] = self._seg.stats()
        out["readers_attached"] = sum(1 for p in self._seg.readers() if pid_alive(p))
        out["rx_lost"] = int(self._reader.lost)
        out["rx_lapped"] = int(self._reader.lapped)
        tx = self._tx.stats()
        out["tx_queued_bytes"] = tx["pending_bytes"]
        # the TX ring's counters: tx_full_events, tx_unblocked_claims (dead producers), ...
        out.update(stat_keys(COUNTER_GROUPS["tx_ring"], tx, "tx_"))
        # the RX ring's, as rtstat's totals: rx_records_lost (all readers' losses), ...
        out.update(stat_keys(COUNTER_GROUPS["rx_ring"], self._seg.rx.stats(), "rx_"))
        # restarts of the worker serving this channel (the supervisor counts them)
        out["worker_restarts"] = int(self._control.worker(self.worker).restarts)
        return out

    def lateness(self) -> Any:
        """A snapshot :class:`~rtudp.shmring.hist.Histogram` of send lateness."""
        return self._seg.tx_lateness()

    def rx_delay(self) -> Any:
        """A snapshot :class:`~rtudp.shmring.hist.Histogram` of receive delay."""
        return self._seg.rx_delay()

    # ------------------------------------------------------------ placement

    @property
    def worker_cpu(self) -> int:
        """The CPU the worker serving this channel is pinned to."""
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")
        return int(self._control.worker(self.worker).cpu)

    def pin_to_worker(self) -> int:
        """Run the calling thread only on this channel's worker CPU; returns that CPU.

        For a thread that waits on this channel and answers at once (a ping-pong, a
        request/reply loop): on the worker's CPU the worker hands it each packet, and
        takes each queued send from it, without waking another CPU.  Measured with
        ``rtudp bench latency`` on a 2-vCPU VM with every send queued: round trip p50
        27 µs unpinned, 21 µs with both ends pinned; with direct sends (the default,
        see :attr:`direct_send`) 15 µs unpinned and 16 µs pinned.  The worker is
        SCHED_FIFO, so it runs first whenever it works or spins before a deadline: a thread with much work of its own, or a channel with
        dense timed sends, is better left where the kernel puts it.  Undo it with
        ``os.sched_setaffinity(0, cpus)``.
        """
        cpu = self.worker_cpu
        try:
            os.sched_setaffinity(0, {cpu})  # 0: the calling thread only
        except OSError as exc:
            raise OSError(exc.errno, f"cannot pin this thread to CPU {cpu}, where channel "
                                     f"{self.name!r} has its worker: {exc.strerror}") from None
        return cpu

    def close(self) -> None:
        """Unmap the channel (idempotent).  The channel returned by ``Pool.open_channel``
        also closes it in the pool (other processes' handles then get nothing more)."""
        if self._seg.closed:
            return
        self._watch_liveness(False)  # before the block and the pool's segment go
        if self._reply_sock is not None:
            self._reply_sock.close()  # it must not keep the port bound
            self._reply_sock = None
        self._stop_receiving()
        self._close_direct()  # our duplicates must not keep the port bound
        self._direct_off = self._direct_recv_off = "the channel is closed"
        # send() takes the Python path from now on (it says "closed"), as recv() does
        self._fast_send(None, self.max_datagram, self._horizon.ns)
        self._release()

    def __repr__(self) -> str:
        state = "closed" if self.closed else _DIRECTIONS.get(self.direction, "?")
        return (f"<Channel {self.name!r} pool={self.pool!r} local={self.local} "
                f"remote={self.remote} {state}>")


def attach(name: str, pool: str | None = None) -> Channel:
    """Attach to channel ``name`` of ``pool`` from any process (see :meth:`Channel.attach`)."""
    return Channel.attach(name, pool)


__all__ = ["Channel", "Packet", "attach"]
