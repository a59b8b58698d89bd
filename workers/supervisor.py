"""The supervisor: one pool of pinned ``rtudp-worker`` processes, its channels, its cleanup.

:class:`Pool` creates the control segment ``/rtudp.<pool>``, starts one worker per
CPU, keeps the pool's heartbeat, restarts a worker that dies (same CPU, same
channels, same sockets), opens and closes channels, and on :meth:`Pool.stop`
(or at exit, also after Ctrl-C) stops the workers and unlinks every segment.

Threads: a heartbeat thread writes ``pool.heartbeat_ns`` every 100 ms; the
supervisor thread spawns the workers (a worker's PR_SET_PDEATHSIG follows the
*thread* that forked it, so they all come from this long-lived thread) and
watches them through pidfds, restarting a dead one at once.
"""
from __future__ import annotations

import atexit
import errno
import logging
import os
import select
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import psutil

from ..shmring._native import lib
from ..shmring.channel import DEFAULT_MAX_DATAGRAM, MAX_DATAGRAM, ChannelSegment
from ..shmring.control import ControlSegment, channel_segment_name, pool_name
from ..shmring.errors import (ChannelNotFoundError, PoolNotRunningError, PoolRunningError,
                              WorkerError)
from ..shmring.segment import shm_path, validate_name
from .binary import worker_path
from .commands import CommandServer
from .kinds import kind_spec
from .link import WorkerGone, WorkerLink
from .process import Spawned, check_threads, fifo_privilege_hint, spawn
from .registry import clean_stale, take_lock, unlink_segments
from .sockets import BoundSocket, bind_socket

log = logging.getLogger("rtudp.workers")

HEARTBEAT_S = 0.1
WATCH_ERROR_PAUSE_S = 0.05          # after a failed select: never a tight loop
#: the share of a CPU a worker may spin before deadlines (rtudp-worker --spin-budget)
DEFAULT_SPIN_BUDGET = 0.1
MAX_SPIN_BUDGET = 1.0
START_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 5.0
STOP_GRACE_S = 2.0
MAX_CAPACITY = 1 << 20


class RtPriorityWarning(RuntimeWarning):
    """Workers run SCHED_OTHER because SCHED_FIFO was not permitted."""


@dataclass
class _Worker:
    index: int
    cpu: int
    link: WorkerLink | None = None
    spawned: Spawned | None = None
    pidfd: int | None = None
    gen: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    retry_at: float = 0.0
    backoff: float = 0.2


@dataclass
class _Chan:
    name: str
    slot: int
    worker: int
    sock: BoundSocket
    seg: ChannelSegment
    added_gen: int = -1
    paused: bool = False  # taken off its worker; queued records wait in the TX ring
    owner: "psutil.Process | None" = None  # the client that asked for it (command ring)


def _check_int(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}: {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what}={value!r} is out of range {low}..{high}")
    return value


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # old kernel: fall back to polling
        return None


