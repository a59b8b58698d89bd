"""UDP on loopback for tests: free ports, for tests that must name both ends before
opening them, and plain sockets for channels to send to."""
from __future__ import annotations

import socket
import time


def free_ports(n: int) -> list[int]:
    """n UDP ports free on 127.0.0.1 right now (bound together, so distinct)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def loopback_sink(timeout: float | None = None, rcvbuf: int | None = None) -> socket.socket:
    """A plain UDP socket bound on 127.0.0.1 for a channel to send to (``rcvbuf``: the
    receive buffer it asks for; ``timeout``: its receive timeout)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    return s


def receive_up_to(sink: socket.socket, want: int, timeout_s: float = 20.0) -> list[bytes]:
    """Up to ``want`` datagrams from ``sink``, waiting at most ``timeout_s`` for them."""
    got: list[bytes] = []
    sink.settimeout(0.2)
    end = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < end:
        try:
            got.append(sink.recv(2048))
        except socket.timeout:
            pass
    return got
