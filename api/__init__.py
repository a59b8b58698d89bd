"""rtudp: a real-time UDP engine for Python.

Native worker processes own the sockets; Python processes talk to them through
lock-free rings in POSIX shared memory.  This is what users import.
"""
from rtudp.shmring import (BackPressureError, BadSegmentError, BroadcastReader, BroadcastRecord,
                           BroadcastRing, ClaimExpiredError, MpscRing, RtUdpError,
                           SegmentNotFoundError, TxRecord)

__version__ = "0.1.0"

__all__ = [
    "BackPressureError", "BadSegmentError", "BroadcastReader", "BroadcastRecord",
    "BroadcastRing", "ClaimExpiredError", "MpscRing", "RtUdpError", "SegmentNotFoundError",
    "TxRecord", "__version__",
]
