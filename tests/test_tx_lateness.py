"""A lateness budget (Pool(tx_lateness_us=...), docs/scheduling.md): timed sends may leave
up to that late, so a worker wakes for them on a grid and sends all that are due in one
wake-up.  What holds on any machine, loaded or not: every datagram arrives once, each
channel's in deadline order, none before its deadline, and the worker parks fewer times
than there are deadlines (a loaded machine only merges more of them)."""
from __future__ import annotations

import random
import socket
import struct
import time

import pytest

import rtudp
from waiting import early_sends_once_stamped

CHANNELS = 4
PER_CHANNEL = 100
SPAN_NS = 1_000_000_000   # the deadlines, at random over this long
LEAD_NS = 50_000_000      # the first deadline this far ahead: all are queued by then


def _deadlines(channels: int) -> list[list[int]]:
    """Each channel's deadlines, at random (seeded) over SPAN_NS, sorted."""
    rnd = random.Random(68)
    t0 = time.monotonic_ns() + LEAD_NS
    return [sorted(t0 + rnd.randrange(SPAN_NS) for _ in range(PER_CHANNEL))
            for _ in range(channels)]


def _run(pool: rtudp.Pool) -> tuple[dict[int, list[int]], int, int]:
    """(what arrived by channel, datagrams stamped before their deadline, parks)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        chans = [pool.open_channel(f"c{i}", remote=sink.getsockname(), direction="tx",
                                   capacity=PER_CHANNEL) for i in range(CHANNELS)]
        try:
            sleeps_before = pool.workers()[0]["sleeps"]
            for i, (ch, dues) in enumerate(zip(chans, _deadlines(CHANNELS))):
                for k, at in enumerate(dues):
                    ch.send(struct.pack("<HI", i, k), at_ns=at)
            got: dict[int, list[int]] = {i: [] for i in range(CHANNELS)}
            sink.settimeout(5)
            for _ in range(CHANNELS * PER_CHANNEL):
                i, k = struct.unpack("<HI", sink.recv(64))
                got[i].append(k)
            sleeps = pool.workers()[0]["sleeps"] - sleeps_before
            early = early_sends_once_stamped(chans, CHANNELS * PER_CHANNEL)
        finally:
            for ch in chans:
                ch.close()
        return got, early, sleeps


@pytest.mark.rtudp(cpus=[0], tx_lateness_us=20_000)
def test_a_budget_sends_each_once_in_order_never_early(rtudp_pool: rtudp.Pool) -> None:
    assert rtudp_pool.workers()[0]["tunables"]["tx_lateness_us"] == 20_000
    got, early, sleeps = _run(rtudp_pool)
    assert got == {i: list(range(PER_CHANNEL)) for i in range(CHANNELS)}, \
        "each channel's datagrams once, in deadline order"
    assert early == 0, f"{early} datagrams left before their deadline"
    # 400 deadlines over a second on a grid of at most 20 ms: about 70 grid points and
    # ten 100 ms ticks; on time, each deadline would be a park of its own
    deadlines = CHANNELS * PER_CHANNEL
    assert sleeps < deadlines // 2, f"{sleeps} parks for {deadlines} deadlines"


@pytest.mark.rtudp(cpus=[0])
def test_no_budget_by_default(rtudp_pool: rtudp.Pool) -> None:
    assert rtudp_pool.workers()[0]["tunables"]["tx_lateness_us"] == 0
    assert rtudp.Pool("x").tunables["tx_lateness_us"] == 0


def test_tx_lateness_us_is_checked() -> None:
    with pytest.raises(ValueError, match=r"tx_lateness_us=100001 is out of range 0..100000"):
        rtudp.Pool("x", tx_lateness_us=100_001)
    with pytest.raises(TypeError, match=r"tx_lateness_us must be an int.*0.5"):
        rtudp.Pool("x", tx_lateness_us=0.5)
    assert rtudp.Pool("x", idle="spin", tx_lateness_us=1000).tunables["tx_lateness_us"] == 1000
