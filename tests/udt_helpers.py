"""Helpers of the udt tests: the libudt peer program (rtudp.tools.bench.udt_peer), the
impairment relay in C (rtudp.tools.bench.udt_relay) and a Python one that sees every datagram
(WatchRelay), the udt4 fixture, transfers between rtudp.udt sockets."""
from __future__ import annotations

import heapq
import random
import select
import socket
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import rtudp
import rtudp.udt.udt4 as udt4_module
from rtudp.tools.bench import udt_peer
from rtudp.tools.bench.udt_peer import LibudtPeer
from rtudp.tools.bench.udt_relay import CRelay as Relay



class WatchRelay:
    """A UDP relay on loopback between one client and ``server``: drops ``loss`` of
    the datagrams each way at random, delays each by ``delay`` s plus up to
    ``jitter`` s (so datagrams overtake each other), all in a thread of this process.
    ``port`` is where clients connect to.  ``watch``, if given, sees every datagram
    first as ``watch(to_server, data)`` (in the relay's thread) and drops it by
    returning True: a test's sniffer, or a filter that loses chosen packets."""

    def __init__(self, server: tuple[str, int], loss: float = 0.0, delay: float = 0.0,
                 jitter: float = 0.0, seed: int = 1,
                 watch: Callable[[bool, bytes], bool] | None = None) -> None:
        self.server = server
        self.watch = watch
        self.loss, self.delay, self.jitter = loss, delay, jitter
        self.rng = random.Random(seed)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        for s in (self.front, self.back):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.setblocking(False)
        self.port = self.front.getsockname()[1]
        self.client: tuple[str, int] | None = None
        self.passed = self.dropped = 0
        self._q: list[tuple[float, int, socket.socket, tuple[str, int], bytes]] = []
        self._n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udt-watch-relay", daemon=True)
        self._thread.start()

    def _queue(self, data: bytes, out: socket.socket, to: tuple[str, int]) -> None:
        if self.watch is not None and self.watch(out is self.back, data):
            self.dropped += 1
            return
        if self.loss and self.rng.random() < self.loss:
            self.dropped += 1
            return
        at = time.monotonic() + self.delay + (self.rng.random() * self.jitter if self.jitter else 0)
        self._n += 1
        heapq.heappush(self._q, (at, self._n, out, to, data))

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            while self._q and self._q[0][0] <= now:
                _, _, out, to, data = heapq.heappop(self._q)
                try:
                    out.sendto(data, to)
                    self.passed += 1
                except OSError:
                    self.dropped += 1
            wait = min(0.01, max(0.0, self._q[0][0] - now)) if self._q else 0.01
            ready, _, _ = select.select([self.front, self.back], [], [], wait)
            for s in ready:
                for _ in range(256):
                    try:
                        data, src = s.recvfrom(65536)
                    except BlockingIOError:
                        break
                    if s is self.front:
                        self.client = src
                        self._queue(data, self.back, self.server)
                    elif self.client is not None:
                        self._queue(data, self.front, self.client)

    def close(self) -> None:
        """Stop the thread and close the sockets."""
        self._stop.set()
        self._thread.join(5)
        self.front.close()
        self.back.close()

def build_libudt_peer(out_dir: Path) -> Path:
    """rtudp.tools.bench.udt_peer's peer, built in ``out_dir``; the test is skipped (the
    reason printed) when libudt-dev or a C++ compiler is missing."""
    try:
        return udt_peer.build_libudt_peer(out_dir)
    except udt_peer.PeerUnavailable as e:
        if "failed" in str(e):
            raise
        print(f"SKIP: {e}")
        pytest.skip(str(e))


@pytest.fixture
def udt(rtudp_pool: rtudp.Pool) -> Iterator[Any]:
    """rtudp.udt.udt4 started on the test's pool (cleaned up after)."""
    udt4_module.startup(rtudp_pool)
    try:
        yield udt4_module
    finally:
        udt4_module.cleanup()


def pair(kind: int = socket.SOCK_STREAM) -> tuple[Any, Any, Any]:
    """(listener, client, accepted) of rtudp UDT sockets of type ``kind`` on 127.0.0.1."""
    srv = udt4_module.socket(socket.AF_INET, kind, 0)
    udt4_module.bind(srv, "127.0.0.1", 0)
    udt4_module.listen(srv, 4)
    c = udt4_module.socket(socket.AF_INET, kind, 0)
    udt4_module.connect(c, "127.0.0.1", udt4_module.getsockname(srv)[1])
    conn, _ = udt4_module.accept(srv)
    return srv, c, conn


