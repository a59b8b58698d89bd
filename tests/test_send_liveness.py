"""A send that cannot leave raises (docs/guarantees.md, "A send that cannot leave
raises"): on a channel whose pool stopped or died, or that was closed from elsewhere,
send, send_many and recv raise ChannelClosedError / PoolNotRunningError and
``closed`` is True; a send with no destination raises; send_to answers a packet.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import rtudp
from fake_worker import worker_argv

pytestmark = pytest.mark.rtudp(worker=worker_argv(), rt_priority=0)

#: how long a failure may take to show: far more than the 2 s heartbeat threshold and
#: the 0.2 s wait slice, for a loaded machine
BOUND_S = 15.0


def assert_dead(ch: rtudp.Channel, error: type[Exception]) -> None:
    """Every way of using ``ch`` raises ``error``, and ``closed`` says so."""
    assert ch.closed
    with pytest.raises(error):
        ch.send(b"x")
    with pytest.raises(error):
        ch.send(b"x", at_ns=time.monotonic_ns() + 1_000_000)
    with pytest.raises(error):
        ch.send_many([b"y"] * 10)
    with pytest.raises(error):
        ch.recv(timeout=0.5)


def test_pool_stop_ends_attached_handles(rtudp_pool):
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", 0))
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
    other = rtudp.attach("b", pool=rtudp_pool.name)      # as another program would
    reader = rtudp.attach("a", pool=rtudp_pool.name)
    other.send(b"before")
    assert reader.recv(timeout=5).data == b"before"
    waiting: list[BaseException] = []

    def wait_forever() -> None:
        try:
            reader.recv()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            waiting.append(exc)

    t = threading.Thread(target=wait_forever)
    t.start()
    time.sleep(0.1)
    rtudp_pool.stop()
    t.join(BOUND_S)
    assert not t.is_alive(), "a recv() without timeout went on waiting after the pool stopped"
    assert isinstance(waiting[0], rtudp.ChannelClosedError), waiting
    assert_dead(other, rtudp.ChannelClosedError)
    assert_dead(reader, rtudp.ChannelClosedError)
    for ch in (other, reader, a, b):
        ch.close()


def test_close_from_elsewhere_ends_other_handles(rtudp_pool):
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", 0))
    rtudp_pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
    other = rtudp.attach("b", pool=rtudp_pool.name)
    assert not other.closed
    rtudp_pool.close_channel("b")
    assert_dead(other, rtudp.ChannelClosedError)
    other.close()
    assert other.closed


DYING_OWNER = textwrap.dedent("""
    import sys, time, rtudp
    pool = rtudp.Pool(sys.argv[1], rt_priority=0).start()
    a = pool.open_channel("a", local=("127.0.0.1", 0))
    pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
    print("ready", flush=True)
    time.sleep(600)
""")


def test_supervisor_killed_sends_raise_within_a_bounded_time(shm_name):
    name = shm_name.replace(".", "_")[:30]
    owner = subprocess.Popen([sys.executable, "-c", DYING_OWNER, name], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        b = rtudp.attach("b", pool=name)
        a = rtudp.attach("a", pool=name)
        b.send(b"alive")
        assert a.recv(timeout=5).data == b"alive"
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        t0 = time.monotonic()
        sends = 0
        with pytest.raises(rtudp.PoolNotRunningError):
            while time.monotonic() - t0 < BOUND_S:
                b.send(b"into the void")
                sends += 1
                time.sleep(0.25)  # a rare sender: noticed by time, not by a count of sends
        # accepted only until the heartbeat went stale, then one look later
        assert time.monotonic() - t0 < BOUND_S
        assert b.closed and a.closed
        # what arrived is read (sends on the socket itself reach it with no worker), then
        # the wait notices the pool is gone: PoolNotRunningError, not TimeoutError
        with pytest.raises(rtudp.PoolNotRunningError):
            for _ in range(sends + 1):
                a.recv(timeout=BOUND_S)
        a.close()
        b.close()
    finally:
        owner.kill()
        owner.wait(10)
        subprocess.run([sys.executable, "-m", "rtudp.tools.cli", "pool", "clean"],
                       capture_output=True, timeout=60)


def test_send_without_remote_raises_and_send_to_answers(rtudp_pool):
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", 0))          # no remote
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
    with pytest.raises(ValueError, match="no remote address.*send_to"):
        a.send(b"lost")
    with pytest.raises(ValueError, match="no remote address"):
        a.send_many([b"lost"] * 3)
    assert a.stats()["tx_errors"] == 0
    b.send(b"ping")
    pkt = a.recv(timeout=5)
    a.send_to(b"pong", pkt.source)                                     # the answer: one call
    assert b.recv(timeout=5).data == b"pong"
    st = a.stats()
    assert st["tx_packets"] == 1 and st["tx_bytes"] == 4 and st["tx_direct"] == 1
    with pytest.raises(ValueError, match="addr"):
        a.send_to(b"x", ("127.0.0.1", 0))
    with pytest.raises(ValueError, match="max_datagram"):
        a.send_to(b"x" * (a.max_datagram + 1), pkt.source)


def test_send_of_not_bytes_names_the_type(rtudp_pool):
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", 0))
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
    for bad in (None, 42, "text"):
        with pytest.raises(TypeError, match=f"bytes-like.*{type(bad).__name__}"):
            b.send(bad)


SYNC_PROGRAM = textwrap.dedent("""
    import rtudp
    a = rtudp.open_channel("a", local=("127.0.0.1", 0))
    b = rtudp.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
    b.send(b"ping")
    print(a.recv(timeout=5).data.decode(), flush=True)
    a.recv()                                   # waits until the signal
