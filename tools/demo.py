"""``rtudp demo``: timed full-duplex UDP on loopback, measured.

An embedded pool (its own unique name) runs two channels A and B on loopback, each
sending to the other: ``--packets`` datagrams each way at ``--rate`` packets/s, on
an absolute schedule (packet i is due at ``start + i / rate``; the whole schedule is
queued before it starts and the workers send each packet at its deadline).  Every payload
carries its direction, sequence number and deadline, so the receiver computes the
one-way latency (kernel RX timestamp - deadline) and detects loss, duplicates and
reordering.  Printed per direction: send lateness (the worker's histogram: departure
- deadline), one-way latency, loss, reordering, a text histogram of the lateness,
and the scheduling policy the workers actually got.

Figures only: nothing about timing is asserted; the exit status is 0 unless the
demo itself could not run (e.g. the pool did not start).  Ctrl-C / SIGTERM stop it
and leave nothing behind.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import struct
import sys
import threading
import time
import warnings
from array import array
from typing import Any

from .cli_args import ranged

DEFAULT_PACKETS = 100_000
QUICK_PACKETS = 20_000
DEFAULT_RATE = 50_000
#: time between the start and the first deadline, plus QUEUE_NS_PER_PACKET per packet
#: (both directions): the whole schedule is queued before it starts
START_DELAY_NS = 200_000_000
QUEUE_NS_PER_PACKET = 5_000
#: after the last deadline, how long the receiver waits for stragglers
GRACE_NS = 1_000_000_000
#: the receiver drains the channels this often (their RX rings hold every packet)
DRAIN_S = 0.005
#: magic, direction, sequence number, deadline (CLOCK_MONOTONIC ns)
PAYLOAD = struct.Struct("<4sIQq")
MAGIC = b"rtud"
#: PAYLOAD as a numpy record (Receiver._drain_batches)
PAYLOAD_DTYPE = [("magic", "S4"), ("direction", "<u4"), ("seq", "<u8"), ("deadline", "<i8")]
PERCENTILES = (50, 90, 99, 99.9)
#: what the demo expects of each direction's send lateness (p99); when missed it says why
TARGET_P99_NS = 100_000


def add_parser(sub: Any) -> None:
    """Register ``rtudp demo`` on the top-level subparsers."""
    from .cold import add_drop_caches_argument
    from .pool_cli import add_tunable_arguments, parse_pool_name

    d = sub.add_parser(
        "demo", help="timed full-duplex UDP on loopback: lateness, latency, loss",
        description="Full duplex on loopback through an embedded pool: two channels each "
                    "send PACKETS datagrams at RATE packets/s to the other on an absolute "
                    "schedule, then print send lateness and one-way latency "
                    "(p50/p90/p99/p99.9/max), loss, reordering, a text histogram and the "
                    "scheduling policy the workers got. Figures only: timing is never "
                    "asserted.")
    d.add_argument("--packets", type=ranged(int, "packet count", 1, 1_000_000),
                   default=None, metavar="N",
                   help=f"packets each way (default {DEFAULT_PACKETS:,})")
    d.add_argument("--rate", type=ranged(int, "rate", 1, 1_000_000), default=DEFAULT_RATE,
                   metavar="PPS", help=f"packets per second each way (default {DEFAULT_RATE:,})")
    d.add_argument("--quick", action="store_true",
                   help=f"{QUICK_PACKETS:,} packets each way (unless --packets says otherwise)")
    add_tunable_arguments(d)
    add_drop_caches_argument(d, "before the pool starts")
    d.add_argument("--pool", type=parse_pool_name, default=None, metavar="NAME",
                   help="name of the demo's own pool (default demo<pid>)")
    d.set_defaults(func=run)


# ------------------------------------------------------------ receiving


class Receiver:
    """Checks and times every packet of one direction, as it is drained from a channel
    (in the main thread: no GIL hand-offs; the RX ring can hold every packet)."""

    def __init__(self, ch: Any, direction: int, expected: int) -> None:
        self.ch, self.direction, self.expected = ch, direction, expected
        self.latencies = array("q")
        self.seen = bytearray(expected)
        self.received = self.duplicates = self.reordered = self.foreign = self.ring_lost = 0
        self._high = -1
        self._np = _numpy()

    @property
    def done(self) -> bool:
        return self.received >= self.expected

    def drain(self) -> int:
        """Take everything waiting on the channel; returns how many packets.

        With numpy, whole batches are checked as columns (recv_batch): the reader then
        needs a tenth of the CPU.  It matters here: the workers leave the CPUs little
        room at 50 kpps each way, and a reader short of CPU makes the kernel's fair
        server take a worker's CPU for 50 ms to give it some."""
        if self._np is not None:
            return self._drain_batches(self._np)
        unpack, size, lat, seen = PAYLOAD.unpack_from, PAYLOAD.size, self.latencies, self.seen
        total = 0
        while True:
            pkts = self.ch.recv_many(4096, timeout=0)
            if not pkts:
                return total
            total += len(pkts)
            for p in pkts:
                self.ring_lost += p.lost
                data = p.data
                if len(data) < size:
                    self.foreign += 1
                    continue
                magic, direction, seq, deadline = unpack(data)
                if magic != MAGIC or direction != self.direction or not 0 <= seq < self.expected:
                    self.foreign += 1
                    continue
                if seen[seq]:
                    self.duplicates += 1
                    continue
                seen[seq] = 1
                self.received += 1
                if seq < self._high:
                    self.reordered += 1
                else:
                    self._high = seq
                lat.append(p.rx_ns - deadline)

    def _drain_batches(self, np: Any) -> int:
        """drain() on numpy columns: the same checks and counts, a batch at a time."""
        total = 0
        seen = np.frombuffer(self.seen, dtype=np.uint8)
        while True:
            batch = self.ch.recv_batch(4096, timeout=0)
            n = len(batch)
            if not n:
                return total
            total += n
            self.ring_lost += int(batch.lost.sum())
            rows = batch.length == PAYLOAD.size  # shorter or longer: not ours
            self.foreign += int(n - rows.sum())
            if not rows.any():
                continue
            offsets = batch.offsets[:-1][rows]
            recs = np.empty(len(offsets), dtype=PAYLOAD_DTYPE)
            if len(offsets) == n:  # all ours: the payloads lie back to back
                recs[:] = batch.payload.view(PAYLOAD_DTYPE)
            else:
                for i, off in enumerate(offsets):
                    recs[i] = batch.payload[off:off + PAYLOAD.size].view(PAYLOAD_DTYPE)[0]
            ok = ((recs["magic"] == MAGIC) & (recs["direction"] == self.direction) &
                  (recs["seq"] < self.expected))
            self.foreign += int(len(recs) - ok.sum())
            seqs = recs["seq"][ok].astype(np.int64)
            rx_ns = batch.rx_ns[rows][ok]
            deadlines = recs["deadline"][ok]
            # new = first time this seq is seen, in this batch and before it
            first = np.zeros(len(seqs), dtype=bool)
            first[np.unique(seqs, return_index=True)[1]] = True
            new = first & (seen[seqs] == 0)
            self.duplicates += int(len(seqs) - new.sum())
            fresh = seqs[new]
            seen[fresh] = 1
            self.received += len(fresh)
            if len(fresh):
                highs = np.maximum.accumulate(np.concatenate(([self._high], fresh)))[:-1]
                self.reordered += int((fresh < highs).sum())
                self._high = max(self._high, int(fresh.max()))
                self.latencies.frombytes((rx_ns[new] - deadlines[new]).astype("<i8").tobytes())


