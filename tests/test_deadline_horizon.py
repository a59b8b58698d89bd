"""A deadline from the wrong clock is refused at the call, on every send path.

Deadlines are ``time.monotonic_ns()`` values; one further ahead than the pool's
horizon (``Pool(horizon_s=)``, 10 s by default) raises a ValueError that names the
value and the clock, instead of a packet that waits for ever (``time.time_ns()`` is
decades ahead).  Past deadlines stay valid (sent now, counted late).  A deadline at
the horizon exactly is accepted and sent: the check reads the clock after the test
did, so it is never further ahead there than here, however loaded the machine.
"""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from time import monotonic_ns
from typing import Any, Callable, Iterator

import pytest

import rtudp
import rtudp.aio as aio
from fake_worker import real_worker_built
from ports import free_ports
from rtudp.compat import EmulatedNetwork, create_rtudp_pair
from rtudp.shmring._native import lib
from rtudp.shmring.control import ControlSegment
from rtudp.shmring.deadline import (DEFAULT_HORIZON_NS, MAX_HORIZON_NS, Horizon,
                                    describe_span, horizon_ns_of)
from rtudp.shmring.errors import BadSegmentError
from rtudp.testing import unique_pool_name
from test_cli import CLI, kill_pool, pool_name, run_cli, stop_proc

np = pytest.importorskip("numpy", reason="send_batch needs numpy (the test extra has it)")

# the send paths need the native worker (the Python fake sends no timed datagrams and
# writes no eventfds): a broken build fails here, never skips
real_worker_built()

#: the custom horizon of the pools here: short, so a deadline at it is sent soon
HORIZON_S = 0.5
HORIZON_NS = 500_000_000
SECOND = 1_000_000_000
RECV_TIMEOUT_S = 10.0

pytestmark = pytest.mark.rtudp(rt_priority=0, cpus=[0], horizon_s=HORIZON_S)

#: deadlines no send may take, each made just before the call: (name, value)
BAD_DEADLINES: list[tuple[str, Callable[[], int]]] = [
    ("time.time_ns()", time.time_ns),
    ("now + horizon + 1 s", lambda: monotonic_ns() + HORIZON_NS + SECOND),
    ("int64 max", lambda: 2**63 - 1),
    ("2**63 (past int64)", lambda: 2**63),
    ("2**64 + 5 (past uint64)", lambda: 2**64 + 5),
    ("10**30", lambda: 10**30),
    ("negative", lambda: -1),
]


class Late(int):
    """An int that is not exactly an int: send() hands it to its Python path."""


# ------------------------------------------------------------ the send paths


class Endpoints:
    """A sender of each kind and where its datagrams arrive, opened on first use."""

    def __init__(self, pool: rtudp.Pool) -> None:
        self.pool = pool
        self._close: list[Callable[[], Any]] = []
        self._rx: Any = None

    def rx(self) -> Any:
        """A udp channel every sender here aims at."""
        if self._rx is None:
            self._rx = self.pool.open_channel("rx", local=("127.0.0.1", 0), direction=1)
            self._close.append(self._rx.close)
        return self._rx

    def udp(self) -> rtudp.Channel:
        ch = self.pool.open_channel("tx", local=("127.0.0.1", 0), remote=self.rx().local,
                                    direction=0)
        self._close.append(ch.close)
        return ch

    def rtp(self, tx_mode: str) -> Any:
        ch = self.pool.open_channel("rtp", local=("127.0.0.1", 0), remote=self.rx().local,
                                    direction=0, kind="rtp", options={"tx_mode": tx_mode})
        self._close.append(ch.close)
        return ch

    def aio(self) -> aio.AsyncChannel:
        wrapper = aio.AsyncChannel(self.udp())
        self._close.insert(0, wrapper.detach)
        return wrapper

    def socket_pair(self) -> tuple[Any, Any]:
        pa, pb = free_ports(2)
        a, b = create_rtudp_pair("socket", "127.0.0.1", pa, "127.0.0.1", pb, pool=self.pool)
        return self._started(a, b)

    def emulated_pair(self) -> tuple[Any, Any]:
        net = EmulatedNetwork()
        self._close.append(net.close)
        a, b = create_rtudp_pair("emulated", "127.0.0.1", 5001, "127.0.0.1", 5002,
                                 network=net, horizon_s=HORIZON_S)
        return self._started(a, b)

    def _started(self, a: Any, b: Any) -> tuple[Any, Any]:
        for end in (a, b):
            end.init_socket()
            self._close.insert(0, end.close_socket)
            end.start()
        return a, b

    def close(self) -> None:
        for close in self._close:
            close()


