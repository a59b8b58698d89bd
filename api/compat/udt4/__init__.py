"""PyUDT's ``udt4`` package on rtudp: ``import udt4`` becomes
``import rtudp.compat.udt4 as udt4``, ``from udt4 import pyudt`` becomes
``from rtudp.compat.udt4 import pyudt``.

The module functions, ``UDTSOCKET``, ``UDTepoll``, ``UDTException`` and UDT's
constants are :mod:`rtudp.udt.udt4`'s, re-exported.
"""
from rtudp.udt.udt4 import *  # noqa: F401,F403  (the udt4 namespace, as PyUDT's)

from . import pyudt
from .pyudt import UdtSocket
