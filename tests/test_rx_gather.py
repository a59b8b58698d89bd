"""RX gathering (rxloop.c, rx_gather): rtp channels with a jitter buffer may let their
datagrams wait in the socket up to 1 ms, so a worker that receives many of them one at
a time reads them in groups.  A udp channel on the same worker may not wait: its
datagram ends a gather at once.  Nothing is lost either way."""
from __future__ import annotations

import socket
import threading
import time

import pytest

import rtudp
from fake_worker import need_fifo
from rtp_helpers import rtp_packet

STREAMS = 40               # at 50 packets/s each: one every 500 µs in all
GATHER_NS = 1_000_000      # RTUDP_RX_GATHER_NS
PINGS = 200


def _feed(ports: list[int], stop: threading.Event, sent: list[int]) -> None:
    """RTP streams to ``ports``, 20 ms frames, sent round robin one about every
    20 ms / len(ports) (each stream at its real rate), until ``stop``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        seq = 0
        while not stop.is_set():
            for i, port in enumerate(ports):
                s.sendto(rtp_packet(seq=seq & 0xFFFF, ts=seq * 160, ssrc=0x1000 + i,
                                    payload=bytes(160)), ("127.0.0.1", port))
                sent[i] += 1
                time.sleep(0.020 / len(ports))
            seq += 1


@pytest.mark.rtudp(cpus=[0])
def test_udp_datagrams_are_read_at_once_while_rtp_streams_gather(
        rtudp_pool: rtudp.Pool) -> None:
    need_fifo(rtudp_pool, "only a real-time worker gathers")
    streams = [rtudp_pool.open_channel(f"g{i}", local=("127.0.0.1", 0), direction="rx",
                                       kind="rtp", capacity=256, max_datagram=256,
                                       options={"ptime_ms": 20, "latency_ms": 60,
                                                "rtcp": "off"})
               for i in range(STREAMS)]
    sent = [0] * STREAMS
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=([c.local[1] for c in streams], stop, sent))
    try:
        with rtudp_pool.open_channel("urgent", direction=1) as udp, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            udp.direct_recv = False  # the worker's RX thread reads it, as it reads the rtp
            before = rtudp_pool.workers()[0]["rx_coalesced"]
            feeder.start()
            time.sleep(0.2)
            for i in range(PINGS):
                peer.sendto(i.to_bytes(4, "little"), udp.local)
                got = udp.recv(timeout=5)
                assert got.data == i.to_bytes(4, "little"), (i, got.data)
                time.sleep(0.002)
            stop.set()
            feeder.join()
            gathers = rtudp_pool.workers()[0]["rx_coalesced"] - before
            delay = udp.rx_delay()
        # read at once: half of them within a fifth of the gather window (a udp
        # datagram that had to wait out each gather would wait half of it on average)
        p50 = delay.percentile(50)
        assert delay.count == PINGS
        assert p50 is not None and p50 < GATHER_NS // 5, \
            f"udp receive delay p50 {p50} ns beside gathering rtp streams"
        print(f"udp rx_delay p50 {p50} ns, {gathers} gathers, sent {sent}")
        assert gathers > 0, "the rtp streams never gathered: nothing was tested"
        deadline = time.monotonic() + 10
        counted = [0] * STREAMS
        while time.monotonic() < deadline:
            counted = [c.stats()["rx_packets"] for c in streams]
            if counted == sent:
                break
            time.sleep(0.05)
        assert counted == sent, f"rtp packets counted {counted}, sent {sent}"
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join()
        for c in streams:
            c.close()
