"""``rtudp bench ring``: rtudp's shared-memory ring against the usual Python IPC.

Every throughput case moves 64-byte messages from a producer process to a
consumer process (multiprocessing "spawn" context).  Both wait on a start
barrier; the figure is messages / (last message received - barrier release),
measured with CLOCK_MONOTONIC, which all processes share.

Cases, in one run:

1. ``multiprocessing.Queue`` (put / get per message)
2. ``faster_fifo.Queue`` (put per message, get_many on the consumer), if installed
3. a pure-Python SPSC ring over ``multiprocessing.shared_memory`` (:class:`PyRing`),
   busy-spinning on both sides: the strongest pure-Python baseline
4. rtudp's MpscRing per call (try_put / try_get, spinning)
5. rtudp's MpscRing batched (put_many of 1000 / get_many(1000))
6. C to C through the same ring (``rtudp_bench_produce`` / ``rtudp_bench_consume``)

then the round-trip latency of a ping-pong through two rings: rtudp's blocking
``get(timeout=...)`` (spins briefly, then parks on a futex) vs the spinning
pure-Python ring.  Targets are reported as PASS/MISS, never asserted.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import itertools
import multiprocessing
import os
import platform
import struct
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing import shared_memory
from collections.abc import Callable, Iterator
from typing import Any

from .common import (CHILD_TIMEOUT_S, MSG_SIZE, Child, OthersMeter, add_common_arguments,
                           header, others_col, others_footer, percentiles_us, pool_prefix,
                           ratio, results, run_benchmark, say, target, target_row)

BATCH = 1000
RING_CAPACITY = 1 << 20
FULL_CASE_SECONDS = 2.0          # full mode sizes each run to about this long
FULL_RUNS = 3                    # full mode keeps the best of this many runs per case
SPIN_CHECK_MASK = (1 << 20) - 1  # spinners check their parent is alive this often

TARGET_CALL_VS_PYRING = 1.5
TARGET_BATCHED_MSG_S = 15e6
TARGET_LATENCY_P50_US = 5.0

FASTER_FIFO_MISSING = "faster-fifo: not installed (pip install 'rtudp[bench]')"

StartFn = Callable[[], int]
SideFn = Callable[[Any, int, StartFn], dict]


def _message() -> bytes:
    """The 64-byte message every Python producer sends."""
    return bytes(range(MSG_SIZE))


class _Spinner:
    """One turn of a spin loop a call: every SPIN_CHECK_MASK + 1 turns it checks that the
    benchmark process is still there, and leaves the loop if it went away."""

    def __init__(self) -> None:
        self.parent = os.getppid()
        self.spins = 0

    def __call__(self) -> None:
        self.spins += 1
        if not self.spins & SPIN_CHECK_MASK and os.getppid() != self.parent:
            raise SystemExit("bench: parent process gone")


# --------------------------------------------------------------------------
# The pure-Python baseline
# --------------------------------------------------------------------------

_PAD = 0xFFFFFFFF


class PyRing:
    """A single-producer single-consumer ring in pure Python over shared memory.

    The strongest pure-Python baseline we could write: no locks, no syscalls,
    both sides busy-spin.  Segment layout: ``head`` (u64, consumer-owned) at 0,
    ``capacity`` at 8, ``tail`` (u64, producer-owned) at 64, records from 128.
    A record is a u32 payload length, the payload, padded to 8 bytes; a length
    of 0xFFFFFFFF pads to the end of the buffer.  Each side caches the other's
    position and re-reads it only when it looks full/empty.

    Ordering relies on x86-64 total store order (payload stores land before the
    tail store): this is a benchmark baseline, not a portable queue.
    """

    HEADER = 128

    __slots__ = ("_shm", "_owner", "_ctl", "_data", "_words", "_cap", "_mask",
                 "_tail", "_head_seen", "_head", "_tail_seen", "_structs", "name")

    def __init__(self, shm: shared_memory.SharedMemory, owner: bool) -> None:
        self._shm = shm
        self._owner = owner
        self.name = shm.name
        buf = shm.buf
        if buf is None:
            raise ValueError(f"PyRing {shm.name!r}: segment is closed")
        self._ctl = buf[: self.HEADER].cast("Q")
        if owner:
            self._ctl[1] = shm.size - self.HEADER
        self._cap = self._ctl[1]
        if self._cap & (self._cap - 1) or self._cap + self.HEADER > shm.size:
            raise ValueError(f"PyRing {shm.name!r}: bad capacity {self._cap}")
        self._mask = self._cap - 1
        self._data = buf[self.HEADER : self.HEADER + self._cap]
        self._words = self._data.cast("I")
        self._tail = self._head_seen = self._ctl[8]
        self._head = self._tail_seen = self._ctl[0]
        self._structs: dict[int, struct.Struct] = {}

    @classmethod
    def create(cls, name: str, capacity: int) -> PyRing:
        """Create segment `name` holding a ring of `capacity` bytes (a power of two)."""
        if capacity < 1024 or capacity & (capacity - 1):
            raise ValueError(f"PyRing capacity must be a power of two >= 1024, not {capacity}")
        return cls(shared_memory.SharedMemory(name, create=True, size=cls.HEADER + capacity), True)

    @classmethod
    def attach(cls, name: str) -> PyRing:
        """Attach to the ring in segment `name` (created by another process)."""
        if sys.version_info >= (3, 13):  # the creator alone tracks and unlinks it
            shm = shared_memory.SharedMemory(name, track=False)  # type: ignore[call-arg]
        else:
            shm = shared_memory.SharedMemory(name)
        return cls(shm, False)

    def try_put(self, data: bytes) -> bool:
        """Append one record; False when the ring is full (producer side)."""
        n = len(data)
        rec = (n + 11) & ~7
        tail = self._tail
        idx = tail & self._mask
        room = self._cap - idx
        end = tail + rec if rec <= room else tail + room + rec
        if end - self._head_seen > self._cap:
            self._head_seen = self._ctl[0]
            if end - self._head_seen > self._cap:
                if rec > self._cap >> 2:
                    raise ValueError(f"PyRing record of {n} bytes > capacity/4")
                return False
        if rec > room:
            self._words[idx >> 2] = _PAD
            idx = 0
        packer = self._structs.get(n)
        if packer is None:
            packer = self._structs[n] = struct.Struct(f"<I{n}s")
        packer.pack_into(self._data, idx, n, data)
        self._tail = end
        self._ctl[8] = end
        return True

    def try_get(self) -> bytes | None:
        """Remove and return the oldest record, or None when empty (consumer side)."""
        head = self._head
        if head == self._tail_seen:
            self._tail_seen = self._ctl[8]
            if head == self._tail_seen:
                return None
        idx = head & self._mask
        n = self._words[idx >> 2]
        if n == _PAD:
            head += self._cap - idx
            idx = 0
            n = self._words[0]
        out = self._data[idx + 4 : idx + 4 + n].tobytes()
        head += (n + 11) & ~7
        self._head = head
        self._ctl[0] = head
        return out

    def close(self) -> None:
        """Release the views and the mapping; unlink too if this object created it."""
        for view in (self._words, self._data, self._ctl):
            view.release()
        self._shm.close()
        if self._owner:
            self._shm.unlink()


# --------------------------------------------------------------------------
# What runs in the child processes.  Each side function gets the endpoint spec
# made by the parent, the message count and `start` (wait on the barrier,
# return the monotonic time); it returns a dict for the parent.
# --------------------------------------------------------------------------

def _now() -> int:
    return time.monotonic_ns()


def _throughput(t0: int, t1: int, count: int) -> dict:
    return {"t0": t0, "t1": t1, "count": count}


def mpq_producer(q: Any, n: int, start: StartFn) -> dict:
    """multiprocessing.Queue: put per message."""
    msg, put = _message(), q.put
    t0 = start()
    for _ in range(n):
        put(msg)
    return _throughput(t0, _now(), n)


def mpq_consumer(q: Any, n: int, start: StartFn) -> dict:
    """multiprocessing.Queue: get per message."""
    get = q.get
    t0 = start()
    for _ in range(n):
        get()
    return _throughput(t0, _now(), n)


def ff_producer(q: Any, n: int, start: StartFn) -> dict:
    """faster-fifo: put per message (blocks while the queue is full)."""
    msg, put = _message(), q.put
    t0 = start()
    for _ in range(n):
        put(msg, timeout=CHILD_TIMEOUT_S)
    return _throughput(t0, _now(), n)


def ff_consumer(q: Any, n: int, start: StartFn) -> dict:
    """faster-fifo: get_many (whatever is there, up to BATCH) until n arrived."""
    get_many = q.get_many
    got = 0
    t0 = start()
    while got < n:
        got += len(get_many(timeout=CHILD_TIMEOUT_S, max_messages_to_get=min(BATCH, n - got)))
    return _throughput(t0, _now(), got)


def _spin_producer(ring: Any, n: int, start: StartFn) -> dict:
    """try_put per message, spinning while full (closes the ring)."""
    msg, spin = _message(), _Spinner()
    try:
        try_put = ring.try_put
        t0 = start()
        for _ in range(n):
            while not try_put(msg):
                spin()
        return _throughput(t0, _now(), n)
    finally:
        ring.close()


def _spin_consumer(ring: Any, n: int, start: StartFn) -> dict:
    """try_get per message, spinning while empty (closes the ring)."""
    spin, got = _Spinner(), 0
    try:
        try_get = ring.try_get
        t0 = start()
        while got < n:
            if try_get() is not None:
                got += 1
            else:
                spin()
        return _throughput(t0, _now(), got)
    finally:
        ring.close()


def pyring_producer(name: str, n: int, start: StartFn) -> dict:
    """Pure-Python ring: try_put per message, spinning while full."""
    return _spin_producer(PyRing.attach(name), n, start)


def pyring_consumer(name: str, n: int, start: StartFn) -> dict:
    """Pure-Python ring: try_get per message, spinning while empty."""
    return _spin_consumer(PyRing.attach(name), n, start)


def _attach_ours(name: str) -> Any:
    from rtudp.shmring import MpscRing

    return MpscRing.attach(name)


def ours_call_producer(name: str, n: int, start: StartFn) -> dict:
    """rtudp MpscRing: try_put per message, retrying while full."""
    return _spin_producer(_attach_ours(name), n, start)


def ours_call_consumer(name: str, n: int, start: StartFn) -> dict:
    """rtudp MpscRing: try_get per message, spinning while empty."""
    return _spin_consumer(_attach_ours(name), n, start)


def ours_batch_producer(name: str, n: int, start: StartFn) -> dict:
    """rtudp MpscRing: put_many of BATCH messages per call (waits for space)."""
    ring, msg = _attach_ours(name), _message()
    try:
        batch, put_many = [msg] * BATCH, ring.put_many
        t0 = start()
        sent = 0
        while sent < n:
            sent += put_many(batch if n - sent >= BATCH else batch[: n - sent],
                             timeout=CHILD_TIMEOUT_S)
        return _throughput(t0, _now(), sent)
    finally:
        ring.close()


def ours_batch_consumer(name: str, n: int, start: StartFn) -> dict:
    """rtudp MpscRing: get_many(BATCH) (waits for at least one) until n arrived."""
    ring, got = _attach_ours(name), 0
    try:
        get_many = ring.get_many
        t0 = start()
        while got < n:
            got += len(get_many(min(BATCH, n - got), timeout=CHILD_TIMEOUT_S))
        return _throughput(t0, _now(), got)
    finally:
        ring.close()


def _native() -> tuple[Any, Any]:
    """The benchmarks' C extension (its ffi and lib)."""
    from rtudp.tools.bench._native import ffi, lib

    return ffi, lib


