"""Rings that live inside a bigger segment (a channel's TX/RX rings, a pool's command
and reply rings), as opposed to a ring that is a segment of its own.

:class:`RingSpan` stands in for the ring's own segment; the segment that holds the
ring owns the mapping, validates the ring's place in it (in C) and unlinks it.
"""
from __future__ import annotations

from typing import Any

from .broadcast import BroadcastRing
from .mpsc import MpscRing


class RingSpan:
    """One ring's bytes inside a mapped segment.

    Closing it only forgets the ring; the containing segment owns the mapping.
    """

    created = False

    def __init__(self, name: str, mem: Any, avail: int) -> None:
        self.name = name
        self.mem = mem
        self.avail = avail
        self.closed = False

    def close(self) -> None:
        """Forget the ring (the mapping stays with its segment)."""
        self.closed = True

    def unlink(self) -> None:
        """The containing segment unlinks itself; nothing to do here."""


class SpanMpscRing(MpscRing):
    """An MPSC ring inside a segment (its geometry already validated by that segment)."""

    def _validate(self, segment: Any) -> tuple[Any, int]:
        return segment.mem, segment.avail


class SpanBroadcastRing(BroadcastRing):
    """A broadcast ring inside a segment (its geometry already validated by that segment)."""

    def _validate(self, segment: Any) -> tuple[Any, int]:
        return segment.mem, segment.avail


__all__ = ["RingSpan", "SpanBroadcastRing", "SpanMpscRing"]
