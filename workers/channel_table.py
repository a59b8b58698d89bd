"""A pool's channels: which are open, on which worker, with which socket and segment.

:class:`ChannelTable` opens a channel from a checked
:class:`~rtudp.workers.channel_config.ChannelConfig` (place it on a worker, bind its
socket, create and configure its segment, enter it in the control segment's channel
table, ADD it to the worker, and a standby copy to a second worker where its kind
wants one: csrc/proto/proto.h), pauses, resumes and closes channels, and gives a
restarted worker its channels and standbys back (:meth:`ChannelTable.readd`).
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import psutil

from ..shmring._native import lib
from ..shmring.channel import ChannelSegment
from ..shmring.control import channel_segment_name
from ..shmring.deadline import Horizon
from ..shmring.errors import ChannelNotFoundError, WorkerError
from .channel_config import ChannelConfig
from .kinds import kind_spec
from .link import WorkerGone
from .pool_context import REPLY_TIMEOUT_S, START_TIMEOUT_S, PoolContext
from .sockets import BoundSocket, bind_socket

#: how long a move waits for a channel's last handoff to be taken (s), and how often it
#: looks: the worker it went to takes it when its bell wakes it
HANDOFF_SETTLE_S = 1.0
HANDOFF_LOOK_S = 0.0002
from .watcher import Worker

log = logging.getLogger("rtudp.workers")


def _on_each_worker(workers: list[Worker], chans: list[ChannelEntry],
                    worker_of: Callable[[ChannelEntry], int | None],
                    work: Callable[[Worker, list[ChannelEntry]], None]) -> None:
    """``work(w, mine)`` for each worker that ``worker_of`` gives some of ``chans``, all
    at once: a worker's commands are its own CPU's work and the caller only waits for
    the replies, so workers that work side by side open a batch in the time of the
    slowest, not of all in turn.  The first exception raised is raised here, once
    every worker's part is over."""
    groups = [(w, mine) for w in workers
              if (mine := [ch for ch in chans if worker_of(ch) == w.index])]
    errors: list[BaseException] = []

    def run(w: Worker, mine: list[ChannelEntry]) -> None:
        try:
            work(w, mine)
        except BaseException as exc:  # raised below, in the caller's thread
            errors.append(exc)

    helpers = [threading.Thread(target=run, args=group, name=f"rtudp-open-w{group[0].index}",
                                daemon=True) for group in groups[1:]]
    for t in helpers:
        t.start()
    if groups:
        run(*groups[0])
    for t in helpers:
        t.join()
    if errors:
        raise errors[0]


class _Once:
    """A callable run at most once, by whichever thread comes first, none waiting for
    another's run; its exception kept for the caller (raise_error), never raised into
    the thread that ran it (a link waiting for replies)."""

    def __init__(self, fn: Callable[[], None] | None) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    def try_now(self) -> None:
        """Run it, unless it ran or runs elsewhere."""
        if self._fn is None or not self._lock.acquire(blocking=False):
            return
        fn, self._fn = self._fn, None
        try:
            fn()
        except BaseException as exc:  # the caller's, raised by raise_error
            self._error = exc

    def raise_error(self) -> None:
        """Raise what its run raised, if anything."""
        if self._error is not None:
            raise self._error


_T = TypeVar("_T")


def _one_at_a_time(method: Callable[..., _T]) -> Callable[..., _T]:
    """The method runs holding the table's ``_moving`` lock (see ChannelTable)."""
    @functools.wraps(method)
    def locked(self: "ChannelTable", *args: Any, **kwargs: Any) -> _T:
        with self._moving:
            return method(self, *args, **kwargs)
    return locked


