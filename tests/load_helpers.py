"""Duplex traffic at a fixed rate through a pool, counted packet by packet.

Used by the fault tests (worker kill, soak, memory): two duplex channels ``A`` and
``B`` on loopback send to each other, each at ``rate`` packets/s.  Every payload
carries its sequence number; the receiving side counts each one, so loss and
duplicates are exact, not estimated.  Everything runs in the caller's thread
(:meth:`DuplexLoad.step` does one tick), so a test interleaves its faults between
ticks and nothing is left running when it returns.
"""
from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil

import rtudp
from rtudp.tools.demo import free_ports

PAYLOAD = 64            # bytes per datagram: an 8-byte sequence number, then filler
CAPACITY = 1 << 16      # packets per ring: > 1 s of traffic at 50 kpps
LONG_RUN_CAPACITY = 1 << 18  # 5 s: a client of a long run, stalled by a loaded CI machine,
                             # must not be lapped (that would be its own loss)
TICK_S = 0.001          # one send_many per direction per tick
_SEQ = struct.Struct("<Q")


def open_duplex_pair(pool: rtudp.Pool, capacity: int = CAPACITY) -> tuple[Any, Any]:
    """Channels ``A`` and ``B`` (duplex, one per worker when the pool has two),
    each sending to the other."""
    for attempt in range(5):
        pa, pb = free_ports(2)
        cpus = pool.cpus
        try:
            a = pool.open_channel("A", local=("127.0.0.1", pa), remote=("127.0.0.1", pb),
                                  capacity=capacity, max_datagram=PAYLOAD, cpu=cpus[0])
        except rtudp.AddressInUseError:
            continue
        try:
            b = pool.open_channel("B", local=("127.0.0.1", pb), remote=("127.0.0.1", pa),
                                  capacity=capacity, max_datagram=PAYLOAD, cpu=cpus[-1])
        except rtudp.AddressInUseError:
            a.close()
            continue
        return a, b
    raise RuntimeError("no two free loopback ports after 5 attempts")


@dataclass
class Direction:
    """One way of the duplex traffic: what was queued on ``tx`` and seen on ``rx``."""

    name: str
    tx: Any
    rx: Any
    total: int                                    # packets this direction will send
    sent: int = 0
    back_pressure: int = 0                        # send_many calls refused (retried)
    seen: bytearray = field(default_factory=bytearray)
    received: int = 0
    ring_lost: int = 0                            # records this reader was lapped by
    last_rx_ns: int = 0
    max_gap_ns: int = 0                           # longest silence between two arrivals

    def __post_init__(self) -> None:
        self.seen = bytearray(self.total)

    def send_due(self, due: int, at_ns: int) -> None:
        n = min(due, self.total) - self.sent
        if n <= 0:
            return
        batch = [_SEQ.pack(s) + b"\0" * (PAYLOAD - _SEQ.size)
                 for s in range(self.sent, self.sent + n)]
        try:
            self.sent += self.tx.send_many(batch, at_ns=at_ns)
        except rtudp.BackPressureError as exc:
            self.back_pressure += 1
            self.sent += getattr(exc, "sent", 0)

    def drain(self) -> int:
        pkts = self.rx.recv_many(8192, timeout=0)
        seen = self.seen
        for p in pkts:
            seq = _SEQ.unpack_from(p.data)[0]
            self.ring_lost += p.lost
            if seq < len(seen) and seen[seq] < 255:
                seen[seq] += 1
            if self.last_rx_ns:
                self.max_gap_ns = max(self.max_gap_ns, p.rx_ns - self.last_rx_ns)
            self.last_rx_ns = p.rx_ns
        self.received += len(pkts)
        return len(pkts)

    @property
    def complete(self) -> bool:
        return self.sent == self.total and all(self.seen)

    def lost(self) -> int:
        """Packets queued but never received."""
        return self.seen.count(0) - (self.total - self.sent)

    def duplicates(self) -> int:
        """Extra copies received (a packet seen twice counts 1)."""
        return sum(c - 1 for c in self.seen if c > 1)

    def report(self) -> dict[str, int]:
        """The counts, and where a loss would show on the channels' side: the receiving
        socket's kernel drops and the sender's failed sends."""
        return {"sent": self.sent, "received": self.received, "lost": self.lost(),
                "duplicates": self.duplicates(), "ring_lost": self.ring_lost,
                "back_pressure": self.back_pressure, "max_gap_us": self.max_gap_ns // 1000,
                "rx_kernel_drops": int(self.rx.stats().get("rx_kernel_drops", 0)),
                "tx_errors": int(self.tx.stats().get("tx_errors", 0))}


