"""``with`` for the objects whose context is just "close it at the end" (taps, pool
clients, channel handles): the ``__enter__`` / ``__exit__`` pair, written once."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

T = TypeVar("T", bound="Closing")


class Closing(ABC):
    """A base for a class with ``close()``: ``with obj:`` closes it at the end, however
    the block ends (the exception, if any, goes on)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the object holds (each subclass's own)."""

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Closing"]