def _udp_received(ends: Endpoints, n: int) -> list[bytes]:
    return [ends.rx().recv(timeout=RECV_TIMEOUT_S).data for _ in range(n)]


def _rtp_payloads(ends: Endpoints, n: int) -> list[bytes]:
    """What an RTP sender's datagrams carry after their 12-byte header."""
    return [d[12:] for d in _udp_received(ends, n)]


def _batch(send_batch: Callable[..., int], at: int, each: bool) -> None:
    """Two 1-byte datagrams "a" and "b": both at ``at``, or (each) "a" now, "b" at ``at``."""
    send_batch(b"ab", [1, 1], at_ns=[0, at] if each else at)


#: name -> (make a sender: returns send(at) and how many datagrams it sends, and
#: get(n): the n payloads that arrived)
Path = Callable[[Endpoints], tuple[Callable[[int], Any], int, Callable[[int], list[bytes]]]]


def _udp_path(send: Callable[[rtudp.Channel, int], Any], n: int) -> Path:
    def make(ends: Endpoints) -> Any:
        ch = ends.udp()
        return (lambda at: send(ch, at)), n, (lambda k: _udp_received(ends, k))
    return make


def _aio_path(send: Callable[[aio.AsyncChannel, int], Any], n: int) -> Path:
    def make(ends: Endpoints) -> Any:
        wrapper = ends.aio()
        return (lambda at: asyncio.run(send(wrapper, at))), n, (lambda k: _udp_received(ends, k))
    return make


def _rtp_path(tx_mode: str, send: Callable[[Any, int], Any], n: int) -> Path:
    def make(ends: Endpoints) -> Any:
        ch = ends.rtp(tx_mode)
        got = _udp_received if tx_mode == "raw" else _rtp_payloads
        return (lambda at: send(ch, at)), n, (lambda k: got(ends, k))
    return make


def _compat_path(pair: str, data: Callable[[], Any]) -> Path:
    def make(ends: Endpoints) -> Any:
        a, b = getattr(ends, pair)()
        return ((lambda at: a.send_data(data(), at)), 1,
                (lambda k: [b.receive_data(int(RECV_TIMEOUT_S * SECOND))[0] for _ in range(k)]))
    return make


PATHS: dict[str, Path] = {
    "Channel.send (C)": _udp_path(lambda ch, at: ch.send(b"x", at), 1),
    "Channel.send(at_ns=) (C)": _udp_path(lambda ch, at: ch.send(b"x", at_ns=at), 1),
    "Channel.send(bytearray) (C)": _udp_path(lambda ch, at: ch.send(bytearray(b"x"), at), 1),
    "Channel.send (Python path)": _udp_path(lambda ch, at: ch.send(b"x", Late(at)), 1),
    "Channel.send_many": _udp_path(lambda ch, at: ch.send_many([b"a", b"b"], at), 2),
    "Channel.send_batch(at_ns=int)": _udp_path(lambda ch, at: _batch(ch.send_batch, at, False), 2),
    "Channel.send_batch(at_ns=[...])": _udp_path(lambda ch, at: _batch(ch.send_batch, at, True), 2),
    "aio send": _aio_path(lambda w, at: w.send(b"x", at), 1),
    "aio send_many": _aio_path(lambda w, at: w.send_many([b"a", b"b"], at), 2),
    "aio send_batch(at_ns=[...])": _aio_path(
        lambda w, at: w.send_batch(b"ab", [1, 1], at_ns=[0, at]), 2),
    "RtpChannel.send (timed)": _rtp_path("timed", lambda ch, at: ch.send(b"x", at), 1),
    "RtpChannel.send_many (timed)": _rtp_path("timed", lambda ch, at: ch.send_many([b"a", b"b"], at),
                                              2),
    "RtpChannel.send_batch (timed)": _rtp_path("timed", lambda ch, at: _batch(ch.send_batch, at,
                                                                               True), 2),
    "RtpChannel.send (paced)": _rtp_path("paced", lambda ch, at: ch.send(b"x", at), 1),
    "RtpChannel.send (raw)": _rtp_path("raw", lambda ch, at: ch.send(b"x", at), 1),
    "RtUdpSocket.send_data": _compat_path("socket_pair", lambda: b"x"),
    "RtUdpSocket.send_data(bytearray)": _compat_path("socket_pair", lambda: bytearray(b"x")),
    "RtUdpEmulated.send_data": _compat_path("emulated_pair", lambda: b"x"),
}


