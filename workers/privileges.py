"""What an ordinary user's limits take from a pool, said once, with the fix.

Workers lock their memory and run SCHED_FIFO where they may.  An unprivileged user
usually may not: RLIMIT_RTPRIO is 0 and RLIMIT_MEMLOCK a few MiB.  The pool then
runs anyway (SCHED_OTHER; memory locked only while it fits the limit, the worker's
``LOCK_BOUNDED`` mode in csrc/worker/sched.c) and warns once, naming each limit and
how to lift it: :func:`privilege_message`.
"""
from __future__ import annotations

import os
import resource
import warnings

CAP_IPC_LOCK, CAP_SYS_NICE = 14, 23
MIB = 1 << 20


class PrivilegeWarning(RuntimeWarning):
    """Workers run without a real-time privilege this user lacks (the message names
    the limit and how to lift it)."""


class RtPriorityWarning(PrivilegeWarning):
    """Workers run SCHED_OTHER because SCHED_FIFO was not permitted."""


class MemoryLockWarning(PrivilegeWarning):
    """Workers lock only what RLIMIT_MEMLOCK allows; channels past it run unlocked."""


def has_capability(cap: int, pid: int | str = "self") -> bool:
    """Whether process ``pid`` holds capability ``cap`` (effective set)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> cap & 1)
    except (OSError, ValueError, IndexError):
        pass
    return pid == "self" and os.geteuid() == 0


def memlock_bounded(pid: int | str = "self") -> int | None:
    """The RLIMIT_MEMLOCK (bytes) that bounds what process ``pid`` may lock, or None
    when nothing does (the limit is unlimited, or it holds CAP_IPC_LOCK).  A worker
    inherits this process's limit; its capabilities are its own."""
    soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    if soft == resource.RLIM_INFINITY or has_capability(CAP_IPC_LOCK, pid):
        return None
    return soft


def memlock_text(limit: int) -> str:
    """``8 MiB`` (or bytes below 1 MiB)."""
    return f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit} bytes"


def rt_fix(priority: int) -> str:
    """How to allow SCHED_FIFO at ``priority`` for this user."""
    return (f"`ulimit -r {priority}` in the shell that starts it (after raising the hard "
            f"limit: '<user> - rtprio {priority}' in /etc/security/limits.conf), "
            f"LimitRTPRIO={priority} in a systemd unit, or CAP_SYS_NICE "
            f"(AmbientCapabilities=CAP_SYS_NICE, or `setcap cap_sys_nice+ep` the interpreter)")


def memlock_fix() -> str:
    """How to let the workers lock all their memory."""
    return ("`ulimit -l unlimited` in the shell that starts it (after raising the hard "
            "limit: '<user> - memlock unlimited' in /etc/security/limits.conf), "
            "LimitMEMLOCK=infinity in a systemd unit, or CAP_IPC_LOCK "
            "(AmbientCapabilities=CAP_IPC_LOCK)")


def privilege_message(pool: str, priority: int, rt_refused: str | None,
                      memlock: int | None) -> str | None:
    """The one warning of pool ``pool``: None when its workers got SCHED_FIFO (or did not
    ask: ``rt_refused`` None) and may lock all their memory (``memlock`` None), else
    each limit that binds and how to lift it."""
    lost, fixes = [], []
    if rt_refused is not None:
        lost.append(f"its workers run SCHED_OTHER, not SCHED_FIFO priority {priority} "
                    f"({rt_refused})")
        fixes.append(f"for SCHED_FIFO: {rt_fix(priority)}")
    if memlock is not None:
        lost.append(f"they lock memory only while it fits in RLIMIT_MEMLOCK "
                    f"({memlock_text(memlock)}, no CAP_IPC_LOCK): channels past it run "
                    f"unlocked and may take page faults when sending")
        fixes.append(f"to lock all memory: {memlock_fix()}")
    if not lost:
        return None
    return (f"rtudp pool {pool!r} runs without real-time privileges, so its timing is "
            f"looser: {'; '.join(lost)}.  To allow it, run as root or: {'; '.join(fixes)}")


def warn_privileges(pool: str, priority: int, rt_refused: str | None,
                    memlock: int | None) -> str | None:
    """Warn once (the message of :func:`privilege_message`) and return it, or None."""
    msg = privilege_message(pool, priority, rt_refused, memlock)
    if msg is not None:
        category = RtPriorityWarning if rt_refused is not None else MemoryLockWarning
        warnings.warn(msg, category, stacklevel=3)
    return msg


__all__ = ["MemoryLockWarning", "PrivilegeWarning", "RtPriorityWarning", "has_capability",
           "memlock_bounded", "memlock_fix", "memlock_text", "privilege_message", "rt_fix",
           "warn_privileges"]
