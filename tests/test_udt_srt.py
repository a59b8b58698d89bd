"""An SRT caller (Debian's ``srt-live-transmit``, package srt-tools) into an rtudp DGRAM
listener: SRT's caller opens with a UDT-version-4 induction handshake; rtudp answers as
UDT 4, so SRT falls back to its HSv4 handshake, then sends its SRT extension request
as a user-defined control packet (type 0x7FFF, which rtudp ignores) and its live
stream as one-packet messages, which must arrive whole and in order.  A relay of our
own between the two records the wire, so the test checks what was said as well as
what arrived, and loses every 25th data packet, which SRT must send again on rtudp's
NAK.  Skipped, with the reason printed, without srt-tools."""
from __future__ import annotations

import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

import rtudp.udt.udt4 as udt4
from ports import free_ports
from udt_helpers import WatchRelay as Relay, ctrl_type, pattern
from udt_helpers import udt  # noqa: F401  (the fixture)

#: what srt-live-transmit reads from UDP and sends as one SRT packet each: up to its
#: default chunk (1456), 1316 = 7 MPEG-TS packets, the common live payload
SIZES = [1, 188, 1316, 1456]
COUNT = 240


def _srt_exe() -> str:
    exe = shutil.which("srt-live-transmit")
    if exe is None:
        reason = "srt-live-transmit is not installed (apt-get install srt-tools)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return exe


@pytest.mark.rtudp(rt_priority=0)
def test_srt_live_transmit_caller_delivers_to_rtudp_dgram_listener(udt) -> None:
    exe = _srt_exe()
    srv = udt4.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
    udt4.bind(srv, "127.0.0.1", 0)
    udt4.listen(srv, 4)
    udt4.setsockopt(srv, udt4.UDT_RCVTIMEO, 20000)
    wire: list[tuple[bool, bytes]] = []   # (to rtudp, the packet's first 64 bytes)

    lost: list[int] = []   # which data packets to rtudp the relay lost
    seen = [0]             # data packets to rtudp so far

    def record(to_rtudp: bool, data: bytes) -> bool:
        """Note the packet; lose every 25th data packet to rtudp (retransmissions
        count too), so rtudp's NAKs and SRT's retransmissions are exercised."""
        wire.append((to_rtudp, data[:64]))
        if to_rtudp and ctrl_type(data) is None:
            seen[0] += 1
            if seen[0] % 25 == 0:
                lost.append(seen[0])
                return True
        return False

    relay = Relay(("127.0.0.1", udt4.getsockname(srv)[1]), watch=record)
    in_port = free_ports(1)[0]
    proc = subprocess.Popen([exe, f"udp://127.0.0.1:{in_port}",
                             f"srt://127.0.0.1:{relay.port}?mode=caller"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    feed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        conn, addr = udt4.accept(srv)
        assert addr[0] == "127.0.0.1"
        udt4.setsockopt(conn, udt4.UDT_RCVTIMEO, 10000)
        # (srt-live-transmit binds its UDP input before it connects: it is open now)
        msgs = [pattern(SIZES[i % len(SIZES)], seed=i) for i in range(COUNT)]
        for m in msgs:
            feed.sendto(m, ("127.0.0.1", in_port))
            time.sleep(0.002)   # a live stream's pace: its UDP input must not overflow
        got = [udt4.recvmsg(conn, 65536) for _ in msgs]
        assert got == msgs, "SRT's live messages arrived changed, cut or out of order"
        # SIGINT: srt-live-transmit closes its SRT socket, which sends UDT's shutdown
        proc.send_signal(signal.SIGINT)
        with pytest.raises(udt4.UDTException) as e:
            udt4.recvmsg(conn, 65536)
        assert e.value.args[0] == udt4.ECONNLOST
        proc.wait(10)
        st = srv._sock.ch.stats()
    finally:
        feed.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        out = proc.stdout.read() if proc.stdout else ""
        relay.close()
        udt4.close(srv)
    up = [d for to_us, d in wire if to_us]
    down = [d for to_us, d in wire if not to_us]
    # the wire: SRT's induction is a UDT 4 DGRAM request (version 4, type 2, conn type 1)
    induction = struct.unpack_from(">IIIIIi", up[0], 16)
    assert ctrl_type(up[0]) == 0 and induction[0] == 4 and induction[1] == 2, up[0].hex()
    assert induction[5] == 1
    # rtudp answered as UDT 4 (so SRT stays on HSv4) and accepted the -1 request
    answers = [struct.unpack_from(">IIIIIi", d, 16) for d in down if ctrl_type(d) == 0]
    assert answers and all(a[0] == 4 for a in answers)
    assert answers[-1][5] == -1
    # SRT's HSREQ (user type 0x7FFF, extended type 1) came and was ignored gracefully
    user = [d for d in up if ctrl_type(d) == 0x7FFF]
    assert user and all(struct.unpack_from(">I", d)[0] & 0xFFFF == 1 for d in user), \
        "srt-live-transmit sent no SRT extension request (HSREQ) this time"
    data = [d for d in up if ctrl_type(d) is None]
    # what the relay lost came again: rtudp's NAKs (type 3), SRT's retransmissions
    assert lost and len(data) >= COUNT + len(lost)
    assert any(ctrl_type(d) == 3 for d in down), "rtudp sent no NAK for the lost packets"
    # each live message is one packet: FF bits 11 (solo), in-order 0; SRT's KK
    # (encryption) and R (retransmitted) bits are 0 on HSv4 without its HSRSP
    assert all(struct.unpack_from(">I", d, 4)[0] >> 26 == 0b110000 for d in data)
    assert any(ctrl_type(d) == 5 for d in up), "no shutdown from SRT on close"
    assert st["udt_malformed"] == 0 and st["udt_accepted"] == 1
    print(f"\nsrt-live-transmit -> rtudp: {COUNT} messages of {SIZES} bytes exact, "
          f"{len(user)} SRT HSREQ (0x7FFF) ignored, {len(data)} data packets "
          f"({len(lost)} lost by the relay, sent again); "
          f"srt-live-transmit said: {out.strip()[-200:]!r}")
