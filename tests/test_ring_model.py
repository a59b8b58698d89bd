"""Stateful property tests: the rings against pure-Python models.

MPSC model: a deque of pending records and byte accounting of the ring - a record
takes align8(16 + len) bytes; when it does not fit before the end of the ring a
padding record fills the rest first; a put fits iff that span is at most
capacity - (tail - head rounded down to a 64-byte line: the consumer zeroes, and so
gives back, only whole lines); the consumer's head moves to the end of the last
record it consumed.

Broadcast model: the records of the ring by position; a record is intact while its
start is >= tail - capacity; head is the start of the oldest intact record; a
reader whose cursor fell behind tail - capacity is lapped, restarts at head, and
reports as lost exactly the seqs it skipped.
"""

import struct
from collections import deque

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from rtudp.shmring import BroadcastRing, MpscRing
from rtudp.shmring.errors import BackPressureError

TX_HDR = 16
BC_HDR = 24
CACHE_LINE = 64  # RTUDP_CACHE_LINE
SETTINGS = settings(
    max_examples=300,
    stateful_step_count=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_names = [None]  # the test's shm_names factory (fixtures cannot reach the machine)
_reached = {}  # how many examples reached each interesting state (wrap, full, lap...)


def reached(what):
    _reached[what] = _reached.get(what, 0) + 1


def align8(n):
    return (n + 7) & ~7


def make_payload(counter, size):
    return (struct.pack("<I", counter) + bytes([counter * 7 & 255]) * size)[:size]


# --------------------------------------------------------------------------- #
# MPSC
# --------------------------------------------------------------------------- #


class MpscMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.ring = None

    @initialize(cap=st.sampled_from([1024, 2048, 4096]))
    def setup(self, cap):
        self.name = _names[0]()
        self.ring = MpscRing.create(self.name, capacity=cap)
        self.cap = cap
        self.maxp = min(65507, cap // 4 - TX_HDR)
        assert self.ring.max_payload == self.maxp
        self.head = self.tail = 0
        self.pending = deque()  # (end position, payload, at_ns, flags)
        self.counter = 0
        self.consumed = self.consumed_bytes = 0
        self.full_try_put = 0  # failed try_puts
        self.full_other = 0  # failed put / put_many (may count too)
        self.wrapped = self.padded = False

    def teardown(self):
        if self.ring is not None:
            self.ring.close()
            self.ring.unlink()
            for what, yes in (("mpsc wrapped", self.wrapped), ("mpsc padded", self.padded),
                              ("mpsc full", self.full_try_put + self.full_other > 0)):
                if yes:
                    reached(what)

    # model --------------------------------------------------------------- #
    def span(self, size):
        need = align8(TX_HDR + size)
        to_end = self.cap - self.tail % self.cap
        return need if need <= to_end else to_end + need

    def fits(self, size):
        reusable_from = self.head & ~(CACHE_LINE - 1)
        return self.span(size) <= self.cap - (self.tail - reusable_from)

    def add(self, payload, at_ns=0, flags=0):
        span = self.span(len(payload))
        if span != align8(TX_HDR + len(payload)):
            self.padded = True
        self.tail += span
        if self.tail > self.cap:
            self.wrapped = True
        self.pending.append((self.tail, payload, at_ns, flags))

    def take(self):
        end, payload, at_ns, flags = self.pending.popleft()
        self.head = end
        self.consumed += 1
        self.consumed_bytes += len(payload)
        return payload, at_ns, flags

    def next_payload(self, size):
        self.counter += 1
        return make_payload(self.counter, size % (self.maxp + 1))

    # rules --------------------------------------------------------------- #
    @rule(size=st.integers(0, 1 << 16), at_ns=st.integers(0, 1 << 62), flags=st.integers(0, 0xFFFF))
    def try_put(self, size, at_ns, flags):
        payload = self.next_payload(size)
        expect = self.fits(len(payload))
        assert self.ring.try_put(payload, at_ns=at_ns, flags=flags) is expect, (
            f"try_put({len(payload)}) with head={self.head} tail={self.tail} cap={self.cap}: "
            f"model says {'room' if expect else 'full'}")
        if expect:
            self.add(payload, at_ns, flags)
        else:
            self.full_try_put += 1

    @rule(small=st.integers(0, 16))
    def try_put_large(self, small):
        payload = self.next_payload(self.maxp - small)
        expect = self.fits(len(payload))
        assert self.ring.try_put(payload) is expect
        if expect:
            self.add(payload)
        else:
            self.full_try_put += 1

    @rule(size=st.integers(0, 1 << 16))
    def put_no_wait(self, size):
        payload = self.next_payload(size)
        if self.fits(len(payload)):
            self.ring.put(payload, timeout=0)
            self.add(payload)
        else:
            with pytest.raises(BackPressureError):
                self.ring.put(payload, timeout=0)
            self.full_other += 2  # put = try_put + a waiting put: may count twice

    @rule(sizes=st.lists(st.integers(0, 1 << 16), min_size=1, max_size=8))
    def put_many_no_wait(self, sizes):
        payloads = [self.next_payload(s) for s in sizes]
        fit = 0
        for p in payloads:
            if not self.fits(len(p)):
                break
            self.add(p)
            fit += 1
        if fit == len(payloads):
            assert self.ring.put_many(payloads, timeout=0) == fit
        else:
            with pytest.raises(BackPressureError) as ei:
                self.ring.put_many(payloads, timeout=0)
            assert ei.value.sent == fit
            self.full_other += 2  # put = try_put + a waiting put: may count twice

    @rule()
    def get(self):
        if not self.pending:
            assert self.ring.try_get() is None
            with pytest.raises(TimeoutError):
                self.ring.get(timeout=0)
        else:
            payload, _, _ = self.take()
            assert self.ring.get(timeout=0) == payload

    @rule()
    def get_record(self):
        if self.pending:
            payload, at_ns, flags = self.take()
            rec = self.ring.get_record(timeout=0)
            assert (rec.data, rec.send_at_ns, rec.flags) == (payload, at_ns, flags)

    @rule(n=st.integers(1, 20))
    def get_many(self, n):
        want = [self.take()[0] for _ in range(min(n, len(self.pending)))]
        assert self.ring.get_many(n, timeout=0) == want

    @invariant()
    def counters(self):
        if self.ring is None:
            return
        st_ = self.ring.stats()
        assert st_["capacity"] == self.cap
        assert (st_["head"], st_["tail"]) == (self.head, self.tail)
        assert st_["pending_bytes"] == self.tail - self.head
        assert st_["records_consumed"] == self.consumed
        assert st_["bytes_consumed"] == self.consumed_bytes
        assert self.full_try_put <= st_["full_events"] <= self.full_try_put + self.full_other
        assert st_["unblocked_claims"] == 0
        assert st_["corrupt_records"] == 0


def test_mpsc_ring_against_model(shm_names):
    _names[0] = shm_names
    _reached.clear()
    run_state_machine_as_test(MpscMachine, settings=SETTINGS)
    for what in ("mpsc wrapped", "mpsc padded", "mpsc full"):
        assert _reached.get(what, 0) >= 10, f"too few examples reached {what!r}: {_reached}"


# --------------------------------------------------------------------------- #
# broadcast
# --------------------------------------------------------------------------- #


class Rec:
    __slots__ = ("start", "span", "seq", "payload", "time_ns", "flags")

    def __init__(self, start, span, seq=None, payload=None, time_ns=0, flags=0):
        self.start, self.span, self.seq = start, span, seq
        self.payload, self.time_ns, self.flags = payload, time_ns, flags


class ReaderModel:
    def __init__(self, rd, cursor, expected, from_oldest=False):
        self.rd, self.cursor, self.expected = rd, cursor, expected
        self.from_oldest = from_oldest
        self.lost = self.lapped = 0


class BroadcastMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.w = self.r = None

    @initialize(cap=st.sampled_from([1024, 2048, 4096]), from_oldest=st.booleans())
    def setup(self, cap, from_oldest):
        self.name = _names[0]()
        self.w = BroadcastRing.create(self.name, capacity=cap)
        self.r = BroadcastRing.attach(self.name)
        self.cap = cap
        self.maxp = min(65507, cap // 4 - BC_HDR)
        assert self.w.max_payload == self.maxp
        self.tail = self.head = self.next_seq = 0
        self.recs = deque()  # intact records, oldest first (padding has seq None)
        self.by_start = {}
        self.counter = 0
        self.bytes = 0
        self.readers = []
        self.new_reader(from_oldest)

    def teardown(self):
        if self.r is not None:
            self.r.close()
        if self.w is not None:
            self.w.close()
            self.w.unlink()
            if self.tail > self.cap:
                reached("bcast wrapped")
            if any(m.lost for m in self.readers):
                reached("bcast lost")
            if any(m.from_oldest and m.lost for m in self.readers):
                reached("bcast from_oldest lapped")

    # model --------------------------------------------------------------- #
    def model_write(self, payload, time_ns, flags):
        need = align8(BC_HDR + len(payload))
        to_end = self.cap - self.tail % self.cap
        new = []
        if need > to_end:
            new.append(Rec(self.tail, to_end))
            self.tail += to_end
        new.append(Rec(self.tail, need, self.next_seq, payload, time_ns, flags))
        self.tail += need
        self.next_seq += 1
        self.bytes += len(payload)
        for rec in new:
            self.recs.append(rec)
            self.by_start[rec.start] = rec
        while self.recs[0].start < self.tail - self.cap:  # overwritten
            del self.by_start[self.recs.popleft().start]
        self.head = self.recs[0].start

    def model_read(self, m):
        """The record reader m gets next, as (payload, seq, time_ns, flags, lost), or None."""
        if m.cursor == self.tail:
            return None
        if self.tail - m.cursor > self.cap:
            m.lapped += 1
            m.cursor = self.head
        rec = self.by_start[m.cursor]
        if rec.seq is None:  # padding
            m.cursor += rec.span
            rec = self.by_start[m.cursor]
        gap = rec.seq - m.expected
        assert gap >= 0
        m.expected = rec.seq + 1
        m.cursor += rec.span
        m.lost += gap
        return (rec.payload, rec.seq, rec.time_ns, rec.flags, gap)

    # rules --------------------------------------------------------------- #
    @precondition(lambda self: len(self.readers) < 3)
    @rule(from_oldest=st.booleans())
    def new_reader(self, from_oldest):
        rd = self.r.reader(from_oldest=from_oldest)
        if from_oldest:
            # it starts at the oldest intact record: whatever is overwritten before it
            # reads it counts as lost
            first = next((rec.seq for rec in self.recs if rec.seq is not None), self.next_seq)
            self.readers.append(ReaderModel(rd, self.head, first, from_oldest=True))
        else:
            self.readers.append(ReaderModel(rd, self.tail, self.next_seq))

    @rule(size=st.integers(0, 1 << 16), time_ns=st.integers(0, 1 << 62), flags=st.integers(0, 0xFFFF))
    def write(self, size, time_ns, flags):
        self.counter += 1
        payload = make_payload(self.counter, size % (self.maxp + 1))
        self.w.write(payload, time_ns=time_ns, flags=flags)
        self.model_write(payload, time_ns, flags)

    @rule(sizes=st.lists(st.integers(0, 1 << 16), min_size=1, max_size=12), large=st.booleans())
    def write_many(self, sizes, large):
        payloads = []
        for s in sizes:
            self.counter += 1
            payloads.append(make_payload(self.counter, self.maxp - s % 8 if large else s % (self.maxp + 1)))
        assert self.w.write_many(payloads, time_ns=5, flags=3) == len(payloads)
        for p in payloads:
            self.model_write(p, 5, 3)

    @rule(data=st.data())
    def read(self, data):
        m = data.draw(st.sampled_from(self.readers))
        want = self.model_read(m)
        if want is None:
            with pytest.raises(TimeoutError):
                m.rd.get_record(timeout=0)
        else:
            rec = m.rd.get_record(timeout=0)
            assert (rec.data, rec.seq, rec.time_ns, rec.flags, rec.lost) == want

    @rule(data=st.data(), n=st.integers(1, 40))
    def read_many(self, data, n):
        m = data.draw(st.sampled_from(self.readers))
        want = []
        for _ in range(n):
            r = self.model_read(m)
            if r is None:
                break
            want.append(r[0])
        assert m.rd.get_many(n, timeout=0) == want

    @invariant()
    def counters(self):
        if self.w is None:
            return
        for m in self.readers:
            assert (m.rd.lost, m.rd.lapped) == (m.lost, m.lapped)
        for s in (self.w.stats(), self.r.stats()):
            assert s["capacity"] == self.cap
            assert (s["tail"], s["head"], s["next_seq"]) == (self.tail, self.head, self.next_seq)
            assert s["records_written"] == self.next_seq
            assert s["bytes_written"] == self.bytes
            assert s["records_lost"] == sum(m.lost for m in self.readers)
            assert s["lapped_events"] == sum(m.lapped for m in self.readers)


def test_broadcast_ring_against_model(shm_names):
    _names[0] = shm_names
    _reached.clear()
    run_state_machine_as_test(BroadcastMachine, settings=SETTINGS)
    for what in ("bcast wrapped", "bcast lost"):
        assert _reached.get(what, 0) >= 10, f"too few examples reached {what!r}: {_reached}"


# --------------------------------------------------------------------------- #
# the model itself must be exercised where it matters (wraps, laps, padding)
# --------------------------------------------------------------------------- #


def test_models_reach_wraps_and_laps(shm_names):
    """Deterministic walk through the machines: guards against a model whose
    interesting branches are never reached (the properties would then prove little)."""
    _names[0] = shm_names
    m = MpscMachine()
    m.setup(1024)
    try:
        for i in range(200):
            m.try_put(37 * i % 241, i, i)
            m.try_put_large(i % 17)
            if i % 3 == 0:
                m.get_many(1 + i % 4)
            m.counters()
        assert m.wrapped and m.padded and m.full_try_put > 0
    finally:
        m.teardown()
    b = BroadcastMachine()
    b.setup(1024, False)
    try:
        for i in range(100):
            b.write(53 * i % 233, i, i)
            if i % 7 == 0:
                b.read_many(_FixedData(b.readers[0]), 3)
            b.counters()
        assert b.readers[0].lost > 0 and b.tail > 4 * 1024
    finally:
        b.teardown()


class _FixedData:
    def __init__(self, value):
        self.value = value

    def draw(self, _strategy):
        return self.value
