"""rtstat as a person uses it: in a terminal (tmux) against a live pool with traffic,
the screen read with ``tmux capture-pane``; ``--json`` and ``--once`` against
``Channel.stats()``; a pool that vanishes, a corrupt segment, no pool at all."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from rtstat_helpers import RTSTAT, Tmux, TrafficPool, header, row, traffic  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(RTSTAT),
                                reason=f"rtstat is not installed beside {sys.executable}")
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux; .ci/run does)")


@pytest.fixture
def tmux_factory(request):
    started = []

    def make(command: str) -> Tmux:
        t = Tmux(f"{len(started)}", command)
        started.append(t)
        return t

    yield make
    for t in started:
        t.close()


def _rtstat_cmd(*args: str) -> str:
    """rtstat in a shell that then reports its exit code and the terminal's mode."""
    cmd = " ".join(shlex.quote(a) for a in (RTSTAT, *args))
    return (f"{cmd}; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo "
            f"| tr '\\n' ' '; echo MODE; sleep 60")


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([RTSTAT, *args], capture_output=True, text=True, timeout=timeout)


def _cell_int(screen: str, channel: str, column: str) -> int:
    cols = header(screen, "channel")
    return int(row(screen, channel)[cols.index(column)])


@needs_tmux
def test_live_screen_numbers_move_and_match_stats(traffic, tmux_factory):
    t = tmux_factory(_rtstat_cmd("--pool", traffic.name, "--interval", "0.5"))
    before = traffic.stats()
    s1 = t.wait_for(lambda s: "TX total" in s and "…" not in s and "tx " in s)
    after = traffic.stats()
    assert f"pool {traffic.name}" in s1 and "RUNNING" in s1
    # totals on screen lie between the stats() read just before and just after
    tx1 = _cell_int(s1, "tx", "TX total")
    rx1 = _cell_int(s1, "rx", "RX total")
    assert before["tx"]["tx_packets"] <= tx1 <= after["tx"]["tx_packets"]
    assert before["rx"]["rx_packets"] <= rx1 <= after["rx"]["rx_packets"]
    # the numbers move
    s2 = t.wait_for(lambda s: "TX total" in s and _cell_int(s, "tx", "TX total") > tx1 + 200)
    assert _cell_int(s2, "rx", "RX total") > rx1
    # the rate shown agrees with what stats() counts over a second (loosely: loaded CI)
    a = traffic.stats()["tx"]["tx_packets"]
    time.sleep(1.0)
    rate = traffic.stats()["tx"]["tx_packets"] - a
    cols = header(s2, "channel")
    shown = row(s2, "tx")[cols.index("TX pkt/s")]
    value = float(shown[:-1]) * 1000 if shown.endswith("k") else float(shown)
    assert 0.5 * rate <= value <= 1.5 * rate, (shown, rate)
    # the reader attached to rx is counted; workers show the kernel's policy
    assert row(s2, "rx")[cols.index("rd")] == "1"
    assert "SCHED_OTHER" in s2  # the traffic pool runs rt_priority=0
    t.keys("q")
    done = t.wait_for(lambda s: "MODE" in s)
    assert "EXIT=0" in done and "icanon echo" in done, done


@needs_tmux
def test_ctrl_c_exits_cleanly_and_restores_the_terminal(traffic, tmux_factory):
    t = tmux_factory(_rtstat_cmd("--pool", traffic.name, "--interval", "0.3"))
    t.wait_for(lambda s: "RUNNING" in s)
    t.keys("C-c")
    done = t.wait_for(lambda s: "MODE" in s)
    assert "EXIT=0" in done and "icanon echo" in done and "Traceback" not in done, done


@needs_tmux
def test_no_pool_says_so_waits_and_shows_it_when_it_starts(shm_name, tmux_factory):
    name = shm_name.replace(".", "_")[:24].rstrip("_-")
    t = tmux_factory(_rtstat_cmd("--pool", name, "--interval", "0.3"))
    t.wait_for(lambda s: f"pool '{name}' is not running - waiting for one" in s)
    pool = TrafficPool(name)
    try:
        t.wait_for(lambda s: f"pool {name}" in s and "RUNNING" in s)
        pool.stop()
        # it vanishes: rtstat says so and keeps running
        t.wait_for(lambda s: "VANISHED" in s and "vanished" in s)
        time.sleep(0.7)
        assert "MODE" not in t.screen(), "rtstat exited when the pool vanished"
    finally:
        pool.stop()


