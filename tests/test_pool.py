"""The supervisor: start/stop, stale and live pools, worker restarts, bad input, cleanup.

Lifecycle tests run the fake worker (tests/fake_worker.py), which follows the
worker contract and has knobs for failures; see test_channel.py for end-to-end
traffic through the real worker.
"""
from __future__ import annotations

import logging
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import rtudp
from fake_worker import fake_argv, worker_argv
from rtudp.shmring.channel import ChannelSegment
from rtudp.shmring.control import ControlSegment
from rtudp.workers import pool_context, registry
from rtudp.workers.registry import process_alive
from waiting import wait_for

SHM = "/dev/shm"


@pytest.fixture
def pool_name(shm_name):
    """A unique pool name (no '.', short enough to leave room for channel names)."""
    return shm_name.replace(".", "_")[:30].rstrip("_-")


@pytest.fixture
def pool(pool_name):
    with rtudp.Pool(pool_name, worker=fake_argv()) as p:
        yield p


def pool_files(name):
    return registry.segment_files(name)


def gone(pid: int) -> bool:
    return not process_alive(pid)


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# ------------------------------------------------------------ start / stop


def test_start_stop_leaves_nothing(pool_name):
    p = rtudp.Pool(pool_name, worker=fake_argv()).start()
    try:
        assert p.running
        assert pool_files(pool_name) == [f"rtudp.{pool_name}"]
        assert oct(os.stat(f"{SHM}/rtudp.{pool_name}").st_mode & 0o777) == "0o600"
        workers = p.workers()
        assert [w["cpu"] for w in workers] == p.cpus == sorted(os.sched_getaffinity(0))
        pids = [w["pid"] for w in workers]
        for w in workers:
            assert w["state"] == "running"
            for t in psutil.Process(w["pid"]).threads():
                assert os.sched_getaffinity(t.id) == {w["cpu"]}
        ch = p.open_channel("a", local=("127.0.0.1", 0))
        assert sorted(pool_files(pool_name)) == [f"rtudp.{pool_name}", f"rtudp.{pool_name}.a"]
        ch.close()
        assert pool_files(pool_name) == [f"rtudp.{pool_name}"]
        p.open_channel("b")  # left open: stop() must remove it too
    finally:
        p.stop()
    assert not p.running
    assert pool_files(pool_name) == []
    assert all(gone(pid) for pid in pids)
    p.stop()  # idempotent


def test_workers_get_sched_fifo_when_permitted(pool):
    from rtudp.workers.privileges import CAP_SYS_NICE, has_capability
    if not has_capability(CAP_SYS_NICE) and \
            resource.getrlimit(resource.RLIMIT_RTPRIO)[0] < 50:
        pytest.skip("SCHED_FIFO 50 is not permitted to this user (no CAP_SYS_NICE, "
                    "RLIMIT_RTPRIO < 50): test_missing_fifo_privilege_warns_once_and_runs "
                    "covers it")
    for w in pool.workers():
        for t in psutil.Process(w["pid"]).threads():
            assert os.sched_getscheduler(t.id) == os.SCHED_FIFO
            assert os.sched_getparam(t.id).sched_priority == 50
        assert w["policy"] == os.SCHED_FIFO and w["priority"] == 50


def test_missing_fifo_privilege_warns_once_and_runs(pool_name, monkeypatch):
    """The worker could not get SCHED_FIFO and neither can the supervisor: one warning
    naming the privilege, workers run SCHED_OTHER."""
    monkeypatch.setenv("FAKE_WORKER_NO_FIFO", "1")

    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with pytest.warns(rtudp.RtPriorityWarning) as record:
        with rtudp.Pool(pool_name, worker=fake_argv()) as p:
            assert all(w["policy"] == os.SCHED_OTHER for w in p.workers())
            assert all(w["state"] == "running" for w in p.workers())
    msgs = [str(r.message) for r in record if r.category is rtudp.RtPriorityWarning]
    assert len(msgs) == 1, msgs
    assert "CAP_SYS_NICE" in msgs[0]
    assert pool_files(pool_name) == []


def test_rt_priority_zero_means_sched_other(pool_name):
    with rtudp.Pool(pool_name, worker=fake_argv(), rt_priority=0) as p:
        assert all(w["policy"] == os.SCHED_OTHER for w in p.workers())


