"""Direct receive: a ``recv()`` that finds the RX ring empty waits on the channel socket
itself and publishes what comes into the ring as the worker would
(``Channel.direct_recv``, csrc/direct_recv.h).

What a user relies on: every attached reader gets every datagram, once and in order,
with its kernel RX stamp and a receive sequence without gaps, whichever party read the
socket; the counters count every datagram; an impairment of received datagrams still
applies; and a reader that stops reading, is stopped or dies never keeps the datagrams
from the others: a reader reads the socket only while no other process reads the
channel (what it has read and not yet published would die with it).
"""
from __future__ import annotations

import contextlib
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator

import pytest

import rtudp
from env_probes import direct_recv_missing
from fake_worker import worker_argv
from rtudp.shmring._native import lib
from waiting import wait_for

SEQ = struct.Struct("<Q")
WAIT_S = 10.0  # for what the test waits on: generous, a loaded machine is slow

pytestmark = pytest.mark.rtudp(worker=worker_argv())


@pytest.fixture
def pair(rtudp_pool):
    """Channel a (receiver) and b (connected to a), each on its own worker."""
    why = direct_recv_missing(os.getpid())  # the pool's supervisor is this process
    if why:
        pytest.skip(f"direct receive needs what this machine lacks: {why}")
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", 0), cpu=rtudp_pool.cpus[0])
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local,
                                cpu=rtudp_pool.cpus[-1])
    assert a.direct_recv, f"direct receive off where the kernel allows it: {a.direct_recv_off}"
    return a, b


def _state(ch: Any) -> int:
    return int(ch._seg.block.direct_rx.state)


def _recv_in_thread(ch: Any, n: int) -> tuple[threading.Thread, list[Any]]:
    """A thread that receives n packets on ch (5 s each at most); what it got."""
    got: list[Any] = []

    def run() -> None:
        for _ in range(n):
            got.append(ch.recv(timeout=WAIT_S))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, got


def _seqs(pkts: list[Any]) -> list[int]:
    return [SEQ.unpack(p.data)[0] for p in pkts]


def test_a_waiting_reader_reads_the_socket_itself(pair):
    a, b = pair
    got = []
    for i in range(20):
        t, one = _recv_in_thread(a, 1)
        # the reader waits on the socket before the datagram is sent: it reads it
        assert wait_for(lambda: _state(a) == lib.RTUDP_DRX_WAIT, WAIT_S)
        b.send(SEQ.pack(i))
        t.join(WAIT_S)
        got += one
    assert _seqs(got) == list(range(20))
    st = a.stats()
    assert st["rx_direct"] == st["rx_packets"] == 20, st
    assert st["rx_bytes"] == 20 * SEQ.size and st["rx_errors"] == 0
    assert st["rx_delay_count"] == 20
    # the receive sequence has no gaps, and each packet has its kernel RX stamp
    assert [p.seq for p in got] == list(range(got[0].seq, got[0].seq + 20))
    assert all(0 < p.rx_ns <= time.monotonic_ns() for p in got)


def test_every_reader_gets_every_datagram_in_order(pair, rtudp_pool):
    a, b = pair
    other = rtudp.attach("a", pool=rtudp_pool.name)
    try:
        n = 300
        ta, got_a = _recv_in_thread(a, n)
        to, got_o = _recv_in_thread(other, n)
        for i in range(n):
            b.send(SEQ.pack(i))
            if i % 10 == 0:
                time.sleep(0.001)  # bursts and gaps: both paths, both readers waiting
        ta.join(WAIT_S * 2)
        to.join(WAIT_S * 2)
        assert _seqs(got_a) == _seqs(got_o) == list(range(n))
        assert [p.seq for p in got_a] == [p.seq for p in got_o]
        assert [p.rx_ns for p in got_a] == [p.rx_ns for p in got_o]
        assert all(p.lost == 0 for p in got_a + got_o)
        st = a.stats()
        assert st["rx_packets"] == n and st["rx_errors"] == 0, st
    finally:
        other.close()


