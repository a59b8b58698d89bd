"""process_exited: what tells a supervisor that is slow to beat (stopped) from one whose
process has gone (exited, a zombie, or its pid taken by another process)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from rtudp.shmring.control import process_exited, process_start_ticks


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_running_and_a_stopped_process_have_not_exited() -> None:
    proc = _sleeper()
    try:
        start = process_start_ticks(proc.pid)
        assert start > 0
        assert not process_exited(proc.pid, start)
        os.kill(proc.pid, signal.SIGSTOP)
        assert not process_exited(proc.pid, start), "a stopped process still runs"
        os.kill(proc.pid, signal.SIGCONT)
    finally:
        proc.kill()
        proc.wait()


def test_a_zombie_a_reaped_process_and_another_start_have_exited() -> None:
    proc = _sleeper()
    start = process_start_ticks(proc.pid)
    assert process_exited(proc.pid, start + 1), "another start: the pid is another process's"
    proc.kill()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
    assert process_exited(proc.pid, start)
    proc.wait()
    assert process_exited(proc.pid, start)
    assert process_exited(os.getpid(), 0), "an unknown start is no proof of life"
    assert process_exited(-1, start)
