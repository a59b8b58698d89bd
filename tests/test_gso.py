"""Batches leave as GSO sends and arrive as GRO receives, and nobody can tell.

The worker sends runs of same-size, same-deadline packets with one UDP_SEGMENT send
(csrc/worker/txloop.c) and turns on UDP_GRO on its sockets, splitting a coalesced
receive back into its datagrams (csrc/worker/rxloop.c).  What a user relies on: every
datagram arrives whole, once, in order, with its own size, whether the peer is a
plain socket or another channel, and the counters and the lateness histogram count
datagrams, not sends.
"""
from __future__ import annotations

import socket
import struct
import time

import pytest

import rtudp
from fake_worker import real_worker_built
from waiting import wait_for

real_worker_built()  # GSO/GRO are the C worker's: a broken build fails, never skips

SEQ = struct.Struct("<I")
UDP_SEGMENT = 103   # linux/udp.h


def _payloads(sizes: list[int]) -> list[bytes]:
    """Payload i is `sizes[i]` bytes starting with its index, filled with its low byte."""
    return [SEQ.pack(i) + bytes([i & 0xFF]) * (n - SEQ.size) for i, n in enumerate(sizes)]


def _recv_all(ch: rtudp.Channel, n: int, timeout: float = 10.0) -> list[rtudp.Packet]:
    got: list[rtudp.Packet] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += ch.recv_many(256, timeout=0.5)
    return got


def test_a_batch_arrives_as_separate_datagrams_in_order(rtudp_pool: rtudp.Pool) -> None:
    """Channel to channel: 3000 datagrams of mixed runs (64 B, 1400 B, single odd
    sizes) sent with one send_many come out as 3000 datagrams, in order, intact;
    tx/rx counters and the lateness histogram count each datagram."""
    pool = rtudp_pool
    rx = pool.open_channel("gro_rx", direction=1, capacity=8192, cpu=pool.cpus[-1])
    tx = pool.open_channel("gso_tx", direction=0, remote=rx.local, capacity=8192,
                           cpu=pool.cpus[0])
    sizes = [64] * 1000 + [1400] * 1000 + [64, 65, 66, 67] * 250
    items = _payloads(sizes)
    assert tx.send_many(items) == len(items)
    got = _recv_all(rx, len(items))
    assert [p.data for p in got] == items
    assert len({p.seq for p in got}) == len(items)
    wait_for(lambda: tx.stats()["tx_packets"] >= len(items))
    st = tx.stats()
    assert st["tx_packets"] == len(items)
    assert st["tx_bytes"] == sum(sizes)
    assert st["tx_errors"] == 0
    wait_for(lambda: tx.lateness().count >= len(items), 5)
    lat = tx.lateness()
    assert lat.count == len(items)     # one lateness per datagram, stamped or not
    rs = rx.stats()
    assert rs["rx_packets"] == len(items)
    assert rs["rx_bytes"] == sum(sizes)
    assert rs["rx_truncated"] == 0
    print(f"\n{len(items)} datagrams: tx kernel-stamped {st['tx_kernel_stamped']}, "
          f"lateness p50 {lat.percentile(50) / 1000:.1f} us")


def test_a_plain_socket_receives_each_datagram(rtudp_pool: rtudp.Pool) -> None:
    """A peer that knows nothing of GSO (no UDP_GRO) gets every datagram on its own."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sink.bind(("127.0.0.1", 0))
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sink.settimeout(5.0)
        tx = rtudp_pool.open_channel("gso_plain", direction=0, remote=sink.getsockname(),
                                     capacity=4096)
        items = _payloads([200] * 500 + [33] * 100)
        assert tx.send_many(items) == len(items)
        got = [sink.recv(65536) for _ in items]
        assert got == items
    finally:
        sink.close()


def test_coalesced_receives_from_a_foreign_sender(rtudp_pool: rtudp.Pool) -> None:
    """A sender using UDP_SEGMENT itself (the kernel may hand the channel its whole
    send as one coalesced receive): split back into datagrams, the short last one
    included; a channel whose max_datagram is below the segment size keeps each
    datagram truncated and counts it, and never merges or drops any."""
    pool = rtudp_pool
    whole = pool.open_channel("gro_whole", direction=1, capacity=1024)
    small = pool.open_channel("gro_small", direction=1, capacity=1024, max_datagram=100)
    src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        src.bind(("127.0.0.1", 0))
        seg = 300
        blob = b"".join(SEQ.pack(i) + bytes([i]) * (seg - SEQ.size) for i in range(40))
        blob += b"tail"                      # a last datagram of 4 bytes
        try:
            for ch in (whole, small):
                src.sendmsg([blob], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", seg))],
                            0, ch.local)
        except OSError as exc:
            pytest.skip(f"this kernel refuses UDP_SEGMENT sends: {exc}")
        expect = [blob[i:i + seg] for i in range(0, len(blob), seg)]
        assert [p.data for p in _recv_all(whole, len(expect))] == expect
        assert [p.data for p in _recv_all(small, len(expect))] == [e[:100] for e in expect]
        st = small.stats()
        assert st["rx_packets"] == len(expect)
        assert st["rx_truncated"] == len(expect) - 1     # all but the 4-byte tail
        assert whole.stats()["rx_truncated"] == 0
    finally:
        src.close()
