"""asyncio for UDT sockets: ``await accept()``, ``connect()``, ``send()``, ``recv()``,
``sendmsg()``, ``recvmsg()`` on a :mod:`rtudp.udt.udt4` or :mod:`rtudp.udt.pyudt` socket.

``rtudp.aio.wrap(sock)`` (or ``AsyncUdtSocket(sock)``) wraps a ``udt4.UDTSOCKET`` or a
``pyudt.UdtSocket``::

    srv = rtudp.aio.wrap(pyudt.UdtSocket())
    srv.bind(("127.0.0.1", 9000)); srv.listen()
    conn, addr = await srv.accept()
    data = await conn.recv(65536)

How the loop learns that a socket moved, without a thread or polling: the same
eventfd mechanism as :mod:`rtudp.aio`'s channels.  The wrappers of one process share
one registration (a :class:`rtudp.aio._Waiter`) per udt channel, so any number of
sockets on a port cost one of the channel's 16 slots; the worker writes the eventfd
whenever it rings the channel's bell for its clients (a socket's state, buffers or
accept queue changed), and only while a wait is armed.  Each call tries the socket's
operation without waiting; while it would wait, it awaits the eventfd and tries again.
The waits belong to the event loop of the channel's first wait.

A ``timeout`` (seconds, None: as long as it takes) ends a call with ``TimeoutError``.
Other failures are the wrapped API's (``UDTException``); ``recv`` returns b"" once the
peer closed and everything was read, as ``pyudt`` and asyncio's streams do.
``await listen()`` waits for the worker to take the listener on the eventfd too.  bind,
options and close are the wrapped socket's own (they do not wait on the peer).
"""
from __future__ import annotations

import socket as _socket
from typing import Any, Callable, TypeVar

from rtudp.aio import TX, _deadline, _Waiter, register

from . import pyudt, udt4
from .channel import UdtChannel
from .constants import EASYNCRCV, EASYNCSND, ECONNLOST, UDTException
from .core import LISTEN_WAIT_S, NEVER_WAIT, Socket

T = TypeVar("T")
_WOULD_WAIT = (EASYNCSND, EASYNCRCV)


def _attempt(op: Callable[[], T]) -> tuple[T] | None:
    """(op(),) with the socket's waits turned off; None if it would have waited."""
    token = NEVER_WAIT.set(True)
    try:
        return (op(),)
    except UDTException as e:
        if e.code in _WOULD_WAIT:
            return None
        raise
    finally:
        NEVER_WAIT.reset(token)


def _waiter_of(ch: UdtChannel) -> _Waiter:
    """The channel's registration for this process's event loop (made at first use)."""
    waiter = getattr(ch, "_aio_waiter", None)
    if waiter is None or waiter.closed:
        waiter = _Waiter(ch.name, ch._seg, ch._control, ch.worker)
        ch._aio_waiter = waiter  # lives (and its slot is held) as long as the channel
    return waiter


