"""The two RtUDP implementations validate through the same code: one table of bad
inputs runs on both and must give the same error (type and message), and both behave
alike before init_socket() and after close_socket().  Directions take their names too."""
from __future__ import annotations

import re
from typing import Any, Callable

import pytest

import rtudp
from ports import free_ports
from rtudp.compat import EmulatedNetwork, RtUdpBase, RtUdpEmulated, RtUdpSocket
from rtudp.packet_stats import PACKET_STATS_KEYS

pytestmark = pytest.mark.rtudp(rt_priority=0)

IMPLS: dict[str, type[RtUdpBase]] = {"socket": RtUdpSocket, "emulated": RtUdpEmulated}


@pytest.fixture
def where(rtudp_pool: rtudp.Pool,
          rtudp_emulated_net: EmulatedNetwork) -> Callable[[str], dict[str, Any]]:
    """The keyword that puts an endpoint of each implementation on this test's pool or
    network."""
    return lambda impl: ({"pool": rtudp_pool} if impl == "socket"
                         else {"network": rtudp_emulated_net})


def _raised(fn: Callable[[], object]) -> tuple[type[BaseException], str]:
    """The error ``fn`` raises, its message with the implementation's name made common."""
    with pytest.raises(Exception) as err:
        fn()
    msg = re.sub(r"RtUdp(Socket|Emulated)\[", "RtUdp[", str(err.value))
    msg = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", msg)  # each end has its own ports
    return type(err.value), msg


def _both(make: Callable[[str], Callable[[], object]], error: type, match: str) -> None:
    """``make(impl)()`` raises ``error`` matching ``match`` with one message for both."""
    seen = {impl: _raised(make(impl)) for impl in IMPLS}
    for impl, (typ, msg) in seen.items():
        assert issubclass(typ, error), (impl, typ, msg)
        assert re.search(match, msg), (impl, msg)
    assert seen["socket"] == seen["emulated"]


#: constructor arguments each implementation refuses, and what the error says
BAD_ARGUMENTS = [
    ({"cpu": -1}, ValueError, r"cpu=-1 is not a CPU of this machine"),
    ({"cpu": 4095}, ValueError, r"cpu=4095"),
    ({"cpu": "0"}, ValueError, r"cpu='0'"),
    ({"capacity": 0}, ValueError, r"capacity .* got 0"),
    ({"capacity": 10**12}, ValueError, r"capacity .*1048576.* got 1000000000000"),
    ({"direction": 3}, ValueError, r"direction=3 .*\"tx\""),
    ({"direction": "sideways"}, ValueError, r"direction='sideways' is not a direction"),
    ({"direction": 1.0}, TypeError, r"direction .*1\.0"),
    ({"max_datagram": 0}, ValueError, r"max_datagram=0"),
    ({"max_datagram": 70000}, ValueError, r"max_datagram=70000"),
    ({"local_port": 70000}, ValueError, r"local_port .*70000"),
    ({"remote_ip": ""}, TypeError, r"remote_ip"),
    ({"remote_port": 0}, ValueError, r"remote_port must be an int in 1\.\.65535, got 0"),
]


@pytest.mark.parametrize("bad, error, match", BAD_ARGUMENTS,
                         ids=[repr(b) for b, _, _ in BAD_ARGUMENTS])
def test_bad_arguments_are_refused_alike(bad: dict[str, Any], error: type, match: str,
                                         where: Callable[[str], dict[str, Any]]) -> None:
    args = {"local_ip": "127.0.0.1", "local_port": 1, "remote_ip": "127.0.0.1",
            "remote_port": 2, **bad}
    _both(lambda impl: lambda: IMPLS[impl](**args, **where(impl)), error, match)


#: calls an open endpoint refuses: (method, args, endpoint keywords, error, match)
BAD_CALLS = [
    ("send_data", (b"x" * 1500,), {}, ValueError,
     r"1500 bytes .* max_datagram=1472: .*max_datagram=9000"),
    ("send_data", (b"x" * 20000,), {"max_datagram": 9000}, ValueError,
     r"max_datagram=9000: .*max_datagram=20000"),
    ("send_data", (b"x", -5), {}, ValueError, r"ts_ns -5 .*time\.monotonic_ns\(\)"),
    ("send_data", (b"x", 1.5), {}, ValueError, r"ts_ns must be an int .*monotonic_ns"),
    ("send_data", ("text",), {}, TypeError, r"bytes-like"),
    ("send_data", (b"x",), {"direction": "rx"}, ValueError, r"receive-only"),
    ("receive_data", (-1,), {}, ValueError, r"timeout_ns .* -1"),
    ("receive_data", (1.5,), {}, TypeError, r"timeout_ns .*1\.5"),
    ("receive_data", (0,), {"direction": "tx"}, ValueError, r"send-only"),
    ("receive_batch", (0, 1), {}, ValueError, r"n must be an int in 1\.\.capacity"),
]


