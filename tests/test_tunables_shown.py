"""What each worker runs with, as it publishes it in its slot of the control segment:
its pool's idle strategy and every tunable, shown by ``rtudp pool status`` (text and
``--json``), ``Pool.workers()`` and rtstat (model, ``--json`` and screen), named through
the C table (csrc/worker/tunables.h).

The pool's workers get only ``--idle park --rx-coalesce-us 10`` (a wrapper drops the
other tunable options Pool gives them), so the values shown are the ones the worker
settled on itself from the strategy table, read back from shared memory; a slot's value
changed in shared memory changes what is shown, and one the table does not allow is
refused with its value named.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from rtudp.shmring.control import ControlSegment
from rtudp.tools.rtstat_model import Collector
from rtudp.tools.rtstat_view import View, render_frame
from rtudp.workers import worker_path
from rtudp.workers.tunables import IDLE_STRATEGIES, TUNABLES, resolve

CLI = [sys.executable, "-m", "rtudp.tools.cli"]
RTSTAT = os.path.join(os.path.dirname(sys.executable), "rtstat")
CPUS = sorted(os.sched_getaffinity(0))[:2]
GIVEN = {"rx_coalesce_us": 10}

#: runs the real worker with the pool's arguments minus the tunables not in GIVEN (an
#: interpreter without site: it starts fast, well within the pool's start timeout)
_WRAPPER = """
import os, sys
drop = set(sys.argv[2].split(","))
real, args, keep = sys.argv[1], sys.argv[3:], []
while args:
    opt = args.pop(0)
    if opt in drop:
        args.pop(0)
    else:
        keep.append(opt)
os.execv(real, [real, *keep])
"""
_DROPPED = ",".join(t.option for t in TUNABLES.values() if t.name not in GIVEN)

pytestmark = pytest.mark.rtudp(cpus=CPUS, idle="park", **GIVEN,
                               worker=[sys.executable, "-I", "-S", "-c", _WRAPPER, worker_path(),
                                       _DROPPED])


def _want() -> dict[str, object]:
    """park's values with GIVEN in place; some not given differ from the defaults, so a
    worker that ignored the strategy would show."""
    want = resolve("park", GIVEN)
    defaults = resolve(None, {})
    assert [k for k in want if want[k] != defaults[k] and k not in GIVEN], want
    assert all(want[k] != defaults[k] for k in GIVEN), want
    return want


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def _status_json(pool: str) -> dict:
    out = _cli("pool", "status", "--name", pool, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _settings_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "settings" in line]


def _expected_line(want: dict[str, object]) -> list[str]:
    return ["idle=park", *(f"{k}={v!r}" for k, v in want.items())]


def test_workers_got_only_the_strategy_and_the_override(rtudp_pool):
    """The premise: the worker's command line names park and rx_coalesce_us only, so
    whatever else it shows it settled on from the C table."""
    import psutil

    for w in rtudp_pool.workers():
        argv = psutil.Process(w["pid"]).cmdline()
        assert argv[argv.index("--idle") + 1] == "park", argv
        assert argv[argv.index("--rx-coalesce-us") + 1] == "10", argv
        assert not [t.option for t in TUNABLES.values() if t.option in argv
                    and t.name not in GIVEN], argv


def test_status_json_and_text_show_what_each_worker_runs_with(rtudp_pool):
    want = _want()
    st = _status_json(rtudp_pool.name)
    assert [w["index"] for w in st["workers"]] == list(range(len(CPUS)))
    for w in st["workers"]:
        assert w["state"] == "running" and w["idle"] == "park", w
        assert w["tunables"] == want, w
        assert list(w["tunables"]) == list(TUNABLES)  # the table's names and order
    for w in rtudp_pool.workers():
        assert (w["idle"], w["tunables"]) == ("park", want)

    text = _cli("pool", "status", "--name", rtudp_pool.name)
    assert text.returncode == 0, text.stderr
    (line,) = _settings_lines(text.stdout)  # the workers agree: one line
    assert line.split() == ["settings", *_expected_line(want)], text.stdout


def test_rtstat_shows_what_each_worker_runs_with(rtudp_pool):
    want = _want()
    frame = Collector(pool=rtudp_pool.name).frame()
    (pool,) = frame["pools"]
    assert len(pool["workers"]) == len(CPUS)
    for w in pool["workers"]:
        assert (w["idle"], w["tunables"]) == ("park", want), w
    console = Console(width=200, record=True)
    with console.capture() as cap:
        console.print(render_frame(frame, View(200)))
    (line,) = _settings_lines(cap.get())
    assert line.split() == ["settings:", *_expected_line(want)], cap.get()

    out = subprocess.run([RTSTAT, "--pool", rtudp_pool.name, "--once", "--json",
                          "--interval", "0.1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (pool,) = json.loads(out.stdout)["pools"]
    assert [(w["idle"], w["tunables"]) for w in pool["workers"]] == [("park", want)] * len(CPUS)


def test_what_is_shown_is_what_the_slot_holds(rtudp_pool):
    """A slot changed in shared memory changes what status and rtstat show (they read
    the slot, not the pool's arguments); a value the table does not allow is refused
    with the value named."""
    want = _want()
    index = list(TUNABLES).index("rx_coalesce_us")
    ctl = ControlSegment.open(rtudp_pool.name, writable=True)
    slot = ctl.worker(0)
    published = (int(slot.idle_strategy), int(slot.tunables[index]))
    try:
        slot.tunables[index] = 20
        slot.idle_strategy = list(IDLE_STRATEGIES).index("spin")
        st = _status_json(rtudp_pool.name)
        assert (st["workers"][0]["idle"], st["workers"][0]["tunables"]) == \
            ("spin", {**want, "rx_coalesce_us": 20})
        if len(CPUS) > 1:
            assert (st["workers"][1]["idle"], st["workers"][1]["tunables"]) == ("park", want)
            text = _cli("pool", "status", "--name", rtudp_pool.name).stdout
            assert [line.split()[:3] for line in _settings_lines(text)] == \
                [["settings", "workers", "0:"], ["settings", "workers", "1:"]], text

        slot.idle_strategy = len(IDLE_STRATEGIES)
        out = _cli("pool", "status", "--name", rtudp_pool.name, "--json")
        assert out.returncode != 0
        assert f"worker 0 names idle strategy {len(IDLE_STRATEGIES)}" in out.stderr, out.stderr
        (pool,) = Collector(pool=rtudp_pool.name).frame()["pools"]
        assert pool["state"] == "corrupt" and "idle strategy" in pool["error"], pool

        slot.idle_strategy = 0
        t = TUNABLES["rx_coalesce_us"]
        slot.tunables[index] = t.worker_max + 1
        (pool,) = Collector(pool=rtudp_pool.name).frame()["pools"]
        assert pool["state"] == "corrupt", pool
        assert f"rx_coalesce_us {t.worker_max + 1}, outside" in pool["error"], pool
    finally:  # as the worker wrote it, for the fixture's checks at teardown
        slot.idle_strategy, slot.tunables[index] = published
        ctl.close()
