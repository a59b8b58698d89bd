"""librtpsynth's RtpServer and RtpProc contracts, on rtudp's worker channels
(after librtpsynth's own tests/test_rtp_server.py and tests/test_rtp_proc.py)."""
from __future__ import annotations

import gc
import socket
import time

import pytest

from fake_worker import real_worker_built, worker_argv
from waiting import wait_for
from rtudp.rtp import ChannelProcError, RtpProc, RtpQueueFullError, RtpServer

pytestmark = [pytest.mark.rtudp(worker=worker_argv()),
              pytest.mark.skipif(not real_worker_built(),
                                 reason="RtpServer runs on rtp channels, which need the "
                                        "native rtudp-worker (not built)")]


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


@pytest.mark.parametrize("kwargs, exc", [
    (dict(pkt_in=123), TypeError),
    (dict(pkt_in=print, queue_size=3), ValueError),
    (dict(pkt_in=print, queue_size=0), ValueError),
    (dict(pkt_in=print, queue_size=1 << 62), OverflowError),
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
