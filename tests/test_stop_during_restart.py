"""A pool that stops while one of its workers dies or restarts stops cleanly: the
supervisor's watcher raised PoolNotRunningError out of ``_on_death`` / ``_restart``
(a thread exception, seen in test_restart.py and test_pool.py) when stop() began
between its seeing the death and its handling it."""
from __future__ import annotations

import os
import signal
import threading
import time
import types
from typing import Any

import pytest

import rtudp
from rtudp.testing import unique_pool_name
from waiting import wait_for


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Exceptions that end a thread during the test (threading.excepthook)."""
    seen: list[str] = []

    def hook(args: Any) -> None:
        seen.append(f"{args.thread.name if args.thread else '?'}: "
                    f"{args.exc_type.__name__}: {args.exc_value}")

    monkeypatch.setattr(threading, "excepthook", hook)
    return seen


def _stop_first(pool: rtudp.Pool, method: str) -> threading.Thread:
    """Make the watcher's next ``method`` call start pool.stop() (in another thread)
    and wait until the stop has begun before it runs: the race, every time."""
    watcher = pool._watcher
    original = getattr(watcher, method)
    stopper = threading.Thread(target=pool.stop, name="stopper")

    def racing(self: rtudp.Pool, *args: Any) -> Any:
        stopper.start()
        assert self._ctx.stopping.wait(10)
        return original(*args)

    setattr(watcher, method, types.MethodType(racing, pool))
    return stopper


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
@pytest.mark.parametrize("method", ["_on_death", "_restart"])
def test_stop_begins_as_the_watcher_handles_a_death(rtudp_pool: rtudp.Pool, method: str,
                                                    thread_errors: list[str]) -> None:
    pool = rtudp_pool
    ch = pool.open_channel("a")
    stopper = _stop_first(pool, method)
    pid = pool.workers()[0]["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: stopper.ident is not None, 10), "the watcher never saw the death"
    stopper.join(30)
    assert not stopper.is_alive()
    assert not pool.running
    ch.close()
    assert thread_errors == []


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("delay_ms", [0, 1, 5, 20, 60])
def test_stop_right_after_a_worker_is_killed(delay_ms: int, thread_errors: list[str]) -> None:
    """The same without a hook: kill a worker, stop the pool after delay_ms (the death
    is being seen, the worker being restarted, or its channels being re-added)."""
    pool = rtudp.Pool(unique_pool_name(), cpus=[0], rt_priority=0).start()
    try:
        pool.open_channel("a")
        pid = pool.workers()[0]["pid"]
        os.kill(pid, signal.SIGKILL)
        time.sleep(delay_ms / 1000)
    finally:
        pool.stop()
    assert not pool.running
    assert thread_errors == []
