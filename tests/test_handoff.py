"""A running channel is handed from one worker to another by the workers themselves
(csrc/worker/handoff.c): the worker taking it over prepares it while the other still
serves it, and serves it once the other's REMOVE lets go.  Only one worker serves it
at a time: every datagram leaves once and in order, and a channel dropped before it
was taken over stays with the worker that has it."""
from __future__ import annotations

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
