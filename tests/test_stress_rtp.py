"""Stress invariants of ``rtp`` channels (issue 41), under the stress harness's faults.

- On the wire, seen by a plain socket that parses the RTP header itself: the sequence
  number advances by exactly one per frame sent, never backwards, never repeated, with
  one SSRC, while the sending worker is stopped now and then (SIGSTOP 1-20 ms) and
  every CPU runs a busy loop, and across a SIGKILL of that worker (the pool restarts
  it).  The timestamp advances by whole packet times (more after an underrun, which
  then carries the marker).
- At a receiving rtp channel (jitter buffer), with the sender's worker losing,
  duplicating and reordering datagrams (its own impairment: netem does not work
  here) and both workers stopped now and then: every frame sent is delivered exactly
  once or covered by exactly one erasure, in order, and the public counters (the
  sender's, the receiver's, the kernel's drops) add up to what was sent: nothing is
  dropped without a count.  Also across SIGKILLs of the receiving worker: what the
  dead worker held unreleased is erased.

Each test asserts guarantees, never timings: they must hold on a loaded 2-vCPU VM.
"""
from __future__ import annotations

import socket
import struct
import time
from typing import Any, Iterable

import pytest

import rtudp
from fake_worker import worker_argv
from rtudp.rtp.channel import RtpChannel, RtpFrame
from stress_harness import (CpuHogs, Staller, WireObserver, channel_worker_pid, kill_worker,
                            rng, seed_note, wait_until)

pytestmark = [pytest.mark.stress,
              pytest.mark.rtudp(worker=worker_argv(), rt_priority=0)]

RTP = struct.Struct("!BBHII")
INDEX = struct.Struct("!I")
CLOCK_RATE = 8000
PTIME_MS = 1
STEP = CLOCK_RATE * PTIME_MS // 1000  # timestamp ticks per packet time
PAD = bytes(36)                       # a frame's payload: its index, then this


def payload(i: int) -> bytes:
    """Frame ``i``'s payload: its index first, so the wire and the receiver name it."""
    return INDEX.pack(i) + PAD


def index_of(data: bytes) -> int:
    """The frame index a payload carries."""
    return int(INDEX.unpack_from(data)[0])


def parse_rtp(datagram: bytes) -> tuple[int, int, int, int, int]:
    """(marker, seq, ts, ssrc, frame index) of an RTP datagram from the wire."""
    assert len(datagram) == RTP.size + INDEX.size + len(PAD), f"odd datagram {datagram!r}"
    b0, b1, seq, ts, ssrc = RTP.unpack_from(datagram)
    assert b0 == 0x80, f"not an RTP v2 header without CSRCs: first byte {b0:#x}"
    return b1 >> 7, seq, ts, ssrc, index_of(datagram[RTP.size:])


def queue_frames(ch: RtpChannel, indices: Iterable[int], timeout: float = 15.0) -> None:
    """Queue the frames ``indices`` in order, waiting for room on back-pressure."""
    todo = [payload(i) for i in indices]
    deadline = time.monotonic() + timeout
    while todo:
        try:
            todo = todo[ch.send_many(todo):]
        except rtudp.BackPressureError as exc:
            todo = todo[exc.sent:]
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(todo)} frames never found room in "
                                     f"{timeout} s") from None
            time.sleep(0.002)


def worker_pid(pool: rtudp.Pool, ch: Any) -> int:
    """The pid of the worker serving ``ch`` now (it changes when it is restarted)."""
    return int(pool.workers()[ch.worker]["pid"])


def check_wire(datagrams: list[bytes], n: int, ssrc: int, first_seq: int) -> str:
    """Frames 0..n-1 on the wire: each once, in order, seq advancing by one from
    ``first_seq``, one SSRC, timestamps by whole packet times (the marker exactly
    where the clock skipped).  A short summary for the report."""
    parsed = [parse_rtp(d) for d in datagrams]
    got = [p[4] for p in parsed]
    assert got == list(range(n)), \
        f"frames on the wire out of order, missing or repeated: {summarize(got)} {seed_note()}"
    seqs = [p[1] for p in parsed]
    bad = [(k, seqs[k - 1], seqs[k]) for k in range(1, n)
           if seqs[k] != (seqs[k - 1] + 1) & 0xFFFF]
    assert seqs[0] == first_seq and not bad, \
        (f"sequence numbers do not advance by one per frame: first {seqs[0]} (expected "
         f"{first_seq}), breaks (position, before, after) {bad[:10]} {seed_note()}")
    ssrcs = sorted({p[3] for p in parsed})
    assert ssrcs == [ssrc], f"SSRC changed on the wire: {[hex(s) for s in ssrcs]} {seed_note()}"
    skips = 0
    for k in range(1, n):
        d = (parsed[k][2] - parsed[k - 1][2]) & 0xFFFFFFFF
        assert d >= STEP and d % STEP == 0, \
            f"timestamp moved by {d} ticks at frame {k}, not whole packet times {seed_note()}"
        assert parsed[k][0] == (d > STEP), \
            f"frame {k}: marker {parsed[k][0]} after a {d}-tick step {seed_note()}"
        skips += d > STEP
    return f"{n} frames, seq {seqs[0]}..{seqs[-1]}, {skips} underrun skips"


