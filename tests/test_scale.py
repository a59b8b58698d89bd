"""Hundreds of channels on one pool: every packet sent arrives exactly once, in order,
and the channels' counters add up; the channels open and close cleanly.

One pool carries RTP_CHANNELS paced rtp streams (topped up well ahead by this process,
as one client does: no underrun may happen) and UDP_CHANNELS udp channels sending with
``at_ns``, all to one plain socket (the observer).  Each packet says which channel and
which frame it is: the observer must see each (channel, frame) once, each channel's
frames in order (rtp: its sequence numbers one apart, each RTP time jump an underrun
the channel counted), nothing else.  Timings are never asserted (the benchmark
``rtudp bench scale`` measures them).
"""
from __future__ import annotations

import os
import resource
import socket
import struct
import time
from typing import Any

import pytest

from fake_worker import real_worker_built, worker_argv
from waiting import wait_for

RTP_CHANNELS = 200
UDP_CHANNELS = 200
FRAMES = 40            # a stream: 0.8 s at 20 ms
PREFILL = 25           # rtp frames queued before the first top-up (500 ms ahead)
TOPUP = 5              # rtp frames a channel gets every TOPUP_S
TOPUP_S = 0.1
GAP_NS = 20_000_000
TAG = struct.Struct("!HH")   # channel index, frame index: the payload's first bytes
RCVBUF = 64 << 20

pytestmark = [pytest.mark.rtudp(worker=worker_argv()),
              pytest.mark.skipif(not real_worker_built(),
                                 reason="rtp channels need the native rtudp-worker (not built)")]