@pytest.fixture
def ends(rtudp_pool: rtudp.Pool) -> Iterator[Endpoints]:
    e = Endpoints(rtudp_pool)
    try:
        yield e
    finally:
        e.close()


@pytest.mark.parametrize("path", PATHS)
def test_every_send_path_refuses_a_deadline_beyond_the_horizon(ends: Endpoints,
                                                               path: str) -> None:
    """Each bad deadline: a ValueError naming it and time.monotonic_ns(), nothing queued;
    then a deadline at the horizon exactly (and one long past) is accepted and sent."""
    send, n, received = PATHS[path](ends)
    for name, value in BAD_DEADLINES:
        at = value()
        with pytest.raises(ValueError) as err:
            send(at)
        msg = str(err.value)
        assert str(at) in msg and "time.monotonic_ns()" in msg, f"{name}: {msg}"
        if at > 0:
            assert f"horizon_s={HORIZON_S:g} of " in msg, f"{name}: {msg}"
    send(monotonic_ns() + HORIZON_NS)  # at the horizon: accepted (see the module docstring)
    send(1)                            # long past: sent now, counted late
    got = received(2 * n)
    assert sorted(got) == sorted([b"x"] * 2 if n == 1 else [b"a", b"b"] * 2), got


def test_nothing_refused_was_queued(ends: Endpoints) -> None:
    """The TX ring holds nothing of a refused send (the worker is stopped meanwhile, so
    nothing queued could have left)."""
    ch = ends.udp()
    ends.pool.pause_channel("tx")
    try:
        for _name, value in BAD_DEADLINES:
            for send in (lambda at: ch.send(b"x", at), lambda at: ch.send_many([b"x"], at),
                         lambda at: ch.send_batch(b"x", [1], at_ns=at)):
                with pytest.raises(ValueError):
                    send(value())
        assert ch.stats()["tx_queued_bytes"] == 0
    finally:
        ends.pool.resume_channel("tx")