class DuplexLoad:
    """``rate`` packets/s each way between ``a`` and ``b`` for ``seconds``."""

    def __init__(self, a: Any, b: Any, rate: int, seconds: float,
                 lead_ns: int = 2_000_000) -> None:
        total = int(rate * seconds)
        self.rate = rate
        self.lead_ns = lead_ns
        self.ab = Direction("A->B", a, b, total)
        self.ba = Direction("B->A", b, a, total)
        self.start_ns = 0
        self.max_step_s = 0.0                     # the longest tick (a stalled client)

    @classmethod
    def long_run(cls, pool: rtudp.Pool, rate: int, seconds: float) -> "DuplexLoad":
        """The load of a long run (soak, memory): between a new duplex pair of ``pool``
        whose rings hold LONG_RUN_CAPACITY packets."""
        return cls(*open_duplex_pair(pool, LONG_RUN_CAPACITY), rate, seconds)

    @property
    def directions(self) -> tuple[Direction, Direction]:
        return self.ab, self.ba

    def step(self) -> None:
        """Queue what is due up to ``lead_ns`` ahead (deadline: the tick), read what came."""
        now = time.monotonic_ns()
        if not self.start_ns:
            self.start_ns = now
        due = (now + self.lead_ns - self.start_ns) * self.rate // 1_000_000_000
        for d in self.directions:
            d.send_due(due, now + self.lead_ns)
            d.drain()

    def run(self, on_tick: Callable[[float], None] | None = None) -> None:
        """Send everything, calling ``on_tick(elapsed_s)`` between ticks."""
        nxt = time.monotonic()
        while not all(d.sent == d.total for d in self.directions):
            t0 = time.monotonic()
            self.step()
            self.max_step_s = max(self.max_step_s, time.monotonic() - t0)
            if on_tick is not None:
                on_tick((time.monotonic_ns() - self.start_ns) / 1e9)
            nxt += TICK_S
            left = nxt - time.monotonic()
            if left > 0:
                time.sleep(left)
            else:
                nxt = time.monotonic()

    def finish(self, timeout: float = 10.0, quiet: float = 0.3) -> None:
        """Read until every packet arrived (then ``quiet`` s more, for late duplicates)
        or ``timeout`` s passed."""
        deadline = time.monotonic() + timeout
        quiet_until = None
        while time.monotonic() < deadline:
            got = sum(d.drain() for d in self.directions)
            if quiet_until is None and all(d.complete for d in self.directions):
                quiet_until = time.monotonic() + quiet
            if quiet_until is not None and time.monotonic() >= quiet_until:
                return
            if not got:
                time.sleep(0.002)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {d.name: d.report() for d in self.directions}
        out["max_tick_ms"] = round(self.max_step_s * 1000, 1)
        return out


class WorkerKiller:
    """Kill worker ``index`` and note when its successor runs, polled between ticks."""

    def __init__(self, pool: rtudp.Pool) -> None:
        self.pool = pool
        self.pending: dict[int, tuple[int, float, int]] = {}  # index -> (pid, kill time, ns)
        self.restart_s: list[float] = []    # kill -> successor RUNNING, as polled here
        self.respawn_s: list[float] = []    # kill -> successor spawned, as the supervisor says

    def kill(self, index: int) -> None:
        old = self.pool.workers()[index]["pid"]
        self.pending[index] = (old, time.monotonic(), time.monotonic_ns())
        os.kill(old, 9)

    def poll(self) -> None:
        """Record the restart time of every killed worker that runs again."""
        if not self.pending:
            return
        workers = self.pool.workers()
        for index, (old, t0, t0_ns) in list(self.pending.items()):
            w = workers[index]
            if w["pid"] not in (0, old) and w["state"] == "running":
                self.restart_s.append(time.monotonic() - t0)
                self.respawn_s.append((w["started_ns"] - t0_ns) / 1e9)
                del self.pending[index]

    def wait(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.001)
        assert not self.pending, f"workers {sorted(self.pending)} not restarted in {timeout} s"


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of ``pid`` in KiB, from /proc."""
    rss = anon = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    return rss, anon


def worker_pids(pool: rtudp.Pool) -> list[int]:
    return [w["pid"] for w in pool.workers() if w["pid"] and psutil.pid_exists(w["pid"])]