@pytest.fixture
def enough_fds():
    """A channel is a socket in the supervisor and in a worker, and its segment while it
    is set up: the soft RLIMIT_NOFILE raised (the workers inherit it) before the pool
    starts, and put back afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * (RTP_CHANNELS + UDP_CHANNELS) + 256
    if hard != resource.RLIM_INFINITY and hard < want:
        print(f"skipping: RLIMIT_NOFILE hard limit {hard} < {want}")
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below the {want} needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def observer():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), RCVBUF)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def _drain(sock: socket.socket, into: list[tuple[int, bytes]]) -> None:
    try:
        while True:
            data, addr = sock.recvfrom(2048)
            into.append((addr[1], data))
    except BlockingIOError:
        pass


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _open(pool: Any, dest: tuple[str, int]) -> tuple[list[Any], list[Any]]:
    rtp = [pool.open_channel(f"r{i}", local=("127.0.0.1", 0), remote=dest, direction="tx",
                             kind="rtp", capacity=64, max_datagram=256,
                             options={"tx_mode": "paced", "ptime_ms": 20, "rtcp": "off"})
           for i in range(RTP_CHANNELS)]
    udp = [pool.open_channel(f"u{i}", local=("127.0.0.1", 0), remote=dest, direction="tx",
                             capacity=64, max_datagram=256)
           for i in range(UDP_CHANNELS)]
    return rtp, udp


def _send(rtp: list[Any], udp: list[Any], sock: socket.socket) -> list[tuple[int, bytes]]:
    """Queue every udp packet with its deadline, the rtp frames PREFILL ahead then
    TOPUP every TOPUP_S; drain the observer meanwhile; what it got."""
    got: list[tuple[int, bytes]] = []
    start = time.monotonic_ns() + 300_000_000
    for i, ch in enumerate(udp):
        for k in range(FRAMES):
            ch.send(TAG.pack(i, k) + bytes(60), start + k * GAP_NS + i * GAP_NS // UDP_CHANNELS)
    queued = 0
    while queued < FRAMES:
        upto = min(FRAMES, PREFILL if queued == 0 else queued + TOPUP)
        for i, ch in enumerate(rtp):
            assert ch.send_many([TAG.pack(i, k) + bytes(156) for k in range(queued, upto)]) \
                == upto - queued
        queued = upto
        end = time.monotonic() + TOPUP_S
        while time.monotonic() < end:
            _drain(sock, got)
            time.sleep(0.01)
    want = (RTP_CHANNELS + UDP_CHANNELS) * FRAMES
    deadline = time.monotonic() + 30
    while len(got) < want and time.monotonic() < deadline:
        _drain(sock, got)
        time.sleep(0.02)
    time.sleep(0.2)   # anything more (a duplicate) would come now
    _drain(sock, got)
    return got


def _streams(got: list[tuple[int, bytes]], chans: list[Any], head: int) -> dict[int, list]:
    """The packets of each channel (by its source port), in arrival order."""
    ports = {ch.local[1]: i for i, ch in enumerate(chans)}
    out: dict[int, list] = {i: [] for i in range(len(chans))}
    for port, data in got:
        if port in ports:
            out[ports[port]].append(data[head:])
    return out


def test_hundreds_of_channels_deliver_every_packet_once_in_order(enough_fds, observer,
                                                                  rtudp_pool):
    workers = [w["pid"] for w in rtudp_pool.workers()]
    fds_before = {pid: _fd_count(pid) for pid in [*workers, os.getpid()]}
    rtp, udp = _open(rtudp_pool, observer.getsockname())
    assert len(rtudp_pool.channels()) == RTP_CHANNELS + UDP_CHANNELS
    got = _send(rtp, udp, observer)

    ports = {ch.local[1] for ch in rtp + udp}
    assert not [p for p, _ in got if p not in ports], "datagrams from no channel of ours"
    assert len(got) == (RTP_CHANNELS + UDP_CHANNELS) * FRAMES, \
        f"{len(got)} datagrams at the observer, {(RTP_CHANNELS + UDP_CHANNELS) * FRAMES} sent"
    for what, chans, head in (("rtp", rtp, 12), ("udp", udp, 0)):
        for i, packets in _streams(got, chans, head).items():
            tags = [TAG.unpack_from(p) for p in packets]
            assert tags == [(i, k) for k in range(FRAMES)], \
                f"{what} channel {i}: frames {tags[:5]}... not each once in order"
    for i, packets in _streams(got, rtp, 0).items():
        seqs = [struct.unpack_from("!H", p, 2)[0] for p in packets]
        assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:])), f"rtp {i}: seq"

    stats = [ch.stats() for ch in rtp + udp]
    for i, st in enumerate(stats):
        assert st["tx_packets"] == FRAMES and st["tx_errors"] == 0, (i, st["tx_packets"])
    # an underrun (a frame read after its time: the worker was held off the CPU for a
    # ptime, which a loaded machine does to a SCHED_OTHER worker) skips RTP time: each
    # one counted is one jump of the timestamp on the wire, and no jump is uncounted
    under = {i: st["rtp_tx_underruns"] for i, st in enumerate(stats[:RTP_CHANNELS])}
    for i, packets in _streams(got, rtp, 0).items():
        stamps = [struct.unpack_from("!I", p, 4)[0] for p in packets]
        jumps = sum((b - a) % (1 << 32) != 160 for a, b in zip(stamps, stamps[1:]))
        assert jumps == under[i], f"rtp channel {i}: {under[i]} underruns, {jumps} RTP time jumps"
    print(f"underruns: {sum(under.values())} in {sum(map(bool, under.values()))} of "
          f"{RTP_CHANNELS} rtp channels topped up {PREFILL - TOPUP} frames ahead")

    for ch in rtp + udp:
        ch.close()
    assert rtudp_pool.channels() == []
    left = [p for p in os.listdir("/dev/shm") if p.startswith(f"rtudp.{rtudp_pool.name}.")]
    assert left == [], f"channel segments left after closing: {left[:5]}"
    # the sockets are gone from the workers and from this process
    assert wait_for(lambda: all(_fd_count(pid) <= n for pid, n in fds_before.items()),
                    timeout=10), \
        f"file descriptors not back to {fds_before}: {({p: _fd_count(p) for p in fds_before})}"
