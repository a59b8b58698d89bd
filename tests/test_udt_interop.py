"""rtudp.udt against a real UDT 4.11 peer (Debian's libudt; tools/bench/libudt_peer.cpp's
``peer`` mode, tools/bench/libudt_peer_scenario.h), rtudp as client and as server each time:

- streams of 1, 1456, 1457 and 200 000 000 bytes, both directions at once, checked by
  CRC-32 on both sides (neither side holds the 200 MB);
- messages of 1, 1456, 1457, 3000 and 1 MB both ways at once, in-order on and off,
  boundaries kept, the in-order bit seen on the wire; an oversized message refused by
  name and size, the connection going on;
- a message whose every packet is lost expires by its TTL: the sender sends a drop
  request, the receiver skips it, the later messages arrive (both ways);
- rendezvous with libudt in both start orders;
- STREAM against DGRAM refused with connection type 1002, both ways;
- close sends shutdown: the peer sees the end at once, the packet seen on the wire.

A relay of our own (udt_helpers.WatchRelay) sits in front of the server where the
wire is checked.  Skipped, with the reason printed, without libudt-dev or g++."""
from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import rtudp.udt.udt4 as udt4
from udt_helpers import (LibudtPeer, WatchRelay as Relay, build_libudt_peer, crc_of, ctrl_type, duplex,
                         handshake_conn_type, pattern, report)
from udt_helpers import udt  # noqa: F401  (the fixture)

STREAM, DGRAM = socket.SOCK_STREAM, socket.SOCK_DGRAM
MSG_SIZES = [1, 1456, 1457, 3000, 1 << 20]
IN_ORDER_BIT = 1 << 29


@pytest.fixture(scope="module")
def peer_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_libudt_peer(tmp_path_factory.mktemp("libudt"))


def _listener(kind: int) -> tuple[Any, int]:
    srv = udt4.socket(socket.AF_INET, kind, 0)
    udt4.bind(srv, "127.0.0.1", 0)
    udt4.listen(srv, 4)
    udt4.setsockopt(srv, udt4.UDT_RCVTIMEO, 30000)
    return srv, udt4.getsockname(srv)[1]


class Pair:
    """One connection between rtudp and a libudt peer: ``rtudp_role`` "client" (the
    peer listens) or "server" (rtudp listens, the peer connects), optionally through a
    Relay in front of the server (``watch`` as Relay's).  ``sock`` is rtudp's end."""

    def __init__(self, exe: Path, rtudp_role: str, kind: int, peer_args: list[str],
                 relay: bool = False, watch: Any = None) -> None:
        self.relay: Relay | None = None
        self.srv: Any = None
        self.sock: Any = None
        self.peer: LibudtPeer | None = None
        type_arg = "stream" if kind == STREAM else "dgram"
        try:
            if rtudp_role == "client":
                self.peer = LibudtPeer(exe, "peer", type_arg, "listen", *peer_args)
                port = int(self.peer.line().split()[1])
                if relay:
                    self.relay = Relay(("127.0.0.1", port), watch=watch)
                    port = self.relay.port
                self.sock = udt4.socket(socket.AF_INET, kind, 0)
                udt4.connect(self.sock, "127.0.0.1", port)
            else:
                self.srv, port = _listener(kind)
                if relay:
                    self.relay = Relay(("127.0.0.1", port), watch=watch)
                    port = self.relay.port
                self.peer = LibudtPeer(exe, "peer", type_arg, f"connect:{port}", *peer_args)
                self.sock, addr = udt4.accept(self.srv)
                assert addr[0] == "127.0.0.1"
            assert self.peer.line() == "connected"
            assert udt4.getsockstate(self.sock) == udt4.CONNECTED
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """rtudp's end (lingering) and the listener closed; the peer and relay stopped."""
        for s in (self.sock, self.srv):
            if s is not None:
                udt4.close(s)
        if self.peer is not None:
            self.peer.stop()
        if self.relay is not None:
            self.relay.close()


