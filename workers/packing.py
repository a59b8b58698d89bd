"""Packed, then spread: which worker serves each channel (docs/scheduling.md).

A pool's footprint follows its work.  A channel opened without ``cpu=`` goes to the
first worker, in the pool's CPU order, that already serves and has headroom; an idle
worker (parked, its CPU left to the programs the pool serves) is given channels only
when those that serve have none.  Headroom counts the work the channels will bring as
well as the work measured: a channel's kind declares the packets a second its options
make (a paced rtp stream's ptime, a Netflux interval: ``Kind.packet_rate``), or the
channel declares them itself (``ChannelConfig.packet_rate``), each
worth :data:`PACKET_WORK_S` of a worker's CPU, and a worker takes a channel while its
work so counted stays under :data:`PACK_SHARE`.  So thousands of streams opened
before their first packet land on as many workers as will carry them, with no move.  The
packer looks at the workers every :data:`LOOK_S` and moves channels while they run
(``ChannelTable.move_many``):

* **spread**: a worker that no longer keeps up, two looks in a row, gives the
  channels carrying about half its packets to the next worker with headroom (every
  other one in the order they were opened, where they are alike).  It no
  longer keeps up when its work (its CPU time less what it spun waiting for a
  deadline, which it would give up to more work, and less its conductor's, which
  prepares channels being added) passes :data:`SPREAD_SHARE` of its
  CPU, or when its work passes :data:`LATE_WORK` and more than :data:`LATE_SHARE` of
  what it sent left late by its own doing (``tx_late_sent``: more than 100 µs after a
  deadline it was given in time; not judged with a lateness budget, whose late sends
  are the user's choice);
* **gather**: while the work of every serving worker together, measured and declared,
  stays under :data:`GATHER_SHARE` for :data:`GATHER_S`, the last serving worker's
  channels go to the first one, and it parks.

A worker that has just given or taken channels is left alone for :data:`SETTLE_S`, so
that its share shows the move before the next one.  A channel pinned with ``cpu=``
never moves.  Packing is the default (``Pool(placement="packed")``); ``"spread"`` puts
each channel on the worker with the fewest, for good.

:func:`plan` is the policy, pure and testable; :class:`Packer` measures, asks it and
carries out its moves.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .cpu_meter import ShareMeter, thread_cpu_ns
from .process import conductor_tid

if TYPE_CHECKING:
    from .channel_table import ChannelTable
    from .watcher import Worker

log = logging.getLogger("rtudp.workers")

#: how often the workers are looked at (s) ...
LOOK_S = 0.2
#: ... and while none of them works more than IDLE_WORK of its CPU (a look costs the
#: supervisor a few hundred µs: an idle pool's looks are spaced out)
IDLE_LOOK_S = 1.0
IDLE_WORK = 0.02
#: a worker whose work passes this share of its CPU spreads (two looks in a row):
#: near what it can do at all, since one worker keeps its deadlines until then
SPREAD_SHARE = 0.75
#: a channel joins a serving worker while the worker's work, with the packets its
#: channels declare, stays under this share of its CPU: a worker keeps its deadlines
#: at the pool's bound with this much work (docs/scheduling.md, "Packed, then spread")
PACK_SHARE = 0.45
#: a worker's work for a declared packet a second (a share of its CPU per packet/s):
#: what a packet costs a worker here, the kernel's send and loopback delivery included
PACKET_WORK_S = 4e-6
#: ... as does one whose work passes LATE_WORK and that sent more than LATE_SHARE of
#: its packets late by its own doing (over 100 µs: RTUDP_TX_LATE_NS), at least
#: LATE_MIN of them (two looks in a row); a smaller share spreads a packed pool at
#: the lateness of its streams' first seconds, for moves that cost more than they
#: save.  A worker late with less work is late for want of a wake-up, not of CPU:
#: another worker would not help it, and its channels are not weighed (a look's cost)
LATE_WORK = 0.4
LATE_SHARE = 0.05
LATE_MIN = 50
#: the serving workers gather while their work together stays under this share ...
GATHER_SHARE = 0.3
#: ... for this long (s): a lull between bursts moves nothing
GATHER_S = 2.0
#: after a move, the workers it touched are left alone this long (s)
SETTLE_S = 1.0
#: channels moved together, and the pause between two slices (s): both workers' TX
#: threads do a move's work (the old one lets go of each channel and drops their
#: timers, the new one activates them), so a spread of thousands of channels takes
#: their time a slice at a time, between deadlines, not all at once
MOVE_SLICE = 64
MOVE_PAUSE_S = 0.005
#: a spread moves every other channel when they carry half the packets within this
#: share of the worker's packets (half_the_packets)
ALTERNATE_SLACK = 0.1
#: the placements a pool can be given, and the one it gets unless told
PLACEMENTS = ("packed", "spread")
DEFAULT_PLACEMENT = "packed"


@dataclass
class WorkerLoad:
    """One worker as a look saw it."""

    index: int
    #: its work's share of its CPU since the last look (None: not measured)
    work: float | None
    #: how many of its channels may move (not pinned, not paused)
    n_movable: int = 0
    #: how many channels it serves, pinned ones included
    channels: int = 0
    #: its capped sleeps grew since the last look: it met its real-time cap
    capped: bool = False
    #: its channels that may move, with their packets since they were last weighed
    #: (weighed only where a spread needs them)
    movable: dict[str, int] = field(default_factory=dict)
    #: it sent late by its own doing since the last look (LATE_SHARE, LATE_MIN)
    late: bool = False
    #: the packets a second its channels declare (ChannelConfig.packet_rate or
    #: Kind.packet_rate)
    rate: float = 0.0

    def expected(self) -> float:
        """Its work as its channels will make it: the work measured, or their declared
        packets' work if that is more (channels that have not begun yet)."""
        return max(self.work or 0.0, self.rate * PACKET_WORK_S)

    def behind(self) -> bool:
        """Whether it no longer keeps up, as this look saw it."""
        return self.late or (self.work is not None and self.work > SPREAD_SHARE)


