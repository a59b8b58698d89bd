"""PyUDT's ``udt4.pyudt`` on rtudp: socket-like ``UdtSocket`` and ``Epoll``
(:mod:`rtudp.udt.pyudt`, re-exported)."""
from rtudp.udt.pyudt import Epoll, UdtSocket

__all__ = ["Epoll", "UdtSocket"]
