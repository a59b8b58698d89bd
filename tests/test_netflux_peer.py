"""Interoperability: our netflux endpoint against a peer written in plain Python from
the wire description (tests/netflux_plain_peer.py, no rtudp code): both see each
other's image and feedback."""
from __future__ import annotations

import struct
import time

from netflux_helpers import free_ports
from netflux_plain_peer import PlainPeer

FMT = struct.Struct("<dI")


def test_plain_python_peer_exchanges_images_and_feedback(rtudp_pool) -> None:
    ours, theirs = free_ports(2)
    peer = PlainPeer(("127.0.0.1", theirs), ("127.0.0.1", ours), FMT.size, interval=0.002)
    peer.payload = FMT.pack(2.5, 4242)
    ch = rtudp_pool.open_channel("nfpeer", local=("127.0.0.1", ours),
                                 remote=("127.0.0.1", theirs), kind="netflux",
                                 options={"send_interval": 0.001, "watch_interval": 0.1,
                                          "send_size": FMT.size, "recv_size": FMT.size})
    peer.start()
    try:
        with ch:
            ch.write(FMT.pack(-1.25, 7))
            ch.wait_update(2.0, after=0)
            time.sleep(0.7)
            s = ch.stats()
            img = ch.read()
            ch_seq = s["nf_seq"]
    finally:
        peer.stop()
    # both see each other's data
    assert FMT.unpack(img.data) == (2.5, 4242)
    assert peer.received is not None and FMT.unpack(peer.received) == (-1.25, 7)
    # the peer accepted everything we sent, in order, with no gaps on loopback
    assert peer.rejected == 0 and peer.gaps == 0 and peer.accepted > 300
    # our feedback echoes the peer's sequence numbers: each is one it sent, and at the
    # end a recent one
    assert set(peer.feedbacks[50:]) <= set(peer.sent_seqs)
    # the peer's feedback echoes ours: the last one it sent is one of our recent ones
    d = (ch_seq - s["nf_partner_feedback"]) & 0xFF
    assert min(d, 256 - d) < 64
    assert s["nf_link"] == "up" and s["nf_partner_lost"] == 0 and s["nf_rejected"] == 0
    assert s["nf_rtt_count"] > 50 and s["nf_last_rtt_ns"] > 0
