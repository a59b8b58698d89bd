"""rtudp.workers: the worker pool (spawn, pin, prioritise, watch, restart, clean up).

For now it locates the native ``rtudp-worker`` program that the build installs
inside this package; the supervisor arrives with the worker-pool issue.
"""
from .binary import WORKER_NAME, worker_path, worker_version

__all__ = ["WORKER_NAME", "worker_path", "worker_version"]
