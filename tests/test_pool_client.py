"""Clients asking a pool's supervisor for channels through the command ring.

A standalone pool (``rtudp pool start``) has no channels of its own: programs open
them with ``rtudp.PoolClient`` / ``rtudp.open_channel``.  These tests run the
supervisor in another process (the CLI, as users do) or in this one (rtudp.Pool: its
command thread answers the same ring), and check that errors come back with the type
and message the supervisor raised, that a dead client's channels are closed, and
that garbage in the command ring is answered or ignored without harm.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import rtudp
from fake_worker import worker_argv
from rtudp.shmring.control import ControlSegment
from test_cli import kill_pool, pool_name, start_foreground, stop_proc, wait_for


@pytest.fixture
def standalone():
    """A pool run by ``rtudp pool start --foreground`` in another process."""
    name = pool_name()
    proc, _line = start_foreground(name)
    try:
        yield name, proc
    finally:
        stop_proc(proc)
        kill_pool(name, proc.pid)


@pytest.fixture
def local_pool(shm_name):
    """A pool supervised by this process (its command thread serves the ring too)."""
    with rtudp.Pool(shm_name.replace(".", "_")[:30].rstrip("_-"), worker=worker_argv()) as p:
        yield p


def test_open_channels_on_a_standalone_pool(standalone):
    name, _proc = standalone
    with rtudp.PoolClient(name) as client:
        a = client.open_channel("a", local=("127.0.0.1", 0))
        b = rtudp.open_channel("b", pool=name, remote=a.local)  # routed to the same pool
        try:
            assert sorted(client.channels()) == ["a", "b"]
            for i in range(20):
                b.send(b"m%d" % i)
            assert [a.recv(timeout=5).data for _ in range(20)] == [b"m%d" % i for i in range(20)]
            b.send(b"from b")
            assert a.recv(timeout=5).source == b.local
        finally:
            b.close()
        assert client.channels() == ["a"]  # closing the handle closed it in the pool
        a.close()
        assert client.channels() == []


def test_supervisor_errors_come_back_with_their_type(local_pool):
    with rtudp.PoolClient(local_pool.name) as client:
        a = client.open_channel("a")
        try:
            with pytest.raises(ValueError, match="already open"):
                client.open_channel("a")
            with pytest.raises(rtudp.AddressInUseError, match=str(a.local[1])):
                client.open_channel("x", local=a.local)
            with pytest.raises(ValueError, match="direction=7"):
                client.open_channel("y", direction=7)
            with pytest.raises(ValueError, match="cpu=99"):
                client.open_channel("y", cpu=99)
            with pytest.raises(TypeError, match="hw_timestamps"):
                client.open_channel("y", hw_timestamps="yes")
            with pytest.raises(rtudp.ChannelNotFoundError, match="'nope'"):
                client.close_channel("nope")
            with pytest.raises(ValueError, match="invalid"):
                client.open_channel("bad/name")
            # the pool is still usable after each error
            c = client.open_channel("c", remote=a.local)
            c.send(b"still fine")
            assert a.recv(timeout=5).data == b"still fine"
            c.close()
        finally:
            a.close()
    assert local_pool.channels() == []


def test_a_dead_clients_channels_are_closed(standalone):
    name, _proc = standalone
    code = textwrap.dedent(f"""
        import os, rtudp
        ch = rtudp.open_channel("orphan", pool={name!r})
        print(ch.local[1], flush=True)
        os._exit(0)   # dies without closing anything
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    with rtudp.PoolClient(name) as client:
        assert wait_for(lambda: client.channels() == [], timeout=10), client.channels()
    # the table forgets the channel before its segment is unlinked: wait for both
    assert wait_for(lambda: not any(f.startswith(f"rtudp.{name}.orphan")
                                    for f in os.listdir("/dev/shm")), timeout=10)


def test_garbage_in_the_command_ring_is_answered_or_ignored(local_pool):
    ctl = ControlSegment.open(local_pool.name)
    try:
        reader = ctl.replies.reader()
        bad = [
            (b"\xff\xfe not json", None),
            (b"[1, 2]", None),
            (json.dumps({"id": "g1", "pid": os.getpid(), "op": "format_disk", "args": {}}),
             "unknown op"),
            (json.dumps({"id": "g2", "pid": -1, "op": "open", "args": {"name": "z"}}),
             "pid"),
            (json.dumps({"id": "g3", "pid": os.getpid(), "op": "open",
                         "args": {"name": "z", "evil": 1}}), "unknown arguments"),
            (json.dumps({"id": "g4", "pid": os.getpid(), "op": "open",
                         "args": {"name": "z", "local": "127.0.0.1:80"}}), "local must be"),
            (json.dumps({"id": "g5", "pid": os.getpid(), "op": "open", "args": {}}),
             "name is missing"),
        ]
        for raw, _ in bad:
            ctl.commands.put(raw.encode() if isinstance(raw, str) else raw, timeout=5)
        answered = {}
        while len(answered) < sum(1 for _, want in bad if want):
            reply = json.loads(reader.get(timeout=10))
            answered[reply["id"]] = reply
        for raw, want in bad:
            if want is None:
                continue
            reply = answered[json.loads(raw)["id"]]
            assert reply["ok"] is False and reply["error"][0] == "ValueError"
            assert want in reply["error"][1], reply
    finally:
        ctl.close()
    assert local_pool.channels() == []
    with rtudp.PoolClient(local_pool.name) as client:  # still serving
        client.open_channel("after").close()


def test_no_answer_from_a_stopped_supervisor_is_an_error(standalone):
    name, proc = standalone
    with rtudp.PoolClient(name, timeout=0.5) as client:
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(rtudp.PoolNotRunningError, match="no answer"):
                client.open_channel("a")
        finally:
            os.kill(proc.pid, signal.SIGCONT)
    # the request was queued: once running again the supervisor opens it for us (we are
    # alive), so it shows up; closing it through the client works
    with rtudp.PoolClient(name) as client:
        if wait_for(lambda: "a" in client.channels(), timeout=5):
            client.close_channel("a")
        assert client.channels() == []


def test_pool_client_bad_arguments():
    with pytest.raises(rtudp.PoolNotRunningError, match="not running"):
        rtudp.PoolClient("t_no_such_pool_here")
    with pytest.raises(ValueError, match="invalid pool name"):
        rtudp.PoolClient("a.b")
    with pytest.raises(ValueError, match="timeout"):
        rtudp.PoolClient("default", timeout=0)