def summarize(indices: list[int]) -> str:
    """Where a list of frame indices first departs from 0, 1, 2, ..."""
    for k, i in enumerate(indices):
        if i != k:
            return f"{len(indices)} frames, position {k} holds {indices[k:k + 5]}"
    return f"{len(indices)} frames, in order"


# ------------------------------------------------------------------ sending


def test_wire_sequence_under_stalls_and_cpu_hogs(rtudp_pool: rtudp.Pool) -> None:
    """3000 paced frames while the sending worker is stopped 1-20 ms at random
    moments and every CPU is busy: each frame on the wire once, seq + 1 each."""
    n = 3000
    with WireObserver() as wire:
        tx = rtudp_pool.open_channel("tx", remote=wire.addr, direction=0, kind="rtp",
                                     capacity=1024, options={"clock_rate": CLOCK_RATE,
                                                             "ptime_ms": PTIME_MS})
        first_seq = tx.rtp_stats()["tx_next_seq"]
        with CpuHogs(), Staller(lambda: channel_worker_pid(rtudp_pool, tx),
                                rng("rtp-wire-stalls")) as staller:
            queue_frames(tx, range(n))
            wait_until(lambda: len(wire.packets) >= n or tx.stats()["tx_packets"] >= n,
                       30, f"{n} frames sent")
            staller.wait_stalls(20, 30)
        wire.wait_for(n, 5)
        time.sleep(0.05)  # a datagram sent twice would arrive now
        datagrams = wire.payloads()
        assert wire.kernel_drops == 0, f"the observer's own buffer dropped {wire.kernel_drops}"
    summary = check_wire(datagrams, n, tx.ssrc, first_seq)
    st = tx.stats()
    assert st["rtp_tx_frames"] == n and st["tx_packets"] == n, st
    assert st["rtp_tx_bad_records"] == 0 and st["tx_errors"] == 0, st
    print(f"\nrtp wire under stalls: {summary}; {staller.summary()}; "
          f"underruns {st['rtp_tx_underruns']} {seed_note()}")


def test_wire_sequence_across_worker_kills(rtudp_pool: rtudp.Pool) -> None:
    """Paced frames queued far ahead; the sending worker SIGKILLed twice while they
    leave (the pool restarts it).  On the wire: each frame once, in order, seq + 1
    each, one SSRC, the same as without the kills."""
    n, kills = 2400, 2
    pool = rtudp_pool
    with WireObserver() as wire:
        tx = pool.open_channel("tx", remote=wire.addr, direction=0, kind="rtp",
                               capacity=4096, options={"clock_rate": CLOCK_RATE,
                                                       "ptime_ms": PTIME_MS})
        first_seq, ssrc = tx.rtp_stats()["tx_next_seq"], tx.ssrc
        with CpuHogs():
            queue_frames(tx, range(n))  # 2.4 s of frames, all queued at once
            for k in range(kills):
                # mid-stream: frames have left, many more wait with headers written
                wait_until(lambda: len(wire.packets) >= (k + 1) * n // (kills + 2), 30,
                           f"frames on the wire before kill {k + 1}")
                kill_worker(pool, worker_pid(pool, tx))
            wait_until(lambda: len(wire.packets) >= n, 30, f"{n} frames on the wire")
        time.sleep(0.05)
        datagrams = wire.payloads()
        assert wire.kernel_drops == 0, f"the observer's own buffer dropped {wire.kernel_drops}"
    st = tx.stats()
    assert st["worker_restarts"] == kills, st["worker_restarts"]
    # the one datagram in flight at a kill may leave twice (docs/tx-journal.md): as the
    # same bytes, it is a repeat the receiver sees as a duplicate; drop those first
    seen: set[bytes] = set()
    unique = []
    for d in datagrams:
        if d not in seen:
            seen.add(d)
            unique.append(d)
    repeats = len(datagrams) - len(unique)
    assert repeats <= kills, f"{repeats} datagrams sent twice over {kills} kills {seed_note()}"
    summary = check_wire(unique, n, ssrc, first_seq)
    assert tx.ssrc == ssrc
    print(f"\nrtp wire across {kills} worker kills: {summary}; {repeats} repeated; "
          f"restart left {st['tx_restart_left']} resent {st['tx_restart_resent']}")


