"""Hundreds of rtp channels on one pool: 500 channels x 50 packets/s, no loss.

Each channel sends to the next (a ring), paced by the worker at ptime 20 ms: the
test queues every frame up front (the TX ring holds them) and the workers send them
one ptime apart, so Python does no timing.  Every channel must receive every frame
in order, with no erasure, duplicate or kernel drop.
"""
from __future__ import annotations

import resource
import time

import pytest

from fake_worker import worker_argv

N_CHANNELS = 500
FRAMES = 150          # 3 s at 50 packets/s
PAYLOAD = 160         # 20 ms of PCMU

pytestmark = [pytest.mark.rtudp(worker=worker_argv())]


@pytest.fixture
def enough_fds():
    """Each channel is a socket in the supervisor and in a worker, plus its segment
    while it is set up: raise the soft RLIMIT_NOFILE (inherited by the workers) before
    the pool starts, and put it back afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * N_CHANNELS + 256
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            print(f"skipping: RLIMIT_NOFILE hard limit {hard} < {want} needed")
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below the {want} file "
                        f"descriptors {N_CHANNELS} channels need")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_500_channels_50_pps_no_loss(enough_fds, rtudp_pool):
    chans = [rtudp_pool.open_channel(f"c{i}", local=("127.0.0.1", 0), kind="rtp",
                                     capacity=256, max_datagram=256,
                                     options={"ptime_ms": 20, "latency_ms": 60})
             for i in range(N_CHANNELS)]
    for i, ch in enumerate(chans):
        ch.set_target(*chans[(i + 1) % N_CHANNELS].local)
    frames = [i.to_bytes(4, "big") * (PAYLOAD // 4) for i in range(FRAMES)]
    t0 = time.monotonic()
    for ch in chans:
        ch.send_many(frames)
    got: list[list] = [[] for _ in chans]
    deadline = t0 + FRAMES * 0.02 + 10
    while time.monotonic() < deadline and any(len(g) < FRAMES for g in got):
        for i, ch in enumerate(chans):
            got[i] += ch.recv_many(256, timeout=0)
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    short = {i: len(g) for i, g in enumerate(got) if len(g) != FRAMES}
    assert not short, f"channels with missing frames (index: frames): {dict(list(short.items())[:10])}"
    for i, g in enumerate(got):
        assert not any(f.erasure for f in g), f"channel {i}: erasures"
        assert [f.payload for f in g] == frames, f"channel {i}: frames out of order"
        assert [f.lseq - g[0].lseq for f in g] == list(range(FRAMES))
        assert all(f.lost == 0 for f in g)
    stats = [ch.stats() for ch in chans]
    for i, st in enumerate(stats):
        assert st["tx_packets"] == FRAMES and st["tx_errors"] == 0, (i, st["tx_errors"])
        assert st["rtp_rx_lost"] == 0 and st["rtp_rx_duplicates"] == 0, i
        assert st["rx_kernel_drops"] == 0 and st["rtp_rx_invalid"] == 0, i
        assert st["rtp_tx_underruns"] == 0, i
    # paced at the RTP clock, not as fast as possible
    assert elapsed >= (FRAMES - 1) * 0.02 * 0.9
    p99 = max(st["tx_lateness_p99_ns"] or 0 for st in stats)
    print(f"{N_CHANNELS} channels x 50 pps: {N_CHANNELS * FRAMES} frames each way in "
          f"{elapsed:.2f} s, none lost; worst channel send lateness p99 {p99 / 1e3:.0f} us")