@dataclass(frozen=True)
class Move:
    """Channels ``names`` go from worker ``frm`` to worker ``to`` (``names`` None: every
    one of ``frm``'s that may move)."""

    names: tuple[str, ...] | None
    frm: int
    to: int
    why: str


def open_target(loads: Sequence[WorkerLoad], rate: float = 0.0) -> int:
    """The worker a new channel declaring ``rate`` packets a second goes to: the first
    serving one with headroom for it (PACK_SHARE), else the first idle one, else the
    one that expects the least work (of those, the one with the fewest channels)."""
    for w in loads:
        if (w.channels and not w.capped
                and w.expected() + rate * PACKET_WORK_S < PACK_SHARE):
            return w.index
    for w in loads:
        if not w.channels:
            return w.index
    return min(loads, key=lambda w: (w.expected(), w.channels, w.index)).index


def half_the_packets(movable: dict[str, int]) -> tuple[str, ...]:
    """The channels carrying about half of ``movable``'s packets (at least one; all of
    them but one at most, so the worker keeps work to measure).  ``movable`` is in the
    order the channels were opened: every other one of them, where that carries half
    the packets within ALTERNATE_SLACK (streams alike); else the busiest first."""
    total = sum(movable.values())
    if len(movable) <= 1:
        return tuple(movable)
    # streams opened together start together, their deadlines in the order they were
    # opened: every other one leaves both workers' deadlines as evenly spread as they
    # were, where a run of them would leave each worker a bunch
    alternate = tuple(list(movable)[1::2])
    if abs(sum(movable[n] for n in alternate) - total / 2) <= ALTERNATE_SLACK * total:
        return alternate
    order = sorted(movable, key=lambda n: (-movable[n], n))
    picked: list[str] = []
    moved = 0
    for name in order[:-1]:
        if picked and moved + movable[name] > total / 2:
            continue
        picked.append(name)
        moved += movable[name]
        if moved >= total / 2:
            break
    return tuple(picked)


