"""rtudp.udt against a real UDT 4.11 peer (Debian's libudt, tests/udt/libudt_peer.cpp):
stream and message transfers of several MB, both directions, byte-exact, message
boundaries kept.  Skipped, with the reason printed, without libudt-dev or g++."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

import rtudp.udt.udt4 as udt4
from udt_helpers import LibudtPeer, build_libudt_peer, frame_messages, pattern, recv_all, send_all
from udt_helpers import udt  # noqa: F401  (the fixture)

STREAM_BYTES = 8_000_000
#: message sizes around the payload size (1456) and one of many packets
MSG_SIZES = [1, 1456, 1457, 3000, 100_000]


@pytest.fixture(scope="module")
def peer_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_libudt_peer(tmp_path_factory.mktemp("libudt"))



def _messages() -> list[bytes]:
    return [pattern(n, seed=i) for i, n in enumerate(MSG_SIZES * 8)]


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("kind", ["stream", "dgram"])
def test_rtudp_client_to_libudt_server(udt, peer_exe: Path, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "received"
    peer = LibudtPeer(peer_exe, "server", kind, str(out))
    try:
        port = int(peer.line().split()[1])
        s = udt4.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM, 0)
        udt4.connect(s, "127.0.0.1", port)
        assert udt4.getsockstate(s) == udt4.CONNECTED
        assert udt4.getpeername(s) == ("127.0.0.1", port)
        if kind == "stream":
            data = pattern(STREAM_BYTES)
            send_all(udt4, s, data)
            want = data
        else:
            msgs = _messages()
            for m in msgs:
                assert udt4.sendmsg(s, m, len(m), -1, True) == len(m)
            want = frame_messages(msgs)
        deadline = time.monotonic() + 60
        while udt4.getsockopt(s, udt4.UDT_SNDDATA) and time.monotonic() < deadline:
            time.sleep(0.01)   # until the peer acknowledged everything
        info = udt4.perfmon(s)
        udt4.close(s)
        done = peer.line(timeout=60)
        assert peer.wait() == 0
        payload = len(want) if kind == "stream" else sum(len(m) for m in msgs)
        assert done == f"done {payload}"
        assert out.read_bytes() == want
        assert info.pktSentTotal > 0 and info.msRTT > 0
        print(f"\nrtudp -> libudt {kind}: {payload} bytes exact, RTT {info.msRTT:.3f} ms, "
              f"{info.pktRetransTotal} retransmitted")
    finally:
        peer.stop()


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("kind", ["stream", "dgram"])
def test_libudt_client_to_rtudp_server(udt, peer_exe: Path, tmp_path: Path, kind: str) -> None:
    stream = kind == "stream"
    srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM if stream else socket.SOCK_DGRAM, 0)
    udt4.bind(srv, "127.0.0.1", 0)
    udt4.listen(srv, 4)
    port = udt4.getsockname(srv)[1]
    if stream:
        data = pattern(STREAM_BYTES, seed=3)
        src = tmp_path / "send"
        src.write_bytes(data)
        args = [str(src), "0"]
    else:
        msgs = _messages()
        src = tmp_path / "send"
        src.write_bytes(b"".join(msgs))
        args = [str(src), ""]
    peer = None
    try:
        if not stream:
            # the peer splits its file in messages of one size: one run per size
            got_all: list[bytes] = []
            for size in MSG_SIZES:
                part = [pattern(size, seed=i) for i in range(6)]
                src.write_bytes(b"".join(part))
                peer = LibudtPeer(peer_exe, "client", "dgram", str(port), str(src), str(size))
                conn, addr = udt4.accept(srv)
                assert addr[0] == "127.0.0.1"
                result: list[object] = []
                recv_all(udt4, conn, False, result)
                assert peer.line() == f"sent {6 * size}"
                assert peer.wait() == 0
                assert result[1] == udt4.ECONNLOST   # the peer's close: shutdown
                assert result[0] == part, f"messages of {size} bytes"
                got_all += result[0]
                udt4.close(conn)
                peer.stop()
            print(f"\nlibudt -> rtudp dgram: {len(got_all)} messages, boundaries kept")
            return
        peer = LibudtPeer(peer_exe, "client", "stream", str(port), *args)
        conn, _ = udt4.accept(srv)
        result = []
        t = threading.Thread(target=recv_all, args=(udt4, conn, True, result))
        t.start()
        assert peer.line(timeout=60) == f"sent {len(data)}"
        t.join(60)
        assert not t.is_alive()
        assert peer.wait() == 0
        assert result[1] == udt4.ECONNLOST
        assert result[0] == data
        info = udt4.perfmon(conn)
        print(f"\nlibudt -> rtudp stream: {len(data)} bytes exact, {info.pktRecvTotal} packets")
        udt4.close(conn)
    finally:
        if peer is not None:
            peer.stop()
        udt4.close(srv)
