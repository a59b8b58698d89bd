"""Packed, then spread (rtudp.workers.packing, docs/scheduling.md): where a pool puts a
channel opened without cpu=, when it spreads a busy worker's channels and when it
gathers them again.  The policy is a pure function, checked here on made-up loads; a
live pool's packing is checked by counts and moves, never by timings."""
from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

import rtudp
from rtudp.workers.packing import (GATHER_S, PACK_SHARE, PACKET_WORK_S, SPREAD_SHARE, Move,
                                   Packer, WorkerLoad, half_the_packets, open_target, plan)
from waiting import wait_for


def load(index: int, work: float | None, channels: int = 0, capped: bool = False,
         rate: float = 0.0, **movable: int) -> WorkerLoad:
    return WorkerLoad(index, work, len(movable), channels or len(movable), capped,
                      dict(movable), rate=rate)


def test_a_new_channel_goes_to_the_first_serving_worker_with_headroom() -> None:
    assert open_target([load(0, None), load(1, None)]) == 0            # a fresh pool
    assert open_target([load(0, 0.1, 5), load(1, 0.0)]) == 0           # packed
    assert open_target([load(0, 0.0), load(1, 0.1, 3)]) == 1           # where work is
    assert open_target([load(0, 0.9, 5), load(1, 0.0)]) == 1           # full: the idle one
    assert open_target([load(0, 0.2, 5, capped=True), load(1, 0.0)]) == 1
    assert open_target([load(0, 0.9, 5), load(1, 0.8, 5)]) == 1        # all full: least busy


def test_declared_packets_count_before_their_work_shows() -> None:
    # a worker whose channels declare nearly PACK_SHARE of work, none of it measured yet
    full = PACK_SHARE / PACKET_WORK_S
    assert open_target([load(0, 0.0, 5, rate=full * 0.5), load(1, None)], 50.0) == 0
    assert open_target([load(0, 0.0, 5, rate=full * 0.99), load(1, None)], 0.0) == 0
    assert open_target([load(0, 0.0, 5, rate=full * 0.99), load(1, None)],
                       full * 0.02) == 1                                   # it would pass it
    # all full by their declarations: the one that expects the least work
    assert open_target([load(0, 0.0, 5, rate=full * 3), load(1, 0.1, 5, rate=full * 2)],
                       50.0) == 1
    # all full alike: the one with the fewest channels
    assert open_target([load(0, 0.9, 7), load(1, 0.9, 6)]) == 1
    # calm by measure but not by declaration (streams opened, not begun): no gather
    declared = [load(0, 0.0, rate=full * 0.5, a=1), load(1, 0.0, rate=full * 0.5, b=1)]
    assert plan(declared, hot=set(), calm_since=0.0, now=GATHER_S * 2) is not None
    packer = Packer(lambda: declared, lambda m: None)
    assert packer.look() is None and packer.look() is None   # never calm: nothing gathers


def test_half_the_packets_moves_every_other_of_alike_channels_and_keeps_one() -> None:
    # alike: every other one in the order opened, so both workers' deadlines stay spread
    assert half_the_packets({"s0": 10, "s1": 10, "s2": 10, "s3": 10}) == ("s1", "s3")
    assert half_the_packets({"s0": 10, "s1": 9, "s2": 11, "s3": 10, "s4": 10, "s5": 10}) \
        == ("s1", "s3", "s5")
    assert half_the_packets({"a": 0, "b": 0}) == ("b",)
    # not alike: the busiest first, up to half
    assert half_the_packets({"big": 90, "s1": 5, "s2": 5}) == ("big",)
    assert half_the_packets({"s0": 40, "s1": 5, "s2": 40, "s3": 5}) == ("s0", "s1")
    assert half_the_packets({"only": 7}) == ("only",)


def test_a_busy_worker_spreads_only_when_busy_twice_and_to_a_worker_with_room() -> None:
    busy = [load(0, 0.9, a=100, b=100, c=1), load(1, 0.0)]
    assert plan(busy, hot=set(), calm_since=None, now=0.0) is None     # once: a burst
    move = plan(busy, hot={0}, calm_since=None, now=0.0)
    assert move == Move(("b",), 0, 1, move.why) and "spread" in move.why
    both = [load(0, 0.9, a=100, b=100), load(1, SPREAD_SHARE, c=1)]
    assert plan(both, hot={0, 1}, calm_since=None, now=0.0) is None    # nowhere to go
    # at its real-time cap (it spins up to it) but keeping its deadlines: it stays
    capped = [load(0, 0.3, capped=True, a=5, b=5), load(1, 0.0)]
    assert plan(capped, hot={0}, calm_since=None, now=0.0) is None
    late = [load(0, 0.3, a=5, b=5), load(1, 0.0)]
    late[0].late = True
    assert late[0].behind() and plan(late, hot=set(), calm_since=None, now=0.0) is None
    move = plan(late, hot={0}, calm_since=None, now=0.0)   # late twice: it spreads
    assert move is not None and move.frm == 0 and "late" in move.why
    late[1].late = True                                     # nowhere that keeps up
    assert plan(late, hot={0}, calm_since=None, now=0.0) is None


