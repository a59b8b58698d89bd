"""The stress harness: seeded faults and an observer that does not trust rtudp.

Each kind's stress tests (``tests/test_stress_*.py``, marker ``stress``) build on these:

* :data:`SEED` and :func:`rng`: every random choice of a stress test derives from one
  seed (``RTUDP_STRESS_SEED``, else :data:`DEFAULT_SEED`), so a failure is replayed by
  running the test again with the seed its message names.
* :class:`CpuHogs`: a busy loop on every CPU (plain SCHED_OTHER), as CI has while
  another job runs.
* :class:`Staller` / :func:`stall_once`: a process stopped (SIGSTOP) for a few ms at
  random moments, as a host stops a vCPU; always continued (SIGCONT) again.
* :class:`WireObserver`: a plain UDP socket that records what arrives on the wire,
  with its arrival time, and counts its own kernel drops (``SO_RXQ_OVFL``), so a
  loss it reports is the sender's.
* :func:`kill_worker`, :func:`worker_pids`, :func:`wait_until`.

Everything a helper starts (processes, threads, stopped pids) is undone on leaving
its ``with`` block, also when the block raises.
"""
from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import time
from typing import Any, Callable

import psutil

from rtudp.workers.pool_context import START_TIMEOUT_S
from rtudp.workers.process import describe_threads

from background import Background
from load_helpers import worker_pids as _running_worker_pids
from waiting import wait_for

#: the seed used when ``RTUDP_STRESS_SEED`` is not set
DEFAULT_SEED = 41


def _seed_from_env() -> int:
    """``RTUDP_STRESS_SEED`` as an int, else DEFAULT_SEED; a bad value is an error naming it."""
    raw = os.environ.get("RTUDP_STRESS_SEED", "")
    if not raw.strip():
        return DEFAULT_SEED
    try:
        return int(raw, 0)
    except ValueError:
        raise ValueError(f"RTUDP_STRESS_SEED must be an integer, got {raw!r}") from None


#: every random choice of the stress tests derives from this (printed in their messages)
SEED: int = _seed_from_env()


def rng(name: str) -> random.Random:
    """A Random seeded from :data:`SEED` and ``name``: the same sequence every run of
    that seed, a different one for each name (one per test, or per part of a test)."""
    return random.Random(f"rtudp-stress:{SEED}:{name}")


def seed_note() -> str:
    """What a failure message says to replay a run: the seed."""
    return f"(RTUDP_STRESS_SEED={SEED})"


# ------------------------------------------------------------------ pool processes


def worker_pids(pool: Any) -> list[int]:
    """The pids of ``pool``'s worker processes that exist now (from its worker table)."""
    return _running_worker_pids(pool)


def channel_worker_pid(pool: Any, channel: Any) -> list[int]:
    """The pid of the worker serving ``channel`` now (a list: empty while none runs),
    for a :class:`Staller` that stops only that worker."""
    w = pool.workers()[channel.worker]
    return [w["pid"]] if w["pid"] > 0 and w["state"] == "running" else []


def _worker_index(pool: Any, pid: int) -> int:
    for w in pool.workers():
        if w["pid"] == pid:
            return int(w["index"])
    raise ValueError(f"pid {pid} is not a worker of pool {pool.name!r}: its workers are "
                     f"{[w['pid'] for w in pool.workers()]}")


def kill_worker(pool: Any, pid: int, wait: bool = True,
                timeout: float = START_TIMEOUT_S + 5.0) -> None:
    """SIGKILL worker ``pid`` of ``pool``; the supervisor restarts it.  With ``wait``,
    return only once a successor runs in its slot (AssertionError after ``timeout`` s)."""
    index = _worker_index(pool, pid)
    os.kill(pid, signal.SIGKILL)
    if not wait:
        return

    def successor_runs() -> bool:
        w = pool.workers()[index]
        return w["pid"] not in (0, pid) and w["state"] == "running"

    try:
        wait_until(successor_runs, timeout, f"a successor of worker {index} (pid {pid}) running")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the pool's worker table: {pool.workers()[index]}; "
                             f"this process and its children:\n{_where_all()}") from None


def _where_all() -> str:
    """Where each thread of this process and of its children waits (describe_threads)."""
    me = psutil.Process()
    return "\n".join(f"pid {p.pid} {p.name()}:\n{describe_threads(p.pid)}"
                     for p in [me, *me.children(recursive=True)])


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``pred`` until it is true; AssertionError naming ``what`` after ``timeout`` s."""
    if not wait_for(pred, timeout, step=0.005):
        raise AssertionError(f"not within {timeout} s: {what}")


# ------------------------------------------------------------------ CPU hogs


class CpuHogs:
    """A busy loop (``sh``, SCHED_OTHER, nice 0) pinned to each CPU of ``cpus``
    (default: every CPU this process may use), for the ``with`` block; killed and
    reaped on leaving it, also when the block raises."""

    def __init__(self, cpus: list[int] | None = None) -> None:
        self.cpus: list[int] = sorted(os.sched_getaffinity(0)) if cpus is None else list(cpus)
        if not self.cpus:
            raise ValueError("CpuHogs needs at least one CPU, got an empty list")
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> "CpuHogs":
        try:
            for cpu in self.cpus:
                self.procs.append(self._start(cpu))
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    @staticmethod
    def _start(cpu: int) -> "subprocess.Popen[bytes]":
        proc = subprocess.Popen(["sh", "-c", "while :; do :; done"], stdin=subprocess.DEVNULL)
        try:
            os.sched_setaffinity(proc.pid, {cpu})
            # a plain policy whatever this process has: a hog must not outrank a worker
            os.sched_setscheduler(proc.pid, os.SCHED_OTHER, os.sched_param(0))
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return proc

    def _stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        for p in self.procs:
            p.wait()
        self.procs.clear()

    @property
    def pids(self) -> list[int]:
        """The hogs' pids (empty outside the ``with`` block)."""
        return [p.pid for p in self.procs]


