"""Polling until a condition holds, for tests that watch another process or thread."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence


def wait_for(cond: Callable[[], object], timeout: float = 10.0, step: float = 0.01) -> bool:
    """Poll ``cond`` until true or ``timeout`` s pass; its last value as a bool."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


@contextmanager
def python_keeps_running(at_least: int = 1000) -> Iterator[None]:
    """A thread counts in Python while the body runs (a call that must release the GIL
    while it waits); on leaving, it must have counted more than ``at_least``."""
    count = 0
    stop = threading.Event()

    def counter() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1

    t = threading.Thread(target=counter)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
    assert count > at_least, f"another thread counted only {count} while the call waited"


def sleep_overshoot_s(samples: int = 21, sleep_s: float = 0.001) -> float:
    """The median by which a plain ``time.sleep(sleep_s)`` overshoots here, now: what
    this machine's scheduler costs a wake-up, the reference a test's latency bound is
    set against (a loaded machine raises both alike)."""
    over = []
    for _ in range(samples):
        t0 = time.monotonic()
        time.sleep(sleep_s)
        over.append(time.monotonic() - t0 - sleep_s)
    return sorted(over)[len(over) // 2]


def early_sends_once_stamped(chans: Sequence[Any], total: int, timeout: float = 5.0) -> int:
    """Wait until the channels' ``tx_lateness`` counts ``total`` sends (each once its TX
    stamp is read), then how many of them left before their deadline."""
    stamped = lambda: sum(ch.lateness().count for ch in chans)  # noqa: E731
    assert wait_for(lambda: stamped() == total, timeout), f"{stamped()} of {total} sends stamped"
    return sum(ch.lateness().negative for ch in chans)
