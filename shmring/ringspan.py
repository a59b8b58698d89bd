"""Rings that live inside a bigger segment (a channel's TX/RX rings, a pool's command
and reply rings), as opposed to a ring that is a segment of its own.

:class:`RingSpan` stands in for the ring's own segment; the segment that holds the
ring owns the mapping, validates the ring's place in it (in C) and unlinks it.
"""
from __future__ import annotations

from typing import Any, Generic, TypeVar

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


_Ring = TypeVar("_Ring", SpanMpscRing, SpanBroadcastRing)


class LazyRing(Generic[_Ring]):
    """A ring attribute of a segment object (with ``segment`` and the validated
    ``_spans``), made from ``_spans[index]`` when first read: many users of a segment
    (the pool's own copy of a channel's, a channel handle's copy of the control
    segment) never use its rings, and making a ring's object costs more than mapping
    the segment.  Once the segment is closed none can be made: its memory is unmapped."""

    def __init__(self, index: int, ring: type[_Ring], doc: str) -> None:
        self.index = index
        self.ring = ring
        self.__doc__ = doc
        self.attr = ""  # its name in the owner class (__set_name__)

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        if obj.segment.closed:
            raise ValueError(f"{obj!r}: closed, its rings are gone")
        # kept under the attribute's own name: later reads find it without us
        made = obj.__dict__[self.attr] = self.ring(obj._spans[self.index])
        return made

    @staticmethod
    def close_all(obj: Any) -> None:
        """Close the rings of ``obj`` made so far (before its segment is unmapped)."""
        for klass in type(obj).__mro__:
            for name, attr in vars(klass).items():
                if isinstance(attr, LazyRing) and name in obj.__dict__:
                    obj.__dict__[name].close()
