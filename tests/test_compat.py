"""RtUDP compatibility API: one test file for every implementation (socket, emulated)."""
from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

import rtudp
from rtudp.compat import (EmulatedNetwork, Impairment, RtUdpBase, RtUdpEmulated, UdpCom,
                          create_rtudp, create_rtudp_pair)
from ports import free_ports
from waiting import wait_for
from rtudp.packet_stats import PACKET_STATS_KEYS

IMPLS = ["socket", "emulated"]
_counter = iter(range(1_000_000))


# the plugin's fixtures: an isolated pool per test (leak-checked) and a seeded network
pytestmark = pytest.mark.rtudp(rt_priority=0, impairment=Impairment(seed=7))


@pytest.fixture
def pool(rtudp_pool: rtudp.Pool) -> rtudp.Pool:
    """The worker pool for the socket endpoints."""
    return rtudp_pool


@pytest.fixture
def net(rtudp_emulated_net: EmulatedNetwork) -> EmulatedNetwork:
    """The emulated network for the emulated endpoints."""
    return rtudp_emulated_net


def _where(impl: str, pool: rtudp.Pool, net: EmulatedNetwork) -> dict[str, Any]:
    return {"pool": pool} if impl == "socket" else {"network": net}


@contextmanager
def _pair(impl: str, pool: rtudp.Pool, net: EmulatedNetwork,
          capacity: int = 1024) -> Iterator[tuple[RtUdpBase, RtUdpBase]]:
    """Two started endpoints a <-> b; their sockets are closed on leaving."""
    pa, pb = free_ports(2)
    kw = _where(impl, pool, net)
    a = create_rtudp(impl, "127.0.0.1", pa, "127.0.0.1", pb, capacity=capacity, **kw)
    b = create_rtudp(impl, "127.0.0.1", pb, "127.0.0.1", pa, capacity=capacity, **kw)
    try:
        for end in (a, b):
            end.init_socket()
            end.start()
        yield a, b
    finally:
        a.close_socket()
        b.close_socket()


@pytest.mark.parametrize("impl", IMPLS)
def test_deadline_order_and_stats(impl: str, pool: rtudp.Pool, net: EmulatedNetwork) -> None:
    with _pair(impl, pool, net) as (a, b):
        base = time.monotonic_ns() + 20_000_000
        order = list(range(40))
        random.Random(3).shuffle(order)
        for i in order:
            a.send_data(b"%03d" % i, base + i * 500_000)
        got = b.receive_batch(40, 5_000_000_000)
        assert [int(d) for d, _ in got] == list(range(40)), "packets left out of deadline order"
        assert all(t >= base for _, t in got), "a packet arrived before its deadline"
        # the worker counts a send group once it has left, and times each packet when its
        # kernel TX stamp is read: both may come a little after the packets arrive
        assert wait_for(lambda: a.get_packet_stats()["n_packets_sent"] == 40 and
                        sum(a.get_packet_stats()["histogram"]["counts"]) == 40, 10.0), \
            a.get_packet_stats()
        stats = a.get_packet_stats()
        assert list(stats) == list(PACKET_STATS_KEYS)
        assert stats["n_packets_req"] == stats["n_packets_sent"] == 40
        assert stats["n_immediate_packets"] == 0
        assert sum(stats["histogram"]["counts"]) == 40
        assert 0 <= stats["min_latency_ns"] <= stats["p50_latency_ns"] <= stats["max_latency_ns"]
        assert stats["max_latency_ns"] < 1_000_000_000  # loose: a loaded CI machine passes
        assert list(b.get_packet_stats()) == list(PACKET_STATS_KEYS)
        assert b.get_packet_stats()["n_packets_rec"] == 40
        a.send_data(b"now")  # None = now
        assert b.receive_data(2_000_000_000)[0] == b"now"
        assert a.get_packet_stats()["n_immediate_packets"] == 1


