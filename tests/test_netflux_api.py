"""rtudp.netflux's Python API: image definitions, option checks, the reference-compatible
NetfluxMain (start/stop, set_send_data/get_recv_data, wait_update, callbacks,
receiver/sender/statistics, print_status)."""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import pytest

from netflux_helpers import free_ports
from waiting import python_keeps_running, wait_for
from rtudp.netflux import ImageCodec, NetfluxData, NetfluxMain, as_codec
from rtudp.workers.netflux_kind import check_options


# ------------------------------------------------------------ image definitions

def test_struct_codec_roundtrip_and_errors() -> None:
    c = ImageCodec("<hB?", ["temp", "mode", "on"])
    assert c.size == 4 and c.defaults == {"temp": 0, "mode": 0, "on": False}
    assert c.decode(c.encode({"temp": -3, "mode": 9, "on": True})) == \
        {"temp": -3, "mode": 9, "on": True}
    with pytest.raises(ValueError, match=r"field mode=300"):
        c.encode({"temp": 0, "mode": 300, "on": False})
    with pytest.raises(ValueError, match=r"unknown image field\(s\) \['tmp'\]"):
        c.check_fields({"tmp": 1})
    with pytest.raises(ValueError, match="3 values"):
        ImageCodec("<hB?", ["a", "b"])
    with pytest.raises(ValueError, match="not a struct format"):
        ImageCodec("<hZ", ["a", "b"])
    with pytest.raises(ValueError, match="needs its field names"):
        as_codec("<h")


def test_dataclass_codec_like_the_reference() -> None:
    c = as_codec(NetfluxData)
    assert c.size == 20 and c.fields == ("value1", "value2", "value3", "value4", "flags")
    img = c.decode(c.encode({**c.defaults, "value3": 5}))
    assert isinstance(img, NetfluxData) and img.value3 == 5
    with pytest.raises(ValueError, match="does not fit NetfluxData"):
        c.encode({**c.defaults, "value4": -1})

    class NoMethods:
        pass

    with pytest.raises(TypeError, match="to_bytes"):
        as_codec(NoMethods)

    @dataclass
    class Liar:
        x: int = 0

        def to_bytes(self) -> bytes:
            return b"abc"

        @classmethod
        def from_bytes(cls, data: bytes) -> "Liar":
            return cls()

        @staticmethod
        def get_size() -> int:
            return 4

    with pytest.raises(ValueError, match="get_size"):
        as_codec(Liar)


