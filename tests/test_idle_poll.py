"""Idle polling: a worker keeps its CPU from halting while it serves channels, and
never with idle_poll=False.  Off a virtual machine it holds the CPU idle-latency
request (PM QoS, /dev/cpu_dma_latency); on one it does not (the host stops a VM whose
idle vCPUs all poll: csrc/worker/sched.c).  Where idle CPUs halt without polling first
(no cpuidle driver, or haltpoll told not to poll: this kind of VM) it runs an idle
poller process on its CPU instead (csrc/worker/idlepoller.h)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Callable

import psutil
import pytest

import rtudp
from rtudp.tools.doctor_read import is_virtual
from ports import loopback_sink
from waiting import wait_for

QOS = "/dev/cpu_dma_latency"
CPUIDLE_DRIVER = "/sys/devices/system/cpu/cpuidle/current_driver"


def _holds_qos(pid: int) -> bool:
    """True if process ``pid`` has /dev/cpu_dma_latency open (the request lives as
    long as that file stays open)."""
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == QOS:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def _need_qos_device() -> None:
    if not os.access(QOS, os.W_OK):
        pytest.skip(f"{QOS} is missing or not writable here: the worker cannot hold the "
                    f"request (it warns and runs without)")


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_worker_holds_the_request_only_while_serving(rtudp_pool: rtudp.Pool) -> None:
    _need_qos_device()
    pid = rtudp_pool.workers()[0]["pid"]
    assert not _holds_qos(pid) and not rtudp_pool.workers()[0]["idle_poll"], \
        "held before any channel was open"
    ch = rtudp_pool.open_channel("held", direction=1)
    if is_virtual("/"):  # every idle vCPU would poll, and the host stops the VM for it
        time.sleep(0.3)
        assert not _holds_qos(pid) and not rtudp_pool.workers()[0]["idle_poll"], \
            "the request is held on a virtual machine"
        ch.close()
        return
    assert wait_for(lambda: _holds_qos(pid)), "no request while serving a channel"
    assert rtudp_pool.workers()[0]["idle_poll"]
    # reading the device gives the aggregate request: ours is 0 µs
    with open(QOS, "rb") as f:
        assert int.from_bytes(f.read(4), "little", signed=True) == 0
    ch.close()
    assert wait_for(lambda: not _holds_qos(pid)), "request kept after the last channel closed"
    assert not rtudp_pool.workers()[0]["idle_poll"]


@pytest.mark.rtudp(rt_priority=0, cpus=[0], idle_poll=False)
def test_no_request_when_turned_off(rtudp_pool: rtudp.Pool) -> None:
    _need_qos_device()
    with rtudp_pool.open_channel("free", direction=1):
        time.sleep(0.2)
        pid = rtudp_pool.workers()[0]["pid"]
        assert not _holds_qos(pid)
        assert not rtudp_pool.workers()[0]["idle_poll"]


def test_idle_poll_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="idle_poll must be True or False, got 'yes'"):
        rtudp.Pool("x", idle_poll="yes")  # type: ignore[arg-type]


def _no_polling_idle_state() -> bool:
    """An idle CPU halts without polling first: no cpuidle driver, or haltpoll with
    guest_halt_poll_ns 0."""
    try:
        with open(CPUIDLE_DRIVER) as f:
            driver = f.read().strip()
    except OSError:
        return True
    if driver == "haltpoll":
        try:
            with open("/sys/module/haltpoll/parameters/guest_halt_poll_ns") as f:
                return int(f.read().strip() or 0) == 0
        except (OSError, ValueError):
            return True
    return driver == "none"


def _need_poller() -> None:
    if not _no_polling_idle_state():
        with open(CPUIDLE_DRIVER) as f:
            driver = f.read().strip()
        pytest.skip(f"this machine's cpuidle driver ({driver}) polls before an idle CPU "
                    "halts: the worker runs no idle poller here "
                    "(test_idle_poller_runs_only_while_serving checks that)")


def _alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _poller(pool: rtudp.Pool) -> int:
    return pool.workers()[0]["idle_poller_pid"]


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_idle_poller_runs_only_while_serving(rtudp_pool: rtudp.Pool) -> None:
    worker = rtudp_pool.workers()[0]["pid"]
    assert _poller(rtudp_pool) == 0, "a poller before any channel was open"
    with rtudp_pool.open_channel("polled", direction=1):
        if not _no_polling_idle_state():
            time.sleep(0.2)
            assert _poller(rtudp_pool) == 0, "a poller although idle CPUs poll here"
            return
        assert wait_for(lambda: _poller(rtudp_pool) != 0), "no idle poller while serving"
        pid = _poller(rtudp_pool)
        proc = psutil.Process(pid)
        assert proc.ppid() == worker
        # named for what it is in top and ps (it is spawned through /proc/self/exe)
        assert wait_for(lambda: proc.name() == "rtudp-idlepoll"), proc.name()
        assert proc.cpu_affinity() == [0], "it polls on the worker's CPU only"
        # it takes SCHED_IDLE and closes what it inherited itself, just after it starts
        assert wait_for(lambda: os.sched_getscheduler(pid) == os.SCHED_IDLE), \
            "it must give way to every task"
        # none of the worker's descriptors (the channel's socket) stays open in it
        assert wait_for(lambda: sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
                        == [0, 1, 2]), os.listdir(f"/proc/{pid}/fd")
    assert wait_for(lambda: not _alive(pid)), "the poller outlived the last channel"
    assert _poller(rtudp_pool) == 0


@pytest.mark.rtudp(cpus=[0])
def test_no_idle_poller_for_receivers_that_gather_alone(rtudp_pool: rtudp.Pool) -> None:
    """rtp receivers with a jitter buffer let their reads wait (rxloop.c, rx_gather): a
    prompt wake-up buys them nothing, so they alone start no poller; a udp channel
    beside them does, and closing it stops it again."""
    _need_poller()
    opts = {"ptime_ms": 20, "latency_ms": 60, "rtcp": "off"}
    with rtudp_pool.open_channel("jb", local=("127.0.0.1", 0), direction="rx", kind="rtp",
                                 options=opts):
        time.sleep(0.3)
        assert _poller(rtudp_pool) == 0, "a poller for gathering receivers alone"
        with rtudp_pool.open_channel("plain", direction=1):
            assert wait_for(lambda: _poller(rtudp_pool) != 0), "no poller for a udp channel"
            pid = _poller(rtudp_pool)
        assert wait_for(lambda: not _alive(pid)), "the poller outlived the udp channel"
        assert _poller(rtudp_pool) == 0


@pytest.mark.rtudp(rt_priority=0, cpus=[0], idle_poll=False)
def test_no_idle_poller_when_turned_off(rtudp_pool: rtudp.Pool) -> None:
    with rtudp_pool.open_channel("free", direction=1):
        time.sleep(0.2)
        assert _poller(rtudp_pool) == 0


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_idle_poller_dies_with_a_killed_worker(rtudp_pool: rtudp.Pool) -> None:
    _need_poller()
    with rtudp_pool.open_channel("kept", direction=1):
        assert wait_for(lambda: _poller(rtudp_pool) != 0)
        old, worker = _poller(rtudp_pool), rtudp_pool.workers()[0]["pid"]
        os.kill(worker, signal.SIGKILL)
        assert wait_for(lambda: not _alive(old), 5.0), "a killed worker's poller lives on"
        # the successor serves the channel again, with a poller of its own
        assert wait_for(lambda: rtudp_pool.workers()[0]["pid"] != worker
                        and _poller(rtudp_pool) not in (0, old), 15.0)


BUSY = "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end:\n    pass\n"


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_idle_poller_gives_way_to_other_tasks(rtudp_pool: rtudp.Pool) -> None:
    """A program on the worker's CPU gets it: the poller takes only what nobody wants."""
    _need_poller()
    with rtudp_pool.open_channel("shared", direction=1):
        assert wait_for(lambda: _poller(rtudp_pool) != 0)
        poller = psutil.Process(_poller(rtudp_pool))
        before = sum(poller.cpu_times()[:2])
        busy = subprocess.Popen([sys.executable, "-c", BUSY],
                                preexec_fn=lambda: os.sched_setaffinity(0, {0}))
        try:
            busy.wait(timeout=30)
        finally:
            if busy.poll() is None:
                busy.kill()
                busy.wait()
        took = sum(poller.cpu_times()[:2]) - before
        print(f"the poller's CPU over a 1 s busy loop beside it: {took:.3f} s")
        # SCHED_IDLE against an ordinary task: ~0.3 % of the CPU (weight 3 vs 1024);
        # a loaded machine's other tasks and the clock's 10 ms ticks are the slack
        assert took < 0.25, f"the poller took {took:.2f} s of CPU 0 from a 1 s busy loop"


