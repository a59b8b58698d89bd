"""Shared helpers of the RTP tests: packets built by hand, jitter-buffer output as tuples."""
from __future__ import annotations

import struct


def rtp_packet(seq: int, ts: int, ssrc: int = 0x1234, pt: int = 0, payload: bytes = b"abcd",
               marker: int = 0) -> bytes:
    """A minimal RTP packet (no CSRC, extension or padding)."""
    return struct.pack("!BBHII", 0x80, (marker << 7) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF,
                       ssrc) + payload


def summarize(frames: list) -> list[tuple]:
    """Jitter-buffer output (ours or librtpsynth's) as comparable tuples."""
    out: list[tuple] = []
    for f in frames:
        c = f.content
        if c.type == 0:
            out.append(("rtp", c.frame.rtp.lseq, c.frame.rtp.info.seq, c.frame.rtp.info.ts,
                        bytes(f.rtp_data)))
        else:
            out.append(("ers", c.lseq_start, c.lseq_end, c.ts_diff))
    return out