def plan(loads: Sequence[WorkerLoad], hot: set[int], calm_since: float | None,
         now: float) -> Move | None:
    """The one move to make now, if any.  ``hot``: the workers behind at the previous
    look too; ``calm_since``: since when the serving workers' work has stayed under
    GATHER_SHARE together (None: it is not)."""
    serving = [w for w in loads if w.channels]
    for w in serving:
        if not (w.behind() and w.index in hot) or not w.n_movable:
            continue
        room = [t for t in loads if t.index != w.index and not t.capped and not t.late
                and t.expected() < SPREAD_SHARE / 2]
        if not room:
            continue
        to = min(room, key=lambda t: (not t.channels, t.index))
        names = half_the_packets(w.movable)
        why = (f"its work at {w.work:.0%} of its CPU" if not w.late
               else f"more than {LATE_SHARE:.0%} of its sends late by its own doing")
        return Move(names, w.index, to.index, f"spread: worker {w.index} {why}")
    if (len(serving) >= 2 and calm_since is not None and now - calm_since >= GATHER_S):
        last, first = serving[-1], serving[0]
        if last.n_movable and last.n_movable == last.channels:
            return Move(None, last.index, first.index,
                        "gather: the serving workers' work together under "
                        f"{GATHER_SHARE:.0%} of a CPU for {GATHER_S:g} s")
    return None


#: a worker's capped sleeps (spin.h: past its real-time cap) that grow by more than
#: this in one look say it meets the cap, not that it brushed it once
CAPPED_PER_LOOK = 20


