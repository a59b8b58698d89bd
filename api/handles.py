"""Which Python handle serves a channel of each kind.

``Pool.open_channel`` and ``PoolClient.open_channel`` return the handle of the
channel's kind, as the kind registry (:mod:`rtudp.shmring.kinds`) names it:
:class:`rtudp.Channel` for udp, the kind's own class for the others (each a class
with ``from_control(control, name, on_close=)`` and a kind check on attach).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

from rtudp.shmring.channel import ChannelSegment
from rtudp.shmring.closing import Closing
from rtudp.shmring.control import ControlSegment, channel_segment_name
from rtudp.shmring.errors import BadSegmentError, ChannelNotFoundError, SegmentNotFoundError
from rtudp.shmring.impairment import Impairment
from rtudp.shmring.kinds import find, kind_name
from rtudp.shmring.segment import shm_path

T = TypeVar("T")


class ChannelHandle(Closing):
    """What the handle of every kind shares: ``closed``, the pool side of closing
    (:meth:`_release`: unmap, and tell the pool through ``on_close``) and ``with``.
    A handle sets ``name``, ``_seg`` (its ChannelSegment), ``_control`` and
    ``_on_close``, and its ``close()`` ends with :meth:`_release`."""

    name: str
    _seg: ChannelSegment
    _control: ControlSegment
    _on_close: Callable[[str], None] | None
    _last_worker: int = -1

    @property
    def worker(self) -> int:
        """The index of the worker serving this channel now (the pool moves channels
        between workers as their load asks; once closed, the last that served it)."""
        if not self._seg.closed:
            self._last_worker = int(self._seg.block.worker)
        return self._last_worker

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._seg.closed

    def _release(self) -> None:
        """Unmap the channel and the control segment; the handle from
        ``Pool.open_channel`` also has the pool close the channel (once)."""
        if not self._seg.closed:
            self.worker  # noqa: B018 - kept for after the close
        self._seg.close()
        self._control.close()
        if self._on_close is not None:
            cb, self._on_close = self._on_close, None
            cb(self.name)


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
               on_close: Callable[[str], None] | None = None, slot: int | None = None) -> Any:
    """The handle of channel ``name``'s kind, owning ``control`` (closed on failure).
    ``slot``: the table slot the channel was opened in, if known (looked at first)."""
    try:
        index = control.find_channel(name, hint=slot)
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
        """Make the worker impair this channel's datagrams from now on.

        ``set_impairment(loss=0.1, seed=1)`` changes only the fields given and keeps the
        others as they are (none set yet: the defaults); ``set_impairment(
        rtudp.Impairment(...))`` (or a dict of its fields) replaces the whole
        impairment; ``set_impairment(None)`` stops it.  Returns the impairment as
        applied (a None seed replaced by the one drawn); ValueError/TypeError naming a
        bad value."""
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")
        if fields:
            if impairment is not None:
                raise TypeError("set_impairment takes an Impairment or its fields as "
                                "keywords, not both")
            Impairment.of(fields)  # unknown or bad fields named before anything changes
            current = self._seg.impairment()
            impairment = {**(current.to_dict() if current else {}), **fields}
        return self._seg.set_impairment(Impairment.of(impairment))

    @property
    def impairment(self) -> Impairment | None:
        """The impairment the worker applies now (None: none)."""
        if self._seg.closed:
            raise ValueError(f"channel {self.name!r} is closed")
        return self._seg.impairment()


class KindHandle(ChannelHandle, Impairable):
    """What the handles of kinds with their own API (not the rings') share, beyond
    :class:`ChannelHandle`: the segment's name and kind checked on attach,
    ``from_control``, ``close()`` (the kind's views, then :meth:`_release`).  A subclass
    sets ``KIND`` / ``HANDLE_NAME`` and makes its views in :meth:`_open_views` (dropped
    again in :meth:`_drop_views`)."""

    KIND: int = -1
    HANDLE_NAME = "rtudp.KindHandle"

    def __init__(self, pool: str, name: str, control: ControlSegment, seg: ChannelSegment,
                 on_close: Callable[[str], None] | None = None) -> None:
        self._open_views(self._attach(pool, name, control, seg, on_close))

    def _open_views(self, cfg: dict[str, Any]) -> None:
        """Check the kind's area in ``self._seg`` and make the handle's views into it;
        ``cfg`` is the channel's configuration (``ChannelSegment.config()``)."""

    def _attach(self, pool: str, name: str, control: ControlSegment, seg: ChannelSegment,
                on_close: Callable[[str], None] | None) -> dict[str, Any]:
        """Check the segment is channel ``name`` of this kind; its configuration."""
        cfg = seg.config()
        if cfg["name"] != name:
            raise BadSegmentError(f"channel segment {shm_path(seg.name)} names channel "
                                  f"{cfg['name']!r}, not {name!r}")
        check_kind(name, pool, cfg["kind"], self.KIND, self.HANDLE_NAME)
        self.pool = pool
        self.name = name
        self._control = control
        self._seg = seg
        self._on_close = on_close
        return cfg

    @classmethod
    def from_control(cls: type[T], control: ControlSegment, name: str,
                     on_close: Callable[[str], None] | None = None) -> T:
        """Map channel ``name`` of the pool ``control`` belongs to; the handle owns
        ``control`` (closed again if this fails)."""
        return open_handle(cls, control, name, on_close)

    def _check_open(self) -> None:
        if self._seg.closed:
            raise ValueError(f"{kind_name(self.KIND)} channel {self.name!r} is closed")

    def _drop_views(self) -> None:
        """Drop the handle's views into the segment (before it is unmapped)."""

    #: why the kind's handle has no numpy batches (its traffic is not datagram records)
    NO_BATCH = "its traffic is not datagram records"

    def recv_batch(self, max_n: int = 1024, timeout: float | None = None) -> Any:
        """Not for this kind: TypeError naming it and why (rtudp.Channel.recv_batch is
        for kinds whose RX ring holds datagrams: udp, rtp)."""
        raise TypeError(f"{kind_name(self.KIND)} channel {self.name!r} has no recv_batch: "
                        f"{self.NO_BATCH}")

    def send_batch(self, buffer: Any, lengths: Any = None, at_ns: Any = None) -> int:
        """Not for this kind: TypeError naming it and why."""
        raise TypeError(f"{kind_name(self.KIND)} channel {self.name!r} has no send_batch: "
                        f"{self.NO_BATCH}")

    def close(self) -> None:
        """Unmap the channel (idempotent); the handle from ``Pool.open_channel`` also
        closes the channel in the pool."""
        if self._seg.closed:
            return
        self._drop_views()
        self._release()


__all__ = ["ChannelHandle", "Impairable", "KindHandle", "check_kind", "handle_for", "open_handle"]