def test_worker_that_fails_to_start_is_reported(pool_name, monkeypatch):
    monkeypatch.setenv("FAKE_WORKER_FAIL", "1")
    with pytest.raises(rtudp.WorkerError, match="failing on purpose") as exc:
        rtudp.Pool(pool_name, worker=fake_argv()).start()
    assert "exited with code 3" in str(exc.value)
    assert pool_files(pool_name) == []


def test_worker_that_never_runs_times_out(pool_name, monkeypatch, caplog):
    """A worker slow to start is logged with where it waits, and given up only after
    START_TIMEOUT_S (shortened here), the error saying where it waited."""
    monkeypatch.setenv("FAKE_WORKER_HANG", "1")
    monkeypatch.setattr(pool_context, "START_SLOW_S", 1.0)
    monkeypatch.setattr(pool_context, "START_TIMEOUT_S", 3.0)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="rtudp.workers"), \
            pytest.raises(rtudp.WorkerError, match="did not report RUNNING within 3.0 s") as exc:
        rtudp.Pool(pool_name, cpus=[0], worker=fake_argv()).start()
    took = time.monotonic() - t0
    assert 3.0 <= took < 30
    slow = [r.getMessage() for r in caplog.records if "has not reported RUNNING" in r.getMessage()]
    assert len(slow) == 1, slow
    # where the worker waits (its state is the machine's: still importing, or asleep)
    where = re.compile(r"its threads:\nthread \d+: state \w, CPU \d+, policy \d+, ran [\d.]+ s")
    for text in (slow[0], str(exc.value)):
        assert where.search(text), text
    assert pool_files(pool_name) == []


# ------------------------------------------------------------ stale and live pools


def test_stale_pool_is_cleaned_on_start(pool_name):
    """Segments whose supervisor is dead are removed; the new pool starts."""
    ctl = ControlSegment.create(pool_name, 1)
    ctl.c.pool.supervisor_pid = dead_pid()
    ctl.c.pool.heartbeat_ns = time.monotonic_ns() - 10**10
    seg = ChannelSegment.create(f"{pool_name}.old", 1, 64)
    seg.close()
    ctl.close()
    assert registry.pool_state(pool_name) == "stale"
    with rtudp.Pool(pool_name, worker=fake_argv()) as p:
        assert pool_files(pool_name) == [f"rtudp.{pool_name}"]
        assert p.workers()[0]["state"] == "running"
    assert pool_files(pool_name) == []
    assert registry.pool_state(pool_name) == "absent"


def _run_pool_and_hang(name, argv, q):
    import rtudp as r
    p = r.Pool(name, worker=argv).start()
    p.open_channel("c")
    q.put([w["pid"] for w in p.workers()])
    time.sleep(120)


def test_pool_of_a_killed_supervisor_is_cleaned(pool_name, children):
    """SIGKILL the supervisor process: its workers exit by themselves, the next start
    cleans what it left."""
    q = children.ctx.Queue()
    child = children.start(_run_pool_and_hang, pool_name, fake_argv(), q)
    pids = q.get(timeout=60)
    assert registry.pool_state(pool_name) == "running"
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert wait_for(lambda: all(gone(p) for p in pids), 10), "workers outlived the supervisor"
    assert len(pool_files(pool_name)) == 2  # left behind: control + channel
    with rtudp.Pool(pool_name, worker=fake_argv()):
        assert pool_files(pool_name) == [f"rtudp.{pool_name}"]
    assert pool_files(pool_name) == []


def test_a_look_at_the_state_does_not_stop_a_pool_starting(pool_name):
    """pool_state takes the supervisor lock for a moment to look: a pool starting just
    then waits for it rather than calling the looker a live supervisor."""
    import threading
    looker = registry.take_lock(pool_name)  # as pool_state holds it while it looks
    assert looker is not None
    threading.Timer(0.02, looker.close).start()
    with rtudp.Pool(pool_name, worker=fake_argv()) as p:
        assert registry.pool_state(pool_name) == "running"
        assert p.running


