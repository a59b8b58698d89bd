"""Compatibility with RtUDP and UDPCom: their names and methods, on rtudp.

    from rtudp.compat import create_rtudp, create_rtudp_pair, UdpCom

``socket`` endpoints run on the worker pool (``RtUdpSocket``); ``emulated`` ones on
an in-process network with optional impairments (``RtUdpEmulated``).  Both give
the same methods, errors and ``get_packet_stats()`` keys.
"""
from __future__ import annotations

from typing import Any

from ..compat_base import RtUdpBase, RtUdpType
from ..emulated import EmulatedNetwork, Impairment, RtUdpEmulated
from ..rtudp_socket import RtUdpSocket

IMPLEMENTATIONS = {"socket": RtUdpSocket, "emulated": RtUdpEmulated}


def create_rtudp(implementation: str, local_ip: str, local_port: int, remote_ip: str,
                 remote_port: int, **kwargs: Any) -> RtUdpBase:
    """An endpoint of ``implementation`` ("socket" or "emulated")."""
    impl = IMPLEMENTATIONS.get(implementation)  # type: ignore[arg-type]
    if impl is None:
        raise ValueError(f"unknown RtUDP implementation {implementation!r}: use one of "
                         f"{sorted(IMPLEMENTATIONS)}")
    return impl(local_ip, local_port, remote_ip, remote_port, **kwargs)


def create_rtudp_pair(implementation: str, ip1: str, port1: int, ip2: str, port2: int,
                      **kwargs: Any) -> tuple[RtUdpBase, RtUdpBase]:
    """A sender at (ip1, port1) aimed at a receiver at (ip2, port2), as RtUDP made them
    (direction 0 and 1 unless given)."""
    first = create_rtudp(implementation, ip1, port1, ip2, port2,
                         **{"direction": 0, **kwargs})
    second = create_rtudp(implementation, ip2, port2, ip1, port1,
                          **{"direction": 1, **kwargs})
    return first, second


class UdpCom(RtUdpSocket):
    """UDPCom's class: the same constructor and methods as RtUdpSocket."""


__all__ = ["EmulatedNetwork", "Impairment", "RtUdpBase", "RtUdpEmulated", "RtUdpSocket",
           "RtUdpType", "UdpCom", "create_rtudp", "create_rtudp_pair"]
