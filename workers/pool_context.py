"""What the parts of a pool share: its name, its lock, whether it runs, its control segment.

:class:`rtudp.workers.supervisor.Pool` makes one :class:`PoolContext` and hands it to
its parts: the :class:`~rtudp.workers.watcher.Watcher` (worker processes, restarts),
the :class:`~rtudp.workers.channel_table.ChannelTable` (channels on workers) and the
:class:`~rtudp.workers.command_service.CommandService` (requests of other processes).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from ..shmring.control import ControlSegment
from ..shmring.errors import PoolNotRunningError
from ..shmring.segment import shm_path

#: the pool's heartbeat period, and how often the command thread looks for orphans
HEARTBEAT_S = 0.1
#: how long a worker may take to report RUNNING before it is given up (killed; a
#: restart is retried).  Long: a start slowed by a busy host is not sped up by being
#: begun again
START_TIMEOUT_S = 30.0
#: how long a worker may take to report RUNNING before the wait is logged, with where
#: the worker's threads wait
START_SLOW_S = 5.0
#: how long a worker may take to answer a command (ADD, REMOVE)
REPLY_TIMEOUT_S = 5.0
#: how long stopping workers may take before they are killed
STOP_GRACE_S = 2.0


@dataclass(eq=False)
class PoolContext:
    """A pool's shared state.  ``lock`` guards the worker and channel tables and the
    control segment's lifetime; ``stopping`` is set once :meth:`Pool.stop` begins;
    ``started`` once the workers run (or failed to start: ``start_error``)."""

    name: str
    #: mode of the pool's segments (0600, or 0660 with a group)
    mode: int = 0o600
    #: group the segments are given, or None
    gid: int | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    stopping: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    start_error: BaseException | None = None
    #: the control segment from start() until the pool is released
    control_segment: ControlSegment | None = None

    @property
    def running(self) -> bool:
        """True between a successful start and the beginning of stop."""
        return self.control_segment is not None and not self.stopping.is_set()

    def check_running(self) -> None:
        """PoolNotRunningError unless the pool runs."""
        if not self.running:
            raise PoolNotRunningError(f"pool {self.name!r} is not running (call start())")

    @property
    def control(self) -> ControlSegment:
        """The control segment (PoolNotRunningError when stopped)."""
        self.check_running()
        assert self.control_segment is not None
        return self.control_segment

    def live_control(self) -> ControlSegment | None:
        """The control segment, or None once the pool stops (call with ``lock`` held:
        then it stays mapped until the lock is released)."""
        return None if self.stopping.is_set() else self.control_segment

    def share(self, segment_name: str) -> None:
        """Give a new segment the pool's group, if it has one."""
        if self.gid is not None:
            os.chown(shm_path(segment_name), -1, self.gid)


__all__ = ["HEARTBEAT_S", "PoolContext", "REPLY_TIMEOUT_S", "START_SLOW_S", "START_TIMEOUT_S",
           "STOP_GRACE_S"]
