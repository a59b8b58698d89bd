"""The supervisor: one pool of pinned ``rtudp-worker`` processes, its channels, its cleanup.

:class:`Pool` creates the control segment ``/rtudp.<pool>``, keeps the pool's
heartbeat, and on :meth:`Pool.stop` (or at exit, also after Ctrl-C or SIGTERM) stops
the workers and unlinks every segment.  It is made of three parts sharing one
:class:`~rtudp.workers.pool_context.PoolContext`:

* :class:`~rtudp.workers.watcher.Watcher` (``watcher.py``): the worker processes, one
  per CPU: spawn, check, watch through pidfds, restart a dead one at once (same CPU,
  same channels, same sockets);
* :class:`~rtudp.workers.channel_table.ChannelTable` (``channel_table.py``): the
  channels: open one from a :class:`~rtudp.workers.channel_config.ChannelConfig`,
  pause, resume, close, give a restarted worker its channels back;
* :class:`~rtudp.workers.command_service.CommandService` (``command_service.py``):
  the command ring, through which other processes open and close channels, and the
  channels of clients that died.

Threads: a heartbeat thread writes ``pool.heartbeat_ns`` every 100 ms (and looks
where this process's threads should run: :mod:`rtudp.workers.placement`); the
supervisor thread (the watcher's) spawns and watches the workers; the command
thread serves the command ring.  Only the heartbeat wakes while nothing happens:
the watcher waits on pidfds, the command thread on its ring (docs/scheduling.md,
"Resting").
"""
from __future__ import annotations

import atexit
import logging
import os
import select
import signal
import threading
import warnings
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..shmring._fast import term_cleanup
from ..shmring._native import ffi, lib
from ..shmring.channel import ChannelSegment
from ..shmring.control import (ControlSegment, channel_segment_name, pool_name,
                               process_start_ticks)
from ..shmring.deadline import DEFAULT_HORIZON_NS, horizon_ns_of
from ..shmring.errors import PoolRunningError
from .binary import worker_path
from .channel_config import MAX_CAPACITY, ChannelConfig, check_int, takes_channel_config
from .channel_table import ChannelEntry, ChannelTable
from .command_service import CommandService
from .packing import DEFAULT_PLACEMENT, MOVE_PAUSE_S, MOVE_SLICE, PLACEMENTS, Move, Packer, PoolLoads
from .placement import ThreadPlacement
from .pool_context import HEARTBEAT_S, START_TIMEOUT_S, STOP_GRACE_S, PoolContext
from .registry import clean_stale, take_lock_to_start, unlink_segments
from .sockets import short_buffers_message
from .mechanisms import check_off, off_from_env
from .tunables import DEFAULT_IDLE, TUNABLES, describe, resolve, with_settings
from .kernel_features import KernelFallbackWarning, warn_fallbacks
from .privileges import MemoryLockWarning, PrivilegeWarning, RtPriorityWarning
from .watcher import Watcher

log = logging.getLogger("rtudp.workers")

#: the default share of a CPU a worker may spin, and the most (tunables.h, spin_budget)
DEFAULT_SPIN_BUDGET: float = TUNABLES["spin_budget"].default
MAX_SPIN_BUDGET: float = TUNABLES["spin_budget"].to_python(TUNABLES["spin_budget"].worker_max)


