"""One worker process: spawn it, check what the kernel gave it, explain missing privileges.

The worker pins itself and asks for SCHED_FIFO itself (before it creates threads);
the supervisor then checks every thread with ``os.sched_getaffinity`` /
``os.sched_getscheduler``, repairs what it can, and reports the rest.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, Sequence

import psutil

from ..shmring.control import stat_fields
from ..shmring.errors import WorkerError
from .privileges import CAP_SYS_NICE, has_capability, rt_fix


#: A worker runs in a process group of its own: Ctrl-C at the terminal, or a signal to
#: the program's process group (`timeout`, a shell's job control), reaches the program,
#: which stops its pool and so its workers; were they in its group they would exit
#: first and be seen dying (the supervisor's death still ends them: sched.c).  Not in a
#: session of its own: setsid() moves a process into a new scheduler autogroup, and a
#: worker so moved beside busy tasks on a CPU was seen never to run again (Linux 6.18,
#: kernel.sched_autogroup_enabled=1: the restart hung).  Python 3.10 has no
#: process_group: there the worker gets a session.
_OWN_GROUP: dict[str, Any] = ({"process_group": 0} if sys.version_info >= (3, 11)
                              else {"start_new_session": True})


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
    """Start a worker with ``cmd_fd`` inherited, in a process group of its own; its
    output goes to a temporary file."""
    out = tempfile.TemporaryFile(prefix="rtudp-worker-")
    try:
        proc = psutil.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            pass_fds=(cmd_fd,), close_fds=True, **_OWN_GROUP)
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


#: the name of a worker's conductor thread (csrc/worker/conductor.h): it runs at
#: SCHED_OTHER by design, on the worker's CPU, in the time the real-time threads leave,
#: so its policy is neither repaired nor counted as the worker's
CONDUCTOR_THREAD = "rtudp-conductor"


def is_conductor(pid: int, tid: int) -> bool:
    """Whether thread ``tid`` of ``pid`` is a worker's conductor thread."""
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            return f.read().strip() == CONDUCTOR_THREAD
    except OSError:
        return False


def conductor_tid(pid: int) -> int | None:
    """The id of worker ``pid``'s conductor thread; None if it has none (yet) or is
    gone."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except (OSError, ValueError):
        return None
    return next((tid for tid in tids if is_conductor(pid, tid)), None)


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
            if is_conductor(pid, tid):
                continue
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


def describe_threads(pid: int) -> str:
    """Where each thread of ``pid`` is, as /proc tells it: state, CPU, policy and the
    kernel function it waits in (its kernel stack where readable), for the error of a
    worker that does not start in time."""
    lines: list[str] = []
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError as exc:
        return f"(its threads cannot be read: {exc})"
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/stat", "rb") as f:
                fields = stat_fields(f.read())
            state, cpu, policy = (fields[i].decode() for i in (0, 36, 38))
        except (OSError, ValueError, IndexError) as exc:
            lines.append(f"thread {tid}: gone or unreadable ({exc})")
            continue
        wchan = _read_text(f"{base}/wchan") or "-"
        ran, waited = _schedstat_s(f"{base}/schedstat")
        stack = " < ".join(ln.split("]", 1)[-1].strip().split("+")[0]
                           for ln in _read_text(f"{base}/stack").splitlines()[:8])
        lines.append(f"thread {tid}: state {state}, CPU {cpu}, policy {policy}, ran "
                     f"{ran:.3f} s, waited to run {waited:.3f} s, waits in {wchan}"
                     + (f" ({stack})" if stack else ""))
    return "\n".join(lines)


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _schedstat_s(path: str) -> tuple[float, float]:
    """(time on a CPU, time runnable but waiting for one) in s, from a schedstat file."""
    try:
        ran, waited = _read_text(path).split()[:2]
        return int(ran) / 1e9, int(waited) / 1e9
    except ValueError:
        return float("nan"), float("nan")


__all__ = ["Spawned", "ThreadCheck", "check_threads", "conductor_tid", "describe_threads",
           "fifo_privilege_hint", "fifo_refusal", "spawn"]