# ------------------------------------------------------------------ receiving


def read_frames(rx: RtpChannel, n: int, quiet_s: float = 3.0) -> list[RtpFrame]:
    """Every frame ``rx`` delivers until its packets and erasures cover ``n`` frames,
    or nothing came for ``quiet_s`` s (then the caller's checks say what is missing)."""
    out: list[RtpFrame] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        got = rx.recv_many(512, timeout=0.05)
        if got:
            out += got
            last = time.monotonic()
            continue
        st = rx.rtp_stats()
        if st["rx_frames"] + st["rx_erased"] >= n:
            return out + rx.recv_many(512, timeout=0.1)
    return out


def check_frames(frames: list[RtpFrame], n: int, first_seq: int) -> tuple[set[int], set[int]]:
    """Frames 0..n-1 (sent with seq ``first_seq`` + index) as the jitter buffer gave
    them: each a packet once or inside one erasure, in order, nothing else.  The
    indices (delivered, erased)."""
    assert all(f.lost == 0 for f in frames), "the reader fell a ring behind: size the ring"
    assert frames and not frames[0].erasure, "the first frame sent is delivered (no loss there)"
    base = frames[0].lseq  # extended seq of frame 0
    assert frames[0].seq == first_seq and index_of(frames[0].payload) == 0
    delivered: set[int] = set()
    erased: set[int] = set()
    expect = 0  # the next index the frames must cover
    for f in frames:
        lo, hi = f.lseq - base, f.lseq_end - base
        assert lo == expect and hi >= lo, \
            (f"frame covering {lo}..{hi} where {expect} was due: frames are not in order, "
             f"repeat or skip one {seed_note()}")
        if f.erasure:
            erased.update(range(lo, hi + 1))
        else:
            assert index_of(f.payload) == lo and f.seq == (first_seq + lo) & 0xFFFF, \
                f"lseq {lo} carries frame {index_of(f.payload)} (seq {f.seq}) {seed_note()}"
            delivered.add(lo)
        expect = hi + 1
    assert expect == n, f"the frames cover 0..{expect - 1}, {n} were sent {seed_note()}"
    return delivered, erased


