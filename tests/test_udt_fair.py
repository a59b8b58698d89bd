"""Many UDT connections on one channel (issue 52: "100 concurrent UDT connections,
fair share, none starved"): they share the channel's port and worker, every one
moves its share while the others run, every byte arrives once and in order, and a
thread blocked on one socket sleeps through the other sockets' traffic (each socket
has its own doorbell)."""
from __future__ import annotations

import socket
import threading
import time
import zlib
from typing import Any

import pytest

import rtudp.udt.udt4 as udt4
from rtudp.udt.channel import WAIT_SLICE_NS
from rtudp.tools.bench.scale_udt import fairness
from udt_helpers import pattern, send_all

N = 50
TOTAL = 640 * 1456         # bytes each connection sends: 20 receive buffers
BUFFER_PACKETS = 32
JOIN_S = 120.0
CLOSE_S = 10.0


def _listener(n: int) -> Any:
    srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    udt4.bind(srv, "127.0.0.1", 0)
    udt4.listen(srv, n)
    return srv


def _clients(n: int, port: int) -> list[Any]:
    """n sockets bound to one port (one channel), each connected to ``port``."""
    out: list[Any] = []
    bound = 0
    for _ in range(n):
        s = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
        udt4.bind(s, "127.0.0.1", bound)
        bound = udt4.getsockname(s)[1]
        udt4.connect(s, "127.0.0.1", port)
        out.append(s)
    return out


class Progress:
    """What each reader has received, and everyone's counts at the moment the first
    reader had all of its bytes."""

    def __init__(self, n: int) -> None:
        self.got = [0] * n
        self.crc = [0] * n
        self.at_first: list[int] | None = None
        self.lock = threading.Lock()

    def read(self, srv: Any, i: int) -> None:
        conn, _ = udt4.accept(srv)
        try:
            while self.got[i] < TOTAL:
                data = udt4.recv(conn, TOTAL - self.got[i])
                self.crc[i] = zlib.crc32(data, self.crc[i])
                with self.lock:
                    self.got[i] += len(data)
                    if self.got[i] == TOTAL and self.at_first is None:
                        self.at_first = list(self.got)
        finally:
            udt4.close(conn)


@pytest.mark.rtudp(rt_priority=0)
def test_connections_on_one_channel_share_it(rtudp_pool) -> None:
    udt4.startup(rtudp_pool, max_sockets=N + 1, buffer_packets=BUFFER_PACKETS)
    try:
        srv = _listener(N)
        progress = Progress(N)
        readers = [threading.Thread(target=progress.read, args=(srv, i), daemon=True)
                   for i in range(N)]
        for t in readers:
            t.start()
        clients = _clients(N, udt4.getsockname(srv)[1])
        assert len({id(udt4._s(c).ch) for c in clients}) == 1  # one channel, one port
        datas = [pattern(TOTAL, seed=j) for j in range(N)]
        go = threading.Event()

        def send(j: int) -> None:
            go.wait()
            send_all(udt4, clients[j], datas[j])

        senders = [threading.Thread(target=send, args=(j,), daemon=True) for j in range(N)]
        for t in senders:
            t.start()
        go.set()  # all at once (a thread started into a running transfer starts late)
        end = time.monotonic() + JOIN_S  # one bound for all: a stuck test fails, not hangs
        for t in senders + readers:
            t.join(max(0.0, end - time.monotonic()))
        assert not any(t.is_alive() for t in senders + readers), progress.got
        # every byte once: each connection's count and content, the sum
        assert progress.got == [TOTAL] * N
        assert sorted(progress.crc) == sorted(zlib.crc32(d) for d in datas)
        assert sum(progress.got) == N * TOTAL
        # none starved (as `rtudp bench scale` counts them: each has at least a tenth
        # of the mean) at the moment the first connection had all of its bytes
        first = progress.at_first
        assert first is not None and max(first) == TOTAL
        f = fairness(first)
        assert f["starved"] == 0 and f["served"] == N, (f, sorted(first))
        for c in clients:
            udt4.close(c)
        udt4.close(srv)
    finally:
        udt4.cleanup()


