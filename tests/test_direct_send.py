"""Direct sends: an immediate ``send`` that finds nothing queued and the worker parked
goes out on the channel socket from the sending process (``Channel.direct_send``).

What a user relies on: every packet arrives once and in order whichever path it took,
a queued packet is never overtaken, the counters count both paths, turning it off
works, and no handle keeps the channel's port bound once the channel is closed.
"""
from __future__ import annotations

import os
import socket
import struct
import time

import pytest

import rtudp
import rtudp.channel as channel_module
from env_probes import direct_send_missing
from fake_worker import worker_argv
from ports import free_ports

SEQ = struct.Struct("<Q")
PAUSE_S = 0.002  # long past DIRECT_QUIET_NS: the worker parks between two sends

pytestmark = pytest.mark.rtudp(worker=worker_argv())


@pytest.fixture
def pair(rtudp_pool):
    """Channel a (receiver) and b (connected to a), each on its own worker; b sends
    directly (skipped only where the kernel lacks what that needs)."""
    need_direct_send()
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", 0), cpu=rtudp_pool.cpus[0])
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local,
                                cpu=rtudp_pool.cpus[-1])
    assert b.direct_send, f"direct sends off where the kernel allows them: {b.direct_send_off}"
    return a, b


def need_direct_send() -> None:
    """Skip where this machine cannot give direct sends (probed: kernel, ptrace policy);
    the pool's supervisor is this process."""
    why = direct_send_missing(os.getpid())
    if why:
        pytest.skip(f"direct sends need what this machine lacks: {why}")


def _isolated(b, a, first: int, n: int) -> list[int]:
    """Send n packets one at a time, each after a pause; what a received."""
    got = []
    for i in range(first, first + n):
        time.sleep(PAUSE_S)
        b.send(SEQ.pack(i))
        got.append(SEQ.unpack(a.recv(timeout=5).data)[0])
    return got


def test_isolated_sends_go_direct_and_are_counted(pair):
    a, b = pair
    assert _isolated(b, a, 0, 20) == list(range(20))
    st = b.stats()
    # the worker's heartbeat may have it awake for one of them: that one is queued
    assert st["tx_direct"] >= 15, st
    assert st["tx_direct"] + st["tx_requested"] == 20
    assert st["tx_packets"] == st["tx_immediate"] == 20 and st["tx_bytes"] == 20 * SEQ.size
    assert st["tx_direct_fallbacks"] == 0 and st["tx_errors"] == 0
    # a departure is measured only for what the worker sent
    assert st["tx_lateness_count"] == st["tx_requested"]
    assert a.recv_many(10, timeout=0.05) == []  # nothing twice


def test_a_burst_is_queued_in_order(pair, monkeypatch):
    a, b = pair

    def burst(first: int, n: int) -> None:
        for i in range(first, first + n):
            b.send(SEQ.pack(i))
        got: list[int] = []
        while len(got) < n:
            got += [SEQ.unpack(p.data)[0] for p in a.recv_many(256, timeout=5)]
        assert got == list(range(first, first + n))

    burst(0, 2000)
    st = b.stats()
    assert st["tx_packets"] == 2000 and st["tx_direct"] + st["tx_requested"] == 2000
    # the quiet rule: a handle that finds the worker idle again within the quiet gap
    # queues; without it every send of a burst would find the worker parked and the
    # ring empty.  How many of a burst fall within 5 µs depends on the machine's load,
    # so the rule is checked with a gap no burst outlasts: after the burst's first
    # send (direct if it found the worker idle), everything is queued
    monkeypatch.setattr(channel_module, "DIRECT_QUIET_NS", 60 * 10**9)
    b.direct_send = False
    b.direct_send = True
    before = b.stats()["tx_direct"]
    burst(2000, 500)
    assert b.stats()["tx_direct"] - before <= 1


def test_a_queued_packet_is_never_overtaken(pair):
    """While a timed packet waits in the ring, immediates are queued behind it (and the
    worker's heap sends them first, as due); only once it has left is the socket used
    directly again."""
    a, b = pair
    later = time.monotonic_ns() + 300_000_000
    b.send(SEQ.pack(99), at_ns=later)
    now = _isolated(b, a, 0, 3)
    assert now == [0, 1, 2]
    assert b.stats()["tx_direct"] == 0  # the ring was never empty
    assert SEQ.unpack(a.recv(timeout=5).data)[0] == 99
    assert _isolated(b, a, 100, 5) == list(range(100, 105))
    assert b.stats()["tx_direct"] >= 3


def test_direct_send_can_be_turned_off(pair):
    a, b = pair
    b.direct_send = False
    assert b.direct_send is False and "direct_send = False" in b.direct_send_off
    assert _isolated(b, a, 0, 5) == list(range(5))
    assert b.stats()["tx_direct"] == 0 and b.stats()["tx_requested"] == 5
    with pytest.raises(TypeError, match="1"):
        b.direct_send = 1  # type: ignore[assignment]
    b.direct_send = True
    assert b.direct_send_off is None
    assert _isolated(b, a, 5, 10) == list(range(5, 15))
    assert b.stats()["tx_direct"] >= 5


def test_receive_only_and_unconnected_channels_do_not(pair):
    a, _b = pair
    assert not a.direct_send and "remote" in a.direct_send_off


def _child_sends(pool_name: str, first: int, n: int, q) -> None:
    import time as t

    import rtudp as r
    ch = r.attach("b", pool=pool_name)
    for i in range(first, first + n):
        t.sleep(PAUSE_S)
        ch.send(SEQ.pack(i))
    q.put((ch.direct_send_off, ch.stats()["tx_direct"]))
    ch.close()


def test_another_process_sends_directly(pair, rtudp_pool, children):
    """An attached process duplicates the supervisor's socket and sends on it."""
    a, _b = pair
    q = children.ctx.Queue()
    children.start(_child_sends, rtudp_pool.name, 0, 10, q, name="direct-sender")
    got = [SEQ.unpack(a.recv(timeout=20).data)[0] for _ in range(10)]
    off, direct = q.get(timeout=60)
    children.join_all()
    assert got == list(range(10))
    assert off is None and direct >= 5


def _port_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_no_handle_keeps_a_closed_channels_port(rtudp_pool):
    """A handle's duplicate of the socket goes when the handle closes, and when the
    pool closes the channel under a handle left open (at that handle's next send)."""
    need_direct_send()
    port, peer = free_ports(2)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", peer))
    try:
        ch = rtudp_pool.open_channel("c", local=("127.0.0.1", port), remote=("127.0.0.1", peer))
        assert ch.direct_send, ch.direct_send_off
        other = rtudp.attach("c", pool=rtudp_pool.name)
        assert other.direct_send
        other.close()
        assert other.direct_send_off == "the channel is closed"
        left_open = rtudp.attach("c", pool=rtudp_pool.name)
        time.sleep(PAUSE_S)
        left_open.send(b"x")
        sink.settimeout(5)
        assert sink.recv(64) == b"x"
        ch.close()  # the pool closes the channel; left_open still holds a duplicate
        assert left_open.direct_send  # it cannot know before it tries
        # meanwhile the port is this process's: reopening it says so
        with pytest.raises(rtudp.AddressInUseError, match=f"bound by pid {os.getpid()}, "):
            rtudp_pool.open_channel("c", local=("127.0.0.1", port))
        # sees the channel revoked: closes its duplicate and raises (it cannot leave)
        with pytest.raises(rtudp.ChannelClosedError):
            left_open.send(b"y")
        assert left_open.direct_send_off == "the pool closed the channel"
        assert _port_free(port)
        left_open.close()
    finally:
        sink.close()
