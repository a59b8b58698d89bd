"""One worker process: spawn it, check what the kernel gave it, explain missing privileges.

The worker pins itself and asks for SCHED_FIFO itself (before it creates threads);
the supervisor then checks every thread with ``os.sched_getaffinity`` /
``os.sched_getscheduler``, repairs what it can, and reports the rest.
"""
from __future__ import annotations

import os
import resource
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import IO, Sequence

import psutil

from ..shmring.errors import WorkerError


@dataclass
class Spawned:
    """A running worker process and the file collecting its output."""

    proc: psutil.Popen
    output: IO[bytes]

    def output_text(self, limit: int = 4000) -> str:
        """What the worker printed (stdout and stderr), at most ``limit`` chars from the end."""
        try:
            self.output.seek(0)
            text = self.output.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        return text[-limit:].strip()

    def close(self) -> None:
        """Close the output file (the process must be gone or abandoned)."""
        try:
            self.output.close()
        except OSError:
            pass


def spawn(argv: Sequence[str], cmd_fd: int) -> Spawned:
    """Start a worker with ``cmd_fd`` inherited; its output goes to a temporary file."""
    out = tempfile.TemporaryFile(prefix="rtudp-worker-")
    try:
        proc = psutil.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            pass_fds=(cmd_fd,), close_fds=True)
    except BaseException:
        out.close()
        raise
    return Spawned(proc, out)


@dataclass
class ThreadCheck:
    """What the kernel reports for a worker's threads."""

    policy: int
    priority: int
    threads: int
    problems: list[str] = field(default_factory=list)


def _has_cap_sys_nice() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 23))  # CAP_SYS_NICE
    except OSError:
        pass
    return os.geteuid() == 0


def fifo_privilege_hint(priority: int) -> str:
    """Why SCHED_FIFO at ``priority`` is not allowed here, and how to allow it."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    if _has_cap_sys_nice():
        return (f"the kernel refused SCHED_FIFO priority {priority} although CAP_SYS_NICE is "
                f"held (a container or cgroup without real-time runtime: check "
                f"cpu.rt_runtime_us / kernel.sched_rt_runtime_us)")
    return (f"SCHED_FIFO priority {priority} needs CAP_SYS_NICE or RLIMIT_RTPRIO >= {priority} "
            f"(soft limit here is {soft}): run as root, `setcap cap_sys_nice+ep` the "
            f"interpreter, or raise rtprio in /etc/security/limits.conf")


def check_threads(pid: int, cpu: int, priority: int) -> ThreadCheck:
    """Check (and repair where permitted) affinity and policy of every thread of ``pid``.

    ``priority`` 0 means SCHED_OTHER was asked for.
    """
    want_policy = os.SCHED_FIFO if priority > 0 else os.SCHED_OTHER
    try:
        tids = [t.id for t in psutil.Process(pid).threads()]
    except psutil.NoSuchProcess:
        raise WorkerError(f"worker pid {pid} exited while being checked") from None
    problems: list[str] = []
    policies: set[tuple[int, int]] = set()
    for tid in tids:
        try:
            if os.sched_getaffinity(tid) != {cpu}:
                os.sched_setaffinity(tid, {cpu})
                problems.append(f"thread {tid} was not pinned to CPU {cpu} (repaired)")
            policy = os.sched_getscheduler(tid)
            prio = os.sched_getparam(tid).sched_priority
            if (policy, prio) != (want_policy, priority if priority > 0 else 0):
                try:
                    os.sched_setscheduler(tid, want_policy, os.sched_param(priority))
                    policy, prio = want_policy, priority
                except PermissionError:
                    pass
            policies.add((policy, prio))
        except ProcessLookupError:
            continue  # a thread that ended meanwhile
    if not policies:
        raise WorkerError(f"worker pid {pid} has no threads left")
    policy, prio = min(policies)  # the weakest thread is what the worker gets
    return ThreadCheck(policy, prio, len(tids), problems)


__all__ = ["Spawned", "ThreadCheck", "check_threads", "fifo_privilege_hint", "spawn"]
