"""rtudp: a real-time UDP engine for Python.

Native worker processes own the sockets; Python processes talk to them through
lock-free rings in POSIX shared memory.  This is what users import:
``rtudp.Pool`` (start workers, open channels: :class:`ChannelConfig` says how),
``rtudp.attach`` (use a channel from any process), :class:`Channel` and
:class:`Packet`, :class:`RealtimeWaits` (a thread that waits at real-time priority),
:func:`lock_memory` (a process's memory resident before its deadlines),
and the errors (all derive from :class:`RtUdpError`).
"""
from rtudp.shmring import (BackPressureError, BadSegmentError, BroadcastReader, BroadcastRecord,
                           BroadcastRing, ClaimExpiredError, MpscRing, RtUdpError,
                           SegmentNotFoundError, TxRecord)
from rtudp.shmring.errors import (AddressInUseError, ChannelClosedError, ChannelNotFoundError,
                                  PoolNotRunningError, PoolRunningError, WorkerError)
from rtudp.workers.channel_config import ChannelConfig
from rtudp.workers.supervisor import (KernelFallbackWarning, MemoryLockWarning, PrivilegeWarning,
                                     RtPriorityWarning)

from .channel import Channel, Packet, attach
from .compat import (EmulatedNetwork, Impairment, RtUdpBase, RtUdpEmulated, RtUdpSocket, RtUdpType,
                     UdpCom, create_rtudp, create_rtudp_pair)
from .embedded import embedded_pool, open_channel
from .pool import Pool
from .pool_client import PoolClient
from .realtime import MemoryLock, RealtimeWaitCounts, RealtimeWaits, lock_memory

from ._version import __version__

__all__ = [
    "EmulatedNetwork", "Impairment", "RtUdpBase", "RtUdpEmulated", "RtUdpSocket", "RtUdpType",
    "UdpCom", "create_rtudp", "create_rtudp_pair",
    "AddressInUseError", "BackPressureError", "BadSegmentError", "BroadcastReader",
    "BroadcastRecord", "BroadcastRing", "Channel", "ChannelClosedError", "ChannelConfig",
    "ChannelNotFoundError", "MemoryLockWarning", "PrivilegeWarning",
    "ClaimExpiredError", "KernelFallbackWarning",
    "MemoryLock", "MpscRing", "Packet", "Pool", "PoolClient", "PoolNotRunningError", "PoolRunningError",
    "RealtimeWaitCounts", "RealtimeWaits", "RtPriorityWarning",
    "RtUdpError", "SegmentNotFoundError", "TxRecord", "WorkerError", "__version__", "attach", "embedded_pool",
    "lock_memory", "open_channel",
]