def test_live_pool_is_never_touched(pool, pool_name):
    ch = pool.open_channel("a")
    before = pool_files(pool_name)
    with pytest.raises(rtudp.PoolRunningError, match=pool_name):
        rtudp.Pool(pool_name, worker=fake_argv()).start()
    with pytest.raises(rtudp.PoolRunningError):
        registry.clean_stale(pool_name)
    assert registry.pool_state(pool_name) == "running"
    assert pool_files(pool_name) == before
    assert all(w["state"] == "running" for w in pool.workers())
    ch.close()


def _start_same_pool(name, argv, q):
    import rtudp as r
    try:
        r.Pool(name, worker=argv).start()
        q.put("started")
    except r.PoolRunningError as exc:
        q.put(f"refused: {exc}")


def test_live_pool_in_another_process_is_never_touched(pool, pool_name, children):
    q = children.ctx.Queue()
    children.start(_start_same_pool, pool_name, fake_argv(), q)
    assert q.get(timeout=60).startswith("refused")
    children.join_all()
    assert pool_files(pool_name) == [f"rtudp.{pool_name}"]
    assert pool.open_channel("x").name == "x"


# ------------------------------------------------------------ restarts


def test_killed_worker_is_restarted_with_its_channels(pool_name):
    with rtudp.Pool(pool_name, worker=worker_argv()) as pool:
        a = pool.open_channel("a", cpu=pool.cpus[0])
        b = pool.open_channel("b", remote=a.local, cpu=pool.cpus[0])
        old = pool.workers()[0]
        os.kill(old["pid"], signal.SIGKILL)
        t0 = time.monotonic()
        assert wait_for(lambda: pool.workers()[0]["restarts"] == 1 and
                        pool.workers()[0]["state"] == "running", 10)
        new = pool.workers()[0]
        took = time.monotonic() - t0
        assert new["pid"] != old["pid"] and new["cpu"] == old["cpu"]
        assert took < 5, f"restart took {took:.2f} s"
        for t in psutil.Process(new["pid"]).threads():
            assert os.sched_getaffinity(t.id) == {old["cpu"]}
        # the same sockets and segments keep working
        b.send(b"after restart")
        pkt = a.recv(timeout=5)
        assert pkt.data == b"after restart" and pkt.source == b.local
        assert pool.workers()[1]["restarts"] == 0


def test_restart_is_quick(pool):
    """The supervisor notices a death at once (pidfd) and spawns within ~100 ms."""
    old = pool.workers()[1]
    os.kill(old["pid"], signal.SIGKILL)
    t_kill = time.monotonic_ns()
    assert wait_for(lambda: pool.workers()[1]["pid"] not in (0, old["pid"]), 10, 0.001)
    spawned_after = pool.workers()[1]["started_ns"] - t_kill
    assert spawned_after < 1_000_000_000, f"respawned {spawned_after / 1e6:.1f} ms after the kill"
    assert wait_for(lambda: pool.workers()[1]["state"] == "running", 10)


# ------------------------------------------------------------ bad input


def test_bad_pool_arguments():
    if 3 not in os.sched_getaffinity(0):
        with pytest.raises(ValueError, match=r"cpu 3 in cpus=\[3\].*may run on CPUs"):
            rtudp.Pool("x", cpus=[3])
    with pytest.raises(ValueError, match=r"cpu 4096 in cpus=\[4096\]"):
        rtudp.Pool("x", cpus=[4096])
    with pytest.raises(ValueError, match="'a.b'"):
        rtudp.Pool("a.b")
    with pytest.raises(ValueError, match="rt_priority=200"):
        rtudp.Pool("x", rt_priority=200)
    with pytest.raises(ValueError, match=r"spin_budget=1.5 is out of range 0..1 "):
        rtudp.Pool("x", spin_budget=1.5)
    with pytest.raises(ValueError, match=r"spin_budget=-0.1 "):
        rtudp.Pool("x", spin_budget=-0.1)
    with pytest.raises(TypeError, match="spin_budget must be a number.*'lots'"):
        rtudp.Pool("x", spin_budget="lots")
    with pytest.raises(TypeError, match="'0'"):
        rtudp.Pool("x", cpus=["0"])
    with pytest.raises(ValueError, match="twice"):
        rtudp.Pool("x", cpus=[0, 0])


