"""The impairment relay in C (rtudp.tools.bench.udt_relay) that the udt tests and
``rtudp bench udt`` use: it forwards both ways, drops what its seed says (the same
datagrams for the same seed), delays, reorders, and counts what it did."""
from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from rtudp.tools.bench.udt_peer import PeerUnavailable
from rtudp.tools.bench.udt_relay import CRelay, bdp_packets, build_relay


@pytest.fixture(scope="module")
def exe(tmp_path_factory: pytest.TempPathFactory):
    try:
        return build_relay(tmp_path_factory.mktemp("relay"))
    except PeerUnavailable as e:
        if "failed" in str(e):
            raise
        print(f"SKIP: {e}")
        pytest.skip(str(e))


def _pair() -> tuple[socket.socket, socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    for s in (server, client):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.settimeout(0.5)
    return server, client


def _drain(s: socket.socket, n: int) -> list[bytes]:
    got = []
    try:
        while len(got) < n:
            got.append(s.recvfrom(2048)[0])
    except socket.timeout:
        pass
    return got


def _through(exe, n: int, **relay_args) -> tuple[list[int], dict]:
    """n numbered datagrams client -> relay -> server, paced so no socket overflows:
    the numbers the server got, in order, and the relay's final stats."""
    with _relayed(exe, **relay_args) as (server, client, relay):
        for k in range(n):
            client.sendto(k.to_bytes(4, "big"), ("127.0.0.1", relay.port))
            if k % 50 == 49:
                time.sleep(0.002)
        got = [int.from_bytes(d, "big") for d in _drain(server, n)]
    return got, relay.final or {}


@contextmanager
def _relayed(exe, server_timeout: float = 0.5,
             **relay_args) -> Iterator[tuple[socket.socket, socket.socket, CRelay]]:
    """A server and a client socket (_pair) and a relay to the server, closed on leaving
    (the relay's final stats then in ``relay.final``)."""
    server, client = _pair()
    server.settimeout(server_timeout)
    relay = CRelay(server.getsockname(), exe=exe, **relay_args)
    try:
        yield server, client, relay
    finally:
        relay.close()
        server.close()
        client.close()


def test_forwards_both_ways_and_counts(exe) -> None:
    server, client = _pair()
    relay = CRelay(server.getsockname(), exe=exe)
    try:
        client.sendto(b"ping", ("127.0.0.1", relay.port))
        data, back_to = server.recvfrom(2048)
        assert data == b"ping"
        server.sendto(b"pong", back_to)
        assert client.recvfrom(2048)[0] == b"pong"
        st = relay.stats()
        assert (st["fwd_in"], st["fwd_passed"], st["back_in"], st["back_passed"]) == (1, 1, 1, 1)
        assert relay.passed == 2 and relay.dropped == 0
    finally:
        relay.close()
        server.close()
        client.close()
    assert relay.final is not None and relay.final["fwd_passed"] == 1


def test_loss_is_seeded_and_near_its_rate(exe) -> None:
    first, st1 = _through(exe, 2000, loss=0.1, seed=7)
    again, st2 = _through(exe, 2000, loss=0.1, seed=7)
    other, _ = _through(exe, 2000, loss=0.1, seed=8)
    assert first == again                     # the same datagrams lost
    assert first != other
    assert 100 <= st1["fwd_dropped"] <= 300   # 10 % of 2000, far from the edges
    assert st1["fwd_dropped"] + len(first) == 2000 == st1["fwd_in"]
    assert first == sorted(first)             # no delay, no reordering


def test_delay_and_reordering(exe) -> None:
    server, client = _pair()
    relay = CRelay(server.getsockname(), exe=exe, delay=0.05)
    try:
        t0 = time.monotonic()
        client.sendto(b"x", ("127.0.0.1", relay.port))
        server.recvfrom(2048)
        assert time.monotonic() - t0 >= 0.045
    finally:
        relay.close()
        server.close()
        client.close()
    got, st = _through(exe, 500, reorder=0.2, reorder_gap=0.003, seed=3)
    assert sorted(got) == list(range(500))    # nothing lost
    assert got != sorted(got) and st["fwd_reordered"] > 0


def test_bad_settings_are_refused(exe) -> None:
    with pytest.raises(ValueError, match="loss"):
        CRelay(("127.0.0.1", 9), loss=1.5, exe=exe)
    with pytest.raises(ValueError, match="loopback"):
        CRelay(("10.0.0.1", 9), exe=exe)


def _burst(exe, n: int, size: int, **relay_args) -> tuple[list[int], dict]:
    """n numbered datagrams of ``size`` bytes client -> relay at once (a burst far
    shorter than one datagram's wire time at the rates used here); the numbers the
    server got and the relay's stats once the bottleneck has drained."""
    with _relayed(exe, server_timeout=2.0, **relay_args) as (server, client, relay):
        for k in range(n):
            client.sendto(k.to_bytes(4, "big").ljust(size, b"."), ("127.0.0.1", relay.port))
        st = relay.stats()
        while st["fwd_in"] < n:  # counted once the relay read them all
            st = relay.stats()
        kept = n - st["fwd_qdropped"] - st["fwd_dropped"]
        got = [int.from_bytes(d[:4], "big") for d in _drain(server, kept)]
        server.settimeout(0.1)
        got += [int.from_bytes(d[:4], "big") for d in _drain(server, n)]  # none more
    return got, relay.final or {}


def test_bottleneck_queue_in_packets_is_drop_tail(exe) -> None:
    # 0.05 Mb/s: a 1500-byte datagram holds the link 240 ms, so the whole burst is in
    # before the first leaves; a queue of 4 (the one on the link counted) keeps the
    # first 4 and drops the other n - 4, whatever the timing
    got, st = _burst(exe, 40, 1472, rate_mbps=0.05, queue_pkts=4)
    assert st["fwd_qdropped"] == 36 and st["fwd_qmax"] == 4
    assert got == [0, 1, 2, 3]
    assert st["fwd_passed"] == 4 and st["fwd_dropped"] == 0


def test_bottleneck_queue_in_time_is_drop_tail(exe) -> None:
    # 240 ms a datagram; a queue of 0.5 s admits those that wait at most 0.5 s for the
    # link: the first (0), the second (0.24 s), the third (0.48 s)
    got, st = _burst(exe, 20, 1472, rate_mbps=0.05, queue_wait=0.5)
    assert got == [0, 1, 2] and st["fwd_qdropped"] == 17


def test_bottleneck_keeps_order_and_the_seeded_losses(exe) -> None:
    plain, _ = _through(exe, 600, loss=0.1, seed=11)
    narrow, st = _through(exe, 600, loss=0.1, seed=11, rate_mbps=1000.0, queue_pkts=1000)
    assert narrow == plain                     # the same datagrams lost, in order
    assert st["fwd_qdropped"] == 0 and st["fwd_dropped"] + len(narrow) == 600


def test_bottleneck_settings_are_checked(exe) -> None:
    with pytest.raises(ValueError, match="rate_mbps"):
        CRelay(("127.0.0.1", 9), queue_pkts=10, exe=exe)
    with pytest.raises(ValueError, match="queue_pkts"):
        CRelay(("127.0.0.1", 9), rate_mbps=10.0, queue_pkts=0.5, exe=exe)  # type: ignore[arg-type]
    assert bdp_packets(100.0, 0.2) == 1667
