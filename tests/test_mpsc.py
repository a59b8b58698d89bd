"""MPSC ring: cross-process delivery, back-pressure, dead claims, futex waits."""

import os
import random
import struct
import threading
import time
import zlib

import pytest

import rtudp
from rtudp.shmring import MpscRing
from rtudp.shmring.errors import BackPressureError, RtUdpError
from ring_waits import check_blocked_get_releases_the_gil, check_woken_in_other_process, measure_lateness

# message = header + random body; header: producer id, body size, seq, crc32(body)
HDR = struct.Struct("<HHII")


def align8(n):
    return (n + 7) & ~7


# --------------------------------------------------------------------------- #
# children (module level: they are started with the "spawn" context)
# --------------------------------------------------------------------------- #


def _producer(name, prod_id, n, seed, batch):
    rnd = random.Random(seed)
    pool = rnd.randbytes(1 << 16)
    limit = len(pool) - 1024
    ring = MpscRing.attach(name)
    try:
        seq = 0
        nbatch = 0
        while seq < n:
            msgs = []
            for _ in range(min(batch, n - seq)):
                size = rnd.randint(1, 1024)
                off = rnd.randrange(limit)
                body = pool[off:off + size]
                msgs.append(HDR.pack(prod_id, size, seq, zlib.crc32(body)) + body)
                seq += 1
            if nbatch % 8 == 7:
                for m in msgs:  # single puts too, not only batches
                    ring.put(m, timeout=120)
            else:
                sent = ring.put_many(msgs, timeout=120)
                assert sent == len(msgs), (sent, len(msgs))
            nbatch += 1
    finally:
        ring.close()


def _claim_and_die(name):
    ring = MpscRing.attach(name)
    c = ring.claim(100)
    c.buffer[:] = b"Z" * 100
    os._exit(0)  # dies holding the claim, never commits


# --------------------------------------------------------------------------- #
# 1. cross-process MPSC
# --------------------------------------------------------------------------- #


def test_cross_process_mpsc_exactly_once_in_order(shm_name, children):
    producers, per_producer = 4, 250_000
    total = producers * per_producer
    with MpscRing.create(shm_name, capacity=4 << 20) as ring:
        for i in range(producers):
            children.start(_producer, shm_name, i, per_producer, 1000 + i, 256, name=f"producer{i}")
        expected = [0] * producers
        received = 0
        payload_bytes = 0
        errors = []
        crc32 = zlib.crc32
        unpack = HDR.unpack_from
        deadline = time.monotonic() + 240  # hang guard only; normally ~10 s
        while received < total:
            msgs = ring.get_many(1024, timeout=0.5)
            if not msgs:
                bad = children.failed()
                assert not bad, f"producer died: {[(p.name, p.exitcode) for p in bad]}"
                assert time.monotonic() < deadline, f"only {received}/{total} received"
                continue
            for m in msgs:
                pid, size, seq, crc = unpack(m)
                if (
                    pid >= producers
                    or seq != expected[pid]
                    or len(m) != HDR.size + size
                    or crc32(memoryview(m)[HDR.size:]) != crc
                ):
                    errors.append((pid, seq, expected[pid] if pid < producers else None, size, len(m)))
                    if len(errors) >= 10:
                        pytest.fail(f"bad messages (pid, seq, expected seq, size, len): {errors}")
                    if pid < producers:
                        expected[pid] = seq + 1
                else:
                    expected[pid] += 1
                payload_bytes += len(m)
            received += len(msgs)
        assert not errors, f"bad messages (pid, seq, expected seq, size, len): {errors}"
        assert received == total
        assert expected == [per_producer] * producers
        children.join_all(timeout=60)
        assert ring.try_get() is None, "more messages than were sent"
        st = ring.stats()
        assert st["records_consumed"] == total
        assert st["bytes_consumed"] == payload_bytes
        assert st["corrupt_records"] == 0


# --------------------------------------------------------------------------- #
# 2. back-pressure
# --------------------------------------------------------------------------- #


def _msg(i):
    return struct.pack("<I", i) + bytes([i % 251]) * (i % 90)


