"""Processes and checks of the udp stress tests (test_stress_udp.py, test_stress_procs.py).

Every datagram carries (producer tag, index, deadline), so the wire alone says who
sent what, in which order, and what it was asked to leave at.  Producers and readers
are ``spawn`` children (module-level functions), attached to their channel by name
as any other program would be; each sends what it did back through a pipe.
"""
from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import rtudp

#: tag (producer), index (its n-th datagram), deadline (0: now), padded to 16 bytes
PKT = struct.Struct("<HxxIq")
GROUP = 8                 # datagrams a timed producer queues with shuffled deadlines
STEP_NS = 150_000         # deadlines of a group are this far apart
LEAD_NS = 2_000_000       # a group's first deadline is this far ahead of its queueing
BACKOFF_S = 0.0005        # a full TX ring: wait this long, then try again
RESULT_S = 90.0           # a child that has not reported by then is hung
#: the TX ring of a channel whose deadline order a test checks holds this many datagrams
#: of PKT.size (32-byte records, a 32 KiB ring): the worker reads at most 1024 records
#: of a channel a pass (READ_MAX, csrc/worker/txloop.c) and deadline order holds among
#: what it has read, so a backlog the ring bounds to one pass keeps the order whole
TX_CAPACITY = 1024


def send_retrying(ch: Any, payload: bytes, at_ns: int | None) -> int:
    """Queue ``payload`` on ``ch``, waiting out back-pressure (not a drop: the API
    refused it and says so); how many times it was refused."""
    refused = 0
    while True:
        try:
            ch.send(payload, at_ns=at_ns)
            return refused
        except rtudp.BackPressureError:
            refused += 1
            time.sleep(BACKOFF_S)


def _produce(pool: str, name: str, ready: Any, go: Any, stop: Any, conn: Any,
             burst: Callable[[Any, list[tuple[int, int, int]]], int], rnd: random.Random
             ) -> None:
    """Attach to channel ``name``, then from ``go`` until ``stop`` call ``burst(ch,
    sent)`` (it appends what it sent and returns how many sends were refused) with a
    pause of up to 2 ms between bursts; send back ``{"sent", "refused"}``."""
    ch = rtudp.attach(name, pool=pool)
    ready.set()
    go.wait(60)
    sent: list[tuple[int, int, int]] = []
    refused = 0
    while not stop.is_set():
        refused += burst(ch, sent)
        time.sleep(rnd.uniform(0.0, 0.002))
    ch.close()
    conn.send({"sent": sent, "refused": refused})


def timed_producer(pool: str, name: str, tag: int, seed: str, ready: Any, go: Any,
                   stop: Any, conn: Any) -> None:
    """From ``go`` until ``stop``, queue groups of GROUP datagrams on channel ``name``,
    each group's deadlines shuffled (submission order is not deadline order); send
    back ``[(index, deadline, ns when send() returned)]``."""
    rnd = random.Random(seed)

    def burst(ch: Any, sent: list[tuple[int, int, int]]) -> int:
        refused = 0
        base = time.monotonic_ns() + LEAD_NS
        steps = list(range(GROUP))
        rnd.shuffle(steps)
        for k in steps:
            deadline = base + k * STEP_NS
            refused += send_retrying(ch, PKT.pack(tag, len(sent), deadline), deadline)
            sent.append((len(sent), deadline, time.monotonic_ns()))
        return refused

    _produce(pool, name, ready, go, stop, conn, burst, rnd)


def now_producer(pool: str, name: str, tag: int, seed: str, ready: Any, go: Any,
                 stop: Any, conn: Any) -> None:
    """From ``go`` until ``stop``, send datagrams "now" on channel ``name`` (direct sends
    when the handle may) in bursts; send back ``[(index, 0, ns when send() returned)]``."""
    rnd = random.Random(seed)

    def burst(ch: Any, sent: list[tuple[int, int, int]]) -> int:
        refused = 0
        for _ in range(rnd.randint(1, 16)):
            refused += send_retrying(ch, PKT.pack(tag, len(sent), 0), None)
            sent.append((len(sent), 0, time.monotonic_ns()))
        return refused

    _produce(pool, name, ready, go, stop, conn, burst, rnd)


