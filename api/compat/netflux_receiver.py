"""Netflux's ``netflux_receiver`` on rtudp: ``NetfluxReceiver`` (a receive-only netflux
channel on a worker, with the reference's constructor and attributes) and
``ReceiverStats`` (:mod:`rtudp.netflux`)."""
from rtudp.netflux import NetfluxReceiver, ReceiverStats

__all__ = ["NetfluxReceiver", "ReceiverStats"]
