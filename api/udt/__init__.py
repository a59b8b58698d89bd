"""UDT4 in rtudp's workers: ``rtudp.udt.udt4`` (PyUDT's module API, Python 3, bytes)
and ``rtudp.udt.pyudt`` (socket-like objects), over :class:`UdtChannel`, a UDP port of
UDT sockets served by a worker (docs/udt.md)."""
from .channel import UdtChannel

__all__ = ["UdtChannel"]
