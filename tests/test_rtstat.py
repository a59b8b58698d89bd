"""rtstat as a person uses it: in a terminal (tmux) against a live pool with traffic,
the screen read with ``tmux capture-pane``, at 80, 100 and 200 columns, a channel's
detail view; ``--json`` and ``--once`` against ``Channel.stats()``; a pool that
vanishes, a corrupt segment, no pool at all."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from rtstat_helpers import (RTSTAT, Tmux, TrafficPool, si_value, table, tables,  # noqa: F401
                            traffic)

from rtudp.tools.rtstat_view import CHANNEL_COLUMNS


@pytest.fixture(autouse=True)
def _rtstat_installed() -> None:
    """Installing rtudp installs the rtstat script: missing, the install is broken."""
    assert os.path.exists(RTSTAT), f"rtstat is not installed beside {sys.executable}"


needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux; .ci/run does)")


@pytest.fixture
def tmux_factory(request):
    started = []

    def make(command: str, width: int = 240, height: int = 60) -> Tmux:
        t = Tmux(f"{len(started)}", command, width, height)
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


def _run(*args: str, timeout: float = 30, columns: int | None = None
         ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([RTSTAT, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def _cell(screen: str, channel: str, column: str) -> float:
    return si_value(table(screen, "channel").cell(channel, column))


def _ready(screen: str, *channels: str) -> bool:
    """The channel table is up with its rates (two samples taken) for ``channels``."""
    found = tables(screen).get("channel")
    return (found is not None and all(c in found.rows for c in channels)
            and all(found.cell(c, "TX rate pkt/s") != "-" for c in channels))


def _between(shown: float, low: int, high: int) -> bool:
    """``shown`` (three significant digits) is a value in [low, high]."""
    return low * 0.995 <= shown <= high * 1.005


@needs_tmux
def test_live_screen_numbers_move_and_match_stats(traffic, tmux_factory):
    t = tmux_factory(_rtstat_cmd("--pool", traffic.name, "--interval", "0.5"))
    before = traffic.stats()
    s1 = t.wait_for(lambda s: _ready(s, "tx", "rx"))
    after = traffic.stats()
    assert f"pool {traffic.name}" in s1 and "RUNNING" in s1
    # totals on screen lie between the stats() read just before and just after
    tx1 = _cell(s1, "tx", "TX sent pkt")
    rx1 = _cell(s1, "rx", "RX recv pkt")
    assert _between(tx1, before["tx"]["tx_packets"], after["tx"]["tx_packets"])
    assert _between(rx1, before["rx"]["rx_packets"], after["rx"]["rx_packets"])
    # the numbers move
    s2 = t.wait_for(lambda s: _ready(s, "tx") and _cell(s, "tx", "TX sent pkt") > tx1 + 200)
    assert _cell(s2, "rx", "RX recv pkt") > rx1
    # the rate shown agrees with what stats() counts over the second its window ends in
    # (loosely; in rounds: a stall of the loaded machine can make one window's rate
    # differ from its second's, a wrong rate differs in every round)
    rounds = []
    for _ in range(3):
        a = traffic.stats()["tx"]["tx_packets"]
        time.sleep(1.0)
        rate = traffic.stats()["tx"]["tx_packets"] - a
        value = _cell(t.wait_for(lambda s: _ready(s, "tx")), "tx", "TX rate pkt/s")
        rounds.append((value, rate))
        if 0.5 * rate <= value <= 1.5 * rate:
            break
    assert any(0.5 * r <= v <= 1.5 * r for v, r in rounds), rounds
    # the reader attached to rx is counted; workers show the kernel's policy
    assert table(s2, "channel").cell("rx", "rd") == "1"
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
                    "tx_lateness_count", "rx_delay_count", "tx_late_arrival", "tx_late_sent"):
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
    assert list(table(out.stdout, "channel").rows) == ["tx"] and "workers" in out.stdout


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


#: what must be on screen at any width of 80 columns or more
ESSENTIAL = ("channel", "kind", "TX rate pkt/s", "RX rate pkt/s", "late on arrival rec",
             "sent late rec", "late p99 s", "delay p99 s", "drops pkt")


@needs_tmux
def test_fits_80_100_and_200_columns(shm_name, tmux_factory):
    """Every table fits the terminal: the essential columns at 80, nothing cut to ``…``
    at 100 and 200, more columns the wider it is, what is left out named."""
    pool = TrafficPool(shm_name.replace(".", "_")[:24].rstrip("_-"), kinds=True)
    try:
        shown: dict[int, dict[str, list[str]]] = {}
        for width in (80, 100, 200):
            t = tmux_factory(_rtstat_cmd("--pool", pool.name, "--interval", "0.4"), width)
            screen = t.wait_for(lambda s: _ready(s, "tx", "rx", "nf_a", "nf_b", "rtp_tx",
                                                 "rtp_rx")
                                and {"rtp channel", "netflux channel"} <= set(tables(s)))
            found = tables(screen)
            shown[width] = {k: v.names for k, v in found.items()}
            assert all(len(line) <= width for line in screen.splitlines())
            for name, tab in found.items():
                assert tab.width <= width, (width, name, screen)
            if width >= 100:
                assert "…" not in screen, f"a cell cut at {width} columns:\n{screen}"
            assert set(ESSENTIAL) <= set(found["channel"].names), (width, screen)
            # a kind's table: its first counters; the rest named in a note
            assert found["netflux channel"].names[:3] == ["netflux channel", "link", "sent pkt"]
            assert found["netflux channel"].cell("nf_b", "link") == "up"
            if len(found["channel"].names) < len(CHANNEL_COLUMNS):
                assert "more (--wide, or a wider terminal)" in screen
            t.keys("q")
            t.wait_for(lambda s: "EXIT=0" in s)
        for name in ("channel", "rtp channel", "netflux channel"):
            assert len(shown[80][name]) <= len(shown[100][name]) <= len(shown[200][name])
        assert len(shown[80]["channel"]) < len(shown[200]["channel"])
    finally:
        pool.stop()


def _bars(screen: str) -> str:
    """The tx_lateness panel of a detail screen, checked to draw its rows as bars: a
    row a range of values (``lower - upper``), its bar, its count, its cumulative %."""
    panel = screen.split("tx_lateness")[1].split("rx_delay")[0]
    rows = [ln for ln in panel.splitlines() if ln.rstrip().endswith("%")]
    assert len(rows) >= 2, screen  # lateness spreads over rows
    assert rows[-1].rstrip().endswith("100.00%")
    drawn = [ln for ln in rows if set(ln) & set("█▏▎▍▌▋▊▉")]
    assert len(drawn) >= 2 and "█" in panel, screen  # the biggest row: a whole bar
    return panel


@needs_tmux
def test_enter_shows_a_channel_with_its_histograms_and_esc_goes_back(traffic, tmux_factory):
    t = tmux_factory(_rtstat_cmd("--pool", traffic.name, "--interval", "0.4"), 100, 50)
    t.wait_for(lambda s: _ready(s, "tx", "rx"))
    t.keys("Down")  # rx is first; tx below it
    t.keys("Enter")
    before = traffic.stats()["tx"]
    screen = t.wait_for(lambda s: "channel tx" in s and "tx_lateness" in s)
    after = traffic.stats()["tx"]
    assert "…" not in screen
    _bars(screen)
    # every counter of the block, exact
    line = next(ln for ln in screen.splitlines() if ln.startswith("tx packets "))
    assert before["tx_packets"] - 5000 <= int(line.split()[2]) <= after["tx_packets"]
    t.keys("Escape")
    t.wait_for(lambda s: "channel tx" not in s and _ready(s, "tx", "rx"))
    t.keys("q")
    done = t.wait_for(lambda s: "MODE" in s)
    assert "EXIT=0" in done and "icanon echo" in done, done


def test_channel_once_prints_its_detail(traffic):
    traffic.wait_sent(500)
    out = _run("--pool", traffic.name, "--channel", "tx", "--once", "--interval", "0.3",
               columns=100)  # one histogram under the other
    assert out.returncode == 0, out.stderr
    assert all(len(line) <= 100 for line in out.stdout.splitlines())
    text = out.stdout
    assert "channel tx" in text and f"pool {traffic.name}" in text
    panel = _bars(text)
    assert "since open: n " in panel and "p99 " in panel
    # the JSON has the same histograms, rows of (lower, upper, count) adding up
    js = _run("--pool", traffic.name, "--channel", "tx", "--once", "--json", "--interval", "0.2")
    (pool,) = json.loads(js.stdout)["pools"]
    (ch,) = [c for c in pool["channels"] if "detail" in c]
    assert ch["name"] == "tx"
    hists = {h["name"]: h for h in ch["detail"]["histograms"]}
    late = hists["tx_lateness"]
    assert sum(r[2] for r in late["rows"]) == late["total"]["count"] > 0
    assert all(lo <= hi for lo, hi, _ in late["rows"])
    missing = _run("--pool", traffic.name, "--channel", "nosuch", "--once", "--interval", "0.1")
    assert missing.returncode == 1 and "no channel 'nosuch'" in missing.stdout


def test_wide_shows_every_column(traffic):
    out = _run("--pool", traffic.name, "--once", "--wide", "--interval", "0.2")
    assert out.returncode == 0, out.stderr
    names = table(out.stdout, "channel").names
    assert names == [" ".join(x for x in (c.name, c.unit) if x) for c in CHANNEL_COLUMNS]
    assert "more (--wide" not in out.stdout and "…" not in out.stdout


@needs_tmux
def test_wide_in_a_narrow_terminal_cuts_at_the_edge(traffic, tmux_factory):
    """--wide live at 100 columns: every column in order, the last ones past the edge
    (as ``less -S``), none dropped from the middle or squeezed to ``…``."""
    t = tmux_factory(_rtstat_cmd("--pool", traffic.name, "--interval", "0.4", "--wide"), 100)
    screen = t.wait_for(lambda s: _ready(s, "tx", "rx"))
    names = table(screen, "channel").names
    want = [" ".join(x for x in (c.name, c.unit) if x) for c in CHANNEL_COLUMNS]
    whole = names[:-1]  # the last one may be cut by the edge
    assert whole == want[:len(whole)] and len(whole) >= 8, names
    assert "…" not in screen and "more (--wide" not in screen
    t.keys("q")
    t.wait_for(lambda s: "EXIT=0" in s)


@needs_tmux
def test_a_screen_taller_than_the_terminal_scrolls(shm_name, tmux_factory):
    """24 lines, more to show: a last line says where the window is; PgDn shows the
    kinds' tables below, the selected row stays in view when moved, PgUp goes back."""
    pool = TrafficPool(shm_name.replace(".", "_")[:24].rstrip("_-"), kinds=True)
    try:
        t = tmux_factory(_rtstat_cmd("--pool", pool.name, "--interval", "0.4"), 100, 24)
        first = t.wait_for(lambda s: "below (PgUp/PgDn)" in s and _ready(s, "tx", "rx"))
        assert len(first.splitlines()) <= 24 and "lines 1-23 of " in first
        assert "netflux (totals)" not in first
        t.keys("PageDown")
        down = t.wait_for(lambda s: "netflux (totals)" in s)
        assert " 0 below (PgUp/PgDn)" in down and "rtstat  every" not in down
        t.keys("PageUp", "PageUp")
        t.wait_for(lambda s: s.startswith("rtstat  every") and " 0 above" in s)
        t.keys("q")
        t.wait_for(lambda s: "EXIT=0" in s)
    finally:
        pool.stop()