@pytest.mark.parametrize("method, args, kw, error, match", BAD_CALLS,
                         ids=[f"{m}{a!r:.20}{k}" for m, a, k, _, _ in BAD_CALLS])
def test_bad_calls_are_refused_alike(method: str, args: tuple[Any, ...], kw: dict[str, Any],
                                     error: type, match: str,
                                     where: Callable[[str], dict[str, Any]]) -> None:
    ends: list[RtUdpBase] = []

    def make(impl: str) -> Callable[[], object]:
        pa, pb = free_ports(2)
        end = IMPLS[impl]("127.0.0.1", pa, "127.0.0.1", pb, **kw, **where(impl))
        ends.append(end)
        end.init_socket()
        end.start()
        return lambda: getattr(end, method)(*args)

    try:
        _both(make, error, match)
    finally:
        for end in ends:
            end.close_socket()


@pytest.mark.parametrize("impl", IMPLS)
def test_before_init_and_after_close_alike(impl: str,
                                           where: Callable[[str], dict[str, Any]]) -> None:
    """Before init_socket() every call but stop/close raises; after close_socket()
    get_packet_stats() gives the final counts, the rest raise as before init."""
    pa, pb = free_ports(2)
    end = IMPLS[impl]("127.0.0.1", pa, "127.0.0.1", pb, **where(impl))
    #: each call, and what its not-initialised error calls it
    calls: dict[str, tuple[str, Callable[[], object]]] = {
        "send_data": ("send_data", lambda: end.send_data(b"x")),
        "receive_data": ("receive", lambda: end.receive_data(0)),
        "get_send_length": ("get_send_length", end.get_send_length),
        "get_receive_length": ("get_receive_length", end.get_receive_length),
        "purge": ("purge", end.purge), "start": ("start", end.start)}
    before = {**calls, "get_packet_stats": ("get_packet_stats", end.get_packet_stats)}
    for what, call in before.values():
        with pytest.raises(rtudp.RtUdpError, match=f"{what}: .*not initialised"):
            call()
    end.init_socket()
    end.start()
    end.send_data(b"counted")
    end.close_socket()
    stats = end.get_packet_stats()
    assert set(PACKET_STATS_KEYS) <= set(stats)
    assert stats["n_packets_req"] == 1
    for what, call in calls.values():
        with pytest.raises(rtudp.RtUdpError, match=f"{what}: .*not initialised"):
            call()
    end.stop()
    end.close_socket()
    assert not end.is_running()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name, number", [("tx", 0), ("rx", 1), ("both", 2)])
def test_direction_names_on_endpoints(impl: str, name: str, number: int,
                                      where: Callable[[str], dict[str, Any]]) -> None:
    end = IMPLS[impl]("127.0.0.1", 1, "127.0.0.1", 2, direction=name, **where(impl))
    assert end.direction == number


@pytest.mark.parametrize("name, number", [("tx", 0), ("rx", 1), ("both", 2), (1, 1)])
def test_direction_names_on_pool_channels(name: str | int, number: int,
                                          rtudp_pool: rtudp.Pool) -> None:
    assert rtudp.ChannelConfig("c", direction=name).direction == number
    with rtudp_pool.open_channel(f"dir{number}", local=("127.0.0.1", 0),
                                 direction=name) as ch:
        assert ch.direction == number


@pytest.mark.parametrize("bad, error", [("in", ValueError), ("TX", ValueError),
                                        (None, TypeError), (-1, ValueError)])
def test_a_bad_direction_is_named(bad: object, error: type, rtudp_pool: rtudp.Pool) -> None:
    with pytest.raises(error, match=re.escape(f"{bad!r}")) as err:
        rtudp_pool.open_channel("bad", local=("127.0.0.1", 0), direction=bad)
    assert '"tx"' in str(err.value) and '"both"' in str(err.value)
