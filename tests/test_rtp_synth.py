"""rtudp.rtp.RtpSynth: clock rates, random start, marker, skip, resync, batches."""
from __future__ import annotations

import subprocess
import sys

import pytest

from rtudp import rtp


def hdr(p: bytes) -> dict:
    return rtp.parse(p)


@pytest.mark.parametrize("rate,ptime,step", [(8000, 20, 160), (16000, 20, 320), (48000, 20, 960),
                                             (90000, 40, 3600), (8000, 30, 240)])
def test_timestamp_step_follows_clock_rate(rate: int, ptime: int, step: int) -> None:
    s = rtp.RtpSynth(rate, ptime)
    a, b = hdr(s.next_pkt(10, 0)), hdr(s.next_pkt(10, 0))
    assert (b["ts"] - a["ts"]) % 2**32 == step
    assert (b["seq"] - a["seq"]) % 2**16 == 1


def test_librtpsynth_bug_8khz_only_timestamps_fixed() -> None:
    """librtpsynth used ts_inc = 80 * ptime / 10 whatever the rate: 160 at 48 kHz too."""
    s = rtp.RtpSynth(48000, 20)
    a, b = hdr(s.next_pkt(0, 0)), hdr(s.next_pkt(0, 0))
    assert (b["ts"] - a["ts"]) % 2**32 == 960


def test_two_generators_never_start_alike() -> None:
    starts = {(s.ssrc, s.seq, s.ts) for s in (rtp.RtpSynth(8000, 20) for _ in range(200))}
    assert len(starts) == 200
    assert len({ssrc for ssrc, _, _ in starts}) == 200


def test_librtpsynth_bug_unseeded_random_fixed() -> None:
    """Two processes: librtpsynth gave both the same SSRC (unseeded random())."""
    code = "from rtudp.rtp import RtpSynth; s = RtpSynth(8000, 20); print(s.ssrc, s.seq, s.ts)"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)}
    assert len(outs) == 2


def test_marker_on_talkspurt_start() -> None:
    s = rtp.RtpSynth(8000, 20)
    assert hdr(s.next_pkt(1, 0))["marker"] == 1
    assert hdr(s.next_pkt(1, 0))["marker"] == 0
    ts = hdr(s.next_pkt(1, 0))["ts"]
    s.skip(3)
    h = hdr(s.next_pkt(1, 0))
    assert h["marker"] == 1 and (h["ts"] - ts) % 2**32 == 4 * 160
    assert s.set_mbt(1) == 0
    assert hdr(s.next_pkt(1, 0))["marker"] == 1


def test_resync_honours_explicit_values() -> None:
    s = rtp.RtpSynth(8000, 20)
    s.next_pkt(0, 0)
    s.resync(ts=123456, seq=65535)
    h = hdr(s.next_pkt(0, 0))
    assert (h["ts"], h["seq"], h["marker"]) == (123456, 65535, 1)
    assert hdr(s.next_pkt(0, 0))["seq"] == 0


def test_resync_without_values_adds_elapsed_time() -> None:
    import time
    s = rtp.RtpSynth(8000, 20)
    s.next_pkt(0, 0)
    ts = s.ts
    time.sleep(0.05)
    s.resync()
    assert 300 <= (s.ts - ts) % 2**32 <= 8000  # ~400 ticks in 50 ms, bounded for slow machines


def test_payload_given_or_zero() -> None:
    s = rtp.RtpSynth(8000, 20)
    assert s.next_pkt(4, 8)[12:] == b"\0" * 4
    assert s.next_pkt(6, 8, b"abc")[12:] == b"abc\0\0\0"
    assert s.next_pkt(3, 8, pload=bytearray(b"xyz"))[12:] == b"xyz"
    with pytest.raises(ValueError, match="5 bytes, longer than plen=4"):
        s.next_pkt(4, 8, b"12345")
    with pytest.raises(ValueError, match="128"):
        s.next_pkt(4, 128)
    with pytest.raises(ValueError, match="-5"):
        rtp.RtpSynth(8000, -5)


def test_batches_continue_the_stream() -> None:
    s = rtp.RtpSynth(8000, 20, ssrc=1, seq=65534, ts=0)
    many = s.next_many(3, 160, 0)
    buf = bytearray(2 * 172)
    assert s.next_into(buf, 2, 160, 0) == 2
    seqs = [hdr(p)["seq"] for p in many] + [hdr(bytes(buf[i:i + 172]))["seq"] for i in (0, 172)]
    assert seqs == [65534, 65535, 0, 1, 2]
    assert hdr(many[0])["ssrc"] == 1 and hdr(bytes(buf[172:]))["ts"] == 4 * 160
    with pytest.raises(ValueError, match="cannot hold"):
        s.next_into(bytearray(10), 1, 160, 0)
