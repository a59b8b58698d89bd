"""Stress: a udp channel keeps its promises while workers stall, CPUs are busy and
processes die (issue 41; the harness is tests/stress_harness.py).

* every queued datagram leaves once, in (deadline, submission) order per producer,
  or is counted as dropped with its reason; at most one duplicate per worker restart
  (docs/restarts.md) -- as a plain socket on the wire sees it, not as rtudp says;
* each reader gets every datagram or is told exactly how many it lost;
* a producer killed between claim and commit wedges nothing; a reader killed takes
  nothing from the others; a worker killed loses nothing queued.

Seeded (``RTUDP_STRESS_SEED``); ``pytest -m stress`` runs these with the other kinds'.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any

import pytest

import rtudp
from rtudp.shmring.channel import RX_META, RX_RECORD
from stress_harness import (CpuHogs, Staller, WireObserver, channel_worker_pid, kill_worker,
                            rng, seed_note, wait_until, worker_pids)
from stress_udp_helpers import (PKT, TX_CAPACITY, Producers, Sent, check_reader,
                                claim_and_hang, collect_reads, count_wire, drops_counted,
                                inverted_pairs, missing, now_producer, order_violations,
                                start_readers, timed_producer)

pytestmark = pytest.mark.stress

OBSERVER_BUF = 32 << 20        # the observer's socket holds every datagram of a test
STALLS = 12                    # a test's traffic runs until its worker was stopped this often
STALLS_S = 60.0                # ... which a starved Staller thread does in this long at most


class PlainSender:
    """A plain UDP socket (not rtudp) sending numbered datagrams to ``addr``."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sent = 0

    def send(self, n: int = 1) -> None:
        for _ in range(n):
            self.sock.sendto(PKT.pack(0, self.sent, 0), self.addr)
            self.sent += 1

    def wait_accounted(self, rx: Any) -> None:
        """Until every datagram sent is in ``rx``'s ring or counted as a kernel drop.  A
        drop shows with the next datagram the worker reads: one more is sent (and
        counted) until the sums meet."""
        def accounted() -> bool:
            st = rx.stats()
            if st["rx_packets"] + st["rx_kernel_drops"] == self.sent:
                return True
            self.send(1)
            time.sleep(0.01)
            return False

        wait_until(accounted, 30.0, f"the worker's count of the datagrams sent to {rx.name}")

    def close(self) -> None:
        self.sock.close()


# ------------------------------------------------------------------ the wire


def check_wire(obs: WireObserver, sent: dict[int, Sent], stats: dict[str, Any],
               restarts: int, what: str) -> str:
    """Everything ``sent`` arrived once at ``obs`` (a duplicate at most per restart),
    in (deadline, submission) order per producer, or is counted as dropped; the
    report line."""
    total = sum(len(s.items) for s in sent.values())
    drops = drops_counted(stats)
    obs.wait_for(total - drops, 30.0)
    time.sleep(0.2)                                   # a late duplicate shows too
    wire = count_wire(obs.payloads(), sent)
    lost = missing(wire, sent)
    report = (f"{what}: {total} queued, {len(obs.packets)} on the wire, duplicates "
              f"{wire.duplicates}, missing {sum(map(len, lost.values()))}, counted drops "
              f"{drops} {seed_note()}")
    assert obs.kernel_drops == 0, f"the observer's own socket dropped {obs.kernel_drops}: {report}"
    assert not wire.strangers, f"datagrams nobody queued: {wire.strangers[:3]}: {report}"
    assert sum(map(len, lost.values())) == drops, \
        f"lost without a count: {({t: v[:10] for t, v in lost.items()})}: {report}"
    assert wire.duplicates <= restarts, f"more duplicates than worker restarts: {report}"
    bad = [v for tag, s in sent.items() for v in order_violations(wire.order[tag], s)]
    assert not bad, f"out of order: {bad}: {report}"
    return report


# ------------------------------------------------------------------ tests


