"""``rtudp.RealtimeWaits``: a thread that sleeps in rtudp's waits at real-time priority,
within a CPU budget (csrc/rt_wait.h).

What a user relies on: inside, the thread is real-time and its receives work as
always; a thread that keeps the CPU past its budget goes back to its own policy until it
next sleeps in a wait; leaving (even through an exception) restores the policy it had;
what it forks starts at normal priority; bad values and a missing permission are named.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

import rtudp
from fake_worker import can_fifo, worker_argv

WAIT_S = 10.0
RESET_ON_FORK = getattr(os, "SCHED_RESET_ON_FORK", 0x40000000)


def policy() -> tuple[int, int]:
    """(policy without flags, priority) of the calling thread."""
    return os.sched_getscheduler(0) & ~RESET_ON_FORK, os.sched_getparam(0).sched_priority


# asked of the kernel (can_fifo), not of RealtimeWaits, whose refusal is under test
needs_fifo = pytest.mark.skipif(not can_fifo(), reason="SCHED_FIFO is not permitted here (no "
                                "root, CAP_SYS_NICE or RLIMIT_RTPRIO)")


def burn_until_demoted(rt: rtudp.RealtimeWaits, cpu_s: float = 2.0) -> None:
    """Keep the CPU without sleeping in a wait until the budget runs out (bounded)."""
    end = time.thread_time() + cpu_s
    while rt.counts().realtime and time.thread_time() < end:
        pass


@pytest.mark.parametrize("kw, named", [
    ({"priority": 0}, "priority=0"), ({"priority": 100}, "priority=100"),
    ({"priority": True}, "priority=True"), ({"priority": "1"}, "priority='1'"),
    ({"cpu_budget_ms": 0.05}, "cpu_budget_ms=0.05"), ({"cpu_budget_ms": 2000}, "cpu_budget_ms=2000"),
    ({"cpu_budget_ms": float("nan")}, "cpu_budget_ms=nan"),
])
def test_bad_values_are_named(kw: dict, named: str) -> None:
    before = policy()
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        rtudp.RealtimeWaits(**kw)
    assert policy() == before


@needs_fifo
def test_inside_the_thread_is_real_time_and_leaving_restores() -> None:
    before = policy()
    with rtudp.RealtimeWaits(priority=2) as rt:
        assert policy() == (os.SCHED_FIFO, 2)
        assert rt.counts() == rtudp.RealtimeWaitCounts(True, 0, 0)
        with pytest.raises(ValueError, match="already"):
            with rtudp.RealtimeWaits():
                pass
        assert policy() == (os.SCHED_FIFO, 2)  # the refused second one changed nothing
    assert policy() == before
    with pytest.raises(KeyError):
        with rtudp.RealtimeWaits():
            raise KeyError("leaving through an exception")
    assert policy() == before


@needs_fifo
def test_another_thread_may_not_leave_it() -> None:
    rt = rtudp.RealtimeWaits()
    errors: list[BaseException] = []
    with rt:
        t = threading.Thread(target=lambda: errors.append(
            pytest.raises(RuntimeError, rt.__exit__, None, None, None).value))
        t.start()
        t.join()
        assert "another thread" in str(errors[0])
        assert policy()[0] == os.SCHED_FIFO
    assert policy()[0] == os.SCHED_OTHER


@needs_fifo
@pytest.mark.rtudp(worker=worker_argv())
def test_the_budget_ends_and_a_sleep_in_a_wait_renews_it(rtudp_pool) -> None:
    ch = rtudp_pool.open_channel("rt", local=("127.0.0.1", 0))
    sender = rtudp_pool.open_channel("to_rt", local=("127.0.0.1", 0), remote=ch.local)
    with rtudp.RealtimeWaits(cpu_budget_ms=1) as rt:
        burn_until_demoted(rt)
        assert rt.counts() == rtudp.RealtimeWaitCounts(False, 1, 0)
        assert policy()[0] == os.SCHED_OTHER
        # a receive that sleeps (nothing has come) makes it real-time again
        with pytest.raises(TimeoutError):
            ch.recv(timeout=0.05)
        assert rt.counts() == rtudp.RealtimeWaitCounts(True, 1, 1)
        assert policy()[0] == os.SCHED_FIFO
        # and receives work as always: every datagram, in order
        for i in range(20):
            sender.send(b"%d" % i)
            assert ch.recv(timeout=WAIT_S).data == b"%d" % i
    assert rt.counts().demotions >= 1  # the final counts stay readable
    assert policy()[0] == os.SCHED_OTHER


@needs_fifo
@pytest.mark.rtudp(worker=worker_argv())
def test_a_udt_wait_renews_it_too(rtudp_pool) -> None:
    """UDT's reads wait through the cffi module's copy of the waits."""
    u = rtudp_pool.open_channel("u", local=("127.0.0.1", 0), kind="udt")
    with rtudp.RealtimeWaits(cpu_budget_ms=1) as rt:
        burn_until_demoted(rt)
        assert rt.counts() == rtudp.RealtimeWaitCounts(False, 1, 0)
        assert u.wait_for(lambda: False, 0.05) is None  # sleeps: nothing comes
        assert rt.counts() == rtudp.RealtimeWaitCounts(True, 1, 1)
    # and outside, the same wait leaves the policy alone
    assert u.wait_for(lambda: False, 0.01) is None
    assert policy()[0] == os.SCHED_OTHER


@needs_fifo
def test_what_it_starts_runs_at_normal_priority() -> None:
    with rtudp.RealtimeWaits():
        out = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                             check=True, capture_output=True, text=True, timeout=60).stdout
    assert int(out) == os.SCHED_OTHER


def test_without_permission_it_says_what_it_needs() -> None:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to start a child without "
                    "CAP_SYS_NICE")
    code = ("import rtudp\ntry:\n    rtudp.RealtimeWaits().__enter__()\n"
            "except PermissionError as e:\n    print('refused:', e)\n")

    def no_rtprio() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))

    out = subprocess.run([setpriv, "--bounding-set", "-sys_nice", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=60, preexec_fn=no_rtprio)
    assert "refused:" in out.stdout, (out.stdout, out.stderr)
    assert "CAP_SYS_NICE" in out.stdout and "RLIMIT_RTPRIO" in out.stdout, out.stdout
