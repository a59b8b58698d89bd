"""Stress invariants of ``udt`` channels (issue 41), under the stress harness's faults.

Between two rtudp.udt sockets on loopback, while the worker of one side or the other
is stopped for 20 ms (SIGSTOP, as a host stops a vCPU) several times in the middle
of the transfer, and every CPU runs a busy loop:

- a stream each way (both at once) arrives byte-exact and in order;
- messages (DGRAM, sent in order) arrive each once, whole, in the order sent;
- the connection survives: no break, no timeout, both sockets still connected and
  carrying data afterwards, ``udt_broken`` still 0.

Each test asserts guarantees, never timings: they must hold on a loaded 2-vCPU VM.
"""
from __future__ import annotations

import random
import socket
import threading
import time
from typing import Any, Callable

import pytest

import rtudp
import rtudp.udt.udt4 as udt4
from stress_harness import CpuHogs, rng, seed_note, stall_once
from udt_helpers import pair, pattern
from udt_helpers import udt  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.stress, pytest.mark.rtudp(rt_priority=0)]

STREAM, DGRAM = socket.SOCK_STREAM, socket.SOCK_DGRAM
STALL_S = 0.020
#: stalls per transfer, half of them on each side
STALLS = 8
#: a transfer that outlives this has hung (normally a few seconds under load)
HANG_S = 60.0


def channel(sock: Any) -> Any:
    """The udt channel (UDP port) a socket lives on."""
    return sock._sock.ch


