"""Every seed's module layout under ``rtudp.compat``: a program moves by prefixing its
imports, and each name is rtudp's own object (re-exported, not a second copy)."""
from __future__ import annotations

import importlib
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


@pytest.mark.parametrize("module, name, hint", [
    ("rtudp.compat.netflux_receiver", "NetfluxReceiver", "NetfluxMain(...).receiver"),
    ("rtudp.compat.netflux_sender", "NetfluxSender", "NetfluxMain(...).sender"),
    ("rtudp.compat.netflux_statistics", "NetfluxStatisticsTracker",
     "NetfluxMain(...).statistics.get_stats()"),
])
def test_netflux_thread_classes_say_what_replaces_them(module: str, name: str,
                                                       hint: str) -> None:
    with pytest.raises(ImportError, match=name) as err:
        exec(f"from {module} import {name}", {})
    assert hint in str(err.value)
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(importlib.import_module(module), "no_such_name")


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