class Pool:
    """A pool of workers, one per CPU, and the channels they serve.

    ``name`` None -> ``$RTUDP_POOL`` or ``"default"``; ``cpus`` None -> every CPU
    this process may run on; ``group`` a group name or gid that may use the segments
    (mode 0660, else 0600).
    ``idle`` the idle strategy, picked by name, and the tunables ``rt_priority``,
    ``spin_budget``, ``idle_poll``, ``rx_coalesce_us``, ``tx_coalesce_us``,
    ``tx_lateness_us`` (the lateness budget: timed sends may leave up to this late, for a
    fraction of the CPU; docs/scheduling.md, "A lateness budget"): each None
    takes the strategy's value; the strategies and tunables, with their defaults and ranges, are listed at
    the end (from csrc/worker/tunables.h; docs/scheduling.md says what each costs).
    ``place_threads``: while a worker holds more than 70 % of its CPU, this process's
    threads are kept on the other CPUs (:mod:`rtudp.workers.placement`: the kernel
    otherwise moves a submitting thread onto the busy CPU, where it falls behind), and
    for the first second after a channel that sends is opened here, off its worker's
    CPU whatever that worker uses yet, unless channels that send are then open on
    every worker's CPU; a thread forks with the process's own affinity; False leaves
    them where the kernel puts them.  None (the default): on for a spread pool, off
    for a packed one, whose busy worker leaves the other CPUs free anyway and where
    keeping the program off its CPU only made the demo's sends later
    (docs/scheduling.md, "Placement of the program's threads").
    ``horizon_s``: how far ahead of now (``time.monotonic_ns()``) a send may be due on
    the pool's channels (default 10 s, the fq qdisc's default horizon; more than 0, at
    most a day).  A later deadline is refused at the call with a ValueError naming it:
    it is almost always from another clock (``time.time_ns()`` is decades ahead), and
    queued it would hold its ring space for ever.  Programs attaching to the pool read
    it from the control segment.
    ``placement``: where channels opened without ``cpu=`` go: ``"packed"`` (the
    default: the first worker that serves and has headroom; a busy worker's channels
    spread to the next, and gather again when load falls, moved live by
    :meth:`move_channel`'s means: :mod:`rtudp.workers.packing`) or ``"spread"`` (the
    worker with the fewest channels, for good).
    ``worker`` replaces the ``rtudp-worker`` command (tests, debugging).
    ``pacer_off`` names pacer mechanisms to switch off, for measuring what each buys
    (:mod:`rtudp.workers.mechanisms`, ``rtudp bench mechanisms``); all are on by default
    (None: those ``$RTUDP_PACER_OFF`` names, comma separated).
    """

    def __init__(self, name: str | None = None, cpus: Sequence[int] | None = None,
                 rt_priority: int | None = None, group: str | int | None = None, *,
                 idle: str | None = None, spin_budget: float | None = None,
                 idle_poll: bool | None = None, place_threads: bool | None = None,
                 rx_coalesce_us: int | None = None,
                 tx_coalesce_us: int | None = None,
                 tx_lateness_us: int | None = None,
                 horizon_s: float = DEFAULT_HORIZON_NS / 1e9,
                 worker: Sequence[str] | None = None,
                 pacer_off: Sequence[str] | None = None,
                 placement: str = DEFAULT_PLACEMENT) -> None:
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
        #: the CPUs this process could run on when the pool was made: its thread
        #: placement may keep this process's threads off some of them while it runs
        self.allowed_cpus: frozenset[int] = frozenset(allowed)
        #: every tunable's value: the idle strategy's, with those given in its place
        self.tunables = resolve(idle, {"rt_priority": rt_priority, "spin_budget": spin_budget,
                                       "idle_poll": idle_poll, "rx_coalesce_us": rx_coalesce_us,
                                       "tx_coalesce_us": tx_coalesce_us,
                                       "tx_lateness_us": tx_lateness_us})
        self.idle: str = idle or DEFAULT_IDLE
        self.rt_priority: int = self.tunables["rt_priority"]
        self.spin_budget: float = self.tunables["spin_budget"]
        self.idle_poll: bool = self.tunables["idle_poll"]
        self.rx_coalesce_us: int = self.tunables["rx_coalesce_us"]
        self.tx_coalesce_us: int = self.tunables["tx_coalesce_us"]
        self.tx_lateness_us: int = self.tunables["tx_lateness_us"]
        if place_threads is not None and not isinstance(place_threads, bool):
            raise TypeError(f"place_threads must be a bool or None, got {place_threads!r}")
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got "
                             f"{placement!r}")
        #: whether this process's threads are kept off busy workers' CPUs
        self.place_threads: bool = (placement == "spread" if place_threads is None
                                    else place_threads)
        #: where channels opened without cpu= go: "packed" (the first with headroom;
        #: spread and gathered live as their load asks) or "spread" (the worker with
        #: the fewest)
        self.placement = placement
        #: the deadline horizon in ns (``horizon_s`` rounded to whole ns)
        self.horizon_ns = horizon_ns_of(horizon_s)
        self.horizon_s = self.horizon_ns / 1e9
        self.group = group
        gid = self._resolve_group(group)
        self._ctx = PoolContext(self.name, 0o600 if gid is None else 0o660, gid)
        #: the pacer mechanisms switched off (none by default)
        self.pacer_off: tuple[str, ...] = (check_off(pacer_off) if pacer_off is not None
                                           else off_from_env())
        self._watcher = Watcher(self._ctx, cpus, self.idle, self.tunables, self.pacer_off,
                                list(worker) if worker is not None else [worker_path()],
                                readd=lambda w: self._table.readd(w))
        self._table = ChannelTable(self._ctx, self._watcher.workers)
        self._placement: ThreadPlacement | None = None  # while started, if place_threads
        self._packer: Packer | None = None  # while started, if placement == "packed"
        self._commands = CommandService(self._ctx, self._table)
        self._pool_lock: Any = None
        self._threads: list[threading.Thread] = []
        self._owner_pid = 0
        self._owner_start = 0
        self._old_sigterm: Any = None
        self._beat_r = self._beat_w = -1  # wakes the heartbeat thread when the pool stops
        self._warned_buffers = False  # socket buffers the sysctls capped: said once
        self._term_cleanup = False  # SIGTERM's C cleanup holds this pool (not main thread)

    # ------------------------------------------------------------ properties

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._ctx.running

    @property
    def control(self) -> ControlSegment:
        """The control segment (PoolNotRunningError when stopped)."""
        return self._ctx.control

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

    # ------------------------------------------------------------ start / stop

    def start(self) -> "Pool":
        """Create the control segment, start and check the workers; returns self.

        PoolRunningError if a live supervisor runs this pool; a dead one's segments are
        removed first.  WorkerError (with the worker's output) if a worker fails to start.
        """
        ctx = self._ctx
        if ctx.control_segment is not None or ctx.stopping.is_set():
            raise RuntimeError(f"pool {self.name!r} was already started (a Pool starts once)")
        lock = take_lock_to_start(self.name)
        if lock is None:
            raise PoolRunningError(f"pool {self.name!r} is already running (another supervisor "
                                   f"holds it): not touching it")
        try:
            removed = clean_stale(self.name, lock)
            if removed:
                log.warning("pool %r: removed segments left by a dead supervisor: %s",
                            self.name, ", ".join(removed))
            ctx.control_segment = ControlSegment.create(self.name, len(self.cpus), ctx.mode,
                                                          self.horizon_ns)
            self._pool_lock = lock
            ctx.share(self.name)
        except BaseException:
            lock.close()
            raise
        warn_fallbacks(self.name)
        self._owner_pid = os.getpid()
        self._owner_start = process_start_ticks(self._owner_pid)
        atexit.register(self.stop)
        self._install_sigterm()
        self._watcher.open_wake_pipe()
        self._beat_r, self._beat_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._placement = ThreadPlacement(self._worker_cpus) if self.place_threads else None
        try:
            self._spawn_thread("heartbeat", self._heartbeat_loop)
            self._spawn_thread("supervisor", self._watcher.run)
            self._spawn_thread("commands", self._commands.serve)
            if placement_packed := self.placement == "packed":
                # with a lateness budget, sends past 100 µs are the user's choice
                judge_late = not self.tunables["tx_lateness_us"]
                self._packer = Packer(PoolLoads(self._table, self._watcher.workers,
                                                lambda: self._ctx.control, judge_late),
                                      self._carry_out)
                self._table.open_target = self._packer.open_target
            while not ctx.started.wait(0.05):
                pass
            if ctx.start_error is not None:
                raise ctx.start_error
            if placement_packed:
                self._spawn_thread("packing", self._packing_loop)
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
        when nobody handles it (only from the main thread, only if it is SIG_DFL).  A
        pool started in another thread asks again from the main thread
        (:meth:`cleanup_on_sigterm`; rtudp.aio does, after opening in a thread)."""
        if threading.current_thread() is not threading.main_thread():
            # no Python handler from here: a C one unlinks our segments, then the signal
            # ends the process as it would have (csrc/pyfast/termclean.c)
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                self._term_cleanup = term_cleanup(
                    self.name, int(ffi.cast("uintptr_t", self._ctx.control.c)))
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            def on_term(signum: int, frame: Any) -> None:
                raise SystemExit(128 + signum)
            self._old_sigterm = signal.signal(signal.SIGTERM, on_term)

    def cleanup_on_sigterm(self) -> None:
        """Called from the main thread of a running pool started in another one: SIGTERM
        (when nobody handles it) stops the pool, as for one started in the main thread."""
        if self.running and self._old_sigterm is None and os.getpid() == self._owner_pid:
            self._install_sigterm()

    def stop(self) -> None:
        """Stop every worker, close the sockets, unlink every segment (idempotent)."""
        ctx = self._ctx
        if ctx.control_segment is None or os.getpid() != self._owner_pid:
            return  # never started, already stopped, or a forked child: not ours
        with ctx.lock:
            if ctx.stopping.is_set() and ctx.control_segment is None:
                return
            ctx.stopping.set()
        try:
            unlink_segments(self.name)  # names first: nothing new can attach
            self._watcher.wake()
            self._commands.wake()  # its wait for requests has no end while none come
            try:
                os.write(self._beat_w, b"x")  # the heartbeat's wait
            except OSError:
                pass
            self._watcher.stop_workers()
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join(STOP_GRACE_S + START_TIMEOUT_S)
            self._watcher.reap()
        finally:
            self._release()

    def _release(self) -> None:
        ctx = self._ctx
        if self._term_cleanup:
            term_cleanup(self.name, 0)  # before the control segment is unmapped
            self._term_cleanup = False
        with ctx.lock:
            self._table.release()
            self._watcher.forget_all()
            if ctx.control_segment is not None:
                if not any(t.is_alive() for t in self._threads):
                    ctx.control_segment.close()  # else a stuck thread may still touch it
                ctx.control_segment = None
            unlink_segments(self.name)
            if self._pool_lock is not None:
                self._pool_lock.close()
                self._pool_lock = None
            self._watcher.close_wake_pipe()
            for fd in (self._beat_r, self._beat_w):
                if fd >= 0:
                    os.close(fd)
            self._beat_r = self._beat_w = -1
        atexit.unregister(self.stop)
        if self._old_sigterm is not None and \
                threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def __enter__(self) -> "Pool":
        if self._ctx.control_segment is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Pool {self.name!r} cpus={self.cpus} {state}>"

    def _heartbeat_loop(self) -> None:
        ctl = self._ctx.control_segment
        placement = self._placement
        # poll() on a pipe stop() writes, not Event.wait(): the thread wakes ten times a
        # second for as long as the pool runs, and a timed wait on a lock (a condition,
        # a lock allocated each time) costs it about twice the CPU time a poll does
        waiter = select.poll()
        waiter.register(self._beat_r, select.POLLIN)
        try:
            while ctl is not None and not self._ctx.stopping.is_set():
                ctl.beat()
                if placement is not None:
                    placement.look()  # never raises
                try:
                    waiter.poll(HEARTBEAT_S * 1000)
                except InterruptedError:
                    pass
        finally:
            if placement is not None:
                placement.restore()

    def _carry_out(self, move: Move) -> None:
        """Make the packer's ``move`` (names None: every channel of its worker that may
        move)."""
        names = self._table.movable(move.frm) if move.names is None else list(move.names)
        # both workers do a move's work on their TX threads (letting go, dropping
        # timers, activating): a slice at a time, with a pause for them to catch up,
        # so that it comes between their deadlines in pieces
        for at in range(0, len(names), MOVE_SLICE):
            if at and self._ctx.stopping.wait(MOVE_PAUSE_S):
                return
            self._table.move_many(names[at:at + MOVE_SLICE], move.to)

    def _packing_loop(self) -> None:
        """The packer's looks, every LOOK_S (IDLE_LOOK_S while the workers idle); never
        raises: a failed look is logged, and packing goes on at the next."""
        packer = self._packer
        while packer is not None and not self._ctx.stopping.wait(packer.pause_s()):
            try:
                packer.look()
            except Exception:  # noqa: BLE001 - the pool must go on; moves are retried
                if not self._ctx.stopping.is_set():
                    log.exception("pool %r: packing channels failed", self.name)

    def _worker_cpus(self) -> list[tuple[int, int]]:
        """(pid, cpu) of each running worker process (for the thread placement)."""
        out = []
        for w in list(self._watcher.workers):
            spawned = w.spawned  # read once: the watcher may drop it meanwhile
            if spawned is not None:
                out.append((spawned.proc.pid, w.cpu))
        return out

    # ------------------------------------------------------------ workers and channels

    def workers(self) -> list[dict[str, Any]]:
        """The worker table (pid, cpu, policy, priority, state, restarts, counters), and
        the settings each running worker published: ``idle`` and ``tunables``."""
        return [with_settings(w) for w in self.control.workers()]

    def channels(self) -> list[str]:
        """Names of this pool's open channels."""
        return self._table.names()

    @property
    def channel_moves(self) -> int:
        """How many times a channel has moved between workers since the pool started."""
        return int(self.control.c.pool.channel_moves)

    @takes_channel_config
    def open_channel(self, *args: Any, **params: Any) -> Any:
        """Bind a UDP socket, create the channel's segment, hand it to a worker.

        The arguments are a :class:`~rtudp.workers.channel_config.ChannelConfig`'s
        fields (as its constructor takes them: the signature shown), or a
        ChannelConfig, with keywords replacing its fields.
        A multicast ``local`` group is joined (receive); sends to a multicast ``remote``
        group use ``multicast_ttl`` hops and loop back to this host's members when
        ``multicast_loop``.  ``kind`` names the channel kind (:mod:`rtudp.workers.kinds`),
        ``options`` are that kind's own.  ``capacity`` packets of ``max_datagram`` bytes
        size the TX and RX rings (the RX ring ``rx_capacity``, when given), up to 8 MiB
        and 64 MiB (``TX_RING_BYTES_MAX``, ``RX_RING_BYTES_MAX``: then they hold fewer
        datagrams that large, more small ones): a full TX ring is back-pressure, a
        reader a whole RX ring behind is told what it lost.
        Returns what :meth:`_make_channel` makes of it
        (``rtudp.Pool`` returns a ``Channel``).  Bad arguments raise ValueError/TypeError
        naming the value, a local address in use :class:`AddressInUseError`; the pool
        stays usable.
        """
        self._ctx.check_running()
        return self._open([ChannelConfig.of(*args, **params)])[0]

    def open_channels(self, configs: Iterable[ChannelConfig | Mapping[str, Any]]) -> list[Any]:
        """Open many channels at once: each item a :class:`ChannelConfig`, or a mapping
        of its fields (``{"name": "s1", "remote": ..., "kind": "rtp"}``).  Returns what
        :meth:`open_channel` would for each, in order.

        All or nothing: if one item is bad (ValueError/TypeError naming it, as
        open_channel raises) or a worker refuses one, none of the batch stays open and
        that error is raised.  The workers get their channels in pipelined batches, so
        opening thousands costs the workers' setup, not a round trip each.
        """
        self._ctx.check_running()
        batch = [c if isinstance(c, ChannelConfig) else ChannelConfig.of(**c)
                 for c in configs]
        return self._open(batch)

    def _open(self, configs: list[ChannelConfig]) -> list[Any]:
        made: list[Any] = []

        def make(entries: list[ChannelEntry]) -> None:
            # while the workers set the channels up: the caller's handles cost no wait
            for config, ch in zip(configs, entries):
                made.append(self._make_channel(config.name, ch.slot))

        try:
            entries = self._table.open_many(configs, meanwhile=make)
        except BaseException:
            for handle in made:  # their channels are gone: closing them closes no other
                handle.close()
            raise
        for ch in entries:
            if ch.sock.short and not self._warned_buffers:  # said once a pool
                self._warned_buffers = True
                warnings.warn(short_buffers_message(self.name, ch.name, ch.sock.short),
                              RuntimeWarning, stacklevel=4)
                break
        placement = self._placement
        if placement is not None:
            cpu_of = {w.index: w.cpu for w in self._watcher.workers}
            for config, ch in zip(configs, entries):
                if config.direction != 1:  # it sends
                    placement.expect(cpu_of[ch.worker])
        return made

    def _supervisor_identity(self) -> tuple[int, int] | None:
        """(pid, start ticks) of this pool's supervisor, this process, for the control
        segments of the handles it makes (None in a forked child: not the supervisor)."""
        if os.getpid() != self._owner_pid or not self._owner_start:
            return None
        return self._owner_pid, self._owner_start

    def _make_channel(self, name: str, slot: int | None = None) -> Any:
        """What open_channel returns; rtudp.Pool overrides it to return a Channel
        (``slot``: the channel's table slot, where its handle looks first)."""
        return ChannelSegment.open(channel_segment_name(self.name, name))

    def channel_info(self, name: str) -> dict[str, Any]:
        """Configuration and counters of an open channel."""
        return self._table.info(name)

    def move_channel(self, name: str, cpu: int) -> None:
        """Move channel ``name`` to the worker on ``cpu`` while it runs: nothing queued
        is lost, sent twice or reordered, and its kind's state and counters go on
        (ValueError if ``cpu`` is not one of the pool's)."""
        self._table.move(name, cpu)

    def pause_channel(self, name: str) -> None:
        """Take the channel off its worker: nothing is sent or read until
        :meth:`resume_channel`; queued datagrams stay queued in the TX ring (and the
        kernel buffers what arrives, up to the socket's buffer)."""
        self._table.pause(name)

    def resume_channel(self, name: str) -> None:
        """Give a paused channel back to its worker (it sends what was queued)."""
        self._table.resume(name)

    def close_channel(self, name: str) -> None:
        """REMOVE the channel from its worker, free its slot, unlink its segment."""
        self._table.close(name)


# the idle strategies and tunables, as C describes them
Pool.__doc__ = f"{Pool.__doc__}\n{describe(indent='    ')}\n"

__all__ = ["DEFAULT_SPIN_BUDGET", "KernelFallbackWarning", "MAX_CAPACITY", "MAX_SPIN_BUDGET",
           "MemoryLockWarning", "Pool", "PrivilegeWarning", "RtPriorityWarning"]