class SideStaller:
    """Stops the worker serving one side's channel for :data:`STALL_S`, at moments the
    transfer chooses (:meth:`stall`), alternating sides in a seeded order so each side
    is stopped :data:`STALLS` / 2 times.  One stall at a time, in its own thread, so
    the transfer goes on while the worker is stopped."""

    def __init__(self, pool: rtudp.Pool, sides: dict[str, Any], rnd: random.Random) -> None:
        self.pool = pool
        self.sides = sides  # name -> socket
        self.order = [name for name in sides for _ in range(STALLS // len(sides))]
        rnd.shuffle(self.order)
        self.done: list[tuple[str, int]] = []
        self._thread: threading.Thread | None = None

    def pid(self, name: str) -> int:
        return int(self.pool.workers()[channel(self.sides[name]).worker]["pid"])

    def stall(self) -> None:
        """Start the next stall (after the previous one ended); no-op once all are done."""
        self.join()
        if len(self.done) == len(self.order):
            return
        name = self.order[len(self.done)]
        pid = self.pid(name)
        self.done.append((name, pid))
        thread = threading.Thread(target=stall_once, args=(pid, STALL_S), name="udt-stall",
                                  daemon=True)
        thread.start()
        self._thread = thread  # started first: the other side's sender may join it at once

    def join(self) -> None:
        """Wait for the stall under way, if any (both sides' senders may call it)."""
        thread = self._thread
        if thread is not None:
            thread.join()
            self._thread = None

    def summary(self) -> str:
        return ", ".join(f"{name} (pid {pid})" for name, pid in self.done)


def run_threads(*targets: Callable[[], None]) -> None:
    """Run each target in a thread; re-raise the first error; fail if one hangs."""
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # reported by the test's thread
                errors.append(exc)
        return run

    threads = [threading.Thread(target=guard(fn), daemon=True) for fn in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + HANG_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"transfer threads still running after {HANG_S} s: {stuck} {seed_note()}"


def check_survived(c: Any, conn: Any, kind: int) -> None:
    """Both sockets still connected, nothing counted broken, and the connection still
    carries data both ways."""
    for name, s in (("client", c), ("server", conn)):
        assert udt4.getsockstate(s) == udt4.CONNECTED, \
            f"{name} socket in state {udt4.getsockstate(s)} after the stalls {seed_note()}"
        st = channel(s).stats()
        assert st["udt_broken"] == 0, f"{name}'s channel counted a broken connection: {st}"
    for a, b, word in ((c, conn, b"after-the-stalls"), (conn, c, b"and-back")):
        if kind == STREAM:
            udt4.send(a, word)
            got = b""
            while len(got) < len(word):
                got += udt4.recv(b, len(word) - len(got))
        else:
            udt4.sendmsg(a, word, len(word), -1, True)
            got = udt4.recvmsg(b, 4096)
        assert got == word


def workers_note(pool: rtudp.Pool, c: Any, conn: Any) -> str:
    idx = {channel(c).worker, channel(conn).worker}
    return (f"client on worker {channel(c).worker}, server on worker {channel(conn).worker}"
            + (" (the same: each stall stops both sides)" if len(idx) == 1 else ""))


def first_difference(got: bytes, want: bytes) -> int | None:
    """Where ``got`` first differs from ``want`` (None: equal)."""
    if got == want:
        return None
    lo, hi = 0, min(len(got), len(want))
    while lo < hi:  # the longest equal prefix, by halves
        mid = (lo + hi + 1) // 2
        if got[:mid] == want[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def test_stream_byte_exact_across_worker_stalls(udt, rtudp_pool: rtudp.Pool) -> None:
    """16 MB each way at once, in 512 KB sends; after 8 of the client's, spread over
    the transfer, a 20 ms stop of one side's worker begins while the rest goes on.  Both streams
    byte-exact and in order; still connected."""
    srv, c, conn = pair(STREAM)
    rnd = rng("udt-stream")
    size, chunk = 16 << 20, 512 << 10
    up, down = pattern(size, seed=rnd.getrandbits(32)), pattern(size, seed=rnd.getrandbits(32))
    stalls = SideStaller(rtudp_pool, {"client": c, "server": conn}, rnd)
    got_up, got_down = bytearray(), bytearray()
    # the client's sends after which a stall starts: spread over the transfer, never last
    n_chunks = size // chunk
    at = {n_chunks * (k + 1) // (STALLS + 1) for k in range(STALLS)}

    def sender(sock: Any, data: bytes, stall: bool) -> Callable[[], None]:
        def send() -> None:
            view = memoryview(data)
            for i in range(n_chunks):
                part = view[i * chunk:(i + 1) * chunk]
                while part.nbytes:
                    part = part[udt4.send(sock, part):]
                if stall and i in at:
                    stalls.stall()
            stalls.join()
        return send

    def receiver(sock: Any, into: bytearray) -> Callable[[], None]:
        def recv() -> None:
            while len(into) < size:
                into.extend(udt4.recv(sock, min(1 << 20, size - len(into))))
        return recv

    try:
        with CpuHogs():
            run_threads(sender(c, up, True), sender(conn, down, False),
                        receiver(conn, got_up), receiver(c, got_down))
            assert len(stalls.done) == STALLS
            for way, got, want in (("client -> server", got_up, up),
                                   ("server -> client", got_down, down)):
                bad = first_difference(bytes(got), want)
                assert bad is None, (f"{way}: stream not exact: {len(got)} of {len(want)} "
                                     f"bytes, first difference at {bad} {seed_note()}")
            check_survived(c, conn, STREAM)
        info = udt4.perfmon(c)
        print(f"\nudt 2 x 16 MB exact across stalls of {stalls.summary()}; "
              f"{workers_note(rtudp_pool, c, conn)}; client retransmitted "
              f"{info.pktRetransTotal}")
    finally:
        for s in (c, conn, srv):
            udt4.close(s)


@pytest.mark.parametrize("inorder", [True, False], ids=["inorder", "any-order"])
def test_messages_across_worker_stalls(udt, rtudp_pool: rtudp.Pool, inorder: bool) -> None:
    """240 messages of 1 B .. 200 KB client -> server; after 8 of them, spread over
    the transfer, a 20 ms stop of one side's worker begins while the rest goes on.  Each message once, whole
    (sent with UDT's in-order bit: in the order sent); still connected."""
    srv, c, conn = pair(DGRAM)
    rnd = rng(f"udt-messages-{inorder}")
    sizes = [rnd.choice((1, 1456, 1457, rnd.randint(2, 200_000))) for _ in range(240)]
    msgs = [pattern(n, seed=rnd.getrandbits(32)) for n in sizes]
    stalls = SideStaller(rtudp_pool, {"client": c, "server": conn}, rnd)
    at = {len(msgs) * (k + 1) // (STALLS + 1) for k in range(STALLS)}
    got: list[bytes] = []

    def send() -> None:
        for i, m in enumerate(msgs):
            assert udt4.sendmsg(c, m, len(m), -1, inorder) == len(m)
            if i in at:
                stalls.stall()
        stalls.join()

    def recv() -> None:
        while len(got) < len(msgs):
            got.append(udt4.recvmsg(conn, 1 << 21))

    try:
        with CpuHogs():
            run_threads(send, recv)
            assert len(stalls.done) == STALLS
            # any-order: one may be read past a message still missing a packet
            assert sorted(got) == sorted(msgs), \
                f"{len(got)} messages, not each of the {len(msgs)} sent once {seed_note()}"
            if inorder:
                bad = next(i for i, (a, b) in enumerate(zip(got, msgs)) if a != b) \
                    if got != msgs else None
                assert bad is None, \
                    f"messages out of the order sent, first at position {bad} {seed_note()}"
            check_survived(c, conn, DGRAM)
        print(f"\nudt {len(msgs)} messages ({sum(sizes)} bytes, inorder={inorder}) across "
              f"stalls of {stalls.summary()}; {workers_note(rtudp_pool, c, conn)}")
    finally:
        for s in (c, conn, srv):
            udt4.close(s)
