"""``rtudp tap``: pcapng captures of channels, read back by Debian's tshark.

The tap runs as a user runs it (``rtudp tap CHANNEL --pool P -w FILE``, a separate
process); tshark says what is in the file: how many packets, their times, directions,
addresses, checksums and payloads, and (for an RTP channel) the RTP headers.  The
times are checked against the channel's own stamps: the receive stamps readers get,
the deadlines sends were given and the peer's receive stamps.
"""
from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from typing import Any

import pytest

from fake_worker import worker_argv
from ports import free_ports
from rtudp.shmring._native import ffi, lib
from rtudp.shmring.errors import BackPressureError
from rtudp.shmring.channel import ChannelSegment
from rtudp.shmring.control import channel_segment_name
from rtudp.shmring.errors import SegmentNotFoundError
from rtudp.shmring.segment import reserve, shm_path
from rtudp.shmring.tap import Tap
from rtudp.tools.procinfo import realtime_offset_ns

TSHARK = shutil.which("tshark")
pytestmark = [pytest.mark.rtudp(worker=worker_argv())]
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (.ci/run "
                                  "installs Debian's tshark package)")
FIELDS = ("frame.time_epoch", "frame.packet_flags_direction", "ip.src", "udp.srcport",
          "ip.dst", "udp.dstport", "ip.checksum.status", "udp.checksum.status", "udp.length",
          "udp.payload", "frame.comment")
OUT, IN = 2, 1


def tap_cmd(pool: Any, channel: str, path: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rtudp.tools.cli", "tap", channel, "--pool", pool.name,
            "-w", path, *extra]


def start_tap(pool: Any, channel: str, path: str, *extra: str) -> subprocess.Popen:
    """Start `rtudp tap` and wait until it is attached to the channel."""
    p = subprocess.Popen(tap_cmd(pool, channel, path, *extra), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while p.pid not in tap_pids(pool, channel):
        if p.poll() is not None:
            raise AssertionError(f"rtudp tap exited {p.returncode}: {p.stderr.read().decode()}")
        assert time.monotonic() < deadline, "the tap never attached"
        time.sleep(0.01)
    return p


def tap_pids(pool: Any, channel: str) -> list[int]:
    seg = ChannelSegment.open(f"{pool.name}.{channel}")
    try:
        return [int(lib.rtudp_tap_pid(seg.block, i)) for i in range(lib.RTUDP_TAP_SLOTS)]
    finally:
        seg.close()


def taps_attached(pool: Any, channel: str) -> int:
    seg = ChannelSegment.open(f"{pool.name}.{channel}")
    try:
        return int(seg.block.tap.attached)
    finally:
        seg.close()


def finish(p: subprocess.Popen, timeout: float = 30) -> str:
    """Wait for the tap; its summary line (stderr)."""
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    assert p.returncode == 0, err.decode()
    return err.decode()


def tshark(path: str, *extra: str, fields: tuple[str, ...] = FIELDS) -> list[list[str]]:
    """tshark's fields of every packet in `path`, one list a packet."""
    cmd = [TSHARK, "-r", path, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
           *extra, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def epoch_ns(text: str) -> int:
    """tshark's frame.time_epoch ("1795374546.024962978") as exact ns."""
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


def isb(path: str) -> dict[int, int]:
    """The options of the file's Interface Statistics Block (code -> u64 value)."""
    data = open(path, "rb").read()
    pos, found = 0, {}
    while pos + 12 <= len(data):
        btype, total = struct.unpack_from("<II", data, pos)
        if btype == 5:
            o = pos + 20
            while o + 4 <= pos + total - 4:
                code, ln = struct.unpack_from("<HH", data, o)
                if code == 0:
                    break
                if ln == 8:
                    found[code] = struct.unpack_from("<Q", data, o + 4)[0]
                o += 4 + ln + (-ln % 4)
        pos += total
    return found


@pytest.fixture
def pair(rtudp_pool):
    """Channels a and b on loopback, connected to each other, on different workers."""
    pa, pb = free_ports(2)
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", pa), remote=("127.0.0.1", pb),
                                cpu=rtudp_pool.cpus[0])
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", pb), remote=("127.0.0.1", pa),
                                cpu=rtudp_pool.cpus[-1])
    yield a, b
    b.close()
    a.close()