class AsyncUdtSocket:
    """A UDT socket for asyncio (wraps a ``udt4.UDTSOCKET`` or a ``pyudt.UdtSocket``;
    every other attribute is the wrapped socket's)."""

    def __init__(self, sock: udt4.UDTSOCKET | pyudt.UdtSocket) -> None:
        if isinstance(sock, pyudt.UdtSocket):
            core = sock.UDTSOCKET._sock
        elif isinstance(sock, udt4.UDTSOCKET):
            core = sock._sock
        else:
            raise TypeError(f"AsyncUdtSocket wraps a udt4.UDTSOCKET or a pyudt.UdtSocket, "
                            f"not {type(sock).__name__}")
        self.socket = sock
        self._core: Socket = core

    def __getattr__(self, name: str) -> Any:
        if name in ("socket", "_core"):  # not set yet: __init__ failed
            raise AttributeError(name)
        return getattr(self.socket, name)

    def __repr__(self) -> str:
        return f"<AsyncUdtSocket {self.socket!r}>"

    async def _run(self, op: Callable[[], T], timeout: float | None, what: str) -> T:
        """op()'s result, awaiting the socket's channel while it would wait."""
        until = _deadline(timeout)
        got = _attempt(op)
        if got is None:
            got = await self._wait(lambda: _attempt(op), until)
            if got is None:
                raise TimeoutError(f"UDT socket {self._core.id}: {what} not done within "
                                   f"{timeout} s")
        return got[0]

    async def _wait(self, check: Callable[[], T | None], until: float | None) -> T | None:
        ch = self._core.ch
        if ch is None:
            raise UDTException(udt4.ENOCONN, "the socket is not bound")
        return await _waiter_of(ch).wait(TX, check, until)

    # ------------------------------------------------------------ connections

    async def listen(self, backlog: int = 16, timeout: float | None = LISTEN_WAIT_S) -> None:
        """Accept connections (at most ``backlog`` waiting); returns once the worker
        took the listener (UDTException EINVOP if it did not within ``timeout`` s),
        the loop running meanwhile."""
        core = self._core
        if core.request_listen(backlog):
            return
        if not core.listen_done():
            await self._wait(lambda: True if core.listen_done() else None, _deadline(timeout))
        core.check_listening()

    async def accept(self, timeout: float | None = None) -> tuple["AsyncUdtSocket", tuple[str, int]]:
        """The next connection: (its AsyncUdtSocket, the peer's (host, port))."""
        new, addr = await self._run(self._core.accept, timeout, "accept")
        sock: Any = udt4.UDTSOCKET(new)
        if isinstance(self.socket, pyudt.UdtSocket):
            parent = self.socket
            sock = pyudt.UdtSocket(parent.family, parent.type, parent.proto, _sock=sock)
            sock.settimeout(parent.gettimeout())
        return AsyncUdtSocket(sock), addr

    async def connect(self, address: tuple[str, int], timeout: float | None = None) -> None:
        """Connect to (host, port) (an unbound socket is bound to any port first);
        UDTException ENOSERVER/ECONNREJ as the blocking connect raises them."""
        core = self._core
        until = _deadline(timeout)
        _attempt(lambda: core.connect(address[0], address[1]))  # requests it, never waits
        if not core.connect_done() and await self._wait(
                lambda: True if core.connect_done() else None, until) is None:
            raise TimeoutError(f"UDT socket {core.id}: no connection to {address} within "
                               f"{timeout} s (UDT goes on trying until its own timeout)")
        core.check_connected()

    # ------------------------------------------------------------ data

    async def send(self, data: Any, timeout: float | None = None) -> int:
        """Queue stream bytes once there is room: how many (at least one packet's
        worth, or all)."""
        return await self._run(lambda: self._core.send(data), timeout, "send")

    async def sendall(self, data: Any, timeout: float | None = None) -> None:
        """Queue all of ``data``, waiting for room as it goes (``timeout`` for each wait)."""
        view = memoryview(data).cast("B")
        while view.nbytes:
            view = view[await self.send(view, timeout):]

    async def recv(self, n: int, timeout: float | None = None) -> bytes:
        """Up to ``n`` stream bytes once there are some; b"" once the peer closed
        and everything was read."""
        try:
            return await self._run(lambda: self._core.recv(n), timeout, "recv")
        except UDTException as e:
            if e.code == ECONNLOST:
                return b""
            raise

    async def sendmsg(self, data: Any, ttl: int = -1, inorder: bool = False,
                      timeout: float | None = None) -> int:
        """Queue one message whole once there is room (``ttl`` ms, -1: never
        dropped; ``inorder``): its length."""
        return await self._run(lambda: self._core.sendmsg(data, ttl, inorder), timeout,
                               "sendmsg")

    async def recvmsg(self, n: int, timeout: float | None = None) -> bytes:
        """The next message (cut to ``n`` bytes); UDTException ECONNLOST once the
        peer closed and every message was read."""
        return await self._run(lambda: self._core.recvmsg(n), timeout, "recvmsg")

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the socket (queued data is still sent, as the wrapped close does)."""
        if isinstance(self.socket, pyudt.UdtSocket):
            self.socket.close()
        else:
            udt4.close(self.socket)

    async def __aenter__(self) -> "AsyncUdtSocket":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def socket(family: int = _socket.AF_INET, type: int = _socket.SOCK_STREAM,  # noqa: A002
           proto: int = 0) -> AsyncUdtSocket:
    """A new ``pyudt.UdtSocket``, wrapped."""
    return AsyncUdtSocket(pyudt.UdtSocket(family, type, proto))


register(udt4.UDTSOCKET, AsyncUdtSocket)
register(pyudt.UdtSocket, AsyncUdtSocket)

__all__ = ["AsyncUdtSocket", "socket"]