def test_udp_every_datagram_leaves_once_in_deadline_order(rtudp_pool: rtudp.Pool,
                                                          children: Any) -> None:
    """3 producer processes queue shuffled deadlines while the channel's worker is
    stopped 1-20 ms at random (STALLS times) and a busy loop runs on every CPU."""
    pool = rtudp_pool
    with WireObserver(rcvbuf=OBSERVER_BUF) as obs:
        tx = pool.open_channel("tx", remote=obs.addr, direction=0, capacity=TX_CAPACITY,
                               max_datagram=PKT.size)
        producers = Producers(children, timed_producer, pool, "tx", [1, 2, 3], "udp-order")
        with CpuHogs(), Staller(lambda: channel_worker_pid(pool, tx),
                                rng("udp-order:staller")) as stalls:
            producers.go()
            stalls.wait_stalls(STALLS, STALLS_S)
            sent = producers.collect()
        report = check_wire(obs, sent, tx.stats(), 0, "timed sends")
    print(f"\n{report}; {stalls.summary()}")
    tested = sum(inverted_pairs(s) for s in sent.values())
    assert tested > 100, f"only {tested} pairs queued out of deadline order: nothing tested"
    st = tx.stats()
    assert st["tx_packets"] == sum(len(s.items) for s in sent.values()) - drops_counted(st)
    assert st["tx_ring_faults"] == 0 and st["tx_unblocked_claims"] == 0


def test_udp_lapped_reader_is_told_exactly_what_it_lost(rtudp_pool: rtudp.Pool,
                                                        children: Any) -> None:
    """3 reader processes on a small RX ring, one of them stopped until the worker has
    written four rings' worth past it; workers stalled, CPUs busy."""
    pool = rtudp_pool
    rx = pool.open_channel("rx", local=("127.0.0.1", 0), direction=1, capacity=64,
                           max_datagram=PKT.size)
    ring_records = rx._seg.rx.capacity // (RX_RECORD + RX_META + PKT.size)
    stop = children.ctx.Event()
    readers = start_readers(children, pool, "rx", 3, stop)
    victim = readers[0][0].pid
    sender = PlainSender(rx.local)
    try:
        with CpuHogs(), Staller(lambda: worker_pids(pool), rng("udp-lapped:staller")) as stalls:
            for _ in range(200):
                sender.send(5)
                time.sleep(0.001)
            os.kill(victim, signal.SIGSTOP)
            try:
                at_stop = rx.stats()["rx_packets"]
                while rx.stats()["rx_packets"] - at_stop < 4 * ring_records:
                    sender.send(5)
                    time.sleep(0.001)
            finally:
                os.kill(victim, signal.SIGCONT)
            while len(stalls.stalls) < STALLS // 2:
                sender.send(5)
                time.sleep(0.001)
            sender.wait_accounted(rx)
        stop.set()
        reads = collect_reads(children, readers)
        children.join_all(30)
    finally:
        sender.close()
    st = rx.stats()
    written = st["rx_packets"]
    summary = []
    for i, res in enumerate(reads):
        got = res["got"]
        received, lost, problems = check_reader(f"reader{i}", got)
        summary.append((received, lost))
        assert not problems, f"{problems} {seed_note()}"
        assert received + lost == written, \
            f"reader{i}: received {received} + lost {lost} != {written} written {seed_note()}"
        assert res["rx_lost"] == lost, f"reader{i}: stats() say lost {res['rx_lost']}, not {lost}"
        idx = [PKT.unpack(d)[1] for d, _, _ in got]
        assert idx == sorted(set(idx)), f"reader{i}: datagrams out of order or twice"
    print(f"\nlapped reader: {sender.sent} sent, {written} into the ring ({ring_records} records), "
          f"kernel drops {st['rx_kernel_drops']}; (received, lost) per reader {summary}; "
          f"{stalls.summary()} {seed_note()}")
    assert summary[0][1] > 0, "the stopped reader was never lapped: nothing tested"
    # the ring's own count of what its readers lost (this process's handle read nothing)
    assert rx._seg.rx.stats()["records_lost"] == sum(lost for _, lost in summary)
    # the same ring seq is the same datagram for every reader
    by_seq: dict[int, bytes] = {}
    for res in reads:
        for data, seq, _ in res["got"]:
            assert by_seq.setdefault(seq, data) == data, f"ring seq {seq} differs between readers"


def test_udp_producer_killed_between_claim_and_commit(rtudp_pool: rtudp.Pool,
                                                      children: Any) -> None:
    """A producer claims a TX record and is SIGKILLed before it commits; 3 others send
    "now" datagrams before and after, worker stalled, CPUs busy: the claim becomes
    counted padding and every other datagram leaves once, in order."""
    pool = rtudp_pool
    with WireObserver(rcvbuf=OBSERVER_BUF) as obs:
        tx = pool.open_channel("tx", remote=obs.addr, direction=0, capacity=16384,
                               max_datagram=PKT.size)
        producers = Producers(children, now_producer, pool, "tx", [1, 2, 3], "udp-claim")
        ready = children.ctx.Event()
        claimer = children.start(claim_and_hang, pool.name, "tx", ready, name="claimer")
        with CpuHogs(), Staller(lambda: channel_worker_pid(pool, tx),
                                rng("udp-claim:staller")) as stalls:
            producers.go()
            assert ready.wait(60), "the claimer never claimed"
            os.kill(claimer.pid, signal.SIGKILL)
            claimer.join(10)
            wait_until(lambda: tx.stats()["tx_unblocked_claims"] >= 1, 30.0,
                       "the dead claim unblocked")
            stalls.wait_stalls(STALLS, STALLS_S)
            sent = producers.collect()
        report = check_wire(obs, sent, tx.stats(), 0, "now sends past a dead claim")
    st = tx.stats()
    print(f"\n{report}; unblocked claims {st['tx_unblocked_claims']}; {stalls.summary()}")
    assert st["tx_unblocked_claims"] == 1
    assert st["tx_ring_faults"] == 0


