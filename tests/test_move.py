"""Channels move between a pool's workers while they run (Pool.move_channel; the
packing policy moves them itself, docs/scheduling.md): every datagram queued leaves
once, in deadline order, with none lost; a producer attached before the move wakes the
new worker; an rtp stream's sequence numbers and timestamps go on without a gap or a
repeat; a Netflux channel's sequence byte goes on; the counters go on."""
from __future__ import annotations

import struct
import threading
import time

import pytest

import rtudp
from ports import loopback_sink, receive_up_to
from waiting import wait_for

pytestmark = pytest.mark.parametrize("rtudp_pool", [[0, 1]], indirect=True)

MOVES = 20
PER_MOVE = 100            # datagrams sent between two moves
GAP_NS = 100_000          # one deadline every 100 µs


def _other(pool: rtudp.Pool, ch: object) -> int:
    """The CPU of the pool's other worker than the one serving ``ch``."""
    here = pool.channel_info(ch.name)["cpu"]  # type: ignore[attr-defined]
    return next(c for c in pool.cpus if c != here)


def test_timed_sends_leave_once_in_order_across_moves(rtudp_pool: rtudp.Pool) -> None:
    sink = loopback_sink(rcvbuf=8 << 20)
    ch = rtudp_pool.open_channel("mover", remote=sink.getsockname(), direction="tx",
                                 capacity=4096)
    total = MOVES * PER_MOVE
    at = time.monotonic_ns() + 20_000_000
    workers_seen = set()
    try:
        for m in range(MOVES):
            for k in range(PER_MOVE):
                i = m * PER_MOVE + k
                ch.send(struct.pack("<I", i), at_ns=at + i * GAP_NS)
            workers_seen.add(ch.worker)
            rtudp_pool.move_channel("mover", _other(rtudp_pool, ch))
        got = [struct.unpack("<I", d)[0] for d in receive_up_to(sink, total)]
        assert got == list(range(total)), (
            f"{len(got)} of {total} arrived; first out of place at "
            f"{next((j for j, v in enumerate(got) if v != j), None)}")
        assert workers_seen == {0, 1}
        assert wait_for(lambda: ch.stats()["tx_packets"] == total, timeout=5), \
            f"tx_packets {ch.stats()['tx_packets']} of {total}"
        # the lateness histogram went on too: one count a datagram, from both workers,
        # each once its TX stamp is read (a few ms after the send at most)
        counted = lambda: ch._seg.histograms()["tx_lateness"].count  # noqa: E731
        assert wait_for(lambda: counted() == total, timeout=5), \
            f"tx_lateness counted {counted()} of {total}"
        assert rtudp_pool.channel_moves == MOVES
    finally:
        ch.close()
        sink.close()


