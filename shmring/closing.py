"""``with`` for the objects whose context is just "close it at the end" (taps, pool
clients, channel handles): the ``__enter__`` / ``__exit__`` pair, written once."""
from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound="Closing")


class Closing:
    """A base for a class with ``close()``: ``with obj:`` closes it at the end, however
    the block ends (the exception, if any, goes on)."""

    def close(self) -> None:
        """Release what the object holds (each subclass's own)."""
        raise NotImplementedError

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Closing"]
