"""``rtpsynth.RtpUtils`` on rtudp: G.711 and resampling, as the class and as functions."""
from rtudp.rtp import RtpUtils, linear2ulaw, resample_linear, ulaw2linear

__all__ = ["RtpUtils", "linear2ulaw", "resample_linear", "ulaw2linear"]
