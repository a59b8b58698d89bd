"""udt channels under the worker's impairment and under `rtudp tap`: UDT's own
retransmission repairs what the impairment loses, reorders and duplicates (stream
bytes arrive exact), the counters say so; the tap records handshake and data both
ways, and tshark decodes them as UDT."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

import pytest

import rtudp
import rtudp.udt.udt4 as udt4
from fake_worker import real_worker_built, worker_argv
from rtudp.shmring._native import lib
from rtudp.shmring.channel import ChannelSegment
from udt_helpers import pair, pattern, send_all

STREAM = socket.SOCK_STREAM
SIZE = 3_000_000


@pytest.fixture
def impaired_udt(request: pytest.FixtureRequest, rtudp_pool: rtudp.Pool) -> Iterator[Any]:
    """udt4 started on the test's pool with the impairment of the test's parameter."""
    udt4.startup(rtudp_pool, impairment=request.param)
    try:
        yield udt4
    finally:
        udt4.cleanup()


def recv_exactly(sock: Any, n: int, into: list[bytes]) -> None:
    """Receive ``n`` stream bytes into ``into`` (a thread's target)."""
    got = bytearray()
    while len(got) < n:
        got += udt4.recv(sock, min(1 << 20, n - len(got)))
    into.append(bytes(got))


def send_and_receive(c: Any, conn: Any, data: bytes) -> bytes:
    """``data`` sent on ``c``, what ``conn`` received of it (both stay open)."""
    got: list[bytes] = []
    t = threading.Thread(target=recv_exactly, args=(conn, len(data), got))
    t.start()
    send_all(udt4, c, data)
    t.join(120)
    assert not t.is_alive(), "the receiver did not get all of it in 120 s"
    return got[0]


LOSS = rtudp.Impairment(loss=0.02, seed=21)
DUPLICATE = rtudp.Impairment(duplicate=0.03, loss=0.01, seed=5)


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("impaired_udt", [LOSS, DUPLICATE], ids=["loss", "duplicate"],
                         indirect=True)
def test_stream_byte_exact_through_impairment(impaired_udt: Any) -> None:
    imp = udt4._s(udt4.socket(socket.AF_INET, STREAM, 0)).ports.impairment
    srv, c, conn = pair()
    data = pattern(SIZE, seed=21)
    assert send_and_receive(c, conn, data) == data
    sender, receiver = udt4.perfmon(c), udt4.perfmon(conn)
    client_ch, server_ch = udt4._s(c).ch, udt4._s(conn).ch
    for ch in (client_ch, server_ch):  # both channels (ACKs and NAKs are impaired too)
        applied = ch.impairment
        assert applied is not None and applied.seed == imp.seed
        assert applied.loss == pytest.approx(imp.loss, abs=1e-6)
    cs, ss = client_ch.stats(), server_ch.stats()
    print({k: (cs[k], ss[k]) for k in cs if k.startswith(("imp_", "udt_"))})
    print(sender, receiver)
    # the data left through the client's channel: about `loss` of it was dropped there
    assert cs["imp_tx_lost"] > imp.loss / 2 * cs["udt_data_sent"]
    assert cs["udt_retransmitted"] > 0 and ss["udt_naks_sent"] > 0
    assert sender.pktRetransTotal > 0 and receiver.pktRcvLossTotal > 0
    if imp.duplicate:
        assert cs["imp_tx_duplicated"] > imp.duplicate / 2 * cs["udt_data_sent"]
        # the receiver threw the second copies away
        assert ss["udt_duplicates"] >= cs["imp_tx_duplicated"] // 2
    # the stream still ends as UDT's does: the peer's close is seen after the data
    udt4.close(c)
    with pytest.raises(udt4.UDTException) as e:
        while True:
            assert udt4.recv(conn, 1 << 16) == b""
    assert e.value.code == udt4.ECONNLOST
    for s in (conn, srv):
        udt4.close(s)


HELD = rtudp.Impairment(delay_ns=30_000_000, jitter_ns=5_000_000, reorder=0.05,
                       reorder_ns=3_000_000, seed=30)


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("impaired_udt", [HELD], ids=["delay-jitter-reorder"], indirect=True)
def test_stream_byte_exact_through_held_impairment(impaired_udt: Any) -> None:
    """UDT's packets go through the worker's hold (its own sends, rtudp_tx_send_to):
    each way delayed 30 ms + up to 5 ms jitter, 5 % held back a further 3 ms; the stream
    arrives exact, and UDT's RTT shows both ways' delay."""
    srv, c, conn = pair()
    data = pattern(400_000, seed=30)
    assert send_and_receive(c, conn, data) == data
    sender = udt4.perfmon(c)
    cs, ss = udt4._s(c).ch.stats(), udt4._s(conn).ch.stats()
    print({k: (cs[k], ss[k]) for k in cs if k.startswith(("imp_", "udt_"))})
    print(sender)
    for st in (cs, ss):  # data one way, ACKs the other: both held
        assert st["imp_tx_delayed"] > 0 and st["imp_tx_hold_dropped"] == 0
    assert cs["imp_tx_delayed"] >= cs["udt_data_sent"]
    assert cs["imp_tx_reordered"] > 0
    # 30 ms + jitter each way: UDT's smoothed RTT is at least the two delays
    assert sender.msRTT >= 60, sender.msRTT
    for s in (c, conn, srv):
        udt4.close(s)


TSHARK = shutil.which("tshark")
TAP_SIZE = 200_000


def udt_rows(path: str, port: int) -> list[list[str]]:
    """tshark's UDT fields of every packet in ``path``, decoded with ``-d
    udp.port==port,udt``: (direction, src port, control?, type, seqno, hs type,
    payload length)."""
    fields = ("frame.packet_flags_direction", "udp.srcport", "udt.iscontrol", "udt.type",
              "udt.seqno", "udt.hs.type", "udp.length", "data.data")
    cmd = [TSHARK, "-r", path, "-d", f"udp.port=={port},udt", "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines() if line]
    for r in rows:  # tshark prints flags and types in hex
        r[0], r[3] = (str(int(r[0], 0) & 3), str(int(r[3], 0)) if r[3] else "")
    return rows


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (.ci/run installs "
                    "Debian's tshark package)")
@pytest.mark.skipif(not real_worker_built(), reason="taps need the native rtudp-worker (not "
                    "built: pip install -e . builds it)")
@pytest.mark.rtudp(worker=worker_argv(), rt_priority=0)
def test_tap_on_a_udt_channel_decodes_as_udt(rtudp_pool: rtudp.Pool, tmp_path: Any) -> None:
    """`rtudp tap` on a listener's channel records the handshake and the data both
    ways; tshark's UDT dissector reads them."""
    udt4.startup(rtudp_pool)
    try:
        srv = udt4.socket(socket.AF_INET, STREAM, 0)
        udt4.bind(srv, "127.0.0.1", 0)
        udt4.listen(srv, 4)
        port = udt4.getsockname(srv)[1]
        name = udt4._s(srv).ch.name
        path = str(tmp_path / "udt.pcapng")
        tap = subprocess.Popen([sys.executable, "-m", "rtudp.tools.cli", "tap", name,
                                "--pool", rtudp_pool.name, "-w", path],
                               stderr=subprocess.PIPE)
        try:
            wait_attached(rtudp_pool, name, tap)
            c = udt4.socket(socket.AF_INET, STREAM, 0)
            udt4.connect(c, "127.0.0.1", port)
            conn, _ = udt4.accept(srv)
            up, down = pattern(TAP_SIZE, 1), pattern(TAP_SIZE, 2)
            assert send_and_receive(c, conn, up) == up
            assert send_and_receive(conn, c, down) == down
            for s in (c, conn, srv):
                udt4.close(s)
            time.sleep(0.5)  # the closing handshake's packets reach the tap
        finally:
            tap.send_signal(signal.SIGINT)
            _, err = tap.communicate(timeout=30)
        assert tap.returncode == 0, err.decode()
    finally:
        udt4.cleanup()
    rows = udt_rows(path, port)
    out = [r for r in rows if r[0] == "2"]  # pcapng EPB direction: 2 outbound, 1 inbound
    into = [r for r in rows if r[0] == "1"]
    assert all(r[1] == str(port) for r in out) and all(r[1] != str(port) for r in into)
    # the handshake: the client's request (and its cookie-carrying repeat) in, the answers out
    hs_in = [r for r in into if r[2] == "1" and r[3] == "0"]
    hs_out = [r for r in out if r[2] == "1" and r[3] == "0"]
    assert hs_in and hs_out, rows[:6]
    # data both ways, every byte of it: UDT's payloads in order of their sequence numbers
    for rows_of, sent in ((into, up), (out, down)):
        data = {int(r[4]): bytes.fromhex(r[7]) for r in rows_of if r[2] == "0"}
        assert b"".join(data[k] for k in sorted(data)) == sent
    # the other way, the receivers' ACKs (control type 2)
    assert any(r[2] == "1" and r[3] == "2" for r in out)
    assert any(r[2] == "1" and r[3] == "2" for r in into)


def wait_attached(pool: rtudp.Pool, name: str, tap: subprocess.Popen) -> None:
    """Wait until ``tap`` (an `rtudp tap` process) is attached to channel ``name``."""
    deadline = time.monotonic() + 30
    while True:
        seg = ChannelSegment.open(f"{pool.name}.{name}")
        try:
            pids = [int(lib.rtudp_tap_pid(seg.block, i)) for i in range(lib.RTUDP_TAP_SLOTS)]
        finally:
            seg.close()
        if tap.pid in pids:
            return
        if tap.poll() is not None:
            raise AssertionError(f"rtudp tap exited {tap.returncode}: {tap.stderr.read().decode()}")
        assert time.monotonic() < deadline, "the tap never attached"
        time.sleep(0.01)