def _fill(ring):
    """try_put numbered messages until the ring is full; the messages it took."""
    sent = []
    while ring.try_put(_msg(len(sent))):
        sent.append(_msg(len(sent)))
        assert len(sent) < 4096, "ring never became full"
    return sent


def test_errors_are_rtudp_errors():
    assert issubclass(BackPressureError, RtUdpError)
    assert rtudp.BackPressureError is BackPressureError
    assert rtudp.RtUdpError is RtUdpError


def test_try_put_false_when_full_put_timeout_raises_nothing_dropped(shm_name):
    with MpscRing.create(shm_name, capacity=4096) as ring:
        sent = _fill(ring)
        i = len(sent)
        assert len(sent) >= 4096 // align8(16 + 4 + 89) - 1
        assert not ring.try_put(_msg(i)), "still full: try_put must keep failing"
        assert ring.stats()["full_events"] >= 2

        t0 = time.monotonic()
        with pytest.raises(BackPressureError) as ei:
            ring.put(_msg(i), timeout=0.05)
        elapsed = time.monotonic() - t0
        assert isinstance(ei.value, rtudp.RtUdpError)
        assert 0.049 <= elapsed < 3.0, f"put(timeout=0.05) gave up after {elapsed:.4f}s"

        got = ring.get_many(100_000, timeout=0)
        while True:
            more = ring.get_many(100_000, timeout=0)
            if not more:
                break
            got += more
        assert got == sent, "records were dropped, duplicated or reordered"
        # space is back: put works again
        ring.put(b"after", timeout=0.05)
        assert ring.get(timeout=0) == b"after"
        st = ring.stats()
        assert st["records_consumed"] == len(sent) + 1


def test_put_waits_for_space_and_is_woken_by_consumer(shm_name):
    with MpscRing.create(shm_name, capacity=4096) as ring:
        sent = _fill(ring)
        i = len(sent)
        blocked = []
        done = threading.Event()

        def producer():
            for j in range(i, i + 50):
                ring.put(_msg(j), timeout=30)
                blocked.append(_msg(j))
            done.set()

        t = threading.Thread(target=producer)
        t.start()
        try:
            time.sleep(0.1)
            assert not done.is_set(), "put returned although the ring was full"
            got = []
            deadline = time.monotonic() + 30
            while len(got) < len(sent) + 50 and time.monotonic() < deadline:
                got += ring.get_many(7, timeout=1.0)
                time.sleep(0.001)
        finally:
            t.join(30)
        assert not t.is_alive()
        assert done.is_set()
        assert got == sent + blocked


def test_put_many_partial_raises_with_sent(shm_name):
    with MpscRing.create(shm_name, capacity=4096) as ring:
        assert ring.put_many([b"a" * 10, b"b" * 20]) == 2
        assert ring.get_many(10, timeout=0) == [b"a" * 10, b"b" * 20]
        batch = [bytes([k]) * 100 for k in range(100)]  # 120 bytes each on the ring
        t0 = time.monotonic()
        with pytest.raises(BackPressureError) as ei:
            ring.put_many(batch, timeout=0.05)
        assert time.monotonic() - t0 >= 0.049
        sent = ei.value.sent
        assert 0 < sent < 100
        assert sent >= 4096 // 120 - 2
        got = ring.get_many(1000, timeout=0)
        assert got == batch[:sent], "put_many must put exactly the first .sent records"
        assert ring.try_get() is None


