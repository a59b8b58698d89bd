"""ChannelConfig: a channel's open parameters, checked once, sent over the command ring
as they are, taken by Pool.open_channel and PoolClient.open_channel alike."""
from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

import rtudp
from rtudp import ChannelConfig
from rtudp.workers.channel_config import FIELDS
from rtudp.workers.commands import OPEN_ARGS


def test_defaults_and_the_kinds_options_completed() -> None:
    c = ChannelConfig("a")
    assert (c.local, c.remote, c.direction, c.capacity, c.kind) == (("127.0.0.1", 0), None,
                                                                   2, 1024, "udp")
    assert dict(c.options) == {}
    rtp = ChannelConfig("r", kind="rtp", options={"latency_ms": 20})
    assert rtp.options["latency_ms"] == 20 and rtp.options["clock_rate"] == 8000
    with pytest.raises(TypeError):
        rtp.options["latency_ms"] = 1  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rtp.capacity = 5  # type: ignore[misc]


@pytest.mark.parametrize("args, error, match", [
    ({"name": "bad/name"}, ValueError, "invalid channel name 'bad/name': it has other characters"),
    ({"name": ""}, ValueError, "invalid channel name '': it is empty"),
    ({"name": "a", "direction": 7}, ValueError, "direction=7"),
    ({"name": "a", "capacity": 0}, ValueError, "capacity=0"),
    ({"name": "a", "rx_capacity": 0}, ValueError, "rx_capacity=0"),
    ({"name": "a", "max_datagram": "x"}, TypeError, "max_datagram"),
    ({"name": "a", "hw_timestamps": "yes"}, TypeError, "hw_timestamps"),
    ({"name": "a", "multicast_ttl": 256}, ValueError, "multicast_ttl=256"),
    ({"name": "a", "multicast_loop": 1}, TypeError, "multicast_loop"),
    ({"name": "a", "cpu": "0"}, TypeError, "cpu must be an int or None"),
    ({"name": "a", "kind": "nosuch"}, ValueError, "'nosuch'"),
    ({"name": "a", "options": [1]}, TypeError, "options must be a mapping"),
    ({"name": "a", "options": {"x": 1}}, ValueError, "takes no options"),
    ({"name": "a", "kind": "rtp", "options": {"ptime_ms": 0}}, ValueError, "ptime_ms=0"),
    ({"name": "a", "local": "127.0.0.1:9"}, TypeError, "local address"),
    ({"name": "a", "remote": ("127.0.0.1", 0)}, ValueError, "remote port 0"),
    ({"name": "a", "packet_rate": -1}, ValueError, r"packet_rate=-1 is out of range"),
    ({"name": "a", "packet_rate": float("nan")}, ValueError, r"packet_rate=nan"),
    ({"name": "a", "packet_rate": float("inf")}, ValueError, r"packet_rate=inf"),
    ({"name": "a", "packet_rate": "50k"}, TypeError, r"packet_rate must be a number.*'50k'"),
    ({"name": "a", "packet_rate": True}, TypeError, r"packet_rate must be a number.*True"),
])
def test_bad_values_are_named(args: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ChannelConfig(**args)


def test_through_json_and_back() -> None:
    c = ChannelConfig("n", ("127.0.0.1", 0), ("127.0.0.1", 9), 0, 64, 200, None, False,
                      "netflux", multicast_ttl=3, options={"send_size": 4}, rx_capacity=8,
                      packet_rate=2500)
    again = ChannelConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c and again.remote == ("127.0.0.1", 9)
    assert again.packet_rate == 2500.0 and ChannelConfig("d").packet_rate is None
    # fields at their default None stay off the wire: a supervisor that predates one
    # still opens a channel that leaves it so
    plain = ChannelConfig("p").to_dict()
    assert not {"packet_rate", "rx_capacity", "remote", "impairment"} & set(plain)
    assert ChannelConfig.from_dict(json.loads(json.dumps(plain))) == ChannelConfig("p")
    with pytest.raises(ValueError, match="local must be"):
        ChannelConfig.from_dict({"name": "z", "local": "127.0.0.1:80"})
    with pytest.raises(ValueError, match="unknown channel parameters"):
        ChannelConfig.from_dict({"name": "z", "evil": 1})


def test_one_definition_everywhere() -> None:
    """The command ring's open arguments and both open_channel signatures are the
    config's fields."""
    assert set(FIELDS) == OPEN_ARGS == {f.name for f in dataclasses.fields(ChannelConfig)}
    want = list(inspect.signature(ChannelConfig).parameters)
    for method in (rtudp.Pool.open_channel, rtudp.PoolClient.open_channel):
        assert list(inspect.signature(method).parameters)[1:] == want
    assert ChannelConfig.of("a", ("127.0.0.1", 0), None, 1) == ChannelConfig("a", direction=1)
    base = ChannelConfig("a")
    assert ChannelConfig.of(base) is base
    assert ChannelConfig.of(base, capacity=8).capacity == 8


@pytest.mark.rtudp(rt_priority=0)
def test_pool_opens_a_config(rtudp_pool) -> None:
    rx = rtudp_pool.open_channel(ChannelConfig("rx", direction=1))
    tx = rtudp_pool.open_channel(ChannelConfig("tx", remote=rx.local), direction=0)
    try:
        assert rtudp_pool.channel_info("tx")["direction"] == 0
        tx.send(b"config")
        assert rx.recv(timeout=5).data == b"config"
    finally:
        tx.close()
        rx.close()