def claim_and_hang(pool: str, name: str, ready: Any) -> None:
    """Claim a TX record on channel ``name`` (header written, never committed) and wait
    to be killed: a producer dying between claim and commit."""
    ch = rtudp.attach(name, pool=pool)
    claim = ch._tx.claim(PKT.size)
    claim.buffer[:PKT.size] = PKT.pack(0xDEAD, 0, 0)
    ready.set()
    time.sleep(300)


def reader(pool: str, name: str, ready: Any, stop: Any, conn: Any) -> None:
    """Read channel ``name`` until ``stop`` is set and nothing more comes; send back each
    packet as ``(payload, ring seq, lost before it)`` and what this handle's stats()
    say it lost."""
    ch = rtudp.attach(name, pool=pool)
    ready.set()
    got: list[tuple[bytes, int, int]] = []
    while True:
        pkts = ch.recv_many(512, timeout=0.05)
        got.extend((p.data, p.seq, p.lost) for p in pkts)
        if not pkts and stop.is_set():
            break
    st = ch.stats()
    ch.close()
    conn.send({"got": got, "rx_lost": st["rx_lost"], "rx_lapped": st["rx_lapped"]})


# ------------------------------------------------------------------ starting them


class Producers:
    """Producer processes (``target``, one per tag) on channel ``name``, attached before
    :meth:`go`, sending until :meth:`stop`; :meth:`collect` is what each queued."""

    def __init__(self, children: Any, target: Callable[..., None], pool: rtudp.Pool,
                 name: str, tags: list[int], test: str) -> None:
        self.children = children
        self._go = children.ctx.Event()
        self._stop = children.ctx.Event()
        self.pipes: list[tuple[int, Any]] = []
        for tag in tags:
            ready = children.ctx.Event()
            parent, child = children.ctx.Pipe(duplex=False)
            children.start(target, pool.name, name, tag, f"{test}:{tag}", ready, self._go,
                           self._stop, child, name=f"producer{tag}")
            assert ready.wait(60), f"producer {tag} never attached"
            self.pipes.append((tag, parent))

    def go(self) -> None:
        self._go.set()

    def stop(self) -> None:
        self._stop.set()

    def collect(self) -> dict[int, Sent]:
        """What each producer reports it queued (AssertionError if one fails or hangs)."""
        self.stop()
        sent = {}
        for tag, conn in self.pipes:
            assert conn.poll(RESULT_S), (f"producer {tag} sent no result (exit codes "
                                         f"{[p.exitcode for p in self.children.procs]})")
            sent[tag] = Sent(tag, conn.recv()["sent"])
        return sent


def start_readers(children: Any, pool: rtudp.Pool, name: str, n: int,
                  stop: Any) -> list[tuple[Any, Any]]:
    """``n`` reader processes on channel ``name``, attached; (process, pipe) of each."""
    out = []
    for i in range(n):
        ready = children.ctx.Event()
        parent, child = children.ctx.Pipe(duplex=False)
        proc = children.start(reader, pool.name, name, ready, stop, child, name=f"reader{i}")
        assert ready.wait(60), f"reader {i} never attached"
        out.append((proc, parent))
    return out


