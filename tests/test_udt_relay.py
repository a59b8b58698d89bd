"""The impairment relay in C (rtudp.tools.bench.udt_relay) that the udt tests and
``rtudp bench udt`` use: it forwards both ways, drops what its seed says (the same
datagrams for the same seed), delays, reorders, and counts what it did."""
from __future__ import annotations

import socket
import time

import pytest

from rtudp.tools.bench.udt_peer import PeerUnavailable
from rtudp.tools.bench.udt_relay import CRelay, build_relay


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
    server, client = _pair()
    relay = CRelay(server.getsockname(), exe=exe, **relay_args)
    try:
        for k in range(n):
            client.sendto(k.to_bytes(4, "big"), ("127.0.0.1", relay.port))
            if k % 50 == 49:
                time.sleep(0.002)
        got = [int.from_bytes(d, "big") for d in _drain(server, n)]
    finally:
        relay.close()
        server.close()
        client.close()
    return got, relay.final or {}


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
