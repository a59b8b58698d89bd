"""Deployment as docs/deployment.md describes it, as far as this machine allows.

* deploy/rtudp-pool@.service: its ExecStart, run with the unit's limits and CPU
  affinity and without CAP_SYS_NICE (as its User= has none), starts a pool whose
  workers get SCHED_FIFO through LimitRTPRIO alone, serves channels, and stops cleanly
  on the SIGTERM that KillMode=mixed sends the main process only.
* containers: a program in its own mount namespace, as another user in the pool's
  group, shares a standalone pool's channels when it has the pool's /dev/shm and PID
  namespace (`--ipc=container:POOL --pid=container:POOL`); with a /dev/shm of its own
  it sees no pool, and in a PID namespace of its own it cannot tell the supervisor
  lives (PoolNotRunningError naming its pid).
* without CAP_SYS_NICE and with no RLIMIT_RTPRIO the pool runs SCHED_OTHER and warns
  once (the warning and `rtudp doctor`'s advice are tests/test_unprivileged.py's).
"""
from __future__ import annotations

import configparser
import grp
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rtudp
from conftest import new_shm_name
from fake_worker import real_worker_built
from rtudp.workers import registry

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "rtudp-pool@.service"
NOBODY = 65534
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setpriv, unshare)")
REAL = pytest.mark.skipif(not real_worker_built(), reason="rtudp-worker is not built")
pytestmark = [ROOT_ONLY, REAL]


def _unit() -> configparser.SectionProxy:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(UNIT.read_text())
    return cp["Service"]


def _environment_lines() -> dict[str, str]:
    """Every Environment= of the unit (configparser keeps only the last of a key)."""
    out = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            k, v = line[len("Environment="):].split("=", 1)
            out[k] = v
    return out