@needs_tshark
def test_both_directions_with_kernel_stamps(rtudp_pool, pair, tmp_path):
    a, b = pair
    n = 50
    path = str(tmp_path / "a.pcapng")
    p = start_tap(rtudp_pool, "a", path, "--count", str(2 * n))
    offset = realtime_offset_ns()
    sent = [os.urandom(1 + i * 7) for i in range(n)]
    t0 = time.monotonic_ns() + 2_000_000
    deadlines = [t0 + i * 200_000 for i in range(n)]
    for data, at in zip(sent, deadlines):
        a.send(data, at_ns=at)
    at_b = [b.recv(timeout=5) for _ in range(n)]
    back = [os.urandom(1 + (i * 13) % 1400) for i in range(n)]
    for data in back:
        b.send(data)
        time.sleep(0.0002)
    at_a = [a.recv(timeout=5) for _ in range(n)]
    summary = finish(p)
    assert f"{2 * n} packets ({n} sent, {n} received)" in summary

    rows = tshark(path)
    assert len(rows) == 2 * n
    times = [epoch_ns(r[0]) for r in rows]
    assert times == sorted(times), "packets are written in time order"
    out = [r for r in rows if int(r[1], 16) == OUT]
    inn = [r for r in rows if int(r[1], 16) == IN]
    assert len(out) == n and len(inn) == n
    # payloads byte-exact, in order, with the channel's addresses and good checksums
    assert [bytes.fromhex(r[9]) for r in out] == sent
    assert [bytes.fromhex(r[9]) for r in inn] == back
    for r in out:
        assert r[2:6] == ["127.0.0.1", str(a.local[1]), "127.0.0.1", str(b.local[1])]
    for r in inn:
        assert r[2:6] == ["127.0.0.1", str(b.local[1]), "127.0.0.1", str(a.local[1])]
    assert all(r[6] == "1" and r[7] == "1" for r in rows), "IP and UDP checksums are good"
    assert [int(r[8]) for r in out] == [8 + len(d) for d in sent]
    # received: exactly the kernel stamps a's readers got, moved by one offset
    shifts = {epoch_ns(r[0]) - pkt.rx_ns for r, pkt in zip(inn, at_a)}
    assert len(shifts) == 1, "each received packet carries its reader's rx_ns"
    shift = shifts.pop()
    assert abs(shift - offset) < 5_000_000, "monotonic stamps shifted to the epoch"
    # sent: the departure, after the deadline; the kernel's TX stamp, before b's kernel
    # receive stamp, for every packet the channel counts as kernel-stamped; the others
    # (whose stamp came too late: a loaded machine) carry the send call's time and say so
    stamped = 0
    for r, at, got in zip(out, deadlines, at_b):
        departed = epoch_ns(r[0]) - shift
        assert at <= departed, (at, departed)
        if not r[10]:
            stamped += 1
            assert departed <= got.rx_ns + 10_000, (at, departed, got.rx_ns)
        else:
            assert r[10] == "time of the send call (no kernel TX stamp)"
    assert stamped == a.stats()["tx_kernel_stamped"]
    assert not any(r[10] for r in inn), "received packets carry their kernel RX stamps"
    assert a.stats()["tap_tx_packets"] >= n and a.stats()["tap_rx_packets"] >= n
    stats = isb(path)
    assert stats[8] == 2 * n and stats[5] == 0, "ISB: delivered all, dropped none"


@needs_tshark
def test_rtp_channel_decodes_as_rtp(rtudp_pool, tmp_path):
    pa, pb = free_ports(2)
    rx = rtudp_pool.open_channel("rx", local=("127.0.0.1", pb), kind="rtp")
    tx = rtudp_pool.open_channel("tx", local=("127.0.0.1", pa), remote=rx.local, kind="rtp",
                                 direction=0, options={"ptime_ms": 5, "payload_type": 0})
    path = str(tmp_path / "rtp.pcapng")
    n = 8
    p = start_tap(rtudp_pool, "tx", path, "--count", str(n))
    tx.send_many([bytes([i]) * 40 for i in range(n)])
    finish(p)
    rows = tshark(path, "-d", f"udp.port=={pb},rtp",
                  fields=("rtp.version", "rtp.p_type", "rtp.seq", "rtp.ssrc", "rtp.payload"))
    assert len(rows) == n
    assert {r[0] for r in rows} == {"2"} and {r[1] for r in rows} == {"0"}
    seqs = [int(r[2]) for r in rows]
    assert seqs == [(seqs[0] + i) % 65536 for i in range(n)]
    assert len({r[3] for r in rows}) == 1
    assert [bytes.fromhex(r[4]) for r in rows] == [bytes([i]) * 40 for i in range(n)]
    tx.close()
    rx.close()


