"""Netflux's ``netflux_sender`` on rtudp: ``NetfluxSender`` (a send-only netflux channel
on a worker, which sends on its own clock, with the reference's constructor and
attributes) and ``SenderStats`` (:mod:`rtudp.netflux`)."""
from rtudp.netflux import NetfluxSender, SenderStats

__all__ = ["NetfluxSender", "SenderStats"]
