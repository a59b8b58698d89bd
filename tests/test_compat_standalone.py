"""RtUDP / UDPCom endpoints on a standalone pool: with ``rtudp pool start --name X``
running and RTUDP_POOL=X, ``create_rtudp(...)`` and ``UdpCom(...)`` open their
channels on X through its command ring, as ``rtudp.open_channel`` does (they raised
PoolRunningError, trying to start an embedded pool of the same name)."""
from __future__ import annotations

from typing import Iterator

import pytest

import rtudp
from ports import free_ports
from rtudp import embedded
from rtudp.compat import UdpCom, create_rtudp
from test_cli import kill_pool, pool_name, run_cli, start_foreground, stop_proc
from waiting import wait_for


@pytest.fixture
def standalone(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A standalone pool (`rtudp pool start --foreground`), named by RTUDP_POOL; stopped
    and its segments removed at the end, pass or fail."""
    name = pool_name()
    proc, _line = start_foreground(name)
    try:
        monkeypatch.setenv("RTUDP_POOL", name)
        yield name
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)


def _channels(pool: str) -> list[str]:
    with rtudp.PoolClient(pool) as client:
        return client.channels()


def test_create_rtudp_and_udpcom_use_the_standalone_pool(standalone: str) -> None:
    pa, pb = free_ports(2)
    a = create_rtudp("socket", "127.0.0.1", pa, "127.0.0.1", pb, capacity=64)
    b = UdpCom("127.0.0.1", pb, "127.0.0.1", pa, capacity=64)
    try:
        a.init_socket()
        b.init_socket()
        assert standalone not in embedded._pools, "an embedded pool was started"
        assert sorted(_channels(standalone)) == sorted([a._name, b._name])
        a.start()
        b.start()
        a.send_data(b"to b")
        assert b.receive_data(5_000_000_000)[0] == b"to b"
        b.send_data(b"to a")
        assert a.receive_data(5_000_000_000)[0] == b"to a"

        # stop/start take the channel off its worker and back, through the command ring
        a.stop()
        a.send_data(b"queued")
        with pytest.raises(TimeoutError):
            b.receive_data(200_000_000)
        assert a.get_send_length() == 1
        a.start()
        assert b.receive_data(5_000_000_000)[0] == b"queued"
        assert wait_for(lambda: a.get_send_length() == 0, 5)
        stats = a.get_packet_stats()
        assert stats["n_packets_sent"] == stats["n_packets_req"] == 2
    finally:
        a.close_socket()
        b.close_socket()
    assert _channels(standalone) == []
    # a closed endpoint opens again (on the same pool)
    a.init_socket()
    try:
        assert _channels(standalone) == [a._name]
    finally:
        a.close_socket()
    assert _channels(standalone) == []
    stop = run_cli("pool", "stop", "--name", standalone)
    assert stop.returncode == 0, stop.stderr


def test_pair_and_errors_come_back_from_the_standalone_pool(standalone: str) -> None:
    pa, pb = free_ports(2)
    tx, rx = rtudp.create_rtudp_pair("socket", "127.0.0.1", pa, "127.0.0.1", pb)
    try:
        for end in (tx, rx):
            end.init_socket()
            end.start()
        tx.send_data(b"x", 0)
        assert rx.receive_data(5_000_000_000)[0] == b"x"
        # the same address twice: the supervisor's error, raised here
        dup = create_rtudp("socket", "127.0.0.1", pa, "127.0.0.1", pb)
        with pytest.raises(rtudp.AddressInUseError):
            dup.init_socket()
        with pytest.raises(ValueError, match="cpu=4095"):  # checked as the emulation checks it
            create_rtudp("socket", "127.0.0.1", 0, "127.0.0.1", pb, cpu=4095)
        assert sorted(_channels(standalone)) == sorted([tx._name, rx._name])
    finally:
        tx.close_socket()
        rx.close_socket()
    assert _channels(standalone) == []