def _wait_running(name: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while registry.pool_state(name) != "running":
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"pool {name!r} did not start"
        time.sleep(0.1)


def _status(name: str) -> str:
    return subprocess.run([sys.executable, "-m", "rtudp.tools.cli", "pool", "status",
                           "--name", name], capture_output=True, text=True, timeout=30).stdout


def test_the_unit_keeps_what_the_docs_promise() -> None:
    s = _unit()
    env = _environment_lines()
    assert s["Type"] == "simple" and s["Restart"] == "on-failure"
    assert s["KillMode"] == "mixed"  # SIGTERM to the supervisor only: it stops the workers
    assert int(s["LimitRTPRIO"]) >= 50  # the workers' default rt_priority
    assert s["LimitMEMLOCK"] == "infinity"
    assert s["CPUAffinity"].split() == env["RTUDP_CPUS"].split(",")
    assert "pool start --foreground" in s["ExecStart"] and '"%i"' in s["ExecStart"]
    assert s.get("PrivateDevices", "no") == "no" and s.get("PrivateIPC", "no") == "no"


def _limits_settable(s: configparser.SectionProxy) -> str | None:
    """None when this process may raise the unit's hard limits (systemd can), else why
    not (a machine without CAP_SYS_RESOURCE, like this VM)."""
    probe = subprocess.run(["prlimit", f"--rtprio={s['LimitRTPRIO']}", "--memlock=unlimited",
                            "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else probe.stderr.strip()


def _run_unit(s: configparser.SectionProxy, name: str, limits: bool) -> subprocess.Popen:
    """The unit's ExecStart for pool ``name`` with its CPU affinity, without
    CAP_SYS_NICE when ``limits`` (then with its LimitRTPRIO and LimitMEMLOCK, as its
    User= would run), else as root."""
    env = {**os.environ, **_environment_lines(), "RTUDP_VENV": sys.prefix,
           "RTUDP_GROUP": grp.getgrgid(os.getegid()).gr_name}
    argv = ["taskset", "-c", s["CPUAffinity"].replace(" ", ","),
            *shlex.split(s["ExecStart"].replace("%i", name))]
    if limits:
        argv = ["prlimit", f"--rtprio={s['LimitRTPRIO']}", "--memlock=unlimited", "setpriv",
                "--inh-caps=-sys_nice", "--bounding-set=-sys_nice", *argv]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.mark.parametrize("limits", [False, True], ids=["root", "limits-no-cap"])
def test_the_units_command_runs_a_pool_that_stops_on_sigterm(limits: bool) -> None:
    """Channels work and SIGTERM stops it cleanly; with the unit's limits and no
    CAP_SYS_NICE, LimitRTPRIO alone gives the workers SCHED_FIFO."""
    s = _unit()
    cpus = _environment_lines()["RTUDP_CPUS"]
    if not all(int(c) in os.sched_getaffinity(0) for c in cpus.split(",")):
        pytest.skip(f"the unit's CPUs {cpus} are not all on this machine")
    if limits and (why := _limits_settable(s)):
        pytest.skip(f"cannot raise the unit's hard limits here: {why}")
    name = new_shm_name("unit").replace(".", "_")[:30]
    proc = _run_unit(s, name, limits)
    try:
        _wait_running(name, proc)
        status = _status(name)
        assert "FIFO" in status, status
        with rtudp.PoolClient(name) as client:
            a = client.open_channel("a", local=("127.0.0.1", 0))
            b = client.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
            b.send(b"from the unit's pool")
            assert a.recv(timeout=10.0).data == b"from the unit's pool"
            a.close()
            b.close()
        proc.send_signal(signal.SIGTERM)  # KillMode=mixed: the main process only
        out, _ = proc.communicate(timeout=int(s["TimeoutStopSec"]))
        assert proc.returncode == 0, out
        assert registry.segment_files(name) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        registry.clean_stale(name)


_CLIENT = """
import os, sys, rtudp
ch = rtudp.attach(sys.argv[1], pool=sys.argv[2])
ch.send(b"from a container")
print("pid", os.getpid(), "uid", os.getuid(), "direct_send_off:", ch.direct_send_off)
"""


def _in_container(argv: list[str], own_shm: bool = False,
                  own_pids: bool = False) -> subprocess.CompletedProcess:
    """``argv`` in a new mount namespace as nobody with the pool's group; with
    ``own_shm`` a /dev/shm of its own (no --ipc), with ``own_pids`` a PID namespace of
    its own (no --pid)."""
    if shutil.which("unshare") is None or shutil.which("setpriv") is None:
        pytest.skip("no unshare/setpriv (util-linux) here")
    mount = "mount -t tmpfs tmpfs /dev/shm && " if own_shm else ""
    inner = (f"{mount}exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "
             f"{shlex.join(argv)}")
    pids = ["--pid", "--fork"] if own_pids else []
    return subprocess.run(["unshare", *pids, "--mount", "--propagation", "private",
                           "sh", "-c", inner], capture_output=True, text=True, timeout=60,
                          cwd="/")


def test_a_container_with_the_pools_ipc_and_pids_uses_its_channels(shm_name: str) -> None:
    name = shm_name.replace(".", "_")[:30]
    with rtudp.Pool(name, group=NOBODY) as pool:
        rx = pool.open_channel("rx", local=("127.0.0.1", 0))
        tx = pool.open_channel("tx", remote=rx.local)
        out = _in_container([sys.executable, "-c", _CLIENT, "tx", name])
        assert out.returncode == 0, out.stderr
        assert f"uid {NOBODY}" in out.stdout
        assert rx.recv(timeout=10.0).data == b"from a container"
        tx.close()


def test_a_container_in_a_pid_namespace_of_its_own_is_told_why(shm_name: str) -> None:
    name = shm_name.replace(".", "_")[:30]
    with rtudp.Pool(name, group=NOBODY) as pool:
        pool.open_channel("rx", local=("127.0.0.1", 0))
        out = _in_container([sys.executable, "-c", _CLIENT, "rx", name], own_pids=True)
        assert out.returncode != 0
        assert "PoolNotRunningError" in out.stderr and f"pid {os.getpid()}" in out.stderr, \
            out.stderr


def test_a_container_with_its_own_ipc_sees_no_pool(shm_name: str) -> None:
    name = shm_name.replace(".", "_")[:30]
    with rtudp.Pool(name, group=NOBODY) as pool:
        pool.open_channel("rx", local=("127.0.0.1", 0))
        out = _in_container([sys.executable, "-c", _CLIENT, "rx", name], own_shm=True)
        assert out.returncode != 0
        assert "PoolNotRunningError" in out.stderr, out.stderr


_NO_NICE = """
import os, sys, warnings, rtudp
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with rtudp.Pool(sys.argv[1]) as pool:
        policies = {w["policy"] for w in pool.workers()}
prio = [str(w.message) for w in caught if w.category is rtudp.RtPriorityWarning]
print(len(prio))
print(policies == {os.SCHED_OTHER})
print(prio[0] if prio else "")
"""


def test_without_cap_sys_nice_the_pool_runs_sched_other_and_warns_once(shm_name: str) -> None:
    name = shm_name.replace(".", "_")[:30]
    out = subprocess.run(["prlimit", "--rtprio=0", "setpriv", "--inh-caps=-sys_nice",
                          "--bounding-set=-sys_nice", sys.executable, "-c", _NO_NICE, name],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    count, other, msg = (out.stdout.splitlines() + ["", "", ""])[:3]
    assert (count, other) == ("1", "True"), out.stdout + out.stderr
    assert "CAP_SYS_NICE" in msg
    assert registry.segment_files(name) == []
