"""Test helpers for netflux: an impairment proxy (and free_ports, re-exported).

The proxy sits between two endpoints A and B on loopback: A sends to ``a_side``, which
forwards to B from ``b_side`` (and B's packets the other way, untouched).  On A -> B
it drops, duplicates, reorders (swaps a packet with the next), injects short packets
and can black out the link, on a fixed schedule of packet indexes, and counts
exactly what it did.
"""
from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass

from ports import free_ports


def netflux_pair(pool, opts: dict) -> tuple:
    """Netflux channels nfa and nfb of ``pool`` on loopback, each aimed at the other."""
    pa, pb = free_ports(2)
    a = pool.open_channel("nfa", local=("127.0.0.1", pa), remote=("127.0.0.1", pb),
                          kind="netflux", options=opts)
    b = pool.open_channel("nfb", local=("127.0.0.1", pb), remote=("127.0.0.1", pa),
                          kind="netflux", options=opts)
    return a, b


@dataclass
class Injected:
    """What the proxy did to A -> B."""

    forwarded: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    short: int = 0
    outage_dropped: int = 0


class ImpairProxy:
    """A -> B impairments by packet index i (from ``start_at`` on): drop when
    i % 20 == 5 (5 %), duplicate when i % 50 == 12, swap with the next when
    i % 50 == 31, an extra 1-byte packet when i % 100 == 44; everything dropped during
    :meth:`outage`."""

    def __init__(self, a: tuple[str, int], b: tuple[str, int], start_at: int = 100) -> None:
        self.a, self.b = a, b
        self.a_side = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.b_side = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.a_side.bind(("127.0.0.1", 0))
        self.b_side.bind(("127.0.0.1", 0))
        self.start_at = start_at
        self.impair = True
        self.counts = Injected()
        self._i = 0
        self._held: bytes | None = None
        self._outage_until = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def a_addr(self) -> tuple[str, int]:
        """Where A sends."""
        return self.a_side.getsockname()

    @property
    def b_addr(self) -> tuple[str, int]:
        """Where B sends."""
        return self.b_side.getsockname()

    def start(self) -> "ImpairProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.a_side.close()
        self.b_side.close()

    def outage(self, seconds: float) -> None:
        """Drop everything from A for ``seconds`` from now."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def _to_b(self, pkt: bytes) -> None:
        self.b_side.sendto(pkt, self.b)

    def _from_a(self, pkt: bytes) -> None:
        c = self.counts
        with self._lock:
            blackout = time.monotonic() < self._outage_until
        if blackout:
            c.outage_dropped += 1 + (self._held is not None)
            self._held = None
            return
        i, self._i = self._i, self._i + 1
        if not self.impair or i < self.start_at:
            self._to_b(pkt)
            c.forwarded += 1
            return
        if self._held is not None:  # the swap: this one first, then the held one
            self._to_b(pkt)
            self._to_b(self._held)
            self._held = None
            c.forwarded += 2
            c.reordered += 1
            return
        if i % 20 == 5:
            c.dropped += 1
            return
        if i % 50 == 31:
            self._held = pkt
            return
        self._to_b(pkt)
        c.forwarded += 1
        if i % 50 == 12:
            self._to_b(pkt)
            c.duplicated += 1
        if i % 100 == 44:
            self._to_b(pkt[:1])
            c.short += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.a_side, self.b_side], [], [], 0.05)
            for s in ready:
                pkt = s.recv(4096)
                if s is self.a_side:
                    self._from_a(pkt)
                else:
                    self.a_side.sendto(pkt, self.a)


__all__ = ["ImpairProxy", "Injected", "free_ports"]
