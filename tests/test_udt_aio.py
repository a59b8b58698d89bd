"""rtudp.aio for UDT sockets (rtudp.udt.aio), on asyncio's loop and on uvloop's: the loop
runs while a recv waits (a ticker task counts), accept/connect/send/recv/sendmsg/
recvmsg are awaited on both wrapped APIs (udt4 and pyudt), streams and messages arrive
whole, timeouts and cancellation leave the socket usable, and waiting sockets cost no
thread."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from typing import Any, Iterator

import pytest

import rtudp
import rtudp.aio as aio
import rtudp.udt.udt4 as udt4
from fake_worker import real_worker_built, worker_argv
from rtudp.udt import pyudt
from rtudp.udt.aio import AsyncUdtSocket
from test_aio import LOOPS, Ticker, run  # noqa: F401  (the loops and their fixture)
from udt_helpers import pattern

if not real_worker_built():
    pytest.skip("rtudp.aio needs the native worker (the Python fake does not write "
                "eventfds): build it with pip install -e .", allow_module_level=True)

pytestmark = pytest.mark.rtudp(worker=worker_argv(), rt_priority=0)


@pytest.fixture(autouse=True)
def udt(rtudp_pool: rtudp.Pool) -> Iterator[None]:
    """UDT started on the test's pool, cleaned up after."""
    udt4.startup(rtudp_pool)
    try:
        yield
    finally:
        udt4.cleanup()


async def connected(kind: int = socket.SOCK_STREAM) -> tuple[Any, Any, Any]:
    """(listener, client, accepted): a pyudt listener, a udt4 client, all wrapped."""
    srv = aio.udt.socket(socket.AF_INET, kind)
    srv.bind(("127.0.0.1", 0))
    await srv.listen(8)
    client = aio.wrap(udt4.socket(socket.AF_INET, kind, 0))
    assert isinstance(client, AsyncUdtSocket) and isinstance(srv, AsyncUdtSocket)
    (conn, addr), _ = await asyncio.gather(srv.accept(timeout=30),
                                           client.connect(srv.getsockname(), timeout=30))
    assert isinstance(conn.socket, pyudt.UdtSocket)
    assert addr == udt4.getsockname(client.socket)[:2] or addr[1] == udt4.getsockname(
        client.socket)[1]
    return srv, client, conn


def test_loop_runs_while_recv_waits(run: Any) -> None:
    async def main() -> tuple[bytes, float, int]:
        srv, client, conn = await connected()
        ticker = Ticker()

        async def send_later() -> None:
            await asyncio.sleep(0.3)
            await client.send(b"late")

        sender = asyncio.create_task(send_later())
        t0 = time.monotonic()
        got = await conn.recv(100, timeout=60)
        waited = time.monotonic() - t0
        ticker.stop()
        await sender
        for s in (client, conn, srv):
            s.close()
        return got, waited, ticker.ticks

    got, waited, ticks = run(main())
    assert got == b"late"
    assert 0.25 <= waited < 10, f"recv returned after {waited:.3f} s (sent at 0.3 s)"
    # 0.3 s of 5 ms sleeps: a loop blocked in recv would have let it tick ~0 times
    assert ticks >= 10, f"the ticker ran only {ticks} times while recv waited"


def test_loop_runs_while_listen_waits_for_the_worker(run: Any, rtudp_pool: rtudp.Pool) -> None:
    """listen waits for the worker to take the listener: on the eventfd, not in a
    blocking wait (the worker is stopped for 0.3 s meanwhile, so it must wait)."""

    async def main() -> tuple[float, int, int]:
        srv = aio.udt.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.bind(("127.0.0.1", 0))
        ch = srv._core.ch
        (pid,) = [w["pid"] for w in rtudp_pool.workers() if w["index"] == ch.worker]
        ticker = Ticker()
        os.kill(pid, signal.SIGSTOP)
        try:
            resume = asyncio.get_running_loop().call_later(0.3, os.kill, pid, signal.SIGCONT)
            t0 = time.monotonic()
            await srv.listen(8, timeout=30)
            waited = time.monotonic() - t0
        finally:
            os.kill(pid, signal.SIGCONT)  # (also if listen failed early)
        resume.cancel()
        ticker.stop()
        state = udt4.getsockstate(srv.UDTSOCKET)
        srv.close()
        return waited, ticker.ticks, state

    waited, ticks, state = run(main())
    assert state == udt4.LISTENING
    assert 0.25 <= waited < 10, f"listen returned after {waited:.3f} s (worker resumed at 0.3 s)"
    # 0.3 s of 5 ms sleeps: a loop blocked in listen would have let it tick ~0 times
    assert ticks >= 10, f"the ticker ran only {ticks} times while listen waited"


