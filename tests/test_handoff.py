"""A running channel is handed from one worker to another by the workers themselves
(csrc/worker/handoff.c): the worker taking it over prepares it while the other still
serves it, and serves it once the other's REMOVE lets go.  Only one worker serves it
at a time: every datagram leaves once and in order, and a channel dropped before it
was taken over stays with the worker that has it."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

import rtudp
from ports import loopback_sink, receive_up_to
from rtudp.shmring._native import lib
from waiting import wait_for

pytestmark = pytest.mark.parametrize("rtudp_pool", [[0, 1]], indirect=True)

N = 60
GAP_NS = 5_000_000


def _serving(pool: rtudp.Pool, index: int) -> int:
    return int(pool._ctx.control.workers()[index]["channels"])  # type: ignore[attr-defined]


def _link(pool: rtudp.Pool, index: int) -> Any:
    link = pool._watcher.workers[index].link  # type: ignore[attr-defined]
    assert link is not None
    return link


def _hand(pool: rtudp.Pool, e: Any, frm: int, to: int) -> None:
    """Hand channel entry ``e`` from worker ``frm`` to ``to`` as a move does, checking
    that ``to`` serves it only once ``frm`` let go."""
    e.seg.expect_handoff(to)
    [(status, msg)] = _link(pool, to).commands(
        [(lib.RTUDP_CMD_TAKE_OVER, e.slot, e.name, e.sock.fds())], timeout=10.0)
    assert status == 0, msg
    assert "served once released" in msg
    # prepared, not served: the worker that has it goes on alone
    assert _serving(pool, to) == 0 and _serving(pool, frm) == 1
    again = _link(pool, to).commands(
        [(lib.RTUDP_CMD_TAKE_OVER, e.slot, e.name, e.sock.fds())], timeout=10.0)
    assert again[0][0] == lib.RTUDP_EINVAL and "already being added" in again[0][1], again
    [(status, msg)] = _link(pool, frm).commands(
        [(lib.RTUDP_CMD_REMOVE, e.slot, e.name, None)], timeout=10.0)
    assert status == 0, msg
    assert wait_for(lambda: _serving(pool, to) == 1, timeout=5), "not taken over"
    assert _serving(pool, frm) == 0
    assert int(e.seg.block.worker) == to  # its producers wake the new worker
    assert int(e.seg.block.handoff) == lib.RTUDP_HANDOFF_NONE


def test_a_channel_handed_over_sends_every_datagram_once_in_order(
        rtudp_pool: rtudp.Pool) -> None:
    sink = loopback_sink(rcvbuf=4 << 20)
    ch = rtudp_pool.open_channel("handed", local=("127.0.0.1", 0),
                                 remote=sink.getsockname(), direction="tx", capacity=1024)
    e = rtudp_pool._table.find("handed")  # type: ignore[attr-defined]
    frm, to = e.worker, 1 - e.worker
    try:
        start = time.monotonic_ns() + 50_000_000
        for k in range(N):  # due over the handoffs there and back
            ch.send(k.to_bytes(2, "big"), start + k * GAP_NS)
        _hand(rtudp_pool, e, frm, to)
        ch.send(b"\xff\x00")  # an immediate send reaches the worker serving now
        _hand(rtudp_pool, e, to, frm)  # back, so that the pool's table is right again
        got = receive_up_to(sink, N + 1)
        timed = [int.from_bytes(d, "big") for d in got if d != b"\xff\x00"]
        assert timed == list(range(N))
        assert got.count(b"\xff\x00") == 1
        assert wait_for(lambda: ch.stats()["tx_packets"] == N + 1, timeout=5)
        # each worker reads again what the other took and did not send: counted once.
        # A timed record that reaches the ring after its deadline (a starved sender)
        # counts as late, and every late one is also immediate; the one immediate
        # send was never late.
        s = ch.stats()
        assert s["tx_requested"] == N + 1, s
        assert s["tx_immediate"] == 1 + s["tx_late"], s
        assert s["tx_late"] <= N, s
    finally:
        ch.close()
        sink.close()


def test_a_channel_removed_before_it_is_taken_over_stays_where_it_is(
        rtudp_pool: rtudp.Pool) -> None:
    sink = loopback_sink()
    ch = rtudp_pool.open_channel("kept", local=("127.0.0.1", 0),
                                 remote=sink.getsockname(), direction="tx")
    e = rtudp_pool._table.find("kept")  # type: ignore[attr-defined]
    frm, to = e.worker, 1 - e.worker
    try:
        e.seg.expect_handoff(to)
        replies = _link(rtudp_pool, to).commands(
            [(lib.RTUDP_CMD_TAKE_OVER, e.slot, e.name, e.sock.fds()),
             (lib.RTUDP_CMD_REMOVE, e.slot, e.name, None),
             (lib.RTUDP_CMD_REMOVE, e.slot, e.name, None)], timeout=10.0)
        assert [s for s, _ in replies] == [0, 0, lib.RTUDP_EINVAL], replies
        assert "before it was taken over" in replies[1][1]
        e.seg.cancel_handoff()
        for k in range(20):
            ch.send(bytes([k]))
        assert [d[0] for d in receive_up_to(sink, 20)] == list(range(20))
        assert _serving(rtudp_pool, frm) == 1 and _serving(rtudp_pool, to) == 0
    finally:
        ch.close()
        sink.close()


@pytest.mark.parametrize("when", ["restart_under_way", "death_not_yet_seen"])
def test_a_move_whose_old_worker_dies_midway_loses_nothing(rtudp_pool: rtudp.Pool,
                                                           when: str) -> None:
    """The old worker is killed after the new one prepared the channel, before its
    REMOVE: the supervisor hands the channel over itself, the new worker serves it, and
    the old one comes back without it (its restart leaves out what moves).  Every
    datagram leaves, in order, none lost (one in flight at the kill may leave twice, as
    after any worker's death).  The REMOVE comes while the old worker's restart is
    under way (its link gone, its channels not yet given back), or before the pool saw
    the death (on the dead worker's link)."""
    sink = loopback_sink(rcvbuf=4 << 20)
    ch = rtudp_pool.open_channel("orphan", local=("127.0.0.1", 0),
                                 remote=sink.getsockname(), direction="tx", capacity=1024)
    table = rtudp_pool._table  # type: ignore[attr-defined]
    e = table.find("orphan")
    frm, to = e.worker, 1 - e.worker
    old_pid = rtudp_pool.workers()[frm]["pid"]
    hand_all_off = table._hand_all_off
    watcher = rtudp_pool._watcher  # type: ignore[attr-defined]
    spawn_worker = watcher._spawn_worker
    spawning, go = threading.Event(), threading.Event()

    def held_spawn(w: Any) -> None:
        spawning.set()
        go.wait(10)
        spawn_worker(w)

    def killed_first(w: Any, mine: Any, dest: int) -> None:
        os.kill(old_pid, signal.SIGKILL)
        if when == "restart_under_way":  # the dead worker forgotten, its successor not up
            assert spawning.wait(10)
            threading.Timer(0.05, go.set).start()
        else:
            go.set()
        hand_all_off(w, mine, dest)

    watcher._spawn_worker = held_spawn
    table._hand_all_off = killed_first
    try:
        start = time.monotonic_ns() + 50_000_000
        for k in range(N):
            ch.send(k.to_bytes(2, "big"), start + k * GAP_NS)
        rtudp_pool.move_channel("orphan", rtudp_pool.cpus[to])
        assert wait_for(lambda: rtudp_pool.workers()[frm]["restarts"] == 1, timeout=10)
        # the last is due, and a repeat would have come
        time.sleep(max(0, start + N * GAP_NS - time.monotonic_ns()) / 1e9 + 0.3)
        got = [int.from_bytes(d, "big") for d in receive_up_to(sink, 2 * N, timeout_s=2)]
        assert sorted(set(got)) == list(range(N)), f"lost {sorted(set(range(N)) - set(got))}"
        assert len(got) - N <= 1, f"{len(got) - N} sent twice"
        assert _serving(rtudp_pool, to) == 1
        assert _serving(rtudp_pool, frm) == 0  # it came back without the channel
        assert ch.worker == to
    finally:
        go.set()
        table._hand_all_off = hand_all_off
        watcher._spawn_worker = spawn_worker
        ch.close()
        sink.close()


def test_the_supervisor_hands_over_what_a_gone_worker_cannot(rtudp_pool: rtudp.Pool) -> None:
    """A REMOVE that finds its worker gone hands the channel over from the supervisor:
    the producers' route moves and the awaiting worker serves it."""
    from rtudp.workers.link import WorkerGone

    class GoneLink:
        def commands(self, *_: Any, **__: Any) -> Any:
            raise WorkerGone("gone")

    sink = loopback_sink()
    ch = rtudp_pool.open_channel("gone", local=("127.0.0.1", 0),
                                 remote=sink.getsockname(), direction="tx")
    table = rtudp_pool._table  # type: ignore[attr-defined]
    e = table.find("gone")
    frm, to = e.worker, 1 - e.worker
    try:
        # the worker serving it lets go with no handoff awaited, as a dead one has
        [(status, msg)] = _link(rtudp_pool, frm).commands(
            [(lib.RTUDP_CMD_REMOVE, e.slot, e.name, None)], timeout=10.0)
        assert status == 0, msg
        e.seg.expect_handoff(to)
        [(status, msg)] = _link(rtudp_pool, to).commands(
            [(lib.RTUDP_CMD_TAKE_OVER, e.slot, e.name, e.sock.fds())], timeout=10.0)
        assert status == 0, msg
        gone = type("GoneWorker", (), {})()
        gone.link, gone.ready = GoneLink(), threading.Event()
        gone.ready.set()
        table._hand_all_off(gone, [e], to)
        assert wait_for(lambda: _serving(rtudp_pool, to) == 1, timeout=5), "not taken over"
        assert int(e.seg.block.worker) == to
        ch.send(b"after")
        assert receive_up_to(sink, 1) == [b"after"]
        _hand(rtudp_pool, e, to, frm)  # back, so that the pool's table is right again
    finally:
        ch.close()
        sink.close()


def test_direct_sends_resume_once_the_channel_is_taken_over(rtudp_pool: rtudp.Pool) -> None:
    """A move holds the clients' own sends on the channel's socket while no worker
    serves it; the worker that takes it over lets them go on."""
    sink = loopback_sink()
    ch = rtudp_pool.open_channel("direct", local=("127.0.0.1", 0),
                                 remote=sink.getsockname(), direction="tx")
    e = rtudp_pool._table.find("direct")  # type: ignore[attr-defined]
    try:
        before = int(e.seg.block.direct.state)
        if before != lib.RTUDP_DIRECT_ON:
            pytest.skip("this kernel keys no TX stamp per send: clients never send "
                        "on the socket themselves, and a channel moves the slow way")
        for n in range(4):
            rtudp_pool.move_channel("direct", rtudp_pool.cpus[1 - ch.worker])
            assert wait_for(lambda: int(e.seg.block.direct.state) == before, timeout=5), \
                f"direct sends still {int(e.seg.block.direct.state)} after move {n + 1}"
            ch.send(bytes([n]))
        assert [d[0] for d in receive_up_to(sink, 4)] == [0, 1, 2, 3]
    finally:
        ch.close()
        sink.close()


def test_a_slice_of_channels_handed_over_together_is_served_whole(
        rtudp_pool: rtudp.Pool) -> None:
    """A spread hands dozens of channels over in one slice: every one of them is
    served by the new worker and sends all it had queued, once and in order."""
    n_chans, per_chan = 21, 12
    sink = loopback_sink(rcvbuf=4 << 20)
    chans = [rtudp_pool.open_channel(f"slice{i}", local=("127.0.0.1", 0),
                                     remote=sink.getsockname(), direction="tx", capacity=64,
                                     cpu=rtudp_pool.cpus[0])
             for i in range(n_chans)]
    table = rtudp_pool._table  # type: ignore[attr-defined]
    try:
        start = time.monotonic_ns() + 50_000_000
        for k in range(per_chan):  # due before, over and after the handoff
            for i, ch in enumerate(chans):
                ch.send(bytes([i, k]), start + k * GAP_NS)
        assert table.move_many([ch.name for ch in chans], 1) == n_chans
        assert wait_for(lambda: _serving(rtudp_pool, 1) == n_chans, timeout=10)
        assert _serving(rtudp_pool, 0) == 0
        got = receive_up_to(sink, n_chans * per_chan)
        for i in range(n_chans):
            assert [d[1] for d in got if d[0] == i] == list(range(per_chan)), i
        assert len(got) == n_chans * per_chan
        for ch in chans:
            assert wait_for(lambda: ch.stats()["tx_packets"] == per_chan, timeout=5)
            assert ch.stats()["tx_requested"] == per_chan
    finally:
        for ch in chans:
            ch.close()
        sink.close()
