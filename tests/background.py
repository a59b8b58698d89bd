"""A helper that runs its own loop on a daemon thread while a test drives rtudp."""
from __future__ import annotations

import threading
from typing import TypeVar

_B = TypeVar("_B", bound="Background")


class Background:
    """Runs :meth:`_run` on a daemon thread from :meth:`start` until :meth:`stop`, which
    sets ``self._stop`` (the loop's condition), joins the thread and then :meth:`_close`
    releases what the helper holds. A ``with`` block starts and stops it."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self: _B) -> _B:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._close()

    def __enter__(self: _B) -> _B:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Release sockets and the like once the loop has ended (nothing by default)."""
