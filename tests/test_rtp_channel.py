"""rtp worker channels end to end: the worker writes RTP headers and paces frames,
receives through the jitter buffer (ordered frames, erasures, invalid datagrams
counted), retargets on set_target.

Timing is asserted loosely (lower bounds on spacing, generous upper bounds): a
loaded 2-core machine must pass.
"""
from __future__ import annotations

import os
import random
import socket
import struct
import time

import pytest

from fake_worker import worker_argv
from rtp_helpers import rtp_packet
from waiting import wait_for
from rtudp.rtp.channel import RtpChannel, RtpFrame

pytestmark = [pytest.mark.rtudp(worker=worker_argv())]

HDR = struct.Struct("!BBHII")


def header(data: bytes) -> tuple[int, int, int, int, int]:
    """(marker, pt, seq, ts, ssrc) of an RTP datagram."""
    b0, b1, seq, ts, ssrc = HDR.unpack_from(data)
    assert b0 >> 6 == 2
    return b1 >> 7, b1 & 0x7F, seq, ts, ssrc


def recv_frames(ch: RtpChannel, n: int, timeout: float = 5.0) -> list[RtpFrame]:
    out: list[RtpFrame] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += ch.recv_many(n - len(out), timeout=max(0.0, deadline - time.monotonic()))
    return out


@pytest.fixture
def udp_sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    yield s
    s.close()


def test_paced_frames_get_headers_and_ptime_spacing(rtudp_pool, udp_sock):
    tx = rtudp_pool.open_channel("tx", remote=udp_sock.getsockname(), direction=0, kind="rtp",
                                 options={"ptime_ms": 10, "payload_type": 8})
    assert isinstance(tx, RtpChannel) and tx.tx_mode == "paced"
    n = 30
    tx.send_many([bytes([i]) * 80 for i in range(n)])  # all at once: the worker paces them
    t_start = time.monotonic_ns()
    got = [udp_sock.recvfrom(2048)[0] for _ in range(n)]
    assert time.monotonic_ns() - t_start >= (n - 2) * 10_000_000  # paced, not a burst
    hdrs = [header(d) for d in got]
    assert [d[12:] for d in got] == [bytes([i]) * 80 for i in range(n)]
    seq0, ts0, ssrc = hdrs[0][2], hdrs[0][3], hdrs[0][4]
    assert ssrc == tx.ssrc
    assert [h[2] for h in hdrs] == [(seq0 + i) & 0xFFFF for i in range(n)]
    assert [h[3] for h in hdrs] == [(ts0 + 80 * i) & 0xFFFFFFFF for i in range(n)]
    assert [h[1] for h in hdrs] == [8] * n
    assert hdrs[0][0] == 1 and all(h[0] == 0 for h in hdrs[1:])  # talkspurt start
    st = tx.stats()
    assert st["rtp_tx_frames"] == n and st["tx_packets"] == n and st["rtp_tx_bad_records"] == 0
    # a send's lateness is recorded when the worker reads its kernel TX stamp back, which
    # can come after the datagram is already here (CI once read 29 of 30)
    assert wait_for(lambda: tx.lateness().count == n, 2.0), tx.lateness()


def test_paced_spacing_seen_by_receiver(rtudp_pool):
    rx = rtudp_pool.open_channel("rx", kind="rtp", direction=1, options={"latency_ms": 20})
    tx = rtudp_pool.open_channel("tx", remote=rx.local, direction=0, kind="rtp",
                                 options={"ptime_ms": 20})
    n = 15
    tx.send_many([b"%02d" % i * 40 for i in range(n)])
    frames = recv_frames(rx, n)
    assert [f.payload for f in frames] == [b"%02d" % i * 40 for i in range(n)]
    assert not any(f.erasure for f in frames)
    span_ms = (frames[-1].rx_ns - frames[0].rx_ns) / 1e6
    assert span_ms >= (n - 1) * 20 * 0.9, f"frames not paced: {span_ms:.1f} ms for {n}"
    assert frames[0].ssrc == tx.ssrc and frames[0].source == tx.local
    assert [f.lseq - frames[0].lseq for f in frames] == list(range(n))


