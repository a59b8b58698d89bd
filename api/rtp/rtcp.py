"""RTCP compound packets (RFC 3550 6) built and parsed by the worker's C code.

The same functions the worker uses (``csrc/rtp/rtcp.c``) through cffi::

    from rtudp.rtp import ReportBlock, SenderInfo, build_rtcp, parse_rtcp

    pkt = build_rtcp(0x1234, cname="me@host", sender=SenderInfo(ntp, ts, 50, 8000),
                     blocks=[ReportBlock(ssrc=0x99, fraction_lost=0.25, cumulative_lost=3,
                                         ext_max_seq=1005, jitter=12, lsr=0, dlsr=0)])
    rtcp = parse_rtcp(pkt)        # RtcpParseError naming what is wrong, if it is

A received frame is placed on its sender's wall clock by the sender's SR
(:func:`rtudp.rtp.channel.place_on_sender_clock`, ``RtpChannel.sender_time_ns``).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

from rtudp.shmring._native import ffi, lib

from ._rtp import RtpError


class RtcpParseError(RtpError, ValueError):
    """A datagram that is not a valid RTCP compound packet (the reason in its text)."""


class SenderInfo(NamedTuple):
    """An SR's sender info: NTP time (32.32), the RTP timestamp of that instant, the
    sender's packet and payload octet counts."""

    ntp: int
    rtp_ts: int
    packets: int
    octets: int


class ReportBlock(NamedTuple):
    """A report block on source ``ssrc``: ``fraction_lost`` 0..1 (sent in 256ths),
    ``cumulative_lost`` (24-bit signed), extended highest sequence number, jitter in
    timestamp units, LSR (middle 32 bits of the last SR's NTP time) and DLSR (1/65536 s)."""

    ssrc: int
    fraction_lost: float
    cumulative_lost: int
    ext_max_seq: int
    jitter: int
    lsr: int
    dlsr: int


class Rtcp(NamedTuple):
    """What a valid compound packet holds."""

    ssrc: int                          #: of its first SR/RR
    sender: SenderInfo | None          #: the first SR's sender info
    blocks: tuple[ReportBlock, ...]
    cname: bytes | None                #: the first CNAME
    bye: tuple[int, ...]               #: sources a BYE names
    counts: dict[str, int]             #: packets by type: sr, rr, sdes, bye, app, other
    app: tuple[int, bytes, int] | None  #: the first APP's (ssrc, name, subtype)


