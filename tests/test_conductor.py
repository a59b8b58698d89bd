"""A worker's ADDs are prepared beside its TX thread (csrc/worker/conductor.h), yet every
command is answered in the order it came: the supervisor pipelines its commands and
pairs each reply with the command it waits for, so a reply that overtook an earlier
one would be lost to it.  Channels removed and added back in one batch (as a move does)
go on sending every datagram once, in order; a refused ADD keeps its place too."""
from __future__ import annotations

import time

import pytest

import rtudp
from ports import loopback_sink, receive_up_to
from rtudp.shmring._native import lib

pytestmark = pytest.mark.parametrize("rtudp_pool", [[0]], indirect=True)

PER_CHANNEL = 50


def test_replies_keep_the_order_of_the_commands(rtudp_pool: rtudp.Pool) -> None:
    sink = loopback_sink()
    names = ["ca", "cb", "cc"]
    chans = [rtudp_pool.open_channel(n, local=("127.0.0.1", 0),
                                     remote=sink.getsockname(), direction="tx")
             for n in names]
    table = rtudp_pool._table
    entries = [table.find(n) for n in names]
    link = rtudp_pool._watcher.workers[0].link
    assert link is not None
    free_slot = max(e.slot for e in entries) + 1
    # each channel let go of and taken back, with refusals between them: an ADD with no
    # socket, a REMOVE of a slot that serves nothing
    cmds: list[tuple[int, int, str, list[int] | None]] = []
    for e in entries:
        cmds.append((lib.RTUDP_CMD_REMOVE, e.slot, e.name, None))
        cmds.append((lib.RTUDP_CMD_ADD, e.slot, e.name, e.sock.fds()))
    cmds.insert(2, (lib.RTUDP_CMD_ADD, free_slot, "nosocket", None))
    cmds.insert(5, (lib.RTUDP_CMD_REMOVE, free_slot, "nothing", None))
    replies = link.commands(cmds, timeout=10.0)
    statuses = [status for status, _ in replies]
    want = [0, 0, lib.RTUDP_EINVAL, 0, 0, lib.RTUDP_EINVAL, 0, 0]
    assert statuses == want, replies
    assert "carries no socket" in replies[2][1]
    assert "no channel in that slot" in replies[5][1]
    # every channel serves again: each datagram once, each channel's in order
    for k in range(PER_CHANNEL):
        for i, ch in enumerate(chans):
            ch.send(bytes([i, k]))
    got = receive_up_to(sink, len(chans) * PER_CHANNEL)
    assert len(got) == len(chans) * PER_CHANNEL
    for i in range(len(chans)):
        assert [d[1] for d in got if d[0] == i] == list(range(PER_CHANNEL))


def test_a_channel_added_twice_is_refused_the_second_time(rtudp_pool: rtudp.Pool) -> None:
    """The second ADD of a slot is refused whether the first is still being prepared or
    serves already, and the channel it would have doubled loses nothing: datagrams
    queued for later all leave, once, in order."""
    sink = loopback_sink()
    ch = rtudp_pool.open_channel("twice", local=("127.0.0.1", 0), remote=sink.getsockname(),
                                 direction="tx")
    e = rtudp_pool._table.find("twice")
    link = rtudp_pool._watcher.workers[0].link
    assert link is not None
    start = time.monotonic_ns() + 300_000_000
    for k in range(PER_CHANNEL):
        ch.send(bytes([0, k]), start + k * 1_000_000)
    replies = link.commands([(lib.RTUDP_CMD_REMOVE, e.slot, e.name, None),
                             (lib.RTUDP_CMD_ADD, e.slot, e.name, e.sock.fds()),
                             (lib.RTUDP_CMD_ADD, e.slot, e.name, e.sock.fds())], timeout=10.0)
    assert [s for s, _ in replies] == [0, 0, lib.RTUDP_EINVAL], replies
    assert ("slot %d is already being added" % e.slot in replies[2][1]
            or "already serves channel 'twice'" in replies[2][1]), replies[2]
    got = receive_up_to(sink, PER_CHANNEL)
    assert [d[1] for d in got] == list(range(PER_CHANNEL))
    ch.send(b"still here")
    assert receive_up_to(sink, 1) == [b"still here"]
