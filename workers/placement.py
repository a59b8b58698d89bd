"""Keeps the threads of the process that runs a pool off the CPUs its workers saturate.

A worker sending 50 kpps on a 2-vCPU VM holds its CPU ~90 % of the time (it spins
across gaps shorter than a wake-up costs, up to its RT cap).  The program that queues
those packets (a Python submitter: ~20-30 % of a CPU at that rate) then gets what the
worker leaves, ~12 %, shared with anything else on that CPU.  The kernel's load
balancer does not keep it away: traced with two CPU hogs (``rtudp bench rtudp``), it
moved the submitter between the worker's CPU and the other one every 100-200 ms
(``sched_balance_rq``, by task count, blind to the real-time load), and on the
worker's CPU the submitter fell up to 0.86 s behind its schedule.

So the pool's heartbeat thread looks five times a second at each worker's CPU time
(less often while every worker idles: :data:`IDLE_SHARE`, :data:`LOOK_MAX_S`).  While
a worker uses more than :data:`SATURATED_SHARE` of its CPU, this process's threads
that run where the process may run (their affinity untouched by the program) are
restricted to the other CPUs; when every CPU is that busy, to the one whose worker
leaves the most; when the workers calm down, or the pool stops, they get their
affinity back.  A thread whose affinity the program changed meanwhile is left as the
program set it.  ``Pool(place_threads=False)`` turns it off.

The looks need two of their periods to see a worker that just got busy, and the
first tenth of a second is when it happens most: traced on ``rtudp bench timing``'s
default-budget case, the worker's CPU went idle for one of its 30 µs capped sleeps
while the submitter, just woken on the other CPU, waited behind a kernel thread
there, and the kernel's idle balancing pulled it onto the worker's CPU, where it got
35 µs in each 200 µs for 20-185 ms (4 of 19 fresh pools; in one, 3,637 packets of 20 ms
queued ahead left late).  So a channel that sends, opened from this process, keeps
the threads off its worker's CPU at once, for :data:`EXPECT_S`, before any look;
the looks decide after that.  Expected CPUs are not kept off when that would leave
only CPUs measured or expected busy: a program that opens a sending channel on every
worker (the two ends of a request and its reply) would be squeezed onto one CPU by a
guess, with the ends of its ping-pong together on it.

A child inherits the affinity of the thread that starts it, for good.  A thread that
forks (``os.fork``, ``multiprocessing``'s default ``fork``) does so with the process's
own affinity, and gets the one it was given back after; a child started without
Python's fork hooks (``subprocess``, ``multiprocessing``'s ``spawn``) inherits the
thread's affinity as it is at that moment.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Callable, Iterable

from .cpu_meter import ShareMeter

log = logging.getLogger("rtudp.workers")

#: a worker that used more than this share of its CPU since the last look saturates it
SATURATED_SHARE = 0.7
#: ... and a CPU kept off stays so until its worker uses less than this (a worker at
#: its cap dips under the first now and then: each dip would move the threads back)
CALM_SHARE = 0.5
#: how often the CPU shares are looked at (s): at 50 kpps a submitter on the busy CPU
#: falls ~80 ms behind in each 100 ms there, so soon; 10 of the worker's 20 ms windows
LOOK_S = 0.2
#: ... but while every worker used less than this share of its CPU since the last look
#: and nothing is kept off or expected, the next look comes twice as late as the last,
#: up to LOOK_MAX_S: a look costs the pool's process ~0.1 ms of CPU on a VM (its code
#: cold after the wait), most of what an idle pool costs (docs/scheduling.md,
#: "Resting").  A worker that gets busy then is seen at the next look (its share over
#: the longer window is above this), and from there on every LOOK_S
IDLE_SHARE = 0.01
LOOK_MAX_S = 1.0
#: how long a channel that sends keeps the threads off its worker's CPU once opened,
#: whatever the looks find: a program starts sending soon after it opens a channel,
#: and the looks have taken over by then (a CPU kept off stays so while its worker
#: uses over CALM_SHARE)
EXPECT_S = 1.0


def _each(ref: "weakref.ReferenceType[ThreadPlacement]", method: str) -> None:
    """A fork hook: ``method`` of the placement ``ref`` refers to, if it still exists."""
    placement = ref()
    if placement is not None:
        getattr(placement, method)()


def _threads() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return []


class ThreadPlacement:
    """One pool's placement of its process's threads (see the module docstring).

    ``workers()`` lists the pool's workers as (pid, cpu) pairs.  :meth:`look` is
    called from the heartbeat's thread, :meth:`expect` from the one that opens a
    channel, :meth:`restore` once the heartbeat is done looking; a lock keeps them
    apart.
    """

    def __init__(self, workers: Callable[[], Iterable[tuple[int, int]]]) -> None:
        self._workers = workers
        self._base = frozenset(os.sched_getaffinity(0))  # where the process may run
        self._meter = ShareMeter()                       # the workers' shares, by CPU
        self._next_at = 0.0
        #: how long after a look the next one comes (s)
        self.look_period = LOOK_S
        self._off = False
        self._set: dict[int, frozenset[int]] = {}        # thread -> the affinity given it
        self._shares: dict[int, float] = {}              # cpu -> share at the last look
        self._expected: dict[int, float] = {}            # cpu -> kept off until (monotonic)
        self._saturated: frozenset[int] = frozenset()    # cpus measured busy at the last look
        self._lock = threading.RLock()  # restore() is also called from a failed update
        #: the CPUs this process's threads are kept off now
        self.avoided: frozenset[int] = frozenset()
        ref = weakref.ref(self)
        os.register_at_fork(before=lambda: _each(ref, "_before_fork"),
                            after_in_parent=lambda: _each(ref, "_after_fork"),
                            after_in_child=lambda: _each(ref, "_after_fork_child"))

    # A forked child inherits the forking thread's affinity for good, and no
    # placement of its own gives it back: the thread forks with the process's own
    # affinity, and gets the one it was given back afterwards.  The lock is held
    # across the fork, so that no look restricts the thread meanwhile.
    def _before_fork(self) -> None:
        self._lock.acquire()
        self._set_this_thread(self._base)

    def _after_fork(self) -> None:
        try:
            self._set_this_thread(self._set.get(threading.get_native_id(), self._base))
        finally:
            self._lock.release()

    def _set_this_thread(self, cpus: frozenset[int]) -> None:
        """The calling thread to ``cpus``, if this placement moved it."""
        if self._off or threading.get_native_id() not in self._set:
            return
        try:
            os.sched_setaffinity(0, cpus)
        except OSError:
            pass

    def _after_fork_child(self) -> None:
        self._set.clear()  # the child's threads are not the ones this placement moved
        self._off = True
        self._lock.release()

    def look(self) -> None:
        """Every :data:`LOOK_S` (up to :data:`LOOK_MAX_S` while the workers are idle):
        measure the workers, move or give back threads.  It never raises (its caller is
        the pool's heartbeat): a failure is logged, the threads get their affinity back
        and placement stays off."""
        now = time.monotonic()
        if self._off or now < self._next_at:
            return
        with self._lock:
            self._update(measure=True)
            quiet = (not self.avoided and not self._expected and not self._saturated
                     and bool(self._shares)
                     and all(share < IDLE_SHARE for share in self._shares.values()))
            self.look_period = min(self.look_period * 2, LOOK_MAX_S) if quiet else LOOK_S
            self._next_at = now + self.look_period

    def expect(self, cpu: int) -> None:
        """A channel that sends was just put on the worker of ``cpu``: keep the threads
        off that CPU now, for :data:`EXPECT_S` (see the module docstring).  Never
        raises (its caller has just opened a channel)."""
        with self._lock:
            if self._off:
                return
            now = time.monotonic()
            self._expected[cpu] = now + EXPECT_S
            self._update(measure=False)
            self.look_period = LOOK_S  # the looks take over from the guess in time
            self._next_at = min(self._next_at, now + LOOK_S)

    def _update(self, measure: bool) -> None:
        """Place by the shares (measured now, or the last look's) and what is expected;
        on a failure, give back what was moved and stay off."""
        try:
            if measure:
                self._shares = self._measure()
            self.place(self._busy(self._shares))
        except Exception:  # noqa: BLE001 - the heartbeat must go on
            log.exception("placing this process's threads failed; leaving them where "
                          "they are")
            try:
                self.restore()
            except Exception:  # noqa: BLE001 - as good as it gets
                pass
            self._off = True

    def _measure(self) -> dict[int, float]:
        """Each measured worker's share of its CPU since the last look, by CPU."""
        return self._meter.look((cpu, pid) for pid, cpu in self._workers())  # type: ignore[return-value]

    def _busy(self, shares: dict[int, float]) -> frozenset[int]:
        """The CPUs to keep off: those whose workers saturate them, but never all the
        process may use: of those, the one whose worker leaves the most stays usable
        (at 50 kpps each way both workers may pass the mark, the receiver's less).
        Expected CPUs are kept off only while some CPU is neither measured busy nor
        expected: with a sending channel on every worker the expectation tells no
        CPU from another, and squeezing the process (and the children it starts
        meanwhile, which inherit the mask) onto one of them by a guess would put the
        two ends of a request and its reply on one CPU."""
        busy = {cpu for cpu, share in shares.items()
                if share > SATURATED_SHARE or (cpu in self.avoided and share >= CALM_SHARE)}
        # a worker not measured this time (restarted): as it was
        busy |= {cpu for cpu in self._saturated if cpu not in shares}
        self._saturated = frozenset(busy)
        now = time.monotonic()
        self._expected = {cpu: until for cpu, until in self._expected.items() if until > now}
        guessed = busy | set(self._expected)
        if not guessed >= self._base:
            busy = guessed
        if busy >= self._base:
            busy.discard(min(self._base, key=lambda cpu: shares.get(cpu, 1.0)))
        return frozenset(busy)

    def place(self, avoid: frozenset[int]) -> None:
        """Keep this process's untouched threads off the CPUs ``avoid`` (all of them
        back where the process may run if that leaves none)."""
        target = self._base - avoid
        if not target or target == self._base:
            target, avoid = self._base, frozenset()
        if not avoid and not self.avoided and not self._set:
            return  # nothing kept off, nothing to give back: the usual look
        if avoid != self.avoided:
            if avoid:
                log.info("keeping this process's threads off CPUs %s: their workers use "
                         "over %d %% of them, or have just been given a channel that sends",
                         sorted(avoid), round(SATURATED_SHARE * 100))
            else:
                log.info("this process's threads may run on all its CPUs again")
        self.avoided = avoid
        ours = set(self._set.values())  # what we gave threads (taken before any changes)
        tids = _threads()
        for tid in tids:
            try:
                now = frozenset(os.sched_getaffinity(tid))
                # ours: the process's own affinity, or what we gave it or a thread it
                # started since (which inherited it)
                if now != self._base and now not in ours:
                    self._set.pop(tid, None)  # the program placed it: not ours
                    continue
                if now != target:
                    os.sched_setaffinity(tid, target)
                if target == self._base:
                    self._set.pop(tid, None)
                else:
                    self._set[tid] = target
            except OSError:  # the thread ended meanwhile
                self._set.pop(tid, None)
        for tid in set(self._set) - set(tids):
            del self._set[tid]  # ended

    def restore(self) -> None:
        """Give every thread moved back its affinity (the pool stops; nothing once a
        failure turned placement off: that gave back what it could)."""
        with self._lock:
            if self._off:
                return
            self._expected.clear()
            self.place(frozenset())
            self._meter.forget()


__all__ = ["CALM_SHARE", "EXPECT_S", "IDLE_SHARE", "LOOK_MAX_S", "LOOK_S", "SATURATED_SHARE",
           "ThreadPlacement"]
