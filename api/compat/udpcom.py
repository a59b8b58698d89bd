"""UDPCom's ``udpcom`` on rtudp: ``from udpcom import UdpCom`` becomes
``from rtudp.compat.udpcom import UdpCom`` (the class of :mod:`rtudp.compat`)."""
from . import UdpCom

__all__ = ["UdpCom"]
