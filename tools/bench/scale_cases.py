"""The rtudp side of ``rtudp bench scale``: opening N channels (and what they cost), and
the client loops that drive them.

Each case is a :class:`Case`: the ChannelConfig of channel i, the wire format the
observer reads, and ``drive(chans, gap_ns, count)``, the one client process's loop
(this process), which returns the counters it kept.  A refused open (a full channel
table, no file descriptors left) ends the opening and is reported, never raised.
"""
from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .scale_streams import packet

TICK_S = 0.1             # the client tops every channel up this often
LEAD_NS = 200_000_000    # the first deadline this long after the loop starts
AHEAD_NS = 200_000_000   # timed: deadlines queued at most this far ahead
PREFILL = 10             # paced: frames queued before the first top-up
TOPUP = 5                # paced: frames a channel gets at each top-up
RTP_PAYLOAD = 160        # G.711, 20 ms at 8 kHz
RTP_SIZE = 12 + RTP_PAYLOAD
NF_IMAGE = 20
CAPACITY = 64
SETTLE_NS = 300_000_000  # netflux: cycles are counted from this long after the last open
OPEN_ERRORS = (ValueError, OSError, RuntimeError)
#: opening stops (reported as refused) when the machine's available memory falls below
#: this share of its total or MEM_FLOOR_BYTES, whichever is larger: a channel locks its
#: memory, and thousands of them could take a shared machine's last
MEM_FLOOR_SHARE = 0.15
MEM_FLOOR_BYTES = 2 << 30
MEM_CHECK_EVERY = 32
OPEN_BATCH = 512         # channels a pool.open_channels call gets at most
#: opening stops (reported) after this long: channels that run while others open can
#: take the CPUs the opening needs, and the machine with them
OPEN_BUDGET_S = 60.0


def shm_bytes(pool_name: str) -> int:
    """Bytes of the pool's /dev/shm segments (their sizes)."""
    total = 0
    for path in glob.glob(f"/dev/shm/rtudp.{pool_name}*"):
        try:
            total += os.stat(path).st_size
        except OSError:
            pass
    return total


