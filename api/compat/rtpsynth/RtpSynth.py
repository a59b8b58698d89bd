"""``rtpsynth.RtpSynth`` on rtudp: the RTP packet generator (:class:`rtudp.rtp.RtpSynth`)."""
from rtudp.rtp import RtpSynth

__all__ = ["RtpSynth"]