def test_underrun_skips_the_clock_and_marks_a_talkspurt(rtudp_pool, udp_sock):
    tx = rtudp_pool.open_channel("tx", remote=udp_sock.getsockname(), direction=0, kind="rtp",
                                 options={"ptime_ms": 10})
    tx.send(b"a" * 80)
    first = header(udp_sock.recvfrom(2048)[0])
    time.sleep(0.2)  # 20 packet times with nothing to send
    tx.send(b"b" * 80)
    second = header(udp_sock.recvfrom(2048)[0])
    assert second[2] == (first[2] + 1) & 0xFFFF
    ticks = (second[3] - first[3]) & 0xFFFFFFFF
    assert ticks % 80 == 0 and ticks >= 80 * 19, ticks  # whole packet times skipped
    assert second[0] == 1
    assert tx.stats()["rtp_tx_underruns"] == 1


def test_timed_frames_take_their_timestamp_from_the_deadline(rtudp_pool, udp_sock):
    tx = rtudp_pool.open_channel("tx", remote=udp_sock.getsockname(), direction=0, kind="rtp",
                                 options={"tx_mode": "timed", "clock_rate": 16000})
    t0 = time.monotonic_ns() + 20_000_000
    offsets_ms = [0, 5, 10, 30, 31]
    for i, off in enumerate(offsets_ms):
        tx.send(bytes([i]) * 10, at_ns=t0 + off * 1_000_000, marker=(i == 3))
    got = [header(udp_sock.recvfrom(2048)[0]) for _ in offsets_ms]
    assert time.monotonic_ns() >= t0 + 31_000_000
    ts0 = got[0][3]
    assert [(h[3] - ts0) & 0xFFFFFFFF for h in got] == [16 * off for off in offsets_ms]
    assert [h[0] for h in got] == [1, 0, 0, 1, 0]


