"""The embedded pool: the first channel a program opens without a running pool starts
one inside the program (supervisor thread + worker processes that die with it)."""
from __future__ import annotations

import threading
from typing import Any

from rtudp.shmring.control import pool_name
from rtudp.shmring.errors import PoolRunningError
from rtudp.workers.channel_config import ChannelConfig
from rtudp.workers.registry import pool_state

from .channel import Channel
from .pool import Pool
from .pool_client import PoolClient

_pools: dict[str, Pool] = {}
_lock = threading.Lock()


def embedded_pool(pool: str | None = None, **pool_args: Any) -> Pool:
    """This program's pool ``pool`` (None: ``$RTUDP_POOL`` or ``"default"``), started on
    first use; it stops at exit (also on Ctrl-C / SIGTERM) and leaves nothing behind.

    PoolRunningError if another process already runs a pool of that name.
    """
    name = pool_name(pool)
    with _lock:
        p = _pools.get(name)
        if p is not None and p.running:
            return p
        if pool_state(name) == "running":
            raise PoolRunningError(
                f"pool {name!r} is run by another process: open channels on it with "
                f"rtudp.open_channel() or rtudp.PoolClient({name!r}), or pick another pool name")
        p = Pool(name, **pool_args).start()
        _pools[name] = p
        return p


def cleanup_on_sigterm() -> None:
    """From the main thread: SIGTERM stops this program's embedded pools even when they
    were started in another thread (where no signal handler can be set)."""
    with _lock:
        pools = [p for p in _pools.values() if p.running]
    for p in pools:
        p.cleanup_on_sigterm()


def channel_host(pool: str | None = None) -> Pool | PoolClient:
    """What opens channels of pool ``pool`` (None: ``$RTUDP_POOL`` or ``"default"``)
    for this program: its embedded pool if it runs one; else a new
    :class:`PoolClient` (the caller closes it) when another process runs that pool (a
    standalone pool, ``rtudp pool start``); else this program's embedded pool, started
    now.  Both have ``open_channel``, ``pause_channel``, ``resume_channel`` and
    ``close_channel``."""
    name = pool_name(pool)
    with _lock:
        ours = _pools.get(name)
        if (ours is None or not ours.running) and pool_state(name) == "running":
            return PoolClient(name)
    return embedded_pool(pool)


def open_channel(name: str | ChannelConfig, pool: str | None = None, **kwargs: Any) -> Channel:
    """Open channel ``name`` on pool ``pool``: through its supervisor when another
    process runs it (a standalone pool), else on this program's embedded pool (see
    :func:`embedded_pool`), started on first use.  Keyword arguments as
    ``Pool.open_channel`` (a :class:`ChannelConfig`'s fields); ``name`` may be a
    whole ChannelConfig."""
    host = channel_host(pool)
    if isinstance(host, PoolClient):
        with host:
            return host.open_channel(name, **kwargs)
    return host.open_channel(name, **kwargs)


__all__ = ["channel_host", "cleanup_on_sigterm", "embedded_pool", "open_channel"]
