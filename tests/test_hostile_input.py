"""Hostile and bad input: a client scribbling over its channel's rings, datagrams of
every size, truncated and random, from the network.

The worker validates every record it reads from shared memory: a scribbled TX ring
stops that channel only (flagged and counted in ``tx_ring_faults``), never the
worker or the other channels on it, also across a worker restart.
"""
from __future__ import annotations

import os
import random
import socket
import time

import pytest

import rtudp
from rtudp.shmring._native import ffi, lib
from rtudp.shmring.channel import MAX_DATAGRAM
from test_cli import wait_for

GOOD_PACKETS = 2000


def _scribble(ring_span: object, rng: random.Random, with_header: bool) -> None:
    """Random bytes over a ring: its data area, and with ``with_header`` its control
    lines too (head, tail, doorbells, counters, geometry)."""
    mem, avail = ring_span.mem, ring_span.avail  # type: ignore[attr-defined]
    skip = 0 if with_header else ffi.sizeof("struct rtudp_mpsc_ring")
    junk = rng.randbytes(avail - skip)
    ffi.memmove(ffi.cast("char *", mem) + skip, junk, len(junk))


def _good_traffic(tx: rtudp.Channel, rx: rtudp.Channel, n: int, tag: int) -> None:
    """``n`` datagrams tx -> rx, every one received intact."""
    want = {tag.to_bytes(4, "big") + i.to_bytes(4, "big") for i in range(n)}
    for chunk in range(0, n, 500):
        tx.send_many([tag.to_bytes(4, "big") + i.to_bytes(4, "big")
                      for i in range(chunk, min(n, chunk + 500))])
        time.sleep(0.002)
    got: set[bytes] = set()
    deadline = time.monotonic() + 20
    while not want <= got and time.monotonic() < deadline:
        got.update(p.data for p in rx.recv_many(4096, timeout=0.05))
    assert want <= got, f"good channel lost {len(want - got)} of {n} datagrams"


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_scribbled_rings_cannot_crash_the_worker_or_other_channels(
        rtudp_pool: rtudp.Pool) -> None:
    pool = rtudp_pool
    rng = random.Random(5)
    g_rx = pool.open_channel("g_rx", direction=1)
    g_tx = pool.open_channel("g_tx", remote=g_rx.local, direction=0)
    sink = pool.open_channel("sink", direction=1)
    bad = pool.open_channel("bad", remote=sink.local)      # duplex: both its rings
    pid = pool.workers()[0]["pid"]
    bad_seg = bad._seg                                     # the hostile client's view
    bad.send_many([b"before"] * 100)
    _good_traffic(g_tx, g_rx, GOOD_PACKETS, 1)

    # 1. the TX ring's data area, then its control lines too, round after round while
    # the good channel carries traffic, until the worker flags the channel
    rounds = 0
    for rounds in range(1, 61):
        _scribble(bad_seg.tx._segment, rng, with_header=rounds > 20)
        _scribble(bad_seg.rx._segment, rng, with_header=False)
        g_tx.send_many([b"during"] * 50)
        if bad_seg.counters()["tx_ring_faults"]:
            break
        time.sleep(0.05 if rounds < 40 else 0.3)   # the last rounds wait out unblock
    faults = bad_seg.counters()["tx_ring_faults"]
    print(f"\nscribbled {rounds} rounds: tx_ring_faults={faults}, "
          f"corrupt_records={bad_seg.tx.stats()['corrupt_records']}")
    assert faults >= 1, "the scribbled channel was never flagged"
    assert pool.workers()[0]["pid"] == pid and pool.workers()[0]["restarts"] == 0
    _good_traffic(g_tx, g_rx, GOOD_PACKETS, 2)

    # 2. the geometry line too, then a worker restart: the successor refuses the bad
    # channel (it fails validation) but serves every other one
    _scribble(bad_seg.tx._segment, rng, with_header=True)
    os.kill(pid, 9)
    assert wait_for(lambda: pool.workers()[0]["restarts"] == 1
                    and pool.workers()[0]["state"] == "running", 10)
    assert wait_for(lambda: pool.workers()[0]["channels"] >= 3, 10), pool.workers()
    _good_traffic(g_tx, g_rx, GOOD_PACKETS, 3)
    assert pool.workers()[0]["restarts"] == 1
    # the hostile client's handle still reports, and closing the channel works
    assert bad.stats()["tx_ring_faults"] >= 1
    bad.close()
    assert "bad" not in pool.channels()