def test_a_reader_that_stops_reading_leaves_the_socket_to_the_worker(pair):
    a, b = pair
    t, first = _recv_in_thread(a, 1)
    assert wait_for(lambda: _state(a) == lib.RTUDP_DRX_WAIT, WAIT_S)
    b.send(SEQ.pack(0))
    t.join(WAIT_S)
    assert _seqs(first) == [0] and a.stats()["rx_direct"] == 1
    # the reader holds a lease now, and reads no more: the worker takes the socket back
    # when it passes and publishes what came, for anyone who looks
    for i in range(1, 101):
        b.send(SEQ.pack(i))
    assert wait_for(lambda: a.stats()["rx_packets"] == 101, WAIT_S), a.stats()
    st = a.stats()
    assert st["rx_direct_reclaims"] >= 1 and st["rx_direct"] < 101, st
    assert _seqs([a.recv(timeout=WAIT_S) for _ in range(100)]) == list(range(1, 101))


def test_an_impairment_of_received_datagrams_still_applies(pair):
    a, b = pair
    a.set_impairment(loss=1.0, direction="rx", seed=1)
    t, got = _recv_in_thread(a, 1)
    for i in range(20):
        b.send(SEQ.pack(i))
    assert wait_for(lambda: a.stats()["imp_rx_lost"] == 20, WAIT_S), a.stats()
    a.set_impairment(None)
    b.send(SEQ.pack(20))
    t.join(WAIT_S)
    assert _seqs(got) == [20]  # the 20 lost ones were never published


def test_direct_recv_off_leaves_every_datagram_to_the_worker(pair):
    a, b = pair
    a.direct_recv = False
    assert not a.direct_recv
    assert a.direct_recv_off == "turned off (direct_recv = False)"
    t, got = _recv_in_thread(a, 10)
    time.sleep(0.01)
    for i in range(10):
        b.send(SEQ.pack(i))
    t.join(WAIT_S)
    assert _seqs(got) == list(range(10))
    assert a.stats()["rx_direct"] == 0
    a.direct_recv = True
    assert a.direct_recv and a.direct_recv_off is None


def test_bad_values_and_send_only_channels_are_named(rtudp_pool):
    ch = rtudp_pool.open_channel("s", local=("127.0.0.1", 0), remote=("127.0.0.1", 9),
                                 direction=0)
    assert not ch.direct_recv and ch.direct_recv_off == "the channel is send-only"
    with pytest.raises(TypeError, match="direct_recv must be True or False, not 1"):
        ch.direct_recv = 1  # type: ignore[assignment]
    ch.close()
    with pytest.raises(ValueError, match="closed"):
        ch.direct_recv = True


_CHILD_READER = """
import sys, rtudp
from rtudp.shmring import _fast
ch = rtudp.attach(sys.argv[1], pool=sys.argv[2])
_fast.drx_stop_after_receive(sys.argv[3] == "stop-after-receive")
print("attached", flush=True)
while True:
    ch.recv()
"""


def _child_reader(pool: Any, name: str, how: str = "plain") -> subprocess.Popen:
    """A process reading channel ``name``; ``how="stop-after-receive"``: it stops itself
    whenever it has read the socket, before it publishes what it read."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD_READER, name, pool.name, how],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "attached"
    return proc


def _socket_held_by(ch: Any, pid: int) -> Callable[[], bool]:
    return lambda: (_state(ch) == lib.RTUDP_DRX_WAIT and
                    int(ch._seg.block.direct_rx.holder_pid) == pid)


@contextlib.contextmanager
def _lone_child_reader(pool: Any, a: Any) -> Iterator[subprocess.Popen]:
    """A child process reading channel a, its one reader (a's handle here does not
    receive), once it waits on the socket itself; killed (and continued) after."""
    a.receives = False
    child = _child_reader(pool, "a")
    try:
        assert wait_for(_socket_held_by(a, child.pid), WAIT_S)
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            os.kill(child.pid, signal.SIGCONT)
        child.wait(WAIT_S)


def _process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_a_reader_killed_with_what_it_read_unpublished_costs_the_others_nothing(pair,
                                                                                rtudp_pool):
    """With two reader processes attached neither reads the socket: the worker does, so
    a reader that dies holds no datagram the other has not got.  The child stops itself
    if it ever reads the socket, before it publishes: killed there, what it read would
    be lost to this process's reader."""
    a, b = pair
    child = _child_reader(rtudp_pool, "a", "stop-after-receive")
    try:
        got = []
        for i in range(100):
            b.send(SEQ.pack(i))
            if i % 10 == 9:
                time.sleep(0.002)  # gaps: the child waits in recv between bursts
            if i == 49:
                got += [a.recv(timeout=WAIT_S) for _ in range(50)]
                assert _process_state(child.pid) != "T", "the child read the socket"
                child.kill()
                child.wait(WAIT_S)
        got += [a.recv(timeout=WAIT_S) for _ in range(50)]
        assert _seqs(got) == list(range(100))
        assert [p.seq for p in got] == list(range(got[0].seq, got[0].seq + 100))
        st = a.stats()
        assert st["rx_packets"] == 100 and st["rx_direct"] == 0, st
    finally:
        if child.poll() is None:
            child.kill()
            os.kill(child.pid, signal.SIGCONT)
        child.wait(WAIT_S)


