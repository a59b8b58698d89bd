"""rtudp.aio: channels in an event loop, on asyncio's loop and on uvloop's.

What a user relies on: the loop keeps running while a receive waits (a ticker task
counts), every wait ends when its datagram / room / image comes (readiness through an
eventfd the worker writes, no thread, no polling), a cancelled wait breaks nothing,
many channels share one loop, a worker restart does not strand a waiting loop, and a
registration the worker refuses is a clear error.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

import rtudp
import rtudp.aio as aio
from fake_worker import worker_argv
from netflux_helpers import netflux_pair
from rtudp.shmring._native import ffi, lib

# the native worker (the Python fake writes no eventfds); a broken build fails here
pytestmark = pytest.mark.rtudp(worker=worker_argv(), rt_priority=0)

try:
    import uvloop
except ImportError:  # the test extra installs it; say so when it is missing
    uvloop = None

LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    uvloop is None, reason="uvloop is not installed (pip install 'rtudp[uvloop]')"))]


@pytest.fixture(params=LOOPS)
def run(request):
    """Runs a coroutine to completion on a fresh loop of the parameter's kind."""
    def runner(coro):
        if request.param == "uvloop":
            return uvloop.run(coro)
        return asyncio.run(coro)
    return runner


class Ticker:
    """A task that counts how often the loop let it run (every 5 ms)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    def stop(self) -> None:
        self.task.cancel()


def test_loop_runs_while_recv_waits(loopback_pair, run):
    a, b = loopback_pair

    async def main():
        ra, sb = aio.AsyncChannel(a), aio.AsyncChannel(b)
        ticker = Ticker()

        async def send_later():
            await asyncio.sleep(0.3)
            await sb.send(b"late")

        sender = asyncio.create_task(send_later())
        t0 = time.monotonic()
        pkt = await ra.recv(timeout=60)
        waited = time.monotonic() - t0
        ticker.stop()
        await sender
        ra.close(), sb.close()
        return pkt, waited, ticker.ticks

    pkt, waited, ticks = run(main())
    assert pkt.data == b"late" and pkt.source == b.local
    assert 0.25 <= waited < 10, f"recv returned after {waited:.3f} s (sent at 0.3 s)"
    # 0.3 s of 5 ms sleeps: a loop blocked in recv would have let it tick ~0 times
    assert ticks >= 10, f"the ticker ran only {ticks} times while recv waited"


def test_recv_many_iteration_and_timeouts(loopback_pair, run):
    a, b = loopback_pair

    async def main():
        ra, sb = aio.AsyncChannel(a), aio.AsyncChannel(b)
        assert await ra.recv_many(8, timeout=0.05) == []
        with pytest.raises(TimeoutError, match="within 0.05 s"):
            await ra.recv(timeout=0.05)
        await sb.send_many([b"%d" % i for i in range(5)])
        got = []
        async for pkt in ra:
            got.append(pkt.data)
            if len(got) == 5:
                break
        await sb.send_many([b"x", b"y"])
        await asyncio.sleep(0.05)
        many = await ra.recv_many(8, timeout=1)
        ra.close(), sb.close()
        return got, [p.data for p in many]

    got, many = run(main())
    assert got == [b"0", b"1", b"2", b"3", b"4"]
    assert many == [b"x", b"y"]


def test_cancelled_recv_leaves_nothing_broken(loopback_pair, run):
    a, b = loopback_pair

    async def main():
        ra, sb = aio.AsyncChannel(a), aio.AsyncChannel(b)
        waiting = asyncio.create_task(ra.recv())
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        armed = a._seg.block.async_wait.armed[lib.RTUDP_ASYNC_RX]
        # the same wrapper waits again and gets what comes next
        again = asyncio.create_task(ra.recv(timeout=60))
        await asyncio.sleep(0.05)
        await sb.send(b"after")
        t0 = time.monotonic()
        pkt = await again
        assert time.monotonic() - t0 < 10, "the second wait was not woken"
        ra.close(), sb.close()
        return armed, pkt

    armed, pkt = run(main())
    assert armed == 0, "a cancelled wait left its bit armed"
    assert pkt.data == b"after"


def test_many_channels_in_one_loop(rtudp_pool, run):
    n = 12
    pool = rtudp_pool
    receivers = [pool.open_channel(f"r{i}", local=("127.0.0.1", 0), cpu=pool.cpus[i % 2])
                 for i in range(n)]
    sender = pool.open_channel("s", local=("127.0.0.1", 0))  # unconnected: sends via sendto

    async def main():
        wrapped = [aio.AsyncChannel(r) for r in receivers]
        ticker = Ticker()
        waits = [asyncio.create_task(w.recv(timeout=60)) for w in wrapped]
        await asyncio.sleep(0.1)
        senders = [pool.open_channel(f"t{i}", local=("127.0.0.1", 0),
                                     remote=receivers[i].local) for i in reversed(range(n))]
        for k, s in enumerate(senders):
            s.send(b"to %d" % (n - 1 - k))
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        got = await asyncio.gather(*waits)
        assert time.monotonic() - t0 < 10, "the waits were not woken"
        ticker.stop()
        for w in wrapped:
            w.close()
        for s in senders:
            s.close()
        return [p.data for p in got], ticker.ticks

    data, ticks = run(main())
    sender.close()
    assert data == [b"to %d" % i for i in range(n)]
    assert ticks >= 10


def test_send_waits_for_room(rtudp_pool, run):
    sink = rtudp_pool.open_channel("sink", local=("127.0.0.1", 0), direction=1)
    src = rtudp_pool.open_channel("src", remote=sink.local, direction=0, capacity=1024,
                                  max_datagram=64)

    async def main():
        tx, rx = aio.AsyncChannel(src), aio.AsyncChannel(sink)
        due = time.monotonic_ns() + 1_000_000_000
        queued = 0
        while True:  # fill the ring (a few ms) with datagrams due in 1 s
            try:
                src.send(b"%06d" % queued, due)
                queued += 1
            except rtudp.BackPressureError:
                break
        ticker = Ticker()
        await tx.send(b"last")  # waits until the worker has sent some and freed room
        returned = time.monotonic_ns()
        ticker.stop()
        got = 0
        while True:
            pkts = await rx.recv_many(1024, timeout=2)
            got += len(pkts)
            if not pkts or pkts[-1].data == b"last":
                break
        tx.close(), rx.close()
        return queued, (returned - due) / 1e9, ticker.ticks, got

    queued, after_due, ticks, got = run(main())
    assert queued > 100
    # no room before the worker sent the first datagram, at its deadline
    assert after_due >= -0.002, f"send returned {-after_due:.3f} s before the ring had room"
    assert after_due < 10, "the worker's freeing of room did not wake the loop"
    assert ticks >= 10
    assert got == queued + 1


@pytest.mark.rtudp(horizon_s=7200)  # deadlines an hour ahead: within this pool's horizon
def test_send_timeout_raises_back_pressure(rtudp_pool, run):
    src = rtudp_pool.open_channel("src", remote=("127.0.0.1", 9), direction=0, capacity=1024,
                                  max_datagram=64)

    async def main():
        tx = aio.AsyncChannel(src)
        later = time.monotonic_ns() + 3600 * 10**9
        with pytest.raises(rtudp.BackPressureError, match="still full after 0.1 s"):
            while True:
                await tx.send(b"x" * 64, later, timeout=0.1)
        tx.close()

    run(main())


def test_a_worker_restart_does_not_strand_a_waiting_loop(loopback_pair, rtudp_pool,
                                                         run):
    a, b = loopback_pair

    async def main():
        ra = aio.AsyncChannel(a)
        waiting = asyncio.create_task(ra.recv(timeout=60))
        await asyncio.sleep(0.1)
        old = rtudp_pool.workers()[a.worker]
        os.kill(old["pid"], signal.SIGKILL)
        until = time.monotonic() + 10
        while rtudp_pool.workers()[a.worker]["pid"] == old["pid"] and time.monotonic() < until:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        b.send(b"after restart")
        t0 = time.monotonic()
        pkt = await waiting
        assert time.monotonic() - t0 < 10, "the restarted worker did not wake the loop"
        ra.close()
        return pkt, rtudp_pool.workers()[a.worker]["restarts"]

    pkt, restarts = run(main())
    assert restarts == 1
    assert pkt.data == b"after restart"


def test_rtp_frames(rtudp_pool, run):
    rx = rtudp_pool.open_channel("rx", kind="rtp", direction=1, options={"latency_ms": 20})
    tx = rtudp_pool.open_channel("tx", remote=rx.local, direction=0, kind="rtp",
                                 options={"ptime_ms": 10})

    async def main():
        arx, atx = aio.AsyncChannel(rx), aio.AsyncChannel(tx)
        await atx.send_many([b"%02d" % i * 40 for i in range(5)])
        frames = [await arx.recv(timeout=5) for _ in range(5)]
        arx.close(), atx.close()
        return frames

    frames = run(main())
    assert [bytes(f.payload) for f in frames] == [b"%02d" % i * 40 for i in range(5)]
    assert all(not f.erasure for f in frames)


def test_netflux_wait_update(rtudp_pool, run):
    opts = {"send_interval": 0.01, "watch_interval": 0.1, "send_size": 4, "recv_size": 4}
    nfa, nfb = netflux_pair(rtudp_pool, opts)

    async def main():
        a = aio.wrap(nfa)
        assert isinstance(a, aio.AsyncNetfluxChannel)
        ticker = Ticker()
        nfb.write(b"\x01\x02\x03\x04")
        images = []
        for _ in range(5):
            images.append(await a.wait_update(timeout=2))
        ticker.stop()
        a.close()
        return images, ticker.ticks

    images, ticks = run(main())
    nfb.close()
    updates = [i.updates for i in images]
    assert updates == sorted(set(updates)), "each wait_update returned a newer image"
    assert bytes(images[-1].data) == b"\x01\x02\x03\x04"
    assert ticks >= 3


def test_open_channel_in_the_loop(rtudp_pool, run):
    async def main():
        a = await aio.open_channel("oa", rtudp_pool, local=("127.0.0.1", 0))
        b = await aio.open_channel("ob", rtudp_pool, local=("127.0.0.1", 0), remote=a.local)
        async with a, b:
            await b.send(b"hi")
            return (await a.recv(timeout=5)).data, a.local

    data, local = run(main())
    assert data == b"hi" and local[1] > 0


def test_a_registration_the_worker_refuses_is_a_clear_error(loopback_pair, run):
    """The worker writes only eventfds: a registered pipe is refused with EINVAL."""
    a, _ = loopback_pair
    r, w = os.pipe()
    try:
        slot = lib.rtudp_async_register(a._seg.block, a._control.worker(a.worker),
                                        os.getpid(), w)
        err = ffi.new("int32_t *")
        until = time.monotonic() + 5
        while (lib.rtudp_async_status(a._seg.block, slot, err) == lib.RTUDP_ASYNC_PENDING
               and time.monotonic() < until):
            time.sleep(0.01)
        assert lib.rtudp_async_status(a._seg.block, slot, err) == lib.RTUDP_ASYNC_FAILED
        assert err[0] == 22  # EINVAL
        assert lib.rtudp_async_release(a._seg.block, slot, os.getpid()) == 0
    finally:
        os.close(r), os.close(w)


def test_slots_run_out_with_a_clear_error(loopback_pair):
    a, _ = loopback_pair
    wrappers = []
    try:
        with pytest.raises(rtudp.RtUdpError, match="all 16 async waiter slots"):
            for _ in range(17):
                wrappers.append(aio.AsyncChannel(a))
        assert len(wrappers) == 16
        wrappers.pop()._waiter.close()  # a slot given back is taken again
        wrappers.append(aio.AsyncChannel(a))
    finally:
        for w in wrappers:
            w._waiter.close()


def test_closing_while_waiting_ends_the_wait(loopback_pair, run):
    """close() of the wrapper ends an `async for` cleanly; closing the channel under a
    waiting recv raises ValueError (the unmapped block is never touched)."""
    a, b = loopback_pair

    async def main():
        ra = aio.AsyncChannel(a)
        got = []

        async def consume():
            async for pkt in ra:
                got.append(pkt.data)

        loop_task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        b.send(b"one")
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        ra.close()
        await asyncio.wait_for(loop_task, 5)  # StopAsyncIteration: the loop just ends

        rb = aio.AsyncChannel(b)
        waiting = asyncio.create_task(rb.recv())
        await asyncio.sleep(0.05)
        rb.channel.close()      # the channel itself, under the waiting recv
        rb._waiter._on_ready()  # as a late wake-up would
        with pytest.raises(ValueError, match="closed"):
            await asyncio.wait_for(waiting, 5)
        rb.close()
        return got

    assert run(main()) == [b"one"]
    assert a.closed


def test_a_wrapper_outlives_its_first_loop(loopback_pair):
    """asyncio.run twice with one wrapper: the second loop takes it over."""
    a, b = loopback_pair
    ra = aio.AsyncChannel(a)

    async def one(tag: bytes):
        asyncio.get_running_loop().call_later(0.05, b.send, tag)
        return (await ra.recv(timeout=30)).data

    try:
        assert asyncio.run(one(b"first")) == b"first"
        assert asyncio.run(one(b"second")) == b"second"
    finally:
        ra.close()


def test_on_a_standalone_pool(run):
    """A pool run by another process (``rtudp pool start``): its worker, no relative of
    this process, takes our eventfd all the same."""
    from test_cli import kill_pool, pool_name, start_foreground, stop_proc

    name = pool_name()
    proc, _line = start_foreground(name)
    try:
        async def main():
            a = await aio.open_channel("a", name, local=("127.0.0.1", 0))
            b = await aio.open_channel("b", name, remote=a.local)
            async with a, b:
                ticker = Ticker()
                asyncio.get_running_loop().call_later(0.2, b.channel.send, b"standalone")
                t0 = time.monotonic()
                pkt = await a.recv(timeout=60)
                waited = time.monotonic() - t0
                ticker.stop()
                return pkt.data, ticker.ticks, waited

        data, ticks, waited = run(main())
        assert data == b"standalone" and ticks >= 5
        assert waited < 10, f"recv returned after {waited:.1f} s: the worker did not wake it"
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)
