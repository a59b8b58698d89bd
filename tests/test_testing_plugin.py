"""The ``rtudp.testing`` pytest plugin as a user meets it: test files in a fresh folder,
run by a separate pytest (the plugin loads through its ``pytest11`` entry point),
also under pytest-xdist with ``-n 2``."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import psutil
import pytest

import rtudp
from rtudp.testing import check_pool_gone, unique_pool_name

USER_TESTS = '''
import json, os, time
import pytest
import rtudp

LOG = os.environ["RTUDP_PLUGIN_LOG"]


def _log(**kw):
    with open(LOG, "a") as f:
        f.write(json.dumps(kw) + "\\n")


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("rtudp_pool", [[0], [0, 1]], indirect=True)
def test_pool_on_cpus(rtudp_pool):
    assert [w["cpu"] for w in rtudp_pool.workers()] == rtudp_pool.cpus
    _log(pool=rtudp_pool.name, pids=[w["pid"] for w in rtudp_pool.workers()],
         worker=os.environ.get("PYTEST_XDIST_WORKER"))


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("rtudp_channel_pair", ["channel", "socket", "emulated"],
                         indirect=True)
def test_pair_talks_both_ways(rtudp_channel_pair):
    a, b = rtudp_channel_pair
    if rtudp_channel_pair.implementation == "channel":
        a.send(b"ping")
        assert b.recv(timeout=5).data == b"ping"
        b.send(b"pong")
        assert a.recv(timeout=5).data == b"pong"
        _log(pool=a.pool, pids=[], worker=os.environ.get("PYTEST_XDIST_WORKER"))
    else:
        a.send_data(b"ping")
        assert b.receive_data(5_000_000_000)[0] == b"ping"


@pytest.mark.rtudp(impairment={"loss": 1.0, "seed": 3})
def test_emulated_net_impairment(rtudp_emulated_net):
    from rtudp import RtUdpEmulated
    a = RtUdpEmulated("10.0.0.1", 1, "10.0.0.2", 2, network=rtudp_emulated_net)
    b = RtUdpEmulated("10.0.0.2", 2, "10.0.0.1", 1, network=rtudp_emulated_net)
    for e in (a, b):
        e.init_socket(); e.start()
    a.send_data(b"x")
    with pytest.raises(TimeoutError):
        b.receive_data(200_000_000)
    assert rtudp_emulated_net.stats()["lost"] == 1
    for e in (a, b):
        e.close_socket()
'''

FAILING_TEST = '''
import pytest
import rtudp.workers.supervisor as sup


@pytest.mark.rtudp(rt_priority=0)
def test_fails_and_reports(rtudp_pool):
    rtudp_pool.open_channel("busy")
    assert 1 == 2


@pytest.mark.rtudp(rt_priority=0)
def test_leaks_segments(monkeypatch, rtudp_pool):  # monkeypatch undone after the pool
    monkeypatch.setattr(sup, "unlink_segments", lambda name: [])  # stop() forgets them
    rtudp_pool.open_channel("c")
'''


def _pytest(folder, *args: str, log=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if log is not None:
        env["RTUDP_PLUGIN_LOG"] = str(log)
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           *args], cwd=folder, capture_output=True, text=True, env=env,
                          timeout=300)


def _left_behind(entries: list[dict]) -> tuple[list[str], list[int]]:
    shm = os.listdir("/dev/shm")
    segs = [e for e in shm for rec in entries
            if e == f"rtudp.{rec['pool']}" or e.startswith(f"rtudp.{rec['pool']}.")]
    pids = [p for rec in entries for p in rec["pids"] if psutil.pid_exists(p)
            and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    return segs, pids


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist-n2"])
def test_user_suite_passes_and_leaves_nothing(tmp_path, xdist):
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    log = tmp_path / "log.jsonl"
    out = _pytest(tmp_path, *(["-n", "2"] if xdist else []), log=log)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6 passed" in out.stdout or "6 passed" in out.stdout.splitlines()[-1], out.stdout
    entries = [json.loads(ln) for ln in log.read_text().splitlines()]
    names = [e["pool"] for e in entries]
    assert len(entries) == 3 and len(set(names)) == len(names), names
    if xdist:
        assert {e["worker"] for e in entries} <= {"gw0", "gw1"}
        assert all(f"_{e['worker']}_" in e["pool"] for e in entries), names
    assert _left_behind(entries) == ([], [])


def test_failure_reports_stats_and_leaks_fail_the_test(tmp_path):
    (tmp_path / "test_bad.py").write_text(textwrap.dedent(FAILING_TEST))
    out = _pytest(tmp_path, "-rA")
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    # the failing test's report carries the pool's workers and channels
    assert "rtudp pool t" in text and "worker 0 pid" in text and "channel busy" in text
    # the leaking test errors at teardown, naming what was left (and removed)
    assert "ERROR at teardown of test_leaks_segments" in text, text
    assert "segments left in /dev/shm" in text and ".c'" in text, text
    assert not [e for e in os.listdir("/dev/shm") if e.endswith(".c") and "_m_" in e]


def test_check_pool_gone_kills_a_left_worker_process():
    proc = subprocess.Popen(["sleep", "60"])
    try:
        problems = check_pool_gone(unique_pool_name(), {proc.pid})
        assert problems == [f"worker processes still running after stop (killed): "
                            f"[{proc.pid}]"]
        assert proc.wait(5) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_importing_rtudp_does_not_import_pytest():
    code = "import sys, rtudp; print('pytest' in sys.modules, 'rtudp.testing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


def test_bad_parameters_name_the_value(tmp_path):
    (tmp_path / "test_p.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.mark.parametrize("rtudp_channel_pair", ["carrier-pigeon"], indirect=True)
        def test_x(rtudp_channel_pair):
            pass
    '''))
    out = _pytest(tmp_path)
    assert out.returncode != 0 and "'carrier-pigeon'" in out.stdout + out.stderr


def test_the_suite_itself_runs_on_the_plugin(rtudp_pool: rtudp.Pool) -> None:
    assert rtudp_pool.running and rtudp_pool.name.startswith(f"t{os.getpid()}_")


def test_readme_example_passes(tmp_path):
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    start = readme.index("```python", readme.index("## Testing your code with rtudp"))
    code = readme[start + len("```python"):readme.index("```", start + 1)]
    (tmp_path / "test_readme.py").write_text(code)
    defs = code.count("\ndef test_")
    assert defs >= 1, "the README's testing example has no test"
    out = _pytest(tmp_path)
    # every test the example defines ran and passed (parametrized ones count each case);
    # nothing skipped, failed or errored
    summary = re.search(r"^(\d+) passed in [\d.]+s$", out.stdout, re.M)
    assert out.returncode == 0 and summary and int(summary.group(1)) >= defs, \
        out.stdout + out.stderr
