"""Broadcast ring: fan-out to reader processes, exact loss accounting, waits."""

import struct
import time

import pytest

from rtudp.shmring import BroadcastRing
from ring_waits import check_blocked_get_releases_the_gil, check_woken_in_other_process, measure_lateness

SEQ = struct.Struct("<Q")


def payload(seq):
    return SEQ.pack(seq) + bytes([seq % 251]) * (seq % 57)


def payload_ok(seq, data):
    return len(data) == 8 + seq % 57 and data == payload(seq)


# --------------------------------------------------------------------------- #
# children (spawn)
# --------------------------------------------------------------------------- #


def _reader(name, last_seq, ready, progress, conn, slow):
    r = BroadcastRing.attach(name)
    try:
        rd = r.reader()
        ready.set()
        if slow:
            time.sleep(0.2)  # the writer runs ahead and laps us
        prev = -1
        received = lost_sum = 0
        errors = []
        while prev < last_seq:
            try:
                rec = rd.get_record(timeout=30)
            except TimeoutError:
                errors.append(f"timeout after seq {prev}")
                break
            if rec.seq != prev + 1 + rec.lost:
                errors.append(f"seq {rec.seq} after {prev} with lost={rec.lost}")
            if not payload_ok(rec.seq, rec.data):
                errors.append(f"bad payload for seq {rec.seq}: {bytes(rec.data[:16])!r} len {len(rec.data)}")
            if len(errors) >= 10:
                break
            prev = rec.seq
            received += 1
            lost_sum += rec.lost
            if slow:
                if received % 5 == 0:
                    time.sleep(0.0005)
            elif received % 256 == 0:
                progress.value = received + lost_sum
        progress.value = received + lost_sum
        conn.send(
            dict(received=received, lost_sum=lost_sum, rd_lost=rd.lost, rd_lapped=rd.lapped,
                 last=prev, errors=errors)
        )
    finally:
        r.close()


def _start_readers(children, name, n, last_seq, slow):
    ctx = children.ctx
    readers = []
    for i in range(n):
        ready = ctx.Event()
        progress = ctx.RawValue("q", 0)
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        children.start(_reader, name, last_seq, ready, progress, child_conn, slow, name=f"reader{i}")
        readers.append((ready, progress, parent_conn))
    for ready, _, _ in readers:
        assert ready.wait(60), "reader never attached"
    return readers


def _results(children, readers):
    out = []
    for i, (_, _, conn) in enumerate(readers):
        assert conn.poll(120), f"reader{i} sent no result (exit codes {[p.exitcode for p in children.procs]})"
        out.append(conn.recv())
    children.join_all(timeout=30)
    return out


# --------------------------------------------------------------------------- #
# 5. fan-out
# --------------------------------------------------------------------------- #


def test_three_readers_see_everything_in_order(shm_name, children):
    n = 200_000
    window = 4000  # records in flight: <= 4000 * 88 bytes, far below the 1 MiB ring
    with BroadcastRing.create(shm_name, capacity=1 << 20) as w:
        readers = _start_readers(children, shm_name, 3, n - 1, slow=False)
        seq = 0
        nbatch = 0
        deadline = time.monotonic() + 240
        while seq < n:
            if seq - min(p.value for _, p, _ in readers) > window:
                assert not children.failed(), [(p.name, p.exitcode) for p in children.failed()]
                assert time.monotonic() < deadline, "readers stopped making progress"
                time.sleep(0.0002)
                continue
            batch = [payload(s) for s in range(seq, min(n, seq + 200))]
            if nbatch % 10 == 9:
                for b in batch:
                    w.write(b)
                written = len(batch)
            else:
                written = w.write_many(batch)
            assert written == len(batch)
            seq += written
            nbatch += 1
        results = _results(children, readers)
        for i, res in enumerate(results):
            assert res["errors"] == [], f"reader{i}: {res['errors']}"
            assert res["received"] == n, f"reader{i}: {res}"
            assert res["lost_sum"] == 0 and res["rd_lost"] == 0, f"reader{i}: {res}"
            assert res["last"] == n - 1
        st = w.stats()
        assert st["records_written"] == n
        assert st["next_seq"] == n
        assert st["records_lost"] == 0
        assert st["lapped_events"] == 0
        assert st["bytes_written"] == sum(8 + s % 57 for s in range(n))
        assert st["tail"] > w.capacity, "the ring did not wrap"