def locked_bytes(pids: list[int]) -> int:
    """Locked memory (VmLck) of the processes ``pids``, in bytes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmLck:"):
                        total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
    return total


def _meminfo() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            out[key] = int(rest.split()[0]) * 1024
    return out


def mem_available() -> int | None:
    """MemAvailable in bytes (None where /proc/meminfo cannot be read)."""
    try:
        return _meminfo()["MemAvailable"]
    except (OSError, KeyError, ValueError, IndexError):
        return None


def memory_short(at_start: int | None = None) -> str | None:
    """Why no more channels should be opened, or None: available memory below the
    floor, or (``at_start``: what was available before the opening began) below half
    of that, so that a run never takes more than half of what others had left it;
    None where /proc/meminfo cannot be read."""
    try:
        info = _meminfo()
        total, avail = info["MemTotal"], info["MemAvailable"]
    except (OSError, KeyError, ValueError, IndexError):
        return None
    floor = max(MEM_FLOOR_BYTES, int(total * MEM_FLOOR_SHARE), (at_start or 0) // 2)
    if avail >= floor:
        return None
    return (f"stopped by the bench: {avail >> 20} MiB of memory available, below its floor "
            f"of {floor >> 20} MiB")


def open_all(pool: Any, configs: list[Any]) -> tuple[list[Any], str | None, float]:
    """Open every config: with ``pool.open_channels`` (batches of OPEN_BATCH) where
    the pool has it, else one by one, stopping at the memory floor (:func:`memory_short`)
    or after OPEN_BUDGET_S.
    Returns (channels open, why the first refused one was, seconds)."""
    chans: list[Any] = []
    refused = None
    t0 = time.perf_counter()
    at_start = mem_available()
    batch = getattr(pool, "open_channels", None)
    if batch is not None and len(configs) > OPEN_BATCH:
        # in batches, so that the memory floor is checked between them
        for at in range(0, len(configs), OPEN_BATCH):
            short = memory_short(at_start)
            if short is not None:
                refused = f"from channel {at + 1}: {short}"
                break
            got, refused, _ = open_all(pool, configs[at:at + OPEN_BATCH])
            chans += got
            if refused is None and time.perf_counter() - t0 > OPEN_BUDGET_S:
                refused = f"stopped by the bench: opening took over {OPEN_BUDGET_S:.0f} s"
            if refused is not None:
                refused = f"from channel {at + 1}: {refused}"
                break
    elif batch is not None:
        short = memory_short()
        if short is not None:
            return [], short, 0.0
        try:
            chans = list(batch(configs))
        except OPEN_ERRORS as exc:
            refused = f"open_channels of {len(configs)} refused: {exc}"
    else:
        for i, config in enumerate(configs):
            short = memory_short(at_start) if i % MEM_CHECK_EVERY == 0 else None
            if time.perf_counter() - t0 > OPEN_BUDGET_S:
                short = f"stopped by the bench: opening took over {OPEN_BUDGET_S:.0f} s"
            if short is not None:
                refused = f"channel {i + 1} of {len(configs)} not opened: {short}"
                break
            try:
                chans.append(pool.open_channel(config))
            except OPEN_ERRORS as exc:
                refused = f"channel {i + 1} of {len(configs)} refused: {exc}"
                break
    return chans, refused, time.perf_counter() - t0


def close_all(pool: Any, chans: list[Any]) -> float:
    """Close the channels (and any the pool still has open); seconds it took."""
    t0 = time.perf_counter()
    for ch in chans:
        ch.close()
    for name in pool.channels():
        pool.close_channel(name)
    return time.perf_counter() - t0


def _sleep_to(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def drive_timed(chans: list[Any], gap_ns: int, count: int) -> dict[str, int]:
    """udp: packet k of channel i sent with ``at_ns`` = start + k x gap + i x gap / N,
    each channel topped up every TICK_S to AHEAD_NS ahead; ``late_submits`` counts the
    packets this loop queued after their deadline (the client was held off its CPU)."""
    from rtudp.shmring.errors import BackPressureError

    n = len(chans)
    start = time.monotonic_ns() + LEAD_NS
    done = [0] * n
    full = late = 0
    tick = time.monotonic()
    while min(done) < count:
        horizon = time.monotonic_ns() + AHEAD_NS
        for i, ch in enumerate(chans):
            now = time.monotonic_ns()
            k = done[i]
            while k < count:
                due = start + k * gap_ns + i * gap_ns // n
                if due >= horizon:
                    break
                try:
                    ch.send(packet("rtp", i, k, RTP_SIZE), due)
                except BackPressureError:
                    full += 1
                    break
                late += due < now
                k += 1
            done[i] = k
        tick += TICK_S
        _sleep_to(tick)
    # the last deadline, and a tick for the packets the workers send late
    _sleep_to(time.monotonic() + max(0, start + count * gap_ns - time.monotonic_ns()) / 1e9
              + TICK_S)
    return {"ring_full": full, "late_submits": late}


def drive_paced(chans: list[Any], gap_ns: int, count: int) -> dict[str, int]:
    """rtp paced: PREFILL frames each, then every TOPUP ptimes (100 ms at 20 ms ptime)
    each channel topped up to PREFILL + TOPUP frames a TOPUP ptimes gone since the
    start, until ``count`` are queued; the workers keep the time.  A top-up that comes
    late (this process held off its CPU) catches up, and ``late_topups`` counts it:
    the frames it brings may have been due already.  Stream i's first frame is due at
    start + i x gap / N, as the peers' streams are: the streams' phases spread over a
    ptime, not bunched by how fast this loop queues them."""
    from rtudp.shmring.errors import BackPressureError

    frame = b"\xff" * RTP_PAYLOAD
    n = len(chans)
    queued = [0] * n
    full = late = 0
    period = TOPUP * gap_ns / 1e9
    first_ns = time.monotonic_ns() + LEAD_NS

    def top_up(want: int) -> None:
        nonlocal full
        for i, ch in enumerate(chans):
            k = min(count, want) - queued[i]
            if k > 0:
                # a paced stream's first frame sets its phase; the rest follow a ptime apart
                at = first_ns + i * gap_ns // n if not queued[i] else None
                try:
                    queued[i] += ch.send_many([frame] * k, at)
                except BackPressureError as exc:
                    queued[i] += exc.sent
                    full += 1

    top_up(PREFILL)
    start = first_ns / 1e9
    tick = start
    while min(queued) < count:
        tick += period
        _sleep_to(tick)
        gone = int((time.monotonic() - start) / period)
        if gone * period > tick - start + period / 2:   # a period or more late
            late += 1
            tick = start + gone * period
        top_up(PREFILL + TOPUP * gone)
    _sleep_to(time.monotonic() + (PREFILL + 2) * gap_ns / 1e9)
    return {"ring_full": full, "late_topups": late}


def drive_receive(chans: list[Any], feed: Callable[[], bool], seconds: float) -> dict[str, int]:
    """rtp receive: every TICK_S, each channel's released frames read (``recv_many``)
    while ``feed()`` says the sender still runs, then for ``seconds`` more."""
    frames = erasures = 0
    end = None
    while end is None or time.monotonic() < end:
        t = time.monotonic()
        for ch in chans:
            for f in ch.recv_many(256, timeout=0):
                if f.erasure:
                    erasures += 1
                else:
                    frames += 1
        if end is None and not feed():
            end = time.monotonic() + seconds
        _sleep_to(t + TICK_S)
    return {"frames": frames, "erasures": erasures}


def drive_idle(chans: list[Any], gap_ns: int, count: int) -> dict[str, int]:
    """netflux: the workers run the cycles; the client only waits SETTLE_NS, then the
    ``count`` cycles the observer counts, then a tick more."""
    time.sleep((SETTLE_NS + count * gap_ns) / 1e9 + TICK_S)
    return {}


@dataclass(frozen=True)
class Case:
    """One kind of stream: its title, base gap, wire format, the config of channel i
    (sending to ``dest``) and the client loop (None: not a sending case)."""
    title: str
    gap_ns: int
    fmt: str
    size: int
    config: Callable[[str, int, int, tuple[str, int] | None], Any]
    drive: Callable[[list[Any], int, int], dict[str, int]] | None


def timed_capacity(gap_ns: int) -> int:
    """A timed channel's capacity: CAPACITY, or the power of two that holds twice what
    the client queues ahead (AHEAD_NS) at this gap, so that it never waits for room."""
    need = 2 * AHEAD_NS // max(1, gap_ns)
    return max(CAPACITY, 1 << max(0, need - 1).bit_length())


def _udp(prefix: str, i: int, gap_ns: int, dest: tuple[str, int] | None) -> Any:
    from rtudp.workers.channel_config import ChannelConfig
    return ChannelConfig(f"{prefix}{i}", local=("127.0.0.1", 0), remote=dest, direction="tx",
                         capacity=timed_capacity(gap_ns), max_datagram=256)


def _rtp_tx(prefix: str, i: int, gap_ns: int, dest: tuple[str, int] | None) -> Any:
    from rtudp.workers.channel_config import ChannelConfig
    return ChannelConfig(f"{prefix}{i}", local=("127.0.0.1", 0), remote=dest, direction="tx",
                         kind="rtp", capacity=CAPACITY, max_datagram=256,
                         options={"tx_mode": "paced", "ptime_ms": gap_ns / 1e6, "rtcp": "off"})


def _rtp_rx(prefix: str, i: int, gap_ns: int, dest: tuple[str, int] | None) -> Any:
    from rtudp.workers.channel_config import ChannelConfig
    return ChannelConfig(f"{prefix}{i}", local=("127.0.0.1", 0), direction="rx", kind="rtp",
                         capacity=CAPACITY, max_datagram=256,
                         options={"rx_mode": "jbuf", "ptime_ms": gap_ns / 1e6, "rtcp": "off",
                                  "latency_ms": 60})


def _netflux(prefix: str, i: int, gap_ns: int, dest: tuple[str, int] | None) -> Any:
    from rtudp.workers.channel_config import ChannelConfig
    return ChannelConfig(f"{prefix}{i}", local=("127.0.0.1", 0), remote=dest, kind="netflux",
                         capacity=CAPACITY, max_datagram=256, options={"send_interval": gap_ns / 1e9, "send_size": NF_IMAGE,
                                  "recv_size": NF_IMAGE})


CASES: dict[str, Case] = {
    "udp": Case("udp timed channels (send with at_ns)", 20_000_000, "rtp", RTP_SIZE, _udp,
                drive_timed),
    "rtp": Case("paced rtp streams (G.711, capacity 64, rtcp off, topped up by one client)",
                20_000_000, "rtp", RTP_SIZE, _rtp_tx, drive_paced),
    "rtp_rx": Case("rtp receive channels (jitter buffer, latency 60 ms) fed by the C sender",
                   20_000_000, "rtp", RTP_SIZE, _rtp_rx, None),
    "netflux": Case("Netflux channels to the observer (20-byte images, standby default)",
                    5_000_000, "netflux", 2 + NF_IMAGE, _netflux, drive_idle),
}


__all__ = ["CASES", "Case", "close_all", "drive_receive", "locked_bytes", "open_all",
           "shm_bytes"]
