"""Channel.recv's one C call (read, parse, wait): what it must keep doing.

The C path caches the last source address as a tuple, checks every record it
parses, waits with the GIL released and lets signal handlers run while it waits.
"""
from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from fake_worker import worker_argv
from waiting import python_keeps_running
from rtudp.shmring.errors import BadSegmentError

pytestmark = pytest.mark.rtudp(worker=worker_argv())


@pytest.fixture
def rx(rtudp_pool):
    """A receiving channel and a plain socket aimed at it."""
    ch = rtudp_pool.open_channel("rx", local=("127.0.0.1", 0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield ch, sock
    sock.close()


def test_each_packet_names_its_own_source(rtudp_pool, rx):
    """Packets from two peers, interleaved: the cached source never leaks to the next."""
    ch, sock = rx
    other = rtudp_pool.open_channel("tx", local=("127.0.0.1", 0), remote=ch.local)
    expected = []
    for i in range(40):
        if i % 3:
            sock.sendto(b"sock %d" % i, ch.local)
            expected.append((b"sock %d" % i, sock.getsockname()))
        else:
            other.send(b"chan %d" % i)
            expected.append((b"chan %d" % i, other.local))
        pkt = ch.recv(timeout=5)  # one at a time: the two paths do not race each other
        assert (pkt.data, pkt.source) == expected[-1]
    sock.sendto(b"last", ch.local)
    got = ch.recv_many(8, timeout=5)
    assert [(p.data, p.source) for p in got] == [(b"last", sock.getsockname())]


def test_a_record_shorter_than_its_meta_is_an_error_not_a_crash(rx):
    ch, sock = rx
    ch._seg.rx.write(b"short")  # as a corrupt or hostile writer would leave it
    with pytest.raises(BadSegmentError, match="RX record of 5 bytes"):
        ch.recv(timeout=1)
    sock.sendto(b"after", ch.local)
    assert ch.recv(timeout=5).data == b"after"  # the channel reads on


def test_timeout_and_poll(rx):
    ch, _sock = rx
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="within 0.2 s"):
        ch.recv(timeout=0.2)
    assert time.monotonic() - t0 >= 0.19
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0)
    assert ch.recv_many(4, timeout=0) == []
    for bad, err in ((-1, ValueError), (True, TypeError), ("1", TypeError),
                     (float("nan"), ValueError)):
        with pytest.raises(err, match="timeout"):
            ch.recv(timeout=bad)


class Interrupted(Exception):
    pass


def test_a_signal_handler_runs_while_recv_waits(rx):
    """recv(timeout=None) parks in C without the GIL; a signal (Ctrl-C, an alarm) must
    still reach its Python handler, and the channel must work afterwards."""
    ch, sock = rx

    def handler(signum, frame):
        raise Interrupted()

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.monotonic()
        with pytest.raises(Interrupted):
            ch.recv()
        assert time.monotonic() - t0 < 10
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    sock.sendto(b"still here", ch.local)
    assert ch.recv(timeout=5).data == b"still here"


def test_other_threads_run_while_recv_waits(rx):
    """The GIL is released for the wait: a thread counting meanwhile makes progress."""
    ch, sock = rx
    with python_keeps_running():
        threading.Timer(0.3, sock.sendto, (b"wake", ch.local)).start()
        assert ch.recv(timeout=5).data == b"wake"


def test_pin_to_worker_pins_only_the_calling_thread(rtudp_pool, rx):
    ch, _sock = rx
    expected = rtudp_pool.workers()[ch.worker]["cpu"]
    assert ch.worker_cpu == expected
    before = os.sched_getaffinity(0)
    seen = {}

    def pinned_thread():
        seen["cpu"] = ch.pin_to_worker()
        seen["affinity"] = os.sched_getaffinity(0)

    t = threading.Thread(target=pinned_thread)
    t.start()
    t.join()
    assert seen == {"cpu": expected, "affinity": {expected}}
    assert os.sched_getaffinity(0) == before  # this thread is untouched
    ch.close()
    with pytest.raises(ValueError, match="closed"):
        ch.pin_to_worker()


class Seconds(float):
    """A float subclass (as numpy's float64 is): recv's C path hands it to Python."""


def test_every_kind_of_timeout_recv_takes(rx):
    ch, sock = rx
    for i, timeout in enumerate((5, 5.0, Seconds(5), 10**12, 1e300, None)):
        sock.sendto(b"%d" % i, ch.local)
        assert ch.recv(timeout=timeout).data == b"%d" % i, timeout
    sock.sendto(b"positional", ch.local)
    assert ch.recv(5).data == b"positional"
    with pytest.raises(TimeoutError, match="'rx' within 0.05 s"):
        ch.recv(Seconds(0.05))
    with pytest.raises(TypeError):
        ch.recv(timeout=5, other=1)


def test_recv_on_closed_and_send_only_channels(rtudp_pool, rx):
    ch, _sock = rx
    tx_only = rtudp_pool.open_channel("txonly", local=("127.0.0.1", 0), remote=ch.local,
                                      direction=0)
    with pytest.raises(ValueError, match="send-only"):
        tx_only.recv(timeout=0)
    ch.close()
    with pytest.raises(ValueError, match="closed"):
        ch.recv(timeout=0)
    with pytest.raises(ValueError, match="closed"):
        ch.recv_many(4, timeout=0)