def _numpy() -> Any:
    """numpy if it is installed (the bench extra brings it), else None."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


# ------------------------------------------------------------ helpers


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback UDP ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _open_pair(pool: Any, n: int, packet_rate: float | None = None) -> tuple[Any, Any]:
    """Channels A and B, each sending to the other, each declaring ``packet_rate``
    (the packets a second it sends and receives), so a packed pool puts them where
    they fit."""
    from rtudp import AddressInUseError

    for attempt in range(5):
        pa, pb = free_ports(2)
        a = b = None
        try:
            a = pool.open_channel("A", local=("127.0.0.1", pa), remote=("127.0.0.1", pb),
                                  direction=2, capacity=n + 1024,
                                  max_datagram=PAYLOAD.size, packet_rate=packet_rate)
            b = pool.open_channel("B", local=("127.0.0.1", pb), remote=("127.0.0.1", pa),
                                  direction=2, capacity=n + 1024,
                                  max_datagram=PAYLOAD.size, packet_rate=packet_rate)
            return a, b
        except AddressInUseError:
            for ch in (a, b):
                if ch is not None:
                    ch.close()
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _fmt(ns: float | None) -> str:
    from rtudp.shmring.hist import format_ns

    return format_ns(ns).replace("us", "µs")


def _departures_timed_by(stamped: int, sent: int) -> str:
    """What the send lateness was timed by: a packet sent alone asks for no kernel TX
    stamp (docs/tx-journal.md) and is timed by the clock after its send call."""
    if not stamped:
        return "clock read after each send call"
    if stamped >= sent:
        return "kernel TX timestamps"
    return f"kernel TX timestamps for {stamped:,}, the clock after the send call for the rest"


def _pct_line(label: str, hist: Any) -> str:
    if not hist.count:
        return f"  {label:<16} (nothing measured)"
    ps = hist.percentiles(PERCENTILES)
    parts = [f"p{float(p):g} {_fmt(v):>9}" for p, v in ps.items()]
    return f"  {label:<16} " + "  ".join(parts) + f"  max {_fmt(hist.max_ns):>9}"


def _late_line(st: dict[str, Any]) -> str:
    """Whose the late sends were: the submitter's (queued with less lead than the worker
    needs) or the worker's (queued in time, sent late), with the latest of each."""
    from rtudp.shmring._native import lib

    limit = _fmt(lib.RTUDP_TX_LATE_NS)
    parts = []
    for key, whose in (("tx_late_arrival", "late on arrival (the submitter's)"),
                       ("tx_late_sent", "sent late (the worker's)")):
        n = st[key]
        parts.append(f"{n:,} {whose}" + (f", latest {_fmt(st[key + '_max_ns'])}" if n else ""))
    return f"  {'late > ' + limit.strip():<16} " + "; ".join(parts)