@dataclass
class ChannelEntry:
    """One open channel as the supervisor holds it."""

    name: str
    slot: int
    worker: int
    sock: BoundSocket
    seg: ChannelSegment
    added_gen: int = -1
    paused: bool = False  # taken off its worker; queued records wait in the TX ring
    owner: "psutil.Process | None" = None  # the client that asked for it (command ring)
    standby: int | None = None  # the worker guarding it (its kind's standby), if any
    pinned: bool = False  # opened with cpu=: it never moves by itself
    rate: float = 0.0  # packets a second it declares (packet_rate, or its kind's)
    moving: bool = False  # a move takes it off its worker: a restart there leaves it out


class ChannelTable:
    """The channels of one pool, served by ``workers`` (the watcher's)."""

    def __init__(self, ctx: PoolContext, workers: list[Worker]) -> None:
        self._ctx = ctx
        self._workers = workers
        self._chans: dict[str, ChannelEntry] = {}
        # channels each worker serves (placement's measure) and standbys it holds,
        # kept with _chans: a placement reads them, it does not count the table
        self._load: dict[int, int] = {w.index: 0 for w in workers}
        self._guarding: dict[int, int] = {w.index: 0 for w in workers}
        # the packets a second its channels declare, a worker (kept as _load is)
        self._rate: dict[int, float] = {w.index: 0.0 for w in workers}
        #: where a channel opened without cpu= goes (the packer's choice, from each
        #: worker's channels, their declared packet rate and the new channel's; None: to
        #: the worker with the fewest channels)
        self.open_target: Callable[[dict[int, int], dict[int, float], float], int] | None = None
        self._packets: dict[str, int] = {}  # a channel's packets at the last weighing
        # each worker's channels that may move, kept with _chans as _load is
        self._movable: dict[int, set[str]] = {w.index: set() for w in workers}
        # one move, pause, resume or close of channels at a time: each takes a channel
        # off a worker and gives it back, and two at once would each see the other's half
        self._moving = threading.RLock()

    @property
    def name(self) -> str:
        return self._ctx.name

    # ------------------------------------------------------------ lookups

    def names(self) -> list[str]:
        """Names of the open channels."""
        with self._ctx.lock:
            return sorted(self._chans)

    def has(self, name: str) -> bool:
        """Whether channel ``name`` is open (a lookup: names() lists and sorts them all)."""
        with self._ctx.lock:
            return name in self._chans

    def find(self, name: str) -> ChannelEntry:
        """The open channel ``name`` (ChannelNotFoundError naming the open ones)."""
        ch = self._chans.get(name)
        if ch is None:
            raise ChannelNotFoundError(f"no channel {name!r} in pool {self.name!r} (open: "
                                       f"{sorted(self._chans) or 'none'})")
        return ch

    def cpu(self, ch: ChannelEntry) -> int:
        """The CPU of the worker serving ``ch``."""
        return self._workers[ch.worker].cpu

    def info(self, name: str) -> dict[str, Any]:
        """Configuration and counters of an open channel."""
        with self._ctx.lock:
            ch = self.find(name)
            return {**ch.seg.config(), **ch.seg.counters(), "slot": ch.slot, "cpu": self.cpu(ch)}

    def owned(self) -> list[ChannelEntry]:
        """The channels another process asked for (through the command ring)."""
        with self._ctx.lock:
            return [ch for ch in self._chans.values() if ch.owner is not None]

    # ------------------------------------------------------------ open

    def _place(self, cpu: int | None, rate: float) -> int:
        if cpu is None:
            if self.open_target is not None:
                return self.open_target(self._load, self._rate, rate)
            load = self._load
            return min(load, key=lambda i: (load[i], i))
        for w in self._workers:
            if w.cpu == cpu:
                return w.index
        cpus = [w.cpu for w in self._workers]
        raise ValueError(f"cpu={cpu!r} is not one of the CPUs {cpus} of pool {self.name!r} "
                         f"(this machine has {os.cpu_count()} CPUs, numbered from 0)")

    def _place_standby(self, worker: int) -> int | None:
        """The worker to guard a channel served by ``worker``: the one with the fewest
        channels and standbys of the others; None if the pool has no other."""
        load = {w.index: self._load[w.index] + self._guarding[w.index]
                for w in self._workers if w.index != worker}
        return min(load, key=lambda i: (load[i], i)) if load else None

    def open(self, config: ChannelConfig, owner: psutil.Process | None = None) -> ChannelEntry:
        """The channel ``config`` describes, on its worker, in the table."""
        return self.open_many([config], owner)[0]

    def open_many(self, configs: list[ChannelConfig], owner: psutil.Process | None = None,
                  meanwhile: Callable[[list[ChannelEntry]], None] | None = None
                  ) -> list[ChannelEntry]:
        """The channels ``configs`` describe, on their workers, in the table: all of
        them, or (the first failure raised) none.  Each worker gets its ADDs pipelined
        (Link.commands), so a batch costs the workers' work, not a round trip each.
        ``meanwhile(entries)`` runs once, while a worker sets up the last of its
        channels: what the caller makes of the entries costs no wait of its own (its
        exception is raised, and none of the batch stays open)."""
        twice = sorted(n for n, k in Counter(c.name for c in configs).items() if k > 1)
        if twice:
            raise ValueError(f"channel names {twice} appear more than once in one batch")
        made: list[ChannelEntry] = []
        try:
            for config in configs:
                made.append(self._prepare(config, owner))
        except BaseException:
            for ch in made:
                self.drop(ch, tell_worker=False)
            raise
        added: list[ChannelEntry] = []
        beside = _Once(None if meanwhile is None else lambda: meanwhile(made))
        try:
            _on_each_worker(self._workers, made, lambda ch: ch.worker,
                            lambda w, mine: self._add_all_to_worker(w, mine, added, beside))
            beside.try_now()  # no worker ran it (one restarting): it runs now
            beside.raise_error()
        except BaseException:
            on_worker = {id(ch) for ch in added}
            for ch in made:
                self.drop(ch, tell_worker=id(ch) in on_worker)
            raise
        self._add_standbys(made)
        return made

    def _prepare(self, config: ChannelConfig, owner: psutil.Process | None) -> ChannelEntry:
        """The channel's slot, socket and segment, in the table: not on a worker yet."""
        ctx = self._ctx
        ctx.check_running()
        name = config.name
        full = channel_segment_name(self.name, name)
        spec = kind_spec(config.kind)
        opts = dict(config.options or {})
        horizon = Horizon(ctx.control.horizon_ns, f"pool {self.name!r}")
        for option, at in spec.deadlines(opts).items():
            horizon.check(at, f"{config.kind} option {option}")
        with ctx.lock:
            ctx.check_running()
            if name in self._chans:
                raise ValueError(f"channel {name!r} is already open in pool {self.name!r}")
            rate = (spec.packet_rate(opts, config.direction) if config.packet_rate is None
                    else config.packet_rate)
            worker = self._place(config.cpu, rate)
            slot = ctx.control.free_slot()
            if slot is None:
                raise ValueError(f"pool {self.name!r} has {lib.RTUDP_MAX_CHANNELS} channels "
                                 f"open, the most it can hold")
            bound = bind_socket(name, config.local, config.remote, config.direction,
                                config.capacity, config.max_datagram, config.multicast_ttl,
                                config.multicast_loop, config.rx_capacity,
                                port_pair=spec.port_pair(opts))
            try:
                seg = ChannelSegment.create(full, config.capacity, config.max_datagram,
                                            ctx.mode, spec.area_bytes(opts), config.direction,
                                            config.rx_capacity)
            except BaseException:
                bound.close()
                raise
            try:
                ctx.share(full)
                flags = (lib.RTUDP_CHAN_HW_TIMESTAMPS if config.hw_timestamps else 0) | \
                        (lib.RTUDP_CHAN_MULTICAST if bound.multicast else 0)
                remote_cfg = None if bound.remote is None else \
                    (bound.remote[0], bound.remote[1], bound.remote[2], bound.remote[3])
                seg.configure(name, spec.code, config.direction, bound.local, remote_cfg,
                              config.capacity, flags, worker, config.max_datagram,
                              bound.sock.fileno(), slot)
                if spec.configure is not None:
                    spec.configure(seg.area, seg.area_bytes, opts, config.direction)
                seg.set_impairment(config.impairment)
                ctx.control.set_channel(slot, name, spec.code, worker)
            except BaseException:
                bound.close()
                seg.close()
                seg.unlink()
                raise
            standby = (self._place_standby(worker) if spec.standby(opts) and
                       config.direction != lib.RTUDP_DIR_RECV else None)
            ch = ChannelEntry(name, slot, worker, bound, seg, owner=owner, standby=standby,
                              pinned=config.cpu is not None, rate=rate)
            self._chans[name] = ch
            self._load[worker] += 1
            self._rate[worker] += rate
            self._set_movable(ch, not ch.pinned)
            if standby is not None:
                self._guarding[standby] += 1
        return ch

    # ------------------------------------------------------------ workers' side

    def served(self) -> dict[int, tuple[int, int]]:
        """Each worker's (channels it serves, how many of them may move): kept as
        channels come, go and move, so a look costs nothing a channel."""
        with self._ctx.lock:
            return {i: (n, len(self._movable[i])) for i, n in self._load.items()}

    def declared_rates(self) -> dict[int, float]:
        """The packets a second each worker's channels declare (ChannelConfig.packet_rate,
        else Kind.packet_rate)."""
        with self._ctx.lock:
            return dict(self._rate)

    def movable(self, worker: int) -> list[str]:
        """The channels of ``worker`` that may move (not pinned, not paused), in the
        order of their slots: the order they were opened, but for slots freed and
        taken again."""
        with self._ctx.lock:
            return sorted(self._movable[worker], key=lambda n: self._chans[n].slot)

    def _set_movable(self, ch: ChannelEntry, yes: bool) -> None:
        (self._movable[ch.worker].add if yes else self._movable[ch.worker].discard)(ch.name)

    def weigh(self, names: list[str]) -> dict[str, int]:
        """The packets (sent and received) each of ``names`` carried since it was last
        weighed (all it carried, the first time); a channel closed meanwhile is left out."""
        out: dict[str, int] = {}
        with self._ctx.lock:
            for name in names:
                ch = self._chans.get(name)
                if ch is None:
                    continue
                c = ch.seg.counters()
                total = int(c["tx_packets"]) + int(c["rx_packets"])
                out[name] = total - self._packets.get(name, 0)
                self._packets[name] = total
        return out

    def _send_add(self, w: Worker, ch: ChannelEntry) -> None:
        link, gen = w.link, w.gen
        if link is None:
            raise WorkerGone(f"worker {w.index} is not running")
        status, msg = link.command(lib.RTUDP_CMD_ADD, ch.slot, ch.name, ch.sock.fds(),
                                   REPLY_TIMEOUT_S)
        if status != 0:
            raise WorkerError(f"worker {w.index} refused channel {ch.name!r}: {msg or status}")
        with self._ctx.lock:
            ch.added_gen = max(ch.added_gen, gen)

    def _add_all_to_worker(self, w: Worker, chans: list[ChannelEntry],
                           added: list[ChannelEntry], meanwhile: _Once | None = None) -> None:
        """ADD chans to w in one pipelined batch (each added one appended to ``added``;
        ``meanwhile`` run while the worker works); a worker not running, or gone
        meanwhile, gets them one by one, riding out its restart (_add_to_worker)."""
        link, gen = w.link, w.gen
        if link is not None and w.ready.is_set():
            try:
                replies = link.commands([(lib.RTUDP_CMD_ADD, ch.slot, ch.name, ch.sock.fds())
                                         for ch in chans], REPLY_TIMEOUT_S,
                                        None if meanwhile is None else meanwhile.try_now)
            except WorkerGone:
                replies = []
            refused = None
            for ch, (status, msg) in zip(chans, replies):
                if status != 0:  # those after it went on: each one added must be known
                    refused = refused or WorkerError(f"worker {w.index} refused channel "
                                                     f"{ch.name!r}: {msg or status}")
                    continue
                with self._ctx.lock:
                    ch.added_gen = max(ch.added_gen, gen)
                added.append(ch)
            if refused is not None:
                raise refused
        for ch in chans[len(replies):]:
            self._add_to_worker(ch)
            added.append(ch)

    def _add_to_worker(self, ch: ChannelEntry) -> None:
        """ADD the channel to its worker, riding out a worker restart meanwhile."""
        w = self._workers[ch.worker]
        deadline = time.monotonic() + START_TIMEOUT_S + REPLY_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not w.ready.wait(left):
                raise WorkerError(f"worker {w.index} (CPU {w.cpu}) of pool {self.name!r} is "
                                  f"not running, channel {ch.name!r} could not be added")
            with self._ctx.lock:
                if ch.added_gen == w.gen:
                    return  # a restart added it
            try:
                self._send_add(w, ch)
                return
            except WorkerGone:
                time.sleep(0.01)  # the supervisor thread sees the death and restarts it

    def _send_standbys(self, w: Worker, chans: list[ChannelEntry]) -> None:
        """ADD_STANDBY ``chans`` to ``w`` (the channel socket only: the standby sends on
        it), pipelined (Link.commands) as the ADDs are; a refusal is logged: that channel
        goes on without its standby.  WorkerGone/TimeoutError if ``w`` is not there."""
        if not chans:
            return
        link = w.link
        if link is None:
            raise WorkerGone(f"worker {w.index} is not running")
        replies = link.commands([(lib.RTUDP_CMD_ADD_STANDBY, ch.slot, ch.name,
                                  ch.sock.fds()[:1]) for ch in chans], REPLY_TIMEOUT_S)
        for ch, (status, msg) in zip(chans, replies):
            if status != 0:
                log.warning("pool %r: worker %d refused to stand by for channel %r: %s",
                            self.name, w.index, ch.name, msg or status)

    def _add_standbys(self, chans: list[ChannelEntry]) -> None:
        """Give each of ``chans`` that has a standby its copy, a batch per standby
        worker; a worker not running now gets its copies when it has restarted
        (:meth:`readd`)."""
        def give(w: Worker, mine: list[ChannelEntry]) -> None:
            if not w.ready.wait(START_TIMEOUT_S):
                return
            try:
                self._send_standbys(w, mine)
            except (WorkerGone, TimeoutError) as exc:
                log.warning("pool %r: %d channels (the first %r) have no standby until "
                            "worker %d restarts: %s", self.name, len(mine), mine[0].name,
                            w.index, exc)

        _on_each_worker(self._workers, chans, lambda ch: ch.standby, give)

    def _remove_standby(self, ch: ChannelEntry) -> None:
        """Take ``ch``'s standby copy off its worker (a worker that is gone has none)."""
        if ch.standby is None:
            return
        w = self._workers[ch.standby]
        if not (self._ctx.running and w.ready.is_set() and w.link):
            return
        try:
            self._remove_from_worker(w, ch)
        except (WorkerError, TimeoutError) as exc:
            log.warning("pool %r: REMOVE of channel %r's standby: %s", self.name, ch.name, exc)

    def readd(self, w: Worker) -> int:
        """ADD its channels (those not paused) to a restarted worker, and the standby
        copies it keeps; how many channels.  A channel the worker refuses (its segment
        fails validation: a client scribbled over it) stays off the worker; the worker
        and its other channels must not suffer for it.  WorkerGone if the worker died
        again."""
        with self._ctx.lock:
            live = [c for c in self._chans.values() if not c.paused]
        # one a move is taking off it goes to its new worker: the move hands it over
        # itself when this worker, restarted, answers that it has it no more
        chans = [c for c in live if c.worker == w.index and not c.moving]
        for ch in chans:
            try:
                self._send_add(w, ch)
            except WorkerGone:
                raise
            except WorkerError as exc:
                log.error("pool %r: channel %r stays off restarted worker %d: %s", self.name,
                          ch.name, w.index, exc)
        self._send_standbys(w, [ch for ch in live if ch.standby == w.index])
        return len(chans)

    def _remove_from_worker(self, w: Worker, ch: ChannelEntry) -> tuple[int, str]:
        assert w.link is not None
        return w.link.command(lib.RTUDP_CMD_REMOVE, ch.slot, ch.name, timeout=REPLY_TIMEOUT_S)

    # ------------------------------------------------------------ pause, resume, close

    @_one_at_a_time
    def pause(self, name: str) -> None:
        """Take the channel off its worker (see ``Pool.pause_channel``)."""
        self._ctx.check_running()
        with self._ctx.lock:
            ch = self.find(name)
            if ch.paused:
                return
            ch.paused = True
            self._set_movable(ch, False)
            ch.seg.hold_direct_sends()  # before the worker lets go: nothing leaves meanwhile
        self._remove_standby(ch)  # a paused channel sends nothing
        self._take_off_worker(ch)
        with self._ctx.lock:
            ch.added_gen = -1

    @_one_at_a_time
    def resume(self, name: str) -> None:
        """Give a paused channel back to its worker (it sends what was queued)."""
        self._ctx.check_running()
        with self._ctx.lock:
            ch = self.find(name)
            if not ch.paused:
                return
            ch.paused = False
            self._set_movable(ch, not ch.pinned)
        self._add_to_worker(ch)
        self._add_standbys([ch])

    def move(self, name: str, cpu: int) -> None:
        """Move the channel to the worker on ``cpu`` while it runs (see
        ``Pool.move_channel``)."""
        self._ctx.check_running()
        to = self._place(cpu, 0.0)
        with self._ctx.lock:
            self.find(name)
        self.move_many([name], to)

    @_one_at_a_time
    def move_many(self, names: list[str], to: int) -> int:
        """Move the channels ``names`` to worker ``to`` while they run; how many moved
        (one closed meanwhile, or already there, is left out).  What is queued leaves
        once and in order, and its kind's state (rtp numbering, Netflux sequence, UDT
        connections) and its counters, which live in the segment, go on.

        The workers hand a running channel over themselves (handoff.c): ``to``
        prepares it first (TAKE_OVER) while its worker still serves it; then its
        worker's REMOVE lets go, routes its producers to ``to`` and wakes it, and
        ``to`` serves it from that wake-up on, with no round trip through this process
        in between.  A channel whose standby is on ``to`` (they change places), or
        that ``to`` cannot prepare, is taken off its worker first and then ADDed, as a
        restart gives a worker its channels back.  Commands go to each worker in one
        pipelined batch."""
        self._ctx.check_running()
        with self._ctx.lock:
            chans = [ch for n in names if (ch := self._chans.get(n)) is not None
                     and ch.worker != to]
            for ch in chans:
                ch.moving = True
        try:
            return self._move(chans, to)
        finally:
            with self._ctx.lock:
                for ch in chans:
                    ch.moving = False

    def _move(self, chans: list[ChannelEntry], to: int) -> int:
        """move_many's work, ``chans`` marked as moving."""
        swapped = [ch for ch in chans if ch.standby == to]
        took_gen = self._workers[to].gen  # a restart after it lost what was taken over
        unserved = self._settle_handoffs(chans)
        taken = self._take_over(self._workers[to], [ch for ch in chans if not ch.paused
                                                    and ch.standby != to
                                                    and id(ch) not in unserved])
        with self._ctx.lock:
            for ch in chans:
                if not ch.paused:
                    ch.seg.hold_direct_sends()  # before its worker lets go: nothing leaves
        for ch in swapped:
            self._remove_standby(ch)
        handed = set(id(ch) for ch in taken)
        left = [ch for ch in chans if not ch.paused and id(ch) not in handed]
        _on_each_worker(self._workers, left, lambda ch: ch.worker, self._take_all_off)
        _on_each_worker(self._workers, taken, lambda ch: ch.worker,
                        lambda w, mine: self._hand_all_off(w, mine, to))
        with self._ctx.lock:
            for ch in chans:
                frm = ch.worker
                self._set_movable(ch, False)
                self._load[frm] -= 1
                self._load[to] += 1
                self._rate[frm] -= ch.rate
                self._rate[to] += ch.rate
                ch.worker = to
                self._set_movable(ch, not ch.pinned and not ch.paused)
                ch.added_gen = took_gen if id(ch) in handed else -1
                if ch.standby == to:
                    self._guarding[to] -= 1
                    self._guarding[frm] += 1
                    ch.standby = frm
                ch.seg.set_worker(to)
                self._ctx.control.set_channel_worker(ch.slot, to)
            self._ctx.control.count_moves(len(chans))
        added: list[ChannelEntry] = []
        self._add_all_to_worker(self._workers[to], left, added)
        # one that ``to`` lost in a restart meanwhile is ADDed as the restart's would be
        self._add_all_to_worker(self._workers[to],
                                [ch for ch in taken if ch.added_gen != self._workers[to].gen],
                                added)
        self._add_standbys([ch for ch in swapped if not ch.paused])
        return len(chans)

    @staticmethod
    def _settle_handoffs(chans: list[ChannelEntry]) -> set[int]:
        """Wait up to HANDOFF_SETTLE_S for the worker each of ``chans`` was last handed
        to to take it (a wake-up): a new handoff marked before that would overwrite the
        one it has yet to see, and neither worker would serve the channel.  The ids of
        those still not taken: they move the slow way, their handoff cancelled (the
        worker awaiting them drops them at their REMOVE)."""
        deadline = time.monotonic() + HANDOFF_SETTLE_S
        pending = [ch for ch in chans if ch.seg.handoff_released()]
        while pending and time.monotonic() < deadline:
            time.sleep(HANDOFF_LOOK_S)
            pending = [ch for ch in pending if ch.seg.handoff_released()]
        for ch in pending:
            ch.seg.cancel_handoff()
        return {id(ch) for ch in pending}

    def _take_over(self, w: Worker, chans: list[ChannelEntry]) -> list[ChannelEntry]:
        """TAKE_OVER ``chans`` on ``w`` in one pipelined batch: those it prepared, to
        serve once their worker lets go.  None when ``w`` is not running."""
        link = w.link
        if not chans or link is None or not w.ready.is_set():
            return []
        for ch in chans:
            ch.seg.expect_handoff(w.index)
        try:
            replies = link.commands([(lib.RTUDP_CMD_TAKE_OVER, ch.slot, ch.name,
                                      ch.sock.fds()) for ch in chans], REPLY_TIMEOUT_S)
        except WorkerGone:
            replies = []
        taken = []
        for i, ch in enumerate(chans):
            if i < len(replies) and replies[i][0] == 0:
                taken.append(ch)
                continue
            ch.seg.cancel_handoff()
            if i < len(replies):
                log.warning("pool %r: worker %d could not prepare channel %r to take it "
                            "over (%s); it moves the slow way", self.name, w.index, ch.name,
                            replies[i][1] or replies[i][0])
        return taken

    def _hand_all_off(self, w: Worker, chans: list[ChannelEntry], to: int) -> None:
        """REMOVE ``chans`` from ``w``, which hands each to worker ``to`` as it lets go;
        those ``w`` no longer had (it died, or lost them in a restart) are handed over
        here.  The link is the one of the worker running once ``w`` is ready: a restart
        under way ends first, and the restarted worker answers that it has them no
        more (readd leaves out what moves)."""
        replies: list[tuple[int, str]] = []
        if w.ready.wait(START_TIMEOUT_S) and (link := w.link):
            try:
                replies = link.commands([(lib.RTUDP_CMD_REMOVE, ch.slot, ch.name, None)
                                         for ch in chans], REPLY_TIMEOUT_S)
            except WorkerGone:
                pass
        orphans = [ch for i, ch in enumerate(chans) if i >= len(replies) or replies[i][0] != 0]
        for ch in orphans:
            ch.seg.hand_over(len(self._workers))
        if orphans:
            self._ctx.control.ring_worker(to)

    def _take_all_off(self, w: Worker, chans: list[ChannelEntry]) -> None:
        """REMOVE ``chans`` from ``w`` in one pipelined batch (a worker not running has
        them no more, and readd, which leaves out what moves, does not give them back).
        A REMOVE fails only for a channel the worker does not serve, which is what the
        move needs: a worker restarted meanwhile answers so."""
        if not (w.ready.wait(START_TIMEOUT_S) and (link := w.link)):
            return
        try:
            replies = link.commands([(lib.RTUDP_CMD_REMOVE, ch.slot, ch.name, None)
                                     for ch in chans], REPLY_TIMEOUT_S)
        except WorkerGone:
            return  # it died holding them, and its restart leaves them out
        for ch, (status, msg) in zip(chans, replies):
            if status != 0:
                log.info("pool %r: worker %d did not serve channel %r it moves from: %s",
                         self.name, w.index, ch.name, msg or status)

    def _take_off_worker(self, ch: ChannelEntry) -> None:
        """REMOVE ``ch`` from its worker (one not running has it no more)."""
        w = self._workers[ch.worker]
        if w.ready.wait(START_TIMEOUT_S) and w.link:
            status, msg = self._remove_from_worker(w, ch)
            if status != 0:
                raise WorkerError(f"worker {w.index} could not let go of channel "
                                  f"{ch.name!r}: {msg or status}")

    @_one_at_a_time
    def close(self, name: str) -> None:
        """REMOVE the channel from its worker, free its slot, unlink its segment."""
        self._ctx.check_running()
        with self._ctx.lock:
            ch = self.find(name)
        self.drop(ch, tell_worker=True)

    def drop(self, ch: ChannelEntry, tell_worker: bool) -> None:
        """Take ``ch`` out of the table (and off its worker if ``tell_worker``); close
        its sockets and segment and unlink the segment, whatever the worker answers."""
        ctx = self._ctx
        with ctx.lock:
            if self._chans.get(ch.name) is ch:
                del self._chans[ch.name]
                self._packets.pop(ch.name, None)
                self._set_movable(ch, False)
                self._load[ch.worker] -= 1
                self._rate[ch.worker] -= ch.rate
                if ch.standby is not None:
                    self._guarding[ch.standby] -= 1
        w = self._workers[ch.worker]
        try:
            if tell_worker and not ch.paused:
                self._remove_standby(ch)
            if (tell_worker and not ch.paused and ctx.running and w.ready.wait(START_TIMEOUT_S)
                    and w.link):
                status, msg = self._remove_from_worker(w, ch)
                if status != 0:
                    log.warning("pool %r: worker %d answered REMOVE of %r with %d: %s",
                                self.name, w.index, ch.name, status, msg)
        except (WorkerError, TimeoutError) as exc:
            log.warning("pool %r: REMOVE of channel %r: %s", self.name, ch.name, exc)
        finally:
            with ctx.lock:
                if ctx.control_segment is not None:
                    ctx.control_segment.clear_channel(ch.slot)
                ch.seg.revoke_direct_sends()
                ch.sock.close()
                ch.seg.close()
                ch.seg.unlink()

    def release(self) -> None:
        """The pool stops: close every channel's sockets and segment (their names are
        already unlinked, the workers gone)."""
        with self._ctx.lock:
            for ch in self._chans.values():
                ch.seg.revoke_direct_sends()
                ch.sock.close()
                ch.seg.close()
            self._chans.clear()


__all__ = ["ChannelEntry", "ChannelTable"]
