"""Each newer kernel feature rtudp uses has a fallback, taken and said once.

A kernel without pidfd_getfd, UDP_SEGMENT, UDP_GRO or epoll_pwait2 (csrc/compat.h,
rtudp.workers.kernel_features) must still run every channel: this kernel has them
all, so RTUDP_FORCE_FALLBACK makes the engine take each fallback as an older kernel
would, and each test checks both that traffic still arrives whole and in order and
that the fallback path (not the feature) carried it. The wheels' smoke run
(packaging/test-wheels) includes this file.
"""
from __future__ import annotations

import os
import socket
import struct
import time
import warnings

import pytest

import rtudp
from conftest import new_shm_name
from fake_worker import real_worker_built
from rtudp.workers import kernel_features

pytestmark = pytest.mark.skipif(
    not real_worker_built(), reason="the fallbacks are the C worker's: rtudp-worker is not built")

SOL_UDP, UDP_GRO = 17, 104


def _pool(monkeypatch: pytest.MonkeyPatch, force: str) -> tuple[rtudp.Pool, list[str]]:
    """A started pool whose engine takes the fallbacks named in ``force``, and the
    KernelFallbackWarning messages its start gave."""
    monkeypatch.setenv("RTUDP_FORCE_FALLBACK", force)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pool = rtudp.Pool(new_shm_name("fb").replace(".", "_")[:30]).start()
    return pool, [str(w.message) for w in caught if w.category is rtudp.KernelFallbackWarning]


def _exchange(a: rtudp.Channel, b: rtudp.Channel, n: int = 50) -> None:
    """n datagrams sent one by one from b arrive at a in order and whole."""
    sent = [struct.pack("<I", i) + b"x" * 60 for i in range(n)]
    for d in sent:
        b.send(d)
    assert [a.recv(timeout=5.0).data for _ in range(n)] == sent


def test_forcing_names_are_checked_and_each_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTUDP_FORCE_FALLBACK", "udp_gro,nonesuch")
    with pytest.raises(ValueError, match="'nonesuch'"):
        kernel_features.missing()
    monkeypatch.setenv("RTUDP_FORCE_FALLBACK", ",".join(kernel_features.FALLBACKS))
    assert kernel_features.missing() == {n: "RTUDP_FORCE_FALLBACK"
                                         for n in kernel_features.FALLBACKS}


def test_every_fallback_at_once_warns_once_naming_each(monkeypatch: pytest.MonkeyPatch) -> None:
    pool, msgs = _pool(monkeypatch, ",".join(kernel_features.FALLBACKS))
    with pool:
        assert len(msgs) == 1, msgs
        for name, instead in kernel_features.FALLBACKS.items():
            assert f"{name} unavailable (RTUDP_FORCE_FALLBACK): {instead}" in msgs[0]
        a = pool.open_channel("a", local=("127.0.0.1", 0), cpu=pool.cpus[0])
        b = pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local, cpu=pool.cpus[-1])
        _exchange(a, b)


def test_pidfd_getfd_fallback_keeps_every_packet_on_the_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pool, msgs = _pool(monkeypatch, "pidfd_getfd")
    with pool:
        assert len(msgs) == 1 and "pidfd_getfd unavailable" in msgs[0]
        a = pool.open_channel("a", local=("127.0.0.1", 0))
        b = pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
        assert not b.direct_send and not a.direct_recv
        offs = [a.direct_recv_off]
        if "cannot key TX stamps" not in b.direct_send_off:  # off already, for that
            offs.append(b.direct_send_off)
        for off in offs:
            assert "pidfd_getfd" in off and os.strerror(38) in off, off
        _exchange(a, b)
        assert a.stats()["rx_direct"] == 0


def _gro_on(pool: rtudp.Pool, ch: rtudp.Channel) -> int:
    """UDP_GRO as the channel's socket has it (the supervisor's descriptor, shared with
    the worker, which sets the option)."""
    fd = ch._seg.config()["socket_fd"]
    with socket.socket(fileno=os.dup(fd)) as s:
        return s.getsockopt(SOL_UDP, UDP_GRO)


@pytest.mark.parametrize("force", ["", "udp_gro"])
def test_udp_gro_fallback_leaves_the_option_off(monkeypatch: pytest.MonkeyPatch,
                                               force: str) -> None:
    """Without the fallback the worker turns UDP_GRO on (the control); with it, off,
    and a burst still arrives datagram by datagram, in order."""
    pool, msgs = _pool(monkeypatch, force)
    with pool:
        a = pool.open_channel("a", local=("127.0.0.1", 0))
        b = pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
        _exchange(a, b)
        assert _gro_on(pool, a) == (0 if force else 1)
        assert any("udp_gro" in m for m in msgs) == bool(force)


