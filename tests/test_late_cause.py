"""Whose a late send is: the submitter's (``tx_late_arrival``: the record came into the
ring with its deadline past or within the worker's spin margin) or the worker's
(``tx_late_sent``: it came in time and left late).  Counts only, by construction:
a deadline already past is late whatever the machine does, one 200 ms ahead reaches
the worker in time unless a process stalls for that long, and a worker stopped by
SIGSTOP makes what came in time meanwhile late itself.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from fake_worker import worker_argv
from rtudp.shmring._native import lib
from waiting import wait_for

pytestmark = pytest.mark.rtudp(worker=worker_argv())

#: how far back the "stalled submitter" puts its deadlines: late by more than
#: RTUDP_TX_LATE_NS whatever the worker does
PAST_NS = 5_000_000
AHEAD_NS = 200_000_000


@pytest.fixture
def pair(rtudp_pool):
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", 0))
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
    return a, b


def _all_timed(ch, n):
    """The stats once the lateness of ``n`` sends through the worker is recorded."""
    assert wait_for(lambda: ch.stats()["tx_lateness_count"] >= n, 10)
    return ch.stats()


def test_a_deadline_already_past_is_late_on_arrival_not_sent_late(pair):
    a, b = pair
    for i in range(10):
        b.send(b"late %d" % i, at_ns=time.monotonic_ns() - PAST_NS)
    for _ in range(10):
        a.recv(timeout=5)
    st = _all_timed(b, 10)
    assert st["tx_late_arrival"] == 10 and st["tx_late_sent"] == 0
    assert st["tx_late_left"] == 10
    assert st["tx_late_arrival_max_ns"] >= PAST_NS
    assert st["tx_late_arrival_ns"] >= 10 * PAST_NS
    assert st["tx_late"] == 10                  # of them: the deadline had passed
    assert st["tx_late_sent_ns"] == st["tx_late_sent_max_ns"] == 0


def test_sends_queued_well_ahead_are_never_late_on_arrival(pair):
    a, b = pair
    for i in range(50):
        b.send(b"ahead %d" % i, at_ns=time.monotonic_ns() + AHEAD_NS + i * 100_000)
    for _ in range(50):
        a.recv(timeout=5)
    st = _all_timed(b, 50)
    assert st["tx_late_arrival"] == 0 and st["tx_late"] == 0
    # whatever this machine's timing made of them is the worker's
    assert st["tx_late_left"] == st["tx_late_sent"] <= 50


def test_immediate_sends_are_never_late_on_arrival(pair):
    a, b = pair
    for i in range(50):
        b.send(b"now %d" % i)
    for _ in range(50):
        a.recv(timeout=5)
    st = _all_timed(b, st_requested := b.stats()["tx_requested"])
    assert st_requested + st["tx_direct"] == 50
    assert st["tx_late_arrival"] == 0


def test_the_causes_add_up_to_the_late_sends(pair):
    a, b = pair
    for i in range(20):
        late = i % 2 == 0
        at = time.monotonic_ns() + (-PAST_NS if late else AHEAD_NS)
        b.send(b"mixed %d" % i, at_ns=at)
    for _ in range(20):
        a.recv(timeout=5)
    st = _all_timed(b, 20)
    assert st["tx_late_arrival"] == 10
    assert st["tx_late_left"] == st["tx_late_arrival"] + st["tx_late_sent"]
    assert st["tx_late_left"] <= st["tx_lateness_count"] == 20
    # what is counted late left more than RTUDP_TX_LATE_NS after its deadline
    if st["tx_late_sent"]:
        assert st["tx_late_sent_max_ns"] > lib.RTUDP_TX_LATE_NS
    assert st["tx_late_arrival_ns"] >= st["tx_late_arrival"] * PAST_NS


def test_a_worker_stopped_meanwhile_keeps_its_lateness(pair, rtudp_pool):
    """Records queued 2 ms ahead while the worker is stopped (parked or running) leave
    late, and the lateness is the worker's: the first producer to ring its bell stamps
    when it came, and a running worker judges by its last look."""
    if os.environ.get("RTUDP_TEST_WORKER"):
        pytest.skip("a worker other than rtudp-worker (the Python fake judges a record "
                    "when it takes it)")
    a, b = pair
    pid = next(w["pid"] for w in rtudp_pool.workers() if w["index"] == b.worker)
    os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(10):
            b.send(b"stopped %d" % i, at_ns=time.monotonic_ns() + 2_000_000)
        time.sleep(0.03)
    finally:
        os.kill(pid, signal.SIGCONT)
    for _ in range(10):
        a.recv(timeout=5)
    st = _all_timed(b, 10)
    assert st["tx_late_arrival"] == 0
    assert st["tx_late_sent"] == st["tx_late_left"] == 10
    assert st["tx_late_sent_max_ns"] > lib.RTUDP_TX_LATE_NS
