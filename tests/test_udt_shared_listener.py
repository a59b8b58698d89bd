"""Any process may accept on a listening UDT socket of a standalone pool.

Program A listens on a port of a standalone pool; program B (this test) binds a
socket to the same port (the pool's channel for it is shared, not opened twice),
listens (it becomes a second handle on A's listener) and accepts a connection a
client makes to that port, then moves data on it.  A's listener lives on after B
closes its handle."""
from __future__ import annotations

import socket
import subprocess
import sys

import rtudp.udt.udt4 as udt4
from test_pool_client import standalone  # noqa: F401  (the fixture)

PROGRAM_A = r"""
import socket, sys
import rtudp.udt.udt4 as udt4
udt4.startup(sys.argv[1])
srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
udt4.bind(srv, "127.0.0.1", 0)
udt4.listen(srv, 8)
print(udt4.getsockname(srv)[1], flush=True)
sys.stdin.readline()  # until the test is done
print(udt4.getsockstate(srv), flush=True)
udt4.cleanup()
"""


def test_another_process_accepts_on_a_listener(standalone) -> None:  # noqa: F811
    pool, _proc = standalone
    a = subprocess.Popen([sys.executable, "-c", PROGRAM_A, pool], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        port = int(a.stdout.readline())
        udt4.startup(pool)
        try:
            srv = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
            udt4.bind(srv, "127.0.0.1", port)       # A's port: its channel, shared
            udt4.listen(srv, 8)                      # A's listener, a second handle
            assert udt4.getsockstate(srv) == udt4.LISTENING
            cli = udt4.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
            udt4.connect(cli, "127.0.0.1", port)
            conn, (host, _port) = udt4.accept(srv)   # this process takes it
            assert host == "127.0.0.1"
            data = bytes(range(256)) * 400
            assert udt4.send(cli, data) == len(data)
            got = b""
            while len(got) < len(data):
                got += udt4.recv(conn, 65536)
            assert got == data
            udt4.close(conn)
            udt4.close(srv)                          # our handle only
        finally:
            udt4.cleanup()
        a.stdin.write("done\n")
        a.stdin.flush()
        # A's listener was not closed by B's close
        assert int(a.stdout.readline()) == udt4.LISTENING
        assert a.wait(30) == 0
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
