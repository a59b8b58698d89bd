"""Which Python handle serves a channel of each kind.

``Pool.open_channel`` and ``PoolClient.open_channel`` return the handle of the
channel's kind: :class:`rtudp.Channel` for udp, the kind's own class for the others
(each a class with ``from_control(control, name, on_close=)`` and a kind check on
attach).  Named lazily, as "module:Class", so this module imports none of them.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar

from rtudp.shmring._native import lib
from rtudp.shmring.channel import ChannelSegment
from rtudp.shmring.control import ControlSegment, channel_segment_name
from rtudp.shmring.errors import ChannelNotFoundError, SegmentNotFoundError
from rtudp.shmring.segment import shm_path
from rtudp.workers.kinds import kind_name

T = TypeVar("T")

#: kind code -> "module:Class" of its handle
HANDLES: dict[int, str] = {
    lib.RTUDP_KIND_UDP: "rtudp.channel:Channel",
    lib.RTUDP_KIND_RTP: "rtudp.rtp.channel:RtpChannel",
    lib.RTUDP_KIND_NETFLUX: "rtudp.netflux.channel:NetfluxChannel",
}


def check_kind(channel: str, pool: str, code: int, expected: int, handle: str) -> None:
    """TypeError if channel ``channel`` is of kind ``code`` where ``handle`` serves
    ``expected`` (attaching the wrong handle would misread its rings)."""
    if code != expected:
        raise TypeError(f"channel {channel!r} of pool {pool!r} is a {kind_name(code)} "
                        f"channel; {handle} serves {kind_name(expected)} channels only")


def open_handle(cls: Callable[..., T], control: ControlSegment, name: str,
                on_close: Callable[[str], None] | None = None) -> T:
    """``cls(pool, name, control, segment, on_close)`` on channel ``name``'s segment of the
    pool ``control`` belongs to; the handle owns ``control`` (everything opened is closed
    again if this fails).  What every handle's ``from_control`` does."""
    try:
        full = channel_segment_name(control.pool, name)
        try:
            seg = ChannelSegment.open(full)
        except SegmentNotFoundError:
            raise ChannelNotFoundError(f"channel {name!r} of pool {control.pool!r} was "
                                       f"closed (no {shm_path(full)})") from None
        try:
            return cls(control.pool, name, control, seg, on_close)
        except BaseException:
            seg.close()
            raise
    except BaseException:
        control.close()
        raise


def handle_for(control: ControlSegment, name: str,
               on_close: Callable[[str], None] | None = None) -> Any:
    """The handle of channel ``name``'s kind, owning ``control`` (closed on failure)."""
    try:
        index = control.find_channel(name)
        if index is None:
            raise ChannelNotFoundError(f"no channel {name!r} in pool {control.pool!r}")
        code = control.channel_kind(index)
        target = HANDLES.get(code)
        if target is None:
            raise TypeError(f"channel {name!r} is a {kind_name(code)} channel, which has no "
                            f"Python handle")
        module, cls = target.split(":")
        handle = getattr(importlib.import_module(module), cls)
    except BaseException:
        control.close()
        raise
    return handle.from_control(control, name, on_close=on_close)


__all__ = ["HANDLES", "check_kind", "handle_for", "open_handle"]
