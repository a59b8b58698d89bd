"""``rtpsynth.RtpProc`` on rtudp: the periodic processing scheduler (:mod:`rtudp.rtp.proc`)."""
from rtudp.rtp import ChannelProcError
from rtudp.rtp.proc import RtpProc, RtpProcChannel

__all__ = ["ChannelProcError", "RtpProc", "RtpProcChannel"]