@pytest.mark.parametrize("latency_ms", [60, 0], ids=["time-mode", "count-mode"])
def test_receiver_accounts_for_every_frame(rtudp_pool: rtudp.Pool, latency_ms: int) -> None:
    """Head frames clean, then a body the sending worker loses 5 %, duplicates 2 % and
    reorders 3 % of, then a clean tail (so the jitter buffer knows the last gap),
    with both workers stopped 1-20 ms now and then and every CPU busy.  During the
    body a plain socket also sends strays: junk, another SSRC's packets, and our
    SSRC's packets far off the sequence.  Every frame is delivered once or erased
    once, in order; the counters add up, strays included."""
    head, body, tail = 50, 2000, 200
    n = head + body + tail
    pool = rtudp_pool
    rnd = rng(f"rtp-receiver-{latency_ms}")
    rx = pool.open_channel("rx", kind="rtp", direction=1, capacity=4 * n,
                           options={"clock_rate": CLOCK_RATE, "ptime_ms": PTIME_MS,
                                    "latency_ms": latency_ms, "jb_capacity": 64})
    tx = pool.open_channel("tx", remote=rx.local, direction=0, kind="rtp", capacity=4096,
                           options={"clock_rate": CLOCK_RATE, "ptime_ms": PTIME_MS})
    first_seq = tx.rtp_stats()["tx_next_seq"]
    with CpuHogs(), Staller(lambda: channel_worker_pid(pool, tx) + channel_worker_pid(pool, rx),
                            rnd) as staller:
        queue_frames(tx, range(head))
        # the head left whole before the impairment starts (count mode releases
        # nothing before jb_capacity frames wait: the receiver is not asked)
        wait_until(lambda: sent_records(tx.stats()) >= head, 30, "the head sent")
        tx.set_impairment(loss=0.05, duplicate=0.02, reorder=0.03, reorder_ns=3_000_000,
                          seed=rnd.getrandbits(32))
        # the source is validated (2 packets in) before strays can come
        wait_until(lambda: rx.stats()["rx_packets"] >= head, 30, "the head received")
        queue_frames(tx, range(head, head + body))
        # every body record left or was lost before the impairment goes (held ones
        # keep their ring space until they leave: tx_packets counts them)
        strays = send_strays(rx, tx, first_seq, rnd,
                             until=lambda: sent_records(tx.stats()) >= head + body)
        tx.set_impairment(None)
        queue_frames(tx, range(head + body, n))
        frames = read_frames(rx, n)
        staller.wait_stalls(20, 30)
    delivered, erased = check_frames(frames, n, first_seq)
    time.sleep(0.1)  # late copies (duplicates, reordered) still on their way are counted
    txs, rxs = tx.stats(), rx.stats()
    lost, dups = txs["imp_tx_lost"], txs["imp_tx_duplicated"]
    report = (f"delivered {len(delivered)} erased {len(erased)} in "
              f"{rxs['rtp_rx_erasures']} erasures; tx lost {lost} duplicated {dups} "
              f"reordered {txs['imp_tx_reordered']}; rx dup {rxs['rtp_rx_duplicates']} late "
              f"{rxs['rtp_rx_late']} reordered {rxs['rtp_rx_reordered']} kernel drops "
              f"{rxs['rx_kernel_drops']}; strays {strays}, bad_seq {rxs['rtp_rx_bad_seq']} held "
              f"aside {rxs['rtp_rx_held_aside']}; {staller.summary()} {seed_note()}")
    # the sender: every frame given a header; each left once, twice or was lost
    assert txs["rtp_tx_frames"] == n and txs["tx_errors"] == 0, report
    assert txs["tx_packets"] == n - lost + dups, report
    assert lost > 0 and dups > 0, f"the impairment did nothing: {report}"
    # the wire (loopback): what left arrived, or the receiving kernel counted its drop
    assert rxs["rx_packets"] + rxs["rx_kernel_drops"] == txs["tx_packets"] + \
        sum(strays.values()), report
    # the strays, each counted as what it is (a far jump: given up, or held aside
    # until the next one)
    assert rxs["rtp_rx_invalid"] == strays["junk"], (strays, report)
    assert rxs["rtp_rx_other_ssrc"] == strays["other_ssrc"], (strays, report)
    assert rxs["rtp_rx_bad_seq"] + rxs["rtp_rx_held_aside"] == strays["far_jump"], \
        (strays, report)
    # the receiver: what the reader got is what the counters say
    assert rxs["rtp_rx_frames"] == len(delivered), report
    assert rxs["rtp_rx_erasures"] == sum(f.erasure for f in frames), report
    assert rxs["rtp_rx_erased"] == len(erased), report
    # each datagram that arrived: a frame, a duplicate, late (its place erased), or
    # counted as not RTP / another source / without a buffer
    accounted = (rxs["rtp_rx_frames"] + rxs["rtp_rx_duplicates"] + rxs["rtp_rx_late"] +
                 rxs["rtp_rx_invalid"] + rxs["rtp_rx_other_ssrc"] + rxs["rtp_rx_no_buffer"] +
                 rxs["rtp_rx_bad_seq"] + rxs["rtp_rx_probation_dropped"] +
                 rxs["rtp_rx_held_aside"])
    assert rxs["rx_packets"] == accounted, report
    # erased: the ones lost on the way, and ones that came after their place was given
    # up (late) or that the kernel dropped; never one that simply vanished
    assert len(erased) >= lost, report
    assert len(erased) - lost <= rxs["rtp_rx_late"] + rxs["rx_kernel_drops"], report
    print(f"\nrtp receiver ({'count' if not latency_ms else 'time'} mode): {report}")


