"""Interop with librtpsynth (PyPI rtpsynth): its packets through our jitter buffer and ours
through its jitter buffer give the same ordered output, and the cases where it is wrong."""
from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys

import pytest
from rtp_helpers import rtp_packet, summarize

from rtudp import rtp
from rtudp.tools.bench.rtp import shuffle_in_windows

if importlib.util.find_spec("rtpsynth") is None:
    REASON = "rtpsynth is not installed (pip install 'rtudp[test]'): interop not checked"
    print(REASON, file=sys.stderr)
    pytest.skip(REASON, allow_module_level=True)

from rtpsynth.RtpJBuf import RtpJBuf as TheirJBuf  # noqa: E402
from rtpsynth.RtpSynth import RtpSynth as TheirSynth  # noqa: E402


def scenario(pkts: list[bytes], seed: int, loss: float, dup: float) -> list[bytes]:
    """Shuffle in windows of 10, drop `loss` and duplicate `dup` of the packets."""
    return shuffle_in_windows(pkts, seed, loss, dup)


def numbered_from(pkts: list[bytes], first: int) -> list[bytes]:
    """``pkts`` with their sequence numbers from ``first`` on (mod 2^16): both generators
    start at a random one, and librtpsynth's buffer aborts the process on a stream that
    starts at 65534 or 65535 (test_their_buffer_aborts_on_a_stream_from_65535), so each
    case names its own, a wrap inside the stream included."""
    return [p[:2] + struct.pack("!H", (first + k) & 0xFFFF) + p[4:] for k, p in enumerate(pkts)]


def run(jb, pkts: list[bytes]) -> list[tuple]:
    return summarize(stream_only(jb, pkts) + jb.flush())


def stream_only(jb, pkts: list[bytes]) -> list:
    frames: list = []
    for p in pkts:
        frames += jb.udp_in(p)
    return frames


def same_output(pkts: list[bytes]) -> list[tuple]:
    """Both buffers release the same frames while packets arrive; at flush ours returns a
    superset of theirs (theirs loses every run but the last: that bug is tested below)."""
    ours_jb, theirs_jb = rtp.RtpJBuf(20), TheirJBuf(20)
    ours, theirs = summarize(stream_only(ours_jb, pkts)), summarize(stream_only(theirs_jb, pkts))
    assert ours == theirs
    ours_flush, theirs_flush = summarize(ours_jb.flush()), summarize(theirs_jb.flush())
    assert {f for f in theirs_flush if f[0] == "rtp"} <= set(ours_flush)
    return ours + ours_flush


@pytest.mark.parametrize("seed,loss,dup,first", [(1, 0.0, 0.0, 1000), (2, 0.0, 0.1, 30000),
                                                 (3, 0.02, 0.1, 64000), (4, 0.05, 0.0, 65000)])
def test_their_packets_through_both_buffers(seed: int, loss: float, dup: float,
                                            first: int) -> None:
    synth = TheirSynth(8000, 20)
    pkts = [synth.next_pkt(160, 0, pload=i.to_bytes(4, "big")) for i in range(3000)]
    same_output(scenario(numbered_from(pkts, first), seed, loss, dup))


@pytest.mark.parametrize("seed,first", [(5, 5000), (6, 64500)])
def test_our_packets_through_both_buffers(seed: int, first: int) -> None:
    synth = rtp.RtpSynth(8000, 20)
    pkts = [synth.next_pkt(160, 0, i.to_bytes(4, "big")) for i in range(3000)]
    ours = same_output(scenario(numbered_from(pkts, first), seed, 0.02, 0.1))
    # and nothing is out of order or missing
    nxt = ours[0][1]
    for f in ours:
        assert f[1] == nxt
        nxt = f[2] + 1 if f[0] == "ers" else f[1] + 1


def test_their_buffer_aborts_on_a_stream_from_65535() -> None:
    """librtpsynth's jitter buffer aborts the process (an invariant, d_assert in
    rtpjbuf.c) on a stream whose first sequence number is 65535, shuffled in windows of
    10 as the cases above are: why they number their streams themselves."""
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from rtpsynth.RtpJBuf import RtpJBuf\n"
            "from rtp_helpers import rtp_packet\n"
            "from rtudp.tools.bench.rtp import shuffle_in_windows\n"
            "jb = RtpJBuf(20)\n"
            "pkts = [rtp_packet(65535 + k, k * 160) for k in range(200)]\n"
            "for p in shuffle_in_windows(pkts, 1, 0.0, 0.0): jb.udp_in(p)\n")
    theirs = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)],
                            capture_output=True, timeout=60)
    assert theirs.returncode < 0, "librtpsynth no longer aborts: use its buffer's output"


def test_their_flush_loses_runs_ours_does_not() -> None:
    pkts = [rtp_packet(s, s * 160) for s in (1, 2, 3, 7, 8, 12)]
    ours, theirs = run(rtp.RtpJBuf(50), pkts), run(TheirJBuf(50), pkts)
    assert [f[1] for f in ours if f[0] == "rtp"] == [1, 2, 3, 7, 8, 12]
    assert len([f for f in theirs if f[0] == "rtp"]) < 6  # librtpsynth keeps only the last run


def test_their_backwards_jump_is_dropped_forever_ours_restarts() -> None:
    pkts = [rtp_packet(s, s * 160) for s in list(range(5000, 5010)) + list(range(10, 30))]
    ours, theirs = run(rtp.RtpJBuf(4), pkts), run(TheirJBuf(4), pkts)
    assert [f[2] for f in ours if f[0] == "rtp"] == list(range(5000, 5010)) + list(range(10, 30))
    assert [f[2] for f in theirs if f[0] == "rtp"] == list(range(5000, 5010))


def test_their_ts_diff_wraps_ours_does_not() -> None:
    pkts = [rtp_packet(0, 0), rtp_packet(2001, 2001 * 3000)]
    ours, theirs = run(rtp.RtpJBuf(1), pkts), run(TheirJBuf(1), pkts)
    assert ours[1] == ("ers", 1, 2000, 6_000_000)
    assert theirs[1][0] == "ers" and theirs[1][3] != 6_000_000


def test_their_generator_is_8khz_only_and_unseeded() -> None:
    a, b = TheirSynth(48000, 20), TheirSynth(48000, 20)
    p = [rtp.parse(a.next_pkt(0, 0)) for _ in range(2)]
    assert (p[1]["ts"] - p[0]["ts"]) % 2**32 == 160  # should be 960
    ours = rtp.RtpSynth(48000, 20)
    q = [rtp.parse(ours.next_pkt(0, 0)) for _ in range(2)]
    assert (q[1]["ts"] - q[0]["ts"]) % 2**32 == 960
    assert b.next_pkt(0, 0)[8:12] != ours.next_pkt(0, 0)[8:12]