def test_the_c_path_reads_the_clock_again_past_its_bound(ends: Endpoints) -> None:
    """A deadline accepted at the horizon does not let a later one through: the C path's
    cached bound is the last clock read plus the horizon, never more."""
    ch = ends.udp()
    now = monotonic_ns()
    ch.send(b"x", now + HORIZON_NS)
    with pytest.raises(ValueError, match="time.monotonic_ns"):
        ch.send(b"x", monotonic_ns() + HORIZON_NS + SECOND)
    ch.send(b"x", now + HORIZON_NS // 2)  # inside the bound read before
    assert _udp_received(ends, 2) == [b"x", b"x"]


def test_default_horizon_is_the_fq_default_and_names_the_pool() -> None:
    """A pool given no horizon_s takes 10 s (rtudp_shm.h's), and says so when it refuses."""
    assert DEFAULT_HORIZON_NS == lib.RTUDP_HORIZON_DEFAULT_NS == 10 * SECOND
    with rtudp.Pool(unique_pool_name(), cpus=[0], rt_priority=0) as pool:
        assert pool.horizon_s == 10 and pool.control.horizon_ns == 10 * SECOND
        ch = pool.open_channel("c", local=("127.0.0.1", 0), remote=("127.0.0.1", 9))
        assert ch.horizon.ns == 10 * SECOND
        at = time.time_ns()
        with pytest.raises(ValueError, match=re.escape(f"at_ns {at}: ") + r"5\d\.\d years after "
                           r"now on CLOCK_MONOTONIC; deadlines are time\.monotonic_ns\(\) values "
                           r"and may be at most 10 s ahead \(horizon_s=10 of pool " +
                           re.escape(repr(pool.name)) + r"\)"):
            ch.send(b"x", at)
        ch.send(b"x", monotonic_ns() + 9 * SECOND)  # accepted; dropped when the pool stops
        assert ch.stats()["tx_queued_bytes"] > 0


def test_a_custom_horizon_is_honoured(rtudp_pool: rtudp.Pool) -> None:
    assert rtudp_pool.horizon_s == HORIZON_S and rtudp_pool.horizon_ns == HORIZON_NS
    assert rtudp_pool.control.horizon_ns == HORIZON_NS
    ch = rtudp_pool.open_channel("c", local=("127.0.0.1", 0), remote=("127.0.0.1", 9))
    other = rtudp.attach("c", pool=rtudp_pool.name)
    try:
        for handle in (ch, other):
            assert handle.horizon.ns == HORIZON_NS
            # 2 s is within the default horizon, not within this pool's
            with pytest.raises(ValueError, match=r"2\.\d s after now.*at most 0\.5 s ahead"):
                handle.send(b"x", monotonic_ns() + 2 * SECOND)
    finally:
        other.close()


# ------------------------------------------------------------ the horizon itself


@pytest.mark.parametrize("bad, error, match", [
    (0, ValueError, "horizon_s=0 is out of range"),
    (-1, ValueError, "horizon_s=-1 is out of range"),
    (86_401, ValueError, "horizon_s=86401 is out of range: more than 0, at most 86400 s"),
    (float("nan"), ValueError, "horizon_s=nan"),
    (1e-12, ValueError, "less than a nanosecond"),
    ("10", TypeError, "horizon_s must be a number of seconds, got '10'"),
    (True, TypeError, "got True"),
])
def test_bad_pool_horizons_are_refused(bad: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=re.escape(match)):
        rtudp.Pool("never_started", horizon_s=bad)


def test_horizon_arithmetic() -> None:
    assert horizon_ns_of(10) == 10 * SECOND and horizon_ns_of(0.5) == HORIZON_NS
    assert horizon_ns_of(86_400) == MAX_HORIZON_NS == lib.RTUDP_HORIZON_MAX_NS
    assert [describe_span(v) for v in (11 * SECOND, 150 * SECOND, 3 * 3600 * SECOND,
                                       5 * 86_400 * SECOND, 56 * 31_557_600 * SECOND)] == \
        ["11.0 s", "2.5 min", "3.0 h", "5.0 days", "56.0 years"]
    h = Horizon(HORIZON_NS, "pool 'p'")
    assert h.check(None) == 0 and h.check(0) == 0 and h.check(1) == 1  # now; long past
    with pytest.raises(TypeError, match=r"at_ns must be an int \(a time.monotonic_ns\(\) value\)"):
        h.check(1.5)
    with pytest.raises(ValueError, match=r"ts_ns -3 is negative"):
        h.check(-3, "ts_ns")
    for bad in (0, MAX_HORIZON_NS + 1, True):
        with pytest.raises(ValueError, match="deadline horizon"):
            Horizon(bad, "x")


def test_a_corrupt_horizon_in_the_control_segment_is_a_bad_segment() -> None:
    name = pool_name()
    ctl = ControlSegment.create(name, 1, horizon_ns=HORIZON_NS)
    try:
        assert ControlSegment.open(name).horizon_ns == HORIZON_NS
        for bad in (0, -5, MAX_HORIZON_NS + 1):
            ctl.c.pool.horizon_ns = bad
            with pytest.raises(BadSegmentError, match="deadline horizon"):
                ControlSegment.open(name)
            with pytest.raises(BadSegmentError, match="deadline horizon"):
                ctl.horizon_ns
    finally:
        ctl.unlink()
        ctl.close()
    with pytest.raises(ValueError, match="deadline horizon is 1.."):
        ControlSegment.create(pool_name(), 1, horizon_ns=0)


# ------------------------------------------------------------ a standalone pool


@pytest.fixture
def standalone() -> Iterator[str]:
    """``rtudp pool start --foreground --horizon-s 0.5`` in its own process."""
    name = pool_name()
    proc = subprocess.Popen([*CLI, "pool", "start", "--foreground", "--name", name,
                             "--cpus", "0", "--rt-priority", "0", "--horizon-s", str(HORIZON_S)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if "running" not in line:
            proc.kill()
            pytest.fail(f"the standalone pool did not start: {line!r} "
                        f"{proc.communicate(timeout=10)[1]}")
        yield name
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)


def test_a_standalone_pools_horizon_reaches_its_clients(standalone: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Programs attached to a pool another process runs read its horizon from shared
    memory: channels opened through PoolClient, attached ones and RtUDP endpoints."""
    status = run_cli("pool", "status", "--name", standalone)
    assert "at most 0.5 s ahead of time.monotonic_ns()" in status.stdout, status.stdout
    rx = rtudp.open_channel("rx", pool=standalone, local=("127.0.0.1", 0))
    tx = rtudp.open_channel("tx", pool=standalone, local=("127.0.0.1", 0), remote=rx.local)
    attached = rtudp.attach("tx", pool=standalone)
    monkeypatch.setenv("RTUDP_POOL", standalone)
    pa, pb = free_ports(2)
    a, b = create_rtudp_pair("socket", "127.0.0.1", pa, "127.0.0.1", pb)
    try:
        a.init_socket()
        a.start()
        for send in (tx.send, attached.send, a.send_data):
            at = monotonic_ns() + HORIZON_NS + SECOND
            with pytest.raises(ValueError, match=re.escape(f"{at}: ") + r".*at most 0\.5 s "
                               r"ahead \(horizon_s=0\.5 of pool " + re.escape(repr(standalone))):
                send(b"x", at)
        tx.send(b"in", monotonic_ns() + HORIZON_NS)
        assert rx.recv(timeout=RECV_TIMEOUT_S).data == b"in"
    finally:
        a.close_socket()
        b.close_socket()
        attached.close()
        tx.close()
        rx.close()


def test_cli_refuses_a_bad_horizon() -> None:
    out = run_cli("pool", "start", "--foreground", "--name", pool_name(), "--horizon-s", "0")
    assert out.returncode != 0
    assert "deadline horizon 0 is out of range (0, 86400]" in out.stderr, out.stderr


def test_a_netflux_schedule_origin_is_a_deadline_too(rtudp_pool: rtudp.Pool) -> None:
    """A netflux channel's start_ns (its schedule's first cycle) is checked as a send's
    deadline when the pool opens it: from the wrong clock, no cycle would ever be sent."""
    remote = ("127.0.0.1", free_ports(1)[0])
    at = time.time_ns()
    with pytest.raises(ValueError, match=re.escape(f"netflux option start_ns {at}: ") +
                       r".*time\.monotonic_ns\(\).*horizon_s=0\.5 of pool"):
        rtudp_pool.open_channel("nf", local=("127.0.0.1", 0), remote=remote, kind="netflux",
                                options={"start_ns": at})
    assert rtudp_pool.channels() == []
    ch = rtudp_pool.open_channel("nf", local=("127.0.0.1", 0), remote=remote, kind="netflux",
                                 options={"start_ns": monotonic_ns() + HORIZON_NS})
    ch.close()
