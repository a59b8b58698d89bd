"""API misuse gives clear errors, never a crash or a hang: closed channels, double
close, the wrong direction, a kind that does not exist, a channel that is not
there, capacities beyond the memory there is (or that /dev/shm has).  (More argument checks:
tests/test_channel.py, tests/test_pool.py::test_bad_channel_arguments_*.)"""
from __future__ import annotations

import errno

import pytest

import rtudp
from rtudp.shmring._native import lib
from rtudp.shmring import segment as segment_mod
from rtudp.shmring.channel import MAX_DATAGRAM, RX_RING_BYTES_MAX, TX_RING_BYTES_MAX
from rtudp.workers.supervisor import MAX_CAPACITY

pytestmark = pytest.mark.rtudp(rt_priority=0, cpus=[0])


def test_closed_channel_and_double_close(rtudp_pool: rtudp.Pool) -> None:
    ch = rtudp_pool.open_channel("c")
    other = rtudp.attach("c", pool=rtudp_pool.name)
    ch.close()
    ch.close()                                   # idempotent
    assert ch.closed and "closed" in repr(ch)
    for call in (lambda: ch.send(b"x"), lambda: ch.send_many([b"x"]), lambda: ch.recv(0),
                 lambda: ch.recv_many(1, timeout=0), ch.stats):
        with pytest.raises(ValueError, match="'c' is closed"):
            call()
    assert "c" not in rtudp_pool.channels()
    with pytest.raises(rtudp.ChannelNotFoundError, match="'c'"):
        rtudp_pool.close_channel("c")            # closing it again in the pool
    with pytest.raises(rtudp.ChannelNotFoundError, match="'c'"):
        rtudp.attach("c", pool=rtudp_pool.name)
    other.close()                                # a handle that outlived the channel
    other.close()
    sender = rtudp_pool.open_channel("s", remote=("127.0.0.1", 9))
    sender.close()
    for call in (lambda: sender.send(b"x"), lambda: sender.send(b"x", 0),
                 lambda: sender.send_many([b"x"])):
        with pytest.raises(ValueError, match="'s' is closed"):
            call()


def test_wrong_direction(rtudp_pool: rtudp.Pool) -> None:
    rx = rtudp_pool.open_channel("rx", direction=1)
    tx = rtudp_pool.open_channel("tx", direction=0, remote=rx.local)
    with pytest.raises(ValueError, match="receive-only"):
        rx.send(b"x")
    with pytest.raises(ValueError, match="receive-only"):
        rx.send_many([b"x", b"y"])
    with pytest.raises(ValueError, match="send-only"):
        tx.recv(timeout=0)
    tx.send(b"fine")
    assert rx.recv(timeout=5).data == b"fine"


def test_kind_that_does_not_exist_or_another_kind(rtudp_pool: rtudp.Pool) -> None:
    """A kind the workers do not serve names the ones there are; attaching the udp
    handle to a channel of another kind is refused, naming both kinds."""
    for kind in ("sctp", "tcp", ""):
        with pytest.raises(ValueError, match=repr(kind).replace("'", ".") +
                           ".*'netflux', 'rtp', 'udp', 'udt'"):
            rtudp_pool.open_channel("k", kind=kind)
    assert rtudp_pool.channels() == []
    with pytest.raises(rtudp.ChannelNotFoundError, match="no channel 'nope'"):
        rtudp.attach("nope", pool=rtudp_pool.name)
    with rtudp_pool.open_channel("voice", kind="rtp", direction=1):
        with pytest.raises(TypeError, match="'voice' .* is a rtp channel; rtudp.Channel serves "
                                            "udp channels only"):
            rtudp.attach("voice", pool=rtudp_pool.name)
    assert rtudp_pool.channels() == []


def test_capacity_beyond_memory_is_a_clear_error(rtudp_pool: rtudp.Pool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # the largest capacity of the largest datagrams: rings of TX/RX_RING_BYTES_MAX
    # (and the two tap rings, 1 MiB each at most), not capacity x datagram (64 GiB
    # each), so it opens
    with rtudp_pool.open_channel("huge", capacity=MAX_CAPACITY,
                                 max_datagram=MAX_DATAGRAM) as ch:
        assert ch._seg.segment.size <= (TX_RING_BYTES_MAX + RX_RING_BYTES_MAX +
                                        2 * lib.RTUDP_TAP_RING_MAX + (1 << 20))
    with pytest.raises(ValueError, match="capacity"):
        rtudp_pool.open_channel("huge", capacity=MAX_CAPACITY + 1)

    # a segment /dev/shm cannot hold is a MemoryError at open naming the sizes
    def full(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(segment_mod.os, "posix_fallocate", full)
    with pytest.raises(MemoryError, match=r"needs \d+ bytes .* /dev/shm has"):
        rtudp_pool.open_channel("huge", capacity=MAX_CAPACITY, max_datagram=MAX_DATAGRAM)
    monkeypatch.undo()
    assert rtudp_pool.channels() == []
    ch = rtudp_pool.open_channel("after")        # the pool is still usable
    ch.close()


def test_stopped_pool(rtudp_pool: rtudp.Pool) -> None:
    rtudp_pool.stop()
    rtudp_pool.stop()                            # idempotent
    with pytest.raises(rtudp.PoolNotRunningError):
        rtudp_pool.open_channel("x")
    with pytest.raises(RuntimeError, match="already started"):
        rtudp_pool.start()
