"""The udt channel handle: one UDP port of UDT sockets, as a client sees it.

``pool.open_channel(name, kind="udt", max_datagram=2048, options={...})`` returns a
:class:`UdtChannel`.  The worker runs the protocol; this handle claims sockets in the
kind area, queues requests (listen, connect, close, "data queued") on the channel's
TX ring, moves data through the sockets' buffers in the area (in C, without the
GIL) and waits for the worker's doorbell.  :mod:`rtudp.udt.udt4` and
:mod:`rtudp.udt.pyudt` are the user-facing APIs on top of it.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from rtudp.shmring._native import ffi, lib
from rtudp.shmring._ringbase import deadline_ns as deadline_of
from rtudp.shmring.channel import fill_sockaddr, sockaddr_to_tuple
from rtudp.shmring.errors import BadSegmentError, RtUdpError

from ..handles import KindHandle

REQ_KICK = lib.RTUDP_UDT_REQ_KICK
REQ_LISTEN = lib.RTUDP_UDT_REQ_LISTEN
REQ_CONNECT = lib.RTUDP_UDT_REQ_CONNECT
REQ_CLOSE = lib.RTUDP_UDT_REQ_CLOSE
REQ_RECV_FREED = lib.RTUDP_UDT_REQ_RECV_FREED
#: a request that finds the TX ring full waits at most this long for room
REQUEST_TIMEOUT_S = 5.0
WAIT_SLICE_NS = 200_000_000  # long waits in slices: Ctrl-C is seen between them
#: a socket's wait outside the main thread, which sees no signals (Python runs their
#: handlers in the main thread), in slices this long, only as a safety net: close()
#: wakes such waits itself, and a thousand idle threads waking five times a second
#: would keep the GIL busy
THREAD_SLICE_NS = 5_000_000_000


class ChannelClosingError(RtUdpError):
    """The udt channel was closed (``udt4.cleanup()``, the pool stopping) while a call
    was using it; the call stopped before touching the unmapped segment."""


class UdtChannel(KindHandle):
    """One process's handle on a udt channel (a UDP port of UDT sockets)."""

    KIND = lib.RTUDP_KIND_UDT
    HANDLE_NAME = "rtudp.udt.UdtChannel"
    NO_BATCH = ("it carries UDT sockets' byte streams and messages (rtudp.udt), not "
                "datagrams")

    def _open_views(self, cfg: dict[str, Any]) -> None:
        seg = self._seg
        check = ffi.new("struct rtudp_check *")
        if lib.rtudp_udt_check(ffi.cast("struct rtudp_udt_area *", seg.area), seg.area_bytes,
                               check) != lib.RTUDP_OK:
            raise BadSegmentError(f"channel {self.name!r}: {ffi.string(check.msg).decode()}")
        self.area: Any = ffi.cast("struct rtudp_udt_area *", seg.area)
        c = self.area.config
        self.max_socks = int(c.max_socks)
        self.buf_pkts = int(c.buf_pkts)
        self.local: tuple[str, int] | None = cfg["local"]
        self._tx = seg.tx
        # each request also marks the channel in the worker's ready set and rings its
        # bell (its TX thread parks on it)
        self._control.wire_producer(self._tx, seg.block, cfg["table_slot"])
        self._req = ffi.new("struct rtudp_udt_req *")
        self._req_buf = ffi.buffer(self._req)
        self._req_lock = threading.Lock()
        # calls in progress (using()): close() waits for them to leave before it
        # unmaps, or a thread blocked in recv would read unmapped memory
        self._users = 0
        self._closing = False
        self._users_cv = threading.Condition()
        self._mine = threading.local()  # this thread's using() depth
        self._cancel = ffi.new("uint32_t *")  # set by close(): this process's waits end

    @contextmanager
    def using(self) -> Iterator[None]:
        """Keep the segment mapped for the block: close() waits for it to end (a wait
        in it ends within WAIT_SLICE_NS).  ChannelClosingError once closing began."""
        with self._users_cv:
            if self._closing or self._seg.closed:
                raise ChannelClosingError(f"udt channel {self.name!r} is closed")
            self._users += 1
        self._mine.depth = getattr(self._mine, "depth", 0) + 1
        try:
            yield
        finally:
            self._mine.depth -= 1
            with self._users_cv:
                self._users -= 1
                if self._closing:  # only close() waits, and it set this first
                    self._users_cv.notify_all()

    # ------------------------------------------------------------ sockets

    def sock(self, i: int) -> Any:
        """Socket ``i``'s shared lines (``struct rtudp_udt_sock *``)."""
        self._check_open()
        s = lib.rtudp_udt_sock_at(self.area, i)
        if s == ffi.NULL:
            raise ValueError(f"udt channel {self.name!r} has no socket {i}")
        return s

    def claim(self, sock_type: int) -> int:
        """A free socket of ``sock_type`` (STREAM 1 / DGRAM 2): its index."""
        self._check_open()
        i = int(lib.rtudp_udt_claim(self.area, sock_type))
        if i < 0:
            raise RtUdpError(f"udt channel {self.name!r}: all {self.max_socks} sockets in use "
                             f"(option max_sockets)")
        return i

    def set_peer(self, i: int, host: str, port: int, family: int) -> None:
        """Where socket ``i`` connects to."""
        fill_sockaddr(self.sock(i).cli.peer, family, host, port)

    def peer(self, i: int) -> tuple[str, int] | None:
        """The address socket ``i`` is connected to."""
        return sockaddr_to_tuple(self.sock(i).wrk.peer)

    def request(self, op: int, i: int) -> None:
        """Queue request ``op`` (REQ_*) for socket ``i`` to the worker."""
        self._check_open()
        with self._req_lock:  # sockets of one channel are used from many threads
            self._req.op = op
            self._req.sock = i
            rec = bytes(self._req_buf)
        self._tx.put(rec, timeout=REQUEST_TIMEOUT_S)

    # ------------------------------------------------------------ waiting

    @property
    def events(self) -> int:
        """How often the worker rang the clients' bell (a socket moved)."""
        return int(self.area.events)

    def wait(self, seen: int, deadline_ns: int) -> int:
        """Wait (without the GIL) until :attr:`events` differs from ``seen`` or the
        deadline passes (at most a slice, so signals are seen); the events then."""
        self._check_open()
        step = min(deadline_ns, time.monotonic_ns() + WAIT_SLICE_NS)
        return int(lib.rtudp_udt_wait(self.area, seen, step))

    def sock_events(self, i: int) -> int:
        """How often the worker moved socket ``i`` (its state, buffers or accept
        queue)."""
        return int(self.sock(i).wrk.events)

    def sock_wait(self, i: int, seen: int, deadline_ns: int) -> int:
        """:meth:`wait` for socket ``i`` alone: only its moves wake the caller, so
        threads blocked on other sockets of the channel sleep on."""
        self._check_open()
        main = threading.current_thread() is threading.main_thread()
        step = min(deadline_ns, time.monotonic_ns() + (WAIT_SLICE_NS if main else THREAD_SLICE_NS))
        return int(lib.rtudp_udt_sock_wait(self.area, i, seen, step, self._cancel))

    def wait_for(self, ready: Callable[[], Any], timeout: float | None,
                 sock: int | None = None) -> Any:
        """``ready()``'s first true value, waiting for the worker between tries (for a
        move of socket ``sock`` if given, else of any socket); None once ``timeout``
        s passed without one."""
        deadline = deadline_of(timeout)
        while True:
            if self._closing:
                raise ChannelClosingError(f"udt channel {self.name!r} was closed meanwhile")
            seen = self.events if sock is None else self.sock_events(sock)
            got = ready()
            if got:
                return got
            if time.monotonic_ns() >= deadline:
                return None
            if sock is None:
                self.wait(seen, deadline)
            else:
                self.sock_wait(sock, seen, deadline)

    # ------------------------------------------------------------ statistics and closing

    def stats(self) -> dict[str, Any]:
        """The kind's counters (``udt_*``) and the channel's own."""
        self._check_open()
        return self._seg.stats()

    def close(self) -> None:
        """Unmap the channel once the calls using it (other threads') have left; they
        stop with ChannelClosingError at their next step."""
        with self._users_cv:
            self._closing = True
            if self.area is not None and not self._seg.closed:
                lib.rtudp_udt_cancel_waits(self.area, self._cancel)  # blocked calls end now
            mine = getattr(self._mine, "depth", 0)
            self._users_cv.wait_for(lambda: self._users <= mine)
        super().close()

    def _drop_views(self) -> None:
        self.area = None