@pytest.mark.parametrize("taken", [True, False], ids=["taken", "never_taken"])
def test_a_move_waits_for_the_last_handoff_to_be_taken(
        rtudp_pool: rtudp.Pool, taken: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel moved again before the worker it was last handed to woke to take it
    (its block still says released): a new handoff marked over that one would be lost,
    and neither worker would serve the channel.  The move waits until it is taken
    (here: the test clears it), or, not taken within HANDOFF_SETTLE_S, moves the slow
    way.  Either way the channel goes on, every datagram once and in order."""
    from rtudp.shmring._native import lib
    from rtudp.workers import channel_table
    monkeypatch.setattr(channel_table, "HANDOFF_SETTLE_S", 0.2)
    sink = loopback_sink(rcvbuf=8 << 20)
    ch = rtudp_pool.open_channel("resettled", remote=sink.getsockname(), direction="tx")
    block = ch._seg.block
    try:
        ch.send(b"before")
        assert receive_up_to(sink, 1, timeout_s=5.0) == [b"before"]
        block.handoff = lib.RTUDP_HANDOFF_RELEASED   # as if not yet taken
        cleared_at: list[float] = []

        def take() -> None:
            time.sleep(0.05)
            cleared_at.append(time.monotonic())
            block.handoff = lib.RTUDP_HANDOFF_NONE

        t = threading.Thread(target=take) if taken else None
        if t is not None:
            t.start()
        to = _other(rtudp_pool, ch)
        rtudp_pool.move_channel("resettled", to)
        moved_at = time.monotonic()
        if t is not None:
            t.join()
            assert cleared_at and moved_at >= cleared_at[0], "the move did not wait"
        assert rtudp_pool.channel_info("resettled")["cpu"] == to
        assert int(block.handoff) == lib.RTUDP_HANDOFF_NONE
        for n in range(20):
            ch.send(struct.pack("<I", n))
        got = receive_up_to(sink, 20, timeout_s=5.0)
        assert got == [struct.pack("<I", n) for n in range(20)]
    finally:
        ch.close()
        sink.close()


def test_an_attached_producer_wakes_the_new_worker(rtudp_pool: rtudp.Pool) -> None:
    """A handle wired before the move: its commits ring the worker serving now, so an
    immediate send after the move leaves at once, not at a sweep."""
    sink = loopback_sink(rcvbuf=8 << 20)
    ch = rtudp_pool.open_channel("woken", remote=sink.getsockname(), direction="tx")
    other = rtudp.attach("woken", pool=rtudp_pool.name)
    try:
        other.direct_send = False  # through the ring and the worker's wake-up
        for n in range(6):
            rtudp_pool.move_channel("woken", _other(rtudp_pool, ch))
            other.send(struct.pack("<I", n))
            assert receive_up_to(sink, 1, timeout_s=5.0) == [struct.pack("<I", n)], \
                f"send {n} after move {n + 1} (worker {ch.worker}) did not arrive"
    finally:
        other.close()
        ch.close()
        sink.close()


def test_an_rtp_stream_numbers_on_across_moves(rtudp_pool: rtudp.Pool) -> None:
    sink = loopback_sink(rcvbuf=8 << 20)
    tx = rtudp_pool.open_channel("voice", kind="rtp", remote=sink.getsockname(),
                                 direction="tx", capacity=512,
                                 options={"clock_rate": 8000, "ptime_ms": 5,
                                          "payload_type": 0, "rtcp": "off"})
    frames = 120
    try:
        tx.send_many([b"\xff" * 40] * frames)   # paced: 5 ms apart, 0.6 s in all
        stop = threading.Event()

        def mover() -> None:
            while not stop.wait(0.05):
                rtudp_pool.move_channel("voice", _other(rtudp_pool, tx))

        t = threading.Thread(target=mover)
        t.start()
        try:
            got = receive_up_to(sink, frames)
        finally:
            stop.set()
            t.join()
        seqs = [struct.unpack("!H", d[2:4])[0] for d in got]
        stamps = [struct.unpack("!I", d[4:8])[0] for d in got]
        assert len(got) == frames
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:])), seqs
        assert all((b - a) & 0xFFFFFFFF == 40 for a, b in zip(stamps, stamps[1:])), stamps
        assert rtudp_pool.channel_moves >= 2
    finally:
        tx.close()
        sink.close()


def test_a_paced_stream_keeps_its_time_across_moves(rtudp_pool: rtudp.Pool) -> None:
    """A moved paced stream goes on by its own clock: frame k leaves no earlier than the
    first frame's time + k ptimes, though each move falls between two frames (a new
    worker that started the stream's clock anew would send the next frame at once)."""
    sink = loopback_sink(rcvbuf=8 << 20)
    ptime_ns = 20_000_000
    tx = rtudp_pool.open_channel("paced", kind="rtp", remote=sink.getsockname(),
                                 direction="tx", capacity=256,
                                 options={"clock_rate": 8000, "ptime_ms": 20,
                                          "payload_type": 0, "rtcp": "off"})
    frames = 40
    t0 = time.monotonic_ns() + 100_000_000
    moves_before = rtudp_pool.channel_moves

    def mover() -> None:
        for k in range(1, 9):   # halfway between frames 4k and 4k + 1
            delay = (t0 + 4 * k * ptime_ns + ptime_ns // 2 - time.monotonic_ns()) / 1e9
            time.sleep(max(0.0, delay))
            rtudp_pool.move_channel("paced", _other(rtudp_pool, tx))

    try:
        tx.send_many([b"\xff" * 160] * frames, t0)
        t = threading.Thread(target=mover)
        t.start()
        arrivals: list[tuple[int, int]] = []
        sink.settimeout(5.0)
        try:
            while len(arrivals) < frames:
                data = sink.recv(2048)
                arrivals.append((struct.unpack("!H", data[2:4])[0], time.monotonic_ns()))
        finally:
            t.join()
        first = arrivals[0][0]
        # an arrival read before its time left early (one read late proves nothing)
        early = [(k, (t0 + k * ptime_ns - at) // 1000) for seq, at in arrivals
                 if at < t0 + (k := (seq - first) & 0xFFFF) * ptime_ns]
        assert not early, f"frames that left early (frame, µs early): {early}"
        assert [(seq - first) & 0xFFFF for seq, _ in arrivals] == list(range(frames))
        assert rtudp_pool.channel_moves - moves_before == 8
    finally:
        tx.close()
        sink.close()


def test_a_netflux_sequence_goes_on_across_moves(rtudp_pool: rtudp.Pool) -> None:
    sink = loopback_sink(rcvbuf=8 << 20)
    nf = rtudp_pool.open_channel("plc", kind="netflux", local=("127.0.0.1", 0),
                                 remote=sink.getsockname(),
                                 options={"send_interval": 0.002, "send_size": 4})
    try:
        for _ in range(8):
            time.sleep(0.03)
            rtudp_pool.move_channel("plc", _other(rtudp_pool, nf))
        time.sleep(0.03)
        rtudp_pool.pause_channel("plc")    # nothing more is sent: the sink holds it all
        sink.setblocking(False)
        seq = []
        while True:
            try:
                seq.append(sink.recv(64)[0])
            except BlockingIOError:
                break
        assert len(seq) > 50
        steps = [(b - a) & 0xFF for a, b in zip(seq, seq[1:])]
        # each cycle the next sequence byte (0 is skipped: it means "none yet"),
        # never one twice or one back
        assert all(s in (1, 2) for s in steps), steps
        s = nf.stats()
        nf_counts = {k: v for k, v in s.items() if k.startswith("nf_")}
        # a cycle the serving worker has not sent while it moves, its standby sends
        assert s["nf_sent"] + s["nf_standby_sent"] == len(seq), nf_counts
        assert s["nf_cycle"] == (s["nf_sent"] + s["nf_send_errors"] + s["nf_yielded"]
                                 + s["nf_missed"]), nf_counts
    finally:
        nf.close()
        sink.close()


def test_move_checks_its_cpu(rtudp_pool: rtudp.Pool) -> None:
    ch = rtudp_pool.open_channel("pinned", local=("127.0.0.1", 0))
    try:
        with pytest.raises(ValueError, match="cpu=7"):
            rtudp_pool.move_channel("pinned", 7)
        with pytest.raises(rtudp.ChannelNotFoundError, match="nosuch"):
            rtudp_pool.move_channel("nosuch", 0)
        rtudp_pool.move_channel("pinned", ch.worker_cpu)   # where it is: nothing to do
        assert rtudp_pool.channel_moves == 0
    finally:
        ch.close()


def test_a_udt_transfer_carries_on_across_moves(rtudp_pool: rtudp.Pool) -> None:
    """A connection's state lives in its channel's kind area: a stream sent while both
    ends' channels move between the workers arrives whole, byte for byte."""
    import rtudp.udt.udt4 as udt4

    from udt_helpers import pair, pattern, recv_all, send_all

    udt4.startup(rtudp_pool)
    try:
        srv, c, conn = pair()
        data = pattern(4_000_000)
        got: list = []
        reader = threading.Thread(target=recv_all, args=(udt4, conn, True, got))
        reader.start()
        stop = threading.Event()

        def mover() -> None:
            while not stop.wait(0.03):
                for name in rtudp_pool.channels():
                    rtudp_pool.move_channel(name, _other(rtudp_pool, _Named(name)))

        t = threading.Thread(target=mover)
        t.start()
        try:
            send_all(udt4, c, data)
            udt4.close(c)
            reader.join(60)
        finally:
            stop.set()
            t.join()
        assert not reader.is_alive(), "the transfer stalled"
        assert bytes(got[0]) == data
        assert rtudp_pool.channel_moves >= 2
        udt4.close(conn)
        udt4.close(srv)
    finally:
        udt4.cleanup()


class _Named:
    """What _other needs of a channel: its name."""

    def __init__(self, name: str) -> None:
        self.name = name
