"""numpy batches: Channel.recv_batch fills columns, Channel.send_batch queues a buffer.

What a user relies on: every field of every packet is in its column (the same values
recv() gives), payloads come back byte for byte, per-packet deadlines are kept, a full
ring says how many went in, bad input names itself, and without numpy the error names
the extra to install.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

import rtudp
from fake_worker import worker_argv
from test_rtp_channel import udp_sock  # noqa: F401  (the fixture)
from waiting import wait_for

np = pytest.importorskip("numpy", reason="numpy (the 'numpy' extra) is not installed")

pytestmark = pytest.mark.rtudp(worker=worker_argv())


def _arrived(ch, n: int) -> None:
    assert wait_for(lambda: ch.stats()["rx_packets"] >= n, 5.0), f"{n} datagrams on {ch.name}"


def test_recv_batch_columns_match_packets(loopback_pair, rtudp_pool):
    a, b = loopback_pair
    # a second reader on the same channel reads the same datagrams one by one
    other = rtudp.attach("a", pool=rtudp_pool.name)
    try:
        payloads = [bytes([i]) * (10 + i) for i in range(20)]  # sizes differ
        for p in payloads:
            b.send(p)
        _arrived(a, 20)
        batch = a.recv_batch(64, timeout=1.0)
        pkts = other.recv_many(64, timeout=1.0)
    finally:
        other.close()
    assert len(batch) == 20 == len(pkts)
    assert [batch.packet(i) for i in range(20)] == payloads
    assert batch.length.tolist() == [len(p) for p in payloads]
    assert batch.offsets.tolist() == [0, *np.cumsum([len(p) for p in payloads]).tolist()]
    assert bytes(batch.payload) == b"".join(payloads)
    assert batch.seq.tolist() == [p.seq for p in pkts]
    assert batch.rx_ns.tolist() == [p.rx_ns for p in pkts]
    assert batch.hw_ns.tolist() == [p.hw_ns for p in pkts]
    assert batch.lost.tolist() == [0] * 20
    assert [batch.source(i) for i in range(20)] == [p.source for p in pkts] == [b.local] * 20
    assert batch.src_port.tolist() == [b.local[1]] * 20
    assert batch.rx_ns.dtype == np.int64 and batch.length.dtype == np.uint32
    with pytest.raises(ValueError, match="sizes from 10 to 29"):
        batch.data


def test_equal_sizes_give_a_2d_view_and_max_n_is_kept(loopback_pair):
    a, b = loopback_pair
    rows = np.arange(30 * 48, dtype=np.uint32).astype(np.uint8).reshape(30, 48)
    assert b.send_batch(rows) == 30          # lengths=None: one row a datagram
    _arrived(a, 30)
    first = a.recv_batch(25, timeout=1.0)
    rest = a.recv_batch(25, timeout=1.0)
    assert (len(first), len(rest)) == (25, 5)
    assert first.data.shape == (25, 48)
    assert (np.concatenate([first.data, rest.data]) == rows).all()
    assert rest.seq[0] == first.seq[-1] + 1
    assert len(a.recv_batch(8, timeout=0)) == 0  # nothing more: an empty batch


def test_recv_batch_waits_then_times_out(loopback_pair):
    a, _ = loopback_pair
    t0 = time.monotonic()
    empty = a.recv_batch(16, timeout=0.2)
    assert len(empty) == 0 and empty.data.shape == (0, 0)
    assert time.monotonic() - t0 >= 0.19


def test_send_batch_per_packet_deadlines(loopback_pair):
    a, b = loopback_pair
    now = time.monotonic_ns()
    lengths = np.array([3, 5, 2, 6])
    # deadlines out of order: the worker sends each at its own time
    at = np.array([now + 40_000_000, now + 10_000_000, now + 30_000_000, now + 20_000_000])
    assert b.send_batch(b"aaabbbbbccdddddd", lengths, at_ns=at) == 4
    _arrived(a, 4)
    got = a.recv_batch(8, timeout=1.0)
    assert [got.packet(i) for i in range(len(got))] == [b"bbbbb", b"dddddd", b"cc", b"aaa"]
    assert (got.rx_ns >= np.sort(at) - 1_000_000).all()  # none left before its deadline


@pytest.mark.rtudp(horizon_s=7200)  # deadlines an hour ahead: within this pool's horizon
def test_send_batch_full_ring_says_how_many_went_in(rtudp_pool):
    sink = rtudp_pool.open_channel("sink", local=("127.0.0.1", 0), direction=1)
    # a paused-looking sender: every datagram due in an hour stays in the ring
    src = rtudp_pool.open_channel("src", local=("127.0.0.1", 0), remote=sink.local,
                                  direction=0, capacity=1024, max_datagram=64)
    later = time.monotonic_ns() + 3600 * 10**9
    data = np.zeros((100_000, 64), np.uint8)
    with pytest.raises(rtudp.BackPressureError) as info:
        src.send_batch(data, at_ns=later)
    assert 0 < info.value.sent < 100_000
    assert src.stats()["tx_queued_bytes"] > 0


@pytest.mark.parametrize("call, match", [
    (lambda b: b.send_batch(b"abc", [2, 2]), "add up to 4 bytes, the buffer has 3"),
    (lambda b: b.send_batch(b"abc", [[1, 2]]), "1-D array of ints"),
    (lambda b: b.send_batch(b"abc", [-1]), "0..2"),
    (lambda b: b.send_batch(b"abc", [1, 2], at_ns=[1]), "1 deadlines .* for 2 datagrams"),
    (lambda b: b.send_batch(b"abc", [1, 2], at_ns=[1, -5]), r"at_ns\[1\] is -5"),
    (lambda b: b.send_batch(b"abc", None), "lengths=None needs a 2-D buffer"),
    (lambda b: b.send_batch(np.zeros((2, 2000), np.uint8)), "over the limit"),
    (lambda b: b.recv_batch(0), "max_n must be an int >= 1, got 0"),
    (lambda b: b.recv_batch(4, timeout=-1), "timeout must be >= 0"),
])
def test_bad_input_is_named(loopback_pair, call, match):
    _, b = loopback_pair
    with pytest.raises((ValueError, TypeError), match=match):
        call(b)
    assert b.stats()["tx_requested"] == 0  # nothing of a refused batch was queued


def test_without_numpy_the_error_names_the_extra(rtudp_pool):
    """numpy is optional: the rest works without it, these two calls name the extra."""
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "import rtudp\n"
        f"ch = rtudp.attach('a', pool={rtudp_pool.name!r})\n"
        "try:\n"
        "    ch.recv_batch(4, timeout=0)\n"
        "except ImportError as e:\n"
        "    print('ERR', e)\n"
        "ch.close()\n")
    rtudp_pool.open_channel("a", local=("127.0.0.1", 0))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ERR" in out.stdout and "pip install 'rtudp[numpy]'" in out.stdout


def test_a_batch_held_is_never_overwritten(loopback_pair):
    """recv_batch reuses its arrays only once no batch refers to them."""
    a, b = loopback_pair
    b.send_batch(np.full((4, 16), 1, np.uint8))
    _arrived(a, 4)
    first = a.recv_batch(8, timeout=1.0)
    b.send_batch(np.full((4, 16), 2, np.uint8))
    _arrived(a, 8)
    second = a.recv_batch(8, timeout=1.0)
    assert (first.data == 1).all() and (second.data == 2).all()
    assert not np.shares_memory(first.payload, second.payload)
    held = {id(first.rx_ns.base), id(second.rx_ns.base)}
    del first, second
    b.send_batch(np.full((4, 16), 3, np.uint8))
    _arrived(a, 12)
    third = a.recv_batch(8, timeout=1.0)
    assert (third.data == 3).all()
    assert id(third.rx_ns.base) in held  # dropped: their arrays are used again


# ------------------------------------------------------------------ other kinds

def _rtp_packet(seq: int, payload: bytes, marker: int = 0) -> bytes:
    from rtp_helpers import rtp_packet
    return rtp_packet(seq, seq * 160, ssrc=0xABCD, pt=8, payload=payload, marker=marker)


def test_rtp_jbuf_recv_batch_has_the_frame_columns(rtudp_pool, udp_sock):
    """A jitter-buffered rtp channel's batch: packets in order and the erasure for the
    gap, each RtpFrame field a column, the same values another reader's recv gives."""
    rx = rtudp_pool.open_channel("rx", kind="rtp", direction=1,
                                 options={"latency_ms": 0, "jb_capacity": 4})
    from rtudp.rtp.channel import RtpChannel
    other = RtpChannel.attach("rx", pool=rtudp_pool.name)
    try:
        sent = [1, 2, 3, 5, 6, 7, 8]  # 4 lost: declared once 4 wait behind it
        for s in sent:
            udp_sock.sendto(_rtp_packet(s, bytes([s]) * s, marker=s == 5), rx.local)
        frames: list = []
        end = time.monotonic() + 5
        while len(frames) < 8 and time.monotonic() < end:
            frames += other.recv_many(8 - len(frames), timeout=0.5)
        batch = rx.recv_batch(16, timeout=0)  # all 8 are in the ring: the other read them
    finally:
        other.close()
        rx.close()
    assert len(frames) == 8
    assert len(batch) == 8, batch
    assert type(batch).__name__ == "RtpFrameBatch"
    assert batch.erasure.tolist() == [f.erasure for f in frames] == [False] * 3 + [True] + \
        [False] * 4
    for col, field in (("lseq", "lseq"), ("lseq_end", "lseq_end"), ("ts_span", "ts_span"),
                       ("rtp_seq", "seq"), ("ts", "ts"), ("ssrc", "ssrc"), ("pt", "pt"),
                       ("marker", "marker"), ("rx_ns", "rx_ns"), ("seq", "rx_seq")):
        assert getattr(batch, col).tolist() == [getattr(f, field) for f in frames], col
    assert [batch.packet(i) for i in range(8)] == [f.data for f in frames]
    assert [batch.rtp_payload(i) for i in range(8)] == [f.payload for f in frames]
    assert batch.rtp_payload(0) == b"\x01" and batch.rtp_payload(7) == b"\x08" * 8
    assert batch.length[3] == 0 and batch.ts_span[3] == 160