# ------------------------------------------------------------------ stalls


def _signal(pid: int, sig: int) -> bool:
    """Send ``sig`` to ``pid``; False if the process is gone (a killed worker)."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def stall_once(pid: int, seconds: float) -> None:
    """Stop ``pid`` (SIGSTOP) for ``seconds``, then continue it (SIGCONT, always)."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds!r}")
    if not _signal(pid, signal.SIGSTOP):
        return
    try:
        time.sleep(seconds)
    finally:
        _signal(pid, signal.SIGCONT)


class Staller(Background):
    """For the ``with`` block, a thread stops one of ``pids_fn()`` (chosen by ``rnd``)
    for a random ``stop_ms`` range of ms, waits a random ``gap_ms`` range of ms, and so
    on: a host stopping a vCPU now and then.  A stopped process is always continued,
    also when the block raises.  ``stalls`` records each stall as (pid, start as
    ``time.monotonic()``, duration in s as it happened)."""

    def __init__(self, pids_fn: Callable[[], list[int]], rnd: random.Random,
                 stop_ms: tuple[float, float] = (1.0, 20.0),
                 gap_ms: tuple[float, float] = (5.0, 50.0)) -> None:
        for what, (lo, hi) in (("stop_ms", stop_ms), ("gap_ms", gap_ms)):
            if not 0 <= lo <= hi:
                raise ValueError(f"{what} must be (low, high) with 0 <= low <= high, "
                                 f"got {(lo, hi)!r}")
        super().__init__()
        self.pids_fn = pids_fn
        self.rnd = rnd
        self.stop_ms = stop_ms
        self.gap_ms = gap_ms
        self.stalls: list[tuple[int, float, float]] = []
        self._stopped: int | None = None   # the pid stopped right now

    def _run(self) -> None:
        while not self._stop.wait(self.rnd.uniform(*self.gap_ms) / 1000):
            pids = self.pids_fn()
            if not pids:
                continue
            pid = self.rnd.choice(pids)
            dur = self.rnd.uniform(*self.stop_ms) / 1000
            if not _signal(pid, signal.SIGSTOP):
                continue
            self._stopped = pid
            t0 = time.monotonic()
            try:
                time.sleep(dur)
            finally:
                _signal(pid, signal.SIGCONT)
                self._stopped = None
            self.stalls.append((pid, t0, time.monotonic() - t0))

    def _close(self) -> None:
        pid = self._stopped  # only if the thread died mid-stall: continue it anyway
        if pid is not None:
            _signal(pid, signal.SIGCONT)

    def wait_stalls(self, count: int, timeout: float) -> None:
        """Return once ``count`` stalls are done (a test's traffic runs until then, so it
        sees that many however fast the machine is); AssertionError after ``timeout`` s."""
        wait_until(lambda: len(self.stalls) >= count, timeout, f"{count} stalls of a worker")

    def summary(self) -> str:
        """How many stalls, of how long in all and at most (for a test's report)."""
        if not self.stalls:
            return "no stalls"
        durs = [d for _, _, d in self.stalls]
        return (f"{len(durs)} stalls, {sum(durs) * 1000:.0f} ms in all, longest "
                f"{max(durs) * 1000:.1f} ms")


# ------------------------------------------------------------------ the wire


SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)   # Linux: the socket's drop count
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux: SO_RCVBUF past rmem_max
_U32 = struct.Struct("=I")


class WireObserver(Background):
    """A plain UDP socket (not rtudp) bound to 127.0.0.1:``port`` (0: any free port);
    for the ``with`` block a thread records every datagram that arrives as
    ``(payload, time.monotonic_ns() when read)`` in :attr:`packets` (append-only).
    :attr:`kernel_drops` counts what this socket's own buffer (``rcvbuf`` bytes,
    forced past ``rmem_max`` when the process may) dropped: a loss the observer
    reports with ``kernel_drops == 0`` is the sender's."""

    def __init__(self, port: int = 0, rcvbuf: int = 4 << 20) -> None:
        super().__init__()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._size_buffer(rcvbuf)
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
            self.sock.bind(("127.0.0.1", port))
            self.sock.settimeout(0.02)
        except BaseException:
            self.sock.close()
            raise
        self.packets: list[tuple[bytes, int]] = []
        self.kernel_drops = 0

    def _size_buffer(self, rcvbuf: int) -> None:
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)

    @property
    def addr(self) -> tuple[str, int]:
        """(host, port) to send to."""
        host, port = self.sock.getsockname()[:2]
        return host, port

    def _run(self) -> None:
        anc = socket.CMSG_SPACE(_U32.size)
        while not self._stop.is_set():
            try:
                data, cmsgs, _, _ = self.sock.recvmsg(65536, anc)
            except socket.timeout:
                continue
            self.packets.append((data, time.monotonic_ns()))
            for level, kind, raw in cmsgs:
                if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(raw) >= 4:
                    self.kernel_drops = _U32.unpack_from(raw)[0]

    def _close(self) -> None:
        self.sock.close()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Whether :attr:`packets` holds ``count`` datagrams within ``timeout`` s."""
        return wait_for(lambda: len(self.packets) >= count, timeout, step=0.005)

    def payloads(self) -> list[bytes]:
        """What arrived so far, in arrival order."""
        return [p for p, _ in list(self.packets)]


__all__ = ["SEED", "DEFAULT_SEED", "CpuHogs", "Staller", "WireObserver", "channel_worker_pid",
           "kill_worker", "rng", "seed_note", "stall_once", "wait_until", "worker_pids"]
