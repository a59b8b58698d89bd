"""librtpsynth's RtpUtils on rtudp: resample PCM16 from 16 kHz to 8 kHz, encode it to
G.711 mu-law and decode it back, as the class methods and as module functions.

    python examples/rtpsynth_utils.py
"""
import math
from array import array

from rtudp.compat.rtpsynth.RtpUtils import RtpUtils, linear2ulaw, ulaw2linear

tone = array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(320)))
narrow = RtpUtils.resample_linear(tone, 16000, 8000)
ulaw = RtpUtils.linear2ulaw(narrow)
back = ulaw2linear(ulaw)
worst = max(abs(a - b) for a, b in zip(narrow, back))
print(f"resampled {len(tone)} samples at 16 kHz to {len(narrow)} at 8 kHz")
print(f"mu-law: {len(ulaw)} bytes; decoded back, worst error {worst} of 8000")
print(f"one sample: linear2ulaw(1000) = {linear2ulaw(1000)}, "
      f"back to {ulaw2linear(linear2ulaw(1000))}")
