"""PyUDT's ``udt4`` module on rtudp: Python 3, ``bytes`` everywhere, the protocol in
rtudp's workers.  ``import rtudp.udt.udt4 as udt4``::

    udt4.startup()
    s = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    udt4.connect(s, "127.0.0.1", 9000)
    udt4.send(s, b"hello", 5)
    udt4.close(s)
    udt4.cleanup()

Errors are :class:`UDTException` (a ``RuntimeError``) with args (code, message) and
UDT's codes.  Blocking calls wait in C without the GIL, for UDT_SNDTIMEO /
UDT_RCVTIMEO milliseconds (-1: forever).  ``startup(pool=None, **options)`` may name
the rtudp pool and the udt channels' options (:mod:`rtudp.workers.udt_kind`:
``buffer_packets``, ``congestion``, ``broken_timeout``, ...).
"""
from __future__ import annotations

import os
import select
import socket as _socket
import threading
import time
from typing import Any, BinaryIO, Iterable

from . import constants as _c
from .constants import *  # noqa: F401,F403  (UDT's constants are this module's)
from .constants import EFILE, EINVPARAM, EINVPOLLID, EINVSOCK, EINVWROFF, UDTException
from .core import CHUNK, Ports, Socket

_lock = threading.Lock()
_ports: Ports | None = None


def startup(pool: Any = None, impairment: Any = None, **options: Any) -> None:
    """Start UDT for this program (idempotent): sockets open udt channels on the rtudp
    pool ``pool`` (a name, None for the default one, or a started ``rtudp.Pool``) with
    ``options``, impaired by ``impairment`` (an :class:`rtudp.Impairment` or a dict of
    its fields, docs/impairment.md; a socket's channel also takes
    ``set_impairment`` while it runs)."""
    global _ports
    with _lock:
        if _ports is None:
            _ports = Ports(pool, options, impairment)


def cleanup() -> None:
    """Close every socket's UDP port (connections end)."""
    global _ports
    with _lock:
        ports, _ports = _ports, None
    if ports is not None:
        ports.close()


def _need_ports() -> Ports:
    if _ports is None:
        startup()
    assert _ports is not None
    return _ports


class UDTSOCKET:
    """A UDT socket handle (what ``socket()`` and ``accept()`` return)."""

    def __init__(self, sock: Socket) -> None:
        self._sock = sock

    @property
    def UDTSOCKET(self) -> int:  # noqa: N802  (PyUDT's name)
        """The socket's number (unique in this program)."""
        return self._sock.id

    def __int__(self) -> int:
        return self._sock.id

    def __hash__(self) -> int:
        return hash(self._sock.id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UDTSOCKET) and other._sock is self._sock

    def __repr__(self) -> str:
        return f"<UDTSOCKET {self._sock.id} {_c.STATUS_NAMES.get(self._sock.state(), '?')}>"


def _s(sock: UDTSOCKET) -> Socket:
    if not isinstance(sock, UDTSOCKET):
        raise UDTException(EINVSOCK, f"not a UDTSOCKET: {sock!r}")
    return sock._sock


def _bytes(buf: Any, length: int | None) -> memoryview:
    if isinstance(buf, str):
        raise TypeError("UDT sends bytes, not str: encode it first")
    view = memoryview(buf).cast("B")
    if length is None or length < 0:
        return view
    if length > view.nbytes:
        raise UDTException(EINVPARAM, f"length {length} > the buffer's {view.nbytes} bytes")
    return view[:length]


def socket(family: int, type: int, protocol: int = 0) -> UDTSOCKET:  # noqa: A001,A002
    """A new socket of ``family`` (AF_INET/AF_INET6) and ``type`` (SOCK_STREAM/DGRAM)."""
    return UDTSOCKET(Socket(_need_ports(), family, type))


def bind(sock: UDTSOCKET, host: str, port: int) -> None:
    """Bind to (host, port); sockets bound to the same address share its UDP port."""
    _s(sock).bind(host, port)


def bind_to_udp(sock: UDTSOCKET, udpsock: Any) -> None:
    """Bind to the address of a UDP socket (its fd is not shared: rtudp's worker owns
    the port, so the UDP socket is closed here to free its address)."""
    s = udpsock if isinstance(udpsock, _socket.socket) else _socket.socket(fileno=int(udpsock))
    host, port = s.getsockname()[:2]
    s.close()
    _s(sock).bind(host, port)


def listen(sock: UDTSOCKET, backlog: int) -> None:
    """Accept connections on a bound socket."""
    _s(sock).listen(backlog)


def accept(sock: UDTSOCKET) -> tuple[UDTSOCKET, tuple[str, int]]:
    """The next connection: (socket, (host, port))."""
    new, addr = _s(sock).accept()
    return UDTSOCKET(new), addr


def connect(sock: UDTSOCKET, host: str, port: int) -> None:
    """Connect (rendezvous when UDT_RENDEZVOUS is set)."""
    _s(sock).connect(host, port)