def test_udp_reader_killed_others_get_everything(rtudp_pool: rtudp.Pool,
                                                 children: Any) -> None:
    """3 reader processes; one SIGKILLed mid-traffic; the other two get every datagram
    the worker received, once, in order; workers stalled, CPUs busy."""
    pool = rtudp_pool
    rx = pool.open_channel("rx", local=("127.0.0.1", 0), direction=1, capacity=1 << 14,
                           max_datagram=PKT.size)
    stop = children.ctx.Event()
    readers = start_readers(children, pool, "rx", 3, stop)
    sender = PlainSender(rx.local)
    try:
        with CpuHogs(), Staller(lambda: worker_pids(pool), rng("udp-rkill:staller")) as stalls:
            while sender.sent < 1000 or len(stalls.stalls) < STALLS // 2:
                sender.send(1)
                if sender.sent == 500:
                    os.kill(readers[0][0].pid, signal.SIGKILL)
                if sender.sent % 8 == 0:
                    time.sleep(0.001)
            sender.wait_accounted(rx)
        stop.set()
        readers[0][0].join(10)
        reads = collect_reads(children, readers[1:])
    finally:
        sender.close()
    st = rx.stats()
    print(f"\nreader killed: {sender.sent} sent, {st['rx_packets']} into the ring, kernel drops "
          f"{st['rx_kernel_drops']}; {stalls.summary()} {seed_note()}")
    assert readers[0][0].exitcode == -signal.SIGKILL
    for i, res in enumerate(reads, 1):
        got = res["got"]
        received, lost, problems = check_reader(f"reader{i}", got)
        assert not problems, problems
        assert lost == 0 and received == st["rx_packets"], \
            f"reader{i}: received {received}, lost {lost} of {st['rx_packets']} {seed_note()}"
        idx = [PKT.unpack(d)[1] for d, _, _ in got]
        assert idx == sorted(set(idx)), f"reader{i}: datagrams out of order or twice"
    assert st["rx_packets"] + st["rx_kernel_drops"] == sender.sent
    # the killed reader (reaped) counts as attached no more, the survivors closed: only
    # this process's handle is left
    assert st["readers_attached"] == 1


def test_udp_worker_killed_loses_nothing_queued(rtudp_pool: rtudp.Pool, children: Any) -> None:
    """The channel's worker SIGKILLed twice while 2 producer processes queue shuffled
    deadlines (CPUs busy, the worker stalled now and then): nothing queued is lost, at
    most one duplicate per kill, deadline order kept."""
    pool = rtudp_pool
    kills = 2
    with WireObserver(rcvbuf=OBSERVER_BUF) as obs:
        tx = pool.open_channel("tx", remote=obs.addr, direction=0, capacity=TX_CAPACITY,
                               max_datagram=PKT.size)
        producers = Producers(children, timed_producer, pool, "tx", [1, 2], "udp-wkill")
        with CpuHogs(), Staller(lambda: channel_worker_pid(pool, tx),
                                rng("udp-wkill:staller")) as stalls:
            producers.go()
            for k in range(kills):
                stalls.wait_stalls(STALLS * (k + 1) // (kills + 1), STALLS_S)
                pid = channel_worker_pid(pool, tx)
                assert pid, "the channel's worker does not run"
                kill_worker(pool, pid[0])
            stalls.wait_stalls(STALLS, STALLS_S)
            sent = producers.collect()
        report = check_wire(obs, sent, tx.stats(), kills, f"timed sends, {kills} worker kills")
    st = tx.stats()
    print(f"\n{report}; restarts {st['worker_restarts']}, in flight at the kills: left "
          f"{st['tx_restart_left']} resent {st['tx_restart_resent']}; {stalls.summary()}")
    assert st["worker_restarts"] == kills
    assert sum(inverted_pairs(s) for s in sent.values()) > 100, "nothing queued out of order"