@needs_tshark
def test_killed_tap_and_several_taps(rtudp_pool, pair, tmp_path):
    a, b = pair
    first = start_tap(rtudp_pool, "a", str(tmp_path / "1.pcapng"))
    second = start_tap(rtudp_pool, "a", str(tmp_path / "2.pcapng"))
    first.kill()  # SIGKILL: its slot stays taken until someone finds it dead
    first.wait()
    first.stderr.close()
    for i in range(20):
        a.send(b"after kill %d" % i)
    assert [b.recv(timeout=5).data for _ in range(20)] == [b"after kill %d" % i for i in range(20)]
    third = start_tap(rtudp_pool, "a", str(tmp_path / "3.pcapng"), "--count", "10")
    assert taps_attached(rtudp_pool, "a") == 2, "the killed tap's slot was taken back"
    for i in range(10):
        b.send(b"to three %d" % i)
        time.sleep(0.001)
    assert [a.recv(timeout=5).data for _ in range(10)] == [b"to three %d" % i for i in range(10)]
    finish(third)
    second.send_signal(signal.SIGTERM)
    finish(second)
    three = tshark(str(tmp_path / "3.pcapng"))
    assert [bytes.fromhex(r[9]) for r in three] == [b"to three %d" % i for i in range(10)]
    two = tshark(str(tmp_path / "2.pcapng"))
    assert [bytes.fromhex(r[9]) for r in two] == (
        [b"after kill %d" % i for i in range(20)] + [b"to three %d" % i for i in range(10)])
    assert isb(str(tmp_path / "2.pcapng"))[8] == 30
    # no tap left: the worker stops mirroring
    assert taps_attached(rtudp_pool, "a") == 0
    before = a.stats()["tap_tx_packets"]
    for i in range(10):
        a.send(b"untapped")
    for _ in range(10):
        b.recv(timeout=5)
    assert a.stats()["tap_tx_packets"] == before


def test_worker_reaps_a_killed_tap(rtudp_pool, pair, tmp_path):
    a, b = pair
    p = start_tap(rtudp_pool, "a", str(tmp_path / "k.pcapng"))
    p.kill()
    p.wait()
    p.stderr.close()
    deadline = time.monotonic() + 10
    while taps_attached(rtudp_pool, "a") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert taps_attached(rtudp_pool, "a") == 0, "the worker's tick took the slot back"


def test_slow_tap_loses_counted_and_never_slows_the_channel(rtudp_pool):
    pa, pb = free_ports(2)
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", pa), remote=("127.0.0.1", pb),
                                capacity=64)
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", pb), remote=a.local, capacity=4096)
    try:
        with Tap("b", rtudp_pool.name) as tap:
            n = 3000  # far more than b's tap ring holds: the tap reads nothing meanwhile
            got = 0
            for i in range(n):
                while True:
                    try:
                        a.send(b"%06d" % i + b"x" * 500)
                        break
                    except BackPressureError:  # a's queue is short: let the worker catch up
                        time.sleep(0.001)
                if i % 200 == 199:
                    got += len(b.recv_many(1000, timeout=0.2))
            deadline = time.monotonic() + 10
            while got < n and time.monotonic() < deadline:
                got += len(b.recv_many(1000, timeout=0.5))
            assert got == n, "the channel delivered everything"
            pkts = tap.read(100000)
            assert pkts and tap.lost > 0 and len(pkts) + tap.lost == n
            assert [int(p.data[:6]) for p in pkts] == list(range(n - len(pkts), n))
            assert all(not p.outbound and p.kernel_stamp for p in pkts)
            assert b.stats()["tap_lost"] == tap.lost
    finally:
        b.close()
        a.close()


def test_no_tap_no_mirroring(rtudp_pool, pair):
    a, b = pair
    for i in range(20):
        a.send(b"x")
        b.recv(timeout=5)
    s = a.stats()
    assert s["tap_tx_packets"] == s["tap_rx_packets"] == s["tap_lost"] == 0


