"""Deadlines in groups (Pool(tx_coalesce_us=...), docs/scheduling.md): other channels'
deadlines close behind one another on a worker whose budget cannot wait for each leave
together, early by at most tx_coalesce_us, while a channel's own keep their spacing; 0
sends every one at its own time, never before it.  Either
way every datagram arrives once, each channel's in deadline order.  The pools here
spin nothing (idle="park"), so any close deadline is one the budget cannot pay for."""
from __future__ import annotations

import socket
import struct
import time

import pytest

import rtudp
from waiting import early_sends_once_stamped

CHANNELS = 8
PER_CHANNEL = 200
SPACING_NS = 20_000       # one deadline every 20 µs across the channels: closer than the
                          # 50 µs window, and a round longer than a late wake-up
ROUND_NS = 2_000_000      # a round of the channels' deadlines every 2 ms: a worker that
                          # wakes late for one round (a loaded machine) is on time for others
LEAD_NS = 50_000_000      # the first deadline this far ahead: all are queued by then


def _send_dense(pool: rtudp.Pool, sink: socket.socket, channels: int) -> list[rtudp.Channel]:
    """`channels` channels to `sink`, each sent PER_CHANNEL numbered datagrams: round k
    of their deadlines at k x ROUND_NS, the channels' SPACING_NS apart in it (one
    channel: its own deadlines SPACING_NS apart, throughout)."""
    chans = [pool.open_channel(f"c{i}", local=("127.0.0.1", 0), remote=sink.getsockname(),
                               direction="tx", capacity=PER_CHANNEL)
             for i in range(channels)]
    t0 = time.monotonic_ns() + LEAD_NS
    for k in range(PER_CHANNEL):
        for i, ch in enumerate(chans):
            at = (t0 + k * SPACING_NS if channels == 1
                  else t0 + k * ROUND_NS + i * SPACING_NS)
            ch.send(struct.pack("<HI", i, k), at_ns=at)
    return chans


def _receive_all(sink: socket.socket, channels: int) -> dict[int, list[int]]:
    """Every datagram the sink gets, by channel: the numbers in arrival order."""
    got: dict[int, list[int]] = {i: [] for i in range(channels)}
    sink.settimeout(5)
    for _ in range(channels * PER_CHANNEL):
        i, k = struct.unpack("<HI", sink.recv(64))
        got[i].append(k)
    return got


