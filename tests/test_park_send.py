"""The parking C sender of ``rtudp bench netflux`` (``rtudp_bench_park_send``): it
sends every datagram of the schedule, in order, not before its slot, and sleeps
between them instead of holding its CPU; bad arguments are refused."""
from __future__ import annotations

import resource
import socket
import struct
import time

import pytest

from rtudp.tools.bench._native import ffi, lib

GAP_NS = 5_000_000
N = 40                     # 0.2 s of 5 ms slots
SPIN_NS = 200_000
SIZE = 22


def _pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    return tx, rx


def test_sends_each_slot_in_order_and_sleeps_between() -> None:
    tx, rx = _pair()
    try:
        late = ffi.new("int64_t[]", N)
        start = time.monotonic_ns() + 20_000_000
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        wall0 = time.monotonic_ns()
        assert lib.rtudp_bench_park_send(tx.fileno(), N, SIZE, start, GAP_NS, SPIN_NS,
                                         late) == N
        wall = time.monotonic_ns() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        rx.settimeout(1.0)
        got = [struct.unpack_from("<qq", rx.recv(2048)) for _ in range(N)]
    finally:
        tx.close()
        rx.close()
    assert [i for i, _ in got] == list(range(N))
    assert [d for _, d in got] == [start + i * GAP_NS for i in range(N)]
    assert all(late[i] >= 0 for i in range(N)), "a datagram left before its slot"
    # spinning throughout would take the whole wall time in CPU; parking takes the
    # spin windows (200 µs of each 5 ms: 4 %) plus wake-ups.  Half is far from both.
    cpu_ns = ((cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)) * 1e9
    assert cpu_ns < 0.5 * wall, (cpu_ns, wall)


def test_without_sleeps_it_is_the_spinning_sender() -> None:
    """spin_ns >= the gap: it never parks, it spins from slot to slot.  Counted as the
    thread's voluntary context switches (a park is one; being preempted is not), not
    as its share of the CPU, which a busy loop beside it halves."""
    tx, rx = _pair()
    try:
        late = ffi.new("int64_t[]", 10)
        start = time.monotonic_ns() + 5_000_000
        parks0 = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw
        assert lib.rtudp_bench_park_send(tx.fileno(), 10, SIZE, start, 2_000_000,
                                         2_000_000, late) == 10
        parks = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw - parks0
    finally:
        tx.close()
        rx.close()
    assert all(late[i] >= 0 for i in range(10)), "a datagram left before its slot"
    # a parking sender sleeps once a slot (9 gaps here)
    assert parks == 0, f"{parks} voluntary context switches while it should spin"


@pytest.mark.parametrize("fd, size, gap, spin", [
    (-1, SIZE, GAP_NS, SPIN_NS),      # no socket
    (0, 15, GAP_NS, SPIN_NS),         # shorter than the (index, deadline) header
    (0, 65508, GAP_NS, SPIN_NS),      # longer than a UDP datagram
    (0, SIZE, -1, SPIN_NS),           # a negative gap
    (0, SIZE, GAP_NS, -1),            # a negative spin window
])
def test_bad_arguments_are_refused(fd: int, size: int, gap: int, spin: int) -> None:
    late = ffi.new("int64_t[]", 1)
    assert lib.rtudp_bench_park_send(fd, 1, size, time.monotonic_ns(), gap, spin,
                                     late) == -22  # -EINVAL, nothing sent
