"""RX wake-up coalescing (Pool(rx_coalesce_us=...)): a real-time worker whose RX thread
finds two or more datagrams at once lets the next ones gather before it reads again; a
request and its reply, one datagram in flight, never wait; 0 turns it off, and a
SCHED_OTHER worker never waits.  Nothing is lost or reordered either way.  The worker's
RX thread is what is tested: each channel here leaves every receive to it
(``direct_recv = False``), or its reader would read the socket itself."""
from __future__ import annotations

import os
import signal
import socket
import struct
import time

import pytest

import rtudp
from fake_worker import need_fifo
from waiting import wait_for

BURST = 20


def _peer() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def _burst_while_stopped(pool: rtudp.Pool, ch: rtudp.Channel, first: int) -> None:
    """BURST datagrams (numbered from ``first``) sent while the channel's worker is
    stopped: its RX thread, continued, finds them all in one read."""
    pid = pool.workers()[ch.worker]["pid"]
    with _peer() as peer:
        os.kill(pid, signal.SIGSTOP)
        try:
            for i in range(first, first + BURST):
                peer.sendto(struct.pack("<I", i), ch.local)
        finally:
            os.kill(pid, signal.SIGCONT)


def _read_in_order(ch: rtudp.Channel, first: int, n: int) -> None:
    for i in range(first, first + n):
        got = ch.recv(timeout=5)
        assert struct.unpack("<I", got.data)[0] == i, f"datagram {i} came as {got.data!r}"


@pytest.mark.rtudp(cpus=[0])
def test_datagrams_found_together_make_the_worker_wait_for_more(rtudp_pool: rtudp.Pool) -> None:
    need_fifo(rtudp_pool, "only a real-time worker coalesces")
    w = rtudp_pool.workers()[0]
    assert w["rx_coalesce_ns"] == 50_000, "the default: 50 µs"
    with rtudp_pool.open_channel("gather", direction=1) as ch:
        ch.direct_recv = False
        before = rtudp_pool.workers()[0]["rx_coalesced"]
        for k in range(3):
            _burst_while_stopped(rtudp_pool, ch, k * BURST)
            _read_in_order(ch, k * BURST, BURST)
        # the worker publishes its counters every heartbeat
        assert wait_for(lambda: rtudp_pool.workers()[0]["rx_coalesced"] >= before + 3, 2.0), \
            f"waits counted: {rtudp_pool.workers()[0]['rx_coalesced'] - before} (3 bursts)"
        assert ch.rx_delay().count == 3 * BURST


@pytest.mark.rtudp(cpus=[0])
def test_one_datagram_in_flight_never_waits(rtudp_pool: rtudp.Pool) -> None:
    """Request and reply: the worker reads each alone, so it never holds one back."""
    need_fifo(rtudp_pool, "only a real-time worker coalesces")
    with rtudp_pool.open_channel("pingpong", direction=1) as ch, _peer() as peer:
        ch.direct_recv = False
        for i in range(300):
            peer.sendto(struct.pack("<I", i), ch.local)
            assert struct.unpack("<I", ch.recv(timeout=5).data)[0] == i
        time.sleep(0.3)  # > 2 heartbeats: the counters are published
        assert rtudp_pool.workers()[0]["rx_coalesced"] == 0


def _never_waits(pool: rtudp.Pool) -> None:
    assert pool.workers()[0]["rx_coalesce_ns"] == 0
    with pool.open_channel("eager", direction=1) as ch:
        ch.direct_recv = False
        _burst_while_stopped(pool, ch, 0)
        _read_in_order(ch, 0, BURST)
        time.sleep(0.3)
        assert pool.workers()[0]["rx_coalesced"] == 0


@pytest.mark.rtudp(cpus=[0], rx_coalesce_us=0)
def test_zero_turns_it_off(rtudp_pool: rtudp.Pool) -> None:
    _never_waits(rtudp_pool)


@pytest.mark.rtudp(cpus=[0], rt_priority=0)
def test_a_sched_other_worker_never_waits(rtudp_pool: rtudp.Pool) -> None:
    """Its sleeps are not short (timer slack, the scheduler): batches would grow to ms."""
    _never_waits(rtudp_pool)


def test_bad_values_name_themselves() -> None:
    with pytest.raises(ValueError, match=r"rx_coalesce_us=1001 is out of range 0..1000"):
        rtudp.Pool("x", rx_coalesce_us=1001)
    with pytest.raises(ValueError, match=r"rx_coalesce_us=-1 "):
        rtudp.Pool("x", rx_coalesce_us=-1)
    with pytest.raises(TypeError, match=r"rx_coalesce_us must be an int.*2.5"):
        rtudp.Pool("x", rx_coalesce_us=2.5)
    with pytest.raises(TypeError, match=r"rx_coalesce_us must be an int.*True"):
        rtudp.Pool("x", rx_coalesce_us=True)
