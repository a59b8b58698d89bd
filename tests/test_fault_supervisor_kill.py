"""Fault: the supervisor of a standalone pool SIGKILLed while a client uses it.

Its workers exit within 1 s (PR_SET_PDEATHSIG, backed by a pidfd of the supervisor); the
client gets PoolNotRunningError when it attaches again; the next ``rtudp pool
start`` of that name, or ``rtudp pool clean``, removes the stale segments.  That a
live pool is never touched is tests/test_cli.py::test_clean_never_touches_a_live_pool
and tests/test_pool.py::test_live_pool_*.  A supervisor that is only stopped keeps its
workers.
"""
from __future__ import annotations

import os
import re
import signal
import time

import pytest

import rtudp
from rtudp.workers import registry
from test_cli import gone, kill_pool, pool_name, run_cli, start_foreground, stop_proc

WORKERS_EXIT_S = 1.0


def _pair_and_workers(lab: rtudp.PoolClient, name: str) -> tuple:
    """Channels a <- b of pool ``name`` that carry a datagram, and the pool's worker pids."""
    a = lab.open_channel("a")
    b = lab.open_channel("b", remote=a.local)
    b.send(b"before")
    assert a.recv(timeout=5).data == b"before"
    return a, b, [w["pid"] for w in registry_workers(name)]


@pytest.mark.parametrize("then", ["start", "clean"])
def test_supervisor_sigkill_workers_exit_and_stale_pool_is_cleaned(then: str) -> None:
    name = pool_name()
    proc, _line = start_foreground(name)
    new_pid = None
    try:
        with rtudp.PoolClient(name) as lab:
            a, b, ctl_workers = _pair_and_workers(lab, name)
            assert ctl_workers and not any(gone(p) for p in ctl_workers)
            t0 = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
            while not all(gone(p) for p in ctl_workers) and time.monotonic() - t0 < 10:
                time.sleep(0.001)
            took = time.monotonic() - t0
            print(f"\nsupervisor SIGKILL: its {len(ctl_workers)} workers gone after "
                  f"{took * 1000:.1f} ms")
            assert took < WORKERS_EXIT_S, f"workers outlived the supervisor by {took:.2f} s"
            proc.communicate(timeout=10)
            with pytest.raises(rtudp.PoolNotRunningError):
                rtudp.attach("a", pool=name)
            assert registry.segment_files(name), "a killed supervisor leaves its segments"
            for ch in (a, b):
                ch._on_close = None  # the pool is gone: nobody to tell
                ch.close()
        if then == "start":
            out = run_cli("pool", "start", "--name", name)
            assert out.returncode == 0, out.stderr
            new_pid = int(re.search(r"supervisor pid (\d+)", out.stdout).group(1))
            assert registry.pool_state(name) == "running"
            assert registry.segment_files(name) == [f"rtudp.{name}"], "stale channels left"
            stop = run_cli("pool", "stop", "--name", name)
            assert stop.returncode == 0, stop.stderr
        else:
            cl = run_cli("pool", "clean")
            assert cl.returncode == 0, cl.stderr
            assert f"/dev/shm/rtudp.{name}" in cl.stdout, cl.stdout
        assert registry.segment_files(name) == []
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)
        if new_pid is not None:
            kill_pool(name, new_pid)


def test_supervisor_stopped_for_3_s_keeps_its_workers() -> None:
    """A live supervisor that stops beating (SIGSTOP for 3 s, longer than the 2 s after
    which workers used to give it up) loses no worker: the same processes serve the
    same channels after SIGCONT."""
    name = pool_name()
    proc, _line = start_foreground(name)
    try:
        with rtudp.PoolClient(name) as lab:
            a, b, pids = _pair_and_workers(lab, name)
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                time.sleep(3.0)
                assert not any(gone(p) for p in pids), "a worker left its stopped supervisor"
                b.send(b"while stopped")  # the workers carry on without it
                assert a.recv(timeout=5).data == b"while stopped"
                # a wait that looks at the stale heartbeat ends by its timeout, not by
                # calling the pool dead
                with pytest.raises(TimeoutError):
                    a.recv(timeout=0.5)
                assert not a.closed and not b.closed
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            assert [w["pid"] for w in registry_workers(name)] == pids
            assert all(w["state"] == "running" and w["restarts"] == 0
                       for w in registry_workers(name))
            b.send(b"after")
            assert a.recv(timeout=5).data == b"after"
            a.close()
            b.close()
        stop = run_cli("pool", "stop", "--name", name)
        assert stop.returncode == 0, stop.stderr
        assert registry.segment_files(name) == []
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        stop_proc(proc)
        kill_pool(name, proc.pid)


def registry_workers(name: str) -> list[dict]:
    from rtudp.shmring.control import ControlSegment

    ctl = ControlSegment.open(name, writable=False)
    try:
        return ctl.workers()
    finally:
        ctl.close()
