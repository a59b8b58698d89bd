"""A pool's service to other processes: their requests on the command ring, and the
channels of clients that died.

:class:`CommandService` runs the pool's command thread (:meth:`CommandService.serve`)
once the workers run: ``open`` (a :class:`~rtudp.workers.channel_config.ChannelConfig`
as :meth:`~ChannelConfig.to_dict` wrote it), ``close``, ``pause`` and ``resume``,
answered on the reply ring (:mod:`rtudp.workers.commands`).  A channel opened this way
belongs to the client process; when that process is gone the service closes it.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import psutil

from ..shmring.errors import ChannelNotFoundError
from .channel_config import ChannelConfig
from .channel_table import ChannelTable
from .commands import CommandServer
from .pool_context import HEARTBEAT_S, PoolContext

log = logging.getLogger("rtudp.workers")

#: how often the command thread looks for clients that died at most, once no request
#: has come for a while: it looks HEARTBEAT_S after a request, then at periods that
#: double up to this; and not at all while no channel belongs to a client
ORPHAN_LOOK_MAX_S = 1.0

Handler = Callable[[int, dict[str, Any]], dict[str, Any]]


class CommandService:
    """Serves the command ring of the pool ``ctx`` with the channels of ``table``."""

    def __init__(self, ctx: PoolContext, table: ChannelTable) -> None:
        self._ctx = ctx
        self._table = table
        self._server: CommandServer | None = None

    def serve(self) -> None:
        """The command thread: once the workers run, answer requests until the pool stops."""
        ctx = self._ctx
        while not ctx.started.wait(HEARTBEAT_S):
            if ctx.stopping.is_set():
                return
        if ctx.start_error is not None or ctx.control_segment is None:
            return
        table = self._table
        handlers = {"open": self._open, "close": self._by_name(table.close),
                    "pause": self._by_name(table.pause), "resume": self._by_name(table.resume)}
        server = CommandServer(ctx.control_segment, handlers, idle=self.close_orphans,
                               idle_s=HEARTBEAT_S, idle_max_s=ORPHAN_LOOK_MAX_S)
        self._server = server
        if ctx.stopping.is_set():
            return  # stop() may have looked for a server to wake before there was one
        try:
            server.serve(ctx.stopping)
        except Exception:  # noqa: BLE001 - a stopping pool unmaps the rings under us
            if not ctx.stopping.is_set():
                log.exception("pool %r: the command thread failed", ctx.name)

    def _open(self, pid: int, args: dict[str, Any]) -> dict[str, Any]:
        try:
            owner = psutil.Process(pid)
        except psutil.NoSuchProcess:
            raise ValueError(f"the client asking for channel {args.get('name')!r} (pid "
                             f"{pid}) is gone") from None
        ch = self._table.open(ChannelConfig.from_dict(args), owner=owner)
        return {"name": ch.name, "worker": ch.worker, "cpu": self._table.cpu(ch), "slot": ch.slot}

    @staticmethod
    def _by_name(action: Callable[[str], None]) -> Handler:
        """The handler of a request that names a channel: ``action(name)``."""
        def handle(_pid: int, args: dict[str, Any]) -> dict[str, Any]:
            name = args["name"]
            if not isinstance(name, str):
                raise TypeError(f"channel name must be a str, not {name!r}")
            action(name)
            return {"name": name}
        return handle

    def wake(self) -> None:
        """Wake the command thread (the pool stops: ``ctx.stopping`` is set)."""
        server = self._server
        if server is not None:
            server.wake()

    def close_orphans(self) -> bool:
        """Close the channels whose client (the process that asked for them) died;
        whether any channel that belongs to a client is left to watch."""
        owned = self._table.owned()
        alive: dict[int, bool] = {}  # each client looked at once, however many channels
        for ch in owned:
            assert ch.owner is not None
            pid = ch.owner.pid
            if pid not in alive:
                try:
                    alive[pid] = (ch.owner.is_running()
                                  and ch.owner.status() != psutil.STATUS_ZOMBIE)
                except psutil.Error:
                    alive[pid] = False
            if not alive[pid] and self._ctx.running:
                log.info("pool %r: closing channel %r: its client (pid %d) is gone",
                         self._ctx.name, ch.name, ch.owner.pid)
                try:
                    self._table.close(ch.name)
                except ChannelNotFoundError:
                    pass  # closed meanwhile
        return any(alive.values())


__all__ = ["CommandService"]
