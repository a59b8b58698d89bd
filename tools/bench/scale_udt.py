"""``rtudp bench scale``'s UDT case: N concurrent UDT connections on one pool, each
moving a stream for the same time; whether they share fairly and none starves.

The server is one listener on a udt channel (its accepted sockets share that channel);
the N clients share a second udt channel (bound to one port), each sending 64 KiB
blocks from a thread of its own for ``seconds``, the server reading each connection in
a thread of its own.  Both channels hold N + 1 sockets of BUFFER_PACKETS packets.
Figures: connections served (none starved: each got at least STARVED_SHARE of the mean),
the per-connection goodput (min, mean, max) and Jain's fairness index, CPU (the
workers + this process) per second and per 1,000 data packets, connect time and memory
per connection.
"""
from __future__ import annotations

import os
import resource
import socket
import threading
import time
from typing import Any

from .common import bench_pool, proc_cpu_s
from .scale_cases import locked_bytes, mem_available, memory_short, shm_bytes

BUFFER_PACKETS = 32
BLOCK = 1 << 16
PAYLOAD = 1456           # a UDT data packet's payload (MSS 1500)
STARVED_SHARE = 0.1
MAX_N = 1000             # a thread a connection at each end


def _own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def fairness(got: list[int]) -> dict[str, Any]:
    """Goodput spread of the connections' byte counts: served (not starved), Jain's index."""
    n = len(got)
    mean = sum(got) / n if n else 0.0
    squares = sum(g * g for g in got)
    return {"served": sum(g > 0 and g >= STARVED_SHARE * mean for g in got),
            "starved": sum(g < STARVED_SHARE * mean or g == 0 for g in got),
            "jain": (sum(got) ** 2) / (n * squares) if squares else None,
            "bytes_min": min(got, default=0), "bytes_mean": mean,
            "bytes_max": max(got, default=0)}


def _receive(udt4: Any, srv: Any, got: list[int], i: int) -> None:
    conn, _ = udt4.accept(srv)
    try:
        while True:
            data = udt4.recv(conn, BLOCK)
            if not data:
                break
            got[i] += len(data)
    except udt4.UDTException:
        pass
    finally:
        udt4.close(conn)


def _send(udt4: Any, sock: Any, go: threading.Event, end: list[float]) -> None:
    block = bytes(BLOCK)
    go.wait()
    try:
        while time.monotonic() < end[0]:
            udt4.send(sock, block)
    except udt4.UDTException:
        pass
    finally:
        udt4.close(sock)


def _connect(udt4: Any, n: int, server_port: int) -> tuple[list[Any], str | None]:
    clients: list[Any] = []
    port = 0
    at_start = mem_available()
    for i in range(n):
        short = memory_short(at_start) if i % 32 == 0 else None
        if short is not None:
            return clients, f"connection {i + 1} of {n} not opened: {short}"
        try:
            s = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
            udt4.bind(s, "127.0.0.1", port)
            port = udt4.getsockname(s)[1]
            udt4.connect(s, "127.0.0.1", server_port)
        except (udt4.UDTException, OSError, ValueError) as exc:
            return clients, f"connection {i + 1} of {n} refused: {exc}"
        clients.append(s)
    return clients, None


def run_udt(n: int, seconds: float) -> dict[str, Any]:
    """N connections for ``seconds`` on a fresh default pool."""
    import rtudp.udt.udt4 as udt4

    entry: dict[str, Any] = {"channels": n, "expected": n}
    if n > MAX_N:
        entry.update(opened=0, refused=f"not run: the UDT case runs up to {MAX_N:,} "
                                        "connections (a thread each at both ends)")
        return entry
    with bench_pool(f"scudt{n}") as (pool, warns):
        pids = [w["pid"] for w in pool.workers()]
        udt4.startup(pool=pool, max_sockets=n + 1, buffer_packets=BUFFER_PACKETS)
        try:
            mem0 = shm_bytes(pool.name), locked_bytes([*pids, os.getpid()])
            t0 = time.perf_counter()
            srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
            udt4.bind(srv, "127.0.0.1", 0)
            udt4.listen(srv, n)
            got = [0] * n
            readers = [threading.Thread(target=_receive, args=(udt4, srv, got, i), daemon=True)
                       for i in range(n)]
            for t in readers:
                t.start()
            clients, refused = _connect(udt4, n, udt4.getsockname(srv)[1])
            k = max(1, len(clients))
            mem1 = shm_bytes(pool.name), locked_bytes([*pids, os.getpid()])
            entry.update(opened=len(clients), refused=refused, pool_warnings=warns,
                         open_ms_per_chan=(time.perf_counter() - t0) * 1e3 / k,
                         shm_per_chan=(mem1[0] - mem0[0]) / k,
                         locked_per_chan=(mem1[1] - mem0[1]) / k)
            # The senders start together: Thread.start() waits for the new thread to
            # take the GIL, which the running senders hold most of the time, so
            # threads started one by one into a running transfer would start seconds
            # apart and the last ones find the time over before they sent anything.
            go, end = threading.Event(), [0.0]
            senders = [threading.Thread(target=_send, args=(udt4, s, go, end), daemon=True)
                       for s in clients]
            for t in senders:
                t.start()
            cpu0, w0 = _own_cpu() + sum(map(proc_cpu_s, pids)), time.monotonic()
            end[0] = w0 + seconds
            go.set()
            for t in senders:
                t.join(seconds + 30)
            for t in readers[:len(clients)]:
                t.join(30)
            wall = time.monotonic() - w0
            cpu = _own_cpu() + sum(map(proc_cpu_s, pids)) - cpu0
            udt4.close(srv)
        finally:
            udt4.cleanup()
    if refused is None:
        f = fairness(got)
        packets = sum(got) / PAYLOAD
        entry.update(f, delivered=f["served"], mbit_s_total=sum(got) * 8 / wall / 1e6,
                     cpu_s_per_s=cpu / wall,
                     cpu_ms_per_1k=cpu / packets * 1e6 if packets else None)
    return entry


__all__ = ["fairness", "run_udt"]
