"""A udt channel's connections, each as a row (issue 20: "rtstat and Prometheus show
each connection: state, RTT, send rate, window, loss, retransmissions"): in the
channel's stats(), in rtstat (--json, the text table, the channel's detail) and in
``rtudp metrics``; and a scribbled area gives odd rows, never a crash."""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import threading
import time
from typing import Any

import pytest

import rtudp.udt.udt4 as udt4
from rtudp.shmring._native import ffi, lib
from rtudp.shmring.kinds import get
from rtstat_helpers import BIN, RTSTAT, Tmux, table
from udt_helpers import Relay, pattern, send_all
from udt_helpers import udt  # noqa: F401  (the fixture)

ROWS = get("udt").layout.rows


def _pair_through(relay_loss: float) -> tuple[Any, Any, Any, Relay]:
    """A listener, a client connected through a lossy relay, the accepted socket."""
    srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    udt4.bind(srv, "127.0.0.1", 0)
    udt4.listen(srv, 4)
    relay = Relay(("127.0.0.1", udt4.getsockname(srv)[1]), loss=relay_loss, seed=3)
    c = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    udt4.connect(c, "127.0.0.1", relay.port)
    conn, _ = udt4.accept(srv)
    return srv, c, conn, relay


def _transfer(c: Any, conn: Any, size: int) -> None:
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(_recv_n(conn, size)))
    t.start()
    send_all(udt4, c, pattern(size, 5))
    t.join(60)
    assert got == [pattern(size, 5)]