@pytest.mark.parametrize("force", ["", "udp_gro"])
def test_a_receiving_socket_coalesces_before_its_worker_has_it(
        monkeypatch: pytest.MonkeyPatch, force: str) -> None:
    """A reader that attaches before the worker has the channel (a handle made while
    the worker sets the channel up, or another process quick to attach) sizes its own
    receives for what the socket coalesces (direct_recv.c): the supervisor binds it
    with UDP_GRO as the worker leaves it, off with the fallback."""
    from rtudp.shmring._native import lib
    from rtudp.workers.sockets import bind_socket
    monkeypatch.setenv("RTUDP_FORCE_FALLBACK", force)
    bound = bind_socket("c", ("127.0.0.1", 0), None, lib.RTUDP_DIR_RECV, 16, 256)
    try:
        assert bound.sock.getsockopt(SOL_UDP, UDP_GRO) == (0 if force else 1)
    finally:
        bound.close()


def _sizes_seen_by_a_gro_socket(pool: rtudp.Pool, n: int) -> list[int]:
    """Send n 100-byte datagrams due at once from a channel to a plain socket with
    UDP_GRO on; the sizes of its receives (a GSO send can arrive as one)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sink:
        sink.bind(("127.0.0.1", 0))
        sink.setsockopt(SOL_UDP, UDP_GRO, 1)
        sink.settimeout(5.0)
        tx = pool.open_channel("gso", direction=0, remote=sink.getsockname())
        tx.send_many([bytes([i]) * 100 for i in range(n)], at_ns=time.monotonic_ns() + 20_000_000)
        sizes, total = [], 0
        while total < n * 100:
            data = sink.recv(65536)
            sizes.append(len(data))
            total += len(data)
        return sizes


@pytest.mark.parametrize("force", ["", "udp_segment"])
def test_udp_segment_fallback_sends_each_datagram_alone(monkeypatch: pytest.MonkeyPatch,
                                                        force: str) -> None:
    """A batch due at once leaves as one GSO send (the control: a GRO socket gets it in
    fewer receives than datagrams); with the fallback, as one send per datagram."""
    pool, msgs = _pool(monkeypatch, force)
    with pool:
        sizes = _sizes_seen_by_a_gro_socket(pool, 20)
        assert sum(sizes) == 2000
        if force:
            assert sizes == [100] * 20 and any("udp_segment" in m for m in msgs)
        else:
            assert len(sizes) < 20, sizes


def test_epoll_pwait2_fallback_receives_and_says_so_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's RX thread waits with epoll_pwait (milliseconds) and its log says
    so once, however many waits it makes."""
    pool, msgs = _pool(monkeypatch, "epoll_pwait2")
    with pool:
        assert len(msgs) == 1 and "epoll_pwait2 unavailable" in msgs[0]
        a = pool.open_channel("a", local=("127.0.0.1", 0), cpu=pool.cpus[0])
        b = pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local, cpu=pool.cpus[0])
        a.direct_recv = False
        b.direct_recv = False
        for _ in range(3):  # waits in between: the RX thread parks and wakes again
            _exchange(a, b, 10)
            time.sleep(0.05)
        note = "rtudp: fallback: epoll_pwait2 unavailable"
        outs = {w.cpu: w.spawned.output_text() for w in pool._watcher.workers
                if w.spawned is not None}
        assert outs[pool.cpus[0]].count(note) == 1, outs  # its RX thread waited
        assert all(o.count(note) <= 1 for o in outs.values()), outs


@pytest.mark.parametrize("force", ["", "so_timestamping"])
def test_so_timestamping_fallback_times_packets_by_the_clock(monkeypatch: pytest.MonkeyPatch,
                                                             force: str) -> None:
    """Without kernel stamps (an emulator, a sandbox) packets still flow, each with an
    arrival time, and none is counted kernel-stamped; the control is stamped."""
    pool, msgs = _pool(monkeypatch, force)
    with pool:
        a = pool.open_channel("a", local=("127.0.0.1", 0))
        b = pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local)
        a.direct_recv = False
        b.direct_send = False
        t0 = time.monotonic_ns()
        sent = [struct.pack("<I", i) for i in range(20)]
        for d in sent:
            b.send(d, at_ns=time.monotonic_ns() + 1_000_000)
        got = [a.recv(timeout=5.0) for _ in sent]
        assert [p.data for p in got] == sent and all(p.rx_ns >= t0 for p in got)
        from waiting import wait_for
        wait_for(lambda: b.stats()["tx_packets"] >= len(sent))
        # a send counts as kernel-stamped once its TX stamp is read, a little later
        wait_for(lambda: b.lateness().count >= len(sent))
        stamped = b.stats()["tx_kernel_stamped"]
        without = bool(force) or "so_timestamping" in kernel_features.missing()  # qemu-user
        assert (stamped == 0) if without else (stamped > 0), b.stats()
        assert any("so_timestamping" in m for m in msgs) == without
