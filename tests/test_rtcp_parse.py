"""rtudp.rtp's RTCP functions against packets built by hand from RFC 3550's layouts
(6.4.1 SR, 6.4.2 RR, 6.5 SDES, 6.6 BYE, 6.7 APP)."""
from __future__ import annotations

import struct
import time

import pytest

from rtudp.rtp import (ReportBlock, RtcpParseError, SenderInfo, build_rtcp, is_rtcp,
                       ntp_from_ns, parse_rtcp, rtt_ns)

# SR of 0x01020304: NTP 0xAABBCCDD.11223344, RTP ts 160, 7 packets, 1120 octets, one block
# on 0x0A0B0C0D (fraction 64/256, lost 5, ext seq 0x00010064, jitter 9, LSR 0xB7052000,
# DLSR 0x00054000); SDES CNAME "a@b"; BYE with reason "x"
SR = (bytes([0x81, 200, 0, 12]) + struct.pack("!IIIIII", 0x01020304, 0xAABBCCDD, 0x11223344,
                                              160, 7, 1120)
      + struct.pack("!IIIIII", 0x0A0B0C0D, 64 << 24 | 5, 0x00010064, 9, 0xB7052000, 0x00054000)
      + bytes([0x81, 202, 0, 3]) + struct.pack("!I", 0x01020304) + b"\x01\x03a@b" + b"\x00" * 3
      + bytes([0x81, 203, 0, 2]) + struct.pack("!I", 0x01020304) + b"\x01x\x00\x00")


def test_builds_the_hand_built_packet():
    pkt = build_rtcp(0x01020304, "a@b", SenderInfo(0xAABBCCDD11223344, 160, 7, 1120),
                     [ReportBlock(0x0A0B0C0D, 0.25, 5, 0x00010064, 9, 0xB7052000, 0x00054000)],
                     bye=True, reason="x")
    assert pkt == SR


def test_parses_the_hand_built_packet():
    r = parse_rtcp(SR)
    assert r.ssrc == 0x01020304 and r.cname == b"a@b" and r.bye == (0x01020304,)
    assert r.sender == SenderInfo(0xAABBCCDD11223344, 160, 7, 1120)
    assert r.blocks == (ReportBlock(0x0A0B0C0D, 0.25, 5, 0x00010064, 9, 0xB7052000, 0x00054000),)
    assert r.counts == {"sr": 1, "rr": 1 - 1, "sdes": 1, "bye": 1, "app": 0, "other": 0}


def test_rr_app_and_feedback_by_hand():
    rr = bytes([0x80, 201, 0, 1]) + struct.pack("!I", 7)  # RR, no blocks
    app = bytes([0x85, 204, 0, 3]) + struct.pack("!I", 7) + b"TEST" + b"\x00" * 4
    fb = bytes([0x81, 205, 0, 2]) + struct.pack("!II", 7, 8)  # RTPFB: known, skipped
    r = parse_rtcp(rr + app + fb)
    assert r.sender is None and r.blocks == () and r.cname is None
    assert r.app == (7, b"TEST", 5) and r.counts["other"] == 1 and r.counts["rr"] == 1


@pytest.mark.parametrize("bad, why", [
    (b"", "shorter"),
    (SR[:-2], "multiple of 4"),
    (bytes([0x40]) + SR[1:], "version"),
    (SR[52:], "first packet"),                       # SDES first
    (SR[:-4], "length"),                             # the BYE cut short
    (bytes([0xA1]) + SR[1:], "padding"),             # padding on the first packet
    (SR[:4] + b"\x00" * 8, "length"),
    (bytes([0x81, 201, 0, 1, 0, 0, 0, 7]), "SR/RR"),  # a block announced, none there
])
def test_bad_packets_named(bad, why):
    with pytest.raises(RtcpParseError, match=why):
        parse_rtcp(bad)


def test_bad_arguments_named():
    with pytest.raises(ValueError, match="cname"):
        build_rtcp(1, "")
    with pytest.raises(ValueError, match="fraction_lost"):
        build_rtcp(1, "c", blocks=[ReportBlock(1, 1.5, 0, 0, 0, 0, 0)])
    with pytest.raises(ValueError, match="ssrc"):
        build_rtcp(-1, "c")
    with pytest.raises(ValueError, match="31 report blocks"):
        build_rtcp(1, "c", blocks=[ReportBlock(1, 0, 0, 0, 0, 0, 0)] * 32)


def test_mux_ntp_and_rtt():
    assert is_rtcp(SR) and not is_rtcp(b"\x80\x00") and is_rtcp(b"\x80\xc8")
    assert ntp_from_ns(0) == 2208988800 << 32
    now = time.time_ns()
    assert abs((ntp_from_ns(now) >> 32) - (now // 10**9 + 2208988800)) <= 1
    # RFC 3550 6.4.1's example: 6.125 s
    a = 0xB7108000 << 16  # the middle 32 bits are 46864.500 s
    assert rtt_ns(a, 0xB7052000, 0x00054000) == 6_125_000_000
    assert rtt_ns(a, 0, 0x00054000) is None


def test_sender_clock_placement():
    from rtudp.rtp.channel import ntp_to_ns, place_on_sender_clock
    t = 1_700_000_000_000_000_000
    assert abs(ntp_to_ns(ntp_from_ns(t)) - t) <= 1
    assert place_on_sender_clock(8160, t, 160, 8000) == t + 1_000_000_000
    assert place_on_sender_clock(0xFFFFFF60, t, 160, 8000) == t - 40_000_000  # wraps back