# ------------------------------------------------------------ streams


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("rtudp_role", ["client", "server"])
@pytest.mark.parametrize("size", [1, 1456, 1457, 200_000_000])
def test_stream_both_directions_at_once(udt, peer_exe: Path, rtudp_role: str, size: int) -> None:
    pair = Pair(peer_exe, rtudp_role, STREAM, [f"send={size}", f"expect={size}", "seed=5"])
    try:
        t0 = time.monotonic()
        sent, got = duplex(udt4, pair.sock, size, size, seed=size % 1000)
        dt = time.monotonic() - t0
        info = udt4.perfmon(pair.sock)
        udt4.close(pair.sock)
        said = report(pair.peer, timeout=300)
        assert pair.peer.wait() == 0
        assert sent[0] == size and got[0] == size
        assert said["recv"] == sent, "libudt received other bytes than rtudp sent"
        assert said["sent"] == got, "rtudp received other bytes than libudt sent"
        print(f"\nrtudp {rtudp_role} <-> libudt, {size} bytes each way at once: exact in "
              f"{dt:.2f} s ({2 * size * 8 / dt / 1e6:.0f} Mb/s both ways), "
              f"{info.pktRetransTotal} retransmitted")
    finally:
        pair.close()


# ------------------------------------------------------------ messages


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("rtudp_role", ["client", "server"])
@pytest.mark.parametrize("inorder", [True, False])
def test_messages_both_ways_keep_boundaries(udt, peer_exe: Path, rtudp_role: str,
                                            inorder: bool) -> None:
    msgs = [pattern(n, seed=i) for i, n in enumerate(MSG_SIZES * 2)]
    after = pattern(77, seed=99)   # sent after the refused oversized one
    flags: list[tuple[bool, int]] = []

    def watch(to_server: bool, data: bytes) -> bool:
        if ctrl_type(data) is None:
            flags.append((to_server, struct.unpack_from(">I", data, 4)[0] & IN_ORDER_BIT))
        return False

    peer_args = [f"msgs={','.join(str(len(m)) for m in msgs)}", f"inorder={int(inorder)}",
                 f"expect_msgs={len(msgs) + 1}", "seed=8"]
    pair = Pair(peer_exe, rtudp_role, DGRAM, peer_args, relay=True, watch=watch)
    try:
        got: list[bytes] = []
        failed: list[BaseException] = []

        def receive() -> None:
            try:
                for _ in msgs:
                    got.append(udt4.recvmsg(pair.sock, 2 << 20))
            except BaseException as exc:  # noqa: BLE001 - shown by the assertion below
                failed.append(exc)

        t = threading.Thread(target=receive)
        t.start()
        for m in msgs:
            assert udt4.sendmsg(pair.sock, m, len(m), -1, inorder) == len(m)
        too_big = 1456 * 5000   # more than the send buffer (buffer_packets 1024)
        with pytest.raises(udt4.UDTException) as e:
            udt4.sendmsg(pair.sock, bytes(too_big), too_big, -1, inorder)
        assert e.value.args[0] == udt4.ELARGEMSG and str(too_big) in e.value.args[1]
        assert udt4.sendmsg(pair.sock, after, len(after), -1, inorder) == len(after)
        t.join(60)
        assert not t.is_alive()
        assert not failed, f"receiving message {len(got) + 1} of {len(msgs)}: {failed[0]!r}"
        said = report(pair.peer, timeout=60)
        assert pair.peer.wait() == 0
        want_there = crc_of(msgs + [after])
        want_here = said["sentmsg"]
        if inorder:
            assert said["msg"] == want_there
            assert crc_of(got) == want_here
        else:   # boundaries kept; the order is not promised
            assert sorted(said["msg"]) == sorted(want_there)
            assert sorted(crc_of(got)) == sorted(want_here)
        bit = IN_ORDER_BIT if inorder else 0
        for to_server in (True, False):
            seen = {b for d, b in flags if d == to_server}
            assert seen == {bit}, f"in-order bit {seen} on the wire, {'to' if to_server else 'from'} the server"
        print(f"\nrtudp {rtudp_role} <-> libudt, inorder={inorder}: {len(msgs)} messages each "
              f"way exact, oversized one refused ({e.value.args[1]})")
    finally:
        pair.close()


