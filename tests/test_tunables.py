"""The pool's tunables and idle strategies: described once in C (csrc/worker/tunables.h),
taken the same by Pool, the worker and the CLI."""
from __future__ import annotations

import subprocess

import psutil
import pytest

import rtudp
from rtudp.workers import worker_path
from rtudp.workers.tunables import DEFAULT_IDLE, IDLE_STRATEGIES, TUNABLES, resolve

from conftest import new_shm_name


def _worker_options(pool: rtudp.Pool) -> dict[str, str]:
    """The tunable options each running worker of ``pool`` was started with."""
    seen: dict[str, str] = {}
    for w in pool.workers():
        argv = psutil.Process(w["pid"]).cmdline()
        for t in TUNABLES.values():
            seen[t.name] = argv[argv.index(t.option) + 1]
    return seen


@pytest.mark.parametrize("idle", list(IDLE_STRATEGIES))
def test_each_idle_strategy_reaches_the_workers(idle: str) -> None:
    """A pool started with an idle strategy gives its workers that strategy's values,
    every tunable on the command line (the worker's own defaults never matter)."""
    pool = rtudp.Pool(new_shm_name().replace(".", "_")[:20], cpus=[0], idle=idle)
    with pool:
        want = resolve(idle, {})
        got = _worker_options(pool)
        for name, t in TUNABLES.items():
            assert got[name] == str(t.to_worker(want[name])), (idle, name, got)
        assert pool.idle == idle and pool.tunables == want


def test_a_tunable_given_overrides_the_strategy() -> None:
    pool = rtudp.Pool("x", idle="park", spin_budget=0.5)
    assert pool.spin_budget == 0.5 and pool.idle_poll is False  # park's, but the budget
    assert resolve(None, {}) == {t.name: t.default for t in TUNABLES.values()}
    assert DEFAULT_IDLE == "balanced"


def test_bad_strategy_and_values_are_named() -> None:
    with pytest.raises(ValueError, match="idle='fast' is not an idle strategy: pick one of "
                                         "'balanced', 'spin', 'park'"):
        rtudp.Pool("x", idle="fast")
    with pytest.raises(ValueError, match=r"rx_coalesce_us=2000 is out of range 0..1000 \(us\)"):
        rtudp.Pool("x", rx_coalesce_us=2000)
    with pytest.raises(TypeError, match="idle_poll must be True or False, got 1"):
        rtudp.Pool("x", idle_poll=1)
    with pytest.raises(TypeError, match="spin_budget must be a number"):
        rtudp.Pool("x", spin_budget="0.3")


def test_docstring_cli_and_worker_show_the_one_table() -> None:
    """Pool's docstring, ``rtudp pool start --help`` and ``rtudp-worker --help`` list
    every strategy and tunable with the default of the C table."""
    doc = rtudp.Pool.__doc__ or ""
    cli = subprocess.run(["rtudp", "pool", "start", "--help"], capture_output=True, text=True,
                         timeout=30, env={"COLUMNS": "200", "PATH": _venv_path()})
    worker = subprocess.run([worker_path(), "--help"], capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0 and worker.returncode == 0, (cli.stderr, worker.stderr)
    for s in IDLE_STRATEGIES:
        assert repr(s) in doc and s in cli.stdout and f" {s}" in worker.stdout
    for t in TUNABLES.values():
        assert f"{t.name}:" in doc and f"default {t.default!r}" in doc
        assert t.option in cli.stdout
        assert f"{t.option} {t.worker_min}..{t.worker_max}, default {t.worker_default}" \
            in worker.stdout, worker.stdout


def test_the_worker_refuses_a_value_out_of_range() -> None:
    t = TUNABLES["spin_budget"]
    out = subprocess.run([worker_path(), "--pool", "x", "--worker-id", "0", t.option,
                          str(t.worker_max + 1)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert f"{t.option} must be an integer in {t.worker_min}..{t.worker_max}, got " \
           f"'{t.worker_max + 1}'" in out.stderr


def test_the_worker_refuses_an_unknown_idle_strategy() -> None:
    out = subprocess.run([worker_path(), "--pool", "x", "--worker-id", "0", "--idle", "fast"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert f"--idle must be one of {', '.join(IDLE_STRATEGIES)}; got 'fast'" in out.stderr


def _venv_path() -> str:
    import os
    import sys
    return os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