def _naps(pid: int) -> int:
    """The poller's voluntary context switches: one a nap."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches in /proc/{pid}/status")


def _naps_over(pid: int, seconds: float) -> int:
    before = _naps(pid)
    time.sleep(seconds)
    return _naps(pid) - before


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_idle_poller_naps_only_while_the_worker_parks(rtudp_pool: rtudp.Pool) -> None:
    """It naps (wakes every 100 µs: the CPU never halts for long) while the worker
    waits for long, and waits on its gate while the worker is busy with short gaps.
    How often it naps is the CPU's to say: at SCHED_IDLE it runs only when no other
    task wants the CPU, so beside a busy loop it naps a few times a second instead of
    thousands.  So it must nap at all while the worker parks, and while the worker
    sends every 50 µs (the gate shut throughout) switch at most twice: the end of the
    nap it was in when the gate shut, and its wait on the gate."""
    _need_poller()
    sink = loopback_sink()
    n, gap_ns = 20_000, 50_000
    with sink, rtudp_pool.open_channel("timed", local=("127.0.0.1", 0), capacity=32_768,
                                       remote=sink.getsockname()) as ch:
        assert wait_for(lambda: _poller(rtudp_pool) != 0)
        pid = _poller(rtudp_pool)
        # nothing due soon: the worker parks till its next tick, the poller naps (a
        # send now and then keeps the worker from resting, which stops the poller)
        before = _naps(pid)
        assert _busy_until(ch, lambda: _naps(pid) - before >= 5, 10.0), \
            f"{_naps(pid) - before} naps in 10 s while the worker parked"
        # rounds: a stall of this loaded machine can park the worker inside one window
        # (then naps are right); a poller that naps while the worker is busy does so in
        # every round
        rounds = []
        for _ in range(3):
            sent_before = ch.stats()["tx_packets"]
            t0 = time.monotonic_ns() + 300_000_000
            for i in range(n):
                ch.send(b"x" * 16, at_ns=t0 + i * gap_ns)
            assert time.monotonic_ns() < t0, "queueing the schedule outlasted its 0.3 s lead"
            while time.monotonic_ns() < t0 + 200_000_000:
                time.sleep(0.01)
            busy = _naps_over(pid, 0.5)
            sent = ch.stats()["tx_packets"] - sent_before
            assert sent < n, f"the schedule ended inside the count ({sent} of {n} sent)"
            rounds.append(busy)
            if busy <= 2:
                break
            assert wait_for(lambda: ch.stats()["tx_packets"] - sent_before == n, 30.0)
    print(f"the poller's switches in 0.5 s while the worker sends every 50 µs: {rounds}")
    assert min(rounds) <= 2, f"naps in each round while the worker sent every 50 µs: {rounds}"


# The poller does not nap through a long park before a deadline the worker spins to
# (the park's early end holds a halted vCPU's late wake-up; naps there made the spin
# worse): rtudp_spin_park_naps, tested in tests/c/test_worker_units.c.  A nap count
# cannot show it: beside a busy loop the SCHED_IDLE poller naps as rarely with nothing
# due as before deadlines, and a worker whose spin budget a loaded CPU has spent parks
# to its deadlines without spinning, where napping is allowed.


def _state(pid: int) -> str:
    """Process ``pid``'s state letter in /proc (S sleeping, R running, T stopped)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _busy_until(ch: rtudp.Channel, cond: Callable[[], bool], timeout: float) -> bool:
    """``cond()`` true within ``timeout`` s, while a timed send every 0.1 s gives the
    worker work (an immediate send may leave from this process, past the worker).
    Returns once those sends have left."""
    sent = ch.stats()["tx_packets"]
    n, met = 0, False
    deadline = time.monotonic() + timeout
    while not met and time.monotonic() < deadline:
        met = bool(cond())
        if not met:
            ch.send(b"busy", at_ns=time.monotonic_ns() + 1_000_000)
            n += 1
            time.sleep(0.1)
    assert wait_for(lambda: ch.stats()["tx_packets"] - sent >= n), "the busy sends did not leave"
    return met or bool(cond())


