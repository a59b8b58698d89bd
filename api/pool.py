"""``rtudp.Pool``: the supervisor of :mod:`rtudp.workers`, handing out :class:`Channel` objects."""
from __future__ import annotations

from typing import Any

from rtudp.shmring.control import ControlSegment
from rtudp.workers.supervisor import Pool as _SupervisorPool
from rtudp.workers.tunables import describe

from .channel import Channel
from .handles import handle_for


class Pool(_SupervisorPool):
    """A pool of pinned real-time workers (see :class:`rtudp.workers.supervisor.Pool`).

    ``pool.open_channel(...)`` returns a :class:`Channel` (for ``kind="udp"``, else the
    handle of that kind, see :mod:`rtudp.handles`); closing that channel also
    closes it in the pool.  Use it as a context manager, or call ``start()``/``stop()``.
    """

    def _make_channel(self, name: str, slot: int | None = None) -> Channel | Any:
        # the supervisor's handles share its mapping of the control segment
        own = self._ctx.live_control() if self._supervisor_identity() is not None else None
        control = (own.share() if own is not None and not own.closed
                   else ControlSegment.open(self.name))
        return handle_for(control, name, on_close=self._close_quietly, slot=slot)

    def _close_quietly(self, name: str) -> None:
        """A Channel from open_channel was closed: close it in the pool (if still open)."""
        if self.running and self._table.has(name):
            self.close_channel(name)

# the idle strategies and tunables, as C describes them
Pool.__doc__ = f"{Pool.__doc__}\n{describe(indent='    ')}\n"

__all__ = ["Pool"]