def test_stream_both_ways_and_its_end(run: Any) -> None:
    up, down = pattern(2_000_000, 3), pattern(1_000_000, 4)

    async def recv_exactly(s: AsyncUdtSocket, n: int) -> bytes:
        got = bytearray()
        while len(got) < n:
            chunk = await s.recv(1 << 20, timeout=60)
            assert chunk, "the stream ended early"
            got += chunk
        return bytes(got)

    async def main() -> tuple[bytes, bytes, bytes]:
        srv, client, conn = await connected()
        ticker = Ticker()
        # four tasks at once: each direction's sender waits for room, its receiver for data
        _, _, got_up, got_down = await asyncio.gather(
            client.sendall(up, timeout=60), conn.sendall(down, timeout=60),
            recv_exactly(conn, len(up)), recv_exactly(client, len(down)))
        ticker.stop()
        client.close()
        end = await conn.recv(10, timeout=30)  # the peer closed, everything read
        conn.close(), srv.close()
        assert ticker.ticks > 0
        return got_up, got_down, end

    got_up, got_down, end = run(main())
    assert got_up == up and got_down == down and end == b""


def test_messages(run: Any) -> None:
    msgs = [pattern(n, n) for n in (1, 1456, 1457, 100_000, 7)]

    async def main() -> tuple[list[bytes], int]:
        srv, client, conn = await connected(socket.SOCK_DGRAM)
        # the first recvmsg waits before anything is sent
        first = asyncio.create_task(conn.recvmsg(1 << 20, timeout=60))
        await asyncio.sleep(0.05)
        for m in msgs:
            assert await client.sendmsg(m, inorder=True, timeout=30) == len(m)
        got = [await first] + [await conn.recvmsg(1 << 20, timeout=60) for _ in msgs[1:]]
        client.close()
        with pytest.raises(udt4.UDTException) as e:
            await conn.recvmsg(10, timeout=30)
        conn.close(), srv.close()
        return got, e.value.code

    got, code = run(main())
    assert got == msgs and code == udt4.ECONNLOST


def test_timeout_and_cancel_leave_the_socket_usable(run: Any) -> None:
    async def main() -> list[bytes]:
        srv, client, conn = await connected()
        with pytest.raises(TimeoutError, match="recv not done within 0.2 s"):
            await conn.recv(10, timeout=0.2)
        waiting = asyncio.create_task(conn.recv(10))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(ValueError, match="timeout"):
            await conn.recv(10, timeout=-1)
        await client.send(b"after")
        got = [await conn.recv(10, timeout=30)]
        # accept times out alike; the listener still accepts afterwards
        with pytest.raises(TimeoutError):
            await srv.accept(timeout=0.2)
        for s in (client, conn, srv):
            s.close()
        return got

    assert run(main()) == [b"after"]


def test_waiting_sockets_cost_no_thread(run: Any) -> None:
    async def main() -> tuple[int, int, list[bytes]]:
        before = threading.active_count()
        pairs = [await connected() for _ in range(3)]
        recvs = [asyncio.create_task(conn.recv(10, timeout=60)) for _, _, conn in pairs]
        await asyncio.sleep(0.2)
        during = threading.active_count()
        for i, (_, client, _) in enumerate(pairs):
            await client.send(bytes([65 + i]))
        got = list(await asyncio.gather(*recvs))
        for trio in pairs:
            for s in trio:
                s.close()
        return before, during, got

    before, during, got = run(main())
    assert during == before, f"{during - before} threads appeared while 3 recvs waited"
    assert got == [b"A", b"B", b"C"]


def test_wrap_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match="AsyncUdtSocket wraps a udt4.UDTSOCKET"):
        AsyncUdtSocket(object())  # type: ignore[arg-type]
