"""A handshake flood on an rtudp UDT listener: forged connection requests from many
source ports with random socket ids, forged and replayed SYN cookies, handshakes with
fields out of range.  The listener keeps no state for any of them (no socket is
claimed, the socket gauge does not move), refuses every forged cookie (counted in
``udt_hs_refused``), and real clients, rtudp's and libudt's, still connect and
transfer byte-exact during the flood."""
from __future__ import annotations

import random
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

import rtudp
import rtudp.udt.udt4 as udt4
from udt_helpers import LibudtPeer, build_libudt_peer, pattern, recv_all, send_all
from udt_helpers import udt  # noqa: F401  (the fixture)

FLOOD_SOCKETS = 64


def handshake(conn_type: int, sock_id: int, isn: int, cookie: int = 0, mss: int = 1500,
              sock_type: int = 1, dst: int = 0) -> bytes:
    """A UDT 4 handshake packet (header + 48-byte body, peer IP 127.0.0.1)."""
    return (struct.pack(">IIII", 0x80000000, 0, 0, dst) +
            struct.pack(">IIIIIiII", 4, sock_type, isn, mss, 8192, conn_type, sock_id, cookie) +
            bytes([127, 0, 0, 1]) + bytes(12))


def cookie_of(reply: bytes) -> int:
    """The SYN cookie in a listener's reply."""
    return struct.unpack_from(">I", reply, 16 + 28)[0]


class Flood:
    """Forged handshakes to ``port`` from FLOOD_SOCKETS source ports, in a thread,
    until stopped: (1) requests with random ids (each earns a stateless cookie reply),
    (2) -1 requests with random cookies, (3) -1 requests replaying a real cookie from
    another port, (4) handshakes with MSS 0 or socket id 0."""

    def __init__(self, port: int, replay_cookie: int) -> None:
        self.port, self.replay_cookie = port, replay_cookie
        self.socks = []
        for _ in range(FLOOD_SOCKETS):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.socks.append(s)
        self.sent = [0, 0, 0, 0]
        self.cookie_replies = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="udt-flood")

    def _run(self) -> None:
        rng = random.Random(20)
        to = ("127.0.0.1", self.port)
        while not self.stop.is_set():
            for _ in range(200):
                kind = rng.randrange(4)
                sid, isn = rng.randrange(1, 1 << 31), rng.randrange(1 << 31)
                if kind == 0:
                    pkt = handshake(1, sid, isn)
                elif kind == 1:
                    pkt = handshake(-1, sid, isn, cookie=rng.randrange(1 << 32))
                elif kind == 2:
                    pkt = handshake(-1, sid, isn, cookie=self.replay_cookie)
                else:
                    pkt = handshake(-1, 0 if rng.random() < 0.5 else sid, isn,
                                    cookie=self.replay_cookie, mss=rng.choice([0, 70, 1 << 20]))
                try:
                    rng.choice(self.socks).sendto(pkt, to)
                    self.sent[kind] += 1
                except BlockingIOError:
                    pass
            for s in self.socks:   # the cookie replies: drained, counted
                while True:
                    try:
                        s.recv(2048)
                        self.cookie_replies += 1
                    except BlockingIOError:
                        break
            time.sleep(0.001)

    def close(self) -> None:
        """Stop the thread and close the sockets."""
        self.stop.set()
        self.thread.join(10)
        for s in self.socks:
            s.close()


@pytest.mark.rtudp(rt_priority=0)
def test_handshake_flood_keeps_no_state_and_real_clients_connect(
        udt, rtudp_pool: rtudp.Pool, tmp_path: Path) -> None:
    exe = build_libudt_peer(tmp_path)
    srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    udt4.bind(srv, "127.0.0.1", 0)
    udt4.listen(srv, 8)
    udt4.setsockopt(srv, udt4.UDT_RCVTIMEO, 20000)
    port = udt4.getsockname(srv)[1]
    ch = srv._sock.ch

    def claimed() -> int:
        return sum(1 for i in range(ch.max_socks) if int(ch.sock(i).cli.claim) != 0)

    # a real cookie, earned by a real request from port A
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    a.settimeout(5)
    a.sendto(handshake(1, 0x1234, 777), ("127.0.0.1", port))
    cookie = cookie_of(a.recv(2048))
    base_claimed, base_socks = claimed(), ch.stats()["udt_sockets"]
    flood = Flood(port, cookie)
    peer = None
    t0 = time.monotonic()
    try:
        flood.thread.start()
        time.sleep(0.5)
        # under the flood: no per-request state (sampled while it runs)
        samples = []
        for _ in range(10):
            samples.append((claimed(), ch.stats()["udt_sockets"]))
            time.sleep(0.05)
        assert all(s == (base_claimed, base_socks) for s in samples), samples
        st = ch.stats()
        assert st["udt_accepted"] == 0 and st["udt_hs_refused"] > 0
        # a real rtudp client connects and sends during the flood
        c = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
        udt4.connect(c, "127.0.0.1", port)
        conn, _ = udt4.accept(srv)
        data = pattern(1_000_000, seed=21)
        sender = threading.Thread(target=send_all, args=(udt4, c, data))
        sender.start()
        got = bytearray()
        while len(got) < len(data):
            got += udt4.recv(conn, 1 << 20)
        sender.join(30)
        assert bytes(got) == data
        # and a real libudt client
        src = tmp_path / "send"
        src.write_bytes(pattern(2_000_000, seed=22))
        peer = LibudtPeer(exe, "client", "stream", str(port), str(src), "0")
        conn2, _ = udt4.accept(srv)
        result: list[object] = []
        recv_all(udt4, conn2, True, result)
        assert peer.line(timeout=60) == "sent 2000000"
        assert result[0] == src.read_bytes() and result[1] == udt4.ECONNLOST
        for s in (c, conn, conn2):
            udt4.close(s)
    finally:
        flood.close()
        seconds = time.monotonic() - t0
        if peer is not None:
            peer.stop()
    # the replayed cookie is port A's: from A (and only from A) it is accepted
    st = ch.stats()
    assert st["udt_accepted"] == 2
    a.sendto(handshake(-1, 0x1234, 777, cookie=cookie), ("127.0.0.1", port))
    reply = a.recv(2048)
    assert struct.unpack_from(">i", reply, 16 + 20)[0] == -1   # the connection response
    forged_conn, addr = udt4.accept(srv)
    assert addr[1] == a.getsockname()[1]
    udt4.close(forged_conn)
    a.close()
    st = ch.stats()
    hs_sent = sum(flood.sent)
    assert st["udt_accepted"] == 3
    assert st["udt_handshakes"] + st["udt_rx_dropped"] >= hs_sent
    refused_min = (flood.sent[1] + flood.sent[2] + flood.sent[3]) - st["udt_rx_dropped"]
    assert st["udt_hs_refused"] >= refused_min
    # only requests earn a reply (the cookie): forged -1s get nothing to amplify
    assert 0 < flood.cookie_replies <= flood.sent[0]
    assert all(w["restarts"] == 0 for w in rtudp_pool.workers())
    assert udt4.getsockstate(srv) == udt4.LISTENING
    udt4.close(srv)
    print(f"\nflood: {hs_sent} forged handshakes in {seconds:.1f} s ({flood.sent}), "
          f"{flood.cookie_replies} cookie replies, {st['udt_hs_refused']} refused, "
          f"{st['udt_rx_dropped']} dropped between threads; 2 real clients connected")
