"""A pool's worker processes: spawn, check, watch, restart, stop.

:class:`Watcher` runs the pool's supervisor thread (:meth:`Watcher.run`): it spawns
one ``rtudp-worker`` per CPU (a worker's PR_SET_PDEATHSIG follows the *thread* that
forked it, so they all come from this long-lived thread), waits until they run,
then watches them through pidfds and restarts a dead one at once on the same CPU.
The restarted worker gets its channels back through the ``readd`` callback the pool
gives (:meth:`rtudp.workers.channel_table.ChannelTable.readd`): the same sockets,
the same rings.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import psutil

from ..shmring._native import lib
from ..shmring.errors import PoolNotRunningError, WorkerError
from .link import WorkerLink
from . import pool_context
from .pool_context import HEARTBEAT_S, STOP_GRACE_S, PoolContext
from .privileges import RtPriorityWarning, memlock_bounded, warn_privileges
from .process import Spawned, check_threads, describe_threads, fifo_refusal, spawn
from .mechanisms import worker_args as mechanism_args
from .tunables import worker_args

log = logging.getLogger("rtudp.workers")


@contextlib.contextmanager
def normal_priority() -> Iterator[None]:
    """Run the block with the calling thread at SCHED_OTHER, then give it its policy back
    (a no-op for a thread that is not real-time).

    Why: reaping a process makes the kernel drop its /proc dentries, and that waits
    (d_invalidate, busy with cond_resched) for any task that holds one of them on a
    shrink list: memory reclaim, another process's exit.  A reaper at SCHED_FIFO above
    that task on the same CPU never lets it finish, and spins in the kernel for good,
    its CPU lost to every task below it (the pool's workers included).  Every wait for a
    process of the watching thread goes through here.
    """
    tid = threading.get_native_id()
    try:
        policy = os.sched_getscheduler(tid)
        param = os.sched_getparam(tid)
    except OSError:
        policy = os.SCHED_OTHER
    if policy & ~os.SCHED_RESET_ON_FORK == os.SCHED_OTHER:
        yield
        return
    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
    try:
        yield
    finally:
        try:
            os.sched_setscheduler(tid, policy, param)
        except OSError as exc:  # the limit was lowered under us: watch on at SCHED_OTHER
            log.warning("the supervisor thread stays SCHED_OTHER: %s", exc)


def exited(proc: psutil.Popen) -> int | None:
    """The exit code of ``proc`` once it has exited (it is reaped, at normal priority:
    :func:`normal_priority`), else None.  Asking costs one system call."""
    try:
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            return None
    except ChildProcessError:
        pass  # reaped already: poll() returns its code
    with normal_priority():
        return proc.poll()


def wait_reaped(proc: psutil.Popen, timeout: float) -> None:
    """Wait up to ``timeout`` s for ``proc`` to exit and reap it, at normal priority
    (:func:`normal_priority`); psutil.TimeoutExpired if it has not."""
    with normal_priority():
        proc.wait(timeout)

WATCH_ERROR_PAUSE_S = 0.05          # after a failed poll: never a tight loop


@dataclass
class Worker:
    """The supervisor's handle on the worker of one CPU (its process changes on a
    restart; ``gen`` counts them, ``ready`` is set while one runs)."""

    index: int
    cpu: int
    link: WorkerLink | None = None
    spawned: Spawned | None = None
    pidfd: int | None = None
    gen: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    retry_at: float = 0.0
    backoff: float = 0.2


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # old kernel: fall back to polling
        return None


class Watcher:
    """The worker processes of one pool (see the module docstring).

    ``argv`` is the worker command; ``readd(worker)`` gives a restarted worker its
    channels back and returns how many (it may raise, which fails the restart).
    """

    def __init__(self, ctx: PoolContext, cpus: Sequence[int], idle: str,
                 tunables: Mapping[str, Any], pacer_off: Sequence[str], argv: Sequence[str],
                 readd: Callable[[Worker], int]) -> None:
        self._ctx = ctx
        #: the pool's idle strategy, given to each worker
        self.idle = idle
        #: every tunable's value (tunables.resolve), given to each worker
        self.tunables = dict(tunables)
        self.rt_priority: int = self.tunables["rt_priority"]
        #: the pacer mechanisms switched off (mechanisms.check_off)
        self.pacer_off = tuple(pacer_off)
        self._argv_base = list(argv)
        self._readd = readd
        self.workers: list[Worker] = [Worker(i, c) for i, c in enumerate(cpus)]
        self._wake_r = self._wake_w = -1
        self._warned_policy = False

    @property
    def name(self) -> str:
        return self._ctx.name

    # ------------------------------------------------------------ the pool's start / stop

    def open_wake_pipe(self) -> None:
        """The pipe that wakes the watching thread (:meth:`wake`); before :meth:`run`."""
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def close_wake_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def wake(self) -> None:
        """Make the watching thread look (the pool stops)."""
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def stop_workers(self) -> None:
        """Ask every running worker to exit (the pool stops)."""
        for w in self.workers:
            if w.link is not None:
                w.link.send_stop()

    def reap(self) -> None:
        """Wait for the workers to exit, STOP_GRACE_S in all; kill the ones that do not."""
        deadline = time.monotonic() + STOP_GRACE_S
        for w in self.workers:
            if w.spawned is None:
                continue
            proc = w.spawned.proc
            try:
                wait_reaped(proc, max(0.0, deadline - time.monotonic()))
            except Exception:  # psutil.TimeoutExpired / subprocess.TimeoutExpired
                log.warning("pool %r: worker %d (pid %d) did not stop, killing it",
                            self.name, w.index, proc.pid)
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    wait_reaped(proc, 5)
                except Exception:
                    pass

    def forget_all(self) -> None:
        """Close every worker's pidfd, link and process handle (the pool is released)."""
        for w in self.workers:
            self._forget_process(w)

    # ------------------------------------------------------------ the supervisor thread

    def _watch_at_rt_priority(self) -> None:
        """Run this (the watching) thread SCHED_FIFO one above the workers.

        Why: busy SCHED_FIFO workers can starve a SCHED_OTHER thread for seconds (the
        RT throttle leaves it 5 %), and this thread is the one that restarts a dead
        worker.  It mostly sleeps in select().  SCHED_RESET_ON_FORK: the worker
        processes it spawns start SCHED_OTHER and set their own priority.
        """
        if self.rt_priority <= 0:
            return
        prio = min(self.rt_priority + 1, os.sched_get_priority_max(os.SCHED_FIFO))
        try:
            os.sched_setscheduler(threading.get_native_id(),
                                  os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(prio))
        except OSError as exc:  # not permitted: the workers' warning already says why
            log.info("pool %r: the supervisor thread stays SCHED_OTHER: %s", self.name, exc)

    def run(self) -> None:
        """The supervisor thread: start the workers (``ctx.started`` set, with
        ``ctx.start_error`` if they failed), then watch them until the pool stops."""
        ctx = self._ctx
        self._watch_at_rt_priority()
        try:
            for w in self.workers:
                self._spawn_worker(w)
            self._wait_running(self.workers)
            for w in self.workers:
                self._verify(w)
                w.ready.set()
        except BaseException as exc:  # handed to start(), which raises it
            ctx.start_error = exc
            ctx.started.set()
            return
        ctx.started.set()
        while not ctx.stopping.is_set():
            try:
                self._watch_once()
            except Exception:  # noqa: BLE001 - this thread restarts workers: it must live
                if ctx.stopping.is_set():
                    return  # the pool stopped under it (segments unmapped, fds closed)
                log.exception("pool %r: watching the workers failed; watching on", self.name)
                ctx.stopping.wait(WATCH_ERROR_PAUSE_S)

    def _watch_once(self) -> None:
        fds = [self._wake_r] + [w.pidfd for w in self.workers if w.pidfd is not None]
        polling = any(w.spawned is not None and w.pidfd is None for w in self.workers)
        retry = [w.retry_at for w in self.workers if w.spawned is None]
        # with a pidfd for every worker there is nothing to look at until one becomes
        # readable (a death) or the wake pipe does (stop): no timeout.  This thread
        # runs SCHED_FIFO above the workers, so a periodic wake-up would preempt a
        # worker's deadline spin each time (seen: 162 µs every 100 ms)
        timeout: float | None = 0.02 if polling else None
        if retry:
            timeout = max(0.0, min(timeout or HEARTBEAT_S, min(retry) - time.monotonic()))
        # poll, not select: a pool with many channels holds fds past select's 1024
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        try:
            events = poller.poll(None if timeout is None else timeout * 1000)
            if any(ev & select.POLLNVAL for _, ev in events):
                raise OSError(errno.EBADF, "an fd was closed while being watched")
            os.read(self._wake_r, 512)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            # an fd closed under us (a teardown racing this thread): this thread may
            # run SCHED_FIFO above the workers, so it must never retry in a tight loop;
            # a spinning SCHED_FIFO thread starves its CPU into the RT throttle
            log.debug("pool %r: watching: %s", self.name, exc)
            self._ctx.stopping.wait(WATCH_ERROR_PAUSE_S)
            return
        if self._ctx.stopping.is_set():
            return
        now = time.monotonic()
        for w in self.workers:
            if w.spawned is not None and exited(w.spawned.proc) is not None:
                self._on_death(w)
            if w.spawned is None and now >= w.retry_at and not self._ctx.stopping.is_set():
                self._restart(w)

    # ------------------------------------------------------------ one worker

    def _argv(self, w: Worker, cmd_fd: int) -> list[str]:
        argv = [*self._argv_base, "--pool", self.name, "--worker-id", str(w.index),
                "--cmd-fd", str(cmd_fd), "--cpu", str(w.cpu)]
        return argv + worker_args(self.idle, self.tunables) + mechanism_args(self.pacer_off)

    def _spawn_worker(self, w: Worker) -> None:
        ctl = self._ctx.control if not self._ctx.stopping.is_set() else None
        if ctl is None:
            raise PoolNotRunningError(f"pool {self.name!r} is stopping")
        slot = ctl.worker(w.index)
        slot.state = lib.RTUDP_WORKER_STARTING
        slot.cpu = w.cpu
        slot.pid = 0
        slot.policy = slot.priority = 0
        link = WorkerLink(w.index, lambda i=w.index: ctl.post_command(i))
        try:
            spawned = spawn(self._argv(w, link.child_fd()), link.child_fd())
        except BaseException:
            link.close()
            raise
        link.spawned()
        with self._ctx.lock:
            w.link, w.spawned = link, spawned
            w.pidfd = _pidfd(spawned.proc.pid)
            w.gen += 1
        slot.pid = spawned.proc.pid
        slot.started_ns = time.monotonic_ns()

    def _wait_running(self, workers: list[Worker]) -> None:
        """Return once each of ``workers`` reports RUNNING.  One still starting after
        START_SLOW_S is logged (with where its threads wait); WorkerError if one exits
        first, or has not reported RUNNING after START_TIMEOUT_S."""
        started = time.monotonic()
        slow_at = started + pool_context.START_SLOW_S
        deadline = started + pool_context.START_TIMEOUT_S
        ctl = self._ctx.control
        pending = list(workers)
        while pending:
            for w in list(pending):
                assert w.spawned is not None
                if ctl.worker(w.index).state == lib.RTUDP_WORKER_RUNNING:
                    pending.remove(w)  # (if it dies from now on, the watcher restarts it)
                    continue
                rc = exited(w.spawned.proc)
                if rc is not None:
                    raise WorkerError(
                        f"worker {w.index} of pool {self.name!r} (CPU {w.cpu}) exited with "
                        f"code {rc} before it was running; its output:\n"
                        f"{w.spawned.output_text() or '(nothing)'}")
            if not pending:
                return
            if self._ctx.stopping.is_set():
                raise PoolNotRunningError(f"pool {self.name!r} stopped while workers started")
            now = time.monotonic()
            if now > deadline:
                w = pending[0]
                raise WorkerError(f"{self._describe(w)} did not report RUNNING within "
                                  f"{pool_context.START_TIMEOUT_S} s; {self._where(w)}")
            if now > slow_at:
                slow_at = deadline  # once a wait
                for w in pending:
                    log.warning("pool %r: %s has not reported RUNNING after %.1f s, waiting on "
                                "(%.0f s at most); %s", self.name, self._describe(w),
                                now - started, pool_context.START_TIMEOUT_S, self._where(w))
            time.sleep(0.002)

    def _describe(self, w: Worker) -> str:
        assert w.spawned is not None
        return f"worker {w.index} of pool {self.name!r} (CPU {w.cpu}, pid {w.spawned.proc.pid})"

    @staticmethod
    def _where(w: Worker) -> str:
        """Where a starting worker's threads wait, and what it printed."""
        assert w.spawned is not None
        return (f"its threads:\n{describe_threads(w.spawned.proc.pid)}\n"
                f"its output:\n{w.spawned.output_text() or '(nothing)'}")

    def _verify(self, w: Worker) -> None:
        assert w.spawned is not None
        check = check_threads(w.spawned.proc.pid, w.cpu, self.rt_priority)
        for p in check.problems:
            log.warning("pool %r worker %d: %s", self.name, w.index, p)
        slot = self._ctx.control.worker(w.index)
        slot.policy, slot.priority = check.policy, check.priority
        if not self._warned_policy:
            # once a pool: each limit the user's privileges put on it, and the fix
            self._warned_policy = True
            refused = (fifo_refusal(self.rt_priority)
                       if self.rt_priority > 0 and check.policy != os.SCHED_FIFO else None)
            msg = warn_privileges(self.name, self.rt_priority, refused,
                                  memlock_bounded(w.spawned.proc.pid))
            if msg is not None:
                log.info("%s", msg)  # (the warning is what users see: not twice)

    def _forget_process(self, w: Worker) -> None:
        if w.pidfd is not None:
            os.close(w.pidfd)
            w.pidfd = None
        if w.link is not None:
            w.link.close()
            w.link = None
        if w.spawned is not None:
            w.spawned.close()
            w.spawned = None

    def _on_death(self, w: Worker) -> None:
        """A worker process ended: mark it dead and forget it (the watcher restarts it).
        A death seen while the pool stops (stop() ends them all) is the stop's: no
        restart, no warning, and nothing raised (the control segment may be gone)."""
        assert w.spawned is not None
        w.ready.clear()
        rc = w.spawned.proc.returncode
        with self._ctx.lock:
            ctl = self._ctx.live_control()
            if ctl is None:
                log.debug("pool %r: worker %d (pid %d) ended with code %s as the pool stops",
                          self.name, w.index, w.spawned.proc.pid, rc)
            else:
                out = w.spawned.output_text(1000)
                log.warning("pool %r: worker %d (CPU %d, pid %d) died with code %s; restarting "
                            "it%s", self.name, w.index, w.cpu, w.spawned.proc.pid, rc,
                            f"; its output:\n{out}" if out else "")
                ctl.worker(w.index).state = lib.RTUDP_WORKER_DEAD
            self._forget_process(w)
        w.retry_at = 0.0

    def _restart(self, w: Worker) -> None:
        with self._ctx.lock:
            ctl = self._ctx.live_control()
            if ctl is None:
                return  # the pool stopped since the death was seen: nothing to restart
            slot = ctl.worker(w.index)
        try:
            self._spawn_worker(w)
            self._wait_running([w])
            # a restart is a successor that runs: an attempt given up is not one
            slot.restarts += 1
            self._verify(w)
            readded = self._readd(w)
        except BaseException as exc:
            if self._ctx.stopping.is_set():
                return
            log.error("pool %r: restarting worker %d failed (retry in %.1f s): %s",
                      self.name, w.index, w.backoff, exc)
            if w.spawned is not None:
                try:
                    os.kill(w.spawned.proc.pid, signal.SIGKILL)
                    wait_reaped(w.spawned.proc, 5)
                except Exception:
                    pass
            with self._ctx.lock:
                self._forget_process(w)
            w.retry_at = time.monotonic() + w.backoff
            w.backoff = min(w.backoff * 2, 5.0)
            return
        w.backoff = 0.2
        with self._ctx.lock:
            w.ready.set()
        log.info("pool %r: worker %d restarted (pid %d), %d channel(s) re-added", self.name,
                 w.index, slot.pid, readded)


__all__ = ["RtPriorityWarning", "Watcher", "Worker"]