def test_a_reader_that_attaches_takes_the_socket_from_a_lone_reader(pair, rtudp_pool):
    """A lone reader process reads the socket itself; once another process attaches as a
    reader, the socket goes back to the worker, and both get every datagram."""
    a, b = pair
    with _lone_child_reader(rtudp_pool, a):
        b.send(SEQ.pack(0))
        assert wait_for(lambda: a.stats()["rx_direct"] == 1, WAIT_S), a.stats()
        with rtudp.attach("a", pool=rtudp_pool.name) as other:
            for i in range(1, 51):
                b.send(SEQ.pack(i))
            got = [other.recv(timeout=WAIT_S) for _ in range(50)]
        assert _seqs(got) == list(range(1, 51))
        st = a.stats()
        assert st["rx_packets"] == 51 and st["rx_direct"] == 1, st


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_a_reader_stopped_or_killed_in_its_wait_keeps_nothing_from_the_others(pair, rtudp_pool,
                                                                              how):
    a, b = pair
    # the child, the channel's only reader, waits on the socket; then a second reader
    # attaches
    with _lone_child_reader(rtudp_pool, a) as child, \
            rtudp.attach("a", pool=rtudp_pool.name) as other:
        os.kill(child.pid, signal.SIGSTOP if how == "stopped" else signal.SIGKILL)
        if how == "killed":
            child.wait(WAIT_S)
        t, got = _recv_in_thread(other, 50)
        for i in range(50):
            b.send(SEQ.pack(i))
        t.join(WAIT_S * 2)
    assert _seqs(got) == list(range(50))
    assert a.stats()["rx_packets"] == 50


def test_a_forked_child_waits_as_itself(pair):
    """A handle a forked child goes on using holds the socket under the child's pid, so
    the worker judges the child's liveness, not its parent's.  The parent only sends
    (receives = False) and the child receives on the inherited handle: the one reader."""
    a, b = pair
    a.receives = False
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one receive on the inherited handle, its bytes to the pipe
        code = 1
        try:
            a.receives = True
            os.write(w, a.recv(timeout=WAIT_S).data)
            code = 0
        finally:
            os._exit(code)
    try:
        os.close(w)
        assert wait_for(_socket_held_by(a, pid), WAIT_S)
        b.send(SEQ.pack(42))
        assert SEQ.unpack(os.read(r, 64))[0] == 42
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        os.close(r)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_a_handle_that_does_not_receive_leaves_the_socket_to_the_reader(pair, rtudp_pool):
    """``receives = False`` on the handle a program keeps open while a child reads: the
    child is the one reader and reads the socket itself; the handle's receives raise,
    and once it receives again it counts as a reader and reads through the worker."""
    a, b = pair
    assert a.receives and a.stats()["readers_attached"] == 1
    a.receives = False
    assert not a.receives and a.stats()["readers_attached"] == 0
    assert a.direct_recv_off == "this handle does not receive (receives = False)"
    for call in (lambda: a.recv(timeout=0), lambda: a.recv_many(4, timeout=0)):
        with pytest.raises(ValueError, match="this handle does not receive"):
            call()
    with pytest.raises(TypeError, match="receives must be True or False, not 1"):
        a.receives = 1  # type: ignore[assignment]
    with _lone_child_reader(rtudp_pool, a):
        b.send(SEQ.pack(0))
        assert wait_for(lambda: a.stats()["rx_direct"] == 1, WAIT_S), a.stats()
        a.receives = True
        assert a.receives and a.stats()["readers_attached"] == 2
        b.send(SEQ.pack(1))  # a receives from here on: the worker reads it for both
        assert _seqs([a.recv(timeout=WAIT_S)]) == [1]
        assert a.stats()["rx_direct"] == 1
