"""rtudp.shmring: shared-memory segments and the lock-free rings inside them.

The layout lives in ``csrc/rtudp_shm.h``; this package maps segments, validates
them in C, and gives Python the rings' producer and consumer sides.
"""
from .broadcast import BroadcastReader, BroadcastRecord, BroadcastRing
from .errors import (AddressInUseError, BackPressureError, BadSegmentError,
                     ChannelNotFoundError, ClaimExpiredError, PoolNotRunningError,
                     PoolRunningError, RtUdpError, SegmentNotFoundError, WorkerError)
from .hist import Histogram
from .mpsc import Claim, MpscRing, TxRecord
from .segment import Segment, shm_path, unlink, validate_name

__all__ = [
    "AddressInUseError", "ChannelNotFoundError", "PoolNotRunningError", "PoolRunningError",
    "WorkerError", "BackPressureError", "BadSegmentError", "BroadcastReader", "BroadcastRecord",
    "BroadcastRing", "Claim", "ClaimExpiredError", "Histogram", "MpscRing", "RtUdpError", "Segment",
    "SegmentNotFoundError", "TxRecord", "shm_path", "unlink", "validate_name",
]
