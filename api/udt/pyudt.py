"""PyUDT's ``pyudt``: UDT sockets that behave like Python's sockets, and ``Epoll``.

``from rtudp.udt import pyudt``::

    with pyudt.UdtSocket() as s:
        s.connect(("127.0.0.1", 9000))
        s.sendall(b"hello")
"""
from __future__ import annotations

import socket as _socket
from typing import Any

from . import udt4
from .constants import (ECONNLOST, ETIMEOUT, UDT_RCVSYN, UDT_RCVTIMEO, UDT_SNDSYN, UDT_SNDTIMEO,
                        UDTException)


def _address(address: object, call: str) -> tuple[str, int]:
    """``address`` as socket methods take it, (host, port); TypeError naming the call and
    the value otherwise (with the tuple a "host:port" string meant)."""
    if (isinstance(address, (tuple, list)) and len(address) == 2
            and isinstance(address[0], str)):
        return address[0], address[1]
    hint = ""
    if isinstance(address, str) and address.rpartition(":")[2].isdigit():
        host, _, port = address.rpartition(":")
        hint = f": use {call}(({host!r}, {int(port)}))"
    raise TypeError(f"{call}() takes a (host, port) tuple as socket.{call}() does, not "
                    f"{address!r}{hint}")


class UdtSocket:
    """A UDT socket with the socket module's methods (``timeout`` in seconds as
    ``settimeout``: it sets UDT_SNDTIMEO/UDT_RCVTIMEO; a timeout raises
    ``TimeoutError``, other UDT errors stay :class:`UDTException`)."""

    def __init__(self, family: int = _socket.AF_INET, type: int = _socket.SOCK_STREAM,  # noqa: A002
                 proto: int = 0, _sock: udt4.UDTSOCKET | None = None) -> None:
        self.family = family
        self.type = type
        self.proto = proto
        self.UDTSOCKET = _sock if _sock is not None else udt4.socket(family, type, proto)
        self._timeout: float | None = None

    # ------------------------------------------------------------ setup

    def bind(self, address: tuple[str, int]) -> None:
        """Bind to (host, port)."""
        udt4.bind(self.UDTSOCKET, *_address(address, "bind"))

    def listen(self, backlog: int = 16) -> None:
        """Accept connections."""
        udt4.listen(self.UDTSOCKET, backlog)

    def accept(self) -> tuple["UdtSocket", tuple[str, int]]:
        """(connection, address); honours the timeout."""
        s, addr = self._call(udt4.accept, self.UDTSOCKET)
        conn = UdtSocket(self.family, self.type, self.proto, _sock=s)
        conn.settimeout(self._timeout)
        return conn, addr

    def connect(self, address: tuple[str, int]) -> None:
        """Connect to (host, port)."""
        udt4.connect(self.UDTSOCKET, *_address(address, "connect"))

    def connect_ex(self, address: tuple[str, int]) -> int:
        """connect, returning 0 or UDT's error code instead of raising."""
        try:
            self.connect(address)
        except UDTException as e:
            return e.code
        return 0

    # ------------------------------------------------------------ data

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except UDTException as e:
            if e.code == ETIMEOUT:
                raise TimeoutError(f"UDT socket timed out after {self._timeout} s") from e
            raise

    def send(self, data: Any) -> int:
        """Queue stream bytes; how many."""
        return self._call(udt4.send, self.UDTSOCKET, data)

    def sendall(self, data: Any) -> None:
        """Queue all of ``data``."""
        view = memoryview(data).cast("B")
        while view.nbytes:
            view = view[self.send(view):]

    def recv(self, n: int) -> bytes:
        """Up to ``n`` bytes; b"" once the peer closed and everything was read."""
        try:
            return self._call(udt4.recv, self.UDTSOCKET, n)
        except UDTException as e:
            if e.code == ECONNLOST:
                return b""
            raise

    def sendmsg(self, data: Any, ttl: int = -1, inorder: bool = False) -> int:
        """Queue one message (``ttl`` ms, -1: never dropped; ``inorder``)."""
        return self._call(udt4.sendmsg, self.UDTSOCKET, data, None, ttl, inorder)

    def recvmsg(self, n: int) -> bytes:
        """The next message, cut to ``n`` bytes."""
        return self._call(udt4.recvmsg, self.UDTSOCKET, n)

    # ------------------------------------------------------------ options

    def settimeout(self, timeout: float | None) -> None:
        """Seconds blocking calls wait (None: forever, 0: non-blocking)."""
        if timeout is not None and (isinstance(timeout, bool)
                                    or not isinstance(timeout, (int, float))):
            raise TypeError(f"settimeout() takes None or a number of seconds, not {timeout!r}")
        if timeout is not None and timeout < 0:
            raise ValueError(f"settimeout() takes None or seconds >= 0, not {timeout!r}")
        self._timeout = timeout
        blocking = timeout != 0
        ms = -1 if timeout is None else int(timeout * 1000)
        udt4.setsockopt(self.UDTSOCKET, UDT_SNDSYN, blocking)
        udt4.setsockopt(self.UDTSOCKET, UDT_RCVSYN, blocking)
        udt4.setsockopt(self.UDTSOCKET, UDT_SNDTIMEO, ms)
        udt4.setsockopt(self.UDTSOCKET, UDT_RCVTIMEO, ms)

    def gettimeout(self) -> float | None:
        """See settimeout."""
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        """settimeout(None) or settimeout(0)."""
        self.settimeout(None if flag else 0.0)

    def getsockopt(self, level: int, optname: int | None = None) -> Any:
        """An option (``getsockopt(opt)`` or ``getsockopt(level, opt)``)."""
        return udt4.getsockopt(self.UDTSOCKET, level if optname is None else optname)

    def setsockopt(self, level: int, optname: Any, value: Any = None) -> None:
        """Set an option (``setsockopt(opt, value)`` or ``setsockopt(level, opt, value)``)."""
        if value is None:
            udt4.setsockopt(self.UDTSOCKET, level, optname)
        else:
            udt4.setsockopt(self.UDTSOCKET, optname, value)

    def getsockname(self) -> tuple[str, int]:
        """The local address."""
        return udt4.getsockname(self.UDTSOCKET)

    def getpeername(self) -> tuple[str, int]:
        """The peer's address."""
        return udt4.getpeername(self.UDTSOCKET)

    def perfmon(self, clear: bool = True) -> udt4.TRACEINFO:
        """UDT's performance counters."""
        return udt4.perfmon(self.UDTSOCKET, clear)

    def fileno(self) -> int:
        """The socket's UDT number (not an fd: use :class:`Epoll` to wait on it)."""
        return int(self.UDTSOCKET)

    def close(self) -> None:
        """Close (queued data is still sent)."""
        udt4.close(self.UDTSOCKET)

    def __enter__(self) -> "UdtSocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Epoll:
    """UDT sockets and system sockets waited on together."""

    def __init__(self) -> None:
        self._ep = udt4.UDTepoll()

    def add_usock(self, s: UdtSocket, events: int = udt4.UDT_EPOLL_IN | udt4.UDT_EPOLL_OUT) -> None:
        """Watch a UdtSocket."""
        self._ep.add_usock(s.UDTSOCKET, events)

    def add_ssock(self, s: Any, events: int = udt4.UDT_EPOLL_IN | udt4.UDT_EPOLL_OUT) -> None:
        """Watch a system socket."""
        self._ep.add_ssock(s, events)

    def remove_usock(self, s: UdtSocket) -> None:
        """Stop watching a UdtSocket."""
        self._ep.remove_usock(s.UDTSOCKET)

    def remove_ssock(self, s: Any) -> None:
        """Stop watching a system socket."""
        self._ep.remove_ssock(s)

    def wait(self, timeout: float | None = None, do_uread: bool = True, do_uwrite: bool = True,
             do_sread: bool = True, do_swrite: bool = True
             ) -> tuple[frozenset, frozenset, frozenset, frozenset]:
        """Four frozensets (UDT readable/writable: their UDTSOCKETs, system
        readable/writable: fds) after at most ``timeout`` s (None: until one is ready)."""
        ms = -1 if timeout is None else int(timeout * 1000)
        return self._ep.wait(ms, do_uread, do_uwrite, do_sread, do_swrite)

    def release(self) -> None:
        """Forget every socket."""
        self._ep.release()
