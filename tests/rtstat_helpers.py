"""Helpers for the rtstat tests: a pool with traffic in a child process, and rtstat
running in a private tmux server whose screen the tests read with capture-pane.

Everything started here is stopped by PID (the traffic child) or by killing the
private tmux server (its own socket, so nobody else's tmux is touched), also when a
test fails.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Iterator

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
RTSTAT = os.path.join(BIN, "rtstat")


class TrafficPool:
    """``tests/traffic_pool.py`` as a child: pool ``name`` with channels rx and tx."""

    def __init__(self, name: str, rate: int = 2000) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "traffic_pool.py"),
                                      name, str(rate)], stdin=subprocess.PIPE,
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

    def wait_sent(self, n: int, timeout: float = 15.0) -> dict[str, Any]:
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
        self.sock = f"rtstat-test-{os.getpid()}-{label}"
        self._run("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command)

    def _run(self, *args: str) -> str:
        out = subprocess.run([self.tmux, "-L", self.sock, *args], capture_output=True,
                             text=True, timeout=10)
        if out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def screen(self) -> str:
        """What the window shows now."""
        return self._run("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        """Type ``keys`` (tmux key names, e.g. ``q``, ``C-c``)."""
        self._run("send-keys", "-t", "t", *keys)

    def wait_for(self, pred: Callable[[str], bool], timeout: float = 15.0) -> str:
        """The first screen for which ``pred`` holds; AssertionError with the last one."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if pred(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"screen never matched within {timeout} s; it shows:\n{screen}")

    def close(self) -> None:
        """Kill this private server (and so rtstat in it)."""
        subprocess.run([self.tmux, "-L", self.sock, "kill-server"], capture_output=True,
                       timeout=10)


def row(screen: str, name: str) -> list[str]:
    """The cells of the table row that starts with ``name`` (box characters split cells)."""
    for line in screen.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")]
        cells = [c for c in cells if c != ""]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} on screen:\n{screen}")


def header(screen: str, first: str) -> list[str]:
    """The header cells of the table whose first column is ``first``."""
    return row(screen, first)
