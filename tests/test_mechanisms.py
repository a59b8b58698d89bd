"""The pacer's mechanisms that can be switched off for measuring
(csrc/worker/mechanisms.h): the names come from C, reach the workers, and a mechanism
switched off does nothing (its own counter stays at zero under the load that drives it)."""
from __future__ import annotations

import socket
import subprocess
import time

import psutil
import pytest

import rtudp
from rtudp.workers import worker_path
from rtudp.workers.mechanisms import MECHANISMS, check_off

from conftest import new_shm_name
from waiting import wait_for


def _pool(**kw) -> rtudp.Pool:
    return rtudp.Pool(new_shm_name().replace(".", "_")[:20], cpus=[0], **kw)


def test_the_table_names_each_mechanism_once_with_its_help() -> None:
    assert len(MECHANISMS) >= 10
    assert all(name.isidentifier() and len(text) > 20 for name, text in MECHANISMS.items())
    out = subprocess.run([worker_path(), "--help"], capture_output=True, text=True, timeout=30)
    for name in MECHANISMS:
        assert f"  {name} " in out.stdout, name


def test_names_switched_off_reach_the_workers_in_the_table_order() -> None:
    off = list(MECHANISMS)[:3][::-1]
    with _pool(pacer_off=off) as pool:
        assert pool.pacer_off == tuple(list(MECHANISMS)[:3])
        for w in pool.workers():
            argv = psutil.Process(w["pid"]).cmdline()
            assert argv[argv.index("--off") + 1] == ",".join(list(MECHANISMS)[:3])
    with _pool() as pool:
        assert pool.pacer_off == ()
        assert "--off" not in psutil.Process(pool.workers()[0]["pid"]).cmdline()


def test_a_pool_given_none_takes_them_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("RTUDP_PACER_OFF", " guard, bridge ,")
    assert _pool().pacer_off == ("bridge", "guard")
    assert _pool(pacer_off=[]).pacer_off == ()   # given: the environment is not read
    monkeypatch.setenv("RTUDP_PACER_OFF", "bridge,nope")
    with pytest.raises(ValueError, match=r"\$RTUDP_PACER_OFF='bridge,nope': .*'nope'"):
        _pool()


def test_bad_names_are_named() -> None:
    with pytest.raises(ValueError, match="no mechanism named 'nope'"):
        check_off(["bridge", "nope"])
    with pytest.raises(TypeError, match="sequence of mechanism names, got 'bridge'"):
        check_off("bridge")
    out = subprocess.run([worker_path(), "--pool", "x", "--worker-id", "0", "--off",
                          "bridge,nope"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "no mechanism named 'nope'" in out.stderr


def _send_paced(pool: rtudp.Pool, n: int, gap_ns: int) -> dict:
    """n datagrams gap_ns apart through a channel of pool that also receives (the RX
    work a bridging TX thread may take); the worker's counters after."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    try:
        ch = pool.open_channel("m", local=("127.0.0.1", 0), remote=rx.getsockname(),
                               capacity=4096)
        with ch:
            start = time.monotonic_ns() + 20_000_000
            for i in range(n):
                ch.send(b"x" * 32, start + i * gap_ns)
            assert wait_for(lambda: ch.stats()["tx_packets"] == n, 30), ch.stats()
        return pool.workers()[0]
    finally:
        rx.close()


@pytest.mark.parametrize("mechanism,counter", [("bridge", "bridge_ns"),
                                               ("rx_turns", "rx_turns"),
                                               ("demote", "demotions")])
def test_a_mechanism_switched_off_does_nothing(mechanism: str, counter: str) -> None:
    """Short gaps under a budget that spins all of them: the counter of the mechanism
    switched off stays at zero (whether it moves with the mechanism on is the
    machine's: a figure for rtudp bench mechanisms, not asserted)."""
    with _pool(spin_budget=1, pacer_off=[mechanism]) as pool:
        w = _send_paced(pool, 2000, 20_000)
    assert w[counter] == 0, w