def test_rtp_send_batch_frames_and_raw(rtudp_pool, udp_sock):
    """send_batch on a framed rtp channel: each row one frame, given its RTP header by
    the worker; on a raw channel datagrams as they are, and recv_batch reads raw
    datagrams as a udp channel's."""
    import struct
    tx = rtudp_pool.open_channel("tx", remote=udp_sock.getsockname(), direction=0, kind="rtp",
                                 options={"ptime_ms": 1, "payload_type": 8})
    rows = np.arange(5 * 20, dtype=np.uint8).reshape(5, 20)
    assert tx.send_batch(rows) == 5
    got = [udp_sock.recv(2048) for _ in range(5)]
    seqs = [struct.unpack_from("!H", d, 2)[0] for d in got]
    assert [d[12:] for d in got] == [bytes(r) for r in rows]
    assert [d[1] & 0x7F for d in got] == [8] * 5
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(5)]
    tx.close()
    raw = rtudp_pool.open_channel("raw", kind="rtp", local=("127.0.0.1", 0),
                                  remote=udp_sock.getsockname(),
                                  options={"tx_mode": "raw", "rx_mode": "raw"})
    try:
        assert raw.send_batch(b"abcdefgh", np.array([3, 5])) == 2
        assert [udp_sock.recv(64) for _ in range(2)] == [b"abc", b"defgh"]
        for d in (b"one", b"three"):
            udp_sock.sendto(d, raw.local)
        _arrived(raw, 2)
        batch = raw.recv_batch(8, timeout=1.0)
        assert type(batch).__name__ == "PacketBatch"
        assert [batch.packet(i) for i in range(len(batch))] == [b"one", b"three"]
    finally:
        raw.close()