@pytest.mark.rtudp(rt_priority=0)
def test_a_blocked_socket_sleeps_through_the_others_traffic(rtudp_pool) -> None:
    udt4.startup(rtudp_pool, max_sockets=4, buffer_packets=BUFFER_PACKETS)
    try:
        srv = _listener(2)
        idle_c, busy_c = _clients(2, udt4.getsockname(srv)[1])
        idle, _ = udt4.accept(srv)
        busy, _ = udt4.accept(srv)
        ch = udt4._s(idle).ch
        assert udt4._s(busy).ch is ch  # both on the server's channel
        waits = {"idle": 0}
        blocked = threading.Thread(target=lambda: waits.update(got=udt4.recv(idle, 16)),
                                   daemon=True)
        real_sock_wait, real_wait = ch.sock_wait, ch.wait

        def counted(real: Any) -> Any:
            def wrapper(*args: Any) -> int:
                if threading.current_thread() is blocked:
                    waits["idle"] += 1
                return int(real(*args))
            return wrapper

        ch.sock_wait, ch.wait = counted(real_sock_wait), counted(real_wait)
        blocked.start()
        size = 400 * 1456
        data = pattern(size, seed=3)
        t0 = time.monotonic()
        sender = threading.Thread(target=send_all, args=(udt4, busy_c, data), daemon=True)
        sender.start()
        got = bytearray()
        while len(got) < size and time.monotonic() - t0 < JOIN_S:
            got += udt4.recv(busy, size - len(got))
        elapsed = time.monotonic() - t0
        sender.join(JOIN_S)
        assert bytes(got) == data
        moves = int(ch.sock(udt4._s(busy).i).wrk.events)
        # the other socket moved many times; the blocked one woke only at the end of
        # each wait slice (WAIT_SLICE_NS), never for those moves
        assert moves >= size // 1456 // BUFFER_PACKETS, moves
        slices = int(elapsed * 1e9 / WAIT_SLICE_NS) + 2
        assert waits["idle"] <= slices, (waits, moves, elapsed)
        send_all(udt4, idle_c, b"x")
        blocked.join(JOIN_S)
        assert waits.get("got") == b"x"
        for s in (idle, busy, idle_c, busy_c, srv):
            udt4.close(s)
    finally:
        udt4.cleanup()


@pytest.mark.rtudp(rt_priority=0)
def test_cleanup_ends_a_threads_wait_at_once(rtudp_pool, monkeypatch) -> None:
    """A thread's wait is not sliced for signals (only the main thread sees them):
    closing the channel's handle ends it, however long its slice."""
    import rtudp.udt.channel as channel

    # a wait that only its slice ended would hold close() for 30 s; one that close()
    # ends goes within a wake-up (JOIN_S is for a loaded machine)
    monkeypatch.setattr(channel, "THREAD_SLICE_NS", 30 * 10**9)
    udt4.startup(rtudp_pool, max_sockets=4, buffer_packets=BUFFER_PACKETS)
    try:
        srv = _listener(1)
        (c,) = _clients(1, udt4.getsockname(srv)[1])
        conn, _ = udt4.accept(srv)
        ended: list[Any] = []

        def blocked() -> None:
            try:
                udt4.recv(conn, 16)
            except Exception as e:  # noqa: BLE001  (whatever it ends with, it ends)
                ended.append(e)

        t = threading.Thread(target=blocked, daemon=True)
        t.start()
        ch = udt4._s(conn).ch
        end = time.monotonic() + CLOSE_S
        while not ch.sock(udt4._s(conn).i).bell.waiters:  # the thread sleeps in its wait
            assert time.monotonic() < end, "the thread never waited"
            time.sleep(0.01)
        # this process's handle only: the worker moves no socket
        closer = threading.Thread(target=ch.close, daemon=True)
        closer.start()
        closer.join(CLOSE_S)
        t.join(CLOSE_S)
        assert not closer.is_alive() and not t.is_alive() and len(ended) == 1, ended
    finally:
        udt4.cleanup()