class PoolLoads:
    """Measures a pool's workers for the packer: each one's work (its processes' CPU
    time, less its spin_ns and its conductor's time), whether it met its real-time
    cap, whether it sent late by its own doing (only where ``judge_late``: a pool
    without a lateness budget), and its channels (weighed by their packets only where
    a spread needs them)."""

    def __init__(self, table: "ChannelTable", workers: "list[Worker]", control: Callable[[], Any],
                 judge_late: bool = True) -> None:
        self._table = table
        self._workers = workers
        self._control = control
        self._judge_late = judge_late
        self._meter = ShareMeter()
        # the conductor prepares channels being added and frees removed ones: a burst
        # of opens is its work, not the channels', and counted as the worker's it would
        # send the rest of the burst to another worker as if this one were full
        self._conductors = ShareMeter(read=thread_cpu_ns)
        self._conductor_tid: dict[int, int | None] = {}  # worker pid -> its conductor's
        # index -> (at ns, spin ns, capped, sent, late sent) at the last look
        self._last: dict[int, tuple[int, int, int, int, int]] = {}

    def __call__(self) -> list[WorkerLoad]:
        served = self._table.served()
        rates = self._table.declared_rates()
        procs = [(w.index, sp.proc.pid) for w in self._workers if (sp := w.spawned) is not None]
        shares = self._meter.look(procs)
        aside = self._conductors.look(self._conductor_threads(procs))
        slots = {int(s["index"]): s for s in self._control().workers()}
        now = time.monotonic_ns()
        loads = []
        for w in self._workers:
            n, n_movable = served.get(w.index, (0, 0))
            slot = slots.get(w.index)
            spin, capped, sent, late_sent = (int(slot[k]) if slot else 0 for k in
                                             ("spin_ns", "capped_sleeps", "tx_sent",
                                              "tx_late_sent"))
            last = self._last.get(w.index)
            self._last[w.index] = (now, spin, capped, sent, late_sent)
            work = shares.get(w.index)
            met_cap = False
            if work is not None and last is not None and now > last[0]:
                work -= aside.get(w.index, 0.0)
                work = max(0.0, work - (spin - last[1]) / (now - last[0]))
                met_cap = capped - last[2] > CAPPED_PER_LOOK
            load = WorkerLoad(w.index, work, n_movable, n, met_cap, rate=rates.get(w.index, 0.0))
            if self._judge_late and n and (work or 0.0) > LATE_WORK and last is not None:
                # the worker's own totals: a look reads no channel (a restarted worker
                # counts from 0: its first look judges nothing)
                new_sent, new_late = sent - last[3], late_sent - last[4]
                load.late = new_late >= LATE_MIN and new_late > LATE_SHARE * new_sent >= 0
            if n_movable and load.behind():
                load.movable = self._table.weigh(self._table.movable(w.index))
            loads.append(load)
        return loads

    def _conductor_threads(self, procs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """(worker index, its conductor's thread id) of the workers ``procs`` names,
        found once a worker process (a restarted worker's anew)."""
        found: dict[int, int | None] = {}
        for index, pid in procs:
            tid = self._conductor_tid.get(pid)
            if tid is None:
                tid = conductor_tid(pid)
            found[pid] = tid
        self._conductor_tid = found
        return [(index, tid) for index, pid in procs if (tid := found[pid]) is not None]


class Packer:
    """Looks at a pool's workers and moves channels as :func:`plan` says.

    ``measure()`` gives the workers' loads; ``move(move)`` carries a move out (and
    raises on failure).  :meth:`look` is called from the pool's packing thread."""

    def __init__(self, measure: Callable[[], list[WorkerLoad]],
                 move: Callable[[Move], None]) -> None:
        self._measure = measure
        self._move = move
        self._hot: set[int] = set()
        self._calm_since: float | None = None
        self._settled_at: dict[int, float] = {}
        #: the loads the last look saw (rtstat and tests read them)
        self.loads: list[WorkerLoad] = []

    def open_target(self, channels: dict[int, int], rates: dict[int, float],
                    rate: float) -> int:
        """The worker a channel opened now, declaring ``rate`` packets a second, goes
        to, by the last look's work, the channels each worker serves now and their
        declared packets (``channels``, ``rates``: by worker index)."""
        last = {w.index: w for w in self.loads}
        loads = [WorkerLoad(i, last[i].work if i in last else None, channels=n,
                            capped=last[i].capped if i in last else False,
                            rate=rates.get(i, 0.0))
                 for i, n in sorted(channels.items())]
        return open_target(loads, rate)

    def pause_s(self) -> float:
        """How long to wait before the next look: longer while the workers idle."""
        busy = any((w.work or 0.0) > IDLE_WORK or w.capped for w in self.loads)
        return LOOK_S if busy or not self.loads else IDLE_LOOK_S

    def look(self) -> Move | None:
        """Measure, and make the move the policy asks for (the move made, or None)."""
        now = time.monotonic()
        loads = self._measure()
        self.loads = loads
        serving = [w for w in loads if w.channels]
        total = sum(w.expected() for w in serving)
        if len(serving) >= 2 and total < GATHER_SHARE:
            self._calm_since = self._calm_since if self._calm_since is not None else now
        else:
            self._calm_since = None
        # a worker a move has just touched neither gives nor takes until it shows it
        settled = [w for w in loads if now - self._settled_at.get(w.index, -SETTLE_S) >= SETTLE_S]
        move = plan(settled, self._hot, self._calm_since, now)
        self._hot = {w.index for w in loads if w.behind()}
        if move is None:
            return None
        log.info("moving %s channels from worker %d to %d (%s)",
                 "all movable" if move.names is None else len(move.names), move.frm,
                 move.to, move.why)
        self._move(move)
        self._settled_at[move.frm] = self._settled_at[move.to] = time.monotonic()
        self._calm_since = None
        return move


__all__ = ["ALTERNATE_SLACK", "DEFAULT_PLACEMENT", "GATHER_S", "GATHER_SHARE", "IDLE_LOOK_S", "IDLE_WORK", "LATE_MIN", "LATE_SHARE",
           "LATE_WORK", "LOOK_S", "MOVE_PAUSE_S", "MOVE_SLICE", "Move", "PACKET_WORK_S",
           "PACK_SHARE", "PLACEMENTS", "Packer",
           "PoolLoads", "SETTLE_S", "SPREAD_SHARE", "WorkerLoad", "half_the_packets",
           "open_target", "plan"]
