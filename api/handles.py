"""Which Python handle serves a channel of each kind.

``Pool.open_channel`` and ``PoolClient.open_channel`` return the handle of the
channel's kind, as the kind registry (:mod:`rtudp.shmring.kinds`) names it:
:class:`rtudp.Channel` for udp, the kind's own class for the others (each a class
with ``from_control(control, name, on_close=)`` and a kind check on attach).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

from rtudp.shmring.channel import ChannelSegment
from rtudp.shmring.control import ControlSegment, channel_segment_name
from rtudp.shmring.errors import ChannelNotFoundError, SegmentNotFoundError
from rtudp.shmring.impairment import Impairment
from rtudp.shmring.kinds import find, kind_name
from rtudp.shmring.segment import shm_path

T = TypeVar("T")


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
        kind = find(code)
        if kind is None:
            raise TypeError(f"channel {name!r} is a {kind_name(code)} channel, which has no "
                            f"Python handle")
        handle = kind.handle_class()
    except BaseException:
        control.close()
        raise
    return handle.from_control(control, name, on_close=on_close)


class Impairable:
    """What every channel handle offers of the impairment (its ``_seg`` is the
    channel's :class:`ChannelSegment`): change it while the channel runs, read it."""

    _seg: ChannelSegment
    name: str

    def set_impairment(self, impairment: Impairment | Mapping[str, Any] | None = None,
                       /, **fields: Any) -> Impairment | None:
        """Make the worker impair this channel's datagrams from now on:
        ``set_impairment(rtudp.Impairment(...))``, ``set_impairment(loss=0.1, seed=1)``, or
        ``set_impairment(None)`` to stop.  Returns the impairment as applied (a None
        seed replaced by the one drawn); ValueError/TypeError naming a bad value."""
        if fields:
            if impairment is not None:
                raise TypeError("set_impairment takes an Impairment or its fields as "
                                "keywords, not both")
            impairment = fields
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")
        return self._seg.set_impairment(Impairment.of(impairment))

    @property
    def impairment(self) -> Impairment | None:
        """The impairment the worker applies now (None: none)."""
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")
        return self._seg.impairment()


__all__ = ["Impairable", "check_kind", "handle_for", "open_handle"]