@pytest.mark.parametrize("impl", IMPLS)
def test_back_pressure_not_silent_drop(impl: str, pool: rtudp.Pool,
                                       net: EmulatedNetwork) -> None:
    with _pair(impl, pool, net, capacity=8) as (a, b):
        a.stop()  # nothing leaves: the queue fills
        far = time.monotonic_ns() + 10**9
        for i in range(8):
            a.send_data(b"%d" % i, far)
        with pytest.raises(rtudp.BackPressureError):
            a.send_data(b"overflow", far)
        assert a.get_send_length() == 8
        assert a.get_packet_stats()["n_packets_req"] == 8
        a.purge()
        assert a.get_send_length() == 0


@pytest.mark.parametrize("impl", IMPLS)
def test_receive_batch_timeout_consumes_nothing(impl: str, pool: rtudp.Pool,
                                                net: EmulatedNetwork) -> None:
    with _pair(impl, pool, net) as (a, b):
        for i in range(3):
            a.send_data(b"%d" % i)
        deadline = time.monotonic() + 5
        while b.get_receive_length() < 3 and time.monotonic() < deadline:
            time.sleep(0.001)
        with pytest.raises(TimeoutError, match="3 of 5"):
            b.receive_batch(5, 20_000_000)
        assert [d for d, _ in b.receive_batch(3, 0)] == [b"0", b"1", b"2"]
        with pytest.raises(TimeoutError):
            b.receive_data(1_000_000)


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_input_names_the_value(impl: str, pool: rtudp.Pool, net: EmulatedNetwork) -> None:
    kw = _where(impl, pool, net)
    with _pair(impl, pool, net) as (a, b):
        with pytest.raises(ValueError, match="65508"):
            a.send_data(b"x" * 65508)
        with pytest.raises(TypeError, match="str"):
            a.send_data("text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="-5"):
            a.send_data(b"x", -5)
        with pytest.raises(ValueError, match="-1"):
            b.receive_data(-1)
        with pytest.raises(TypeError, match="1.5"):
            b.receive_data(1.5)  # type: ignore[arg-type]
        with pytest.raises(OSError, match="in use"):
            create_rtudp(impl, *a.local, *a.remote, **kw).init_socket()
        a.send_data(b"still usable")
        assert b.receive_data(2_000_000_000)[0] == b"still usable"
    with pytest.raises(ValueError, match="70000"):
        create_rtudp(impl, "127.0.0.1", 70000, "127.0.0.1", 1, **kw)
    with pytest.raises(ValueError, match="direction"):
        create_rtudp(impl, "127.0.0.1", 1, "127.0.0.1", 2, direction=3, **kw)
    with pytest.raises(ValueError, match="capacity"):
        create_rtudp(impl, "127.0.0.1", 1, "127.0.0.1", 2, capacity=0, **kw)
    with pytest.raises(ValueError, match="unknown RtUDP implementation 'tcp'"):
        create_rtudp("tcp", "127.0.0.1", 1, "127.0.0.1", 2)
    port = free_ports(1)[0]
    rx_only = create_rtudp(impl, "127.0.0.1", port, "127.0.0.1", 2, direction=1, **kw)
    with pytest.raises(rtudp.RtUdpError, match="not initialised"):
        rx_only.send_data(b"x")
    rx_only.init_socket()
    with pytest.raises(ValueError, match="receive-only"):
        rx_only.send_data(b"x")
    rx_only.close_socket()


def _impaired_run(imp: Impairment, n: int = 2000) -> tuple[list[int], dict[str, int]]:
    network = EmulatedNetwork(imp)
    a = RtUdpEmulated("127.0.9.1", 1, "127.0.9.2", 2, capacity=4 * n, network=network)
    b = RtUdpEmulated("127.0.9.2", 2, "127.0.9.1", 1, capacity=4 * n, network=network)
    try:
        for end in (a, b):
            end.init_socket()
            end.start()
        for i in range(n):
            a.send_data(i.to_bytes(4, "big"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s = network.stats()
            if s["sent"] == n and s["in_flight"] == 0:
                break
            time.sleep(0.005)
        got = b.receive_batch(b.get_receive_length(), 0) if b.get_receive_length() else []
        return [int.from_bytes(d, "big") for d, _ in got], network.stats()
    finally:
        a.close_socket()
        b.close_socket()
        network.close()


def test_impairments_are_counted_and_seeded() -> None:
    imp = Impairment(loss=0.05, duplicate=0.02, reorder=0.05, reorder_ns=2_000_000,
                     delay_ns=100_000, jitter_ns=50_000, seed=11)
    seqs, stats = _impaired_run(imp)
    assert stats["sent"] == 2000
    assert 40 <= stats["lost"] <= 170            # 5 % of 2000, seeded
    assert stats["duplicated"] > 0 and stats["reordered"] > 0
    assert len(seqs) == stats["delivered"] == 2000 - stats["lost"] + stats["duplicated"]
    assert len(set(seqs)) == 2000 - stats["lost"]
    assert any(later < earlier for earlier, later in zip(seqs, seqs[1:])), "nothing reordered"
    again, stats2 = _impaired_run(imp)
    assert stats2["lost"] == stats["lost"] and set(again) == set(seqs), "same seed, same losses"


def test_impairment_validation() -> None:
    with pytest.raises(ValueError, match="loss"):
        Impairment(loss=1.5)
    with pytest.raises(ValueError, match="delay_ns"):
        Impairment(delay_ns=-1)


@pytest.mark.parametrize("impl", IMPLS)
def test_pair_and_stop_keeps_queue(impl: str, pool: rtudp.Pool, net: EmulatedNetwork) -> None:
    """create_rtudp_pair makes sender -> receiver; stop() keeps queued packets for start()."""
    pa, pb = free_ports(2)
    tx, rx = create_rtudp_pair(impl, "127.0.0.1", pa, "127.0.0.1", pb, **_where(impl, pool, net))
    try:
        for end in (tx, rx):
            end.init_socket()
        rx.start()
        for i in range(5):
            tx.send_data(b"%d" % i)  # not started yet: they wait
        assert tx.get_send_length() == 5
        with pytest.raises(TimeoutError):
            rx.receive_data(50_000_000)
        tx.start()
        assert [d for d, _ in rx.receive_batch(5, 5_000_000_000)] == [b"0", b"1", b"2", b"3",
                                                                       b"4"]
        tx.stop()
        tx.send_data(b"later")
        with pytest.raises(TimeoutError):
            rx.receive_data(50_000_000)
        tx.start()
        assert rx.receive_data(5_000_000_000)[0] == b"later"
    finally:
        tx.close_socket()
        rx.close_socket()


def test_udpcom_name_and_cpu_outside_pool(pool: rtudp.Pool) -> None:
    """UDPCom's class is there; cpu= names a worker's CPU, and a CPU outside the pool is a
    ValueError naming it (RtUDP failed with a bare OSError), when the endpoint is made."""
    pa, pb = free_ports(2)
    with pytest.raises(ValueError, match="cpu=99"):
        UdpCom("127.0.0.1", pa, "127.0.0.1", pb, cpu=99, pool=pool)
    good = UdpCom("127.0.0.1", pa, "127.0.0.1", pb, cpu=os.sched_getaffinity(0).pop(), pool=pool)
    good.init_socket()
    good.close_socket()


@pytest.mark.parametrize("impl", IMPLS)
def test_counts_kept_at_close_include_every_packet_delivered(
        impl: str, pool: rtudp.Pool, net: EmulatedNetwork) -> None:
    """Read right after close_socket(), n_packets_sent counts every packet the peer got:
    the sender is stopped before its counts are kept, so no send is left uncounted."""
    for _round in range(20):
        with _pair(impl, pool, net) as (a, b):
            for i in range(10):
                a.send_data(i.to_bytes(1, "big"))
            got = b.receive_batch(10, 5_000_000_000)
            a.close_socket()
            assert a.get_packet_stats()["n_packets_sent"] == len(got) == 10


def test_close_socket_after_the_pool_stopped(pool: rtudp.Pool) -> None:
    """An endpoint whose pool has stopped still closes, and its counts stay readable."""
    pa, pb = free_ports(2)
    end = create_rtudp("socket", "127.0.0.1", pa, "127.0.0.1", pb, pool=pool)
    end.init_socket()
    end.start()
    pool.stop()
    end.close_socket()
    assert not end.is_running()
    assert end.get_packet_stats()["n_packets_sent"] == 0