#: longer than a worker waits with nothing to do before it rests (worker.h,
#: RTUDP_W_REST_AFTER_NS: 2 s), with a loaded machine's slack
REST_WAIT_S = 20.0


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_a_resting_worker_stops_its_poller_and_work_wakes_it(rtudp_pool: rtudp.Pool) -> None:
    """A worker with nothing to do (no deadline, record, command or datagram) for a
    while rests: its idle poller is stopped (state T: no naps, no CPU) but stays its
    poller.  A send after the rest still arrives, and it wakes the worker: the poller
    runs and naps again.  So does a datagram received, with nothing sent."""
    _need_poller()
    sink = loopback_sink(10)
    with sink, rtudp_pool.open_channel("rests", local=("127.0.0.1", 0),
                                       remote=sink.getsockname()) as ch:
        assert wait_for(lambda: _poller(rtudp_pool) != 0)
        pid = _poller(rtudp_pool)
        assert wait_for(lambda: _state(pid) == "T", REST_WAIT_S), \
            f"the poller of a worker with nothing to do is not stopped ({_state(pid)})"
        naps = _naps(pid)
        time.sleep(0.5)
        assert _naps(pid) == naps and _state(pid) == "T", "a stopped poller napped"
        assert _poller(rtudp_pool) == pid, "the resting worker's poller is not kept"

        # the first send after the rest arrives, and the worker polls again
        ch.send(b"after the rest", at_ns=time.monotonic_ns() + 1_000_000)
        assert sink.recv(64) == b"after the rest"
        assert _busy_until(ch, lambda: _state(pid) != "T" and _naps(pid) > naps, 10.0), \
            f"the poller stays stopped after a send ({_state(pid)}, {_naps(pid) - naps} naps)"
        while True:  # the busy sends' datagrams
            sink.settimeout(0.5)
            try:
                sink.recv(64)
            except socket.timeout:
                break

        # a datagram received wakes a resting worker too (read by the worker: nothing
        # here waits in recv(), which would read the socket itself: direct_recv.h)
        assert wait_for(lambda: _state(pid) == "T", REST_WAIT_S), "no rest after the sends"
        naps = _naps(pid)
        got = ch.stats()["rx_packets"]

        def woken() -> bool:
            if _state(pid) != "T" and _naps(pid) > naps:
                return True
            sink.sendto(b"in", ch.local)  # one at a time: the worker keeps polling
            time.sleep(0.1)
            return False

        assert wait_for(woken, 10.0), \
            f"the poller stays stopped after a datagram in ({_state(pid)})"
        assert ch.stats()["rx_packets"] > got