def test_calm_workers_gather_onto_the_first_after_a_while() -> None:
    calm = [load(0, 0.05, a=1), load(1, 0.05, b=1, c=1)]
    assert plan(calm, hot=set(), calm_since=10.0, now=10.0 + GATHER_S / 2) is None
    move = plan(calm, hot=set(), calm_since=10.0, now=10.0 + GATHER_S)
    assert move == Move(None, 1, 0, move.why) and "gather" in move.why   # all it may move
    pinned = [load(0, 0.05, a=1), load(1, 0.05, 2, b=1)]   # one of worker 1's is pinned
    assert plan(pinned, hot=set(), calm_since=0.0, now=GATHER_S * 2) is None


def test_the_packer_moves_what_the_plan_says_and_lets_the_workers_settle() -> None:
    moves: list[Move] = []
    loads = [load(0, 0.9, a=10, b=10), load(1, 0.0)]
    packer = Packer(lambda: loads, moves.append)
    assert packer.look() is None            # busy once
    assert packer.look() is not None        # busy twice: spread
    assert packer.look() is None            # both just moved: left alone
    assert [m.names for m in moves] == [("b",)]
    assert packer.open_target({0: 1, 1: 1}, {}, 0.0) == 1   # worker 0 is full


@pytest.mark.rtudp(placement="packed")
@pytest.mark.parametrize("rtudp_pool", [[0, 1]], indirect=True)
def test_a_packed_pool_puts_light_channels_on_one_worker(rtudp_pool: rtudp.Pool) -> None:
    assert rtudp_pool.placement == "packed"
    chans = [rtudp_pool.open_channel(f"light{i}", local=("127.0.0.1", 0)) for i in range(8)]
    pinned = rtudp_pool.open_channel("pinned", local=("127.0.0.1", 0), cpu=rtudp_pool.cpus[1])
    try:
        assert {ch.worker for ch in chans} == {0}
        assert pinned.worker_cpu == rtudp_pool.cpus[1]
    finally:
        for ch in chans + [pinned]:
            ch.close()


@pytest.mark.rtudp(placement="packed")
@pytest.mark.parametrize("rtudp_pool", [[0, 1]], indirect=True)
def test_a_netflux_pair_packed_on_one_worker_skips_no_sequence(rtudp_pool: rtudp.Pool) -> None:
    """Both ends of a Netflux pair on one worker, the standby on the other: the first
    end's packets to the second before it is bound come back as an ICMP error, which
    the next send on that socket reports instead of sending.  Whichever worker sends
    next (the standby covers cycles while the serving worker adds the second end) sends
    again, so the partner sees no gap in the sequence."""
    from netflux_helpers import netflux_pair
    opts = {"send_interval": 0.002, "watch_interval": 0.05, "send_size": 4, "recv_size": 4}
    a, b = netflux_pair(rtudp_pool, opts)
    with a, b:
        assert a.worker == b.worker
        b.wait_update(5.0, after=0)
        a.wait_update(5.0, after=0)
        time.sleep(0.2)
        sa, sb = a.stats(), b.stats()
    assert sa["nf_standby_errors"] == sb["nf_standby_errors"] == 0
    assert sa["nf_partner_lost"] == sb["nf_partner_lost"] == 0


@pytest.mark.rtudp(placement="packed")
@pytest.mark.parametrize("rtudp_pool", [[0, 1]], indirect=True)
def test_streams_declared_beyond_one_worker_open_on_two_without_a_move(
        rtudp_pool: rtudp.Pool) -> None:
    """Paced rtp streams at 0.5 ms (2,000 packets a second each) opened before any
    traffic: the first worker takes them while their declared work fits PACK_SHARE,
    the rest go to the second, and nothing has to move."""
    per_s = 2000.0
    fit = 0
    while (fit + 1) * per_s * PACKET_WORK_S < PACK_SHARE:
        fit += 1
    chans = [rtudp_pool.open_channel(f"d{i}", kind="rtp", local=("127.0.0.1", 0),
                                     remote=("127.0.0.1", 9), direction="tx", capacity=8,
                                     max_datagram=256,
                                     options={"tx_mode": "paced", "ptime_ms": 0.5,
                                              "rtcp": "off"})
             for i in range(fit + 10)]
    try:
        workers = [ch.worker for ch in chans]
        assert workers == [0] * fit + [1] * 10
        assert rtudp_pool.channel_moves == 0
    finally:
        for ch in chans:
            ch.close()


