"""rtudp.rtp.parse and the parse errors of RtpJBuf.udp_in: one code per defect."""
from __future__ import annotations

import struct

import pytest
from rtp_helpers import rtp_packet

from rtudp import rtp

GOOD = rtp_packet(7, 1000)

DEFECTS = {  # name -> (datagram, code)
    "short": (GOOD[:11], -1),
    "version": (bytes([0x40]) + GOOD[1:], -2),
    "csrc": (bytes([0x82]) + GOOD[1:], -3),
    "ext_hdr": (bytes([0x90]) + GOOD[1:14], -4),
    "ext_len": (bytes([0x90]) + GOOD[1:12] + b"\xbe\xde\x00\x05", -5),
    "pad_zero": (bytes([0xA0]) + GOOD[1:-1] + b"\x00", -6),
    "pad_len": (bytes([0xA0]) + GOOD[1:-1] + b"\x09", -7),
    "rtcp": (GOOD[:1] + bytes([200]) + GOOD[2:], -8),
}


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_defect_has_its_code(name: str) -> None:
    data, code = DEFECTS[name]
    with pytest.raises(rtp.RtpParseError) as info:
        rtp.parse(data)
    assert info.value.code == code
    assert rtp.strerror(code) in str(info.value)
    jb = rtp.RtpJBuf(4)
    with pytest.raises(rtp.RTPParseError) as info2:
        jb.udp_in(data)
    assert info2.value.code == code
    assert jb.stats()["invalid"] == 1
    assert isinstance(info2.value, ValueError)


def test_codes_are_distinct() -> None:
    codes = [c for _, c in DEFECTS.values()]
    assert len(set(codes)) == len(codes)


def test_full_header() -> None:
    ext = bytes([0x10, 0xAA, 0x00, 0x21, 1, 2, 0, 0])  # id1 len1, pad, id2 len2, pad, pad
    data = (struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 0x80 | 96, 65535, 0xFFFFFFFF, 9)
            + struct.pack("!II", 11, 22) + b"\xbe\xde\x00\x02" + ext + b"payload" + b"\x00\x00\x03")
    h = rtp.parse(data)
    assert h["marker"] == 1 and h["pt"] == 96 and h["seq"] == 65535 and h["ts"] == 0xFFFFFFFF
    assert h["csrc"] == (11, 22)
    assert h["ext"] == [(1, b"\xaa"), (2, b"\x01\x02")]
    assert data[h["payload_offset"]:h["payload_offset"] + h["payload_len"]] == b"payload"
    assert h["pad_len"] == 3


def test_pt_72_to_76_only_with_marker_is_rtcp() -> None:
    for pt in range(72, 77):
        with pytest.raises(rtp.RtpParseError):
            rtp.parse(rtp_packet(1, 1, pt=pt, marker=1))
        assert rtp.parse(rtp_packet(1, 1, pt=pt))["pt"] == pt