def test_tap_rings_take_memory_only_once_a_tap_attaches(rtudp_pool, pair):
    """/dev/shm holds a channel's tap rings (two thirds of a small channel's segment)
    only from the first tap on: a pool of thousands of channels nobody taps does not
    pay for them, and a tap that attaches finds them allocated (no SIGBUS)."""
    a, b = pair
    seg = ChannelSegment.open(channel_segment_name(rtudp_pool.name, a.name))
    try:
        size = seg.segment.size
        tap_from = int(ffi.cast("struct rtudp_segment_header *", seg.segment.base).ring_offset[2])
    finally:
        seg.close()
    path = shm_path(channel_segment_name(rtudp_pool.name, a.name))

    def allocated() -> int:
        return os.stat(path).st_blocks * 512
    page = os.sysconf("SC_PAGESIZE")
    assert allocated() <= tap_from + 2 * page < size
    with Tap(a.name, rtudp_pool.name) as tap:
        assert allocated() >= size
        a.send(b"tapped")
        assert b.recv(timeout=5).data == b"tapped"
        deadline = time.monotonic() + 10
        got: list[Any] = []
        while not got and time.monotonic() < deadline:
            got = [p for p in tap.read() if p.outbound]
            time.sleep(0.01)
        assert [p.data for p in got] == [b"tapped"]
    with pytest.raises(SegmentNotFoundError, match="nosuch"):
        reserve(channel_segment_name(rtudp_pool.name, "nosuch"), 0, page)