# ------------------------------------------------------------ TTL


def _drop_message(k: int, drops: list[int], sent_drop_req: list[bool]) -> Any:
    """A Relay watch that loses every transmission of the k-th message (single
    packets) on its way to the server, and notes drop requests (type 7) to it."""
    first: list[int] = []

    def watch(to_server: bool, data: bytes) -> bool:
        if not to_server:
            return False
        t = ctrl_type(data)
        if t == 7:
            sent_drop_req.append(True)
        if t is not None:
            return False
        msgno = struct.unpack_from(">I", data, 4)[0] & 0x1FFFFFFF
        if not first:
            first.append(msgno)
        if msgno == first[0] + k:
            drops.append(msgno)
            return True
        return False

    return watch


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("sender", ["rtudp", "libudt"])
def test_message_ttl_drop_both_sides(udt, peer_exe: Path, sender: str) -> None:
    n, k, ttl = 20, 6, 100
    drops: list[int] = []
    drop_reqs: list[bool] = []
    watch = _drop_message(k, drops, drop_reqs)
    if sender == "rtudp":   # rtudp -> relay -> libudt (listening)
        pair = Pair(peer_exe, "client", DGRAM, [f"expect_msgs={n - 1}"], relay=True, watch=watch)
    else:                   # libudt -> relay -> rtudp (listening)
        pair = Pair(peer_exe, "server", DGRAM, [f"msgs={','.join(['1000'] * n)}", "inorder=1",
                                                f"ttl={ttl}", f"ttl_at={k}", "seed=4"],
                    relay=True, watch=watch)
    try:
        if sender == "rtudp":
            msgs = [pattern(1000, seed=i) for i in range(n)]
            for i, m in enumerate(msgs):
                udt4.sendmsg(pair.sock, m, len(m), ttl if i == k else -1, True)
            said = report(pair.peer, timeout=60)
            assert said["msg"] == crc_of(msgs[:k] + msgs[k + 1:])
            assert udt4.perfmon(pair.sock).pktSndDropTotal >= 1
        else:
            udt4.setsockopt(pair.sock, udt4.UDT_RCVTIMEO, 30000)
            got = [udt4.recvmsg(pair.sock, 4096) for _ in range(n - 1)]
            said = report(pair.peer, timeout=60)
            assert crc_of(got) == said["sentmsg"][:k] + said["sentmsg"][k + 1:]
            st = pair.srv._sock.ch.stats()
            assert st["udt_msgs_dropped"] >= 1
        assert drops, "the relay lost nothing: the test did not test"
        assert drop_reqs, f"no message drop request (type 7) from {sender}"
        print(f"\n{sender} -> relay -> {'libudt' if sender == 'rtudp' else 'rtudp'}: message {k} "
              f"lost {len(drops)} times, dropped by its {ttl} ms TTL, {n - 1} others in order")
    finally:
        pair.close()


# ------------------------------------------------------------ rendezvous


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("first", ["rtudp", "libudt"])
def test_rendezvous_both_start_orders(udt, peer_exe: Path, first: str) -> None:
    s = udt4.socket(socket.AF_INET, STREAM, 0)
    udt4.setsockopt(s, udt4.UDT_RENDEZVOUS, True)
    udt4.bind(s, "127.0.0.1", 0)
    mine = udt4.getsockname(s)[1]
    size = 300_000
    # the peer binds, prints its port, then waits `delay` before connecting
    delay = 1500 if first == "rtudp" else 0
    peer = LibudtPeer(peer_exe, "peer", "stream", f"rendezvous:{mine}", f"delay={delay}",
                      f"send={size}", f"expect={size}", "seed=6")
    try:
        theirs = int(peer.line().split()[1])
        if first == "libudt":
            time.sleep(0.6)   # its handshakes reach a socket that is not connecting yet
            assert s._sock.ch.stats()["udt_unknown"] > 0, "libudt did not start first"
        udt4.connect(s, "127.0.0.1", theirs)
        assert peer.line() == "connected"
        sent, got = duplex(udt4, s, size, size, seed=2)
        udt4.close(s)
        said = report(peer, timeout=60)
        assert said["recv"] == sent and said["sent"] == got and got[0] == size
        assert peer.wait() == 0
        print(f"\nrendezvous, {first} first: connected, {size} bytes each way exact")
    finally:
        peer.stop()
        udt4.close(s)