def send_strays(rx: RtpChannel, tx: RtpChannel, first_seq: int, rnd: Any,
                until: Any) -> dict[str, int]:
    """From a plain socket, a stray datagram into ``rx`` every 5-30 ms until
    ``until()``: junk (not RTP), a packet of another SSRC, or one of the stream's SSRC
    far ahead of its sequence (never two in a row that continue each other, which
    would be a sender restart).  How many of each."""
    sent = {"junk": 0, "other_ssrc": 0, "far_jump": 0}
    ssrc = tx.ssrc
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while not until():
            kind = rnd.choice(sorted(sent))
            if kind == "junk":
                data = bytes([0x40]) + rnd.randbytes(rnd.randint(0, 40))  # version 1
            else:
                other = (ssrc + 1 + rnd.getrandbits(16)) & 0xFFFFFFFF
                seq = (first_seq + 30000 + 2 * rnd.randint(0, 10000)) & 0xFFFF
                data = RTP.pack(0x80, 0, seq, rnd.getrandbits(32),
                                other if kind == "other_ssrc" else ssrc) + payload(0)
            s.sendto(data, rx.local)
            sent[kind] += 1
            time.sleep(rnd.uniform(0.005, 0.03))
    return sent


def sent_records(st: dict[str, int]) -> int:
    """TX records done with: left (each copy counted once) or lost by the impairment."""
    return st["tx_packets"] - st["imp_tx_duplicated"] + st["imp_tx_lost"]


def test_receiver_accounts_across_its_worker_kills(rtudp_pool: rtudp.Pool) -> None:
    """Paced frames into a jitter buffer whose worker is SIGKILLed twice (the pool
    restarts it) while the sender's worker loses 10 % of the body's datagrams, so the
    jitter buffer holds frames behind a gap when it dies.  Every frame is still
    delivered once or inside one erasure, in order, and the counters say so: what
    the dead worker held is erased, not lost without a word."""
    head, body, tail, kills = 50, 2000, 200, 2
    n = head + body + tail
    pool = rtudp_pool
    rnd = rng("rtp-receiver-kills")
    rx = pool.open_channel("rx", kind="rtp", direction=1, capacity=4 * n, cpu=pool.cpus[0],
                           options={"clock_rate": CLOCK_RATE, "ptime_ms": PTIME_MS,
                                    "latency_ms": 60})
    tx = pool.open_channel("tx", remote=rx.local, direction=0, kind="rtp", capacity=4096,
                           cpu=pool.cpus[-1], options={"clock_rate": CLOCK_RATE,
                                                       "ptime_ms": PTIME_MS})
    first_seq = tx.rtp_stats()["tx_next_seq"]
    with CpuHogs():
        queue_frames(tx, range(head))
        wait_until(lambda: sent_records(tx.stats()) >= head, 30, "the head sent")
        tx.set_impairment(loss=0.1, seed=rnd.getrandbits(32))
        queue_frames(tx, range(head, head + body))
        for k in range(kills):
            want = head + (k + 1) * body // (kills + 1)
            wait_until(lambda: sent_records(tx.stats()) >= want, 30,
                       f"{want} frames sent before kill {k + 1}")
            kill_worker(pool, worker_pid(pool, rx))
        wait_until(lambda: sent_records(tx.stats()) >= head + body, 30, "the body sent")
        tx.set_impairment(None)
        queue_frames(tx, range(head + body, n))
        frames = read_frames(rx, n)
    rxs, txs = rx.stats(), tx.stats()
    lost = txs["imp_tx_lost"]
    # datagrams a dead worker had taken from the socket but not released
    accounted = (rxs["rtp_rx_frames"] + rxs["rtp_rx_duplicates"] + rxs["rtp_rx_late"] +
                 rxs["rtp_rx_invalid"] + rxs["rtp_rx_other_ssrc"] + rxs["rtp_rx_no_buffer"])
    died = rxs["rx_packets"] - accounted
    report = (f"{len(frames)} records read; rx {rxs['rtp_rx_frames']} frames, "
              f"{rxs['rtp_rx_erased']} erased, rx_packets {rxs['rx_packets']} ({died} died "
              f"with a worker), late {rxs['rtp_rx_late']}, kernel drops "
              f"{rxs['rx_kernel_drops']}; tx lost {lost} {seed_note()}")
    assert rxs["worker_restarts"] == kills, report
    delivered, erased = check_frames(frames, n, first_seq)
    assert rxs["rtp_rx_frames"] == len(delivered) and rxs["rtp_rx_erased"] == len(erased), \
        report
    assert rxs["rx_packets"] + rxs["rx_kernel_drops"] == txs["tx_packets"], report
    # erased: lost on the way, died with a worker, or came too late / the kernel dropped it
    assert died >= 0, report
    assert lost <= len(erased) <= lost + died + rxs["rtp_rx_late"] + rxs["rx_kernel_drops"], \
        report
    print(f"\nrtp receiver across {kills} kills of its worker: delivered {len(delivered)}, "
          f"erased {len(erased)} in {rxs['rtp_rx_erasures']} erasures; {report}")
