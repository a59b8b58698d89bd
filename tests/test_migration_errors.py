"""Each bad call a migrating user made (issue 45) fails, or warns, in the user's terms:
the argument and its value, and the fix where there is one."""
from __future__ import annotations

import re
import warnings

import pytest

import rtudp
from ports import free_ports
from rtudp.compat import create_rtudp
from rtudp.netflux import NetfluxIntervalWarning, NetfluxMain
from rtudp.udt import pyudt
from rtudp.udt.constants import UDTException
from udt_helpers import udt  # noqa: F401  (the fixture: udt4 started on the test's pool)

pytestmark = pytest.mark.rtudp(rt_priority=0)


@pytest.fixture
def endpoint(rtudp_pool: rtudp.Pool) -> rtudp.RtUdpBase:
    """A started socket endpoint with default arguments (closed after)."""
    pa, pb = free_ports(2)
    end = create_rtudp("socket", "127.0.0.1", pa, "127.0.0.1", pb, pool=rtudp_pool)
    end.init_socket()
    end.start()
    yield end
    end.close_socket()


def test_a_datagram_over_the_default_size_names_max_datagram(
        endpoint: rtudp.RtUdpBase) -> None:
    with pytest.raises(ValueError) as err:
        endpoint.send_data(b"x" * 1500)
    msg = str(err.value)
    assert "1500 bytes" in msg and "max_datagram=1472" in msg and "max_datagram=9000" in msg
    assert endpoint._name not in msg  # type: ignore[attr-defined]  (no internal channel name)


def test_a_negative_deadline_names_ts_ns_and_the_clock(endpoint: rtudp.RtUdpBase) -> None:
    with pytest.raises(ValueError, match=r"ts_ns -5 .*time\.monotonic_ns\(\)") as err:
        endpoint.send_data(b"x", -5)
    assert "at_ns" not in str(err.value)


def test_pyudt_bind_of_a_host_port_string_says_the_tuple(udt: object) -> None:
    sock = pyudt.UdtSocket()
    try:
        with pytest.raises(TypeError, match=re.escape(
                "not '127.0.0.1:47102': use bind(('127.0.0.1', 47102))")):
            sock.bind("127.0.0.1:47102")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=re.escape("connect() takes a (host, port) tuple")):
            sock.connect(47102)  # type: ignore[arg-type]
    finally:
        sock.close()


def test_udt4_bind_names_a_bad_port(udt: object) -> None:
    import rtudp.udt.udt4 as udt4

    s = udt4.socket(2, 1, 0)
    try:
        with pytest.raises(UDTException, match=r"port must be an int in 0\.\.65535, got '2'"):
            udt4.bind(s, "127.0.0.1", "2")  # type: ignore[arg-type]
    finally:
        udt4.close(s)


@pytest.mark.parametrize("bad, error, match", [
    ("x", TypeError, r"settimeout\(\) takes None or a number of seconds, not 'x'"),
    (True, TypeError, r"not True"),
    (-1, ValueError, r"seconds >= 0, not -1"),
])
def test_pyudt_settimeout_names_the_value(bad: object, error: type, match: str,
                                          udt: object) -> None:
    sock = pyudt.UdtSocket()
    try:
        with pytest.raises(error, match=match):
            sock.settimeout(bad)  # type: ignore[arg-type]
        assert sock.gettimeout() is None  # nothing changed
    finally:
        sock.close()


def test_netflux_field_out_of_range_is_named() -> None:
    nf = NetfluxMain(local_port=1, remote_port=2)
    with pytest.raises(ValueError, match=r"image field value3=-1 does not fit NetfluxData"):
        nf.set_send_data(value3=-1)
    assert nf.get_send_data().value3 == 0  # the image is unchanged


def _warnings_of(**intervals: float) -> list[str]:
    """The NetfluxIntervalWarning messages of a NetfluxMain made with ``intervals``
    (it is made: the reference accepts these)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        nf = NetfluxMain(local_port=1, remote_port=2, **intervals)
    assert (nf.send_interval, nf.watch_interval) == (
        intervals.get("send_interval", 0.005), intervals.get("watch_interval", 0.030))
    assert all(w.filename == __file__ for w in seen)  # reported at the caller's line
    return [str(w.message) for w in seen if issubclass(w.category, NetfluxIntervalWarning)]


def test_netflux_send_interval_in_milliseconds_is_warned_about() -> None:
    msgs = _warnings_of(send_interval=5)
    assert len(msgs) == 1
    assert "watch_interval=0.03 s is shorter than two send_intervals" in msgs[0]
    assert "send_interval=5 is 5 s, 5 ms is 0.005" in msgs[0]


def test_netflux_watchdog_shorter_than_two_cycles_is_warned_about() -> None:
    msgs = _warnings_of(send_interval=0.010, watch_interval=0.015)
    assert len(msgs) == 1 and "watch_interval >= 0.02" in msgs[0]


@pytest.mark.parametrize("name", ["send_interval", "watch_interval"])
def test_netflux_interval_above_10_s_is_warned_about(name: str) -> None:
    msgs = _warnings_of(**{name: 20, "watch_interval": 60} if name == "send_interval"
                        else {name: 20})
    assert any(f"{name}=20 is 20 s: NetfluxMain takes seconds ({name}=0.02 is 20 ms)" in m
               for m in msgs), msgs


def test_netflux_sound_intervals_warn_nothing() -> None:
    assert _warnings_of() == []
    assert _warnings_of(send_interval=0.01, watch_interval=0.02) == []
    assert _warnings_of(send_interval=5, watch_interval=10) == []  # 10 s is no warning


def test_rtpserver_oversized_packet_names_max_datagram(rtudp_pool: rtudp.Pool) -> None:
    from rtudp.compat.rtpsynth.RtpServer import RtpServer

    srv = RtpServer(pool=rtudp_pool)
    ch = srv.create_channel(lambda *_: None, "127.0.0.1", 0)
    try:
        ch.set_target("127.0.0.1", 9)
        with pytest.raises(ValueError, match=re.escape(
                "1500 bytes is larger than this channel's max_datagram=1472: create the "
                "channel with create_channel(..., max_datagram=9000)")):
            ch.send_pkt(b"x" * 1500)
        ch.send_pkt(b"x" * 1472)  # the channel stays usable
    finally:
        ch.close()
        srv.shutdown()
