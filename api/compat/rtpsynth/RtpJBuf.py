"""``rtpsynth.RtpJBuf`` on rtudp: the jitter buffer and its frame types
(:class:`rtudp.rtp.RtpJBuf`)."""
from rtudp.rtp import Erasure, Frame, RTPFrameType, RTPParseError, RtpJBuf

__all__ = ["Erasure", "Frame", "RTPFrameType", "RTPParseError", "RtpJBuf"]