""")

AIO_PROGRAM = textwrap.dedent("""
    import asyncio, rtudp.aio

    async def main():
        a = await rtudp.aio.open_channel("a", local=("127.0.0.1", 0))
        b = await rtudp.aio.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
        async with a, b:
            await b.send(b"ping")
            print((await a.recv(timeout=5.0)).data.decode(), flush=True)
            async for pkt in a:
                ...

    asyncio.run(main())
""")


THREAD_PROGRAM = textwrap.dedent("""
    import threading, rtudp

    def run():                                 # the pool starts in this thread
        a = rtudp.open_channel("a", local=("127.0.0.1", 0))
        b = rtudp.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
        b.send(b"ping")
        print(a.recv(timeout=5).data.decode(), flush=True)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    threading.Event().wait()                   # the main thread blocked for good
""")

PROGRAMS = {"sync": SYNC_PROGRAM, "aio": AIO_PROGRAM, "thread": THREAD_PROGRAM}


@pytest.mark.parametrize("program", list(PROGRAMS))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigterm_to_the_group_leaves_nothing(shm_name, program, sig):
    """A program on its embedded pool (started in its main thread, by rtudp.aio, or in
    another thread), signalled with its whole process group (Ctrl-C at a terminal,
    `timeout`): it ends without restart or pipe noise, leaving no segment and no stale
    pool."""
    from rtudp.workers.registry import pool_state, segment_files

    name = shm_name.replace(".", "_")[:30]
    code = PROGRAMS[program]
    # a process group of its own, not a session: a new session is a new scheduler
    # autogroup, which beside busy loops may wait seconds for its first turn
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "RTUDP_POOL": name}, **group)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ping"
        os.killpg(proc.pid, sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait(10)
    for noise in ("restarting", "Broken pipe", "REMOVE", "Connection reset", "died with"):
        assert noise not in err, err
    assert segment_files(name) == [], err
    assert pool_state(name) == "absent"


def test_an_asyncio_recv_raises_when_the_pool_stops(rtudp_pool):
    import asyncio

    import rtudp.aio

    a = rtudp_pool.open_channel("a", local=("127.0.0.1", 0))
    other = rtudp.attach("a", pool=rtudp_pool.name)

    async def main() -> BaseException:
        async_other = rtudp.aio.wrap(other)
        waiting = asyncio.ensure_future(async_other.recv())      # no timeout
        await asyncio.sleep(0.2)
        await asyncio.get_running_loop().run_in_executor(None, rtudp_pool.stop)
        try:
            await asyncio.wait_for(waiting, BOUND_S)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            return exc
        raise AssertionError("recv() returned on a stopped pool")

    exc = asyncio.run(main())
    assert isinstance(exc, rtudp.ChannelClosedError), repr(exc)
    other.close()
    a.close()
