"""Helpers for the rtstat tests: a pool with traffic in a child process, and rtstat
running in a private tmux server whose screen the tests read with capture-pane.

Everything started here is stopped by PID (the traffic child) or by killing the
private tmux server (its own socket, so nobody else's tmux is touched), also when a
test fails.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from typing import Any, Callable, Iterator

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
RTSTAT = os.path.join(BIN, "rtstat")


class TrafficPool:
    """``tests/traffic_pool.py`` as a child: pool ``name`` with channels rx and tx (and
    with ``kinds``, a netflux pair and an rtp pair)."""

    def __init__(self, name: str, rate: int = 2000, kinds: bool = False) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "traffic_pool.py"),
                                      name, str(rate)] + (["kinds"] if kinds else []),
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise AssertionError(f"traffic pool {name!r} did not start: {line!r}")

    def stats(self) -> dict[str, Any]:
        """``{"tx": tx.stats(), "rx": rx.stats()}`` from inside the pool's process."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def wait_sent(self, n: int, timeout: float = 60.0) -> dict[str, Any]:
        """stats() once at least ``n`` packets have left on tx."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            if st["tx"]["tx_lateness_count"] >= n:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"only {st['tx']['tx_lateness_count']} packets sent in "
                                     f"{timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (a clean stop: the pool unlinks its segments), SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


@pytest.fixture
def traffic(shm_name: str) -> Iterator[TrafficPool]:
    """A :class:`TrafficPool` with a name the suite's leak check covers; stopped after."""
    pool = TrafficPool(shm_name.replace(".", "_")[:24].rstrip("_-"))
    try:
        yield pool
    finally:
        pool.stop()


class Tmux:
    """A private tmux server (socket ``-L``) running one command in a wide window."""

    def __init__(self, label: str, command: str, width: int = 240, height: int = 60) -> None:
        self.tmux = shutil.which("tmux")
        assert self.tmux, "tmux is not installed"
        # unique per server: a name reused by the next test could find the last
        # server's socket still there while it shuts down, and the client would then
        # start a daemon server of its own
        self.sock = f"rtstat-test-{os.getpid()}-{label}-{uuid.uuid4().hex[:8]}"
        # A daemon tmux server is a session, so a scheduler autogroup, of its own: beside
        # a busy loop on every CPU such a new group can wait tens of seconds for its
        # first turn, and every tmux command waits on the server.  Run in the foreground
        # (-D), the server shares this process's group and starts at its pace.
        self.server = subprocess.Popen([self.tmux, "-D", "-L", self.sock],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self._wait_for_socket()
        self._run("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command)
        #: the tmux server's and the pane's process
        self.pids = self._run("display-message", "-p", "-t", "t", "#{pid} #{pane_pid}").split()
        # The pane is a session, so an autogroup, too.  These tests check what rtstat
        # draws, not the scheduler: the pane's group gets the weight of nice -10.
        self._favour(self.pids[1])

    def _wait_for_socket(self, timeout: float = 120.0) -> None:
        """Until the foreground server listens (its socket exists)."""
        tmpdir = os.environ.get("TMUX_TMPDIR", "/tmp")
        path = os.path.join(tmpdir, f"tmux-{os.getuid()}", self.sock)
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if self.server.poll() is not None:
                raise AssertionError(f"tmux -D exited with {self.server.returncode}")
            if time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"tmux server made no socket {path} in {timeout} s")
            time.sleep(0.05)

    @staticmethod
    def _favour(pid: str) -> None:
        """Process ``pid``'s autogroup weighs as nice -10 (root only)."""
        try:
            with open(f"/proc/{int(pid)}/autogroup", "w") as f:
                f.write("-10")
        except (OSError, ValueError):
            pass  # not permitted: the scheduler's plain share then

    def _run(self, *args: str, timeout: float = 30) -> str:
        out = subprocess.run([self.tmux, "-L", self.sock, *args], capture_output=True,
                             text=True, timeout=timeout)
        if out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def screen(self) -> str:
        """What the window shows now."""
        return self._run("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        """Type ``keys`` (tmux key names, e.g. ``q``, ``C-c``)."""
        self._run("send-keys", "-t", "t", *keys)

    def wait_for(self, pred: Callable[[str], bool], timeout: float = 180.0) -> str:
        """The first screen for which ``pred`` holds; AssertionError with the last one
        and how the server and the pane were scheduled meanwhile.  The bound is
        generous: beside a busy loop on each CPU, rtstat's start (Python, cffi) and its
        first rates take seconds, and a starved tmux server answers late; only a
        failure waits it out."""
        deadline = time.monotonic() + timeout
        screen, captured, timed_out = "", 0, 0
        before = self._schedstat()
        while time.monotonic() < deadline:
            try:
                screen = self.screen()
            except subprocess.TimeoutExpired:
                timed_out += 1  # a starved tmux server: no screen yet, wait on
                continue
            captured += 1
            if pred(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(
            f"screen never matched within {timeout} s ({captured} captures, {timed_out} "
            f"timed out; CPU ms run / waited per process since: "
            f"{self._sched_delta(before, self._schedstat())}); it shows:\n{screen}")

    def _schedstat(self) -> dict[str, tuple[int, int]]:
        """(ns run, ns waited to run) so far of the server and the pane's process."""
        out = {}
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
                    run, wait = f.read().split()[:2]
                out[pid] = (int(run), int(wait))
            except (OSError, ValueError):
                pass
        return out

    @staticmethod
    def _sched_delta(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]]) -> str:
        return ", ".join(f"{pid} {(b[pid][0] - a[pid][0]) / 1e6:.0f}/"
                         f"{(b[pid][1] - a[pid][1]) / 1e6:.0f}" for pid in a if pid in b) or "-"

    def close(self) -> None:
        """Kill this private server (and so rtstat in it)."""
        subprocess.run([self.tmux, "-L", self.sock, "kill-server"], capture_output=True,
                       timeout=10)
        self.server.kill()  # a no-op once kill-server has ended it
        self.server.wait(timeout=30)


