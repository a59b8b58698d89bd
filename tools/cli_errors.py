"""How the ``rtudp`` commands that attach to one channel of a running pool (``stats``,
``tap``) report failure: one line on stderr naming the command, exit status 1."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, TypeVar

from rtudp.shmring.errors import RtUdpError, SegmentNotFoundError
from rtudp.shmring.observe import pool_names

T = TypeVar("T")

#: what attaching to a channel may raise that is the user's to fix, not a bug: no such
#: pool or channel, a segment of another layout, no permission, a bad name
ATTACH_ERRORS = (RtUdpError, PermissionError, ValueError, MemoryError)


def cli_error(cmd: str, msg: str) -> int:
    """Print ``rtudp CMD: error: MSG`` on stderr; the exit status (1)."""
    print(f"rtudp {cmd}: error: {msg}", file=sys.stderr)
    return 1


def attach_error(cmd: str, exc: BaseException, pool: str, channel: str) -> int:
    """Report ``exc`` (one of :data:`ATTACH_ERRORS`) raised attaching to ``channel`` of
    ``pool``: a missing pool or channel by its names, anything else by its own message."""
    if isinstance(exc, SegmentNotFoundError):
        running = pool_names()
        if pool not in running:
            return cli_error(cmd, f"no pool {pool!r} is running (running: "
                                  f"{', '.join(running) or 'none'}; --pool names another)")
        return cli_error(cmd, f"no channel {channel!r} in pool {pool!r}")
    return cli_error(cmd, str(exc))


def attach(cmd: str, args: argparse.Namespace, opener: Callable[[str, str], T]) -> Optional[T]:
    """``opener(args.pool, args.channel)``; None after a failure to attach
    (:data:`ATTACH_ERRORS`) is reported (the command then exits 1)."""
    try:
        return opener(args.pool, args.channel)
    except ATTACH_ERRORS as exc:
        attach_error(cmd, exc, args.pool, args.channel)
        return None


__all__ = ["ATTACH_ERRORS", "attach", "attach_error", "cli_error"]
