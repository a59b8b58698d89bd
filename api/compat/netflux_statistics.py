"""Netflux's ``netflux_statistics`` on rtudp: ``NetfluxStatisticsTracker`` (what the
worker measures of a netflux channel, with the reference's constructor and methods)
and ``NetfluxStatistics`` (:mod:`rtudp.netflux`)."""
from rtudp.netflux import NetfluxStatistics, NetfluxStatisticsTracker

__all__ = ["NetfluxStatistics", "NetfluxStatisticsTracker"]