def test_bad_channel_arguments_name_the_value_and_pool_stays_usable(pool):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        with pytest.raises(rtudp.AddressInUseError, match=str(port)) as exc:
            pool.open_channel("a", local=("127.0.0.1", port))
        assert isinstance(exc.value, OSError) and exc.value.errno == 98
        # and who holds it: this process
        assert f"(bound by pid {os.getpid()}, " in str(exc.value)
    finally:
        taken.close()
    bad = [
        (dict(cpu=3), ValueError, r"cpu=3 .*CPUs \[0, 1\]" if pool.cpus == [0, 1] else "cpu=3"),
        (dict(cpu="0"), TypeError, "'0'"),
        (dict(local=("999.1.1.1", 5000)), ValueError, "999.1.1.1"),
        (dict(local=("no-such-host.invalid", 5000)), ValueError, "no-such-host.invalid"),
        (dict(local=("127.0.0.1", 70000)), ValueError, "70000"),
        (dict(local=("127.0.0.1", -1)), ValueError, "-1"),
        (dict(local=("127.0.0.1", "80")), TypeError, "'80'"),
        (dict(local="127.0.0.1:80"), TypeError, "127.0.0.1:80"),
        (dict(local=("10.254.254.254", 0)), ValueError, "10.254.254.254"),
        (dict(remote=("127.0.0.1", 0)), ValueError, "remote port 0"),
        (dict(remote=("::1", 5000)), ValueError, "same family"),
        (dict(direction=3), ValueError, "direction=3"),
        (dict(capacity=0), ValueError, "capacity=0"),
        (dict(max_datagram=70000), ValueError, "max_datagram=70000"),
        (dict(kind="nosuch"), ValueError, "'nosuch'"),
        (dict(hw_timestamps=1), TypeError, "hw_timestamps"),
    ]
    for kwargs, exc_type, pattern in bad:
        with pytest.raises(exc_type, match=pattern):
            pool.open_channel("a", **kwargs)
        assert pool.channels() == [], kwargs
    with pytest.raises(ValueError, match="'bad/name'"):
        pool.open_channel("bad/name")
    with pytest.raises(ValueError, match="too long"):
        pool.open_channel("x" * 40)
    ch = pool.open_channel("a")
    with pytest.raises(ValueError, match="'a' is already open"):
        pool.open_channel("a")
    with pytest.raises(rtudp.ChannelNotFoundError, match=f"'nope'.*'{pool.name}'"):
        pool.close_channel("nope")
    with pytest.raises(rtudp.ChannelNotFoundError, match=f"'nope'.*'{pool.name}'"):
        rtudp.attach("nope", pool=pool.name)
    # still usable: a second channel, traffic between them
    other = pool.open_channel("b", remote=ch.local)
    other.send(b"still fine")
    assert ch.recv(timeout=5).data == b"still fine"
    assert sorted(pool.channels()) == ["a", "b"]


def test_attach_to_a_pool_that_does_not_run(pool_name):
    with pytest.raises(rtudp.PoolNotRunningError, match=pool_name):
        rtudp.attach("a", pool=pool_name)


def test_operations_on_a_stopped_pool(pool_name):
    p = rtudp.Pool(pool_name, worker=fake_argv())
    with pytest.raises(rtudp.PoolNotRunningError):
        p.open_channel("a")
    p.start()
    p.stop()
    with pytest.raises(rtudp.PoolNotRunningError):
        p.open_channel("a")
    with pytest.raises(RuntimeError, match="already started"):
        p.start()


# ------------------------------------------------------------ embedded pools clean up


EMBEDDED = textwrap.dedent("""
    import os, signal, sys, time
    import rtudp
    p = rtudp.Pool({name!r}, worker={argv!r}).start()
    a = p.open_channel("a")
    print(" ".join(str(w["pid"]) for w in p.workers()), flush=True)
    how = {how!r}
    if how == "exit":
        sys.exit(0)
    if how == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
    if how == "sigterm":
        a.recv(timeout=30)
""")