def close(sock: UDTSOCKET) -> None:
    """Close; queued data is still sent, then the peer is told."""
    _s(sock).close()


def getpeername(sock: UDTSOCKET) -> tuple[str, int]:
    """The peer's (host, port)."""
    return _s(sock).getpeername()


def getsockname(sock: UDTSOCKET) -> tuple[str, int]:
    """The local (host, port)."""
    return _s(sock).getsockname()


def setsockopt(sock: UDTSOCKET, *args: Any) -> None:
    """``setsockopt(s, opt, value)`` or PyUDT's ``setsockopt(s, level, opt, value)``."""
    if len(args) == 3:
        args = args[1:]
    if len(args) != 2:
        raise TypeError("setsockopt(sock, [level,] optname, value)")
    _s(sock).setsockopt(args[0], args[1])


def getsockopt(sock: UDTSOCKET, *args: Any) -> Any:
    """``getsockopt(s, opt)`` or PyUDT's ``getsockopt(s, level, opt)``."""
    if len(args) == 2:
        args = args[1:]
    if len(args) != 1:
        raise TypeError("getsockopt(sock, [level,] optname)")
    return _s(sock).getsockopt(args[0])


def getsockstate(sock: UDTSOCKET) -> int:
    """UDT's state (INIT .. NONEXIST)."""
    return _s(sock).state()


def send(sock: UDTSOCKET, buf: Any, length: int | None = None) -> int:
    """Queue stream bytes; how many were queued."""
    return _s(sock).send(_bytes(buf, length))


def sendmsg(sock: UDTSOCKET, buf: Any, length: int | None = None, ttl: int = -1,
            inorder: bool = False) -> int:
    """Queue one message (dropped if not delivered in ``ttl`` ms, -1 never)."""
    return _s(sock).sendmsg(_bytes(buf, length), ttl, inorder)


def recv(sock: UDTSOCKET, length: int) -> bytes:
    """Up to ``length`` stream bytes."""
    return _s(sock).recv(length)


def recvmsg(sock: UDTSOCKET, length: int) -> bytes:
    """The next message (cut to ``length``)."""
    return _s(sock).recvmsg(length)


def _file(f: Any, mode: str) -> tuple[int, BinaryIO | None]:
    if isinstance(f, (str, bytes, os.PathLike)):
        try:
            fh = open(f, mode)
        except OSError as e:
            raise UDTException(EFILE, f"{f!r}: {e}") from e
        return fh.fileno(), fh
    if hasattr(f, "fileno"):
        return f.fileno(), None
    if isinstance(f, int):
        return f, None
    raise UDTException(EINVPARAM, f"not a file: {f!r}")


def sendfile(sock: UDTSOCKET, f: Any, offset: int = 0, size: int | None = None,
             block: int = 7280000) -> int:
    """Send ``size`` bytes of file ``f`` (a path, file object or fd) from ``offset``
    (None: to its end); the bytes sent.  Reads with pread: the file position is not
    moved."""
    s = _s(sock)
    fd, owned = _file(f, "rb")
    try:
        if size is None:
            size = os.fstat(fd).st_size - offset
        if offset < 0 or size < 0:
            raise UDTException(EINVPARAM, f"offset {offset} / size {size}")
        sent = 0
        step = max(1, min(block, CHUNK))
        while sent < size:
            try:
                data = os.pread(fd, min(step, size - sent), offset + sent)
            except OSError as e:
                raise UDTException(_c.ERDPERM, str(e)) from e
            if not data:
                break
            view = memoryview(data)
            while view.nbytes:
                n = s.send(view)
                view = view[n:]
                sent += n
        return sent
    finally:
        if owned is not None:
            owned.close()


def recvfile(sock: UDTSOCKET, f: Any, offset: int, size: int, block: int = 7280000) -> int:
    """Receive ``size`` bytes into file ``f`` at ``offset`` (pwrite: the file position
    is not moved); the bytes received (fewer if the peer closed)."""
    s = _s(sock)
    if offset < 0 or size < 0:
        raise UDTException(EINVWROFF if offset < 0 else EINVPARAM, f"offset {offset} / size {size}")
    fd, owned = _file(f, "r+b" if isinstance(f, (str, bytes, os.PathLike)) and
                      os.path.exists(f) else "wb")
    try:
        got = 0
        while got < size:
            try:
                data = s.recv(min(max(1, block), CHUNK, size - got))
            except UDTException as e:
                if e.code == _c.ECONNLOST and got:
                    break
                raise
            try:
                os.pwrite(fd, data, offset + got)
            except OSError as e:
                raise UDTException(_c.EWRPERM, str(e)) from e
            got += len(data)
        return got
    finally:
        if owned is not None:
            owned.close()


