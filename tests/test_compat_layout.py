"""Every seed's module layout under ``rtudp.compat``: a program moves by prefixing its
imports, and each name is rtudp's own object (re-exported, not a second copy)."""
from __future__ import annotations

import importlib
import inspect
import time
import types

import pytest

import rtudp
import rtudp.netflux
import rtudp.rtp
import rtudp.rtp.proc
import rtudp.rtp.server
import rtudp.udt.pyudt
import rtudp.udt.udt4

#: (compat module, name, the rtudp object it must be)
REEXPORTS = [
    ("rtudp.compat.rtpsynth.RtpSynth", "RtpSynth", rtudp.rtp.RtpSynth),
    ("rtudp.compat.rtpsynth.RtpJBuf", "RtpJBuf", rtudp.rtp.RtpJBuf),
    ("rtudp.compat.rtpsynth.RtpJBuf", "RTPFrameType", rtudp.rtp.RTPFrameType),
    ("rtudp.compat.rtpsynth.RtpJBuf", "RTPParseError", rtudp.rtp.RTPParseError),
    ("rtudp.compat.rtpsynth.RtpServer", "RtpServer", rtudp.rtp.server.RtpServer),
    ("rtudp.compat.rtpsynth.RtpServer", "RtpChannel", rtudp.rtp.server.RtpServerChannel),
    ("rtudp.compat.rtpsynth.RtpServer", "RtpQueueFullError", rtudp.rtp.RtpQueueFullError),
    ("rtudp.compat.rtpsynth.RtpProc", "RtpProc", rtudp.rtp.proc.RtpProc),
    ("rtudp.compat.rtpsynth.RtpProc", "RtpProcChannel", rtudp.rtp.proc.RtpProcChannel),
    ("rtudp.compat.rtpsynth.RtpProc", "ChannelProcError", rtudp.rtp.ChannelProcError),
    ("rtudp.compat.rtpsynth.RtpUtils", "RtpUtils", rtudp.rtp.RtpUtils),
    ("rtudp.compat.rtpsynth.RtpUtils", "linear2ulaw", rtudp.rtp.linear2ulaw),
    ("rtudp.compat.rtpsynth.RtpUtils", "ulaw2linear", rtudp.rtp.ulaw2linear),
    ("rtudp.compat.rtpsynth.RtpUtils", "resample_linear", rtudp.rtp.resample_linear),
    ("rtudp.compat.udt4", "socket", rtudp.udt.udt4.socket),
    ("rtudp.compat.udt4", "UDTSOCKET", rtudp.udt.udt4.UDTSOCKET),
    ("rtudp.compat.udt4", "UDTepoll", rtudp.udt.udt4.UDTepoll),
    ("rtudp.compat.udt4", "UDTException", rtudp.udt.udt4.UDTException),
    ("rtudp.compat.udt4", "UDT_RCVTIMEO", rtudp.udt.udt4.UDT_RCVTIMEO),
    ("rtudp.compat.udt4", "UdtSocket", rtudp.udt.pyudt.UdtSocket),
    ("rtudp.compat.udt4.pyudt", "UdtSocket", rtudp.udt.pyudt.UdtSocket),
    ("rtudp.compat.udt4.pyudt", "Epoll", rtudp.udt.pyudt.Epoll),
    ("rtudp.compat.netflux_main", "NetfluxMain", rtudp.netflux.NetfluxMain),
    ("rtudp.compat.netflux_main", "NetfluxData", rtudp.netflux.NetfluxData),
    ("rtudp.compat.netflux_receiver", "ReceiverStats", rtudp.netflux.ReceiverStats),
    ("rtudp.compat.netflux_sender", "SenderStats", rtudp.netflux.SenderStats),
    ("rtudp.compat.netflux_statistics", "NetfluxStatistics", rtudp.netflux.NetfluxStatistics),
    ("rtudp.compat.udpcom", "UdpCom", rtudp.UdpCom),
]


@pytest.mark.parametrize("module, name, expected", REEXPORTS,
                         ids=[f"{m}.{n}" for m, n, _ in REEXPORTS])
def test_each_seed_name_is_rtudps_object(module: str, name: str, expected: object) -> None:
    mod = importlib.import_module(module)
    assert getattr(mod, name) is expected
    ns: dict[str, object] = {}
    exec(f"from {module} import {name}", ns)  # the line a migrated program has
    assert ns[name] is expected