@pytest.mark.rtudp(placement="packed")
@pytest.mark.parametrize("rtudp_pool", [[0, 1]], indirect=True)
def test_udp_channels_that_declare_their_packets_open_where_they_fit(
        rtudp_pool: rtudp.Pool) -> None:
    """udp channels declare nothing of their own, so they gather on the first worker
    until it is seen busy; a channel given ``packet_rate`` is placed by it as a paced
    stream is by its options: two full-duplex ends at 50,000 packets a second each way
    do not fit one worker, and a declared 0 takes nothing from the room."""
    heavy = 100_000.0
    assert heavy * PACKET_WORK_S < PACK_SHARE < 2 * heavy * PACKET_WORK_S
    a = rtudp_pool.open_channel("a", packet_rate=heavy)
    b = rtudp_pool.open_channel("b", packet_rate=heavy)
    quiet = rtudp_pool.open_channel("quiet", packet_rate=0)
    plain = rtudp_pool.open_channel("plain")
    stream = rtudp_pool.open_channel("s", kind="rtp", remote=("127.0.0.1", 9), direction="tx",
                                     capacity=8, max_datagram=256, packet_rate=0,
                                     options={"tx_mode": "paced", "ptime_ms": 0.05,
                                              "rtcp": "off"})
    try:
        assert [ch.worker for ch in (a, b, quiet, plain)] == [0, 1, 0, 0]
        # its options declare 20,000 a second, more than worker 0 has room for; its
        # packet_rate none
        assert stream.worker == 0
        assert rtudp_pool._table.declared_rates() == {0: heavy, 1: heavy}
        assert rtudp_pool.channel_moves == 0
    finally:
        for ch in (a, b, quiet, plain, stream):
            ch.close()


def test_a_workers_work_leaves_out_its_conductors_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of opens keeps the first worker's conductor busy preparing channels:
    that is the opening's work, not the channels', and counted as the worker's it made
    the worker look full halfway through a batch, whose rest then went to the next
    worker in a run of channels whose deadlines bunch.  The packer's work is the
    worker's CPU time less its conductor's (and less its spinning)."""
    from types import SimpleNamespace
    from rtudp.workers import packing
    from rtudp.workers.cpu_meter import ShareMeter
    t0 = time.monotonic_ns()
    busy = {1000: 0.6, 1001: 0.5}          # the worker process, its conductor thread

    def used(pid_or_tid: int) -> int:
        return int(busy[pid_or_tid] * (time.monotonic_ns() - t0))

    class Table:
        def served(self) -> dict[int, tuple[int, int]]:
            return {0: (3000, 3000)}

        def declared_rates(self) -> dict[int, float]:
            return {0: 3000 * 12.5}

    worker = SimpleNamespace(index=0, spawned=SimpleNamespace(proc=SimpleNamespace(pid=1000)))
    control = SimpleNamespace(workers=lambda: [{"index": 0, "spin_ns": 0, "capped_sleeps": 0,
                                                "tx_sent": 0, "tx_late_sent": 0}])

    def work_seen(conductor: int | None) -> float:
        monkeypatch.setattr(packing, "conductor_tid", lambda pid: conductor)
        loads = packing.PoolLoads(Table(), [worker], lambda: control)  # type: ignore[arg-type]
        loads._meter = ShareMeter(read=used)
        loads._conductors = ShareMeter(read=used)
        w = loads()[0].work
        for _ in range(100):       # a read the test's process lost its CPU in gives none
            if w is not None:
                return w
            time.sleep(0.05)
            w = loads()[0].work
        raise AssertionError("no look measured the worker in 100 tries")

    assert work_seen(None) == pytest.approx(0.6, abs=0.05)   # no conductor found
    assert work_seen(1001) == pytest.approx(0.1, abs=0.05)
    assert packing.open_target([packing.WorkerLoad(0, 0.1, channels=3000, rate=3000 * 12.5),
                                packing.WorkerLoad(1, 0.0)], 12.5) == 0


def test_a_worker_is_judged_late_by_its_own_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy worker sent more than LATE_SHARE of its datagrams late by its own doing
    since the last look (its slot's tx_sent and tx_late_sent, summed over its channels
    by the worker: a look reads no channel): late.  Fewer than LATE_MIN late, a smaller
    share, the first look (nothing to compare with) or counters that went back (a
    restarted worker): not late."""
    from types import SimpleNamespace
    from rtudp.workers import packing
    from rtudp.workers.cpu_meter import ShareMeter
    t0 = time.monotonic_ns()

    def used(pid: int) -> int:                       # the worker works 0.6 of its CPU
        return int(0.6 * (time.monotonic_ns() - t0))

    class Table:
        def served(self) -> dict[int, tuple[int, int]]:
            return {0: (10, 0)}

        def declared_rates(self) -> dict[int, float]:
            return {0: 0.0}

    slot = {"index": 0, "spin_ns": 0, "capped_sleeps": 0, "tx_sent": 0, "tx_late_sent": 0}
    worker = SimpleNamespace(index=0, spawned=SimpleNamespace(proc=SimpleNamespace(pid=1000)))
    monkeypatch.setattr(packing, "conductor_tid", lambda pid: None)
    loads = packing.PoolLoads(Table(), [worker],  # type: ignore[arg-type]
                              lambda: SimpleNamespace(workers=lambda: [dict(slot)]))
    loads._meter = ShareMeter(read=used)

    def late_after(sent: int, late: int) -> bool:
        slot["tx_sent"] += sent
        slot["tx_late_sent"] += late
        for _ in range(100):       # a read the test's process lost its CPU in gives none
            time.sleep(0.02)
            load = loads()[0]
            if load.work is not None:
                assert load.work > packing.LATE_WORK
                return bool(load.late)
        raise AssertionError("no look measured the worker in 100 tries")

    assert not late_after(1000, 900)               # the first look: nothing to compare
    assert late_after(1000, 100)                   # 10 %, 100 late
    assert not late_after(1000, packing.LATE_MIN - 1)
    assert not late_after(100_000, 1000)           # 1 %
    slot["tx_sent"] = slot["tx_late_sent"] = 0     # restarted: its counters begin again
    assert not late_after(1000, 500)
    assert late_after(1000, 500)


