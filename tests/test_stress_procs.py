"""Stress: many processes on two channels (issue 41; the harness is tests/stress_harness.py).

6 producer processes send into one channel (3 of them "now", through direct sends
when they may, 3 with shuffled deadlines), which sends to a second channel read by
3 reader processes; every process attaches by name, as separate programs would.
While both workers are stopped 1-20 ms at random and a busy loop runs on every CPU,
each reader gets every datagram once, in order per producer ((deadline, submission)
order, see stress_udp_helpers.order_violations), and nothing is lost.
"""
from __future__ import annotations

from typing import Any

import pytest

import rtudp
from stress_harness import CpuHogs, Staller, rng, seed_note, wait_until, worker_pids
from stress_udp_helpers import (PKT, TX_CAPACITY, Producers, check_reader, collect_reads,
                                count_wire, missing, now_producer, order_violations,
                                start_readers, timed_producer)

pytestmark = pytest.mark.stress

STALLS = 12          # the traffic runs until the workers were stopped this often
STALLS_S = 60.0      # ... which a starved Staller thread does in this long at most
CAPACITY = 1 << 16   # packets: the receive ring holds all a test sends (no reader lapped)


def test_six_producers_three_readers_every_datagram_once_in_order(rtudp_pool: rtudp.Pool,
                                                                  children: Any) -> None:
    pool = rtudp_pool
    rx = pool.open_channel("in", local=("127.0.0.1", 0), direction=1, capacity=CAPACITY,
                           max_datagram=PKT.size, cpu=pool.cpus[-1])
    tx = pool.open_channel("out", remote=rx.local, direction=0, capacity=TX_CAPACITY,
                           max_datagram=PKT.size, cpu=pool.cpus[0])
    stop = children.ctx.Event()
    readers = start_readers(children, pool, "in", 3, stop)
    now_tags, timed_tags = [1, 2, 3], [4, 5, 6]
    producers = [Producers(children, now_producer, pool, "out", now_tags, "procs-now"),
                 Producers(children, timed_producer, pool, "out", timed_tags, "procs-timed")]
    with CpuHogs(), Staller(lambda: worker_pids(pool), rng("procs:staller")) as stalls:
        for p in producers:
            p.go()
        stalls.wait_stalls(STALLS, STALLS_S)
        sent = {**producers[0].collect(), **producers[1].collect()}
        total = sum(len(s.items) for s in sent.values())
        wait_until(lambda: rx.stats()["rx_packets"] + rx.stats()["rx_kernel_drops"] >= total,
                   30.0, f"the {total} datagrams sent at the receiving channel")
    stop.set()
    reads = collect_reads(children, readers)
    children.join_all(30)
    st_rx, st_tx = rx.stats(), tx.stats()
    report = (f"{total} sent by {len(sent)} producers ({st_tx['tx_direct']} direct), "
              f"{st_rx['rx_packets']} received, kernel drops {st_rx['rx_kernel_drops']}, "
              f"{stalls.summary()} {seed_note()}")
    print(f"\nmany processes: {report}")
    assert st_tx["tx_errors"] == 0 and st_tx["tx_ring_faults"] == 0, report
    assert st_rx["rx_kernel_drops"] == 0 and st_rx["rx_packets"] == total, report
    for i, res in enumerate(reads):
        received, lost, problems = check_reader(f"reader{i}", res["got"])
        assert not problems, f"{problems}: {report}"
        assert lost == 0 and received == total, \
            f"reader{i}: received {received}, lost {lost}: {report}"
        wire = count_wire((d for d, _, _ in res["got"]), sent)
        gone = missing(wire, sent)
        assert not wire.strangers and wire.duplicates == 0 and not gone, \
            (f"reader{i}: {wire.duplicates} duplicates, strangers {wire.strangers[:3]}, "
             f"missing {({t: v[:10] for t, v in gone.items()})}: {report}")
        bad = [v for tag, s in sent.items() for v in order_violations(wire.order[tag], s)]
        assert not bad, f"reader{i}: out of order: {bad}: {report}"
