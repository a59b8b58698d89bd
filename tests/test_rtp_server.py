"""librtpsynth's RtpServer and RtpProc contracts, on rtudp's worker channels
(after librtpsynth's own tests/test_rtp_server.py and tests/test_rtp_proc.py)."""
from __future__ import annotations

import gc
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fake_worker import worker_argv
from waiting import wait_for
from rtudp.rtp import ChannelProcError, RtpProc, RtpQueueFullError, RtpServer
from rtudp.rtp.server import DEFAULT_RX_QUEUE_SIZE
from rtudp.shmring.channel import ring_capacities
from rtudp.tools.metrics import registry_for

RTSTAT = os.path.join(os.path.dirname(sys.executable), "rtstat")
#: how long a test waits for the worker and the dispatcher to catch up: generous, a
#: loaded 2-CPU machine may stop either for seconds; the counts, not the time, are tested
SETTLE_S = 120.0

pytestmark = [pytest.mark.rtudp(worker=worker_argv())]


@pytest.fixture
def server(rtudp_pool):
    srv = RtpServer(tick_hz=200, pool=rtudp_pool)
    yield srv
    srv.shutdown()


def test_send_recv_bidirectional(server):
    recv_a, recv_b = [], []
    ch_a = server.create_channel(pkt_in=lambda p, a, t: recv_a.append((p, a, t)),
                                 bind_host="127.0.0.1", bind_port=0)
    ch_b = server.create_channel(pkt_in=lambda p, a, t: recv_b.append((p, a, t)),
                                 bind_host="127.0.0.1", bind_port=0)
    ch_a.set_target(*ch_b.local_addr)
    ch_b.set_target(*ch_a.local_addr)
    sent_a = [f"a-{i}".encode() for i in range(4)]
    sent_b = [f"b-{i}".encode() for i in range(4)]
    for p in sent_a:
        ch_a.send_pkt(p)
    for p in sent_b:
        ch_b.send_pkt(p)
    assert wait_for(lambda: len(recv_a) >= 4 and len(recv_b) >= 4)
    assert [p for p, _a, _t in recv_a] == sent_b
    assert [p for p, _a, _t in recv_b] == sent_a
    assert all(a == ch_b.local_addr for _p, a, _t in recv_a)
    ch_a.close()
    ch_b.close()


def test_rtime_is_the_kernel_receive_time(server):
    got = []
    ch = server.create_channel(pkt_in=lambda p, a, t: got.append((p, t, time.monotonic_ns())),
                               bind_host="127.0.0.1")
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        t0 = time.monotonic_ns()
        tx.sendto(b"rtime-0", ch.local_addr)
        tx.sendto(b"rtime-1", ch.local_addr)
        assert wait_for(lambda: len(got) >= 2)
    finally:
        tx.close()
    assert [p for p, _t, _n in got] == [b"rtime-0", b"rtime-1"]
    assert all(t0 <= t <= now for _p, t, now in got)
    assert got[0][1] <= got[1][1]
    ch.close()


def test_dropped_channel_gets_no_more_packets(server):
    received = []
    ch = server.create_channel(pkt_in=lambda p, a, t: received.append(p),
                               bind_host="127.0.0.1")
    addr = ch.local_addr
    ch = None
    gc.collect()
    assert wait_for(lambda: not server._entries)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tx.sendto(b"after-close", addr)
    finally:
        tx.close()
    time.sleep(0.2)
    assert received == []
    server.shutdown()
    server.shutdown()  # idempotent


def test_ipv6(server):
    probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        probe.bind(("::1", 0))
    except OSError as exc:
        print(f"skipping: IPv6 loopback unavailable ({exc})")
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    finally:
        probe.close()
    got = []
    ch = server.create_channel(pkt_in=lambda p, a, t: got.append((p, a)), bind_host="::1",
                               bind_family=6)
    ch.set_target(*ch.local_addr)
    ch.send_pkt(b"ipv6")
    assert wait_for(lambda: got)
    assert got[0] == (b"ipv6", ch.local_addr)
    ch.close()


