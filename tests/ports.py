"""UDP on loopback for tests: free ports, for tests that must name both ends before
opening them, and plain sockets for channels to send to."""
from __future__ import annotations

import socket


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
