"""UDT4's in-order bit through a relay that holds one data packet back: messages
sent with ``inorder=False`` are read past the gap, ahead of the one it cut; with
``inorder=True`` they wait for it.  Every message arrives once, whole."""
from __future__ import annotations

import socket
import time

import pytest

import rtudp.udt.udt4 as udt4
from udt_helpers import WatchRelay as Relay
from udt_helpers import udt  # noqa: F401  (the fixture)

#: the data packet (counted from the first) the relay holds back, and for how long:
#: long enough that the messages after it are read first, well under broken_timeout
HELD, HOLD_S = 5, 1.5


class HoldingRelay(Relay):
    """Drops every copy of the client's data packet number :data:`HELD` (by sequence
    number, from the first seen) for :data:`HOLD_S` seconds after it first came."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.isn: int | None = None
        self.first_seen: float | None = None
        super().__init__(server)

    def _queue(self, data: bytes, out: socket.socket, to: tuple[str, int]) -> None:
        if out is self.back and len(data) >= 16 and not data[0] & 0x80:
            seq = int.from_bytes(data[:4], "big")
            if self.isn is None:
                self.isn = seq
            if (seq - self.isn) & 0x7FFFFFFF == HELD:
                now = time.monotonic()
                self.first_seen = self.first_seen or now
                if now - self.first_seen < HOLD_S:
                    self.dropped += 1
                    return
        super()._queue(data, out, to)


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("inorder", [False, True])
def test_messages_past_a_held_packet(udt, inorder: bool) -> None:
    srv = udt4.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
    udt4.bind(srv, "127.0.0.1", 0)
    udt4.listen(srv, 4)
    relay = HoldingRelay(("127.0.0.1", udt4.getsockname(srv)[1]))
    c = udt4.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
    try:
        udt4.connect(c, "127.0.0.1", relay.port)
        conn, _ = udt4.accept(srv)
        msgs = [bytes([i]) * (100 + i) for i in range(20)]  # one packet each
        for m in msgs:
            udt4.sendmsg(c, m, len(m), -1, inorder)
        got = [udt4.recvmsg(conn, 4096) for _ in msgs]
        assert sorted(got) == sorted(msgs) and len(set(got)) == len(msgs)
        assert relay.dropped >= 1
        if inorder:
            assert got == msgs
        else:
            # the held message comes after the ones sent behind it (the relay holds it
            # for 1.5 s; those behind it are read as soon as they are here)
            assert got.index(msgs[HELD]) > got.index(msgs[HELD + 1]), [m[0] for m in got]
            assert got[:HELD] == msgs[:HELD]
        udt4.setsockopt(conn, udt4.UDT_RCVTIMEO, 200)
        with pytest.raises(RuntimeError) as exc:  # and nothing is read twice
            udt4.recvmsg(conn, 4096)
        assert exc.value.args[0] == udt4.ETIMEOUT
        udt4.close(conn)
    finally:
        udt4.close(c)
        udt4.close(srv)
        relay.close()
