"""rtudp.rtp.RtpJBuf: order, duplicates, gaps, wrap, restarts, both modes, flush, stats."""
from __future__ import annotations

import random

from rtp_helpers import rtp_packet, summarize

from rtudp import rtp
from rtudp.rtp import RTPFrameType


def feed(jb: rtp.RtpJBuf, seqs: list[int], step: int = 160) -> list:
    out: list = []
    for s in seqs:
        out += jb.udp_in(rtp_packet(s, s * step))
    return out


def lseqs(frames: list) -> list:
    return [f.lseq if f.type == RTPFrameType.RTP else ("E", f.lseq_start, f.lseq_end)
            for f in frames]


def test_reorder_and_dups() -> None:
    jb = rtp.RtpJBuf(8)
    out = feed(jb, [10, 12, 11, 13, 13, 15, 14, 16, 17, 11, 19, 18, 20]) + jb.flush()
    assert lseqs(out) == list(range(10, 21))
    st = jb.stats()
    assert st["duplicates"] == 2 and jb.dropped == 2 and st["reordered"] == 3
    assert out[0].content.frame.rtp.info.seq == 10 and out[0].rtp_data == b"abcd"
    assert out[0].data == rtp_packet(10, 1600)


def test_gap_becomes_erasure_with_ts_diff() -> None:
    jb = rtp.RtpJBuf(2)
    out = feed(jb, [0, 1, 4, 5]) + jb.flush()
    assert lseqs(out) == [0, 1, ("E", 2, 3), 4, 5]
    ers = out[2].content
    assert ers.type == RTPFrameType.ERS and ers.ts_diff == 320
    assert jb.stats()["lost"] == 2 and jb.stats()["erased"] == 2


def test_seq_wrap_extends_to_64_bits() -> None:
    jb = rtp.RtpJBuf(3)
    seqs = [s & 0xFFFF for s in range(65530, 65545)]
    out = feed(jb, seqs) + jb.flush()
    assert lseqs(out) == list(range(65530, 65545))
    assert [f.seq for f in out] == seqs


def test_restart_after_large_jump_backwards() -> None:
    """librtpsynth dropped every packet after a backwards jump as late, forever."""
    jb = rtp.RtpJBuf(2)
    out = feed(jb, list(range(5000, 5010)) + list(range(10, 20))) + jb.flush()
    assert [f.seq for f in out] == list(range(5000, 5010)) + list(range(10, 20))
    assert all(f.type == RTPFrameType.RTP for f in out)
    assert jb.stats()["restarts"] == 1 and jb.dropped == 0


def test_flush_returns_every_run() -> None:
    """librtpsynth's flush dropped all runs but the last."""
    jb = rtp.RtpJBuf(50)
    out = feed(jb, [1, 2, 3, 7, 8, 12]) + jb.flush()
    assert lseqs(out) == [1, 2, 3, ("E", 4, 6), 7, 8, ("E", 9, 11), 12]


def test_ts_diff_is_64_bit() -> None:
    """librtpsynth computed ts_diff * lost in 32 bits: 90 kHz video, 2000 lost frames wrapped."""
    jb = rtp.RtpJBuf(1, clock_rate=90000)
    out = jb.udp_in(rtp_packet(0, 0)) + jb.udp_in(rtp_packet(2001, 2001 * 3000))
    assert lseqs(out) == [0, ("E", 1, 2000), 2001]
    assert out[1].ts_diff == 6_000_000


def test_time_mode_declares_loss_at_deadline() -> None:
    jb = rtp.RtpJBuf(64, latency_ms=50)
    ms = 1_000_000
    first = jb.udp_in(rtp_packet(1, 160))
    assert first == []
    t0 = jb.flush()[0].arrival_ns  # released by flush; the stream goes on
    assert jb.udp_in(rtp_packet(3, 480)) == []
    assert jb.poll(t0 + 20 * ms) == []
    out = jb.poll(t0 + 10_000 * ms)
    assert lseqs(out) == [("E", 2, 2), 3]


def test_opaque_comes_back() -> None:
    jb = rtp.RtpJBuf(1)
    (f,) = jb.udp_in(rtp_packet(5, 0), {"addr": 1})
    assert f.opaque == {"addr": 1}


def test_udp_in_many_matches_udp_in() -> None:
    rng = random.Random(3)
    seqs = list(range(100, 400))
    for w in range(0, len(seqs), 10):
        part = seqs[w:w + 10]
        rng.shuffle(part)
        seqs[w:w + 10] = part
    pkts = [rtp_packet(s, s * 160) for s in seqs]
    a, b = rtp.RtpJBuf(20), rtp.RtpJBuf(20)
    one = [f for p in pkts for f in a.udp_in(p)] + a.flush()
    many = b.udp_in_many(pkts + [b"junk"]) + b.flush()
    assert summarize(one) == summarize(many)
    assert lseqs(many) == list(range(100, 400))
    assert b.stats()["invalid"] == 1


def test_stats_jitter_and_ssrc() -> None:
    jb = rtp.RtpJBuf(4)
    feed(jb, list(range(10)))
    st = jb.stats()
    assert st["ssrc"] == 0x1234 and st["received"] == 10 and st["lost"] == 0
    assert st["jitter"] > 0  # all arrived at once while timestamps advanced


def test_bad_arguments_name_the_value() -> None:
    import pytest
    with pytest.raises(ValueError, match="capacity"):
        rtp.RtpJBuf(0)
    with pytest.raises(ValueError, match="latency_ms"):
        rtp.RtpJBuf(4, latency_ms=10**9)
