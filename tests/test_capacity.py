"""Large capacities open at once and work: a channel's rings are sized from capacity x
datagram up to TX/RX_RING_BYTES_MAX (not capacity x 1472 B: 2 GiB a ring for RtUDP's
README example, which never opened), the worker's ADD faults in only what its hot path
will touch (the segment's page tables, the in-flight array, the first part of the
timer queue), and what is queued beyond that costs memory as it is queued."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import rtudp
from ports import free_ports
from rtudp.shmring._native import lib
from rtudp.shmring.channel import RX_RING_BYTES_MAX, TX_RING_BYTES_MAX, ring_capacities
from rtudp.workers.registry import process_alive, segment_files
from waiting import wait_for

BIG = 1_000_000
#: the worker's resident memory an ADD of one duplex channel may add: its segment (the
#: two rings at their most), the in-flight array (one 24 B entry per 16 B of TX ring:
#: 12 MiB), the timer queue's resident part (3.5 MiB) and slack.  Before: 7 GiB for BIG.
#: The two tap rings (rtudp tap) are at most RTUDP_TAP_RING_MAX each.
SEGMENT_MAX = TX_RING_BYTES_MAX + RX_RING_BYTES_MAX + 2 * lib.RTUDP_TAP_RING_MAX + (1 << 20)
ADD_RSS_MAX = SEGMENT_MAX + (24 << 20)

README = textwrap.dedent("""
    import os, sys
    import rtudp
    from rtudp import AddressInUseError
    try:
        # RtUDP's README example, verbatim
        rtudp_socket = rtudp.create_rtudp("socket", "127.0.0.1", 5000, "127.0.0.1", 5001,
                                          capacity=1000000, direction=0)
        rtudp_socket.init_socket()
        peer = rtudp.create_rtudp("socket", "127.0.0.1", 5001, "127.0.0.1", 5000,
                                  capacity=1000000, direction=1)
        peer.init_socket()
    except AddressInUseError as exc:
        print("SKIP", exc)
        sys.exit(0)
    rtudp_socket.start()
    peer.start()
    for i in range(5):
        rtudp_socket.send_data(b"packet %d" % i)
    got = [peer.receive_data(5_000_000_000)[0] for _ in range(5)]
    assert got == [b"packet %d" % i for i in range(5)], got
    pool = rtudp.embedded_pool()
    print(" ".join(str(w["pid"]) for w in pool.workers()))
    rtudp_socket.close_socket()
    peer.close_socket()