def test_jitter_buffer_orders_erases_and_counts_invalid(rtudp_pool, udp_sock):
    rx = rtudp_pool.open_channel("rx", kind="rtp", direction=1,
                                 options={"latency_ms": 30, "jb_capacity": 64})
    seqs = [s for s in range(65530, 65530 + 40) if s != 65540]  # one lost, seq wraps
    order = seqs[:2] + random.Random(5).sample(seqs[2:], len(seqs) - 2)
    junk = [b"junk", b"\x80\xc8" + bytes(10), b"\x40" + bytes(20)]  # short, RTCP PT, v1
    for i, s in enumerate(order):
        udp_sock.sendto(rtp_packet(s, s * 160, payload=struct.pack("!I", s)), rx.local)
        if i % 10 == 5:
            udp_sock.sendto(junk[i // 10 % 3], rx.local)
    frames = recv_frames(rx, len(seqs) + 1)
    kinds = [("ers", f.lseq, f.lseq_end) if f.erasure else ("rtp", f.lseq & 0xFFFF)
             for f in frames]
    lost_ext = frames[0].lseq + 10
    expected = [("rtp", s & 0xFFFF) for s in seqs[:10]] + [("ers", lost_ext, lost_ext)] + \
               [("rtp", s & 0xFFFF) for s in seqs[10:]]
    assert kinds == expected
    assert [struct.unpack("!I", f.payload)[0] for f in frames if not f.erasure] == seqs
    assert frames[11].lseq == frames[9].lseq + 2  # 64-bit extended across the wrap
    erasure = frames[10]
    assert erasure.ts_span == 160
    st = rx.stats()
    assert st["rtp_rx_invalid"] == sum(1 for i in range(len(order)) if i % 10 == 5)
    assert st["rtp_rx_frames"] == len(seqs) and st["rtp_rx_erasures"] == 1
    assert st["rtp_rx_erased"] == 1 and st["rtp_rx_reordered"] > 0
    assert st["rx_packets"] == len(order) + st["rtp_rx_invalid"]
    assert all(f.rx_ns > 0 for f in frames)


def test_count_mode_and_duplicates(rtudp_pool, udp_sock):
    rx = rtudp_pool.open_channel("rx", kind="rtp", direction=1,
                                 options={"latency_ms": 0, "jb_capacity": 4})
    for s in [1, 2, 2, 3, 5, 6, 7]:  # 4 lost; 2 twice
        udp_sock.sendto(rtp_packet(s, s * 160), rx.local)
    frames = recv_frames(rx, 3, timeout=3)
    assert [(f.erasure, f.lseq & 0xFFFF) for f in frames] == [(False, 1), (False, 2), (False, 3)]
    # count mode: 3 packets wait behind the gap, fewer than the capacity of 4, so no
    # time passing declares it lost
    assert rx.recv_many(10, timeout=0.3) == []
    udp_sock.sendto(rtp_packet(8, 8 * 160), rx.local)
    frames = recv_frames(rx, 5, timeout=3)
    assert [(f.erasure, f.lseq & 0xFFFF) for f in frames] == \
        [(True, 4), (False, 5), (False, 6), (False, 7), (False, 8)]
    assert rx.stats()["rtp_rx_duplicates"] == 1


def test_raw_modes_and_set_target(rtudp_pool, udp_sock):
    ch = rtudp_pool.open_channel("raw", kind="rtp",
                                 options={"tx_mode": "raw", "rx_mode": "raw"})
    ch.set_target(*udp_sock.getsockname())
    ch.send(b"not rtp at all")
    data, src = udp_sock.recvfrom(2048)
    assert data == b"not rtp at all" and src == ch.local
    udp_sock.sendto(b"back", ch.local)
    pkt = ch.recv(timeout=5)
    assert pkt.data == b"back" and pkt.source == udp_sock.getsockname()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        other.bind(("127.0.0.1", 0))
        other.settimeout(5)
        ch.set_target(*other.getsockname())
        ch.send(b"second")
        assert other.recvfrom(2048)[0] == b"second"
    finally:
        other.close()
    with pytest.raises(ValueError, match="pt/marker"):
        ch.send(b"x", marker=True)


@pytest.mark.parametrize("options, exc, match", [
    ({"tx_mode": "fast"}, ValueError, "'fast'"),
    ({"clock_rate": 0}, ValueError, "clock_rate=0"),
    ({"payload_type": 72}, ValueError, "72"),
    ({"ptime_ms": "20"}, TypeError, "'20'"),
    ({"latency": 5}, ValueError, "latency"),
    ({"jb_capacity": True}, TypeError, "True"),
])
def test_bad_options_name_the_value(rtudp_pool, options, exc, match):
    with pytest.raises(exc, match=match):
        rtudp_pool.open_channel("bad", kind="rtp", options=options)
    ok = rtudp_pool.open_channel("good", kind="rtp")  # the pool is still usable
    assert ok.tx_mode == "paced"


def test_bad_frame_arguments(rtudp_pool):
    tx = rtudp_pool.open_channel("tx", remote=("127.0.0.1", 9), direction=0, kind="rtp",
                                 max_datagram=200)
    with pytest.raises(ValueError, match="74"):
        tx.send(b"x", pt=74)
    with pytest.raises(ValueError, match="200"):
        tx.send(bytes(190))
    with pytest.raises(TypeError, match="str"):
        tx.send("text")
    with pytest.raises(ValueError, match="'nohost'"):
        tx.set_target("nohost", 5000)


def test_rtstat_shows_the_rtp_counters(rtudp_pool, udp_sock):
    from rich.console import Console

    from rtudp.tools.rtstat_model import Collector
    from rtudp.tools.rtstat_view import View, render_pool

    rx = rtudp_pool.open_channel("rx", kind="rtp", direction=1, options={"latency_ms": 20})
    for s in (1, 2, 4):
        udp_sock.sendto(rtp_packet(s, s * 160, ssrc=0xABCDEF01), rx.local)
    udp_sock.sendto(b"junk", rx.local)
    assert len(recv_frames(rx, 4)) == 4  # 1, 2, erasure of 3, 4
    frame = Collector(pool=rtudp_pool.name).frame()
    (pool,) = frame["pools"]
    (ch,) = [c for c in pool["channels"] if c["name"] == "rx"]
    st = rx.stats()
    for key in ("rtp_rx_frames", "rtp_rx_erasures", "rtp_rx_invalid", "rtp_rx_ssrc"):
        assert ch["totals"][key] == st[key], key
    assert (st["rtp_rx_frames"], st["rtp_rx_erasures"], st["rtp_rx_invalid"]) == (3, 1, 1)
    with open(os.devnull, "w") as sink:
        console = Console(width=250, record=True, file=sink)
        console.print(render_pool(pool, View(width=250)))
    text = console.export_text()
    assert "rtp (totals)" in text
    (line,) = [ln for ln in text.splitlines() if "abcdef01" in ln]
    cells = line.split()
    assert cells[0] == "rx" and cells[5] == "abcdef01"
    assert (cells[6], cells[7], cells[9]) == ("3", "1", "1")  # frames, erasures, invalid