def _c_loop(func: str, name: str, n: int, start: StartFn, *extra: Any) -> dict:
    """Run the C loop ``func`` of the native library over n messages of ring ``name``."""
    ring, (ffi, lib) = _attach_ours(name), _native()
    try:
        t0 = start()
        # the ring is rtudp.shmring's cdata: the C loop's extension sees it as opaque
        done = getattr(lib, func)(ffi.cast("struct rtudp_mpsc *", ring._ring), n, *extra)
        t1 = _now()
        if done != n:
            raise RuntimeError(f"{func} did {done} of {n} messages")
        return _throughput(t0, t1, done)
    finally:
        ring.close()


def c_producer(name: str, n: int, start: StartFn) -> dict:
    """C loop: rtudp_bench_produce (try_put, spinning) on the same ring."""
    return _c_loop("rtudp_bench_produce", name, n, start, MSG_SIZE)


def c_consumer(name: str, n: int, start: StartFn) -> dict:
    """C loop: rtudp_bench_consume (get_many in batches, spinning) on the same ring."""
    return _c_loop("rtudp_bench_consume", name, n, start)


def _latency(samples: list[int]) -> dict:
    """p50/p99/mean of round-trip samples (ns) in µs."""
    p = percentiles_us(samples, (50, 99))
    return {"p50_us": p["p50"], "p99_us": p["p99"], "mean_us": p["mean"],
            "round_trips": len(samples)}