@pytest.mark.rtudp(rt_priority=0, cpus=[0], idle_poll=False)
def test_a_resting_worker_wakes_once_a_second(rtudp_pool: rtudp.Pool) -> None:
    """Resting, a worker's tick (heartbeat, sweep, supervisor look) comes once a second
    instead of ten times (worker.h, RTUDP_W_REST_TICK_NS), so an idle pool's workers
    cost next to nothing; a channel's first send still leaves.  Any pool rests, idle
    polling or not.  Its loop turns are what it wakes for."""
    sink = loopback_sink(10)
    with sink, rtudp_pool.open_channel("quiet", local=("127.0.0.1", 0),
                                       remote=sink.getsockname()) as ch:
        def loops() -> int:
            return rtudp_pool.workers()[0]["loops"]

        def turns_in(seconds: float) -> int:
            before = loops()
            time.sleep(seconds)
            return loops() - before

        # awake: a turn each 100 ms tick at least (a stall may skip some)
        # resting: one each second, and a wake-up that ends for nothing now and then
        assert wait_for(lambda: turns_in(3.0) <= 10, REST_WAIT_S), \
            "an idle worker still wakes ten times a second"
        heartbeat = rtudp_pool.workers()[0]["heartbeat_ns"]
        assert wait_for(lambda: rtudp_pool.workers()[0]["heartbeat_ns"] > heartbeat, 5.0), \
            "a resting worker's heartbeat stopped"
        ch.send(b"after the rest", at_ns=time.monotonic_ns() + 1_000_000)
        assert sink.recv(64) == b"after the rest"


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_a_poller_that_dies_is_reaped_and_not_shown(rtudp_pool: rtudp.Pool) -> None:
    """Killed (or refused SCHED_IDLE), the poller is reaped within a heartbeat; the
    worker table stops naming it and the worker serves on without one."""
    _need_poller()
    sink = loopback_sink(5)
    with sink, rtudp_pool.open_channel("served", local=("127.0.0.1", 0),
                                       remote=sink.getsockname()) as ch:
        assert wait_for(lambda: _poller(rtudp_pool) != 0)
        pid = _poller(rtudp_pool)
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: _poller(rtudp_pool) == 0, 2.0), "a dead poller still shown"
        assert wait_for(lambda: not psutil.pid_exists(pid), 2.0), "the poller was not reaped"
        ch.send(b"still served")
        assert sink.recv(64) == b"still served"
        time.sleep(0.3)
        assert _poller(rtudp_pool) == 0, "another poller after one died"