def test_kinds_without_datagrams_say_so(rtudp_pool):
    """netflux (a latest-value image) and udt (streams) have no datagram records:
    recv_batch and send_batch raise TypeError naming the kind and what to use."""
    from netflux_helpers import netflux_pair
    a, b = netflux_pair(rtudp_pool, {"send_interval": 0.01, "send_size": 8, "recv_size": 8})
    u = rtudp_pool.open_channel("u", local=("127.0.0.1", 0), kind="udt")
    try:
        with pytest.raises(TypeError, match=r"netflux channel 'nfa' has no recv_batch: .*image"):
            a.recv_batch(8)
        with pytest.raises(TypeError, match=r"netflux channel 'nfa' has no send_batch"):
            a.send_batch(b"x" * 8, [8])
        with pytest.raises(TypeError, match=r"udt channel 'u' has no recv_batch: .*stream"):
            u.recv_batch(8)
        with pytest.raises(TypeError, match=r"udt channel 'u' has no send_batch"):
            u.send_batch(b"x", [1])
    finally:
        for ch in (a, b, u):
            ch.close()


def test_demo_receiver_counts_the_same_from_batches(loopback_pair, rtudp_pool):
    """The demo's reader checks numpy batches when numpy is there: the same packets,
    duplicates, reorderings, foreign datagrams and latencies as one packet at a time."""
    from rtudp.tools import demo

    a, b = loopback_pair
    other = rtudp.attach("a", pool=rtudp_pool.name)
    try:
        now = time.monotonic_ns()
        seqs = [0, 1, 2, 5, 3, 4, 4, 9, 6, 7, 7, 8, 0]   # 5 below the highest, 3 duplicates
        for s in seqs:
            b.send(demo.PAYLOAD.pack(demo.MAGIC, 0, s, now + s))
        b.send(b"short")                                    # foreign: size
        b.send(demo.PAYLOAD.pack(b"nope", 0, 1, now))       # foreign: magic
        b.send(demo.PAYLOAD.pack(demo.MAGIC, 1, 1, now))    # foreign: direction
        b.send(demo.PAYLOAD.pack(demo.MAGIC, 0, 10, now))   # foreign: past expected
        _arrived(a, len(seqs) + 4)
        by_batch = demo.Receiver(a, 0, 10)
        one_by_one = demo.Receiver(other, 0, 10)
        one_by_one._np = None
        assert by_batch._np is not None
        assert by_batch.drain() == one_by_one.drain() == len(seqs) + 4
    finally:
        other.close()
    for r in (by_batch, one_by_one):
        assert (r.received, r.duplicates, r.reordered, r.foreign) == (10, 3, 5, 4)
        assert r.done and bytes(r.seen) == b"\x01" * 10
    assert list(by_batch.latencies) == list(one_by_one.latencies)