def _warmup(n: int) -> int:
    return max(100, n // 10)


def _round_trips(n: int, start: StartFn, put: Callable[[bytes], Any],
                 get: Callable[[], bytes | None], on_empty: Callable[[], Any]) -> dict:
    """n timed round trips after the warm-up: put the message, get the reply
    (``on_empty()`` when ``get()`` found none yet, until there is one)."""
    msg, clock = _message(), time.perf_counter_ns
    samples = [0] * n
    warm = _warmup(n)
    start()
    for i in range(-warm, n):
        t = clock()
        put(msg)
        if get() is None:
            on_empty()
        if i >= 0:
            samples[i] = clock() - t
    return _latency(samples)


def ours_pinger(names: tuple[str, str], n: int, start: StartFn) -> dict:
    """Ping-pong, rtudp: put on ring a, blocking get(timeout) on ring b."""
    ping, pong = _attach_ours(names[0]), _attach_ours(names[1])
    try:  # get(10 s) waits for the reply: it never returns None
        return _round_trips(n, start, ping.put, functools.partial(pong.get, 10.0), _never)
    finally:
        ping.close()
        pong.close()


def _never() -> None:
    raise AssertionError("a blocking get returned nothing")


def ours_echo(names: tuple[str, str], n: int, start: StartFn) -> dict:
    """Ping-pong, rtudp: blocking get(timeout) on ring a, put back on ring b."""
    ping, pong = _attach_ours(names[0]), _attach_ours(names[1])
    try:
        get, put = ping.get, pong.put
        start()
        for _ in range(n + _warmup(n)):
            put(get(timeout=10.0))
        return {}
    finally:
        ping.close()
        pong.close()


def _spin_get(ring: PyRing, spin: _Spinner) -> bytes:
    """PyRing get: spin until a record arrives."""
    while (data := ring.try_get()) is None:
        spin()
    return data


def pyring_pinger(names: tuple[str, str], n: int, start: StartFn) -> dict:
    """Ping-pong, pure Python: try_put on ring a, spin on try_get of ring b."""
    ping, pong, spin = PyRing.attach(names[0]), PyRing.attach(names[1]), _Spinner()
    try:
        return _round_trips(n, start, ping.try_put, pong.try_get,
                            lambda: _spin_get(pong, spin))
    finally:
        ping.close()
        pong.close()


def pyring_echo(names: tuple[str, str], n: int, start: StartFn) -> dict:
    """Ping-pong, pure Python: spin on ring a, try_put the message back on ring b."""
    ping, pong, spin = PyRing.attach(names[0]), PyRing.attach(names[1]), _Spinner()
    try:
        start()
        for _ in range(n + _warmup(n)):
            pong.try_put(_spin_get(ping, spin))
        return {}
    finally:
        ping.close()
        pong.close()


def _side(side: SideFn, spec: Any, n: int, barrier: Any, _ready: Any) -> dict:
    """Child process entry (a :class:`Child`): run one side; if it fails, break the
    barrier so that the other side fails at once instead of waiting."""

    def start() -> int:
        barrier.wait(timeout=CHILD_TIMEOUT_S)
        return _now()

    try:
        return side(spec, n, start)
    except BaseException:
        barrier.abort()
        raise


# --------------------------------------------------------------------------
# The parent: cases, processes, clean-up
# --------------------------------------------------------------------------

@dataclass
class Resources:
    """What the parent creates for one case; `stack` unlinks/releases it all on close."""

    ctx: Any
    prefix: str
    stack: ExitStack
    counter: Iterator[int]

    def ring_name(self, tag: str) -> str:
        """A fresh segment name unique to this run (the pid is in the prefix)."""
        return f"{self.prefix}.{tag}{next(self.counter)}"

    def ours(self, tag: str) -> str:
        """Create an MpscRing; returns its name.  Unlinked when the stack closes."""
        from rtudp.shmring import MpscRing

        ring = MpscRing.create(self.ring_name(tag), capacity=RING_CAPACITY)
        self.stack.callback(_close_unlink, ring)
        return ring.name

    def pyring(self, tag: str) -> str:
        """Create a PyRing segment (/dev/shm/rtudp.<name>); returns its name."""
        ring = PyRing.create("rtudp." + self.ring_name(tag), RING_CAPACITY)
        self.stack.callback(ring.close)
        return ring.name


def _close_unlink(ring: Any) -> None:
    try:
        ring.close()
    finally:
        ring.unlink()


def _make_mpq(res: Resources) -> Any:
    q = res.ctx.Queue()
    res.stack.callback(q.close)
    return q


def _make_ff(res: Resources) -> Any:
    import faster_fifo

    return faster_fifo.Queue(max_size_bytes=RING_CAPACITY)


@dataclass(frozen=True)
class Case:
    """One producer/consumer (or pinger/echo) pair and how to set it up."""

    key: str
    name: str
    how: str
    make: Callable[[Resources], Any]
    side_a: SideFn        # producer / pinger: started second
    side_b: SideFn        # consumer / echo
    quick_n: int


THROUGHPUT_CASES: tuple[Case, ...] = (
    Case("mp_queue", "multiprocessing.Queue", "put / get per message",
         _make_mpq, mpq_producer, mpq_consumer, 150_000),
    Case("faster_fifo", "faster-fifo Queue", "put per message / get_many(<=1000)",
         _make_ff, ff_producer, ff_consumer, 150_000),
    Case("py_ring", "pure-Python shm ring", "try_put / try_get per message, busy-spin",
         lambda res: res.pyring("py"), pyring_producer, pyring_consumer, 1_500_000),
    Case("ours_call", "rtudp ring, per call", "try_put / try_get per message, spin",
         lambda res: res.ours("call"), ours_call_producer, ours_call_consumer, 1_500_000),
    Case("ours_batch", "rtudp ring, batched", f"put_many({BATCH}) / get_many({BATCH})",
         lambda res: res.ours("batch"), ours_batch_producer, ours_batch_consumer, 6_000_000),
    Case("c_to_c", "rtudp ring, C to C", "rtudp_bench_produce / rtudp_bench_consume",
         lambda res: res.ours("c"), c_producer, c_consumer, 15_000_000),
)

LATENCY_CASES: tuple[Case, ...] = (
    Case("ours", "rtudp ring", "put / get(timeout): spin, then futex",
         lambda res: (res.ours("ping"), res.ours("pong")), ours_pinger, ours_echo, 20_000),
    Case("py_ring", "pure-Python shm ring", "try_put / busy-spin try_get",
         lambda res: (res.pyring("ping"), res.pyring("pong")), pyring_pinger, pyring_echo, 20_000),
)


def run_pair(res: Resources, case: Case, n: int) -> tuple[dict, dict, float | None]:
    """Run one case with fresh endpoints.

    Returns (side_a result, side_b result, CPUs used by other processes meanwhile).
    """
    with ExitStack() as local:
        spec = case.make(dataclasses.replace(res, stack=local))
        barrier = res.ctx.Barrier(2)
        meter = OthersMeter()
        children: list[Child] = []
        for role, side in (("b", case.side_b), ("a", case.side_a)):
            child = Child(f"bench-{case.key}-{role}", _side, side, spec, n, barrier)
            local.callback(child.stop, 0.0)
            children.append(child)
        b, a = results(children, CHILD_TIMEOUT_S)
        for child in children:
            child.stop(10.0)  # joined: their CPU time now counts as ours
        return a, b, meter.others()


def _rate(a: dict, b: dict) -> tuple[float, float]:
    """(seconds, msg/s) from the barrier release to the consumer's last message."""
    seconds = (b["t1"] - min(a["t0"], b["t0"])) / 1e9
    return seconds, b["count"] / seconds


def _scaled(n_pilot: int, seconds: float, target: float, step: int) -> int:
    """Count that should take about `target` seconds, a multiple of `step`."""
    n = int(n_pilot * target / max(seconds, 1e-6))
    return max(n_pilot, n // step * step)


def _throughput_entry(case: Case, a: dict, b: dict, others: float | None) -> dict:
    seconds, rate = _rate(a, b)
    return {"name": case.name, "how": case.how, "messages": b["count"],
            "seconds": seconds, "msg_per_s": rate, "others_cpu": others}


def measure_throughput(res: Resources, case: Case, quick: bool) -> dict:
    """msg/s of one case.  Full mode: a pilot run at the quick count sizes FULL_RUNS
    runs of about FULL_CASE_SECONDS each, and the best one is kept."""
    entry = _throughput_entry(case, *run_pair(res, case, case.quick_n))
    if quick:
        return entry
    n = _scaled(case.quick_n, entry["seconds"], FULL_CASE_SECONDS, BATCH)
    runs = [_throughput_entry(case, *run_pair(res, case, n)) for _ in range(FULL_RUNS)]
    return max(runs, key=lambda e: e["msg_per_s"])


def _latency_entry(case: Case, a: dict, _b: dict, others: float | None) -> dict:
    return {"name": case.name, "how": case.how, **a, "others_cpu": others}


def measure_latency(res: Resources, case: Case, quick: bool) -> dict:
    """Round-trip p50/p99 (µs) of a ping-pong between two processes (full mode: best
    p50 of FULL_RUNS runs sized by a pilot)."""
    entry = _latency_entry(case, *run_pair(res, case, case.quick_n))
    if quick:
        return entry
    pilot_s = entry["mean_us"] * 1e-6 * case.quick_n * 1.1
    n = _scaled(case.quick_n, pilot_s, FULL_CASE_SECONDS, 1000)
    runs = [_latency_entry(case, *run_pair(res, case, n)) for _ in range(FULL_RUNS)]
    return min(runs, key=lambda e: e["p50_us"])


def _available(case: Case) -> str | None:
    """Why a case cannot run here, or None."""
    if case.key == "faster_fifo":
        if importlib.util.find_spec("faster_fifo") is None:
            return FASTER_FIFO_MISSING
    if case.key == "c_to_c":
        try:
            _native()[1].rtudp_bench_produce  # noqa: B018
        except (ImportError, AttributeError) as exc:
            return f"C to C: rtudp_bench_* not in rtudp.tools.bench._native ({exc})"
    return None


def _msg_s(entry: dict | None) -> float | None:
    return entry["msg_per_s"] if entry else None


def summarize(throughput: dict, latency: dict) -> dict:
    """Ratios vs multiprocessing.Queue and the targets with PASS/MISS."""
    mpq = _msg_s(throughput.get("mp_queue"))
    for entry in throughput.values():
        if entry:
            entry["vs_mp_queue"] = ratio(entry["msg_per_s"], mpq)
    call_vs_py = ratio(_msg_s(throughput.get("ours_call")), _msg_s(throughput.get("py_ring")))
    batched = _msg_s(throughput.get("ours_batch"))
    p50 = latency["ours"]["p50_us"] if latency.get("ours") else None
    return {
        "ours_call_vs_py_ring": target(call_vs_py, TARGET_CALL_VS_PYRING, True),
        "ours_batch_msg_per_s": target(batched, TARGET_BATCHED_MSG_S, True),
        "ours_latency_p50_us": target(p50, TARGET_LATENCY_P50_US, False),
    }


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def _fmt_rate(rate: float) -> str:
    return f"{rate / 1e6:8.2f} M" if rate >= 1e6 else f"{rate / 1e3:8.0f} k"


def _throughput_row(key: str, entry: dict | None, skipped: dict) -> str:
    if not entry:
        return f"  {key:<24} {'-':>10} {'-':>8} {'':>7}   {skipped.get(key, 'failed')}"
    ratio = entry.get("vs_mp_queue")
    ratio_s = f"{ratio:7.1f}x" if ratio else f"{'-':>8}"
    return (f"  {entry['name']:<24} {_fmt_rate(entry['msg_per_s'])} {ratio_s} "
            f"{others_col(entry)}   {entry['how']}")


def _latency_row(key: str, entry: dict | None, skipped: dict) -> str:
    if not entry:
        return f"  {key:<24} {'-':>8} {'-':>8} {'':>7}   {skipped.get(key, 'failed')}"
    return (f"  {entry['name']:<24} {entry['p50_us']:8.2f} {entry['p99_us']:8.2f} "
            f"{others_col(entry)}   {entry['how']}")


_TARGET_LABELS = {
    "ours_call_vs_py_ring": ("rtudp per call / pure-Python ring", ">=", "x"),
    "ours_batch_msg_per_s": ("rtudp batched", ">=", " msg/s"),
    "ours_latency_p50_us": ("rtudp round trip p50", "<=", " µs"),
}


def _target_row(key: str, t: dict) -> str:
    label, op, unit = _TARGET_LABELS[key]
    if unit == " msg/s":
        return target_row(label, t, op, unit, lambda v: _fmt_rate(v).strip(), width=34)
    return target_row(label, t, op, unit, lambda v: f"{v:.2f}", lambda v: f"{v:g}", width=34)


def print_report(report: dict) -> None:
    """The human-readable tables: throughput, latency, targets."""
    skipped = report["skipped"]
    print(f"\nthroughput, {MSG_SIZE}-byte messages, producer -> consumer process"
          f"{' (quick run)' if report['quick'] else f' (best of {FULL_RUNS} runs)'}")
    print(f"  {'name':<24} {'msg/s':>10} {'vs mp.Q':>8} {'others':>7}   how")
    for key, entry in report["throughput"].items():
        print(_throughput_row(key, entry, skipped))
    print("\nround trip, ping-pong through two rings")
    print(f"  {'name':<24} {'p50 µs':>8} {'p99 µs':>8} {'others':>7}   how")
    for key, entry in report["latency"].items():
        print(_latency_row(key, entry, skipped))
    others_footer([*report["throughput"].values(), *report["latency"].values()],
                  "the machine was busy: that figure is lower (slower) than on an idle machine")
    print("\ntargets")
    for key, t in report["targets"].items():
        print(_target_row(key, t))


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench ring``."""
    add_common_arguments(parser, "small counts: the whole run takes well under 20 s")


def _run_cases(res: Resources, cases: tuple[Case, ...], measure: Callable[..., dict],
               quick: bool, quiet: bool, skipped: dict) -> Iterator[tuple[str, dict | None]]:
    for case in cases:
        why = _available(case) if measure is measure_throughput else None
        if why:
            skipped[case.key] = why
            say(why, quiet)
            yield case.key, None
            continue
        try:
            entry = measure(res, case, quick)
        except Exception as exc:  # noqa: BLE001 - report the case failed and go on
            skipped[case.key] = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
            print(f"{case.key}: {exc}", file=sys.stderr, flush=True)
            yield case.key, None
            continue
        say(f"  ... {case.name}: " + (_fmt_rate(entry["msg_per_s"]).strip() + " msg/s"
                                     if "msg_per_s" in entry else
                                     f"p50 {entry['p50_us']:.2f} µs"), quiet)
        yield case.key, entry


def benchmark(quick: bool, quiet: bool) -> dict:
    """Run every case; returns the report (all figures)."""
    res = Resources(multiprocessing.get_context("spawn"), pool_prefix(), ExitStack(),
                    itertools.count())
    skipped: dict[str, str] = {}
    busy = header("ring", quick, quiet, busy_note="spinning pairs slow down a lot when they "
                  "lose a CPU, so these figures are low")
    throughput = dict(_run_cases(res, THROUGHPUT_CASES, measure_throughput,
                                 quick, quiet, skipped))
    latency = dict(_run_cases(res, LATENCY_CASES, measure_latency, quick, quiet, skipped))
    return {"msg_size": MSG_SIZE, "quick": quick, "cpus": os.cpu_count(),
            "python": platform.python_version(), "ring_capacity": RING_CAPACITY,
            "cpu_busy_before": busy,
            "throughput": throughput, "latency": latency, "skipped": skipped,
            "targets": summarize(throughput, latency)}


def _failed(report: dict) -> bool:
    """A case failed (a missing faster-fifo is not a failure)."""
    return any(why != FASTER_FIFO_MISSING for why in report["skipped"].values())


def run(args: argparse.Namespace) -> int:
    """``rtudp bench ring``: 0 when every case ran (targets missed or not), 1 otherwise."""
    return run_benchmark(args, benchmark, print_report, _failed)