@pytest.mark.parametrize("sub", ["RtpServer", "RtpSynth", "RtpJBuf", "RtpProc", "RtpUtils"])
def test_rtpsynth_package_gives_submodules_as_librtpsynth_does(sub: str) -> None:
    """``from rtpsynth import RtpSynth`` is the module, its class inside it."""
    ns: dict[str, object] = {}
    exec(f"from rtudp.compat.rtpsynth import {sub}", ns)
    mod = ns[sub]
    assert isinstance(mod, types.ModuleType)
    assert mod.__name__ == f"rtudp.compat.rtpsynth.{sub}"
    assert getattr(mod, sub) is not None


def test_udt4_pyudt_is_reached_as_pyudt_reaches_it() -> None:
    import rtudp.compat.udt4 as udt4
    from rtudp.compat.udt4 import pyudt

    assert udt4.pyudt is pyudt
    assert pyudt.UdtSocket is rtudp.udt.pyudt.UdtSocket


REFERENCE_SIGNATURES = {
    ("rtudp.compat.netflux_receiver", "NetfluxReceiver"):
        ["local_port", "data_callback", "data_size", "watch_interval",
         "keep_values_on_timeout"],
    ("rtudp.compat.netflux_sender", "NetfluxSender"):
        ["remote_ip", "remote_port", "data_provider", "data_size", "send_interval",
         "peer_socket"],
    ("rtudp.compat.netflux_statistics", "NetfluxStatisticsTracker"): ["cycle_time_ms"],
}


@pytest.mark.parametrize("module, name", list(REFERENCE_SIGNATURES))
def test_netflux_parts_have_the_reference_constructors(module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    params = [p.name for p in inspect.signature(cls).parameters.values()
              if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert params == REFERENCE_SIGNATURES[(module, name)]


def test_netflux_sender_to_receiver_on_workers(rtudp_pool) -> None:
    """A receive-only monitor (NetfluxReceiver) of a NetfluxSender, both on worker
    channels: the callback gets each image, the counts add up, the tracker reads them."""
    from rtudp.compat.netflux_receiver import NetfluxReceiver
    from rtudp.compat.netflux_sender import NetfluxSender
    from rtudp.compat.netflux_statistics import NetfluxStatisticsTracker

    got: list[bytes] = []
    rx = NetfluxReceiver(0, got.append, 4, watch_interval=0.5, local_ip="127.0.0.1",
                         pool=rtudp_pool)
    assert rx.error and rx.error_message == "Not started"
    assert rx.start()
    value = [b"\x01\x02\x03\x04"]
    tx = NetfluxSender("127.0.0.1", rx.channel.local[1], lambda: value[0], 4,
                       send_interval=0.005, local_ip="127.0.0.1", pool=rtudp_pool)
    tracker = NetfluxStatisticsTracker(5.0, channel=rx)
    try:
        assert tx.start()
        deadline = time.monotonic() + 10
        while b"\x01\x02\x03\x04" not in got and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got[-1] == b"\x01\x02\x03\x04" and not rx.error, got[:5]
        value[0] = b"abcd"
        while rx.get_last_data() != b"abcd" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rx.get_last_data() == b"abcd"
        assert rx.partner_seq_number == tx.sequence_number or tx.sequence_number > 0
        rtudp_pool.pause_channel(tx.name)          # off its worker: the count is final
        sent = tx.get_stats().total_packets_sent
        while rx.get_stats().total_packets_received < sent and time.monotonic() < deadline:
            time.sleep(0.01)
        rs = rx.get_stats()
        assert rs.total_packets_received == sent > 0 and rs.total_packets_rejected == 0
        assert tracker.get_stats().avg_partner_interval > 0
        with pytest.raises(ValueError, match="peer_socket"):
            NetfluxSender("127.0.0.1", 1, bytes, 4, 0.005, object())
    finally:
        tx.stop()
        rx.stop()


def test_our_rtpsynth_names_are_librtpsynths_names() -> None:
    """Each name a compat submodule exports is in librtpsynth's module of that name
    (when librtpsynth is installed), so no import line needs more than the prefix."""
    pytest.importorskip("rtpsynth.RtpSynth", reason="librtpsynth (rtpsynth) not installed")
    renamed = {"Frame", "Erasure"}  # rtudp's frame classes; librtpsynth's are internal
    for sub in ("RtpServer", "RtpSynth", "RtpJBuf", "RtpProc", "RtpUtils"):
        ours = importlib.import_module(f"rtudp.compat.rtpsynth.{sub}")
        theirs = importlib.import_module(f"rtpsynth.{sub}")
        missing = set(ours.__all__) - renamed - set(dir(theirs))
        assert not missing, f"rtpsynth.{sub} has no {sorted(missing)}"
