"""Many streams for ``rtudp bench scale``: what the observer's arrivals say about them,
and the plain asyncio peers (each run in a child process of its own).

A stream is a source port at the observer.  Its packets carry a sequence number (RTP's
16 bits, or Netflux's 8-bit sequence byte), unwrapped per stream; the first one seen is
slot 0.  Packet k's ideal arrival is the stream's own phase + k x gap, the phase being
the median of every packet's offset ``stamp - k x gap``: the pacing error of a packet is
``|offset - that median|`` (a constant delay, the same for every packet of a stream,
drops out; the order in which streams start does not matter).  Netflux numbers on
without a gap after a cycle it skips: its packets' slots come from their arrival times
(the nearest slot of the stream's own schedule) instead.
"""
from __future__ import annotations

import asyncio
import resource
import statistics
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

from .common import percentiles_us
from .scale_peer import Arrival

#: sequence number of a packet from its first 4 bytes, and its modulus, by format
SEQ: dict[str, tuple[Callable[[bytes], int], int]] = {
    "rtp": (lambda h: (h[2] << 8) | h[3], 1 << 16),
    "netflux": (lambda h: h[0], 1 << 8),
}
RTP_HEAD = struct.Struct("!BBHII")


def raise_nofile() -> None:
    """The soft RLIMIT_NOFILE up to the hard one: thousands of sockets need it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def packet(fmt: str, stream: int, k: int, size: int) -> bytes:
    """Packet k of stream ``stream`` as the C sender makes it (scale_peer.c ``fill``)."""
    if fmt == "rtp":
        return RTP_HEAD.pack(0x80, 0, k & 0xFFFF, (k * 160) & 0xFFFFFFFF, stream + 1) \
            + b"\xff" * (size - RTP_HEAD.size)
    return bytes([k & 0xFF]) + bytes(size - 1)


def _unwrap(seqs: Iterable[int], modulus: int) -> list[int]:
    """Sequence numbers extended past their wrap, the first one 0 (a step of half the
    modulus or more counts as a step back)."""
    out: list[int] = []
    prev_raw = ext = 0
    for i, s in enumerate(seqs):
        if i:
            step = (s - prev_raw) % modulus
            ext += step - modulus if step >= modulus // 2 else step
        out.append(ext)
        prev_raw = s
    return out


def _slots_by_time(stamps: list[int], gap_ns: int) -> list[int]:
    """Each stamp's nearest slot of the stream's own cyclic schedule (its phase the
    median offset from the first stamp), the first slot 0."""
    t0 = stamps[0]
    phase = statistics.median((t - t0 + gap_ns // 2) % gap_ns - gap_ns // 2 for t in stamps)
    return [round((t - t0 - phase) / gap_ns) for t in stamps]


def stream_figures(arrivals: list[Arrival], fmt: str, gap_ns: int, count: int,
                   window: tuple[int, int] | None = None,
                   by_time: bool = False) -> dict[str, Any]:
    """Delivered packets, duplicates, per-stream order and pacing error of the
    arrivals; with ``window`` (CLOCK_MONOTONIC ns from, to) only the arrivals in it
    count.  A packet's slot is its sequence number's, or with ``by_time`` its nearest
    slot of the stream's schedule (a sender that skips a cycle numbers on without a
    gap: Netflux); either way numbered from the stream's first packet."""
    seq_of, modulus = SEQ[fmt]
    by_port: dict[int, list[Arrival]] = {}
    for a in arrivals:
        if a.stamp_ns >= 0 and (window is None or window[0] <= a.stamp_ns < window[1]):
            by_port.setdefault(a.port, []).append(a)
    errors: list[int] = []
    delivered = duplicates = reordered = beyond = 0
    for rows in by_port.values():
        seqs = _unwrap((seq_of(a.head) for a in rows), modulus)
        reordered += sum(b < a for a, b in zip(seqs, seqs[1:]))
        slots = _slots_by_time([a.stamp_ns for a in rows], gap_ns) if by_time else seqs
        low = min(slots)
        slots = [s - low for s in slots]
        seen: set[int] = set()
        for s in slots:
            if s in seen:
                duplicates += 1
            elif s >= count:
                beyond += 1
            else:
                seen.add(s)
        delivered += len(seen)
        offsets = [a.stamp_ns - s * gap_ns for a, s in zip(rows, slots, strict=True)]
        mid = statistics.median(offsets)
        errors.extend(int(abs(o - mid)) for o in offsets)
    p = percentiles_us(errors, (50, 99))
    return {"streams_seen": len(by_port), "delivered": delivered, "duplicates": duplicates,
            "reordered": reordered, "beyond": beyond, "err_p50_us": p["p50"],
            "err_p99_us": p["p99"], "err_max_us": p["max"]}


# --------------------------------------------------------------------------
# The asyncio peers (child processes: common.Child)
# --------------------------------------------------------------------------

class _Count(asyncio.DatagramProtocol):
    def __init__(self, total: list[int]) -> None:
        self.total = total

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.total[0] += 1


async def _send_streams(dest: tuple[str, int], n: int, gap_ns: int, count: int, size: int,
                        fmt: str, ready: Callable[..., None]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    transports = [(await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                       remote_addr=dest))[0]
                  for _ in range(n)]
    ready()
    start = time.monotonic_ns() + 50_000_000
    sent = [0]

    async def stream(i: int, t: asyncio.DatagramTransport) -> None:
        for k in range(count):
            delay = (start + k * gap_ns + i * gap_ns // n - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            t.sendto(packet(fmt, i, k, size))
            sent[0] += 1

    cpu0 = time.process_time()
    await asyncio.gather(*(stream(i, t) for i, t in enumerate(transports)))
    cpu = time.process_time() - cpu0
    for t in transports:
        t.close()
    return {"sent": sent[0], "cpu_s": cpu}


def asyncio_sender(dest: tuple[str, int], n: int, gap_ns: int, count: int, size: int,
                   fmt: str, ready: Callable[..., None]) -> dict[str, Any]:
    """N streams from one asyncio loop: a coroutine each, ``asyncio.sleep`` to each due
    time (as the C sender's schedule), then ``sendto``; returns sent and its CPU."""
    raise_nofile()
    return asyncio.run(_send_streams(dest, n, gap_ns, count, size, fmt, ready))


async def _receive_streams(n: int, expected: int, timeout_s: float,
                           ready: Callable[..., None]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    total = [0]
    ends = [await loop.create_datagram_endpoint(lambda: _Count(total),
                                                local_addr=("127.0.0.1", 0))
            for _ in range(n)]
    ready([t.get_extra_info("sockname")[:2] for t, _ in ends])
    cpu0 = time.process_time()
    deadline = time.monotonic() + timeout_s
    while total[0] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu0
    for t, _ in ends:
        t.close()
    return {"received": total[0], "cpu_s": cpu}


def asyncio_receiver(n: int, expected: int, timeout_s: float,
                     ready: Callable[..., None]) -> dict[str, Any]:
    """N bound sockets on one asyncio loop, counting datagrams until ``expected`` came
    or ``timeout_s`` passed; ready(addresses); returns received and its CPU."""
    raise_nofile()
    return asyncio.run(_receive_streams(n, expected, timeout_s, ready))


__all__ = ["SEQ", "asyncio_receiver", "asyncio_sender", "packet", "raise_nofile",
           "stream_figures"]