def _recv_n(sock: Any, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        out += udt4.recv(sock, n - len(out))
    return bytes(out)


def _row(rows: list[dict[str, Any]], sock_id: int) -> dict[str, Any]:
    found = [r for r in rows if r["socket"] == sock_id]
    assert len(found) == 1, (sock_id, rows)
    return found[0]


@pytest.mark.rtudp(rt_priority=0)
def test_connections_in_stats_rtstat_and_metrics(udt, rtudp_pool, tmp_path) -> None:
    srv, c, conn, relay = _pair_through(0.02)
    try:
        _transfer(c, conn, 2_000_000)
        cs, ss = udt4._s(c), udt4._s(conn)
        cid, sid = int(cs.ch.sock(cs.i).wrk.sock_id), int(ss.ch.sock(ss.i).wrk.sock_id)
        client_rows = cs.ch.stats()["connections"]
        server_rows = ss.ch.stats()["connections"]
        # the sender: connected to the relay, RTT measured, the pacing and the window
        # in range, the relay's losses seen as NAKed and retransmitted packets
        r = _row(client_rows, cid)
        assert r["state"] == "connected" and r["type"] == "stream"
        assert r["peer"] == f"127.0.0.1:{relay.port}"
        assert r["peer_socket"] == sid
        assert 0 < r["rtt_ns"] < 2_000_000_000 and r["rtt_var_ns"] >= 0
        assert r["send_period_ns"] > 0 and r["send_rate"] == 10**9 // r["send_period_ns"]
        assert 2 <= r["cwnd"] <= 1_000_000 and r["flow_window"] >= 2
        assert r["sent"] >= 2_000_000 // 1456 and r["lost"] > 0 and r["retransmitted"] > 0
        assert r["bytes_sent"] >= 2_000_000
        # the receiver: what it got, the gaps it reported; the listener has a row too
        r = _row(server_rows, sid)
        assert r["state"] == "connected" and r["received"] >= 2_000_000 // 1456
        assert r["rcv_lost"] > 0 and r["bytes_received"] >= 2_000_000
        assert r["peer"].startswith("127.0.0.1:")
        lsn = [x for x in server_rows if x["state"] == "listening"]
        assert len(lsn) == 1 and lsn[0]["peer"] == "" and lsn[0]["rtt_ns"] == 0
        _check_rtstat(rtudp_pool.name, cs.ch.name, ss.ch.name, cid, sid)
        _check_metrics(rtudp_pool.name, tmp_path, cs.ch.name, cid, relay.port)
    finally:
        for s in (c, conn, srv):
            udt4.close(s)
        relay.close()


def _check_rtstat(pool: str, client_ch: str, server_ch: str, cid: int, sid: int) -> None:
    env = {**os.environ, "COLUMNS": "250"}
    out = subprocess.run([RTSTAT, "--pool", pool, "--once", "--json", "--interval", "0.1"],
                         capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    (p,) = json.loads(out.stdout)["pools"]
    chans = {c["name"]: c for c in p["channels"]}
    conns = chans[client_ch]["totals"]["connections"]
    assert _row(conns, cid)["state"] == "connected"
    text = subprocess.run([RTSTAT, "--pool", pool, "--once", "--interval", "0.1"],
                          capture_output=True, text=True, timeout=30, env=env)
    assert text.returncode == 0, text.stderr
    t = table(text.stdout, "udt socket hex")
    row = t.rows[f"{cid:08x}"]
    assert row["channel"] == client_ch and row["state"] == "connected"
    assert row["peer"].startswith("127.0.0.1:")
    assert row["type"] == "stream"
    for col in ("rtt s", "cwnd pkt", "lost pkt", "retransmitted pkt", "send rate pkt/s"):
        assert col in t.names, (col, t.names)
    assert t.rows[f"{sid:08x}"]["channel"] == server_ch
    # live, in a terminal (the rtstat tests' tmux), the same table
    t = Tmux("udtconn", f"{RTSTAT} --pool {pool} --interval 0.3", 250, 60)
    try:
        screen = t.wait_for(lambda sc: "udt connections" in sc and f"{cid:08x}" in sc)
        live = table(screen, "udt socket hex")
        assert live.cell(f"{cid:08x}", "state") == "connected"
        assert live.cell(f"{sid:08x}", "channel") == server_ch
        t.keys("q")
    finally:
        t.close()
    # the channel's detail lists its connections
    det = subprocess.run([RTSTAT, "--pool", pool, "--once", "--interval", "0.1", "--channel",
                          client_ch], capture_output=True, text=True, timeout=30, env=env)
    assert det.returncode == 0, det.stderr
    assert "connections (1)" in det.stdout
    assert table(det.stdout, "udt socket hex").rows[f"{cid:08x}"]["state"] == "connected"


def _check_metrics(pool: str, tmp_path: Any, client_ch: str, cid: int, relay_port: int) -> None:
    path = tmp_path / "rtudp.prom"
    out = subprocess.run([os.path.join(BIN, "rtudp"), "metrics", "--pool", pool, "--textfile",
                          str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = path.read_text()
    want = (f'pool="{pool}"', f'channel="{client_ch}"', f'socket="{cid:08x}"',
            f'peer="127.0.0.1:{relay_port}"', 'type="stream"')
    lines = {ln.split("{")[0]: ln for ln in text.splitlines()
             if all(w in ln for w in want)}
    for name in ("rtudp_udt_connections_rtt_seconds", "rtudp_udt_connections_cwnd",
                 "rtudp_udt_connections_send_rate", "rtudp_udt_connections_lost_total",
                 "rtudp_udt_connections_retransmitted_total"):
        assert name in lines, (name, sorted(lines))
    rtt = float(lines["rtudp_udt_connections_rtt_seconds"].rsplit(" ", 1)[1])
    assert 0 < rtt < 2
    assert float(lines["rtudp_udt_connections_lost_total"].rsplit(" ", 1)[1]) > 0
    # and `rtudp stats CHANNEL` lists them under the counters
    out = subprocess.run([os.path.join(BIN, "rtudp"), "stats", client_ch, "--pool", pool],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "connections: 1" in out.stdout and f"socket={cid}  peer=127.0.0.1:" in out.stdout
    state = [ln for ln in text.splitlines() if ln.startswith("rtudp_udt_connections_state{")
             and f'socket="{cid:08x}"' in ln and 'state="connected"' in ln]
    assert len(state) == 1 and state[0].endswith(" 1.0"), state


def _rows_of(sock: Any) -> tuple[Any, list[dict[str, Any]]]:
    s = udt4._s(sock)
    return s, s.ch.stats()["connections"]


def _wait_row(sock: Any, sock_id: int, cond: Any, timeout: float) -> dict[str, Any]:
    """The socket's row once ``cond(row)`` holds (polled); fails naming the last one."""
    deadline = time.monotonic() + timeout
    while True:
        row = _row(_rows_of(sock)[1], sock_id)
        if cond(row):
            return row
        assert time.monotonic() < deadline, f"not within {timeout} s: {row}"
        time.sleep(0.05)


@pytest.mark.rtudp(rt_priority=0)
def test_a_stalled_sender_is_shown_with_what_it_waits_for(udt, rtudp_pool, tmp_path) -> None:
    """Issue 55: a connection whose sending has made no progress for a second shows as
    stalled, with the reason (here the peer's receive buffer: its reader does not
    read), in stats(), rtstat and Prometheus; once the reader reads, it moves again."""
    srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    udt4.bind(srv, "127.0.0.1", 0)
    udt4.listen(srv, 4)
    c = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    udt4.connect(c, "127.0.0.1", udt4.getsockname(srv)[1])
    conn, _ = udt4.accept(srv)
    data = pattern(4_000_000, 3)  # more than both buffers (1024 packets each) hold
    sender = threading.Thread(target=send_all, args=(udt4, c, data), daemon=True)
    try:
        cs, rows = _rows_of(c)
        cid = int(cs.ch.sock(cs.i).wrk.sock_id)
        assert _row(rows, cid)["stalled"] == "no" and _row(rows, cid)["stalled_ms"] == 0
        sender.start()
        row = _wait_row(c, cid, lambda r: r["stalled"] == "yes", 15.0)
        assert row["stalled_ms"] >= 1000 and row["waits_on"] == "rcv_buffer", row
        assert row["unacked"] > 0 and row["flow_window"] <= 2
        env = {**os.environ, "COLUMNS": "250"}
        out = subprocess.run([RTSTAT, "--pool", rtudp_pool.name, "--once", "--json",
                              "--interval", "0.1"], capture_output=True, text=True, timeout=30,
                             env=env)
        assert out.returncode == 0, out.stderr
        (p,) = json.loads(out.stdout)["pools"]
        shown = _row({c_["name"]: c_ for c_ in p["channels"]}[cs.ch.name]["totals"]["connections"],
                     cid)
        assert shown["stalled"] == "yes" and shown["waits_on"] == "rcv_buffer"
        assert shown["stalled_ms"] >= 1000
        path = tmp_path / "rtudp.prom"
        out = subprocess.run([os.path.join(BIN, "rtudp"), "metrics", "--pool", rtudp_pool.name,
                              "--textfile", str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        mine = [ln for ln in path.read_text().splitlines() if f'socket="{cid:08x}"' in ln]
        stalled = [ln for ln in mine if ln.startswith("rtudp_udt_connections_stalled{")
                   and 'state="yes"' in ln]
        waits = [ln for ln in mine if ln.startswith("rtudp_udt_connections_waits_on{")
                 and 'state="rcv_buffer"' in ln]
        ms = [ln for ln in mine if ln.startswith("rtudp_udt_connections_stalled_ms")]
        assert len(stalled) == 1 and stalled[0].endswith(" 1.0"), mine
        assert len(waits) == 1 and waits[0].endswith(" 1.0"), mine
        assert len(ms) == 1 and float(ms[0].rsplit(" ", 1)[1]) >= 1000, mine
        # the reader reads: the sender moves, and once all is through waits for nothing
        got = _recv_n(conn, len(data))
        sender.join(30)
        assert got == data
        row = _wait_row(c, cid, lambda r: r["unacked"] == 0, 10.0)
        assert row["stalled"] == "no" and row["stalled_ms"] == 0 and row["waits_on"] == "nothing"
    finally:
        for s_ in (c, conn, srv):
            udt4.close(s_)
        sender.join(10)


def test_scribbled_area_gives_rows_never_a_crash() -> None:
    """Rows from an area full of garbage: the C copy bounds-checks the layout and
    brings every value in range; Python reads what it gives without failing."""
    cfg = ffi.new("struct rtudp_udt_config *")
    assert lib.rtudp_udt_layout(cfg, 4, 16, 1500) == lib.RTUDP_OK
    size = int(lib.rtudp_udt_area_bytes(cfg))
    buf = ffi.new("uint8_t[]", size)
    area = ffi.cast("struct rtudp_udt_area *", buf)
    rnd = random.Random(9)
    layout = get("udt").layout
    seen = 0
    for round_ in range(200):
        raw = bytearray(rnd.randbytes(size))
        ffi.memmove(buf, bytes(raw), size)
        area.config = cfg[0]
        area.config.magic = lib.RTUDP_UDT_MAGIC
        if round_ % 4 == 0:  # a scribbled layout too: no rows, no crash
            area.config.sock_stride = rnd.getrandbits(64)
            area.config.max_socks = rnd.getrandbits(32)
        for i in range(4):  # states a row shows, over garbage
            if round_ % 4:
                s = lib.rtudp_udt_sock_at(area, i)
                s.wrk.state = rnd.choice((3, 4, 5, 6, 7, 0, 9, 0xFFFFFFFF))
        rows = ROWS.read(buf, size)
        assert len(rows) <= 4
        seen += len(rows)
        for r in ROWS.stats(rows):
            assert r["state"] in ("listening", "connecting", "connected", "broken", "closing")
            assert isinstance(r["peer"], str) and len(r["peer"]) < 64
            assert r["send_rate"] <= 10**9 and r["cwnd"] <= 10**9
            assert r["unacked"] <= 16
        # and through the layout's check (which refuses a scribbled layout by name)
        try:
            layout.read_rows(buf, size, "test area")
        except Exception as exc:  # noqa: BLE001
            assert "udt" in str(exc), exc
    assert seen > 100  # garbage rows were read, not all refused
    # an area too small for even its header: no rows
    assert ROWS.read(buf, 8) == []
