"""Which pools exist, which are alive, and removing what dead ones left behind.

A supervisor holds the abstract Unix socket name ``\\0rtudp.pool.<pool>`` for its
pool's whole life.  The kernel releases it when the process dies however it dies,
so it is both the lock that lets one supervisor at a time start a pool and the
proof that a pool's supervisor is alive.  The control segment's supervisor pid and
heartbeat are checked too, so a pool is never touched when either says it lives.
"""
from __future__ import annotations

import errno
import os
import socket
import time
from typing import Literal

import psutil

from ..shmring._native import ffi, lib
from ..shmring.control import ControlSegment, pool_name
from ..shmring.errors import BadSegmentError, PoolNotRunningError, PoolRunningError
from ..shmring.segment import PREFIX

SHM_DIR = "/dev/shm"
PoolState = Literal["running", "stale", "absent"]


def _lock_address(pool: str) -> bytes:
    return b"\0rtudp.pool." + pool.encode()


def take_lock(pool: str) -> socket.socket | None:
    """Hold the pool's supervisor lock; None if a live process holds it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.bind(_lock_address(pool_name(pool)))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            return None
        raise
    return sock


#: how long a starting supervisor tries for the lock: a look at the pool's state
#: (pool_state, rtstat, ``rtudp pool status``) holds it a moment, a supervisor for good
LOCK_PATIENCE_S = 0.5


def take_lock_to_start(pool: str) -> socket.socket | None:
    """take_lock for a supervisor about to start: tried again for LOCK_PATIENCE_S, so
    that another process looking at the pool's state just then does not pass for a
    live supervisor; None if one holds it."""
    deadline = time.monotonic() + LOCK_PATIENCE_S
    while (lock := take_lock(pool)) is None and time.monotonic() < deadline:
        time.sleep(0.002)
    return lock


def process_alive(pid: int) -> bool:
    """``pid`` is a process that has not exited (a zombie has; one we may not inspect
    counts as alive)."""
    if pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def segment_files(pool: str) -> list[str]:
    """The pool's segments in /dev/shm: ``rtudp.<pool>`` and ``rtudp.<pool>.*``."""
    pool = pool_name(pool)
    base = PREFIX + pool
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:  # pragma: no cover
        return []
    return sorted(e for e in entries if e == base or e.startswith(base + "."))


def _foreign_segment(pool: str) -> bool:
    """True if /dev/shm/rtudp.<pool> is a valid rtudp segment of another kind (a ring,
    say): then it is not a pool, and nothing here may remove it."""
    hdr = ffi.sizeof("struct rtudp_segment_header")
    try:
        with open(os.path.join(SHM_DIR, PREFIX + pool), "rb") as f:
            head = f.read(hdr)
    except OSError:
        return False
    if len(head) < hdr:
        return False
    h = ffi.cast("struct rtudp_segment_header *", ffi.from_buffer(head))
    return (h.magic == lib.RTUDP_SEG_MAGIC and h.layout_version == lib.RTUDP_LAYOUT_VERSION
            and h.kind != lib.RTUDP_SEG_CONTROL)


def _supervisor_from_segment(pool: str) -> tuple[int, bool] | None:
    """(pid, alive) as the control segment says; None if there is no valid one."""
    try:
        ctl = ControlSegment.open(pool)
    except (PoolNotRunningError, BadSegmentError, PermissionError):
        return None
    try:
        pid = ctl.supervisor_pid
        alive = process_alive(pid) and ctl.heartbeat_age_ns() < 2_000_000_000
        return pid, alive
    finally:
        ctl.close()


def pool_state(pool: str | None = None) -> PoolState:
    """``running`` (a live supervisor), ``stale`` (segments, no supervisor) or ``absent``."""
    pool = pool_name(pool)
    lock = take_lock(pool)
    if lock is None:
        return "running"
    try:
        seg = _supervisor_from_segment(pool)
        if seg is not None and seg[1]:
            return "running"
        return "stale" if segment_files(pool) else "absent"
    finally:
        lock.close()


def unlink_segments(pool: str) -> list[str]:
    """Remove every segment of ``pool`` (caller holds the lock); returns what it removed."""
    removed = []
    for entry in segment_files(pool):
        try:
            os.unlink(os.path.join(SHM_DIR, entry))
            removed.append(entry)
        except FileNotFoundError:
            pass
    return removed


def clean_stale(pool: str, lock: socket.socket | None = None) -> list[str]:
    """Remove the segments of ``pool`` if its supervisor is dead; PoolRunningError if alive.

    ``lock``: the pool's lock, if the caller already holds it (a starting supervisor).
    """
    pool = pool_name(pool)
    own = lock is None
    if own:
        lock = take_lock(pool)
        if lock is None:
            raise PoolRunningError(f"pool {pool!r} has a live supervisor (it holds the pool "
                                   f"lock): not touching it")
    try:
        if _foreign_segment(pool):
            raise ValueError(f"/dev/shm/{PREFIX}{pool} is not a pool's control segment (it is "
                             f"another rtudp segment, e.g. a ring): not touching it")
        seg = _supervisor_from_segment(pool)
        if seg is not None and seg[1]:
            raise PoolRunningError(f"pool {pool!r} has a live supervisor (pid {seg[0]}, "
                                   f"fresh heartbeat): not touching it")
        return unlink_segments(pool)
    finally:
        if own:
            lock.close()


def list_pools() -> dict[str, PoolState]:
    """Every pool with a control segment in /dev/shm, and its state."""
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:  # pragma: no cover
        return {}
    out: dict[str, PoolState] = {}
    for e in sorted(entries):
        if e.startswith(PREFIX) and "." not in e[len(PREFIX):]:
            name = e[len(PREFIX):]
            if _foreign_segment(name):
                continue
            try:
                out[name] = pool_state(name)
            except ValueError:
                continue
    return out


__all__ = ["PoolState", "clean_stale", "list_pools", "pool_state", "segment_files",
           "take_lock", "take_lock_to_start", "unlink_segments"]
