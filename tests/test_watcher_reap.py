"""The watching thread reaps processes at SCHED_OTHER (workers/watcher.py).

Reaping makes the kernel drop the process's /proc dentries, which waits, spinning,
for any task holding one of them; a real-time reaper above that task on its CPU
never lets it finish and spins in the kernel for good, the CPU lost to every worker
below it.  So every wait of the watching thread for a process runs at normal
priority, and a check on a live process reaps (and so costs) nothing.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading

import psutil
import pytest

from rtudp.workers.watcher import exited, normal_priority, wait_reaped
from waiting import wait_for


def _policy() -> int:
    return os.sched_getscheduler(threading.get_native_id())


def _in_thread(fn) -> None:
    """Run fn in a fresh thread (its scheduling policy is its own) and re-raise."""
    err: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            err.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]


def test_normal_priority_drops_a_fifo_thread_and_gives_its_policy_back() -> None:
    def check() -> None:
        tid = threading.get_native_id()
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                                  os.sched_param(3))
        except PermissionError:
            pytest.skip("SCHED_FIFO not permitted here: nothing to drop")
        with normal_priority():
            assert _policy() & ~os.SCHED_RESET_ON_FORK == os.SCHED_OTHER
        assert _policy() == os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
        assert os.sched_getparam(tid).sched_priority == 3
        with pytest.raises(RuntimeError), normal_priority():
            raise RuntimeError("the block fails")
        assert _policy() == os.SCHED_FIFO | os.SCHED_RESET_ON_FORK  # given back anyway

    _in_thread(check)


def test_normal_priority_leaves_a_normal_thread_alone() -> None:
    def check() -> None:
        before = _policy()
        assert before & ~os.SCHED_RESET_ON_FORK == os.SCHED_OTHER
        with normal_priority():
            assert _policy() == before
        assert _policy() == before

    _in_thread(check)


def test_exited_reaps_only_a_process_that_has_exited() -> None:
    proc = psutil.Popen(["sleep", "30"], stdin=subprocess.DEVNULL)
    try:
        assert exited(proc) is None
        assert psutil.pid_exists(proc.pid) and proc.status() != psutil.STATUS_ZOMBIE
        os.kill(proc.pid, signal.SIGKILL)
        assert wait_for(lambda: exited(proc) is not None, 10.0)
        assert exited(proc) == -signal.SIGKILL  # asked again: the same code, no error
        assert not psutil.pid_exists(proc.pid)  # reaped: no zombie left
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_wait_reaped_times_out_on_a_live_process_and_reaps_a_dead_one() -> None:
    proc = psutil.Popen(["sleep", "30"], stdin=subprocess.DEVNULL)
    try:
        with pytest.raises(psutil.TimeoutExpired):
            wait_reaped(proc, 0.05)
        proc.terminate()
        wait_reaped(proc, 10)
        assert not psutil.pid_exists(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
