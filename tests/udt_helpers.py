"""Helpers of the udt tests: the libudt peer program (rtudp.tools.udt_peer) and the
impairment relay in C (rtudp.tools.udt_relay), the udt4 fixture, transfers between
rtudp.udt sockets."""
from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import rtudp
import rtudp.udt.udt4 as udt4_module
from rtudp.tools import udt_peer
from rtudp.tools.udt_peer import LibudtPeer
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


def frame_messages(msgs: list[bytes]) -> bytes:
    """Messages as libudt_peer's server writes them: 4-byte LE length, then the bytes."""
    return b"".join(len(m).to_bytes(4, "little") + m for m in msgs)


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


__all__ = ["LibudtPeer", "Relay", "build_libudt_peer", "frame_messages", "pattern", "recv_all",
           "send_all", "serve_once", "udt"]