# ------------------------------------------------------------ socket type mismatch


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("rtudp_role", ["client", "server"])
@pytest.mark.parametrize("rtudp_kind", [STREAM, DGRAM], ids=["rtudp-stream", "rtudp-dgram"])
def test_socket_type_mismatch_rejected_1002(udt, peer_exe: Path, rtudp_role: str,
                                            rtudp_kind: int) -> None:
    peer_type = "dgram" if rtudp_kind == STREAM else "stream"
    answers: list[int] = []

    def watch(to_server: bool, data: bytes) -> bool:
        if not to_server and ctrl_type(data) == 0:
            answers.append(handshake_conn_type(data))
        return False

    relay = srv = None
    if rtudp_role == "client":
        peer = LibudtPeer(peer_exe, "peer", peer_type, "listen")
    else:
        srv, port = _listener(rtudp_kind)
        relay = Relay(("127.0.0.1", port), watch=watch)
        peer = LibudtPeer(peer_exe, "peer", peer_type, f"connect:{relay.port}")
    try:
        if rtudp_role == "client":
            relay = Relay(("127.0.0.1", int(peer.line().split()[1])), watch=watch)
            c = udt4.socket(socket.AF_INET, rtudp_kind, 0)
            with pytest.raises(udt4.UDTException) as e:
                udt4.connect(c, "127.0.0.1", relay.port)
            assert e.value.args[0] == udt4.ECONNREJ
            udt4.close(c)
        else:
            line = peer.line(timeout=30, allow_error=True)
            assert line.startswith("error 1002 connect"), line
            assert peer.wait() == 2
            assert srv is not None and srv._sock.ch.stats()["udt_accepted"] == 0
        assert 1002 in answers, f"the server's answers on the wire: {answers}"
    finally:
        peer.stop()
        if relay is not None:
            relay.close()
        if srv is not None:
            udt4.close(srv)


# ------------------------------------------------------------ close


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("closer", ["rtudp", "libudt"])
def test_close_sends_shutdown(udt, peer_exe: Path, closer: str) -> None:
    shutdowns: list[bool] = []   # (to the server)
    data = pattern(5000, seed=3)

    def watch(to_server: bool, pkt: bytes) -> bool:
        if ctrl_type(pkt) == 5:
            shutdowns.append(to_server)
        return False

    if closer == "rtudp":   # rtudp client -> relay -> libudt server, which waits for the end
        pair = Pair(peer_exe, "client", STREAM, [f"expect={len(data)}", "wait_end=1"],
                    relay=True, watch=watch)
    else:                   # libudt client -> relay -> rtudp server; libudt sends, closes
        pair = Pair(peer_exe, "server", STREAM, [f"send={len(data)}"], relay=True, watch=watch)
    try:
        if closer == "rtudp":
            udt4.send(pair.sock, data)
            udt4.close(pair.sock)
            said = report(pair.peer, timeout=30)
            assert said["end"] == udt4.ECONNLOST, "libudt did not see the connection end"
        else:
            got = b""
            while len(got) < len(data):
                got += udt4.recv(pair.sock, 65536)
            assert report(pair.peer, timeout=30)["sent"][0] == len(data)
            with pytest.raises(udt4.UDTException) as e:
                udt4.recv(pair.sock, 65536)
            assert e.value.args[0] == udt4.ECONNLOST
        # the closer is the client in both cases: its shutdown goes to the server first
        assert shutdowns and shutdowns[0] is True, f"shutdowns seen (to the server?): {shutdowns}"
    finally:
        pair.close()
