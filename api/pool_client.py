"""``rtudp.PoolClient``: open and close channels on a pool another process runs
(``rtudp pool start``, or another program's embedded pool).

The request goes through the pool's command ring to its supervisor, which binds
the socket, creates the channel and hands it to a worker, exactly as
``Pool.open_channel`` does in the supervisor's own process.  A channel opened this
way belongs to this process: closing the returned :class:`Channel` closes it in the
pool, and the supervisor closes it by itself if this process dies.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from rtudp.shmring.closing import Closing
from rtudp.shmring.control import ControlSegment, pool_name
from rtudp.shmring.errors import PoolNotRunningError
from rtudp.shmring.segment import validate_name
from rtudp.workers.channel_config import ChannelConfig, takes_channel_config
from rtudp.workers.commands import DEFAULT_TIMEOUT_S, CommandClient

from .handles import handle_for


class PoolClient(Closing):
    """A handle on a running pool of another process, to open channels on it.

    ``pool`` None: ``$RTUDP_POOL`` or ``"default"``.  PoolNotRunningError if no live
    supervisor runs it.  ``timeout``: how long to wait for the supervisor's answer.
    """

    def __init__(self, pool: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.pool = pool_name(pool)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self.timeout = float(timeout)
        control = ControlSegment.open(self.pool)
        if not control.supervisor_alive():
            control.close()
            raise PoolNotRunningError(f"pool {self.pool!r}: its supervisor (pid "
                                      f"{control.supervisor_pid}) is gone")
        self._control: ControlSegment | None = control
        self._client = CommandClient(control, self.timeout)

    def _check_open(self) -> ControlSegment:
        if self._control is None:
            raise ValueError(f"PoolClient of pool {self.pool!r} is closed")
        return self._control

    @takes_channel_config
    def open_channel(self, *args: Any, **params: Any) -> Any:
        """Have the supervisor open a channel (arguments as ``Pool.open_channel``: a
        :class:`~rtudp.workers.channel_config.ChannelConfig`'s fields, or one), then
        attach to it.  The config is checked here, sent as it is, and checked again by
        the supervisor, which also checks what only the pool knows (its CPUs, the name
        free, the address): the same errors come back here."""
        config = ChannelConfig.of(*args, **params)
        self._check_open()
        reply = self._client.call("open", config.to_dict())
        slot = reply.get("slot")
        try:
            return handle_for(ControlSegment.open(self.pool), config.name, self._close_quietly,
                              slot=slot if isinstance(slot, int) else None)
        except BaseException:
            self._close_quietly(config.name)
            raise

    def open_channels(self, configs: Iterable[ChannelConfig | Mapping[str, Any]]) -> list[Any]:
        """Open many channels (as ``Pool.open_channels``: ChannelConfigs or mappings of
        their fields): all of them, or, the first error raised, none.  Each is one
        request to the supervisor."""
        opened: list[Any] = []
        try:
            for c in configs:
                opened.append(self.open_channel(c) if isinstance(c, ChannelConfig)
                              else self.open_channel(**c))
        except BaseException:
            for ch in opened:
                ch.close()  # closes it in the pool too
            raise
        return opened

    def close_channel(self, name: str) -> None:
        """Close channel ``name`` in the pool (ChannelNotFoundError if it is not open)."""
        validate_name(name)
        self._check_open()
        self._client.call("close", {"name": name})

    def pause_channel(self, name: str) -> None:
        """Take channel ``name`` off its worker (as ``Pool.pause_channel``): nothing is
        sent or read until :meth:`resume_channel`; what is queued stays queued."""
        validate_name(name)
        self._check_open()
        self._client.call("pause", {"name": name})

    def resume_channel(self, name: str) -> None:
        """Give a paused channel back to its worker (it sends what was queued)."""
        validate_name(name)
        self._check_open()
        self._client.call("resume", {"name": name})

    def _close_quietly(self, name: str) -> None:
        """A Channel we opened was closed: close it in the pool, if the pool still runs."""
        try:
            ctl = ControlSegment.open(self.pool)
        except PoolNotRunningError:
            return
        try:
            if ctl.supervisor_alive() and ctl.find_channel(name) is not None:
                CommandClient(ctl, self.timeout).call("close", {"name": name})
        except Exception:  # noqa: BLE001 - closing must not raise: the pool may be stopping
            pass
        finally:
            ctl.close()

    def channels(self) -> list[str]:
        """Names of the pool's open channels."""
        return self._check_open().channel_names()

    def close(self) -> None:
        """Unmap the pool's control segment (channels opened stay open until closed)."""
        if self._control is not None:
            self._control.close()
            self._control = None

    def __repr__(self) -> str:
        return f"<PoolClient pool={self.pool!r}{' closed' if self._control is None else ''}>"


__all__ = ["PoolClient"]
