"""The ordinary neighbour of ``rtudp bench scale --observer python``: a plain Python
process, SCHED_OTHER, reading every datagram from one socket with its kernel arrival
stamp, as a recorder, an analyser or the user's own receiver does.  Its socket buffer
is the largest the kernel grants an ordinary program (``net.core.rmem_max``; no
SO_RCVBUFFORCE), so a reader starved of CPU loses datagrams as such a program would.

It speaks the C observer's protocol (``scale_peer.c observe``): ``python -m
rtudp.tools.bench.scale_reader OUT`` prints ``port P``, writes one record a datagram
to OUT (``scale_peer.RECORD``: source port, length, first 4 bytes, CLOCK_REALTIME
ns), and when its stdin closes reads what is left and prints ``done received=N
unstamped=M dropped=D`` (D: what the kernel dropped for a full buffer, SO_RXQ_OVFL).
"""
from __future__ import annotations

import select
import socket
import struct
import sys

from .scale_peer import RECORD

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
_STAMP = struct.Struct("qq")
_DROPS = struct.Struct("I")
RMEM_MAX = "/proc/sys/net/core/rmem_max"


def _largest_buffer() -> int:
    try:
        with open(RMEM_MAX) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 8 << 20


def _take(sock: socket.socket, out: list[bytes]) -> tuple[int, int, int]:
    """Every datagram waiting now: (received, unstamped, dropped so far)."""
    got = unstamped = dropped = 0
    while True:
        try:
            data, anc, _flags, src = sock.recvmsg(2048, 256, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return got, unstamped, dropped
        stamp = -1
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = _STAMP.unpack_from(value)
                stamp = sec * 1_000_000_000 + nsec
            elif level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL:
                dropped = _DROPS.unpack_from(value)[0]
        unstamped += stamp < 0
        out.append(RECORD.pack(src[1], len(data), data[:4].ljust(4, b"\0"), stamp))
        got += 1


def main(path: str) -> int:
    """Read until stdin closes; the records to ``path``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _largest_buffer())
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
    print(f"port {sock.getsockname()[1]}", flush=True)
    records: list[bytes] = []
    received = unstamped = dropped = 0
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(sys.stdin, select.POLLIN)
    with open(path, "wb") as out:
        while True:
            events = dict(poller.poll(100))
            if sock.fileno() in events:
                n, u, d = _take(sock, records)
                received, unstamped, dropped = received + n, unstamped + u, max(dropped, d)
                if len(records) > 4096:
                    out.write(b"".join(records))
                    records.clear()
            if sys.stdin.fileno() in events and not sys.stdin.buffer.read1(4096):
                break
        n, u, d = _take(sock, records)
        received, unstamped, dropped = received + n, unstamped + u, max(dropped, d)
        out.write(b"".join(records))
    print(f"done received={received} unstamped={unstamped} dropped={dropped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
