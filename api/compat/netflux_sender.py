"""Netflux's ``netflux_sender`` on rtudp: ``SenderStats`` (:mod:`rtudp.netflux`).

The sending thread is the worker's: a ``NetfluxMain``'s ``sender`` attribute shows
its state (``error``, ``error_message``, ``get_stats()``)."""
from rtudp.netflux import SenderStats

from ._absent import absent_names

__getattr__ = absent_names(__name__, {
    "NetfluxSender": "the worker sends on its own clock; use NetfluxMain(...).sender "
                     "(error, error_message, get_stats()) and set_send_data()"})

__all__ = ["SenderStats"]