@pytest.mark.parametrize("how", ["exit", "sigint", "sigterm"])
def test_embedded_pool_cleans_up_at_exit(pool_name, how):
    code = EMBEDDED.format(name=pool_name, argv=fake_argv(), how=how)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in proc.stdout.readline().split()]
        assert pids, proc.stderr.read()
        if how == "sigterm":
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert wait_for(lambda: all(gone(p) for p in pids), 10)
    assert pool_files(pool_name) == []


def test_registry_lists_and_reports(pool, pool_name):
    assert registry.list_pools().get(pool_name) == "running"
    assert registry.pool_state(pool_name) == "running"


def test_first_channel_starts_an_embedded_pool_that_leaves_nothing(pool_name):
    code = textwrap.dedent(f"""
        import rtudp
        a = rtudp.open_channel("a", pool={pool_name!r})
        b = rtudp.open_channel("b", pool={pool_name!r}, remote=a.local)
        b.send(b"hi")
        assert a.recv(timeout=5).data == b"hi"
        assert rtudp.embedded_pool({pool_name!r}).channels() == ["a", "b"]
        print(" ".join(str(w["pid"]) for w in rtudp.embedded_pool({pool_name!r}).workers()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    pids = [int(x) for x in out.stdout.split()]
    assert pids and wait_for(lambda: all(gone(p) for p in pids), 10)
    assert pool_files(pool_name) == []


def test_embedded_pool_refuses_a_pool_run_elsewhere(pool, pool_name):
    with pytest.raises(rtudp.PoolRunningError, match="PoolClient"):
        rtudp.embedded_pool(pool_name)


def test_watcher_never_spins_when_its_fds_break():
    """The watching thread may run SCHED_FIFO above the workers: if select() fails
    (an fd closed under it by a racing teardown) it must pause, not retry at once."""
    pool = rtudp.Pool(f"watch{os.getpid()}", cpus=[max(os.sched_getaffinity(0))], rt_priority=0)
    pool.start()
    try:
        watcher = next(t for t in pool._threads if "-supervisor-" in t.name)

        def cpu_s() -> float:
            t = next(t for t in psutil.Process().threads() if t.id == watcher.native_id)
            return t.user_time + t.system_time

        # a number no fd has (the top of the fd table, which the test's own files
        # will not reach): watching it fails with EBADF
        broken = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1
        with pytest.raises(OSError):
            os.fstat(broken)
        real, pool._watcher._wake_r = pool._watcher._wake_r, broken
        try:
            pool._watcher.wake()
            before = cpu_s()
            time.sleep(1.0)
            used = cpu_s() - before
        finally:
            pool._watcher._wake_r = real
        # a tight retry loop would use the whole second
        assert used <= 0.2, f"the watcher used {used:.2f} s of CPU in 1 s"
        assert watcher.is_alive()
    finally:
        pool.stop()


def _switches(tid: int) -> int:
    """Thread ``tid`` of this process: its context switches (a wake-up costs one)."""
    with open(f"/proc/self/task/{tid}/status") as f:
        return sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)


def test_an_idle_pools_threads_wait_without_waking(pool_name):
    """While nobody asks it anything, the supervisor's command thread and its watcher
    wait with no timeout (only the heartbeat wakes, for its beat); the pool still
    answers at once, and stops at once (stop wakes the command thread)."""
    pool = rtudp.Pool(pool_name, cpus=[max(os.sched_getaffinity(0))], rt_priority=0).start()
    try:
        ch = pool.open_channel("idle", local=("127.0.0.1", 0))
        with rtudp.PoolClient(pool_name) as client:  # requests, answered at once
            asked = client.open_channel("asked", local=("127.0.0.1", 0))
            assert sorted(client.channels()) == ["asked", "idle"]
            asked.close()
            assert client.channels() == ["idle"]
        threads = {t.name.split("-")[1]: t.native_id for t in pool._threads}
        # the command thread looks for clients that died only while channels are theirs
        time.sleep(0.5)
        before = {name: _switches(tid) for name, tid in threads.items()}
        time.sleep(2.0)
        woke = {name: _switches(tid) - before[name] for name, tid in threads.items()}
        assert woke["commands"] == 0 and woke["supervisor"] == 0, woke
        ch.close()
    finally:
        t0 = time.monotonic()
        pool.stop()
        took = time.monotonic() - t0
    assert took < pool_context.STOP_GRACE_S, f"stop took {took:.1f} s"
