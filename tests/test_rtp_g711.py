"""G.711 and resampling of rtudp.rtp, bit-exact against audioop (and rtpsynth when installed)."""
from __future__ import annotations

import array
import importlib.util
import random
import struct
import sys
import warnings

import pytest

from rtudp import rtp

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # audioop-lts provides it on Python >= 3.13

ALL_PCM = array.array("h", range(-32768, 32768))
ALL_CODES = bytes(range(256))


def test_ulaw_encode_every_sample_matches_audioop() -> None:
    assert rtp.linear2ulaw(ALL_PCM) == audioop.lin2ulaw(ALL_PCM.tobytes(), 2)


def test_alaw_encode_every_sample_matches_audioop() -> None:
    assert rtp.linear2alaw(ALL_PCM) == audioop.lin2alaw(ALL_PCM.tobytes(), 2)


def test_decode_every_code_matches_audioop() -> None:
    assert rtp.ulaw2linear(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)
    assert rtp.alaw2linear(ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES, 2)
    assert rtp.ulaw2pcm(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert rtp.alaw2pcm(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def test_scalar_forms_agree_with_arrays() -> None:
    for s in (-32768, -1, 0, 1, 1234, 32767):
        assert rtp.linear2ulaw(s) == rtp.linear2ulaw(array.array("h", [s]))[0]
        assert rtp.linear2alaw(s) == rtp.linear2alaw(array.array("h", [s]))[0]
    for c in (0, 0x7F, 0x80, 0xFF):
        assert rtp.ulaw2linear(c) == rtp.ulaw2linear(bytes([c]))[0]
    # bytes input: PCM16 in native byte order, like audioop
    assert rtp.linear2ulaw(struct.pack("=h", -300)) == bytes([rtp.linear2ulaw(-300)])


def test_bad_input_names_the_value() -> None:
    with pytest.raises(ValueError, match="40000"):
        rtp.linear2ulaw(40000)
    with pytest.raises(ValueError, match="256"):
        rtp.ulaw2linear(256)
    with pytest.raises(ValueError, match="3 bytes"):
        rtp.linear2ulaw(b"abc")
    with pytest.raises(ValueError, match="0"):
        rtp.resample_linear(array.array("h", [1]), 0, 8000)


def test_rtputils_names() -> None:
    assert rtp.RtpUtils.linear2ulaw(0) == 0xFF
    assert isinstance(rtp.RtpUtils.ulaw2linear(b"\xff"), array.array)
    assert rtp.RtpUtils.resample_linear(array.array("h", [0, 100]), 8000, 16000).tolist() == \
        [0, 50, 100, 100]


@pytest.mark.skipif(importlib.util.find_spec("rtpsynth") is None,
                    reason="rtpsynth not installed (pip install 'rtudp[test]')")
def test_resample_matches_rtpsynth() -> None:
    from rtpsynth.RtpUtils import resample_linear as theirs
    rng = random.Random(5)
    for n, a, b in ((160, 8000, 16000), (320, 16000, 8000), (480, 48000, 8000), (7, 8000, 44100),
                    (0, 8000, 16000), (1, 48000, 8000)):
        pcm = array.array("h", (rng.randint(-32768, 32767) for _ in range(n)))
        assert rtp.resample_linear(pcm, a, b) == theirs(pcm, a, b), (n, a, b)


if sys.version_info >= (3, 13):  # pragma: no cover - documents where audioop comes from
    assert importlib.util.find_spec("audioop") is not None, "install audioop-lts"
