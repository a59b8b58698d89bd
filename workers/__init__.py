"""rtudp.workers: the worker pool (spawn, pin, prioritise, watch, restart, clean up).

:class:`Pool` is the supervisor; :mod:`.registry` tells live pools from stale ones
and cleans the latter (for the CLI); ``worker_path`` finds the native
``rtudp-worker`` program that the build installs inside this package.
"""
from .binary import WORKER_NAME, worker_path, worker_version
from .registry import clean_stale, list_pools, pool_state, segment_files
from .supervisor import MemoryLockWarning, Pool, PrivilegeWarning, RtPriorityWarning

__all__ = ["MemoryLockWarning", "Pool", "PrivilegeWarning", "RtPriorityWarning", "WORKER_NAME", "clean_stale", "list_pools",
           "pool_state", "segment_files", "worker_path", "worker_version"]
