"""The ``rtudp`` command as users run it: ``rtudp pool ...`` and ``rtudp demo``.

Every test runs the CLI as a subprocess (``python -m rtudp.tools.cli``), uses its own
pool names (``t<pid>_...``, so the leak check of conftest.py covers them) and kills,
by PID, whatever it started.  Timing figures of the demo are checked for presence
only, never for their values; loss on loopback at 50 kpps must be 0.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import new_shm_name
from rtudp.workers import registry
from rtudp.workers.registry import process_alive
from waiting import wait_for

CLI = [sys.executable, "-m", "rtudp.tools.cli"]
SHM = "/dev/shm"


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def pool_name() -> str:
    """A unique pool name: no '.', short enough for channel names."""
    return new_shm_name("cli").replace(".", "_")[:30].rstrip("_-")


def gone(pid: int) -> bool:
    return not process_alive(pid)


def kill_pool(name: str, pid: int | None) -> None:
    """Teardown: SIGKILL the supervisor we started (by PID), then remove its segments."""
    if pid is not None and not gone(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_for(lambda: gone(pid), 10)
    if registry.segment_files(name) and wait_for(lambda: registry.pool_state(name) != "running"):
        registry.clean_stale(name)


def start_foreground(name: str) -> tuple[subprocess.Popen, str]:
    """``rtudp pool start --foreground``; returns once it says it runs."""
    proc = subprocess.Popen([*CLI, "pool", "start", "--foreground", "--name", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "running" not in line:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"foreground pool did not start: {line!r}\n{err}")
    return proc, line


def stop_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


def expected_workers() -> int:
    from rtudp.shmring._native import lib

    return min(len(os.sched_getaffinity(0)), lib.RTUDP_MAX_WORKERS)


# ------------------------------------------------------------ rtudp pool


def test_daemon_start_status_list_stop():
    name = pool_name()
    pid = None
    try:
        out = run_cli("pool", "start", "--name", name)
        assert out.returncode == 0, out.stderr
        m = re.search(r"supervisor pid (\d+)", out.stdout)
        assert m and name in out.stdout, out.stdout
        pid = int(m.group(1))
        # start returned: the pool runs, its supervisor outlives the CLI
        assert registry.pool_state(name) == "running"
        assert not gone(pid)
        proc = psutil.Process(pid)
        assert proc.ppid() != os.getpid()
        assert os.getsid(pid) == pid, "the supervisor should lead its own session"

        st = run_cli("pool", "status", "--name", name)
        assert st.returncode == 0, st.stderr
        assert f"pid {pid}" in st.stdout and "up " in st.stdout
        rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+running\s+(SCHED_\w+(?: \d+)?)\s+(\d+)",
                          st.stdout, re.M)
        assert len(rows) == expected_workers(), st.stdout
        for _index, wpid, cpu, policy, restarts in rows:
            kernel = os.sched_getscheduler(int(wpid))
            want = ("SCHED_FIFO 50" if kernel == os.SCHED_FIFO else "SCHED_OTHER")
            assert policy == want, st.stdout
            assert os.sched_getaffinity(int(wpid)) == {int(cpu)}
            assert restarts == "0"
        assert "heartbeat" in st.stdout and "channels" in st.stdout

        li = run_cli("pool", "list")
        assert li.returncode == 0, li.stderr
        assert re.search(rf"^{name}\s+live\s+{pid}\b", li.stdout, re.M), li.stdout

        again = run_cli("pool", "start", "--name", name)
        assert again.returncode != 0
        assert "already running" in again.stderr and str(pid) in again.stderr, again.stderr
        assert not gone(pid), "a failed second start must not harm the running pool"

        sp = run_cli("pool", "stop", "--name", name)
        assert sp.returncode == 0, sp.stderr
        assert "stopped" in sp.stdout
        assert registry.segment_files(name) == []
        assert not [e for e in os.listdir(SHM) if e.startswith(f"rtudp.{name}")]
        assert gone(pid)
        assert registry.pool_state(name) == "absent"

        again = run_cli("pool", "stop", "--name", name)
        assert again.returncode != 0 and "not running" in again.stderr
    finally:
        kill_pool(name, pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_foreground_stops_cleanly_on_signal(sig):
    name = pool_name()
    proc, line = start_foreground(name)
    try:
        assert f"supervisor pid {proc.pid}" in line
        workers = [w["pid"] for w in _workers(name)]
        assert len(workers) == expected_workers()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert registry.segment_files(name) == []
        assert wait_for(lambda: all(gone(p) for p in workers))
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)


def _workers(name: str) -> list[dict]:
    from rtudp.shmring.control import ControlSegment

    ctl = ControlSegment.open(name)
    try:
        return ctl.workers()
    finally:
        ctl.close()


def test_clean_removes_a_stale_pool_of_a_killed_supervisor():
    name = pool_name()
    proc, _line = start_foreground(name)
    try:
        workers = [w["pid"] for w in _workers(name)]
        proc.kill()  # SIGKILL: no cleanup at all
        proc.communicate(timeout=10)
        assert registry.segment_files(name), "a killed supervisor leaves its segments"
        assert wait_for(lambda: all(gone(p) for p in workers)), "workers must not outlive it"
        assert wait_for(lambda: registry.pool_state(name) == "stale")

        li = run_cli("pool", "list")
        assert re.search(rf"^{name}\s+stale\b", li.stdout, re.M), li.stdout
        st = run_cli("pool", "status", "--name", name)
        assert st.returncode != 0 and "clean" in st.stdout + st.stderr

        cl = run_cli("pool", "clean", "--name", name)
        assert cl.returncode == 0, cl.stderr
        assert "removed" in cl.stdout and f"/dev/shm/rtudp.{name}" in cl.stdout, cl.stdout
        assert registry.segment_files(name) == []
        assert registry.pool_state(name) == "absent"
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)


def test_clean_never_touches_a_live_pool():
    name = pool_name()
    proc, _line = start_foreground(name)
    try:
        files = registry.segment_files(name)
        cl = run_cli("pool", "clean", "--name", name)
        assert cl.returncode != 0
        assert "live" in cl.stderr and str(proc.pid) in cl.stderr, cl.stderr
        cl = run_cli("pool", "clean")
        assert cl.returncode == 0, cl.stderr
        assert re.search(rf"{name}.*left alone", cl.stdout), cl.stdout
        assert registry.segment_files(name) == files
        assert registry.pool_state(name) == "running" and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert registry.segment_files(name) == []
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)


def test_stop_refuses_a_pool_embedded_in_a_program():
    name = pool_name()
    code = (f"import rtudp, sys; p = rtudp.Pool({name!r}).start(); print('up', flush=True); "
            f"sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"
        sp = run_cli("pool", "stop", "--name", name)
        assert sp.returncode != 0 and "embedded" in sp.stderr and "--force" in sp.stderr
        assert proc.poll() is None
        st = run_cli("pool", "status", "--name", name)
        assert st.returncode == 0 and "embedded" in st.stdout
        sp = run_cli("pool", "stop", "--name", name, "--force")
        assert sp.returncode == 0, sp.stderr
        proc.communicate(timeout=10)
        assert registry.segment_files(name) == []
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)


def test_bad_arguments_name_the_value():
    allowed = os.sched_getaffinity(0)
    bad_cpu = 7 if 7 not in allowed else max(allowed) + 1
    out = run_cli("pool", "start", "--name", pool_name(), "--cpus", str(bad_cpu))
    assert out.returncode != 0
    assert f"CPU {bad_cpu}" in out.stderr and "--cpus" in out.stderr, out.stderr
    out = run_cli("pool", "start", "--name", pool_name(), "--rt-priority", "-3")
    assert out.returncode != 0
    assert "-3" in out.stderr and "--rt-priority" in out.stderr, out.stderr
    out = run_cli("pool", "start", "--name", pool_name(), "--rx-coalesce-us", "5000")
    assert out.returncode != 0
    assert "5000" in out.stderr and "0..1000" in out.stderr, out.stderr
    assert "--rx-coalesce-us" in out.stderr, out.stderr
    out = run_cli("pool", "start", "--name", pool_name(), "--cpus", "1-0")
    assert out.returncode != 0 and "1-0" in out.stderr
    out = run_cli("pool", "status", "--name", "bad.name")
    assert out.returncode != 0 and "bad.name" in out.stderr
    out = run_cli("demo", "--rate", "0")
    assert out.returncode != 0 and "rate 0" in out.stderr
    out = run_cli("pool")
    assert out.returncode != 0


# ------------------------------------------------------------ rtudp demo


def test_demo_quick_prints_the_figures_and_leaves_nothing():
    proc = subprocess.Popen([*CLI, "demo", "--quick"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        stop_proc(proc)
    assert proc.returncode == 0, f"{err}\n{out}"
    assert "20,000 packets each way" in out
    for direction in ("A -> B", "B -> A"):
        assert re.search(rf"^{direction}\b", out, re.M), out
    assert len(re.findall(r"^\s+send lateness\s+p50 .+p90 .+p99 .+p99\.9 .+max ", out, re.M)) == 2
    assert len(re.findall(r"^\s+one-way latency\s+p50 .+p90 .+p99 .+p99\.9 .+max ", out,
                          re.M)) == 2
    losses = re.findall(r"received ([\d,]+), loss (\d+) .*reordered (\d+)", out)
    assert len(losses) == 2, out
    for received, loss, _reordered in losses:
        assert loss == "0" and received == "20,000", out
    assert len(re.findall(r"send lateness histogram:", out)) == 2
    # whose the late sends were, each direction: the submitter's and the worker's
    assert len(re.findall(r"^\s+late > 100 µs\s+[\d,]+ late on arrival \(the submitter's.*; "
                          r"[\d,]+ sent late \(the worker's", out, re.M)) == 2, out
    assert len(re.findall(r"^\s+\S+ \S+ - +\S+ \S+ \| #+ +\d+ +[\d.]+%$", out, re.M)) >= 2
    assert re.search(r"worker \d+ on CPU \d+ \(pid \d+\): SCHED_(FIFO \d+|OTHER)", out), out
    # each end declares 100,000 packets a second, more than one worker packs with another
    served = re.findall(r"^\s+worker \d+ on CPU .*\[channels? ([^]]+)\]$", out, re.M)
    assert sorted(served) == (["A", "B"] if len(os.sched_getaffinity(0)) > 1
                              else ["A, B"]), out
    assert not [e for e in os.listdir(SHM) if e.startswith(f"rtudp.demo{proc.pid}")]


def test_demo_interrupted_leaves_nothing():
    name = pool_name()
    proc = subprocess.Popen([*CLI, "demo", "--packets", "200000", "--pool", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "rtudp demo" in proc.stdout.readline()
        assert wait_for(lambda: len(registry.segment_files(name)) == 3, 20)
        pids = [w["pid"] for w in _workers(name)]
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "interrupted" in err
        assert registry.segment_files(name) == []
        assert wait_for(lambda: all(gone(p) for p in pids))
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)
