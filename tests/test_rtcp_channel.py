"""RTCP on rtp channels end to end (RFC 3550 6): two channels report to each other
over loopback, on the RTP port + 1 and muxed on the RTP port (RFC 5761).

Asserted: reports flow both ways and are counted, the RTT comes from LSR/DLSR and is
positive, the remote's view of our stream adds up with what was sent, a muxed RTCP
datagram never reaches the jitter buffer, junk is counted in rtcp_bad, a BYE leaves
with a closing channel.  No wall-clock bound a loaded machine could miss.
"""
from __future__ import annotations

import socket
import struct
import time

import pytest

from fake_worker import worker_argv
from waiting import wait_for

pytestmark = [pytest.mark.rtudp(worker=worker_argv())]

OPTS = {"ptime_ms": 10, "rtcp_interval_ms": 100, "latency_ms": 20}


def pair(pool, mode: str):
    """Two rtp channels sending to each other with RTCP `mode`."""
    a = pool.open_channel("a", kind="rtp", local=("127.0.0.1", 0),
                          options={**OPTS, "rtcp": mode})
    b = pool.open_channel("b", kind="rtp", local=("127.0.0.1", 0), remote=a.local,
                          options={**OPTS, "rtcp": mode})
    a.set_target(*b.local)
    return a, b


@pytest.mark.parametrize("mode", ["port", "mux"])
def test_reports_flow_both_ways_with_rtt(rtudp_pool, mode):
    a, b = pair(rtudp_pool, mode)
    if mode == "port":
        assert a.local[1] % 2 == 0 and b.local[1] % 2 == 0  # pool-chosen: even
    for _ in range(30):
        a.send_many([b"\x00" * 80] * 5)
        b.send_many([b"\x00" * 80] * 5)
        time.sleep(0.05)
        if a.rtcp_stats()["rtcp_rtt_ns"] >= 0 and b.rtcp_stats()["rtcp_rtt_ns"] >= 0:
            break
    # -1 until a report block on our SR came; loopback RTT may round to 0 (1/65536 s)
    assert wait_for(lambda: a.rtcp_stats()["rtcp_rtt_ns"] >= 0
                    and b.rtcp_stats()["rtcp_rtt_ns"] >= 0, 10.0), \
        (a.rtcp_stats(), b.rtcp_stats())
    sa, sb = a.rtcp_stats(), b.rtcp_stats()
    assert sa["rtcp_sr_sent"] >= 1 and sb["rtcp_sr_received"] >= 1, (sa, sb)
    assert sa["rtcp_bad"] == 0 and sb["rtcp_bad"] == 0
    assert 0 <= sa["rtcp_remote_fraction_lost"] <= 1
    assert sa["rtcp_remote_cumulative_lost"] == 0  # loopback, nothing lost
    assert a.stats()["rtp_rx_invalid"] == 0  # muxed RTCP is not RTP gone wrong
    clock = a.remote_clock()
    assert clock is not None and clock[2] == b.ssrc
    assert abs(clock[0] - time.time_ns()) < 60 * 10**9


def parse(data: bytes) -> list[tuple[int, int]]:
    """(type, count) of each packet of a compound, checking the lengths add up."""
    out, off = [], 0
    while off < len(data):
        b0, pt, words = struct.unpack_from("!BBH", data, off)
        assert b0 >> 6 == 2
        out.append((pt, b0 & 0x1F))
        off += (words + 1) * 4
    assert off == len(data)
    return out


def _port_pair(tries: int = 50) -> tuple[socket.socket, socket.socket]:
    """Two loopback sockets on ports p and p + 1 (another process may hold a p + 1 the
    kernel's choice of p did not see: try other p's)."""
    for _ in range(tries):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtp.bind(("127.0.0.1", 0))
            rtcp.bind(("127.0.0.1", rtp.getsockname()[1] + 1))
            return rtp, rtcp
        except OSError:
            rtp.close()
            rtcp.close()
    raise AssertionError(f"no loopback port p with p + 1 free in {tries} tries")


def test_sr_sdes_then_bye_on_close_to_port_plus_one(rtudp_pool):
    rtp, rtcp = _port_pair()
    rtcp.settimeout(10)
    with rtp, rtcp:
        tx = rtudp_pool.open_channel("tx", kind="rtp", remote=rtp.getsockname(), direction=0,
                                     options={"ptime_ms": 10, "rtcp_interval_ms": 100})
        tx.send_many([b"\x01" * 80] * 10)
        for _ in range(10):
            rtp.recv(2048)
        counts: list[tuple[int, int]] = []
        while (10, 800) not in counts:  # SRs count what left so far, then all of it
            data, _src = rtcp.recvfrom(2048)
            got = parse(data)
            assert got[0][0] in (200, 201) and (202, 1) in got, got
            if got[0][0] == 200:
                assert struct.unpack_from("!I", data, 4)[0] == tx.ssrc
                counts.append(struct.unpack_from("!II", data, 20))
        assert counts == sorted(counts) and all(o == 80 * p for p, o in counts), counts
        tx.close()
        while True:  # reports still in flight, then the last one with the BYE
            got = parse(rtcp.recv(2048))
            if got[-1][0] == 203:
                break


def test_bad_rtcp_counted_not_delivered(rtudp_pool):
    ch = rtudp_pool.open_channel("m", kind="rtp", local=("127.0.0.1", 0), direction=1,
                                 options={**OPTS, "rtcp": "mux"})
    p = rtudp_pool.open_channel("p", kind="rtp", local=("127.0.0.1", 0), direction=1,
                                options={**OPTS, "rtcp": "port"})
    junk = [b"\x80\xc8\x00\x09" + b"\x00" * 8,        # SR whose length runs past the end
            b"\x80\xca\x00\x00",                       # SDES first
            b"\x40\xc9\x00\x01" + b"\x00" * 4]        # version 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for j in junk:
            s.sendto(j, ch.local)
            s.sendto(j, (p.local[0], p.local[1] + 1))
    assert wait_for(lambda: ch.rtcp_stats()["rtcp_bad"] == 3 and
                    p.rtcp_stats()["rtcp_bad"] == 3, 10.0), (ch.stats(), p.stats())
    st = ch.stats()
    assert st["rtp_rx_invalid"] == 0 and st["rtp_rx_frames"] == 0
    assert ch.recv_many(10, timeout=0.2) == []


def test_defaults_and_bad_options(rtudp_pool):
    from rtudp.workers.rtp_kind import check_options
    assert check_options({})["rtcp"] == "port"
    assert check_options({"tx_mode": "raw", "rx_mode": "raw"})["rtcp"] == "off"
    assert check_options({"tx_mode": "raw"})["rtcp"] == "port"
    assert check_options({})["rtcp_interval_ms"] == 5000
    with pytest.raises(ValueError, match="rtcp='both'"):
        check_options({"rtcp": "both"})
    with pytest.raises(ValueError, match="rtcp_interval_ms=99"):
        check_options({"rtcp_interval_ms": 99})
    off = rtudp_pool.open_channel("off", kind="rtp", local=("127.0.0.1", 0),
                                  options={"rtcp": "off"})
    assert off.rtcp_stats()["rtcp_rtt_ns"] == -1 and off.remote_clock() is None
