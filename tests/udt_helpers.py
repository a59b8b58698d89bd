"""Helpers of the udt tests: the libudt peer program, an impairment relay, transfers
between rtudp.udt sockets."""
from __future__ import annotations

import heapq
import random
import select
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import rtudp
import rtudp.udt.udt4 as udt4_module

HERE = Path(__file__).resolve().parent
PEER_SRC = HERE / "udt" / "libudt_peer.cpp"


def build_libudt_peer(out_dir: Path) -> Path:
    """Build tests/udt/libudt_peer.cpp against Debian's libudt; skip (printing why)
    when libudt-dev or a C++ compiler is missing."""
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        print("SKIP: no C++ compiler (apt-get install g++)")
        pytest.skip("no C++ compiler to build the libudt peer (apt-get install g++)")
    if not Path("/usr/include/udt/udt.h").exists():
        print("SKIP: libudt-dev is not installed (apt-get install libudt-dev)")
        pytest.skip("libudt-dev is not installed (apt-get install libudt-dev)")
    exe = out_dir / "libudt_peer"
    r = subprocess.run([cxx, "-O2", "-std=c++11", "-o", str(exe), str(PEER_SRC), "-ludt",
                        "-lpthread"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"building the libudt peer failed:\n{r.stderr}"
    return exe


class LibudtPeer:
    """A running libudt_peer; its stdout lines as they come."""

    def __init__(self, exe: Path, *args: str) -> None:
        self.proc = subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, text=True)

    def line(self, timeout: float = 30.0) -> str:
        """The next line of output (AssertionError after ``timeout`` s)."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"libudt peer said nothing for {timeout} s"
        line = self.proc.stdout.readline().strip()
        assert line, f"libudt peer exited ({self.proc.wait(5)}) without a result"
        assert not line.startswith("error"), f"libudt peer: {line}"
        return line

    def wait(self, timeout: float = 60.0) -> int:
        """Its exit code."""
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Kill it if it still runs (by its pid)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def frame_messages(msgs: list[bytes]) -> bytes:
    """Messages as libudt_peer's server writes them: 4-byte LE length, then the bytes."""
    return b"".join(len(m).to_bytes(4, "little") + m for m in msgs)


class Relay:
    """A UDP relay on loopback between one client and ``server``: drops ``loss`` of
    the datagrams each way at random, delays each by ``delay`` s plus up to
    ``jitter`` s (so datagrams overtake each other), all in a thread of this process.
    ``port`` is where clients connect to."""

    def __init__(self, server: tuple[str, int], loss: float = 0.0, delay: float = 0.0,
                 jitter: float = 0.0, seed: int = 1) -> None:
        self.server = server
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
        self._thread = threading.Thread(target=self._run, name="udt-relay", daemon=True)
        self._thread.start()

    def _queue(self, data: bytes, out: socket.socket, to: tuple[str, int]) -> None:
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


def tmpfile(dir_: Path, name: str, data: bytes) -> Path:
    """``data`` in a file of ``dir_``."""
    p = dir_ / name
    p.write_bytes(data)
    return p


__all__ = ["LibudtPeer", "Relay", "build_libudt_peer", "frame_messages", "pattern", "recv_all",
           "send_all", "serve_once", "tmpfile", "udt"]
