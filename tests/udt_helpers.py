"""Helpers of the udt tests: the libudt peer program (rtudp.tools.udt_peer) and the
impairment relay in C (rtudp.tools.udt_relay), the udt4 fixture, transfers between
rtudp.udt sockets."""
from __future__ import annotations

import random
import struct
import threading
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest

import rtudp
import rtudp.udt.udt4 as udt4_module
from rtudp.tools import udt_peer
from rtudp.tools.udt_peer import LibudtPeer
from rtudp.tools.udt_peer import Relay as WatchRelay  # sees every datagram (Python, slower)
from rtudp.tools.udt_relay import CRelay as Relay


def build_libudt_peer(out_dir: Path) -> Path:
    """rtudp.tools.udt_peer's peer, built in ``out_dir``; the test is skipped (the
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
