"""The CPU idle-latency request (PM QoS, /dev/cpu_dma_latency): a worker holds it
while it serves channels, drops it when it has none, and never with idle_poll=False."""
from __future__ import annotations

import os
import time

import pytest

import rtudp
from waiting import wait_for

QOS = "/dev/cpu_dma_latency"


def _holds_qos(pid: int) -> bool:
    """True if process ``pid`` has /dev/cpu_dma_latency open (the request lives as
    long as that file stays open)."""
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == QOS:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def _need_qos_device() -> None:
    if not os.access(QOS, os.W_OK):
        pytest.skip(f"{QOS} is missing or not writable here: the worker cannot hold the "
                    f"request (it warns and runs without)")


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_worker_holds_the_request_only_while_serving(rtudp_pool: rtudp.Pool) -> None:
    _need_qos_device()
    pid = rtudp_pool.workers()[0]["pid"]
    assert not _holds_qos(pid) and not rtudp_pool.workers()[0]["idle_poll"], \
        "held before any channel was open"
    ch = rtudp_pool.open_channel("held", direction=1)
    assert wait_for(lambda: _holds_qos(pid)), "no request while serving a channel"
    assert rtudp_pool.workers()[0]["idle_poll"]
    # reading the device gives the aggregate request: ours is 0 µs
    with open(QOS, "rb") as f:
        assert int.from_bytes(f.read(4), "little", signed=True) == 0
    ch.close()
    assert wait_for(lambda: not _holds_qos(pid)), "request kept after the last channel closed"
    assert not rtudp_pool.workers()[0]["idle_poll"]


@pytest.mark.rtudp(rt_priority=0, cpus=[0], idle_poll=False)
def test_no_request_when_turned_off(rtudp_pool: rtudp.Pool) -> None:
    _need_qos_device()
    with rtudp_pool.open_channel("free", direction=1):
        time.sleep(0.2)
        pid = rtudp_pool.workers()[0]["pid"]
        assert not _holds_qos(pid)
        assert not rtudp_pool.workers()[0]["idle_poll"]


def test_idle_poll_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="idle_poll must be a bool, got 'yes'"):
        rtudp.Pool("x", idle_poll="yes")  # type: ignore[arg-type]
