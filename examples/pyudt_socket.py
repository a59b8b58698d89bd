"""PyUDT's ``pyudt`` sockets on rtudp: ``UdtSocket`` behaves as Python's socket, and
``Epoll`` waits on UDT sockets.  A client sends a request; the server answers it.

    python examples/pyudt_socket.py

``from udt4 import pyudt`` becomes ``from rtudp.compat.udt4 import pyudt``.
"""
import threading

import rtudp.compat.udt4 as udt4
from rtudp.compat.udt4 import pyudt


def serve(server: pyudt.UdtSocket) -> None:
    conn, peer = server.accept()
    with conn:
        epoll = pyudt.Epoll()
        epoll.add_usock(conn, udt4.UDT_EPOLL_IN)
        readable, _, _, _ = epoll.wait(5.0)
        assert readable, "no request within 5 s"
        request = conn.recv(1024)
        conn.sendall(b"answer to " + request)


with pyudt.UdtSocket() as server:
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5.0)
    address = server.getsockname()
    thread = threading.Thread(target=serve, args=(server,))
    thread.start()
    with pyudt.UdtSocket() as client:
        client.settimeout(5.0)
        client.connect(address)
        client.sendall(b"question")
        answer = client.recv(1024)
        print(f"client got {answer!r} from {address[0]}:{address[1]}")
    thread.join()
if answer != b"answer to question":
    raise SystemExit("the server did not answer")
