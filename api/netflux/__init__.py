"""Netflux: cyclic PLC-style exchange of process images, driven by the worker's clock.

Wire format: byte 0 the sender's 8-bit sequence number, byte 1 the last sequence
received from the partner (feedback), then the payload.  The worker channel (kind
``netflux``) sends on an absolute schedule, validates what arrives, runs the watchdog
and measures intervals, RTT and loss; this package writes and reads the images.

* :class:`NetfluxMain`: the reference implementation's API (``start``, ``stop``,
  ``set_send_data``, ``get_recv_data``, ``print_status``, ``receiver``, ``sender``,
  ``statistics``), plus ``wait_update`` and callbacks.
* :class:`NetfluxChannel`: the handle ``Pool.open_channel(..., kind="netflux")``
  returns (raw images, events, ``stats()``).
* :class:`NetfluxReceiver`, :class:`NetfluxSender`, :class:`NetfluxStatisticsTracker`:
  the reference's parts on their own (a receive-only monitor, a send-only sender).
* :class:`ImageCodec`: image definitions (a data class or a struct format + fields).
"""
from __future__ import annotations

from .channel import Image, NetfluxChannel
from .codec import ImageCodec, as_codec
from .data import NetfluxData, NetfluxStatistics, ReceiverStats, SenderStats
from .main import NetfluxIntervalWarning, NetfluxMain
from .parts import NetfluxReceiver, NetfluxSender, NetfluxStatisticsTracker

__all__ = ["Image", "ImageCodec", "NetfluxChannel", "NetfluxData", "NetfluxIntervalWarning",
           "NetfluxMain", "NetfluxReceiver", "NetfluxSender", "NetfluxStatistics",
           "NetfluxStatisticsTracker", "ReceiverStats", "SenderStats", "as_codec"]