@pytest.mark.parametrize("opts, match", [
    ({"send_interval": 0.00001}, "send_interval=1e-05"),
    ({"watch_interval": 0}, "watch_interval=0"),
    ({"send_size": 1401}, "send_size=1401"),
    ({"recv_size": -1}, "recv_size=-1"),
    ({"keep_values_on_timeout": 1}, "keep_values_on_timeout"),
    ({"sendinterval": 1}, "sendinterval"),
    ({"send_interval": "1ms"}, "'1ms'"),
])
def test_bad_options_name_the_value(opts, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        check_options(opts)


def test_netflux_main_checks_arguments_before_opening() -> None:
    with pytest.raises(ValueError, match="local_port .* 70000"):
        NetfluxMain(local_port=70000)
    with pytest.raises(ValueError, match="send_interval=-1"):
        NetfluxMain(send_interval=-1)
    m = NetfluxMain()
    assert m.receiver.error and m.receiver.error_message == "not started"
    with pytest.raises(RuntimeError, match="not running"):
        m.get_recv_data()


# ------------------------------------------------------------ NetfluxMain end to end

def test_netflux_main_pair(rtudp_pool, capsys) -> None:
    pa, pb = free_ports(2)
    got: list[object] = []
    links: list[str] = []
    fmt, fields = "<Ii", ["counter", "level"]
    a = NetfluxMain(pa, "127.0.0.1", pb, 0.001, 0.03, local_ip="127.0.0.1", pool=rtudp_pool,
                    data=fmt, fields=fields)
    b = NetfluxMain(pb, "127.0.0.1", pa, 0.001, 0.03, local_ip="127.0.0.1", pool=rtudp_pool,
                    data=fmt, fields=fields, on_data=got.append, on_watchdog=links.append,
                    start_ns=time.monotonic_ns() + 500_000)
    assert a.start() and b.start()
    try:
        a.set_send_data(counter=7, level=-2)
        deadline = time.monotonic() + 2
        data = b.wait_update(2.0)
        while data != {"counter": 7, "level": -2} and time.monotonic() < deadline:
            data = b.wait_update(2.0)
        assert data == {"counter": 7, "level": -2}
        assert b.get_recv_data() == {"counter": 7, "level": -2}
        with pytest.raises(ValueError, match="unknown image field"):
            a.set_send_data(count=1)
        with pytest.raises(ValueError, match="counter=-1"):
            a.set_send_data(counter=-1)
        assert a.get_send_data() == {"counter": 7, "level": -2}  # unchanged by the errors
        time.sleep(0.4)
        st = b.statistics.get_stats()
        assert 0.5 < st.avg_partner_interval < 1.5 and 0.5 < st.avg_own_interval < 1.5
        # the RTT's median over the run's hundreds of samples: one stall moves few of them
        assert st.last_rtt > 0
        rtt = b.channel.histograms()["rtt"]
        assert rtt.count >= 200 and 0 < rtt.percentile(50) < 50_000_000, rtt.percentiles([50])
        # a sequence gap is a datagram that comes later (reordered: two workers' packets
        # go through two CPUs' loopback queues), one the kernel dropped, or a failed send;
        # never one rtudp lost on its own
        def gaps_explained() -> bool:
            bs, sa = b.channel.stats(), a.channel.stats()
            return st.total_partner_lost_packets <= (bs["nf_old"] + bs["rx_kernel_drops"]
                                                     + sa["nf_send_errors"])
        assert wait_for(gaps_explained, 2.0), (st, b.channel.stats(), a.channel.stats())
        assert not b.receiver.error and b.receiver.error_message == ""
        assert not b.sender.error, b.sender.error_message
        assert b.sender.get_stats().total_packets_sent > 200
        assert b.receiver.get_stats().total_packets_received > 200
        assert {"counter": 7, "level": -2} in got and "up" in links
        b.print_status()
        out = capsys.readouterr().out
        assert "NETFLUX STATUS" in out and "Last RTT" in out and "'counter': 7" in out
        a.stop()  # the partner goes silent: b's watchdog trips, the callback says so
        deadline = time.monotonic() + 3
        while "lost" not in links and time.monotonic() < deadline:
            time.sleep(0.01)
        assert links[-1] == "lost" and b.receiver.error
        assert "watchdog" in b.receiver.error_message
        assert b.get_recv_data() == {"counter": 0, "level": 0}  # zeroed on loss
    finally:
        a.stop()
        b.stop()
    assert a.receiver.error and b.channel is not None and b.channel.closed


def test_netflux_main_start_failure_is_reported(rtudp_pool) -> None:
    (port,) = free_ports(1)
    a = NetfluxMain(port, "127.0.0.1", port, local_ip="127.0.0.1", pool=rtudp_pool)
    b = NetfluxMain(port, "127.0.0.1", port, local_ip="127.0.0.1", pool=rtudp_pool)
    assert a.start()
    try:
        assert not b.start()
        assert "cannot open netflux channel" in b.receiver.error_message
        assert b.sender.error
    finally:
        a.stop()
        b.stop()


def test_wait_update_releases_the_gil(rtudp_pool) -> None:
    """While one thread waits for an image that never comes, another runs Python."""
    (port,) = free_ports(1)
    ch = rtudp_pool.open_channel("nfgil", local=("127.0.0.1", port), kind="netflux",
                                 options={"send_interval": 0, "recv_size": 4})
    with ch:
        with python_keeps_running(), pytest.raises(TimeoutError, match="nfgil"):
            ch.wait_update(0.3)
        assert ch.read().data == bytes(4) and ch.read().updates == 0
        with pytest.raises(ValueError, match="sends 0-byte images"):
            ch.write(struct.pack("<I", 1))


def test_sender_stats_count_the_standbys_packets() -> None:
    """A cycle the standby worker sent is a packet of the sender's on the wire: the
    sender's totals count it, as the receiver's do."""
    from rtudp.netflux.data import sender_stats_of
    st = sender_stats_of({"nf_sent": 3, "nf_standby_sent": 1, "nf_send_errors": 2,
                          "nf_standby_errors": 1, "nf_missed": 5})
    assert (st.total_packets_sent, st.total_send_errors, st.missed_cycles) == (4, 3, 5)
    assert sender_stats_of({}).total_packets_sent == 0
