"""A Netflux peer in plain Python, written from the wire description only (no rtudp).

Byte 0: our 8-bit sequence number; byte 1: the last sequence number we received from
the partner (feedback); then the payload.  A packet is new when (seq - last) & 0xFF is
in 1..127; anything else, or a packet shorter than 2 + payload size, is rejected.
"""
from __future__ import annotations

import select
import socket
import time

from background import Background


class PlainPeer(Background):
    """Sends every ``interval`` s (Python sleep) and receives, on one thread."""

    def __init__(self, local: tuple[str, int], remote: tuple[str, int], size: int,
                 interval: float = 0.002) -> None:
        super().__init__()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(local)
        self.remote, self.size, self.interval = remote, size, interval
        self.payload = bytes(size)
        self.seq = 0
        self.last: int | None = None     # partner's last accepted sequence
        self.received: bytes | None = None
        self.feedbacks: list[int] = []   # feedback bytes of accepted packets
        self.sent_seqs: list[int] = []
        self.accepted = self.rejected = self.gaps = 0

    def _close(self) -> None:
        self.sock.close()

    def _receive(self, pkt: bytes) -> None:
        if len(pkt) < 2 + self.size:
            self.rejected += 1
            return
        seq, fb = pkt[0], pkt[1]
        if self.last is not None:
            d = (seq - self.last) & 0xFF
            if not 1 <= d <= 127:
                self.rejected += 1
                return
            self.gaps += d - 1
        self.last = seq
        self.accepted += 1
        self.feedbacks.append(fb)
        self.received = pkt[2:2 + self.size]

    def _run(self) -> None:
        next_send = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_send:
                self.seq = (self.seq + 1) & 0xFF
                fb = self.last if self.last is not None else 0
                self.sock.sendto(bytes([self.seq, fb]) + self.payload, self.remote)
                self.sent_seqs.append(self.seq)
                next_send += self.interval
            ready, _, _ = select.select([self.sock], [], [], max(0.0, next_send - now))
            if ready:
                self._receive(self.sock.recv(2048))
