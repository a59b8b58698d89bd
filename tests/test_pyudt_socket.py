"""PyUDT's own socket test, ported to Python 3 and ``bytes``, run against rtudp.udt.

Source: PyUDT by Christopher J. Hanks, https://github.com/cjhanks/PyUDT,
``test/test_udt4/test_socket.py`` (commit 7c444ea).  PyUDT's setup.py gives its licence
as GPLv3 (its package docstring says BSD); this file is not a copy of it: the test is
rewritten here, under rtudp's MIT licence, keeping its two cases, their names, their
exchange and what each assertion checks.  In both, a server thread binds, listens and
accepts while the main thread connects, and the two sides take turns over three rounds,
``'a' * 10``, ``'b' * 100``, ``'c' * 1000``: the server sends in rounds 0 and 2 and
receives in round 1, the client the other way round; every send must report the whole
length and every receive must return exactly what was sent.

What the port changes, and why:
- ``str`` buffers are ``bytes`` (PyUDT on Python 2 sent and returned text);
- ``assertEquals`` (gone in Python 3.12) is ``assertEqual``;
- the fixed ports 8001 and 8002 are free ports chosen at run time (tests run in
  parallel here);
- a failed assertion in the server thread fails the test (the original's were lost
  with its thread), and the thread is joined;
- sockets are closed and UDT started on the test's own rtudp pool (the ``udt`` fixture).
"""
from __future__ import annotations

import socket as socklib
from threading import Thread
from typing import Any, Callable
from unittest import TestCase

import pytest

import rtudp.udt.udt4 as udt
from ports import free_ports
from udt_helpers import udt as udt_fixture  # noqa: F401  (the fixture, under this name)

#: PyUDT's rounds: (character, power of ten)
ROUNDS = [(b"a", 1), (b"b", 2), (b"c", 3)]


class _Exchange(TestCase):
    """What SockTest and DgramTest share: PyUDT wrote the same test twice, once with
    send/recv on SOCK_STREAM and once with sendmsg/recvmsg on SOCK_DGRAM."""

    __test__ = False   # (the two below are the tests)
    sock_type = socklib.SOCK_STREAM
    send: Callable[..., int] = staticmethod(udt.send)
    recv: Callable[..., bytes] = staticmethod(udt.recv)

    def setUp(self) -> None:
        self.sender = udt.socket(socklib.AF_INET, self.sock_type, socklib.AI_PASSIVE)
        self.recevr = udt.socket(socklib.AF_INET, self.sock_type, socklib.AI_PASSIVE)
        self.port = free_ports(1)[0]
        self.server_errors: list[BaseException] = []
        self.accepted: Any = None

    def tearDown(self) -> None:
        for s in (self.recevr, self.sender, self.accepted):
            if s is not None:
                udt.close(s)

    def runServer(self) -> None:  # noqa: N802  (PyUDT's name)
        try:
            udt.bind(self.sender, "127.0.0.1", self.port)
            udt.listen(self.sender, 10)

            client, host = udt.accept(self.sender)
            self.accepted = client

            for k, i in enumerate(ROUNDS):
                buf = i[0] * (10 ** i[1])

                if k % 2 == 0:
                    self.assertEqual(type(self).send(client, buf, len(buf)), len(buf))
                else:
                    self.assertEqual(type(self).recv(client, len(buf)), buf)
        except BaseException as e:  # the main thread reports it
            self.server_errors.append(e)

    def exchange(self) -> None:
        """PyUDT's runTest body."""
        server = Thread(target=self.runServer)
        server.start()

        udt.connect(self.recevr, "127.0.0.1", self.port)

        for k, i in enumerate(ROUNDS):
            buf = i[0] * (10 ** i[1])

            if k % 2 != 0:
                self.assertEqual(type(self).send(self.recevr, buf, len(buf)), len(buf))
            else:
                self.assertEqual(type(self).recv(self.recevr, len(buf)), buf)

        server.join(30)
        self.assertFalse(server.is_alive(), "the server thread did not finish")
        if self.server_errors:
            raise self.server_errors[0]


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.usefixtures("udt_fixture")
class SockTest(_Exchange):
    """PyUDT's SockTest: SOCK_STREAM, send/recv."""

    __test__ = True

    def runTest(self) -> None:  # noqa: N802  (PyUDT's name)
        self.exchange()


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.usefixtures("udt_fixture")
class DgramTest(_Exchange):
    """PyUDT's DgramTest: SOCK_DGRAM, sendmsg/recvmsg."""

    __test__ = True

    sock_type = socklib.SOCK_DGRAM
    send = staticmethod(udt.sendmsg)
    recv = staticmethod(udt.recvmsg)

    def runTest(self) -> None:  # noqa: N802  (PyUDT's name)
        self.exchange()