""")


def _gone(pid: int) -> bool:
    return not process_alive(pid)


def test_readme_example_opens_and_round_trips(shm_name: str) -> None:
    """create_rtudp(..., capacity=1000000, direction=0) on the embedded pool (SCHED_FIFO
    workers, as a user gets them): it opened only after the worker's ADD timed out
    (5 s) before; now it opens and five packets go through, in order."""
    pool = shm_name.replace(".", "_")[:30].rstrip("_-")
    env = {**os.environ, "RTUDP_POOL": pool}
    out = subprocess.run([sys.executable, "-c", README], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    if out.stdout.startswith("SKIP"):
        pytest.skip(f"ports 5000/5001 of the example are taken here: {out.stdout.strip()}")
    pids = [int(x) for x in out.stdout.split()]
    assert pids and wait_for(lambda: all(_gone(p) for p in pids), 10)
    assert segment_files(pool) == []


@pytest.mark.rtudp(cpus=[0])
def test_large_capacity_channels_open_and_cost_bounded_memory(rtudp_pool: rtudp.Pool) -> None:
    """Four channels of capacity 1e6 on one worker: each ADD answers (before: past the
    5 s timeout, faulting in 4 GiB of rings and a 7 GiB in-flight/timer array at
    real-time priority), each adds a bounded amount of resident memory to the worker
    (not more with every channel already open), and they carry packets."""
    pool = rtudp_pool
    worker = psutil.Process(pool.workers()[0]["pid"])
    pa, pb, pc, pd = free_ports(4)
    ends = [(("127.0.0.1", pa), ("127.0.0.1", pb)), (("127.0.0.1", pb), ("127.0.0.1", pa)),
            (("127.0.0.1", pc), ("127.0.0.1", pd)), (("127.0.0.1", pd), ("127.0.0.1", pc))]
    chans = []
    try:
        for i, (local, remote) in enumerate(ends):
            before = worker.memory_info().rss
            ch = pool.open_channel(f"big{i}", local=local, remote=remote, capacity=BIG)
            chans.append(ch)
            grew = worker.memory_info().rss - before
            assert grew <= ADD_RSS_MAX, f"channel {i}: the worker grew by {grew >> 20} MiB"
            assert ch._seg.segment.size <= SEGMENT_MAX
        for a, b in ((chans[0], chans[1]), (chans[2], chans[3])):
            for i in range(3):
                a.send(b"x%d" % i)
            assert [b.recv(timeout=5).data for _ in range(3)] == [b"x0", b"x1", b"x2"]
            b.send(b"back")
            assert a.recv(timeout=5).data == b"back"
    finally:
        for ch in chans:
            ch.close()


@pytest.mark.rtudp(cpus=[0])
def test_a_queue_deeper_than_what_an_add_makes_resident(rtudp_pool: rtudp.Pool) -> None:
    """Memory follows what is queued: 100,000 datagrams due together (more than the
    65,536 timers an ADD makes resident) are all taken, and all leave, none failing."""
    n = 100_000
    sink = rtudp_pool.open_channel("sink", direction=1, capacity=BIG)
    tx = rtudp_pool.open_channel("tx", remote=sink.local, direction=0, capacity=BIG,
                                 max_datagram=8)
    try:
        at = time.monotonic_ns() + 200_000_000
        for start in range(0, n, 10_000):
            assert tx.send_many([i.to_bytes(8, "little") for i in range(start, start + 10_000)],
                                at_ns=at) == 10_000
        assert wait_for(lambda: tx.stats()["tx_packets"] + tx.stats()["tx_errors"] >= n, 60)
        st = tx.stats()
        assert st["tx_packets"] == n and st["tx_errors"] == 0, st
    finally:
        tx.close()
        sink.close()


@pytest.mark.rtudp(cpus=[0], rt_priority=0)
def test_full_ring_is_back_pressure_before_capacity(rtudp_pool: rtudp.Pool) -> None:
    """capacity=1e6 of 1472-byte datagrams: the send queue is TX_RING_BYTES_MAX bytes, so
    it is full after ~5,600 of them: BackPressureError, nothing dropped, and all that
    was queued leaves once the endpoint starts."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never read: the kernel drops
    sink.bind(("127.0.0.1", 0))
    tx = rtudp.create_rtudp("socket", "127.0.0.1", 0, *sink.getsockname(), capacity=BIG,
                            direction=0, pool=rtudp_pool)
    tx.init_socket()  # paused until start(): the worker takes nothing from the ring
    try:
        sent = 0
        with pytest.raises(rtudp.BackPressureError):
            for _ in range(BIG):
                tx.send_data(bytes(1472))
                sent += 1
        assert TX_RING_BYTES_MAX // 2 // 1488 < sent <= TX_RING_BYTES_MAX // 1488
        assert tx.get_send_length() == sent
        tx.start()
        assert wait_for(lambda: tx.get_send_length() == 0, 30)
        stats = tx.get_packet_stats()
        assert stats["n_packets_sent"] == sent and stats["n_tx_packets_dropped"] == 0, stats
    finally:
        tx.close_socket()
        sink.close()


def test_ring_sizes() -> None:
    """capacity x record, as a power of two, up to the caps; a channel that only sends
    or only receives gets the smallest ring (four full records) the other way."""
    both = lib.RTUDP_DIR_BOTH
    assert ring_capacities(1024, 1472, both) == (2 << 20, 2 << 20)  # as before the caps
    assert ring_capacities(BIG, 1472, both) == (TX_RING_BYTES_MAX, RX_RING_BYTES_MAX)
    assert ring_capacities(BIG, 8, both) == (TX_RING_BYTES_MAX, RX_RING_BYTES_MAX)
    tx, rx = ring_capacities(BIG, 1472, lib.RTUDP_DIR_SEND)
    assert tx == TX_RING_BYTES_MAX and rx == 8192
    tx, rx = ring_capacities(BIG, 1472, lib.RTUDP_DIR_RECV)
    assert tx == 8192 and rx == RX_RING_BYTES_MAX
    # rx_capacity sizes the RX ring alone
    assert ring_capacities(4, 1472, both, rx_capacity=1024) == (8192, 2 << 20)
    big = ring_capacities(1, 65507, both)  # four of the largest datagram, whatever the cap
    assert big[0] >= 4 * 65507 and big[1] >= 4 * 65507