class Pool:
    """A pool of workers, one per CPU, and the channels they serve.

    ``name`` None -> ``$RTUDP_POOL`` or ``"default"``; ``cpus`` None -> every CPU
    this process may run on; ``rt_priority`` the SCHED_FIFO priority (0 = SCHED_OTHER);
    ``group`` a group name or gid that may use the segments (mode 0660, else 0600).
    ``spin_budget`` the share of a CPU (0 .. 1) each worker may busy-wait in the
    last microseconds before a deadline: more buys precision at high packet rates
    (a wake-up from sleep is late by tens of µs on a VM) at the price of that CPU;
    1 spins before every deadline.  A SCHED_FIFO worker spins at SCHED_FIFO up to
    85 % of its CPU (the kernel's RT throttle stops real-time threads at 95 %) and
    the rest of its budget at SCHED_OTHER, nice -20.
    ``idle_poll``: while a worker serves channels it asks the kernel to keep idle CPUs
    polling rather than sleeping (PM QoS CPU latency 0, as cyclictest does), so
    wake-ups take about a microsecond instead of tens; it costs the idle CPUs' time
    (to the host or the battery) and needs root; False leaves idle states alone.
    ``worker`` replaces the ``rtudp-worker`` command (tests, debugging).
    """

    def __init__(self, name: str | None = None, cpus: Sequence[int] | None = None,
                 rt_priority: int = 50, group: str | int | None = None, *,
                 spin_budget: float = DEFAULT_SPIN_BUDGET, idle_poll: bool = True,
                 worker: Sequence[str] | None = None) -> None:
        self.name = pool_name(name)
        allowed = sorted(os.sched_getaffinity(0))
        if cpus is None:
            cpus = allowed[:lib.RTUDP_MAX_WORKERS]
        if isinstance(cpus, (str, bytes)) or not hasattr(cpus, "__iter__"):
            raise TypeError(f"cpus must be a sequence of CPU numbers, got {cpus!r}")
        cpus = list(cpus)
        if not cpus:
            raise ValueError("cpus must name at least one CPU, got an empty list")
        for c in cpus:
            if isinstance(c, bool) or not isinstance(c, int):
                raise TypeError(f"CPU numbers must be ints, got {c!r} in cpus={cpus!r}")
            if c not in allowed:
                raise ValueError(f"cpu {c!r} in cpus={cpus!r} is not available: this process "
                                 f"may run on CPUs {allowed}")
        if len(set(cpus)) != len(cpus):
            raise ValueError(f"cpus={cpus!r} lists a CPU twice")
        if len(cpus) > lib.RTUDP_MAX_WORKERS:
            raise ValueError(f"cpus={cpus!r}: at most {lib.RTUDP_MAX_WORKERS} workers")
        self.cpus: list[int] = cpus
        lo, hi = 0, os.sched_get_priority_max(os.SCHED_FIFO)
        self.rt_priority = _check_int(rt_priority, "rt_priority", lo, hi)
        if isinstance(spin_budget, bool) or not isinstance(spin_budget, (int, float)):
            raise TypeError(f"spin_budget must be a number (share of a CPU), got {spin_budget!r}")
        if not 0 <= spin_budget <= MAX_SPIN_BUDGET:
            raise ValueError(f"spin_budget={spin_budget!r} is out of range 0..{MAX_SPIN_BUDGET:g} "
                             f"(a share of one CPU)")
        self.spin_budget = float(spin_budget)
        if not isinstance(idle_poll, bool):
            raise TypeError(f"idle_poll must be a bool, got {idle_poll!r}")
        self.idle_poll = idle_poll
        self.group = group
        self._gid = self._resolve_group(group)
        self._mode = 0o600 if self._gid is None else 0o660
        self._worker_argv = list(worker) if worker is not None else [worker_path()]
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._control: ControlSegment | None = None
        self._pool_lock: Any = None
        self._workers: list[_Worker] = []
        self._chans: dict[str, _Chan] = {}
        self._threads: list[threading.Thread] = []
        self._wake_r = self._wake_w = -1
        self._owner_pid = 0
        self._warned_policy = False
        self._old_sigterm: Any = None

    # ------------------------------------------------------------ properties

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._control is not None and not self._stopping.is_set()

    @property
    def control(self) -> ControlSegment:
        """The control segment (PoolNotRunningError when stopped)."""
        self._check_running()
        assert self._control is not None
        return self._control

    def _check_running(self) -> None:
        if not self.running:
            raise PoolNotRunningError(f"pool {self.name!r} is not running (call start())")

    @staticmethod
    def _resolve_group(group: str | int | None) -> int | None:
        if group is None:
            return None
        if isinstance(group, bool) or not isinstance(group, (str, int)):
            raise TypeError(f"group must be a group name or gid, got {group!r}")
        if isinstance(group, int):
            return group
        import grp
        try:
            return grp.getgrnam(group).gr_gid
        except KeyError:
            raise ValueError(f"group {group!r} does not exist") from None

    def _share(self, segment_name: str) -> None:
        if self._gid is not None:
            os.chown(shm_path(segment_name), -1, self._gid)

    # ------------------------------------------------------------ start / stop

    def start(self) -> "Pool":
        """Create the control segment, start and check the workers; returns self.

        PoolRunningError if a live supervisor runs this pool; a dead one's segments are
        removed first.  WorkerError (with the worker's output) if a worker fails to start.
        """
        if self._control is not None or self._stopping.is_set():
            raise RuntimeError(f"pool {self.name!r} was already started (a Pool starts once)")
        lock = take_lock(self.name)
        if lock is None:
            raise PoolRunningError(f"pool {self.name!r} is already running (another supervisor "
                                   f"holds it): not touching it")
        try:
            removed = clean_stale(self.name, lock)
            if removed:
                log.warning("pool %r: removed segments left by a dead supervisor: %s",
                            self.name, ", ".join(removed))
            self._control = ControlSegment.create(self.name, len(self.cpus), self._mode)
            self._pool_lock = lock
            self._share(self.name)
        except BaseException:
            lock.close()
            raise
        self._owner_pid = os.getpid()
        atexit.register(self.stop)
        self._install_sigterm()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._workers = [_Worker(i, c) for i, c in enumerate(self.cpus)]
        try:
            self._spawn_thread("heartbeat", self._heartbeat_loop)
            self._spawn_thread("supervisor", self._supervise)
            self._spawn_thread("commands", self._serve_commands)
            while not self._started.wait(0.05):
                pass
            if self._start_error is not None:
                raise self._start_error
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn_thread(self, what: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=f"rtudp-{what}-{self.name}", daemon=True)
        t.start()
        self._threads.append(t)

    def _install_sigterm(self) -> None:
        """An embedded pool must be cleaned up on SIGTERM too: make it raise SystemExit
        when nobody handles it (only from the main thread, only if it is SIG_DFL)."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            def on_term(signum: int, frame: Any) -> None:
                raise SystemExit(128 + signum)
            self._old_sigterm = signal.signal(signal.SIGTERM, on_term)

    def stop(self) -> None:
        """Stop every worker, close the sockets, unlink every segment (idempotent)."""
        if self._control is None or os.getpid() != self._owner_pid:
            return  # never started, already stopped, or a forked child: not ours
        with self._lock:
            if self._stopping.is_set() and self._control is None:
                return
            self._stopping.set()
        try:
            unlink_segments(self.name)  # names first: nothing new can attach
            self._wake()
            for w in self._workers:
                if w.link is not None:
                    w.link.send_stop()
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join(STOP_GRACE_S + START_TIMEOUT_S)
            self._reap_workers()
        finally:
            self._release()

    def _reap_workers(self) -> None:
        deadline = time.monotonic() + STOP_GRACE_S
        for w in self._workers:
            if w.spawned is None:
                continue
            proc = w.spawned.proc
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except Exception:  # psutil.TimeoutExpired / subprocess.TimeoutExpired
                log.warning("pool %r: worker %d (pid %d) did not stop, killing it",
                            self.name, w.index, proc.pid)
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(5)
                except Exception:
                    pass

    def _release(self) -> None:
        with self._lock:
            for ch in self._chans.values():
                ch.seg.revoke_direct_sends()
                ch.sock.close()
                ch.seg.close()
            self._chans.clear()
            for w in self._workers:
                self._forget_process(w)
            if self._control is not None:
                if not any(t.is_alive() for t in self._threads):
                    self._control.close()  # else a stuck thread may still touch it: keep it mapped
                self._control = None
            unlink_segments(self.name)
            if self._pool_lock is not None:
                self._pool_lock.close()
                self._pool_lock = None
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1
        atexit.unregister(self.stop)
        if self._old_sigterm is not None and \
                threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def __enter__(self) -> "Pool":
        if self._control is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Pool {self.name!r} cpus={self.cpus} {state}>"

    # ------------------------------------------------------------ threads

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _heartbeat_loop(self) -> None:
        ctl = self._control
        while ctl is not None and not self._stopping.is_set():
            ctl.beat()
            self._stopping.wait(HEARTBEAT_S)

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

    def _supervise(self) -> None:
        self._watch_at_rt_priority()
        try:
            for w in self._workers:
                self._spawn_worker(w)
            self._wait_running(self._workers)
            for w in self._workers:
                self._verify(w)
                w.ready.set()
        except BaseException as exc:  # handed to start(), which raises it
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        while not self._stopping.is_set():
            try:
                self._watch_once()
            except Exception:  # noqa: BLE001 - this thread restarts workers: it must live
                if self._stopping.is_set():
                    return  # the pool stopped under it (segments unmapped, fds closed)
                log.exception("pool %r: watching the workers failed; watching on", self.name)
                self._stopping.wait(WATCH_ERROR_PAUSE_S)

    def _watch_once(self) -> None:
        fds = [self._wake_r] + [w.pidfd for w in self._workers if w.pidfd is not None]
        polling = any(w.spawned is not None and w.pidfd is None for w in self._workers)
        retry = [w.retry_at for w in self._workers if w.spawned is None]
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
            self._stopping.wait(WATCH_ERROR_PAUSE_S)
            return
        if self._stopping.is_set():
            return
        now = time.monotonic()
        for w in self._workers:
            if w.spawned is not None and w.spawned.proc.poll() is not None:
                self._on_death(w)
            if w.spawned is None and now >= w.retry_at and not self._stopping.is_set():
                self._restart(w)

    # ------------------------------------------------------------ workers

    def _argv(self, w: _Worker, cmd_fd: int) -> list[str]:
        argv = [*self._worker_argv, "--pool", self.name, "--worker-id", str(w.index),
                "--cmd-fd", str(cmd_fd), "--cpu", str(w.cpu)]
        if self.rt_priority > 0:
            argv += ["--rt-priority", str(self.rt_priority)]
        if self.spin_budget != DEFAULT_SPIN_BUDGET:
            argv += ["--spin-budget", str(round(self.spin_budget * 1000))]
        if not self.idle_poll:
            argv += ["--idle-poll", "0"]
        return argv

    def _spawn_worker(self, w: _Worker) -> None:
        ctl = self.control if not self._stopping.is_set() else None
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
        with self._lock:
            w.link, w.spawned = link, spawned
            w.pidfd = _pidfd(spawned.proc.pid)
            w.gen += 1
        slot.pid = spawned.proc.pid
        slot.started_ns = time.monotonic_ns()

    def _wait_running(self, workers: list[_Worker]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        ctl = self.control
        pending = list(workers)
        while pending:
            for w in list(pending):
                assert w.spawned is not None
                if ctl.worker(w.index).state == lib.RTUDP_WORKER_RUNNING:
                    pending.remove(w)  # (if it dies from now on, the watcher restarts it)
                    continue
                rc = w.spawned.proc.poll()
                if rc is not None:
                    raise WorkerError(
                        f"worker {w.index} of pool {self.name!r} (CPU {w.cpu}) exited with "
                        f"code {rc} before it was running; its output:\n"
                        f"{w.spawned.output_text() or '(nothing)'}")
            if not pending:
                return
            if self._stopping.is_set():
                raise PoolNotRunningError(f"pool {self.name!r} stopped while workers started")
            if time.monotonic() > deadline:
                w = pending[0]
                assert w.spawned is not None
                raise WorkerError(
                    f"worker {w.index} of pool {self.name!r} (CPU {w.cpu}, pid "
                    f"{w.spawned.proc.pid}) did not report RUNNING within {START_TIMEOUT_S} s; "
                    f"its output:\n{w.spawned.output_text() or '(nothing)'}")
            time.sleep(0.002)

    def _verify(self, w: _Worker) -> None:
        assert w.spawned is not None
        check = check_threads(w.spawned.proc.pid, w.cpu, self.rt_priority)
        for p in check.problems:
            log.warning("pool %r worker %d: %s", self.name, w.index, p)
        slot = self.control.worker(w.index)
        slot.policy, slot.priority = check.policy, check.priority
        if self.rt_priority > 0 and check.policy != os.SCHED_FIFO and not self._warned_policy:
            self._warned_policy = True
            msg = (f"rtudp pool {self.name!r}: workers run SCHED_OTHER, not SCHED_FIFO: "
                   f"{fifo_privilege_hint(self.rt_priority)}")
            log.warning("%s", msg)
            warnings.warn(msg, RtPriorityWarning, stacklevel=2)

    def _forget_process(self, w: _Worker) -> None:
        if w.pidfd is not None:
            os.close(w.pidfd)
            w.pidfd = None
        if w.link is not None:
            w.link.close()
            w.link = None
        if w.spawned is not None:
            w.spawned.close()
            w.spawned = None

    def _on_death(self, w: _Worker) -> None:
        """A worker process ended: mark it dead and forget it (the watcher restarts it).
        A death seen while the pool stops (stop() ends them all) is the stop's: no
        restart, no warning, and nothing raised (the control segment may be gone)."""
        assert w.spawned is not None
        w.ready.clear()
        rc = w.spawned.proc.returncode
        with self._lock:
            ctl = None if self._stopping.is_set() else self._control
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

    def _restart(self, w: _Worker) -> None:
        with self._lock:
            ctl = None if self._stopping.is_set() else self._control
            if ctl is None:
                return  # the pool stopped since the death was seen: nothing to restart
            slot = ctl.worker(w.index)
            slot.restarts += 1
        try:
            self._spawn_worker(w)
            self._wait_running([w])
            self._verify(w)
            with self._lock:
                chans = [c for c in self._chans.values() if c.worker == w.index and not c.paused]
            for ch in chans:
                self._readd(w, ch)
        except BaseException as exc:
            if self._stopping.is_set():
                return
            log.error("pool %r: restarting worker %d failed (retry in %.1f s): %s",
                      self.name, w.index, w.backoff, exc)
            if w.spawned is not None:
                try:
                    os.kill(w.spawned.proc.pid, signal.SIGKILL)
                    w.spawned.proc.wait(5)
                except Exception:
                    pass
            with self._lock:
                self._forget_process(w)
            w.retry_at = time.monotonic() + w.backoff
            w.backoff = min(w.backoff * 2, 5.0)
            return
        w.backoff = 0.2
        with self._changed:
            w.ready.set()
            self._changed.notify_all()
        log.info("pool %r: worker %d restarted (pid %d), %d channel(s) re-added", self.name,
                 w.index, slot.pid, len(chans))

    def _readd(self, w: _Worker, ch: _Chan) -> None:
        """ADD a channel to a restarted worker.  A channel the worker refuses (its
        segment fails validation: a client scribbled over it) stays off the worker;
        the worker and its other channels must not suffer for it."""
        try:
            self._send_add(w, ch)
        except WorkerGone:
            raise
        except WorkerError as exc:
            log.error("pool %r: channel %r stays off restarted worker %d: %s", self.name,
                      ch.name, w.index, exc)

    def _send_add(self, w: _Worker, ch: _Chan) -> None:
        link, gen = w.link, w.gen
        if link is None:
            raise WorkerGone(f"worker {w.index} is not running")
        status, msg = link.command(lib.RTUDP_CMD_ADD, ch.slot, ch.name, ch.sock.fds(),
                                   REPLY_TIMEOUT_S)
        if status != 0:
            raise WorkerError(f"worker {w.index} refused channel {ch.name!r}: {msg or status}")
        with self._lock:
            ch.added_gen = max(ch.added_gen, gen)

    def _add_to_worker(self, ch: _Chan) -> None:
        """ADD the channel to its worker, riding out a worker restart meanwhile."""
        w = self._workers[ch.worker]
        deadline = time.monotonic() + START_TIMEOUT_S + REPLY_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not w.ready.wait(left):
                raise WorkerError(f"worker {w.index} (CPU {w.cpu}) of pool {self.name!r} is "
                                  f"not running, channel {ch.name!r} could not be added")
            with self._lock:
                if ch.added_gen == w.gen:
                    return  # a restart added it
            try:
                self._send_add(w, ch)
                return
            except WorkerGone:
                time.sleep(0.01)  # the supervisor thread sees the death and restarts it

    def workers(self) -> list[dict[str, Any]]:
        """The worker table (pid, cpu, policy, priority, state, restarts, counters)."""
        return self.control.workers()

    # ------------------------------------------------------------ channels

    def channels(self) -> list[str]:
        """Names of this pool's open channels."""
        with self._lock:
            return sorted(self._chans)

    def _place(self, cpu: object) -> int:
        if cpu is None:
            load = {w.index: 0 for w in self._workers}
            for ch in self._chans.values():
                load[ch.worker] += 1
            return min(load, key=lambda i: (load[i], i))
        if isinstance(cpu, bool) or not isinstance(cpu, int):
            raise TypeError(f"cpu must be an int or None, not {type(cpu).__name__}: {cpu!r}")
        for w in self._workers:
            if w.cpu == cpu:
                return w.index
        raise ValueError(f"cpu={cpu!r} is not one of pool {self.name!r}'s CPUs {self.cpus} "
                         f"(this machine has {os.cpu_count()} CPUs, numbered from 0)")

    def open_channel(self, name: str, local: tuple[str, int] = ("127.0.0.1", 0),
                     remote: tuple[str, int] | None = None, direction: int = 2,
                     capacity: int = 1024, max_datagram: int = DEFAULT_MAX_DATAGRAM,
                     cpu: int | None = None, hw_timestamps: bool = False,
                     kind: str = "udp", *, multicast_ttl: int = 1,
                     multicast_loop: bool = True, options: Mapping[str, Any] | None = None) -> Any:
        """Bind a UDP socket, create the channel's segment, hand it to a worker.

        A multicast ``local`` group is joined (receive); sends to a multicast ``remote``
        group use ``multicast_ttl`` hops and loop back to this host's members when
        ``multicast_loop``.  ``kind`` names the channel kind (:mod:`rtudp.workers.kinds`),
        ``options`` are that kind's own.  ``capacity`` packets of ``max_datagram`` bytes
        size the TX and RX rings, up to 8 MiB and 64 MiB (``TX_RING_BYTES_MAX``,
        ``RX_RING_BYTES_MAX``: then they hold fewer datagrams that large, more small
        ones): a full TX ring is back-pressure, a reader a whole RX ring behind is told
        what it lost.
        Returns what :meth:`_make_channel` makes of it
        (``rtudp.Pool`` returns a ``Channel``).  Bad arguments raise ValueError/TypeError
        naming the value, a local address in use :class:`AddressInUseError`; the pool
        stays usable.
        """
        ch = self._open(name, local, remote, direction, capacity, max_datagram, cpu,
                        hw_timestamps, kind, multicast_ttl=multicast_ttl,
                        multicast_loop=multicast_loop, options=options)
        try:
            return self._make_channel(name)
        except BaseException:
            self._drop_channel(ch, tell_worker=True)
            raise

    def _open(self, name: str, local: tuple[str, int] = ("127.0.0.1", 0),
              remote: tuple[str, int] | None = None, direction: int = 2, capacity: int = 1024,
              max_datagram: int = DEFAULT_MAX_DATAGRAM, cpu: int | None = None,
              hw_timestamps: bool = False, kind: str = "udp", *, multicast_ttl: int = 1,
              multicast_loop: bool = True, options: Mapping[str, Any] | None = None,
              owner: psutil.Process | None = None) -> _Chan:
        """open_channel's work: the channel, on its worker, in the table."""
        self._check_running()
        validate_name(name)
        full = channel_segment_name(self.name, name)
        spec = kind_spec(kind)
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"options must be a mapping of {kind} channel options, not "
                            f"{options!r}")
        opts = spec.check(options or {})
        direction = _check_int(direction, "direction", 0, 2)
        capacity = _check_int(capacity, "capacity", 1, MAX_CAPACITY)
        max_datagram = _check_int(max_datagram, "max_datagram", 1, MAX_DATAGRAM)
        if not isinstance(hw_timestamps, bool):
            raise TypeError(f"hw_timestamps must be a bool, not {hw_timestamps!r}")
        multicast_ttl = _check_int(multicast_ttl, "multicast_ttl", 0, 255)
        if not isinstance(multicast_loop, bool):
            raise TypeError(f"multicast_loop must be a bool, not {multicast_loop!r}")
        with self._lock:
            self._check_running()
            if name in self._chans:
                raise ValueError(f"channel {name!r} is already open in pool {self.name!r}")
            worker = self._place(cpu)
            slot = self.control.free_slot()
            if slot is None:
                raise ValueError(f"pool {self.name!r} has {lib.RTUDP_MAX_CHANNELS} channels "
                                 f"open, the most it can hold")
            bound = bind_socket(name, local, remote, direction, capacity, max_datagram,
                                multicast_ttl, multicast_loop)
            try:
                seg = ChannelSegment.create(full, capacity, max_datagram, self._mode,
                                            spec.area_bytes(opts), direction)
            except BaseException:
                bound.close()
                raise
            try:
                self._share(full)
                flags = (lib.RTUDP_CHAN_HW_TIMESTAMPS if hw_timestamps else 0) | \
                        (lib.RTUDP_CHAN_MULTICAST if bound.multicast else 0)
                remote_cfg = None if bound.remote is None else \
                    (bound.remote[0], bound.remote[1], bound.remote[2], bound.remote[3])
                seg.configure(name, spec.code, direction, bound.local, remote_cfg, capacity,
                              flags, worker, max_datagram, bound.sock.fileno())
                if spec.configure is not None:
                    spec.configure(seg.area, seg.area_bytes, opts, direction)
                self.control.set_channel(slot, name, spec.code, worker)
            except BaseException:
                bound.close()
                seg.close()
                seg.unlink()
                raise
            ch = _Chan(name, slot, worker, bound, seg, owner=owner)
            self._chans[name] = ch
        try:
            self._add_to_worker(ch)
        except BaseException:
            self._drop_channel(ch, tell_worker=True)
            raise
        return ch

    # ------------------------------------------------------------ client commands

    def _serve_commands(self) -> None:
        """Open and close channels for other processes (the control segment's command
        ring, see :mod:`rtudp.workers.commands`) once the workers run."""
        while not self._started.wait(HEARTBEAT_S):
            if self._stopping.is_set():
                return
        if self._start_error is not None or self._control is None:
            return
        server = CommandServer(self._control, {"open": self._cmd_open, "close": self._cmd_close,
                                               "pause": self._cmd_pause,
                                               "resume": self._cmd_resume},
                               idle=self._close_orphans, idle_s=HEARTBEAT_S)
        try:
            server.serve(self._stopping)
        except Exception:  # noqa: BLE001 - a stopping pool unmaps the rings under us
            if not self._stopping.is_set():
                log.exception("pool %r: the command thread failed", self.name)

    def _cmd_open(self, pid: int, args: dict[str, Any]) -> dict[str, Any]:
        try:
            owner = psutil.Process(pid)
        except psutil.NoSuchProcess:
            raise ValueError(f"the client asking for channel {args.get('name')!r} (pid "
                             f"{pid}) is gone") from None
        ch = self._open(**args, owner=owner)
        return {"name": ch.name, "worker": ch.worker, "cpu": self._workers[ch.worker].cpu}

    @staticmethod
    def _cmd_name(args: dict[str, Any]) -> str:
        name = args["name"]
        if not isinstance(name, str):
            raise TypeError(f"channel name must be a str, not {name!r}")
        return name

    def _cmd_close(self, _pid: int, args: dict[str, Any]) -> dict[str, Any]:
        name = self._cmd_name(args)
        self.close_channel(name)
        return {"name": name}

    def _cmd_pause(self, _pid: int, args: dict[str, Any]) -> dict[str, Any]:
        name = self._cmd_name(args)
        self.pause_channel(name)
        return {"name": name}

    def _cmd_resume(self, _pid: int, args: dict[str, Any]) -> dict[str, Any]:
        name = self._cmd_name(args)
        self.resume_channel(name)
        return {"name": name}

    def _close_orphans(self) -> None:
        """Close the channels whose client (the process that asked for them) died."""
        with self._lock:
            owned = [ch for ch in self._chans.values() if ch.owner is not None]
        for ch in owned:
            assert ch.owner is not None
            try:
                alive = ch.owner.is_running() and ch.owner.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            if not alive and self.running:
                log.info("pool %r: closing channel %r: its client (pid %d) is gone", self.name,
                         ch.name, ch.owner.pid)
                try:
                    self.close_channel(ch.name)
                except ChannelNotFoundError:
                    pass  # closed meanwhile

    def _make_channel(self, name: str) -> Any:
        """What open_channel returns; rtudp.Pool overrides it to return a Channel."""
        return ChannelSegment.open(channel_segment_name(self.name, name))

    def channel_info(self, name: str) -> dict[str, Any]:
        """Configuration and counters of an open channel."""
        with self._lock:
            ch = self._find(name)
            return {**ch.seg.config(), **ch.seg.counters(), "slot": ch.slot,
                    "cpu": self._workers[ch.worker].cpu}

    def _find(self, name: str) -> _Chan:
        ch = self._chans.get(name)
        if ch is None:
            raise ChannelNotFoundError(f"no channel {name!r} in pool {self.name!r} (open: "
                                       f"{sorted(self._chans) or 'none'})")
        return ch

    def pause_channel(self, name: str) -> None:
        """Take the channel off its worker: nothing is sent or read until
        :meth:`resume_channel`; queued datagrams stay queued in the TX ring (and the
        kernel buffers what arrives, up to the socket's buffer)."""
        self._check_running()
        with self._lock:
            ch = self._find(name)
            if ch.paused:
                return
            ch.paused = True
            ch.seg.hold_direct_sends()  # before the worker lets go: nothing leaves meanwhile
        w = self._workers[ch.worker]
        if w.ready.wait(START_TIMEOUT_S) and w.link:
            status, msg = w.link.command(lib.RTUDP_CMD_REMOVE, ch.slot, ch.name,
                                         timeout=REPLY_TIMEOUT_S)
            if status != 0:
                raise WorkerError(f"worker {w.index} could not pause channel {name!r}: "
                                  f"{msg or status}")
        with self._lock:
            ch.added_gen = -1

    def resume_channel(self, name: str) -> None:
        """Give a paused channel back to its worker (it sends what was queued)."""
        self._check_running()
        with self._lock:
            ch = self._find(name)
            if not ch.paused:
                return
            ch.paused = False
        self._add_to_worker(ch)

    def close_channel(self, name: str) -> None:
        """REMOVE the channel from its worker, free its slot, unlink its segment."""
        self._check_running()
        with self._lock:
            ch = self._find(name)
        self._drop_channel(ch, tell_worker=True)

    def _drop_channel(self, ch: _Chan, tell_worker: bool) -> None:
        with self._lock:
            if self._chans.get(ch.name) is ch:
                del self._chans[ch.name]
        w = self._workers[ch.worker]
        try:
            if (tell_worker and not ch.paused and self.running and w.ready.wait(START_TIMEOUT_S)
                    and w.link):
                status, msg = w.link.command(lib.RTUDP_CMD_REMOVE, ch.slot, ch.name,
                                             timeout=REPLY_TIMEOUT_S)
                if status != 0:
                    log.warning("pool %r: worker %d answered REMOVE of %r with %d: %s",
                                self.name, w.index, ch.name, status, msg)
        except (WorkerError, TimeoutError) as exc:
            log.warning("pool %r: REMOVE of channel %r: %s", self.name, ch.name, exc)
        finally:
            with self._lock:
                if self._control is not None:
                    self._control.clear_channel(ch.slot)
                ch.seg.revoke_direct_sends()
                ch.sock.close()
                ch.seg.close()
                ch.seg.unlink()


__all__ = ["Pool", "RtPriorityWarning"]
