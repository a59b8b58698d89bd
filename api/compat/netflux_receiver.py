"""Netflux's ``netflux_receiver`` on rtudp: ``ReceiverStats`` (:mod:`rtudp.netflux`).

The receiving thread is the worker's: a ``NetfluxMain``'s ``receiver`` attribute
shows its state (``error``, ``error_message``, ``get_stats()``)."""
from rtudp.netflux import ReceiverStats

from ._absent import absent_names

__getattr__ = absent_names(__name__, {
    "NetfluxReceiver": "the worker receives; use NetfluxMain(...).receiver "
                       "(error, error_message, get_stats())"})

__all__ = ["ReceiverStats"]