def test_the_default_pool_packs_and_checks_its_placement() -> None:
    assert rtudp.Pool("x").placement == "packed"
    with pytest.raises(ValueError, match="placement must be one of packed, spread, got 'tight'"):
        rtudp.Pool("x", placement="tight")


@pytest.mark.rtudp(placement="packed")
@pytest.mark.parametrize("rtudp_pool", [[0, 1]], indirect=True)
def test_channels_spread_from_a_worker_at_its_cap_and_gather_back(rtudp_pool: rtudp.Pool) -> None:
    """Two channels send back to back from one worker, flat out: its work passes the
    mark (or it meets its cap) and one channel moves to the other worker; when they
    stop, they gather on one worker again.  Every datagram arrives once, in order."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    chans = [rtudp_pool.open_channel(f"hot{i}", remote=sink.getsockname(), direction="tx",
                                     capacity=8192) for i in range(2)]
    got: dict[int, list[int]] = {0: [], 1: []}
    sent = [0, 0]
    try:
        assert {ch.worker for ch in chans} == {0}
        deadline = time.monotonic() + 20
        # on a busy machine a second look may move the other channel too, soon after,
        # or a gather follow: what must be seen is the two channels on two workers, at
        # some moment, so a thread of its own watches for it while this one sends
        apart = threading.Event()

        def watch() -> None:
            while not apart.is_set() and time.monotonic() < deadline:
                if {ch.worker for ch in chans} == {0, 1}:
                    apart.set()
                time.sleep(0.001)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        spread = False
        while not spread and time.monotonic() < deadline:
            for i, ch in enumerate(chans):
                try:
                    while True:
                        ch.send(struct.pack("<HI", i, sent[i]))
                        sent[i] += 1
                except rtudp.BackPressureError:
                    pass
            sink.setblocking(False)
            try:
                while True:
                    i, k = struct.unpack("<HI", sink.recv(64))
                    got[i].append(k)
            except BlockingIOError:
                pass
            spread = apart.is_set()
        watcher.join()
        assert spread, ("a worker sending flat out never spread", rtudp_pool.channel_moves)
        # a busy machine may spread again before the gather: what must come is the
        # gather, however many moves it takes
        assert wait_for(lambda: len({ch.worker for ch in chans}) == 1, timeout=30), \
            ("the channels did not gather once idle", [ch.worker for ch in chans])
        # a channel's worker index changes when its old worker hands it over, the
        # pool's count of moves when the move is done, a moment later
        assert wait_for(lambda: rtudp_pool.channel_moves >= 2, timeout=5), \
            rtudp_pool.channel_moves
        for i, ch in enumerate(chans):
            # every record queued left once: none lost or doubled across the moves
            assert wait_for(lambda: ch.stats()["tx_packets"] == sent[i], timeout=10), \
                (i, ch.stats()["tx_packets"], sent[i])
        sink.settimeout(0.5)
        try:
            while True:
                i, k = struct.unpack("<HI", sink.recv(64))
                got[i].append(k)
        except socket.timeout:
            pass
        for i in (0, 1):   # what the sink kept of each (it may overflow) is in order
            assert all(a < b for a, b in zip(got[i], got[i][1:])), f"channel {i} out of order"
    finally:
        for ch in chans:
            ch.close()
        sink.close()
