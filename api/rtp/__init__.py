"""rtudp.rtp: RTP generation, parsing, jitter buffering and G.711, in C.

librtpsynth (PyPI ``rtpsynth``) names work unchanged::

    from rtudp.rtp import RtpSynth, RtpJBuf, RtpUtils, RTPFrameType

    synth = RtpSynth(8000, 20)                 # clock rate (Hz), ptime (ms)
    pkt = synth.next_pkt(160, 0)               # 12-byte header + 160 zero bytes, PCMU
    jb = RtpJBuf(20)                           # release after 20 packets wait behind a gap
    for frame in jb.udp_in(pkt) + jb.flush():
        if frame.content.type == RTPFrameType.RTP:
            print(frame.content.frame.rtp.lseq, frame.rtp_data)
        else:                                  # erasure: packets declared lost
            print(frame.content.lseq_start, frame.content.lseq_end, frame.content.ts_diff)

Where librtpsynth is wrong this is not: timestamps follow the clock rate (it
assumed 8 kHz), SSRC/seq/timestamp come from the OS random source (it used
unseeded ``random()``, so every process started alike), ``resync(ts, seq)`` uses
the values given, erasure ``ts_diff`` is computed in 64 bits, ``flush()`` returns
every buffered run (it dropped all but the last) and a sender that restarts its
sequence numbers is followed after two packets (RFC 3550 A.1; it dropped them
as late forever).

Extras: batch forms (``RtpSynth.next_many``/``next_into``,
``RtpJBuf.udp_in_many``), a time-based release mode (``RtpJBuf(capacity,
latency_ms=60)`` + ``poll()``), per-SSRC ``stats()`` (RFC 3550 A.3 loss, A.8
jitter), A-law, and :func:`parse` for a header with its CSRCs and RFC 8285
extension elements.

``RtpServer`` runs on the worker's ``rtp`` channels (:mod:`rtudp.rtp.server`),
``RtpProc`` schedules callbacks (:mod:`rtudp.rtp.proc`); ``RtpChannel`` is the handle
of an ``rtp`` channel (:mod:`rtudp.rtp.channel`); ``build_rtcp``/``parse_rtcp`` make
and read RTCP compound packets (:mod:`rtudp.rtp.rtcp`).  They load on first use.
"""
from __future__ import annotations

import enum

from rtudp.shmring.errors import RtUdpError

from ._rtp import Erasure, Frame, RtpError, RtpJBuf, RtpParseError, RtpSynth
from ._rtp import (alaw2linear, alaw2pcm, linear2alaw, linear2ulaw, parse, resample_linear,
                   strerror, ulaw2linear, ulaw2pcm)

#: librtpsynth's name for the parse error of RtpJBuf.udp_in
RTPParseError = RtpParseError


class RTPFrameType(enum.IntEnum):
    """What a jitter-buffer frame is: ``frame.content.type``."""

    RTP = 0
    ERS = 1


class RtpQueueFullError(RtUdpError):
    """A channel's output queue is full (librtpsynth RtpServer's error)."""


class ChannelProcError(RtpError, RuntimeError):
    """A channel processing callback failed (librtpsynth RtpProc's error)."""


class RtpUtils:
    """librtpsynth's ``RtpUtils``: G.711 mu-law and linear resampling, as static methods."""

    linear2ulaw = staticmethod(linear2ulaw)
    ulaw2linear = staticmethod(ulaw2linear)
    linear2alaw = staticmethod(linear2alaw)
    alaw2linear = staticmethod(alaw2linear)
    resample_linear = staticmethod(resample_linear)


__all__ = [
    "ChannelProcError", "Erasure", "Frame", "RTPFrameType", "RTPParseError", "RtpChannel",
    "RtpError", "RtpFrame", "RtpJBuf", "RtpParseError", "RtpProc", "RtpProcChannel",
    "RtpQueueFullError", "RtpServer", "RtpServerChannel", "RtpSynth", "RtpUtils", "alaw2linear",
    "alaw2pcm", "linear2alaw", "linear2ulaw", "parse", "resample_linear", "strerror",
    "ulaw2linear", "ulaw2pcm", "ReportBlock", "Rtcp", "RtcpParseError", "SenderInfo",
    "build_rtcp", "is_rtcp", "ntp_from_ns", "parse_rtcp", "rtt_ns",
]


_LAZY = {"RtpServer": "server", "RtpServerChannel": "server", "RtpProc": "proc",
         "RtpProcChannel": "proc", "RtpChannel": "channel", "RtpFrame": "channel",
         **{n: "rtcp" for n in ("ReportBlock", "Rtcp", "RtcpParseError", "SenderInfo",
                                "build_rtcp", "is_rtcp", "ntp_from_ns", "parse_rtcp",
                                "rtt_ns")}}


def __getattr__(name: str) -> object:
    """The worker-channel names, imported on first use (they need the pool's modules)."""
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