def test_slow_reader_reports_exact_loss(shm_name, children):
    n = 20_000
    with BroadcastRing.create(shm_name, capacity=4096) as w:
        readers = _start_readers(children, shm_name, 1, n - 1, slow=True)
        lost_before = w.stats()["records_lost"]
        assert lost_before == 0
        for start in range(0, n, 20):
            assert w.write_many([payload(s) for s in range(start, start + 20)]) == 20
            time.sleep(0.001)
        (res,) = _results(children, readers)
        assert res["errors"] == [], res["errors"]
        assert res["last"] == n - 1
        assert res["lost_sum"] > 0, "the slow reader was never lapped: test did not test anything"
        assert res["lost_sum"] + res["received"] == n, res
        assert res["rd_lost"] == res["lost_sum"], res
        assert res["rd_lapped"] >= 1
        st = w.stats()
        assert st["records_lost"] == res["lost_sum"]
        assert st["lapped_events"] == res["rd_lapped"]
        assert st["records_written"] == n


def test_lapped_reader_in_process_exact_accounting(shm_name):
    with BroadcastRing.create(shm_name, capacity=4096) as w, BroadcastRing.attach(shm_name) as r:
        rd = r.reader()
        rd2 = r.reader()
        n = 1000
        for s in range(n):
            w.write(payload(s))
        prev, received, lost = -1, 0, 0
        while True:
            try:
                rec = rd.get_record(timeout=0)
            except TimeoutError:
                break
            assert rec.seq == prev + 1 + rec.lost
            assert payload_ok(rec.seq, rec.data)
            prev, received, lost = rec.seq, received + 1, lost + rec.lost
        assert prev == n - 1
        assert lost > 0 and received + lost == n
        assert rd.lost == lost and rd.lapped == 1
        # a second reader in the same state loses exactly the same records
        got = []
        while True:
            batch = rd2.get_many(64, timeout=0)
            if not batch:
                break
            got += batch
        assert got == [payload(s) for s in range(n - received, n)]
        assert rd2.lost == lost
        st = w.stats()
        assert st["records_lost"] == 2 * lost
        assert st["lapped_events"] == 2


def test_reader_starts_at_tail_or_oldest_and_carries_stamps(shm_name):
    with BroadcastRing.create(shm_name, capacity=1 << 16) as w:
        w.write(b"old0")
        w.write(b"old1")
        with BroadcastRing.attach(shm_name) as r:
            new = r.reader()
            oldest = r.reader(from_oldest=True)
            with pytest.raises(TimeoutError):
                new.get(timeout=0)
            w.write(b"new", time_ns=123456789, flags=0xBEEF)
            rec = new.get_record(timeout=1)
            assert (rec.data, rec.seq, rec.time_ns, rec.flags, rec.lost) == (b"new", 2, 123456789, 0xBEEF, 0)
            assert oldest.get_many(10, timeout=1) == [b"old0", b"old1", b"new"]
            assert oldest.lost == 0 and new.lost == 0
            assert r.stats()["records_written"] == 3


# --------------------------------------------------------------------------- #
# waits
# --------------------------------------------------------------------------- #


def test_reader_get_timeout(shm_name):
    with BroadcastRing.create(shm_name, capacity=4096) as _writer, BroadcastRing.attach(shm_name) as r:
        rd = r.reader()

        def timed_out():
            with pytest.raises(TimeoutError):
                rd.get(timeout=0.02)

        best, medians = measure_lateness(timed_out, 0.02)
        assert best < 0.002, f"median lateness beyond a plain sleep's, per round (s): {medians}"
        t0 = time.monotonic()
        assert rd.get_many(10, timeout=0.02) == []
        assert time.monotonic() - t0 >= 0.02


def test_blocked_reader_get_releases_the_gil(shm_name):
    with BroadcastRing.create(shm_name, capacity=4096) as w, BroadcastRing.attach(shm_name) as r:
        rd = r.reader()
        check_blocked_get_releases_the_gil(lambda: rd.get(timeout=None), w.write)


def test_blocked_reader_in_other_process_woken_by_write(shm_name, children):
    with BroadcastRing.create(shm_name, capacity=4096) as w:
        check_woken_in_other_process(children, BroadcastRing, True, shm_name, w.write)