class TRACEINFO:
    """UDT's performance counters of a socket (``perfmon``): totals since it connected,
    local values since the last clearing call, and instant values."""

    FIELDS = ("msTimeStamp", "pktSentTotal", "pktRecvTotal", "pktSndLossTotal",
              "pktRcvLossTotal", "pktRetransTotal", "pktSentACKTotal", "pktRecvACKTotal",
              "pktSentNAKTotal", "pktRecvNAKTotal", "pktSndDropTotal", "pktRcvDropTotal",
              "byteSentTotal", "byteRecvTotal", "pktSent", "pktRecv", "pktSndLoss",
              "pktRcvLoss", "pktRetrans", "pktSentACK", "pktRecvACK", "pktSentNAK",
              "pktRecvNAK", "pktSndDrop", "pktRcvDrop", "byteSent", "byteRecv",
              "mbpsSendRate", "mbpsRecvRate", "usPktSndPeriod", "pktFlowWindow",
              "pktCongestionWindow", "pktFlightSize", "msRTT", "mbpsBandwidth",
              "byteAvailSndBuf", "byteAvailRcvBuf")

    def __init__(self, values: dict[str, float]) -> None:
        for f in self.FIELDS:
            setattr(self, f, values.get(f, 0))

    def __repr__(self) -> str:
        return "TRACEINFO(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self.FIELDS) + ")"


def perfmon(sock: UDTSOCKET, clear: bool = True) -> TRACEINFO:
    """The socket's TRACEINFO; ``clear`` starts the local counters again."""
    return TRACEINFO(_s(sock).perf(clear))


class UDTepoll:
    """Readiness of UDT sockets and system sockets together (UDT's epoll)."""

    SLICE_S = 0.01  # several ports or system sockets: looked at every 10 ms

    def __init__(self) -> None:
        self._u: dict[UDTSOCKET, int] = {}
        self._s: dict[int, int] = {}
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise UDTException(EINVPOLLID)

    def add_usock(self, sock: UDTSOCKET, events: int = _c.UDT_EPOLL_IN | _c.UDT_EPOLL_OUT |
                  _c.UDT_EPOLL_ERR) -> None:
        """Watch UDT socket ``sock`` for ``events``."""
        self._check()
        _s(sock)
        self._u[sock] = events

    def add_ssock(self, fd: Any, events: int = _c.UDT_EPOLL_IN | _c.UDT_EPOLL_OUT) -> None:
        """Watch system socket (or fd) ``fd``."""
        self._check()
        self._s[fd if isinstance(fd, int) else fd.fileno()] = events

    def remove_usock(self, sock: UDTSOCKET) -> None:
        """Stop watching ``sock``."""
        self._check()
        self._u.pop(sock, None)

    def remove_ssock(self, fd: Any) -> None:
        """Stop watching system socket ``fd``."""
        self._check()
        self._s.pop(fd if isinstance(fd, int) else fd.fileno(), None)

    def _poll(self, do_uread: bool, do_uwrite: bool, do_sread: bool,
              do_swrite: bool) -> tuple[frozenset, frozenset, frozenset, frozenset]:
        ur = frozenset(u for u, ev in self._u.items() if do_uread and
                       ev & (_c.UDT_EPOLL_IN | _c.UDT_EPOLL_ERR) and u._sock.readable())
        uw = frozenset(u for u, ev in self._u.items() if do_uwrite and
                       ev & _c.UDT_EPOLL_OUT and u._sock.writable())
        rl = [fd for fd, ev in self._s.items() if do_sread and ev & _c.UDT_EPOLL_IN]
        wl = [fd for fd, ev in self._s.items() if do_swrite and ev & _c.UDT_EPOLL_OUT]
        sr: Iterable[int] = ()
        sw: Iterable[int] = ()
        if rl or wl:
            sr, sw, _ = select.select(rl, wl, [], 0)
        return ur, uw, frozenset(sr), frozenset(sw)

    def wait(self, timeout: int = -1, do_uread: bool = True, do_uwrite: bool = True,
             do_sread: bool = True, do_swrite: bool = True
             ) -> tuple[frozenset, frozenset, frozenset, frozenset]:
        """(UDT readable, UDT writable, system readable, system writable) once one is
        not empty, or all empty after ``timeout`` ms (-1: forever)."""
        self._check()
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout / 1000
        chans = {u._sock.ch for u in self._u if u._sock.ch is not None}
        while True:
            ch = next(iter(chans)) if len(chans) == 1 and not self._s else None
            seen = ch.events if ch is not None else 0
            got = self._poll(do_uread, do_uwrite, do_sread, do_swrite)
            if any(got):
                return got
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return got
            if ch is not None:
                ch.wait(seen, time.monotonic_ns() + int((left if left is not None else 1.0) * 1e9))
            else:
                time.sleep(min(self.SLICE_S, left) if left is not None else self.SLICE_S)

    def release(self) -> None:
        """Forget every socket (UDT's epoll_release)."""
        self._u.clear()
        self._s.clear()
        self._closed = True
