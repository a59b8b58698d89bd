"""UDT sockets over udt channels: what :mod:`rtudp.udt.udt4` and :mod:`rtudp.udt.pyudt`
share.

A :class:`Ports` opens one udt channel (a UDP port, served by a worker of the pool)
for each address a socket binds to, or a fresh one for a socket that connects
unbound, and keeps it open until :meth:`Ports.close`: connections linger there after
a socket is closed, as in libudt.  A :class:`Socket` is one UDT socket: a slot of its
channel's kind area.  Blocking calls wait on the channel's doorbell in C, without the
GIL; data moves between ``bytes`` and the socket's buffers in one C call each.
"""
from __future__ import annotations

import functools
import itertools
import os
import socket
import threading
import time
from contextvars import ContextVar
from typing import Any, Callable, TypeVar

from rtudp.handles import handle_for
from rtudp.pool_client import PoolClient
from rtudp.shmring.control import ControlSegment
from rtudp.shmring.errors import AddressInUseError, BadSegmentError, ChannelNotFoundError
from rtudp.shmring._native import ffi, lib
from rtudp.shmring.impairment import Impairment

from .channel import (REQ_CLOSE, REQ_CONNECT, REQ_KICK, REQ_LISTEN, REQ_RECV_FREED,
                      ChannelClosingError, UdtChannel)
from .constants import (BROKEN, CLOSED, CLOSING, CONNECTED, CONNECTING, EASYNCRCV, EASYNCSND,
                        EBOUNDSOCK, ECONNLOST, ECONNREJ, ECONNSOCK, EDGRAMILL, EINVOP, EINVPARAM,
                        EINVSOCK, ELARGEMSG, ENOCONN, ENOLISTEN, ENOSERVER, ERDVNOSERV,
                        ESTREAMILL, ETIMEOUT, INIT, LISTENING, NONEXIST, OPENED, UDT_CC, UDT_FC,
                        UDT_EVENT, UDT_LINGER,
                        UDT_MAXBW, UDT_MAXMSG, UDT_MSGTTL, UDT_MSS, UDT_RCVBUF, UDT_RCVDATA,
                        UDT_RCVSYN, UDT_RCVTIMEO, UDT_RENDEZVOUS, UDT_REUSEADDR, UDT_SNDBUF,
                        UDT_SNDDATA, UDT_SNDSYN, UDT_SNDTIMEO, UDT_STATE, UDP_RCVBUF, UDP_SNDBUF,
                        UDTException)

SOCK_STREAM = socket.SOCK_STREAM
SOCK_DGRAM = socket.SOCK_DGRAM
_TYPES = {SOCK_STREAM: lib.RTUDP_UDT_STREAM, SOCK_DGRAM: lib.RTUDP_UDT_DGRAM}
#: each channel's datagrams: a UDT packet of MSS 1500 plus the worker's request header
MAX_DATAGRAM = 2048
#: TX ring records per channel: received packets wait there for the TX thread
CAPACITY = 4096
CHUNK = 1 << 20  # bytes one C call moves at most

#: True while an async wrapper (rtudp.udt.aio) calls a socket's operation: it never
#: waits (EASYNCSND/EASYNCRCV at once, connect returns once requested), whatever the
#: socket's UDT_SNDSYN/UDT_RCVSYN; per thread and per task, so other callers still block
NEVER_WAIT: ContextVar[bool] = ContextVar("rtudp_udt_never_wait", default=False)

#: libudt's defaults for the options a socket only stores
_DEFAULT_OPTS: dict[int, Any] = {
    UDT_MSS: 1500, UDT_SNDSYN: True, UDT_RCVSYN: True, UDT_CC: None, UDT_FC: 25600,
    UDT_LINGER: (1, 180), UDP_SNDBUF: 65536, UDP_RCVBUF: 8 * 1024 * 1024, UDT_MAXMSG: 0,
    UDT_MSGTTL: -1, UDT_RENDEZVOUS: False, UDT_SNDTIMEO: -1, UDT_RCVTIMEO: -1,
    UDT_REUSEADDR: True, UDT_MAXBW: -1,
}