def test_send_without_target_and_double_close(server):
    ch = server.create_channel(pkt_in=lambda *a: None, bind_host="127.0.0.1")
    with pytest.raises(RuntimeError, match="target"):
        ch.send_pkt(b"x")
    assert not ch.closed
    ch.close()
    assert ch.closed
    with pytest.raises(RuntimeError):
        ch.close()
    with pytest.raises(RuntimeError):
        ch.send_pkt(b"x")


def test_queue_full_raises(server):
    ch = server.create_channel(pkt_in=lambda *a: None, bind_host="127.0.0.1", queue_size=1)
    ch.set_target("127.0.0.1", 9)  # discard port: the worker sends, the kernel drops
    payload = b"x" * 1400
    with pytest.raises(RtpQueueFullError):
        for _ in range(200_000):
            ch.send_pkt(payload)
    ch.close()


# ------------------------------------------------------------ loss accounting


class Received:
    """pkt_in's side of a channel: what it was given, in order (a thread-safe list)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.pkts: list[bytes] = []
        self._lock = threading.Lock()
        self._gate = gate

    def __call__(self, pkt: bytes, _addr: object, _rtime: int) -> None:
        if self._gate is not None:
            assert self._gate.wait(SETTLE_S), "the test never opened pkt_in's gate"
        with self._lock:
            self.pkts.append(pkt)

    def count(self, prefix: bytes = b"") -> int:
        with self._lock:
            return sum(1 for p in self.pkts if p.startswith(prefix))


def _burst(ch, n: int, size: int) -> int:
    """send_pkt ``n`` datagrams of ``size`` bytes to the channel itself in a tight loop;
    how many raised RtpQueueFullError."""
    raised = 0
    for i in range(n):
        try:
            ch.send_pkt(b"b%07d" % i + bytes(size - 8))
        except RtpQueueFullError:
            raised += 1
    return raised


def _sent_all(ch, accepted: int) -> dict:
    """stats() once the worker has sent (or failed to send) every accepted datagram."""
    assert wait_for(lambda: _tx_done(ch.stats()) >= accepted, timeout=SETTLE_S), \
        f"the worker took only {_tx_done(ch.stats())} of {accepted} datagrams"
    return ch.stats()


def _tx_done(st: dict) -> int:
    return st["tx_packets"] + st["tx_errors"]


def _rx_accounted(st: dict, delivered: int) -> int:
    """Datagrams the channel's socket got, as its counters and pkt_in account for them:
    delivered to pkt_in, lost by the dispatcher (fell a ring behind), dropped by the
    kernel (socket buffer full), or not published by the worker."""
    return delivered + st["rx_lost"] + st["rx_kernel_drops"] + st["rx_errors"]


def _settle_rx(ch, got: Received, arrived: int) -> tuple[dict, int]:
    """Send sentinel datagrams from a plain socket until every datagram that reached the
    channel is accounted for: the kernel reports its drop count with the next datagram
    it delivers, and the socket delivers in order.  (stats(), sentinels sent)."""
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sentinels = 0
    deadline = time.monotonic() + SETTLE_S
    try:
        while True:
            tx.sendto(b"s%07d" % sentinels, ch.local_addr)
            sentinels += 1
            if wait_for(lambda: _rx_accounted(ch.stats(), got.count()) >= arrived + sentinels,
                        timeout=5.0):
                return ch.stats(), sentinels
            assert time.monotonic() < deadline, \
                (f"{_rx_accounted(ch.stats(), got.count())} of {arrived + sentinels} "
                 f"datagrams accounted for after {SETTLE_S} s: {ch.stats()}")
    finally:
        tx.close()


def _check_accounting(ch, got: Received, n: int, raised: int) -> dict:
    """The channel's counts add up: sent = raised + transmitted, and what reached the
    socket = delivered to pkt_in + counted as lost (all public counters)."""
    st = _sent_all(ch, n - raised)
    assert raised + st["tx_packets"] + st["tx_errors"] == n, st
    st, sentinels = _settle_rx(ch, got, st["tx_packets"])
    arrived = st["tx_packets"] + sentinels  # loopback, no impairment: all reach the socket
    assert st["rx_packets"] + st["rx_kernel_drops"] == arrived, st
    assert got.count() + st["rx_lost"] == st["rx_packets"] - st["rx_errors"], st
    # the one reader is the server's: the ring's sum over readers is its loss
    assert st["rx_records_lost"] == st["rx_lost"], st
    print(f"sent {n}: raised {raised}, transmitted {st['tx_packets']} (+{st['tx_errors']} "
          f"refused); of {arrived} arrived ({sentinels} sentinels): pkt_in {got.count()}, "
          f"rx_lost {st['rx_lost']}, rx_kernel_drops {st['rx_kernel_drops']}, "
          f"rx_errors {st['rx_errors']}")
    return st


def test_small_queue_size_loses_nothing_silently(server):
    """The issue's run: queue_size=4, 1,000 datagrams to itself in a tight loop.  The
    receive side is not sized by queue_size, and every datagram is accounted for."""
    got = Received()
    ch = server.create_channel(pkt_in=got, bind_host="127.0.0.1", queue_size=4)
    ch.set_target(*ch.local_addr)
    seg = ch._handle._seg
    tx_ring, _ = ring_capacities(4, 1472)
    _, rx_ring = ring_capacities(4, 1472, rx_capacity=DEFAULT_RX_QUEUE_SIZE)
    assert (seg.tx.capacity, seg.rx.capacity) == (tx_ring, rx_ring)
    raised = _burst(ch, 1000, 16)
    _check_accounting(ch, got, 1000, raised)
    ch.close()


def test_dispatcher_behind_counts_what_pkt_in_missed(server, caplog):
    """pkt_in held while the whole burst arrives: the RX ring (rx_queue_size=16) is
    lapped, and what pkt_in never got is in stats(), rtstat --json and Prometheus, and
    logged."""
    gate = threading.Event()
    got = Received(gate)
    ch = server.create_channel(pkt_in=got, bind_host="127.0.0.1", queue_size=64,
                               rx_queue_size=16)
    ch.set_target(*ch.local_addr)
    n, size = 2000, 64
    rx_bytes = ch._handle._seg.rx.capacity
    caplog.set_level(logging.WARNING, logger="rtudp.rtp.server")
    try:
        raised = _burst(ch, n, size)
        st = _sent_all(ch, n - raised)
        # the ring holds fewer than what was sent: pkt_in cannot get them all
        assert st["tx_packets"] > 1 + rx_bytes // size, (st["tx_packets"], rx_bytes)
    finally:
        gate.set()
    st = _check_accounting(ch, got, n, raised)
    assert st["rx_lost"] + st["rx_kernel_drops"] > 0, st

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.name == "rtudp.rtp.server" and "never reached pkt_in" in r.getMessage()]
    if st["rx_lost"]:  # logged once the dispatcher's round ends
        assert wait_for(warned, timeout=SETTLE_S), st
    else:
        assert not warned(), warned()
    # the same count where users look: rtudp metrics (Prometheus) and rtstat --json
    name, pool = ch._handle.name, server._pool.name
    text = generate_latest(registry_for(pool)).decode()
    prom = {s.labels["channel"]: s.value for f in text_string_to_metric_families(text)
            if f.name == "rtudp_channel_rx_records_lost" for s in f.samples}
    assert prom[name] == st["rx_records_lost"], prom
    out = subprocess.run([RTSTAT, "--once", "--json", "--pool", pool, "--interval", "0.1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    chans = [c for p in json.loads(out.stdout)["pools"] for c in p["channels"]
             if c["name"] == name]
    assert chans and chans[0]["totals"]["rx_records_lost"] == st["rx_records_lost"], chans
    assert chans[0]["overruns"] == st["rx_records_lost"]
    ch.close()


def test_loss_warnings_are_limited_but_every_loss_is_logged(caplog):
    """At most one warning per LOSS_WARN_NS per channel; what a limited call held back
    is in the next warning."""
    from rtudp.rtp import server as srv_mod

    class Handle:
        name = "ch-x"

    now = 10 * srv_mod.LOSS_WARN_NS
    caplog.set_level(logging.WARNING, logger="rtudp.rtp.server")
    entry = srv_mod._Entry(Handle(), print)  # type: ignore[arg-type]
    entry.lost(3, now)
    entry.lost(4, now + 1)
    entry.lost(0, now + 2)
    entry.lost(0, now + srv_mod.LOSS_WARN_NS)
    entry.lost(0, now + srv_mod.LOSS_WARN_NS + 1)
    logged = [r.args[1] for r in caplog.records if r.name == "rtudp.rtp.server"]
    assert logged == [3, 4] and entry.unlogged == 0


@pytest.mark.parametrize("kwargs, exc", [
    (dict(pkt_in=123), TypeError),
    (dict(pkt_in=print, queue_size=3), ValueError),
    (dict(pkt_in=print, queue_size=0), ValueError),
    (dict(pkt_in=print, queue_size=1 << 62), OverflowError),
    (dict(pkt_in=print, rx_queue_size=0), ValueError),
    (dict(pkt_in=print, rx_queue_size=True), TypeError),
    (dict(pkt_in=print, rx_queue_size=1 << 40), OverflowError),
    (dict(pkt_in=print, bind_port=70000), ValueError),
    (dict(pkt_in=print, bind_family="ipx"), ValueError),
])
def test_create_channel_bad_arguments(server, kwargs, exc):
    with pytest.raises(exc):
        server.create_channel(bind_host="127.0.0.1", **kwargs)
    assert not server._entries


def test_bad_tick_hz():
    with pytest.raises(ValueError, match="tick_hz"):
        RtpServer(tick_hz=0)


# ------------------------------------------------------------ RtpProc


@pytest.fixture
def proc():
    p = RtpProc()
    yield p


def test_proc_singleton(proc):
    assert RtpProc() is proc


def test_proc_called_at_once_then_scheduled(proc):
    runs = []

    def proc_in(now_ns, deadline_ns):
        runs.append((now_ns, deadline_ns))
        return (now_ns if deadline_ns == 0 else deadline_ns) + 10_000_000

    ch = proc.create_channel(proc_in=proc_in)
    try:
        assert len(runs) >= 1 and runs[0][1] == 0
        assert wait_for(lambda: len(runs) >= 3, timeout=2)
        nows = [r[0] for r in runs]
        assert nows == sorted(nows)
        assert all(now >= deadline for now, deadline in runs)
        deadlines = [r[1] for r in runs[1:]]
        assert all(b - a == 10_000_000 for a, b in zip(deadlines, deadlines[1:]))
    finally:
        ch.close()


def test_proc_none_unschedules(proc):
    runs = []
    ch = proc.create_channel(proc_in=lambda n, d: runs.append(n))
    time.sleep(0.05)
    assert len(runs) == 1
    ch.close()


def test_proc_exception_raised_on_close(proc):
    def proc_in(_n, _d):
        raise ValueError("boom")

    ch = proc.create_channel(proc_in=proc_in)
    with pytest.raises(ChannelProcError) as info:
        ch.close()
    assert isinstance(info.value.__cause__, ValueError) and str(info.value.__cause__) == "boom"
    assert ch.closed
    with pytest.raises(RuntimeError):
        ch.close()


def test_proc_requires_callable_and_refuses_after_shutdown(proc):
    with pytest.raises(TypeError):
        proc.create_channel(proc_in=123)
    proc.shutdown()
    with pytest.raises(RuntimeError):
        proc.create_channel(proc_in=lambda n, d: None)
    assert RtpProc() is not proc  # a new one after shutdown
    RtpProc().shutdown()
