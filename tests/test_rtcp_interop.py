"""RTCP interop with real peers (installed by .ci/run): GStreamer's rtpbin both ways
(its session statistics read through python3-gi, Debian python3-gi and
gir1.2-gstreamer-1.0), and aiortc's RTCP parser (PyPI aiortc) on our packets."""
from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

from fake_worker import worker_argv
from waiting import wait_for

SYS_PY = "/usr/bin/python3"


def _gi_gst() -> str | None:
    """Why GStreamer cannot be driven from python3-gi here (None: it can)."""
    if shutil.which("gst-launch-1.0") is None:
        return "gst-launch-1.0 is not installed (gstreamer1.0-tools; .ci/run installs it)"
    try:
        subprocess.run([SYS_PY, "-c", "import gi; gi.require_version('Gst', '1.0'); "
                        "from gi.repository import Gst"], check=True, capture_output=True,
                       timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"python3-gi with GStreamer 1.0 is not usable ({exc}); .ci/run installs " \
               f"python3-gi gir1.2-gstreamer-1.0"
    return None


# Runs a pipeline holding an rtpbin named rb for `secs`, then prints the stats of its
# session 0 (one line a source) and exits. Its session reports every 500 ms: rtpbin's
# default minimum of 5 s puts the first report anywhere from 1 to 3 s after the start
# (RFC 3550's randomised half interval), which a run of a few seconds may not see.
PEER = r"""
import sys, gi
gi.require_version('Gst', '1.0')
from gi.repository import Gst, GLib
Gst.init(None)
pipe = Gst.parse_launch(sys.argv[1])
pipe.get_by_name('rb').emit('get-internal-session', 0).set_property(
    'rtcp-min-interval', 500 * Gst.MSECOND)
pipe.set_state(Gst.State.PLAYING)
loop = GLib.MainLoop()
def done():
    sess = pipe.get_by_name('rb').emit('get-internal-session', 0)
    text = sess.get_property('stats').to_string()
    for part in text.split('application/x-rtp-source-stats')[1:]:
        print('SOURCE', part.replace(chr(10), ' ').replace(chr(92), ''), flush=True)
    loop.quit()
GLib.timeout_add(int(float(sys.argv[2]) * 1000), done)
loop.run()
pipe.set_state(Gst.State.NULL)
"""


def run_peer(pipeline: str, secs: float) -> subprocess.Popen:
    return subprocess.Popen([SYS_PY, "-c", PEER, pipeline, str(secs)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def sources(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("SOURCE")]


def field(src: str, name: str) -> str | None:
    m = re.search(rf"\b{re.escape(name)}=\([a-z0-9]+\)([^,;]+)", src)
    return m.group(1).strip() if m else None


gst_why = _gi_gst()
needs_gst = pytest.mark.skipif(gst_why is not None, reason=str(gst_why))
needs_worker = [pytest.mark.rtudp(worker=worker_argv())]


def free_pair() -> int:
    """An even loopback port with the odd one above it free right now."""
    from rtudp.workers.sockets import _even_port
    import socket
    return _even_port(socket.AF_INET, "127.0.0.1", 0)


@needs_gst
@pytest.mark.rtudp(worker=worker_argv())
def test_rtpbin_receiver_sees_our_sr(rtudp_pool):
    port = free_pair()
    caps = "application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0"
    ch = rtudp_pool.open_channel("tx", kind="rtp", local=("127.0.0.1", 0),
                                 remote=("127.0.0.1", port),
                                 options={"rtcp_interval_ms": 200, "latency_ms": 20})
    peer = run_peer(f"rtpbin name=rb udpsrc port={port} caps={caps} ! rb.recv_rtp_sink_0 "
                    f"udpsrc port={port + 1} ! rb.recv_rtcp_sink_0 "
                    f"rb.send_rtcp_src_0 ! udpsink host=127.0.0.1 port={ch.local[1] + 1} "
                    f"sync=false async=false rb. ! rtppcmudepay ! fakesink", 3.0)
    try:
        t_end = time.monotonic() + 3.5
        while time.monotonic() < t_end and peer.poll() is None:
            ch.send_many([b"\xff" * 160] * 5)
            time.sleep(0.1)
        out, _ = peer.communicate(timeout=30)
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.communicate()
    ours = [s for s in sources(out) if field(s, "ssrc") == str(ch.ssrc)]
    assert ours, out
    assert field(ours[0], "have-sr") == "true", ours[0]
    assert int(field(ours[0], "sr-packet-count") or 0) > 0, ours[0]
    # and its receiver reports came back to us: the RTT is known
    assert wait_for(lambda: ch.rtcp_stats()["rtcp_rr_received"]
                    + ch.rtcp_stats()["rtcp_sr_received"] >= 1, timeout=5), ch.rtcp_stats()
    assert ch.rtcp_stats()["rtcp_rtt_ns"] >= 0, ch.rtcp_stats()


@needs_gst
@pytest.mark.rtudp(worker=worker_argv())
def test_rtpbin_sender_gets_our_rr(rtudp_pool):
    gport = free_pair()
    ch = rtudp_pool.open_channel("rx", kind="rtp", local=("127.0.0.1", 0),
                                 options={"rtcp_interval_ms": 200, "latency_ms": 20})
    ch.set_target("127.0.0.1", gport)  # reports go to its port + 1
    peer = run_peer(f"rtpbin name=rb audiotestsrc is-live=true ! mulawenc ! rtppcmupay ! "
                    f"rb.send_rtp_sink_0 rb.send_rtp_src_0 ! udpsink host=127.0.0.1 "
                    f"port={ch.local[1]} rb.send_rtcp_src_0 ! udpsink host=127.0.0.1 "
                    f"port={ch.local[1] + 1} sync=false async=false "
                    f"udpsrc port={gport + 1} ! rb.recv_rtcp_sink_0", 4.0)
    try:
        out, _ = peer.communicate(timeout=60)
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.communicate()
    st = ch.rtcp_stats()
    assert st["rtcp_sr_received"] >= 1 and st["rtcp_rr_sent"] >= 1 and st["rtcp_bad"] == 0, st
    clock = ch.remote_clock()
    assert clock is not None and clock[2] == ch.stats()["rtp_rx_ssrc"]
    # rtpbin read our report block on its stream (under our source: the reporter)
    ours = [s for s in sources(out) if field(s, "ssrc") == str(ch.ssrc)]
    assert ours and field(ours[0], "have-rb") == "true", out
    assert field(ours[0], "rb-ssrc") == str(clock[2]), ours[0]
    assert int(field(ours[0], "rb-packetslost") or 0) == 0, ours[0]


def test_aiortc_parses_our_packets():
    rtcp = pytest.importorskip("aiortc.rtp", reason="aiortc is not installed (PyPI aiortc; "
                                                     ".ci/run installs it)")
    from rtudp.rtp import ReportBlock, SenderInfo, build_rtcp, ntp_from_ns
    ntp = ntp_from_ns(time.time_ns())
    pkt = build_rtcp(0x1234, "rtudp@test", SenderInfo(ntp, 8000, 50, 8000),
                     [ReportBlock(0x99, 0.25, 3, 1005, 12, 0xB7052000, 0x54000)],
                     bye=True, reason="done")
    got = rtcp.RtcpPacket.parse(pkt)
    assert [type(p).__name__ for p in got] == ["RtcpSrPacket", "RtcpSdesPacket", "RtcpByePacket"]
    sr, sdes, bye = got
    assert sr.ssrc == 0x1234 and sr.sender_info.ntp_timestamp == ntp
    assert (sr.sender_info.rtp_timestamp, sr.sender_info.packet_count,
            sr.sender_info.octet_count) == (8000, 50, 8000)
    rb = sr.reports[0]
    assert (rb.ssrc, rb.fraction_lost, rb.packets_lost, rb.highest_sequence, rb.jitter,
            rb.lsr, rb.dlsr) == (0x99, 64, 3, 1005, 12, 0xB7052000, 0x54000)
    assert sdes.chunks[0].items == [(1, b"rtudp@test")]
    assert bye.sources == [0x1234]
