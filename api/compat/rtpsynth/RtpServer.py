"""``rtpsynth.RtpServer`` on rtudp: RTP I/O served by the pool's workers
(:mod:`rtudp.rtp.server`).  ``RtpChannel`` is the server's channel, as librtpsynth
names it (rtudp calls it ``RtpServerChannel``)."""
from rtudp.rtp import RtpQueueFullError
from rtudp.rtp.server import RtpServer, RtpServerChannel

#: librtpsynth's name for the channel ``RtpServer.create_channel`` returns
RtpChannel = RtpServerChannel

__all__ = ["RtpChannel", "RtpQueueFullError", "RtpServer"]