def schedule_horizon_s(n: int, rate: int) -> float:
    """The deadline horizon (s) of a pool that takes a schedule of ``n`` packets at
    ``rate`` queued whole before it starts: the pool's default, or the schedule's span
    and a second more, at most the largest a pool allows (then the packets beyond it
    are refused at the send, naming their deadline)."""
    from rtudp.shmring.deadline import DEFAULT_HORIZON_NS, MAX_HORIZON_NS

    span = START_DELAY_NS + n * QUEUE_NS_PER_PACKET + (n * 1_000_000_000) // rate + 10**9
    return min(max(DEFAULT_HORIZON_NS, span), MAX_HORIZON_NS) / 1e9


def queue_schedule(ch: Any, direction: int, n: int, rate: int, t0: int,
                   start: int = 0) -> int:
    """Queue packets ``start`` to ``n - 1`` (``direction``, i, deadline) on ``ch``, packet
    i for ``t0 + i/rate``; returns how many sends found the TX ring full (and were
    retried after a pause)."""
    from rtudp import BackPressureError

    pack = PAYLOAD.pack
    send = ch.send
    full = 0
    i = start
    while i < n:
        dl = t0 + (i * 1_000_000_000) // rate
        try:
            send(pack(MAGIC, direction, i, dl), dl)
        except BackPressureError:
            full += 1
            time.sleep(0.001)
            continue
        i += 1
    return full


