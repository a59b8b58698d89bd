"""Free UDP ports on loopback for tests that must name both ends before opening them."""
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