def test_once_json_matches_stats(traffic):
    before = traffic.stats()
    out = _run("--pool", traffic.name, "--once", "--json", "--interval", "0.3")
    after = traffic.stats()
    assert out.returncode == 0, out.stderr
    frame = json.loads(out.stdout)
    (pool,) = frame["pools"]
    assert pool["name"] == traffic.name and pool["state"] == "running"
    assert pool["supervisor"]["pid"] == traffic.proc.pid
    assert len(pool["workers"]) == len(os.sched_getaffinity(0))
    chans = {c["name"]: c for c in pool["channels"]}
    assert set(chans) == {"rx", "tx"}
    for ch, side in (("tx", "tx"), ("rx", "rx")):
        tot = chans[ch]["totals"]
        for key in ("tx_packets", "tx_bytes", "rx_packets", "rx_bytes", "tx_requested",
                    "tx_lateness_count", "rx_delay_count"):
            assert before[side][key] <= tot[key] <= after[side][key], (ch, key)
        for key in ("tx_errors", "rx_kernel_drops", "rx_truncated"):
            assert tot[key] == after[side][key] == 0, (ch, key)
    assert chans["rx"]["readers"] == after["rx"]["readers_attached"] == 1
    assert chans["tx"]["readers"] == after["tx"]["readers_attached"] == 0
    assert chans["rx"]["direction"] == "recv" and chans["tx"]["remote"] == chans["rx"]["local"]
    iv = chans["tx"]["interval"]
    assert 0.25 <= iv["seconds"] <= 2.0
    assert iv["tx_pps"] > 200 and iv["lateness_count"] > 0
    assert iv["lateness_p50_ns"] <= iv["lateness_p99_ns"] <= iv["lateness_max_ns"]
    assert chans["rx"]["interval"]["rx_latency_count"] > 0


def test_once_text_and_filter(traffic):
    out = _run("--pool", traffic.name, "--once", "--interval", "0.2", "--filter", "^t")
    assert out.returncode == 0, out.stderr
    assert f"pool {traffic.name}" in out.stdout and "RUNNING" in out.stdout
    assert row(out.stdout, "tx") and "workers" in out.stdout
    with pytest.raises(AssertionError):
        row(out.stdout, "rx")


def test_once_without_the_pool_exits_1(shm_name):
    out = _run("--pool", shm_name.replace(".", "_")[:24], "--once", "--interval", "0.1")
    assert out.returncode == 1
    assert "is not running" in out.stdout


def test_bad_arguments_name_the_value():
    out = _run("--filter", "(", "--once")
    assert out.returncode == 2 and "invalid --filter regex '('" in out.stderr
    out = _run("--interval", "fast")
    assert out.returncode == 2 and "'fast'" in out.stderr
    out = _run("--pool", "a.b")
    assert out.returncode == 2 and "'a.b'" in out.stderr


def test_corrupt_control_segment_shows_and_rtstat_keeps_going(shm_name):
    name = shm_name.replace(".", "_")[:24].rstrip("_-")
    path = f"/dev/shm/rtudp.{name}"
    with open(path, "wb") as f:
        f.write(b"RTUDPSEG" + os.urandom(4088))
    out = _run("--pool", name, "--once", "--json", "--interval", "0.1")
    assert out.returncode == 0, out.stderr
    (pool,) = json.loads(out.stdout)["pools"]
    assert pool["state"] == "corrupt" and name in pool["error"]
    text = _run("--pool", name, "--once", "--interval", "0.1")
    assert "CORRUPT" in text.stdout and "Traceback" not in text.stderr
    os.unlink(path)


@pytest.mark.rtudp(rt_priority=0)
def test_corrupt_channel_segment_shows_beside_good_ones(rtudp_pool):
    rtudp_pool.open_channel("good")
    rtudp_pool.open_channel("bad")
    with open(f"/dev/shm/rtudp.{rtudp_pool.name}.bad", "r+b") as f:
        f.write(b"\0" * 8)  # its magic
    out = _run("--pool", rtudp_pool.name, "--once", "--json", "--interval", "0.1")
    assert out.returncode == 0, out.stderr
    (pool,) = json.loads(out.stdout)["pools"]
    chans = {c["name"]: c for c in pool["channels"]}
    assert chans["good"]["error"] is None
    assert "unreadable" in chans["bad"]["error"] and "magic" in chans["bad"]["error"]
