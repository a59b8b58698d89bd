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
from .privileges import CAP_SYS_NICE, has_capability, rt_fix


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
    """Start a worker with ``cmd_fd`` inherited, in a session of its own; its output goes
    to a temporary file."""
    out = tempfile.TemporaryFile(prefix="rtudp-worker-")
    try:
        # a session of its own: Ctrl-C at the terminal, or a signal to the program's
        # process group (`timeout`, a shell's job control), reaches the program, which
        # stops its pool and so its workers; were they in its group they would exit
        # first and be seen dying (the supervisor's death still ends them: sched.c)
        proc = psutil.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            pass_fds=(cmd_fd,), close_fds=True, start_new_session=True)
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


def fifo_refusal(priority: int) -> str:
    """Why SCHED_FIFO at ``priority`` is not allowed here (the limit that binds)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    if has_capability(CAP_SYS_NICE):
        return (f"the kernel refused it although CAP_SYS_NICE is held: a container or "
                f"cgroup without real-time runtime (check cpu.rt_runtime_us / "
                f"kernel.sched_rt_runtime_us)")
    return f"RLIMIT_RTPRIO is {soft}, no CAP_SYS_NICE"


def fifo_privilege_hint(priority: int) -> str:
    """Why SCHED_FIFO at ``priority`` is not allowed here, and how to allow it."""
    why = fifo_refusal(priority)
    if has_capability(CAP_SYS_NICE):
        return why
    return f"SCHED_FIFO priority {priority} needs more: {why}; allow it with {rt_fix(priority)}"


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


__all__ = ["Spawned", "ThreadCheck", "check_threads", "fifo_privilege_hint", "fifo_refusal",
           "spawn"]