def _rx_settled(seg: object, sent: int) -> bool:
    c = seg.counters()  # type: ignore[attr-defined]
    return c["rx_packets"] + c["rx_kernel_drops"] + c["rx_errors"] >= sent


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_datagrams_of_every_size_truncated_and_random(rtudp_pool: rtudp.Pool) -> None:
    """0..65507 bytes, every size, random content, into a channel that takes the most a
    channel can (MAX_DATAGRAM: 65507 less the RX record's metadata) and one
    (max_datagram 512) that truncates; the worker stays up and counts each."""
    pool = rtudp_pool
    big = pool.open_channel("big", direction=1, capacity=64, max_datagram=MAX_DATAGRAM)
    small = pool.open_channel("small", direction=1, capacity=4096, max_datagram=512)
    pid = pool.workers()[0]["pid"]
    rng = random.Random(7)
    noise = rng.randbytes(2 * lib.RTUDP_MAX_PAYLOAD)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    sizes = list(range(lib.RTUDP_MAX_PAYLOAD + 1))
    rng.shuffle(sizes)
    sent = {"big": 0, "small": 0}
    checked = 0
    try:
        for i, n in enumerate(sizes):
            off = rng.randrange(lib.RTUDP_MAX_PAYLOAD)
            s.sendto(noise[off:off + n], big.local)
            sent["big"] += 1
            if i % 4 == 0:  # every 4th size to the truncating channel too
                s.sendto(noise[off:off + n], small.local)
                sent["small"] += 1
            if i % 64 == 63:  # pace: never outrun the worker (kernel drops are counted anyway)
                assert wait_for(lambda: _rx_settled(big._seg, sent["big"]), 10)
                for p in small.recv_many(4096, timeout=0):
                    assert len(p.data) <= 512
                    checked += 1
        assert wait_for(lambda: _rx_settled(big._seg, sent["big"])
                        and _rx_settled(small._seg, sent["small"]), 20)
        checked += len(small.recv_many(100_000, timeout=0))
    finally:
        s.close()
    cb, cs = big.stats(), small.stats()
    print(f"\nevery size: big {cb['rx_packets']} rx, {cb['rx_kernel_drops']} kernel drops; "
          f"small {cs['rx_packets']} rx, {cs['rx_truncated']} truncated, {checked} read")
    assert pool.workers()[0]["pid"] == pid and pool.workers()[0]["restarts"] == 0
    assert cb["rx_packets"] + cb["rx_kernel_drops"] == sent["big"]
    assert cb["rx_errors"] == 0 and cs["rx_errors"] == 0
    assert cs["rx_packets"] + cs["rx_kernel_drops"] == sent["small"]
    for c, over in ((cb, sum(1 for n in sizes if n > MAX_DATAGRAM)),
                    (cs, sum(1 for i, n in enumerate(sizes) if i % 4 == 0 and n > 512))):
        assert over - c["rx_kernel_drops"] <= c["rx_truncated"] <= over, (c, over)
    # and the channel still works, the payload intact
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as t:
        t.sendto(b"still here", small.local)
    assert small.recv(timeout=5).data == b"still here"


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_every_size_into_the_protocol_kinds(rtudp_pool: rtudp.Pool) -> None:
    """The same hostile datagrams (every size 0..65507, random) into an RTP and a
    Netflux channel: the worker stays up, every datagram is counted once by the kind,
    as invalid where the protocol says so, and each channel still works after."""
    pool = rtudp_pool
    # rings (so socket buffers) for 64 of the largest datagrams: the pacing below
    # never lets the kernel drop one
    rtp = pool.open_channel("rtp", kind="rtp", direction=1, capacity=64,
                            max_datagram=MAX_DATAGRAM, options={"latency_ms": 20})
    nf = pool.open_channel("nf", kind="netflux", direction=1, capacity=64,
                           max_datagram=MAX_DATAGRAM, options={"send_interval": 0, "recv_size": 8})
    pid = pool.workers()[0]["pid"]
    rng = random.Random(11)
    noise = rng.randbytes(2 * lib.RTUDP_MAX_PAYLOAD)
    sizes = list(range(lib.RTUDP_MAX_PAYLOAD + 1))
    rng.shuffle(sizes)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
        for i, n in enumerate(sizes):
            off = rng.randrange(lib.RTUDP_MAX_PAYLOAD)
            s.sendto(noise[off:off + n], rtp.local)
            s.sendto(noise[off:off + n], nf.local)
            if i % 64 == 63:  # pace: never outrun the worker
                assert wait_for(lambda: _rx_settled(rtp._seg, i + 1)
                                and _rx_settled(nf._seg, i + 1), 10), (i, n)
        assert wait_for(lambda: _rx_settled(rtp._seg, len(sizes))
                        and _rx_settled(nf._seg, len(sizes)), 20)
    r, f = rtp.stats(), nf.stats()
    print(f"\nevery size: rtp {r['rx_packets']} rx, {r['rtp_rx_invalid']} invalid, "
          f"{r['rtp_rx_frames']} frames; netflux {f['rx_packets']} rx, {f['nf_short_pkts']} "
          f"short, {f['nf_valid']} valid, {f['nf_duplicate']} dup, {f['nf_old']} old")
    assert pool.workers()[0]["pid"] == pid and pool.workers()[0]["restarts"] == 0
    for st in (r, f):
        assert st["rx_packets"] + st["rx_kernel_drops"] == len(sizes)
        assert st["rx_errors"] == 0
    # RTP: nothing shorter than the 12-byte fixed header can be valid
    assert r["rtp_rx_invalid"] >= 12 - r["rx_kernel_drops"]
    # Netflux: every datagram is one of short, valid, duplicate or old
    assert f["nf_short_pkts"] >= 10 - f["rx_kernel_drops"]
    assert (f["nf_short_pkts"] + f["nf_valid"] + f["nf_duplicate"] + f["nf_old"]
            == f["rx_packets"])
    # and both still take a well-formed datagram
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as t:
        t.sendto(bytes([(f["nf_partner_seq"] + 1) & 0xFF, 0]) + b"12345678", nf.local)
    assert wait_for(lambda: nf.read().data == b"12345678", 5)
