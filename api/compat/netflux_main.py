"""Netflux's ``netflux_main`` on rtudp: ``NetfluxMain`` and its default image
``NetfluxData`` (:mod:`rtudp.netflux`, re-exported)."""
from rtudp.netflux import NetfluxData, NetfluxMain

__all__ = ["NetfluxData", "NetfluxMain"]