class Ports:
    """The udt channels (UDP ports) of one program, on pool ``pool``: a name (None: the
    default pool, embedded unless one runs standalone) or a started ``rtudp.Pool``.
    ``impairment`` (an :class:`rtudp.Impairment` or a dict of its fields): what the
    worker does to each channel's datagrams (docs/impairment.md)."""

    def __init__(self, pool: Any = None, options: dict[str, Any] | None = None,
                 impairment: Any = None) -> None:
        self.pool = pool
        self.options = dict(options or {})
        self.impairment = Impairment.of(impairment)
        self._lock = threading.Lock()
        self._by_addr: dict[tuple[str, int], UdtChannel] = {}
        self._all: list[UdtChannel] = []
        self._names = itertools.count()
        self._host: Any = None

    def open(self, host: str, port: int) -> UdtChannel:
        """The channel bound to (host, port): this program's if it has one (port > 0),
        else a new one."""
        from rtudp.embedded import channel_host

        with self._lock:
            if port and (host, port) in self._by_addr:
                return self._by_addr[(host, port)]
            if self._host is None:
                has_open = hasattr(self.pool, "open_channel")
                self._host = self.pool if has_open else channel_host(self.pool)
            name = f"udt-{os.getpid()}-{next(self._names)}"
            try:
                ch = self._host.open_channel(name, local=(host, port), kind="udt",
                                             max_datagram=MAX_DATAGRAM, capacity=CAPACITY,
                                             options=self.options, impairment=self.impairment)
            except AddressInUseError:
                # another program of the pool has this port: its channel is shared
                # (its sockets, a listener to accept on), not ours to close
                found = self._attach(host, port) if port else None
                if found is None:
                    raise
                ch = found
            self._all.append(ch)
            assert ch.local is not None
            self._by_addr[(host, ch.local[1])] = ch
            return ch

    def _attach(self, host: str, port: int) -> UdtChannel | None:
        """The udt channel another program of this pool has on (host, port), mapped
        here (closing it here only unmaps it), or None."""
        pool = getattr(self._host, "pool", None) or getattr(self._host, "name", None)
        if not isinstance(pool, str):
            return None
        names = [n for n in self._host.channels() if n.startswith("udt-")]
        for name in names:
            try:
                ch = handle_for(ControlSegment.open(pool), name, None)
            except (ChannelNotFoundError, BadSegmentError, TypeError):
                continue  # closed meanwhile, or not a udt channel after all
            if isinstance(ch, UdtChannel) and ch.local is not None and ch.local[1] == port \
                    and ch.local[0] in (host, "0.0.0.0", "::"):
                return ch
            ch.close()
        return None

    def close(self) -> None:
        """Close every channel (their connections end)."""
        with self._lock:
            chans, self._all, self._by_addr = self._all, [], {}
            host, self._host = self._host, None
        for ch in chans:
            ch.close()
        if isinstance(host, PoolClient):
            host.close()


#: how long listen waits for the worker to take the listener (it takes ~1 ms)
LISTEN_WAIT_S = 5.0


F = TypeVar("F", bound=Callable[..., Any])


def _on_channel(method: F) -> F:
    """Run a socket's operation inside its channel's ``using()``: a cleanup() or pool
    stop in another thread waits for it to leave the segment, and it ends with
    ECONNLOST (the port was closed) instead of touching unmapped memory."""
    @functools.wraps(method)
    def guarded(self: "Socket", *args: Any, **kwargs: Any) -> Any:
        ch = self.ch
        if ch is None:
            return method(self, *args, **kwargs)
        try:
            with ch.using():
                return method(self, *args, **kwargs)
        except ChannelClosingError:
            raise UDTException(ECONNLOST, "the socket's UDP port was closed "
                                          "(udt4.cleanup() or the pool stopped)") from None
    return guarded  # type: ignore[return-value]