def collect_reads(children: Any, readers: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """What each reader reports (AssertionError if one fails or hangs)."""
    out = []
    for i, (_, conn) in enumerate(readers):
        assert conn.poll(RESULT_S), \
            f"reader {i} sent no result (exit codes {[p.exitcode for p in children.procs]})"
        out.append(conn.recv())
    return out


# ------------------------------------------------------------------ checks


@dataclass
class Sent:
    """What one producer queued: index -> (deadline, ns when its send() returned)."""

    tag: int
    items: list[tuple[int, int, int]]
    by_index: dict[int, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_index = {i: (d, c) for i, d, c in self.items}


@dataclass
class WireCount:
    """The wire, sorted per producer: first copies in arrival order, copies, strangers."""

    order: dict[int, list[int]]            # tag -> indexes in order of first arrival
    duplicates: int = 0                    # extra copies (a datagram seen twice: 1)
    strangers: list[bytes] = field(default_factory=list)  # payloads nobody queued


def count_wire(payloads: Iterable[bytes], sent: dict[int, Sent]) -> WireCount:
    """Sort ``payloads`` (in arrival order) by producer; count copies and strangers."""
    out = WireCount({t: [] for t in sent})
    seen: set[tuple[int, int]] = set()
    for raw in payloads:
        if len(raw) != PKT.size:
            out.strangers.append(raw)
            continue
        tag, idx, deadline = PKT.unpack(raw)
        s = sent.get(tag)
        if s is None or idx not in s.by_index or s.by_index[idx][0] != deadline:
            out.strangers.append(raw)
        elif (tag, idx) in seen:
            out.duplicates += 1
        else:
            seen.add((tag, idx))
            out.order[tag].append(idx)
    return out


def missing(wire: WireCount, sent: dict[int, Sent]) -> dict[int, list[int]]:
    """Per producer, the indexes queued that never arrived."""
    out = {}
    for tag, s in sent.items():
        lost = sorted(set(s.by_index) - set(wire.order[tag]))
        if lost:
            out[tag] = lost
    return out


class _PrefixMin:
    """Fenwick tree: the least value stored at ranks below a rank."""

    def __init__(self, n: int) -> None:
        self.t = [1 << 62] * (n + 1)

    def put(self, rank: int, value: int) -> None:
        i = rank + 1
        while i < len(self.t):
            self.t[i] = min(self.t[i], value)
            i += i & -i

    def below(self, rank: int) -> int:
        i, best = rank, 1 << 62
        while i > 0:
            best = min(best, self.t[i])
            i -= i & -i
        return best


def order_violations(arrived: list[int], s: Sent, limit: int = 5) -> list[str]:
    """Pairs of one producer's datagrams that left out of deadline order.

    The promise: datagrams leave in (deadline, submission) order, except that a
    datagram queued after another's deadline cannot go before it.  So p arriving
    before q is a violation when q's (deadline, index) is less than p's and q's
    send() returned before p's deadline.  For "now" datagrams (deadline 0) this is
    submission order.  Up to ``limit`` violations, described.
    """
    keys = sorted(arrived, key=lambda i: (s.by_index[i][0], i))
    rank = {idx: r for r, idx in enumerate(keys)}
    tree = _PrefixMin(len(keys))
    committed_at = {}
    out: list[str] = []
    for idx in reversed(arrived):                  # q are the ones arriving after p
        deadline, _ = s.by_index[idx]
        due = deadline if deadline else s.by_index[idx][1]
        earliest = tree.below(rank[idx])
        if earliest < due and len(out) < limit:
            q = next(i for i in arrived[arrived.index(idx):]
                     if rank[i] < rank[idx] and committed_at[i] == earliest)
            out.append(f"producer {s.tag}: #{idx} (deadline {deadline}) left before #{q} "
                       f"(deadline {s.by_index[q][0]}, queued {due - earliest} ns before "
                       f"#{idx}'s deadline)")
        committed_at[idx] = s.by_index[idx][1]
        tree.put(rank[idx], committed_at[idx])
    return out


def inverted_pairs(s: Sent, window: int = 2 * GROUP) -> int:
    """Pairs the order check holds to that were queued out of deadline order (a test
    that saw none tested nothing): q queued after p, deadline earlier, queued in time."""
    n = 0
    items = s.items
    for a, (_, dp, _) in enumerate(items):
        for _, dq, cq in items[a + 1:a + 1 + window]:
            n += dq < dp and cq < dp
    return n


def drops_counted(stats: dict[str, Any]) -> int:
    """Datagrams a udp channel's counters say it did not send, each with its reason:
    send errors, the impairment's losses, corrupt records."""
    return int(stats["tx_errors"]) + int(stats["imp_tx_lost"]) + int(stats["tx_corrupt_records"])


def check_reader(name: str, got: list[tuple[bytes, int, int]]) -> tuple[int, int, list[str]]:
    """One reader's packets: (received, lost in all, problems).  Ring seqs start at 0
    and each is the last one + 1 + what the reader was told it lost just before it."""
    problems: list[str] = []
    prev_seq, lost = -1, 0
    for _, seq, lost_here in got:
        if seq != prev_seq + 1 + lost_here and len(problems) < 5:
            problems.append(f"{name}: ring seq {seq} after {prev_seq} with lost={lost_here}")
        prev_seq = seq
        lost += lost_here
    return len(got), lost, problems
