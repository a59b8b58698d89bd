"""The pool keeps its process's threads off the CPUs its workers saturate
(rtudp.workers.placement): a Python submitter on a worker's busy CPU falls behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import rtudp
from rtudp.workers.placement import (CALM_SHARE, LOOK_MAX_S, LOOK_S, SATURATED_SHARE,
                                     ThreadPlacement)

CPUS = sorted(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(
    len(CPUS) < 2, reason=f"this process may run on CPUs {CPUS} only: there is no other "
    "CPU to keep its threads on")


def _affinity(tid: int) -> set[int]:
    return os.sched_getaffinity(tid)


class _Parked:
    """A thread of this process that waits until told to end; ``tid`` its native id,
    ``pin`` an affinity it sets itself first (the program placed it)."""

    def __init__(self, pin: set[int] | None = None) -> None:
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.tid = 0
        self.pin = pin
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    def _run(self) -> None:
        self.tid = threading.get_native_id()
        if self.pin is not None:
            os.sched_setaffinity(0, self.pin)
        self.ready.set()
        self.stop.wait()

    def end(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def base_affinity():
    """Gives this thread its affinity back whatever the test did."""
    before = os.sched_getaffinity(0)
    yield before
    os.sched_setaffinity(0, before)


@needs_two_cpus
def test_threads_are_kept_off_a_busy_cpu_and_given_back(base_affinity):
    busy = CPUS[-1]
    rest = set(CPUS) - {busy}
    plain = _Parked()
    pinned = _Parked(pin={busy})     # the program put it there: it stays
    placement = ThreadPlacement(lambda: [])
    try:
        placement.place(frozenset({busy}))
        assert placement.avoided == {busy}
        me = threading.get_native_id()
        assert _affinity(me) == rest
        assert _affinity(plain.tid) == rest
        assert _affinity(pinned.tid) == {busy}
        later = _Parked()                # started meanwhile: inherits, is ours too
        placement.restore()
        assert placement.avoided == set()
        for tid in (me, plain.tid, later.tid):
            assert _affinity(tid) == set(CPUS), tid
        assert _affinity(pinned.tid) == {busy}
        later.end()
    finally:
        placement.restore()
        plain.end()
        pinned.end()


@needs_two_cpus
def test_a_thread_the_program_moves_meanwhile_is_left_where_it_put_it(base_affinity):
    busy = CPUS[-1]
    placement = ThreadPlacement(lambda: [])
    t = _Parked()
    try:
        placement.place(frozenset({busy}))
        assert _affinity(t.tid) == set(CPUS) - {busy}
        os.sched_setaffinity(t.tid, {busy})  # the program's own choice now
        placement.restore()
        assert _affinity(t.tid) == {busy}
        assert _affinity(threading.get_native_id()) == set(CPUS)
    finally:
        t.end()


def test_no_thread_moves_when_every_cpu_is_busy(base_affinity):
    placement = ThreadPlacement(lambda: [])
    placement.place(frozenset(CPUS))
    assert placement.avoided == set()
    assert _affinity(threading.get_native_id()) == set(CPUS)


def _hold_cpu(cpu: int) -> None:
    """In the stand-in worker before it runs: pinned to ``cpu``, and first there (nice
    -20) when allowed; not allowed, it shares the CPU fairly, as on a quiet machine."""
    os.sched_setaffinity(0, {cpu})
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -20)
    except PermissionError:
        pass


@needs_two_cpus
def test_a_worker_that_holds_its_cpu_is_measured_and_its_cpu_avoided(base_affinity):
    """A stand-in worker busy on one CPU: the looks find it over SATURATED_SHARE and
    move this thread off; stopped, it falls under CALM_SHARE and the thread comes back.
    It holds its CPU as a worker does (a real one runs SCHED_FIFO): at nice -20 where
    this process may, so a busy loop of some other program there does not halve it."""
    busy = CPUS[-1]
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                           preexec_fn=lambda: _hold_cpu(busy))
    placement = ThreadPlacement(lambda: [(hog.pid, busy)])
    me = threading.get_native_id()
    try:
        deadline = time.monotonic() + 10
        while placement.avoided != {busy} and time.monotonic() < deadline:
            placement.look()
            time.sleep(0.05)
        assert placement.avoided == {busy}, \
            f"a busy loop alone on CPU {busy} not found over {SATURATED_SHARE:.0%} in 10 s"
        assert _affinity(me) == set(CPUS) - {busy}
        os.kill(hog.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while placement.avoided and time.monotonic() < deadline:
            placement.look()
            time.sleep(0.05)
        assert placement.avoided == set(), f"a stopped worker not under {CALM_SHARE:.0%}"
        assert _affinity(me) == set(CPUS)
    finally:
        placement.restore()
        hog.kill()
        hog.wait()


def _look_until(placement: ThreadPlacement, done, timeout: float = 20.0) -> bool:
    """Look as the heartbeat does (a look is skipped until its time) until ``done()``."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        placement.look()
        time.sleep(0.05)
    return bool(done())