def _run(pool: rtudp.Pool, channels: int = CHANNELS) -> tuple[dict[int, list[int]], int, int]:
    """(what arrived, datagrams stamped before their deadline, tx_coalesced)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        before = pool.workers()[0]["tx_coalesced"]
        chans = _send_dense(pool, sink, channels)
        try:
            got = _receive_all(sink, channels)
            early = early_sends_once_stamped(chans, channels * PER_CHANNEL)
        finally:
            for ch in chans:
                ch.close()
        return got, early, pool.workers()[0]["tx_coalesced"] - before


@pytest.mark.rtudp(cpus=[0], idle="park")
def test_close_deadlines_leave_together_and_in_order(rtudp_pool: rtudp.Pool) -> None:
    assert rtudp_pool.workers()[0]["tx_coalesce_ns"] == 50_000, "the default: 50 µs"
    got, early, coalesced = _run(rtudp_pool)
    assert got == {i: list(range(PER_CHANNEL)) for i in range(CHANNELS)}, \
        "each channel's datagrams once, in deadline order"
    assert coalesced > 0, "rounds of deadlines 20 µs apart, no budget to spin: some in groups"
    assert early > 0, "a deadline sent with an earlier one is stamped before it"
    assert early <= coalesced, f"{early} early sends, but only {coalesced} were grouped"


@pytest.mark.rtudp(cpus=[0], idle="park")
def test_a_stream_keeps_its_own_spacing(rtudp_pool: rtudp.Pool) -> None:
    """One channel's deadlines 20 µs apart: a group takes other channels' deadlines
    only, so none of its own leaves early."""
    got, early, coalesced = _run(rtudp_pool, channels=1)
    assert got == {0: list(range(PER_CHANNEL))}
    assert coalesced == 0 and early == 0, f"{coalesced} grouped, {early} early"


@pytest.mark.rtudp(cpus=[0], idle="park", tx_coalesce_us=0)
def test_groups_off_send_nothing_before_its_deadline(rtudp_pool: rtudp.Pool) -> None:
    assert rtudp_pool.workers()[0]["tx_coalesce_ns"] == 0
    got, early, coalesced = _run(rtudp_pool)
    assert got == {i: list(range(PER_CHANNEL)) for i in range(CHANNELS)}
    assert coalesced == 0
    assert early == 0, f"{early} datagrams left before their deadline with groups off"


def test_tx_coalesce_us_is_checked() -> None:
    with pytest.raises(ValueError, match=r"tx_coalesce_us=1001 is out of range 0..1000"):
        rtudp.Pool("x", tx_coalesce_us=1001)
    with pytest.raises(TypeError, match=r"tx_coalesce_us must be an int.*0.5"):
        rtudp.Pool("x", tx_coalesce_us=0.5)
    assert rtudp.Pool("x", idle="spin").tunables["tx_coalesce_us"] == 0
    assert rtudp.Pool("x").tunables["tx_coalesce_us"] == 50


NF_CHANNELS = 8
NF_INTERVAL_NS = 2_000_000
NF_SECONDS = 0.5


def _netflux_run(pool: rtudp.Pool) -> tuple[dict[int, list[int]], dict[str, int], int, int]:
    """NF_CHANNELS netflux channels on the pool's one worker (so no standby), cycles of
    2 ms whose schedules start SPACING_NS apart, for NF_SECONDS.  Returns (sequence
    bytes each channel put on the wire, in arrival order; the channels' nf_ counters
    summed; cycles stamped before their due time; tx_coalesced)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        before = pool.workers()[0]["tx_coalesced"]
        t0 = time.monotonic_ns() + LEAD_NS
        chans = [pool.open_channel(f"nf{i}", local=("127.0.0.1", 0), remote=sink.getsockname(),
                                   kind="netflux",
                                   options={"send_interval": NF_INTERVAL_NS / 1e9, "send_size": 4,
                                            "start_ns": t0 + i * SPACING_NS})
                 for i in range(NF_CHANNELS)]
        try:
            port_of = {ch.local[1]: i for i, ch in enumerate(chans)}
            time.sleep(LEAD_NS / 1e9 + NF_SECONDS)
            for ch in chans:
                pool.pause_channel(ch.name)  # nothing more is sent: the sink holds it all
            seqs: dict[int, list[int]] = {i: [] for i in range(NF_CHANNELS)}
            sink.setblocking(False)
            while True:
                try:
                    data, src = sink.recvfrom(64)
                except BlockingIOError:
                    break
                seqs[port_of[src[1]]].append(data[0])
            totals: dict[str, int] = {}
            for ch in chans:
                for k, v in ch.stats().items():
                    if k.startswith("nf_") and isinstance(v, int):
                        totals[k] = totals.get(k, 0) + v
            early = sum(ch.histograms()["tx_lateness"].negative for ch in chans)
        finally:
            for ch in chans:
                ch.close()
        return seqs, totals, early, pool.workers()[0]["tx_coalesced"] - before


def _check_netflux_wire(seqs: dict[int, list[int]], totals: dict[str, int]) -> None:
    """Each channel's sequence byte goes up by exactly one a packet, and every cycle
    is accounted for (docs/guarantees.md)."""
    for i, got in seqs.items():
        assert len(got) > NF_SECONDS * 1e9 / NF_INTERVAL_NS / 2, f"channel {i}: {len(got)} cycles"
        steps = {(b - a) % 256 for a, b in zip(got, got[1:])}
        assert steps == {1}, f"channel {i}: sequence steps {sorted(steps)}"
    assert totals["nf_cycle"] == (totals["nf_sent"] + totals["nf_send_errors"]
                                  + totals["nf_yielded"] + totals["nf_missed"]), totals
    assert sum(map(len, seqs.values())) == totals["nf_sent"], "every cycle sent arrived once"


@pytest.mark.rtudp(cpus=[0], idle="park")
def test_netflux_cycles_join_groups_and_keep_their_sequence(rtudp_pool: rtudp.Pool) -> None:
    """Netflux's cycle is a kind timer that may lead: cycles of other channels close
    behind one another leave together, early by at most tx_coalesce_us."""
    seqs, totals, early, coalesced = _netflux_run(rtudp_pool)
    _check_netflux_wire(seqs, totals)
    assert coalesced > 0, "cycles 20 µs apart, no budget to spin: some in groups"
    assert early > 0, "a cycle sent with an earlier one is stamped before its due time"


@pytest.mark.rtudp(cpus=[0], idle="park", tx_coalesce_us=0)
def test_netflux_cycles_never_early_with_groups_off(rtudp_pool: rtudp.Pool) -> None:
    seqs, totals, early, coalesced = _netflux_run(rtudp_pool)
    _check_netflux_wire(seqs, totals)
    assert coalesced == 0
    assert early == 0, f"{early} cycles left before their due time with groups off"