class Socket:
    """One UDT socket (UDT's UDTSOCKET)."""

    _ids = itertools.count(1)

    def __init__(self, ports: Ports, family: int, sock_type: int,
                 ch: UdtChannel | None = None, index: int = -1) -> None:
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise UDTException(EINVPARAM, f"address family {family!r}: AF_INET or AF_INET6")
        if sock_type not in _TYPES:
            raise UDTException(EINVPARAM, f"socket type {sock_type!r}: SOCK_STREAM or SOCK_DGRAM")
        self.ports = ports
        self.family = family
        self.type = sock_type
        self.id = next(Socket._ids)
        self.opts = dict(_DEFAULT_OPTS)
        self.ch = ch
        self.i = index
        #: this socket's own slot while it is a handle on another program's listener
        self._own_i: int | None = None
        self.closed = False
        #: held by the one thread that waits in accept: the others queue on it, so a
        #: connection wakes one waiter, not every thread blocked on the listener
        self._accept_turn = threading.Lock()
        self._perf_base: dict[str, float] = {}
        self._perf_at = time.monotonic()

    # ------------------------------------------------------------ plumbing

    def _s(self) -> Any:
        if self.closed:
            raise UDTException(EINVSOCK)
        if self.ch is None:
            raise UDTException(ENOCONN)
        return self.ch.sock(self.i)

    def state(self) -> int:
        """UDT's socket state (INIT .. NONEXIST)."""
        if self.closed:
            return CLOSED
        if self.ch is None or self.ch.closed:
            return INIT if self.ch is None else NONEXIST
        try:
            with self.ch.using():
                return int(self.ch.sock(self.i).wrk.state)
        except ChannelClosingError:
            return NONEXIST

    def _timeout(self, opt: int) -> float | None:
        ms = self.opts[opt]
        return None if ms is None or ms < 0 else ms / 1000.0

    def _blocks(self, blocking_opt: int) -> bool:
        return not NEVER_WAIT.get() and bool(self.opts[blocking_opt])

    def _wait(self, ready: Callable[[], Any], blocking_opt: int, timeout_opt: int,
              would_block: int, timeout: float | None = -1.0) -> Any:
        """ready()'s value; EASYNC* at once when the socket does not block, ETIMEOUT
        after the option's timeout (or ``timeout`` s when given: None forever)."""
        assert self.ch is not None
        if not self._blocks(blocking_opt):
            got = ready()
            if not got:
                raise UDTException(would_block)
            return got
        if timeout is not None and timeout < 0:
            timeout = self._timeout(timeout_opt)
        got = self.ch.wait_for(ready, timeout, self.i)
        if not got:
            raise UDTException(ETIMEOUT)
        return got

    # ------------------------------------------------------------ setup

    def bind(self, host: str, port: int) -> None:
        """Bind to (host, port) (port 0: any)."""
        if self.ch is not None:
            raise UDTException(EBOUNDSOCK)
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise UDTException(EINVPARAM, f"port must be an int in 0..65535, got {port!r}")
        try:
            ch = self.ports.open(host, port)
        except (OSError, ValueError) as e:
            raise UDTException(EINVPARAM, f"cannot bind {host}:{port}: {e}") from e
        self.i = ch.claim(_TYPES[self.type])
        self.ch = ch

    def _bind_any(self) -> None:
        if self.ch is None:
            self.bind("0.0.0.0" if self.family == socket.AF_INET else "::", 0)

    @_on_channel
    def listen(self, backlog: int) -> None:
        """Accept connections (at most ``backlog`` waiting)."""
        if self.request_listen(backlog):
            return
        assert self.ch is not None
        self.ch.wait_for(self.listen_done, LISTEN_WAIT_S, self.i)
        self.check_listening()

    @_on_channel
    def request_listen(self, backlog: int) -> bool:
        """:meth:`listen`'s first half, which never waits for the worker: the checks
        and the request.  True if the socket listens already."""
        if self.ch is None:
            raise UDTException(EINVOP, "listen on an unbound socket")
        if self.opts[UDT_RENDEZVOUS]:
            raise UDTException(ERDVNOSERV)
        st = self.state()
        if st == LISTENING:
            return True
        if st != OPENED:
            raise UDTException(ECONNSOCK)
        if not isinstance(backlog, int) or backlog < 1:
            raise UDTException(EINVPARAM, f"backlog {backlog!r}: at least 1")
        if self._share_listener():
            return True
        self._s().cli.backlog = min(backlog, lib.RTUDP_UDT_ACCEPT_Q)
        self.ch.request(REQ_LISTEN, self.i)
        return False

    def _share_listener(self) -> bool:
        """Another program listens on this socket's port (a shared channel): become a
        second handle on that listener, accepting from its queue (accept takes with a
        CAS, so each connection goes to one taker); this socket's own slot is freed at
        close.  True if it did."""
        assert self.ch is not None
        want = _TYPES[self.type]
        for j in range(self.ch.max_socks):
            if j == self.i:
                continue
            s = self.ch.sock(j)
            if int(s.wrk.state) == LISTENING and int(s.cli.sock_type) == want \
                    and int(s.cli.owner_pid) != os.getpid():
                self._own_i, self.i = self.i, j
                return True
        return False

    @_on_channel
    def listen_done(self) -> bool:
        """The worker took (or refused) the listen :meth:`request_listen` asked for."""
        return self.state() != OPENED

    @_on_channel
    def check_listening(self) -> None:
        """After :meth:`listen_done` (or its wait's end): EINVOP unless it listens."""
        if self.state() != LISTENING:
            raise UDTException(EINVOP, "the worker did not take the listener")

    @_on_channel
    def accept(self) -> tuple["Socket", tuple[str, int]]:
        """The next connection: (its socket, the peer's (host, port))."""
        if self.state() != LISTENING:
            raise UDTException(ENOLISTEN)
        s = self._s()
        ch = self.ch
        assert ch is not None
        blocks = self._blocks(UDT_RCVSYN)
        timeout = self._timeout(UDT_RCVTIMEO)
        deadline = None if timeout is None else time.monotonic() + timeout
        if blocks and not self._accept_turn.acquire(timeout=-1 if timeout is None else timeout):
            raise UDTException(ETIMEOUT)
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                self._wait(lambda: self.state() != LISTENING or s.wrk.acc_head != s.cli.acc_tail,
                           UDT_RCVSYN, UDT_RCVTIMEO, EASYNCRCV, left)
                if self.state() != LISTENING:
                    raise UDTException(ENOLISTEN)
                j = int(lib.rtudp_udt_accept_take(ch.area, self.i))
                if j != lib.RTUDP_EMPTY:
                    break
                # another process (or a non-blocking call here) took it: wait again
        finally:
            if blocks:
                self._accept_turn.release()
        if j < 0:
            raise UDTException(EINVSOCK, f"the listener's accept queue is corrupt ({j})")
        new = Socket(self.ports, self.family, self.type, ch, j)
        new.opts.update({k: self.opts[k] for k in (UDT_SNDSYN, UDT_RCVSYN, UDT_SNDTIMEO,
                                                   UDT_RCVTIMEO, UDT_LINGER)})
        peer = ch.peer(j)
        return new, peer if peer is not None else ("", 0)

    @_on_channel
    def connect(self, host: str, port: int) -> None:
        """Connect to (host, port): a listener, or in rendezvous mode the peer's port."""
        if self.state() not in (INIT, OPENED):
            raise UDTException(ECONNSOCK)
        self._bind_any()
        ch = self.ch
        assert ch is not None
        try:
            infos = socket.getaddrinfo(host, port, self.family, socket.SOCK_DGRAM)
        except socket.gaierror as e:
            raise UDTException(EINVPARAM, f"address {host}:{port}: {e}") from e
        addr = infos[0][4]
        ch.set_peer(self.i, addr[0], addr[1], self.family)
        s = self._s()
        s.cli.rendezvous = 1 if self.opts[UDT_RENDEZVOUS] else 0
        ch.request(REQ_CONNECT, self.i)
        if NEVER_WAIT.get() or not self.opts[UDT_SNDSYN]:
            return
        ch.wait_for(self.connect_done, None, self.i)
        self.check_connected()

    @_on_channel
    def connect_done(self) -> bool:
        """The connection requested by :meth:`connect` is made or failed."""
        return self.state() not in (OPENED, CONNECTING)

    @_on_channel
    def check_connected(self) -> None:
        """After :meth:`connect_done`: the peer's refusal or silence as UDTException."""
        if self.state() != CONNECTED:
            err = int(self._s().wrk.error)
            raise UDTException(err if err in (ECONNREJ, ENOSERVER) else ENOSERVER)

    @_on_channel
    def close(self) -> None:
        """Close: what is queued is still sent (linger), then the peer is told."""
        if self.closed:
            return
        self.closed = True
        if self.ch is not None and not self.ch.closed:
            # a shared listener stays its owner's: only this socket's own slot closes
            i = self._own_i if self._own_i is not None else self.i
            self.ch.sock(i).cli.close_req = 1
            self.ch.request(REQ_CLOSE, i)

    # ------------------------------------------------------------ data

    def _check_connected(self) -> Any:
        st = self.state()
        if st in (BROKEN, CLOSING) or (st == CLOSED and not self.closed):
            raise UDTException(ECONNLOST)
        if st != CONNECTED:
            raise UDTException(ENOCONN if not self.closed else EINVSOCK)
        return self._s()

    def _kick(self) -> None:
        assert self.ch is not None
        self.ch.request(REQ_KICK, self.i)

    def _put(self, put: Callable[[], int], would_block: int) -> int:
        s = self._check_connected()
        ch = self.ch
        assert ch is not None

        def ready() -> Any:
            if int(s.wrk.state) != CONNECTED:
                return -1
            n = put()
            return n if n != 0 else None

        n = self._wait(ready, UDT_SNDSYN, UDT_SNDTIMEO, would_block)
        if n == -1:
            raise UDTException(ECONNLOST)
        if n < 0:
            raise UDTException(EINVPARAM, f"the send buffer refused the data (code {n})")
        self._kick()
        return int(n)

    @_on_channel
    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue stream data: how many bytes (all that fit, at least one packet's worth
        when it blocks)."""
        if self.type != SOCK_STREAM:
            raise UDTException(EDGRAMILL)
        view = memoryview(data).cast("B")
        if not view.nbytes:
            return 0
        buf = ffi.from_buffer(view[:CHUNK])
        return self._put(lambda: int(lib.rtudp_udt_put_stream(self.ch.area, self.i, buf,
                                                              len(buf))), EASYNCSND)

    @_on_channel
    def sendmsg(self, data: bytes | bytearray | memoryview, ttl: int = -1,
                inorder: bool = False) -> int:
        """Queue one message whole: it is dropped if not delivered within ``ttl`` ms
        (-1: never); ``inorder`` as UDT's in-order flag.  Its length."""
        if self.type != SOCK_DGRAM:
            raise UDTException(ESTREAMILL)
        view = memoryview(data).cast("B")
        if not view.nbytes:
            return 0
        assert self.ch is not None
        s = self._check_connected()
        payload = int(s.wrk.payload) or lib.RTUDP_UDT_PAYLOAD_MAX
        if (view.nbytes + payload - 1) // payload > self.ch.buf_pkts:
            raise UDTException(ELARGEMSG, f"message of {view.nbytes} bytes: the send buffer holds "
                                          f"{self.ch.buf_pkts * payload}")
        buf = ffi.from_buffer(view)
        ttl_ms = 0 if ttl is None or ttl < 0 else max(1, int(ttl))
        return self._put(lambda: int(lib.rtudp_udt_put_msg(self.ch.area, self.i, buf, len(buf),
                                                           ttl_ms, 1 if inorder else 0,
                                                           time.monotonic_ns() // 1000)),
                         EASYNCSND)

    def _get(self, n: int, get: Callable[[Any, int], int | None]) -> bytes:
        """What get(buffer, cap) returns: a length, or None while nothing is there."""
        if not isinstance(n, int) or n <= 0:
            raise UDTException(EINVPARAM, f"length {n!r}: at least 1")
        st = self.state()
        if st not in (CONNECTED, BROKEN, CLOSING):
            raise UDTException(ENOCONN if st != CLOSED else EINVSOCK)
        s = self._s()
        ch = self.ch
        assert ch is not None
        out = ffi.new("uint8_t[]", min(n, 64 << 20))
        cap = len(out)

        def ready() -> Any:
            k = get(out, cap)
            if k is not None:
                return (k,)
            if int(s.wrk.state) == CONNECTED:
                return None
            # The worker completes what it received before it records the close, so a
            # message that completed between the first look and the state is read now.
            k = get(out, cap)
            return (k,) if k is not None else (-1,)  # -1: the peer closed and all is read

        (k,) = self._wait(ready, UDT_RCVSYN, UDT_RCVTIMEO, EASYNCRCV)
        if k < 0:
            raise UDTException(ECONNLOST)
        if int(s.wrk.flow_window) < ch.buf_pkts // 2 and int(s.wrk.state) == CONNECTED:
            ch.request(REQ_RECV_FREED, self.i)  # the sender may be waiting for room
        return bytes(ffi.buffer(out, min(k, cap)))

    @_on_channel
    def recv(self, n: int) -> bytes:
        """Up to ``n`` bytes of the stream (waits for at least one)."""
        if self.type != SOCK_STREAM:
            raise UDTException(EDGRAMILL)

        def get(out: Any, cap: int) -> int | None:
            k = int(lib.rtudp_udt_get_stream(self.ch.area, self.i, out, cap))
            return k if k > 0 else None

        return self._get(n, get)

    @_on_channel
    def recvmsg(self, n: int) -> bytes:
        """The next message (its first ``n`` bytes; the rest is discarded, as UDT does)."""
        if self.type != SOCK_DGRAM:
            raise UDTException(ESTREAMILL)

        def get(out: Any, cap: int) -> int | None:
            k = int(lib.rtudp_udt_get_msg(self.ch.area, self.i, out, cap))
            return k if k >= 0 else None

        return self._get(n, get)

    # ------------------------------------------------------------ state

    @_on_channel
    def readable(self) -> bool:
        """recv/recvmsg/accept would not wait (or would fail at once)."""
        st = self.state()
        if st == LISTENING:
            s = self._s()
            return int(s.wrk.acc_head) != int(s.cli.acc_tail)
        if st != CONNECTED:
            return True
        assert self.ch is not None
        return int(lib.rtudp_udt_rcv_pending(self.ch.area, self.i)) > 0

    @_on_channel
    def writable(self) -> bool:
        """send would not wait (or would fail at once)."""
        st = self.state()
        if st != CONNECTED:
            return st != LISTENING and st != CONNECTING
        assert self.ch is not None
        return int(lib.rtudp_udt_snd_pending(self.ch.area, self.i)) < self.ch.buf_pkts

    @_on_channel
    def getsockname(self) -> tuple[str, int]:
        """The local (host, port)."""
        if self.ch is None:
            raise UDTException(EINVOP, "the socket is not bound")
        assert self.ch.local is not None
        return self.ch.local

    @_on_channel
    def getpeername(self) -> tuple[str, int]:
        """The peer's (host, port)."""
        if self.state() not in (CONNECTED, BROKEN, CLOSING):
            raise UDTException(ENOCONN)
        assert self.ch is not None
        peer = self.ch.peer(self.i)
        if peer is None:
            raise UDTException(ENOCONN)
        return peer

    @_on_channel
    def getsockopt(self, opt: int) -> Any:
        """Option ``opt``'s value (UDT_*)."""
        if opt == UDT_STATE:
            return self.state()
        if opt == UDT_EVENT:
            return ((1 if self.readable() else 0) | (4 if self.writable() else 0) |
                    (8 if self.state() in (BROKEN, CLOSED, NONEXIST) else 0))
        if opt == UDT_SNDDATA:
            return 0 if self.ch is None else int(lib.rtudp_udt_snd_pending(self.ch.area, self.i))
        if opt == UDT_RCVDATA:
            return 0 if self.ch is None else int(lib.rtudp_udt_rcv_pending(self.ch.area, self.i))
        if opt in (UDT_SNDBUF, UDT_RCVBUF):
            if self.ch is None:
                return self.opts.get(opt, 0) or 0
            return self.ch.buf_pkts * lib.RTUDP_UDT_PAYLOAD_MAX
        if opt not in self.opts:
            raise UDTException(EINVPARAM, f"socket option {opt!r}")
        return self.opts[opt]

    @_on_channel
    def setsockopt(self, opt: int, value: Any) -> None:
        """Set option ``opt`` (UDT_*).  Buffer sizes, MSS and the congestion control are
        the channel's (``Ports`` options) and only stored here."""
        if opt in (UDT_STATE, UDT_EVENT, UDT_SNDDATA, UDT_RCVDATA):
            raise UDTException(EINVOP, f"socket option {opt} is read-only")
        if opt not in self.opts and opt not in (UDT_SNDBUF, UDT_RCVBUF):
            raise UDTException(EINVPARAM, f"socket option {opt!r}")
        if opt in (UDT_SNDSYN, UDT_RCVSYN, UDT_RENDEZVOUS, UDT_REUSEADDR):
            value = bool(value)
        elif opt in (UDT_SNDTIMEO, UDT_RCVTIMEO, UDT_MSGTTL):
            if isinstance(value, bool) or not isinstance(value, int):
                raise UDTException(EINVPARAM, f"option {opt}: milliseconds as an int, not {value!r}")
        elif opt == UDT_RENDEZVOUS and self.state() not in (INIT, OPENED):
            raise UDTException(ECONNSOCK)
        self.opts[opt] = value

    @_on_channel
    def perf(self, clear: bool) -> dict[str, float]:
        """The socket's performance counters (TRACEINFO's fields)."""
        s = self._s()
        w = s.wrk
        now = time.monotonic()
        total = {"pktSentTotal": int(w.pkt_sent), "pktRecvTotal": int(w.pkt_recv),
                 "pktSndLossTotal": int(w.pkt_snd_loss), "pktRcvLossTotal": int(w.pkt_rcv_loss),
                 "pktRetransTotal": int(w.pkt_retrans), "pktSentACKTotal": int(w.ack_sent),
                 "pktRecvACKTotal": int(w.ack_recv), "pktSentNAKTotal": int(w.nak_sent),
                 "pktRecvNAKTotal": int(w.nak_recv), "pktSndDropTotal": int(w.snd_drop),
                 "pktRcvDropTotal": int(w.rcv_drop), "byteSentTotal": int(w.bytes_sent),
                 "byteRecvTotal": int(w.bytes_recv)}
        base = self._perf_base
        local = {k.replace("Total", ""): v - base.get(k, 0) for k, v in total.items()}
        span = max(now - self._perf_at, 1e-9)
        out: dict[str, float] = {
            "msTimeStamp": max(0, time.monotonic_ns() // 1000 - int(w.start_us)) // 1000,
            **total, **local,
            "mbpsSendRate": local["byteSent"] * 8 / span / 1e6,
            "mbpsRecvRate": local["byteRecv"] * 8 / span / 1e6,
            "usPktSndPeriod": float(w.period_us), "pktFlowWindow": int(w.flow_window),
            "pktCongestionWindow": int(w.cwnd), "pktFlightSize": int(
                lib.rtudp_udt_snd_pending(self.ch.area, self.i)) if self.ch else 0,
            "msRTT": float(w.rtt_ms), "mbpsBandwidth": float(w.bandwidth_mbps),
            "byteAvailSndBuf": int(w.snd_avail_pkts) * lib.RTUDP_UDT_PAYLOAD_MAX,
            "byteAvailRcvBuf": int(w.flow_window) * lib.RTUDP_UDT_PAYLOAD_MAX,
        }
        if clear:
            self._perf_base = total
            self._perf_at = now
        return out