class Table:
    """A table rtstat drew, read back from its text: a header (one to three lines over
    an underline whose runs of ``─`` mark each column's extent), then rows until a
    line that is not one (blank, or text in the first column's gap)."""

    def __init__(self, names: list[str], rows: dict[str, dict[str, str]], width: int) -> None:
        #: each column's header lines joined by spaces: ``"TX rate pkt/s"``
        self.names = names
        #: first cell -> {column name: cell}
        self.rows = rows
        #: columns of the widest line of it
        self.width = width

    def cell(self, row: str, column: str) -> str:
        """The cell of row ``row`` (its first cell) in column ``column``."""
        assert row in self.rows, f"no row {row!r} in {sorted(self.rows)}"
        assert column in self.names, f"no column {column!r} in {self.names}"
        return self.rows[row][column]


def _runs(line: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer("─+", line)]


def tables(screen: str) -> dict[str, Table]:
    """Every table on ``screen``, by the name of its first column."""
    lines = screen.splitlines()
    out: dict[str, Table] = {}
    for i, line in enumerate(lines):
        if not line.startswith("─") or set(line.rstrip()) - {"─", " "}:
            continue
        ext = _runs(line)
        cut = lambda ln, a, b: ln[a:b].strip() if len(ln) > a else ""  # noqa: E731
        gaps = [a - 1 for a, _ in ext[1:]]  # the divider before each column but the first
        head: list[str] = []
        j = i - 1
        # header lines: above the underline, up to a blank line or the table's title (a
        # line with text where the columns have their dividers)
        while j >= 0 and lines[j].strip() and all(g >= len(lines[j]) or lines[j][g] == " "
                                                  for g in gaps):
            head.insert(0, lines[j])
            j -= 1
        names = [" ".join(x for x in (cut(h, a, b) for h in head) if x) for a, b in ext]
        rows: dict[str, dict[str, str]] = {}
        k = i + 1
        while k < len(lines) and lines[k].strip() and not lines[k].startswith(" "):
            cells = [cut(lines[k], a, b) for a, b in ext]
            rows[cells[0]] = dict(zip(names, cells))
            k += 1
        width = max(len(x.rstrip()) for x in lines[i - len(head):k])
        out[names[0]] = Table(names, rows, width)
    return out


def table(screen: str, first: str) -> Table:
    """The table whose first column is ``first`` (AssertionError showing the screen)."""
    found = tables(screen)
    assert first in found, f"no table {first!r} ({sorted(found)}) on screen:\n{screen}"
    return found[first]


_SI = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3, "µ": 1e-6, "n": 1e-9}


def si_value(text: str) -> float:
    """A number rtstat printed with an SI prefix (``1.23k``, ``12.3µ``) as a float."""
    if text and text[-1] in _SI:
        return float(text[:-1]) * _SI[text[-1]]
    return float(text)