def test_looks_back_off_while_the_workers_idle(base_affinity):
    """A look costs the pool's process CPU time: while every worker idles, each look
    comes twice as late as the one before, up to LOOK_MAX_S; a channel that sends,
    opened here, brings them back to LOOK_S at once, and so does a worker at work."""
    idle = subprocess.Popen(["sleep", "60"])  # a worker that does nothing
    busy = None
    try:
        placement = ThreadPlacement(lambda: [(idle.pid, CPUS[-1])])
        assert _look_until(placement, lambda: placement.look_period == LOOK_MAX_S), \
            f"the looks at an idle worker stay {placement.look_period} s apart"
        placement.expect(CPUS[-1])
        assert placement.look_period == LOOK_S
        placement.restore()

        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                preexec_fn=lambda: _hold_cpu(CPUS[-1]))
        placement = ThreadPlacement(lambda: [(busy.pid, CPUS[-1])])
        end = time.monotonic() + 2.0  # long enough to back off to LOOK_MAX_S
        while time.monotonic() < end:
            placement.look()
            time.sleep(0.05)
        assert placement.look_period == LOOK_S, "the looks back off from a worker at work"
        placement.restore()
    finally:
        for proc in (idle, busy):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_threads_are_placed_for_a_spread_pool_unless_told():
    assert rtudp.Pool("x").place_threads is False                      # packed
    assert rtudp.Pool("x", placement="spread").place_threads is True
    assert rtudp.Pool("x", placement="spread", place_threads=False).place_threads is False
    assert rtudp.Pool("x", place_threads=True).place_threads is True


def test_place_threads_must_be_a_bool():
    with pytest.raises(TypeError, match="place_threads must be a bool or None, got 'yes'"):
        rtudp.Pool("x", place_threads="yes")


@needs_two_cpus
def test_busy_cpus_are_chosen_with_hysteresis_and_one_is_always_left():
    a, b = CPUS[0], CPUS[-1]
    placement = ThreadPlacement(lambda: [])
    others = frozenset(CPUS) - {a, b}
    # both workers past the mark (50 kpps each way): the receiver's CPU, which its
    # worker leaves more of, stays usable, unless a CPU without a worker is left
    assert placement._busy({a: 0.75, b: 0.9}) == ({b} if not others else {a, b})
    assert placement._busy({a: 0.2, b: 0.9}) == {b}
    placement.avoided = frozenset({b})
    assert placement._busy({a: 0.2, b: 0.6}) == {b}      # kept off till it calms down
    assert placement._busy({a: 0.2}) == {b}              # restarted worker: as it was
    assert placement._busy({a: 0.2, b: 0.4}) == set()
    assert placement._busy({a: 0.2}) == set()            # ... and once it calmed down


@needs_two_cpus
def test_sending_channels_expected_on_every_cpu_keep_the_threads_nowhere(base_affinity):
    """Channels that send, opened on every worker (the ends of a request and its
    reply): the guess tells no CPU from another, so it does not squeeze the process,
    and the children it starts, onto one of them."""
    placement = ThreadPlacement(lambda: [])
    me = threading.get_native_id()
    try:
        placement.expect(CPUS[0])
        assert placement.avoided == {CPUS[0]}
        for cpu in CPUS[1:]:
            placement.expect(cpu)
        assert placement.avoided == set()
        assert _affinity(me) == set(CPUS)
        # a CPU measured busy is still kept off, the expectations aside
        assert placement._busy({CPUS[-1]: 0.9}) == {CPUS[-1]}
    finally:
        placement.restore()


@needs_two_cpus
def test_a_child_forked_while_threads_are_kept_off_gets_the_whole_affinity(base_affinity):
    """A forked child inherits its forking thread's affinity for good: it must get the
    process's own, not the placement's passing restriction; the parent's thread keeps
    the restriction after the fork."""
    busy = CPUS[-1]
    placement = ThreadPlacement(lambda: [])
    me = threading.get_native_id()
    try:
        placement.place(frozenset({busy}))
        assert _affinity(me) == set(CPUS) - {busy}
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its affinity, and go
            os.close(r)
            os.write(w, ",".join(map(str, sorted(os.sched_getaffinity(0)))).encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            child = {int(c) for c in f.read().decode().split(",")}
        assert os.waitpid(pid, 0)[1] == 0
        assert child == set(CPUS), f"the child runs on CPUs {sorted(child)} only"
        assert _affinity(me) == set(CPUS) - {busy}, "the parent's thread lost its placement"
    finally:
        placement.restore()


@needs_two_cpus
@pytest.mark.rtudp(placement="spread")
def test_a_channel_that_sends_keeps_the_threads_off_its_worker_at_once(rtudp_pool,
                                                                       base_affinity,
                                                                       monkeypatch):
    """Before any look could measure it (two of their periods), a channel that sends
    keeps this process's threads off its worker's CPU from the moment it opens: in its
    first tenth of a second, the kernel's idle balancing once pulled a submitter onto a
    busy worker's CPU, where it fell 20 ms behind.  A channel that only receives does
    not; the hold ends after EXPECT_S when the worker stays calm."""
    from rtudp.workers import placement as placement_module

    monkeypatch.setattr(placement_module, "EXPECT_S", 0.5)
    me = threading.get_native_id()
    rx = rtudp_pool.open_channel("rx", direction=1)
    assert _affinity(me) == set(CPUS), "a channel that only receives moved this thread"
    tx = rtudp_pool.open_channel("tx", remote=rx.local, direction=0,
                                 cpu=rtudp_pool.cpus[-1])
    busy = rtudp_pool.workers()[tx.worker]["cpu"]
    assert busy == rtudp_pool.cpus[-1]
    assert _affinity(me) == set(CPUS) - {busy}, "not kept off the sending worker's CPU"
    # an idle worker: the looks find it calm once the hold is over
    deadline = time.monotonic() + 10
    while _affinity(me) != set(CPUS) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _affinity(me) == set(CPUS), "the hold on an idle worker's CPU did not end"
