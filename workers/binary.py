"""Where the native worker program is: inside the installed package, never on PATH."""
from __future__ import annotations

import os
import subprocess
from importlib import resources

from ..shmring.errors import RtUdpError

WORKER_NAME = "rtudp-worker"


def worker_path() -> str:
    """Absolute path of the ``rtudp-worker`` executable shipped in ``rtudp.workers``."""
    path = str(resources.files(__package__) / WORKER_NAME)
    if not os.access(path, os.X_OK):
        raise RtUdpError(f"the worker program is missing or not executable at {path}: "
                         f"reinstall rtudp (pip install .) so the build compiles it")
    return path


def worker_version() -> str:
    """What ``rtudp-worker --version`` prints (proves it starts on this machine)."""
    out = subprocess.run([worker_path(), "--version"], capture_output=True, text=True,
                         timeout=10, check=True)
    return out.stdout.strip()
