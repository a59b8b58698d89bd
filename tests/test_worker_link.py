"""The supervisor's end of a worker's command socket (workers/link.py), with no worker:
the test holds the worker's end itself."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from rtudp.shmring._native import lib
from rtudp.workers.link import WorkerGone, WorkerLink


def test_closing_a_link_ends_a_wait_for_a_reply_with_worker_gone() -> None:
    """The watcher closes a dead worker's link while another thread waits on it for a
    reply: that thread hears that the worker is gone, and does not wait out its timeout
    on whatever socket takes the closed one's number."""
    link = WorkerLink(0, lambda: None)  # its other end stays open: no EOF but the close
    outcome: list[BaseException] = []
    asked = threading.Event()

    def ask() -> None:
        try:
            asked.set()
            link.commands([(lib.RTUDP_CMD_REMOVE, 3, "c", None)], timeout=60.0)
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=ask)
    t.start()
    asked.wait(10)
    time.sleep(0.2)  # into its wait (had it not got there, it would find the link closed)
    link.close()
    spares = socket.socketpair()  # as the restart's new link takes the lowest free numbers
    try:
        t.join(30)
    finally:
        for s in spares:
            s.close()
    assert not t.is_alive(), "the wait went on after the link was closed"
    assert len(outcome) == 1 and isinstance(outcome[0], WorkerGone), outcome


def test_a_closed_link_refuses_commands_as_a_gone_worker() -> None:
    link = WorkerLink(1, lambda: None)
    link.close()
    with pytest.raises(WorkerGone, match="worker 1 is gone"):
        link.commands([(lib.RTUDP_CMD_REMOVE, 0, "c", None)], timeout=1.0)
