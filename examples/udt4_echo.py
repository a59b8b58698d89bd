"""PyUDT's ``udt4`` module API on rtudp: a UDT stream server echoes what a client sends.
The server waits for data with ``UDTepoll``; the client checks the echo.

    python examples/udt4_echo.py

``import udt4`` becomes ``import rtudp.compat.udt4 as udt4``: the functions take a
``UDTSOCKET`` first, as UDT's C API, and buffers are ``bytes``.  The UDT protocol runs
in rtudp's workers (wire compatible with UDT4 peers).
"""
import socket
import threading

import rtudp.compat.udt4 as udt4

MESSAGES = [b"a" * 10, b"b" * 100, b"c" * 1000]


def recv_exactly(sock: udt4.UDTSOCKET, n: int) -> bytes:
    """``n`` bytes of the stream (UDT's recv may return fewer)."""
    out = b""
    while len(out) < n:
        out += udt4.recv(sock, n - len(out))
    return out


def serve(server: udt4.UDTSOCKET) -> None:
    conn, peer = udt4.accept(server)
    epoll = udt4.UDTepoll()
    epoll.add_usock(conn, udt4.UDT_EPOLL_IN)
    for msg in MESSAGES:
        readable, _, _, _ = epoll.wait(5000)   # ms
        assert conn in readable, "no data within 5 s"
        data = recv_exactly(conn, len(msg))
        udt4.send(conn, data, len(data))
    epoll.release()
    udt4.close(conn)


udt4.startup()
server = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
udt4.bind(server, "127.0.0.1", 0)
udt4.listen(server, 1)
host, port = udt4.getsockname(server)
thread = threading.Thread(target=serve, args=(server,))
thread.start()

client = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
udt4.setsockopt(client, udt4.UDT_RCVTIMEO, 5000)  # ms
udt4.connect(client, host, port)
try:
    for msg in MESSAGES:
        assert udt4.send(client, msg, len(msg)) == len(msg)
        echo = recv_exactly(client, len(msg))
        print(f"sent {len(msg)} bytes, echo {'matches' if echo == msg else 'DIFFERS'}")
finally:
    thread.join()
    udt4.close(client)
    udt4.close(server)
    udt4.cleanup()
