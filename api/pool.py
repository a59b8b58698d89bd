"""``rtudp.Pool``: the supervisor of :mod:`rtudp.workers`, handing out :class:`Channel` objects."""
from __future__ import annotations

from rtudp.shmring.control import ControlSegment
from rtudp.workers.supervisor import Pool as _SupervisorPool

from .channel import Channel


class Pool(_SupervisorPool):
    """A pool of pinned real-time workers (see :class:`rtudp.workers.supervisor.Pool`).

    ``pool.open_channel(...)`` returns a :class:`Channel`; closing that channel also
    closes it in the pool.  Use it as a context manager, or call ``start()``/``stop()``.
    """

    def _make_channel(self, name: str) -> Channel:
        return Channel.from_control(ControlSegment.open(self.name), name,
                                    on_close=self._close_quietly)

    def _close_quietly(self, name: str) -> None:
        """A Channel from open_channel was closed: close it in the pool (if still open)."""
        if self.running and name in self.channels():
            self.close_channel(name)


__all__ = ["Pool"]