@pytest.mark.parametrize("capacity, max_payload", [(1024, 240), (4096, 1008), (1 << 18, 65507), (1 << 20, 65507)])
def test_too_big_is_value_error_naming_both_sizes(shm_name, capacity, max_payload):
    with MpscRing.create(shm_name, capacity=capacity) as ring:
        assert ring.capacity == capacity
        assert ring.max_payload == max_payload
        assert ring.name == shm_name
        big = b"x" * (max_payload + 1)
        calls = [
            lambda: ring.try_put(big),
            lambda: ring.put(big, timeout=0),
            lambda: ring.put_many([b"ok", big], timeout=0),
        ]
        for call in calls:
            with pytest.raises(ValueError) as ei:
                call()
            msg = str(ei.value)
            assert str(max_payload + 1) in msg and str(max_payload) in msg, msg
        # nothing went in (put_many validates before putting anything, or puts only "ok")
        rest = ring.get_many(10, timeout=0)
        assert rest in ([], [b"ok"])
        # exactly max_payload fits
        exact = bytes(range(256)) * (max_payload // 256) + b"y" * (max_payload % 256)
        assert ring.try_put(exact)
        assert ring.get(timeout=0) == exact


# --------------------------------------------------------------------------- #
# 3. a producer that claims and dies
# --------------------------------------------------------------------------- #


def test_dead_claim_is_unblocked_by_consumer(shm_name, children):
    with MpscRing.create(shm_name, capacity=1 << 16) as ring:
        before = [b"before%d" % k for k in range(3)]
        for m in before:
            ring.put(m)
        p = children.start(_claim_and_die, shm_name, name="claimer")
        p.join(30)
        assert p.exitcode == 0

        after = [b"after%d" % k * (k + 1) for k in range(5)]
        with MpscRing.attach(shm_name) as producer:
            for m in after:
                producer.put(m)

        assert ring.get_many(100, timeout=0) == before
        # the committed records behind the open claim are not visible yet
        assert ring.try_get() is None
        with pytest.raises(TimeoutError):
            ring.get(timeout=0.05)
        t_first = time.monotonic()
        assert ring.unblock(10 * 10**9) is False, "a claim open for < 10 s was unblocked"
        assert ring.try_get() is None
        deadline = time.monotonic() + 10
        while not ring.unblock(50_000_000):  # what a consumer loop does
            assert ring.try_get() is None
            assert time.monotonic() < deadline, "unblock(50 ms) never recovered the dead claim"
            time.sleep(0.002)
        waited = time.monotonic() - t_first
        assert waited >= 0.049, f"claim unblocked after {waited:.4f}s < 50 ms"

        got = ring.get_many(100, timeout=1.0)
        while len(got) < len(after):
            more = ring.get_many(100, timeout=1.0)
            assert more, f"only got {got}"
            got += more
        assert got == after, "the dead claim's bytes must not be delivered"
        assert ring.stats()["unblocked_claims"] == 1
        assert ring.unblock(0) is False  # nothing stuck any more

        # the ring keeps working across several wraps
        for k in range(2000):
            m = b"%d" % k * (k % 40 + 1)
            ring.put(m, timeout=1)
            assert ring.get(timeout=1) == m
        st = ring.stats()
        assert st["unblocked_claims"] == 1
        assert st["corrupt_records"] == 0


def test_claim_commit_roundtrip(shm_name):
    with MpscRing.create(shm_name, capacity=4096) as ring:
        c = ring.claim(5)
        assert len(c.buffer) == 5
        c.buffer[:] = b"hello"
        assert ring.try_get() is None, "uncommitted claim visible"
        c.commit(at_ns=123, flags=7)
        rec = ring.get_record(timeout=0)
        assert (rec.data, rec.send_at_ns, rec.flags) == (b"hello", 123, 7)


# --------------------------------------------------------------------------- #
# 4. futex waits
# --------------------------------------------------------------------------- #


def test_get_timeout_precision(shm_name):
    with MpscRing.create(shm_name, capacity=4096) as ring:
        assert ring.try_get() is None
        with pytest.raises(TimeoutError):
            ring.get(timeout=0)
        assert ring.get_many(10, timeout=0) == []

        def timed_out():
            with pytest.raises(TimeoutError):
                ring.get(timeout=0.02)

        best, medians = measure_lateness(timed_out, 0.02)
        assert best < 0.002, f"median lateness beyond a plain sleep's, per round (s): {medians}"
        for fn, empty in ((lambda: ring.get_many(10, timeout=0.02), []), (lambda: ring.wait(timeout=0.02), False)):
            t0 = time.monotonic()
            assert fn() == empty
            assert time.monotonic() - t0 >= 0.02


def test_blocked_get_releases_the_gil(shm_name):
    with MpscRing.create(shm_name, capacity=4096) as ring:
        check_blocked_get_releases_the_gil(lambda: ring.get(timeout=None), ring.put)


def test_blocked_reader_in_other_process_woken_by_put(shm_name, children):
    with MpscRing.create(shm_name, capacity=4096) as ring:
        check_woken_in_other_process(children, MpscRing, False, shm_name, ring.put)