#: _queue_all queues the two directions in turns of this many packets
QUEUE_TURN = 1024


def _queue_all(a: Any, b: Any, n: int, rate: int, t0: int) -> int:
    """Queue packet i of both directions for ``t0 + i/rate``, the two in turns in
    deadline order (so that a submitter slower than its lead leaves both directions
    equally short, not the second one seconds behind); returns how many sends found
    the TX ring full (and were retried after a pause)."""
    full = 0
    for start in range(0, n, QUEUE_TURN):
        end = min(n, start + QUEUE_TURN)
        full += queue_schedule(a, 0, end, rate, t0, start)
        full += queue_schedule(b, 1, end, rate, t0, start)
    return full


def _drain_until_done(rx: list[Receiver], last: int) -> None:
    """Drain the channels every few ms until everything arrived, or GRACE_NS after
    the last deadline."""
    while True:
        got = sum(r.drain() for r in rx)
        if all(r.done for r in rx) or time.monotonic_ns() > last + GRACE_NS:
            return
        if not got:
            time.sleep(DRAIN_S)


# ------------------------------------------------------------ the demo


def run(args: argparse.Namespace, _rest: list[str] | None = None) -> int:
    n = args.packets or (QUICK_PACKETS if args.quick else DEFAULT_PACKETS)
    rate = args.rate
    name = args.pool or f"demo{os.getpid()}"

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    from .cold import check_drop_caches, drop_caches

    check_drop_caches("rtudp demo", args.drop_caches)
    if args.drop_caches:
        print(f"rtudp demo: {drop_caches()}", flush=True)
    t_start = time.monotonic()
    print(f"rtudp demo: full duplex on loopback, {n:,} packets each way at {rate:,} packets/s "
          f"(deadline of packet i = start + i x {_fmt(1e9 / rate)})", flush=True)
    pool = a = b = None
    try:
        import rtudp

        from .procinfo import kernel_policy, policy_text

        # this process queues the schedule and reads every packet: none of its pages
        # may have to come back from disk or be touched for the first time meanwhile
        _numpy()
        print(f"rtudp demo: this process: {rtudp.lock_memory()}", flush=True)

        # what the pool and the channels warn of (this user's limits, capped socket
        # buffers) is printed once, with the report
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            try:
                from ..workers.tunables import TUNABLES
                pool = rtudp.embedded_pool(name, idle=args.idle,
                                           horizon_s=schedule_horizon_s(n, rate),
                                           **{t: getattr(args, t) for t in TUNABLES})
            except (rtudp.RtUdpError, OSError, ValueError) as exc:
                print(f"rtudp demo: error: the pool could not start: {exc}", file=sys.stderr)
                return 1
            try:
                a, b = _open_pair(pool, n, 2 * rate)  # each end sends and receives
            except (rtudp.RtUdpError, OSError, ValueError) as exc:
                print(f"rtudp demo: error: the channels could not open: {exc}",
                      file=sys.stderr)
                return 1
        # A's packets (direction 0) arrive on B, B's (direction 1) on A
        receivers = [Receiver(b, 0, n), Receiver(a, 1, n)]
        # queue the whole schedule first (the worker holds it in its timer heap and sends
        # each packet at its deadline), then only receive while it runs
        t0 = time.monotonic_ns() + START_DELAY_NS + n * QUEUE_NS_PER_PACKET
        full = _queue_all(a, b, n, rate, t0)
        from .why_late import snapshot

        before = snapshot(pool, [a, b])
        _drain_until_done(receivers, t0 + ((n - 1) * 1_000_000_000) // rate)
        after = snapshot(pool, [a, b])
        # the worker records a packet's lateness once it has left: wait for the last ones
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and \
                min(a.stats()["tx_packets"], b.stats()["tx_packets"]) < n:
            time.sleep(0.01)
        _report(pool, a, b, receivers, n, caught, full, kernel_policy, policy_text)
        _why(a, b, before, after)
        print(f"\nelapsed {time.monotonic() - t_start:.1f} s. Figures only: timing is "
              f"never asserted.")
        return 0
    except KeyboardInterrupt:
        print("\nrtudp demo: interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        for ch in (a, b):
            if ch is not None:
                try:
                    ch.close()
                except Exception:
                    pass
        if pool is not None:
            pool.stop()


def _why(a: Any, b: Any, before: Any, after: Any) -> None:
    """When a direction misses the target, say what was detected and what to change."""
    from .why_late import explain

    missed = []
    for ch, label in ((a, "A -> B"), (b, "B -> A")):
        p99 = ch.lateness().percentiles((99,))[99]
        if p99 is not None and p99 > TARGET_P99_NS:
            missed.append(f"{label} p99 {_fmt(p99)}")
    lines = explain(before, after, missed)
    if lines:
        print(f"\n(target: p99 send lateness <= {_fmt(TARGET_P99_NS)} each way)")
        print("\n".join(lines))


def _report(pool: Any, a: Any, b: Any, receivers: list[Receiver], n: int, caught: list[Any],
            full: int, kernel_policy: Any, policy_text: Any) -> None:
    from rtudp.shmring.hist import Histogram

    print(f"\npool {pool.name!r}: {len(pool.cpus)} workers, the scheduling policy the kernel "
          f"reports for them:")
    for w in pool.workers():
        here = [label for ch, label in ((a, "A"), (b, "B")) if ch.worker == w["index"]]
        print(f"  worker {w['index']} on CPU {w['cpu']} (pid {w['pid']}): "
              f"{policy_text(kernel_policy(w['pid']))}"
              + (f"  [{'channels' if len(here) > 1 else 'channel'} {', '.join(here)}]"
                 if here else ""))
    for w in caught:
        print(f"  note: {w.message}")
    for ch_tx, ch_rx, r, label in ((a, b, receivers[0], "A -> B"),
                                   (b, a, receivers[1], "B -> A")):
        st = ch_tx.stats()
        late = ch_tx.lateness()
        lat = Histogram.from_values(r.latencies)
        loss = n - r.received
        how = _departures_timed_by(st["tx_kernel_stamped"], st["tx_packets"])
        print(f"\n{label}  ({ch_tx.local[0]}:{ch_tx.local[1]} -> "
              f"{ch_rx.local[0]}:{ch_rx.local[1]})")
        print(f"  sent {st['tx_packets']:,}, received {r.received:,}, loss {loss} "
              f"({100.0 * loss / n:.3f} %), reordered {r.reordered}, duplicates "
              f"{r.duplicates}" + (f", foreign {r.foreign}" if r.foreign else ""))
        print(_pct_line("send lateness", late) + f"   ({how})")
        print(_pct_line("one-way latency", lat) + "   (kernel RX stamp - deadline)")
        print(_late_line(st))
        extra = []
        if st["tx_immediate"]:
            extra.append(f"{st['tx_immediate']} queued after their deadline (sent at once)")
        if r.ring_lost:
            extra.append(f"{r.ring_lost} overwritten in the RX ring before they were read")
        if ch_rx.stats()["rx_kernel_drops"]:
            extra.append(f"{ch_rx.stats()['rx_kernel_drops']} dropped by the kernel")
        if lat.negative:
            extra.append(f"{lat.negative} latencies < 0 (recorded as 0)")
        if extra:
            print("  " + "; ".join(extra))
        print("  send lateness histogram:")
        for line in late.text_histogram(width=40, rows=12).splitlines()[1:]:
            print("    " + line.replace("us", "µs"))
    if full:
        print(f"\n(the TX ring was full {full} times; those sends were retried)")


__all__ = ["add_parser", "run"]
