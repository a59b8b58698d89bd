"""Netflux's ``netflux_statistics`` on rtudp: ``NetfluxStatistics`` (:mod:`rtudp.netflux`).

The worker measures intervals, RTT and loss: ``NetfluxMain(...).statistics.get_stats()``
returns them."""
from rtudp.netflux import NetfluxStatistics

from ._absent import absent_names

__getattr__ = absent_names(__name__, {
    "NetfluxStatisticsTracker": "the worker measures; use "
                                "NetfluxMain(...).statistics.get_stats()"})

__all__ = ["NetfluxStatistics"]
