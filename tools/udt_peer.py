"""A real UDT 4.11 peer (Debian's libudt), for the udt tests and ``rtudp bench udt``.

:func:`build_libudt_peer` compiles ``libudt_peer.cpp`` (shipped next to this file)
with ``c++ -ludt``; :class:`LibudtPeer` runs it.  The impairment relay is
:mod:`rtudp.tools.udt_relay` (C, built the same way by :func:`build_cached`);
:class:`Relay` here is a slower one in Python whose ``watch`` sees (and may drop)
every datagram: the tests that check or filter what is on the wire use it.
"""
from __future__ import annotations

import hashlib
import heapq
import os
import random
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
PEER_SRC = HERE / "libudt_peer.cpp"
PEER_HDRS = (HERE / "udt_peer_util.h", HERE / "libudt_peer_scenario.h")


class PeerUnavailable(RuntimeError):
    """The libudt peer cannot be built here (what is missing, and how to install it)."""


def build_libudt_peer(out_dir: Path | None = None) -> Path:
    """The peer program, built once per source version (in ``out_dir``, default a
    folder of the temporary directory); PeerUnavailable without libudt-dev or c++."""
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        raise PeerUnavailable("no C++ compiler to build the libudt peer (apt-get install g++)")
    if not Path("/usr/include/udt/udt.h").exists():
        raise PeerUnavailable("libudt-dev is not installed (apt-get install libudt-dev)")
    return build_cached("libudt_peer", [PEER_SRC, *PEER_HDRS],
                        [cxx, "-O2", "-std=c++11", str(PEER_SRC), "-ludt", "-lpthread"], out_dir)


def build_cached(name: str, sources: list[Path], command: list[str],
                 out_dir: Path | None = None) -> Path:
    """The program ``name`` built by ``command`` (given ``-o OUT`` at its end) once per
    version of ``sources``, in ``out_dir`` (default a folder of the temporary
    directory); PeerUnavailable with the compiler's message when the build fails."""
    tag = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    out = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "rtudp-udt-peer"
    out.mkdir(parents=True, exist_ok=True)
    exe = out / f"{name}-{tag}"
    if exe.exists():
        return exe
    tmp = out / f".{name}-{tag}.{os.getpid()}"
    r = subprocess.run([*command, "-o", str(tmp)], capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise PeerUnavailable(f"building {name} failed:\n{r.stderr}")
    tmp.replace(exe)
    return exe


class LibudtPeer:
    """A running libudt_peer; its stdout lines as they come."""

    def __init__(self, exe: Path, *args: str) -> None:
        self.proc = subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, text=True)

    def line(self, timeout: float = 30.0, allow_error: bool = False) -> str:
        """The next line of output (AssertionError after ``timeout`` s, or on an
        "error ..." line unless ``allow_error``)."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"libudt peer said nothing for {timeout} s"
        line = self.proc.stdout.readline().strip()
        assert line, f"libudt peer exited ({self.proc.wait(5)}) without a result"
        assert allow_error or not line.startswith("error"), f"libudt peer: {line}"
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


class Relay:
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
        self._thread = threading.Thread(target=self._run, name="udt-relay", daemon=True)
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


__all__ = ["LibudtPeer", "PeerUnavailable", "Relay", "build_cached", "build_libudt_peer"]
