"""One CLI for a migrating user: ``rtudp rtstat`` is the rtstat command and is listed;
a missing pool is named as such; an empty pool's status says how channels are opened."""
from __future__ import annotations

import subprocess
import sys

import pytest

import rtudp
from conftest import new_shm_name

CLI = [sys.executable, "-m", "rtudp.tools.cli"]

pytestmark = pytest.mark.rtudp(rt_priority=0)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def absent_pool() -> str:
    """A pool name no pool runs under."""
    return new_shm_name("absent").replace(".", "_")[:30].rstrip("_-")


def test_help_lists_rtstat_and_it_takes_rtstats_arguments() -> None:
    top = run_cli("--help")
    assert top.returncode == 0 and "rtstat" in top.stdout
    own = run_cli("rtstat", "--help")
    assert own.returncode == 0, own.stderr
    assert own.stdout.startswith("usage: rtudp rtstat") and "--once" in own.stdout
    bad = run_cli("rtstat", "--bogus")
    assert bad.returncode == 2 and "rtudp rtstat: error: unrecognized arguments: --bogus" \
        in bad.stderr


def test_rtudp_rtstat_once_is_the_rtstat_command(rtudp_pool: rtudp.Pool) -> None:
    with rtudp_pool.open_channel("seen", local=("127.0.0.1", 0)):
        out = run_cli("rtstat", "--pool", rtudp_pool.name, "--once", "--interval", "0.1")
    assert out.returncode == 0, out.stderr
    assert f"pool {rtudp_pool.name}" in out.stdout and "seen" in out.stdout
    missing = absent_pool()
    gone = run_cli("rtstat", "--pool", missing, "--once", "--interval", "0.1")
    assert gone.returncode == 1 and f"pool '{missing}' is not running" in gone.stdout


def test_stats_names_a_missing_pool_and_a_missing_channel(rtudp_pool: rtudp.Pool) -> None:
    missing = absent_pool()
    out = run_cli("stats", "nosuch", "--pool", missing)
    assert out.returncode == 1
    assert f"no pool '{missing}' is running" in out.stderr and "no channel" not in out.stderr
    out = run_cli("stats", "nosuch", "--pool", rtudp_pool.name)
    assert out.returncode == 1
    assert f"no channel 'nosuch' in pool '{rtudp_pool.name}'" in out.stderr


def test_status_of_a_pool_without_channels_says_how_to_open_one(
        rtudp_pool: rtudp.Pool) -> None:
    out = run_cli("pool", "status", "--name", rtudp_pool.name)
    assert out.returncode == 0, out.stderr
    assert f"channels: none (a program opens them: rtudp.open_channel(NAME, " \
           f"pool='{rtudp_pool.name}'" in out.stdout
    assert "for now" not in out.stdout