def _u32(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{what} must be an int 0..2**32-1, got {value!r}")
    return value


def _fill_block(rb: object, b: ReportBlock) -> None:
    if not 0 <= b.fraction_lost <= 1:
        raise ValueError(f"fraction_lost must be 0..1, got {b.fraction_lost!r}")
    if not -0x800000 <= b.cumulative_lost <= 0x7FFFFF:
        raise ValueError(f"cumulative_lost must fit 24 bits signed, got {b.cumulative_lost!r}")
    rb.ssrc = _u32(b.ssrc, "ssrc")  # type: ignore[attr-defined]
    rb.fraction = min(255, int(b.fraction_lost * 256))  # type: ignore[attr-defined]
    rb.cum_lost = b.cumulative_lost  # type: ignore[attr-defined]
    rb.ext_max_seq = _u32(b.ext_max_seq, "ext_max_seq")  # type: ignore[attr-defined]
    rb.jitter = _u32(b.jitter, "jitter")  # type: ignore[attr-defined]
    rb.lsr = _u32(b.lsr, "lsr")  # type: ignore[attr-defined]
    rb.dlsr = _u32(b.dlsr, "dlsr")  # type: ignore[attr-defined]


def build_rtcp(ssrc: int, cname: bytes | str, sender: SenderInfo | None = None,
               blocks: Sequence[ReportBlock] = (), bye: bool = False,
               reason: bytes | str = b"") -> bytes:
    """One compound packet: SR (with ``sender``) or RR of ``ssrc`` with ``blocks`` (at
    most 31), SDES CNAME ``cname``, then a BYE (with ``reason``) when ``bye``."""
    cname_b = cname.encode() if isinstance(cname, str) else bytes(cname)
    reason_b = reason.encode() if isinstance(reason, str) else bytes(reason)
    if not 1 <= len(cname_b) <= lib.RTCP_MAX_CNAME:
        raise ValueError(f"cname must be 1..{lib.RTCP_MAX_CNAME} bytes, got {cname!r}")
    if len(reason_b) > lib.RTCP_MAX_REASON:
        raise ValueError(f"reason must be at most {lib.RTCP_MAX_REASON} bytes, got {reason!r}")
    if len(blocks) > lib.RTCP_MAX_RB:
        raise ValueError(f"at most {lib.RTCP_MAX_RB} report blocks, got {len(blocks)}")
    rbs = ffi.new("struct rtcp_rb[]", max(1, len(blocks)))
    for i, b in enumerate(blocks):
        _fill_block(rbs[i], ReportBlock(*b))
    keep = [ffi.new("char[]", cname_b), ffi.new("char[]", reason_b or b"\0")]
    o = ffi.new("struct rtcp_out *")
    o.ssrc = _u32(ssrc, "ssrc")
    if sender is not None:
        s = SenderInfo(*sender)
        if not 0 <= s.ntp < 1 << 64:
            raise ValueError(f"ntp must be a 64-bit NTP timestamp, got {s.ntp!r}")
        o.sr, o.info.ntp = 1, s.ntp
        o.info.rtp_ts = _u32(s.rtp_ts, "rtp_ts")
        o.info.packets = _u32(s.packets, "packets")
        o.info.octets = _u32(s.octets, "octets")
    o.rb, o.n_rb = rbs, len(blocks)
    o.cname, o.cname_len = keep[0], len(cname_b)
    o.bye, o.reason, o.reason_len = int(bool(bye)), keep[1], len(reason_b)
    buf = ffi.new("uint8_t[]", lib.RTCP_BUILD_MAX)
    n = lib.rtcp_build(buf, lib.RTCP_BUILD_MAX, o)
    if n < 0:
        raise ValueError(f"RTCP build failed: {ffi.string(lib.rtcp_strerror(n)).decode()}")
    return bytes(ffi.buffer(buf, n))


def parse_rtcp(data: bytes) -> Rtcp:
    """A received compound packet, validated as RFC 3550 A.2 says and each packet
    against its own length (:class:`RtcpParseError` naming what is wrong)."""
    raw = bytes(data)
    p = ffi.new("struct rtcp_in *")
    rc = lib.rtcp_parse(raw, len(raw), p)
    if rc != lib.RTCP_OK:
        raise RtcpParseError(f"not a valid RTCP compound packet ({len(raw)} bytes): "
                             f"{ffi.string(lib.rtcp_strerror(rc)).decode()}")
    sender = (SenderInfo(int(p.info.ntp), int(p.info.rtp_ts), int(p.info.packets),
                         int(p.info.octets)) if p.has_sr else None)
    blocks = tuple(ReportBlock(int(b.ssrc), int(b.fraction) / 256, int(b.cum_lost),
                               int(b.ext_max_seq), int(b.jitter), int(b.lsr), int(b.dlsr))
                   for b in p.rb[0:p.n_rb])
    cname = bytes(ffi.buffer(p.cname, p.cname_len)) if p.cname_len else None
    counts = {"sr": p.n_sr, "rr": p.n_rr, "sdes": p.n_sdes, "bye": p.n_bye, "app": p.n_app,
              "other": p.n_other}
    app = (int(p.app_ssrc), bytes(p.app_name), int(p.app_subtype)) if p.n_app else None
    return Rtcp(int(p.ssrc), sender, blocks, cname,
                tuple(int(s) for s in p.bye_ssrc[0:p.n_bye_ssrc]),
                {k: int(v) for k, v in counts.items()}, app)


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on a port RTP and RTCP share is RTCP (RFC 5761 4)."""
    raw = bytes(data[:2])
    return bool(lib.rtcp_is_rtcp(raw, len(raw)))


def ntp_from_ns(realtime_ns: int) -> int:
    """A CLOCK_REALTIME time (``time.time_ns()``) as an NTP timestamp (32.32)."""
    return int(lib.rtcp_ntp_from_ns(realtime_ns))


def rtt_ns(arrival_ntp: int, lsr: int, dlsr: int) -> int | None:
    """The round-trip time of a report block that arrived at ``arrival_ntp``
    (RFC 3550 6.4.1: A - LSR - DLSR); None without an LSR or for a negative result."""
    r = int(lib.rtcp_rtt_ns(lib.rtcp_ntp_mid(arrival_ntp), _u32(lsr, "lsr"), _u32(dlsr, "dlsr")))
    return None if r < 0 else r


__all__ = ["ReportBlock", "Rtcp", "RtcpParseError", "SenderInfo", "build_rtcp", "is_rtcp",
           "ntp_from_ns", "parse_rtcp", "rtt_ns"]
