"""The C peers of ``rtudp bench scale`` (``scale_peer.c``, shipped next to this file and
built at run time with ``cc``): the independent observer, the C sender of N streams and
the C receiver of N streams, each a process of its own.

* :class:`Observer`: one plain UDP socket on loopback reading kernel arrival stamps
  (SO_TIMESTAMPNS) of every datagram, with its source port and first 4 bytes;
  :meth:`Observer.stop` returns them as :class:`Arrival` rows.
* :func:`start_sender` / :class:`CSender`: N streams, one thread, ``clock_nanosleep``
  to each due time, then ``send``.
* :class:`CReceiver`: N bound sockets read through one epoll, counting datagrams.
"""
from __future__ import annotations

import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from ..procinfo import realtime_offset_ns
from .udt_peer import PeerUnavailable, build_cached

HERE = Path(__file__).resolve().parent
PEER_SRC = HERE / "scale_peer.c"
#: struct record of scale_peer.c: source port, length, first 4 bytes, CLOCK_REALTIME ns
RECORD = struct.Struct("<HH4sq")


def build_peer(out_dir: Path | None = None) -> Path:
    """The peer program, built once per source version; PeerUnavailable without cc."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise PeerUnavailable("no C compiler to build the scale peer (apt-get install gcc)")
    return build_cached("scale_peer", [PEER_SRC],
                        [cc, "-std=c11", "-O2", "-Wall", "-Wextra", str(PEER_SRC)], out_dir)


def _line(proc: subprocess.Popen, timeout: float, what: str) -> str:
    assert proc.stdout is not None
    # poll, not select: with thousands of channels open this pipe's descriptor is
    # past select's FD_SETSIZE
    poller = select.poll()
    poller.register(proc.stdout, select.POLLIN)
    if not poller.poll(timeout * 1000):
        raise RuntimeError(f"{what} said nothing for {timeout:.0f} s")
    line = proc.stdout.readline().strip()
    if not line:
        raise RuntimeError(f"{what} exited ({proc.wait(5)}) without a word")
    return line


def _fields(line: str, what: str) -> dict[str, int]:
    if not line.startswith("done "):
        raise RuntimeError(f"{what} answered {line!r}")
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


def _reap(proc: subprocess.Popen) -> None:
    """Close its stdin and wait; killed (by its pid) if it does not end within 5 s."""
    try:
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
        proc.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


class Arrival(NamedTuple):
    """One datagram at the observer: source port, length, first 4 bytes, kernel
    arrival stamp as CLOCK_MONOTONIC ns."""
    port: int
    length: int
    head: bytes
    stamp_ns: int


class Observer:
    """The independent observer: a process with one plain socket on 127.0.0.1
    (``addr``) recording every datagram's kernel arrival stamp: the C program (a
    256 MiB buffer), or with ``python`` an ordinary Python reader
    (``scale_reader.py``: the buffer the kernel grants any program), the neighbour a
    pool must leave CPU to."""

    def __init__(self, exe: Path, python: bool = False) -> None:
        fd, self._path = tempfile.mkstemp(prefix="rtudp-scale-obs-")
        os.close(fd)
        argv = ([sys.executable, "-m", "rtudp.tools.bench.scale_reader", self._path] if python
                else [str(exe), "observe", self._path])
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        try:
            line = _line(self.proc, 10.0, "the observer")
            if not line.startswith("port "):
                raise RuntimeError(f"the observer did not start: {line!r}")
        except BaseException:
            self.close()
            raise
        self.addr = ("127.0.0.1", int(line.split()[1]))
        self.pid = self.proc.pid

    def stop(self) -> tuple[list[Arrival], dict[str, int]]:
        """Stop it (it reads what is left first): every arrival, and its counts
        (``received``, ``unstamped``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        counts = _fields(_line(self.proc, 20.0, "the observer"), "the observer")
        offset = realtime_offset_ns()
        with open(self._path, "rb") as f:
            raw = f.read()
        rows = [Arrival(p, n, h, s - offset if s >= 0 else -1)
                for p, n, h, s in RECORD.iter_unpack(raw[:len(raw) - len(raw) % RECORD.size])]
        self.close()
        return rows, counts

    def close(self) -> None:
        """End the process and remove its file (idempotent)."""
        _reap(self.proc)
        if os.path.exists(self._path):
            os.unlink(self._path)


class CSender:
    """The C sender: ``streams`` (host, port) destinations, packet k of stream i due at
    ``start_ns + k * gap_ns + i * gap_ns / N``, ``count`` packets a stream of ``size``
    bytes in ``fmt`` ("rtp" or "netflux").  ``tick_ns`` > 0: it wakes on a grid of that
    step and sends what is due by each wake-up (an event loop's schedule)."""

    def __init__(self, exe: Path, streams: list[tuple[str, int]], gap_ns: int, count: int,
                 start_ns: int, size: int, fmt: str, tick_ns: int = 0) -> None:
        tick = [str(tick_ns)] if tick_ns > 0 else []
        self.proc = subprocess.Popen([str(exe), "send", str(gap_ns), str(count), str(start_ns),
                                      str(size), fmt, *tick], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write("".join(f"{h} {p}\n" for h, p in streams) + "end\n")
            self.proc.stdin.flush()
            line = _line(self.proc, 30.0, "the C sender")
            if line != "ready":
                raise RuntimeError(f"the C sender did not start: {line!r}")
        except BaseException:
            _reap(self.proc)
            raise

    def result(self, timeout: float) -> dict[str, int]:
        """Its counts when done: ``sent``, ``errors``, ``cpu_ns``, ``late_max_ns``."""
        try:
            return _fields(_line(self.proc, timeout, "the C sender"), "the C sender")
        finally:
            _reap(self.proc)

    def close(self) -> None:
        _reap(self.proc)


class CReceiver:
    """The C receiver: ``n`` sockets on 127.0.0.1 (``addrs``), one epoll, counting."""

    def __init__(self, exe: Path, n: int) -> None:
        self.proc = subprocess.Popen([str(exe), "recv", str(n)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        try:
            line = _line(self.proc, 30.0, "the C receiver")
            if not line.startswith("ports "):
                raise RuntimeError(f"the C receiver did not start: {line!r}")
        except BaseException:
            _reap(self.proc)
            raise
        self.addrs = [("127.0.0.1", int(p)) for p in line.split()[1:]]

    def stop(self) -> dict[str, int]:
        """Its counts: ``received``, ``cpu_ns``."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return _fields(_line(self.proc, 20.0, "the C receiver"), "the C receiver")
        finally:
            _reap(self.proc)


__all__ = ["Arrival", "CReceiver", "CSender", "Observer", "PeerUnavailable", "RECORD",
           "build_peer"]