def serve_once(udt4: Any, srv: Any, stream: bool, into: list[Any]) -> threading.Thread:
    """A started thread that accepts one connection on ``srv``, receives all of it
    into ``into`` (as :func:`recv_all`) and closes it."""

    def serve() -> None:
        conn, _ = udt4.accept(srv)
        recv_all(udt4, conn, stream, into)
        udt4.close(conn)

    t = threading.Thread(target=serve)
    t.start()
    return t


def recv_all(udt4: Any, sock: Any, stream: bool, into: list[Any]) -> None:
    """Receive until the peer closes: ``into`` gets the bytes (stream) or the list of
    messages, then the closing error code (a thread's target)."""
    got: Any = bytearray() if stream else []
    try:
        while True:
            if stream:
                got += udt4.recv(sock, 1 << 20)
            else:
                got.append(udt4.recvmsg(sock, 1 << 21))
    except udt4.UDTException as e:
        into.append(bytes(got) if stream else got)
        into.append(e.code)


def send_all(udt4: Any, sock: Any, data: bytes) -> None:
    """Queue all of ``data`` on a stream socket."""
    view = memoryview(data)
    while view.nbytes:
        view = view[udt4.send(sock, view):]


def pattern(n: int, seed: int = 7) -> bytes:
    """``n`` pseudo-random bytes (reproducible, fast)."""
    return random.Random(seed).randbytes(n)


def report(peer: LibudtPeer, timeout: float = 60.0) -> dict[str, Any]:
    """What a ``libudt_peer peer`` run said, up to its "done" line: "sent"/"recv" as
    (bytes, crc32), "sentmsg"/"msg" as lists of (length, crc32), "end" as the error
    code that ended its connection."""
    out: dict[str, Any] = {"sentmsg": [], "msg": []}
    while True:
        words = peer.line(timeout=timeout).split()
        if words[0] == "done":
            return out
        if words[0] in ("sentmsg", "msg"):
            out[words[0]].append((int(words[1]), int(words[2])))
        elif words[0] in ("sent", "recv"):
            out[words[0]] = (int(words[1]), int(words[2]))
        elif words[0] in ("end", "port"):
            out[words[0]] = int(words[1])


def crc_of(msgs: list[bytes]) -> list[tuple[int, int]]:
    """Messages as libudt_peer reports them: (length, crc32)."""
    return [(len(m), zlib.crc32(m)) for m in msgs]


def duplex(udt4: Any, sock: Any, send_n: int, expect_n: int, seed: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Send ``send_n`` pattern bytes (a thread) while receiving ``expect_n`` on a
    stream socket, holding neither: ((sent, crc32), (received, crc32))."""
    blocks = [pattern((1 << 20) + 13 * i + 1, seed=seed * 100 + i) for i in range(5)]
    sent = [0, 0]

    def send() -> None:
        n, crc, i = 0, 0, 0
        while n < send_n:
            chunk = blocks[i % len(blocks)][:send_n - n]
            send_all(udt4, sock, chunk)
            crc = zlib.crc32(chunk, crc)
            n += len(chunk)
            i += 1
        sent[:] = [n, crc]

    t = threading.Thread(target=send, name="udt-duplex-send")
    t.start()
    got, crc = 0, 0
    try:
        while got < expect_n:
            data = udt4.recv(sock, min(1 << 20, expect_n - got))
            crc = zlib.crc32(data, crc)
            got += len(data)
    finally:
        t.join(600)
    return (sent[0], sent[1]), (got, crc)


def ctrl_type(pkt: bytes) -> int | None:
    """The control type of a UDT packet (0x7FFF: user-defined), None for data."""
    word0 = struct.unpack_from(">I", pkt)[0]
    return (word0 >> 16) & 0x7FFF if word0 >> 31 else None


def handshake_conn_type(pkt: bytes) -> int:
    """A handshake packet's connection type (1, -1, 0, -2, 1002)."""
    return struct.unpack_from(">i", pkt, 16 + 20)[0]


__all__ = ["LibudtPeer", "Relay", "WatchRelay", "build_libudt_peer", "crc_of", "ctrl_type", "duplex",
           "handshake_conn_type", "pattern", "recv_all", "report", "send_all",
           "serve_once", "udt"]