def test_bad_channel_named(rtudp_pool, tmp_path):
    out = subprocess.run(tap_cmd(rtudp_pool, "nosuch", str(tmp_path / "x.pcapng")),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no channel 'nosuch'" in out.stderr and rtudp_pool.name in out.stderr


@needs_tshark
def test_netflux_channels_both_directions(rtudp_pool, tmp_path):
    pa, pb = free_ports(2)
    opts = {"send_interval": 0.002, "send_size": 4, "recv_size": 4}
    a = rtudp_pool.open_channel("nfa", local=("127.0.0.1", pa), remote=("127.0.0.1", pb),
                                kind="netflux", options=opts)
    b = rtudp_pool.open_channel("nfb", local=("127.0.0.1", pb), remote=("127.0.0.1", pa),
                                kind="netflux", options=opts)
    try:
        path = str(tmp_path / "nf.pcapng")
        finish(start_tap(rtudp_pool, "nfa", path, "--count", "40"))
        rows = tshark(path)
        assert len(rows) == 40
        out = [bytes.fromhex(r[9]) for r in rows if int(r[1], 16) == OUT]
        inn = [bytes.fromhex(r[9]) for r in rows if int(r[1], 16) == IN]
        assert len(out) >= 10 and len(inn) >= 10
        # byte 0 is the sender's sequence number: consecutive in each direction
        for pkts in (out, inn):
            assert all(len(p) == 6 for p in pkts)
            assert [p[0] for p in pkts] == [(pkts[0][0] + i) % 256 for i in range(len(pkts))]
        assert all(r[6] == "1" and r[7] == "1" for r in rows)
    finally:
        b.close()
        a.close()


@needs_tshark
def test_ipv6_and_datagrams_cut_on_receive(rtudp_pool, tmp_path):
    sock = __import__("socket")
    try:
        probe = sock.socket(sock.AF_INET6, sock.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    a = rtudp_pool.open_channel("v6a", local=("::1", 0), max_datagram=100)
    peer = sock.socket(sock.AF_INET6, sock.SOCK_DGRAM)
    try:
        peer.bind(("::1", 0))
        path = str(tmp_path / "v6.pcapng")
        p = start_tap(rtudp_pool, "v6a", path, "--count", "2")
        small, big = os.urandom(50), os.urandom(300)
        peer.sendto(small, a.local[:2])
        peer.sendto(big, a.local[:2])
        assert a.recv(timeout=5).data == small
        assert a.recv(timeout=5).data == big[:100]
        finish(p)
        rows = tshark(path, fields=("ipv6.src", "ipv6.dst", "udp.srcport", "udp.dstport",
                                    "frame.len", "frame.cap_len", "udp.length",
                                    "udp.checksum.status"))
        port = str(peer.getsockname()[1])
        assert [r[:4] for r in rows] == [["::1", "::1", port, str(a.local[1])]] * 2
        assert rows[0][4:8] == ["98", "98", "58", "1"]
        # the channel kept 100 bytes of 300: the file says both
        assert rows[1][4:7] == [str(48 + 300), str(48 + 100), "308"]
    finally:
        peer.close()
        a.close()


@needs_tshark
def test_stdout_streams_to_a_live_reader(rtudp_pool, pair):
    a, b = pair
    # as `rtudp tap a -w - | wireshark -k -i -`: tshark reads the pipe live and stops
    # after 5 packets; the tap then finds the pipe closed and ends
    tap = subprocess.Popen(tap_cmd(rtudp_pool, "a", "-"), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    reader = subprocess.Popen([TSHARK, "-i", "-", "-c", "5", "-T", "fields", "-e", "udp.payload"],
                              stdin=tap.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tap.stdout.close()
    try:
        deadline = time.monotonic() + 30
        while tap.pid not in tap_pids(rtudp_pool, "a"):
            assert time.monotonic() < deadline and tap.poll() is None, "the tap never attached"
            time.sleep(0.01)
        i = 0
        while reader.poll() is None and time.monotonic() < deadline:
            a.send(b"live %d" % i)
            b.recv(timeout=5)
            i += 1
            time.sleep(0.01)
        out, err = reader.communicate(timeout=30)
        assert reader.returncode == 0, err.decode()
        got = [bytes.fromhex(x) for x in out.decode().split()]
        assert got == [b"live %d" % k for k in range(5)]
        # the tap notices the closed pipe when it next writes
        while tap.poll() is None and time.monotonic() < deadline:
            a.send(b"more")
            b.recv(timeout=5)
            time.sleep(0.02)
        finish(tap)
        assert taps_attached(rtudp_pool, "a") == 0
    finally:
        for proc in (tap, reader):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@needs_tshark
def test_batches_sent_as_one_gso_send_are_each_captured(rtudp_pool, pair, tmp_path):
    a, b = pair
    path = str(tmp_path / "gso.pcapng")
    p = start_tap(rtudp_pool, "a", path, "--count", "40")
    batch = [b"%04d" % i + bytes([i]) * 60 for i in range(40)]  # same size: GSO runs
    a.send_many(batch)
    assert [b.recv(timeout=5).data for _ in range(40)] == batch
    finish(p)
    rows = tshark(path)
    assert [bytes.fromhex(r[9]) for r in rows] == batch
    assert all(int(r[1], 16) == OUT and r[7] == "1" for r in rows)


@needs_tshark
def test_tap_goes_on_across_a_worker_restart(rtudp_pool, pair, tmp_path):
    a, b = pair
    path = str(tmp_path / "restart.pcapng")
    p = start_tap(rtudp_pool, "a", path, "--count", "20")
    for i in range(10):
        a.send(b"before %d" % i)
        assert b.recv(timeout=5).data == b"before %d" % i
    old = [w for w in rtudp_pool.workers() if w["cpu"] == rtudp_pool.cpus[0]][0]
    os.kill(old["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = [w for w in rtudp_pool.workers() if w["cpu"] == rtudp_pool.cpus[0]][0]
        if now["pid"] != old["pid"] and now["state"] == "running":
            break
        time.sleep(0.02)
    for i in range(10):
        a.send(b"after %d" % i)
        assert b.recv(timeout=5).data == b"after %d" % i
    finish(p)
    rows = tshark(path)
    assert [bytes.fromhex(r[9]) for r in rows] == (
        [b"before %d" % i for i in range(10)] + [b"after %d" % i for i in range(10)])


@needs_tshark
def test_an_impaired_channel_shows_what_went_on_the_wire(rtudp_pool, tmp_path):
    import rtudp

    pa, pb = free_ports(2)
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", pb), remote=("127.0.0.1", pa))
    a = rtudp_pool.open_channel("a", local=("127.0.0.1", pa), remote=("127.0.0.1", pb),
                                impairment=rtudp.Impairment(loss=0.3, duplicate=0.2, seed=7))
    try:
        path = str(tmp_path / "imp.pcapng")
        p = start_tap(rtudp_pool, "a", path, "--seconds", "3")
        for i in range(100):
            a.send(b"imp %d" % i)
            time.sleep(0.001)
        got = []
        while True:
            try:
                got.append(b.recv(timeout=0.5).data)
            except TimeoutError:
                break
        finish(p)
        assert 30 < len(got) < 120 and len(set(got)) < len(got), "some lost, some doubled"
        rows = tshark(path)
        assert [bytes.fromhex(r[9]) for r in rows if int(r[1], 16) == OUT] == got
    finally:
        a.close()
        b.close()
