"""recv_many as one C call (csrc/pyfast/cursor.c, rtpframe.c): the packets and frames
it builds are the ones the Python parse gives, a bad record is named and the good
ones read before it are kept, max_n and the timeout hold.

Records are written into the channels' RX rings by the test itself, as the worker
writes them, so every field is known.
"""
from __future__ import annotations

import socket
import time

import pytest

from fake_worker import worker_argv
from rtp_helpers import rtp_packet
from rtudp.rtp.channel import _FRAME, RtpFrame, parse_frame_record
from rtudp.shmring._native import lib
from rtudp.shmring.channel import build_rx_record, parse_rx_record
from rtudp.shmring.errors import BadSegmentError

pytestmark = pytest.mark.rtudp(worker=worker_argv())

PEER = ("127.0.0.9", 4242)


def packet_record(seq: int, rx_seq: int, payload: bytes = b"pcmu", marker: int = 0,
                  source: tuple[str, int] = PEER) -> bytes:
    """A jbuf rtp RX record of a packet frame, as the worker writes it."""
    dgram = rtp_packet(seq, seq * 160, payload=payload)
    frame = _FRAME.pack(lib.RTUDP_RTP_FRAME_PACKET, 0, marker, seq, seq * 160, 0x1234,
                        1_000_000 + seq, 1_000_000 + seq, 0, 12, len(dgram) - 12)
    return build_rx_record(source, 5_000 + rx_seq, rx_seq, frame + dgram)


def erasure_record(first: int, last: int, rx_seq: int) -> bytes:
    """A jbuf rtp RX record declaring lseq first..last lost."""
    frame = _FRAME.pack(lib.RTUDP_RTP_FRAME_ERASURE, 0, 0, 0, 0, 0, first, last,
                        160 * (last - first + 1), 0, 0)
    return build_rx_record(("0.0.0.0", 0), 7_000 + rx_seq, rx_seq, frame)


@pytest.fixture
def jbuf(rtudp_pool):
    """A jitter-buffered rtp receive channel nobody sends to."""
    return rtudp_pool.open_channel("jb", kind="rtp", direction=1, local=("127.0.0.1", 0),
                                   options={"latency_ms": 30})


@pytest.fixture
def udp(rtudp_pool):
    """A udp receive channel nobody sends to."""
    return rtudp_pool.open_channel("rx", local=("127.0.0.1", 0))


def test_frames_read_in_c_are_the_python_parse(jbuf):
    records = [packet_record(10, 1), erasure_record(1_000_011, 1_000_013, 2),
               packet_record(14, 3, b"x" * 160, marker=1),
               packet_record(15, 4, source=("::1", 5004))]
    for rec in records:
        jbuf._seg.rx.write(rec)
    got = [jbuf.recv(timeout=5)] + jbuf.recv_many(2, timeout=0) + jbuf.recv_many(8, timeout=5)
    assert all(type(f) is RtpFrame for f in got)
    assert got == [parse_frame_record(rec) for rec in records]
    assert got[1].erasure and (got[1].lseq, got[1].lseq_end, got[1].ts_span) == \
        (1_000_011, 1_000_013, 480)
    assert got[2].marker is True and got[2].payload == b"x" * 160
    assert [f.source for f in got] == [PEER, None, PEER, ("::1", 5004)]


@pytest.mark.parametrize("bad, match", [
    (build_rx_record(PEER, 1, 1, b"\0" * 8), "shorter than its"),
    (build_rx_record(PEER, 1, 1, _FRAME.pack(9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), "frame kind 9"),
    (build_rx_record(PEER, 1, 1, _FRAME.pack(0, 0, 0, 1, 0, 0, 1, 1, 0, 10, 8) + bytes(16)),
     r"payload 10\+8 in a 16-byte datagram"),
])
def test_a_bad_frame_is_named_and_the_frames_before_it_are_kept(jbuf, bad, match):
    jbuf._seg.rx.write(packet_record(1, 1))
    jbuf._seg.rx.write(packet_record(2, 2))
    jbuf._seg.rx.write(bad)
    jbuf._seg.rx.write(packet_record(3, 4))
    assert [f.seq for f in jbuf.recv_many(8, timeout=5)] == [1, 2]
    with pytest.raises(BadSegmentError, match=match):
        jbuf.recv_many(8, timeout=5)
    assert [f.seq for f in jbuf.recv_many(8, timeout=5)] == [3]  # the channel reads on


def test_packets_read_in_c_are_the_python_parse(udp):
    records = [build_rx_record(PEER, 100 + i, i, b"datagram %d" % i) for i in range(5)]
    records.append(build_rx_record(("fe80::1", 9), 200, 5, b"v6", hw_ns=77, flags=1))
    for rec in records:
        udp._seg.rx.write(rec)
    got = udp.recv_many(64, timeout=5)
    want = [parse_rx_record(rec) for rec in records]
    assert [(p.data, p.source, p.rx_ns, p.hw_ns, p.seq) for p in got] == \
        [(data, m.source, m.rx_ns, m.hw_ns, m.rx_seq) for m, data in want]


def test_a_short_record_is_named_and_the_packets_before_it_are_kept(udp):
    udp._seg.rx.write(build_rx_record(PEER, 1, 1, b"one"))
    udp._seg.rx.write(b"short")
    udp._seg.rx.write(build_rx_record(PEER, 2, 2, b"two"))
    assert [p.data for p in udp.recv_many(8, timeout=5)] == [b"one"]
    with pytest.raises(BadSegmentError, match="RX record of 5 bytes"):
        udp.recv_many(8, timeout=5)
    assert [p.data for p in udp.recv_many(8, timeout=5)] == [b"two"]


def test_max_n_and_the_timeout_hold(udp, jbuf):
    for i in range(5):
        udp._seg.rx.write(build_rx_record(PEER, i, i, b"%d" % i))
        jbuf._seg.rx.write(packet_record(i, i))
    for ch, field in ((udp, "data"), (jbuf, "seq")):
        first = ch.recv_many(2, timeout=0)
        rest = ch.recv_many(64, timeout=0)
        assert (len(first), len(rest)) == (2, 3)
        t = time.monotonic()
        assert ch.recv_many(64, timeout=0.05) == []
        assert time.monotonic() - t >= 0.04  # it waited for a first one
        assert ch.recv_many(64, timeout=0) == []
        with pytest.raises(ValueError, match="max_n must be an int >= 1, got 0"):
            ch.recv_many(0)


def test_a_real_stream_arrives_whole_through_recv_many(jbuf):
    """The worker's own frames, read by lists: every packet once, in order."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        for s in range(100, 140):
            sock.sendto(rtp_packet(s, s * 160, payload=b"%d" % s), jbuf.local)
        got: list = []
        deadline = time.monotonic() + 10
        while len(got) < 40 and time.monotonic() < deadline:
            got += jbuf.recv_many(7, timeout=1)
        assert [f.seq for f in got] == list(range(100, 140))
        assert [f.payload for f in got] == [b"%d" % s for s in range(100, 140)]
        assert {f.source for f in got} == {sock.getsockname()}
    finally:
        sock.close()
