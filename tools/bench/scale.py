"""``rtudp bench scale``: N channels on the default pool (2 vCPUs here) against the same N
streams in plain asyncio and from a C program, in one run.

Cases (``--cases``), for each N of ``--n`` (default 10, 100, 1,000, 4,000):

- ``udp``: udp channels, ``direction="tx"``, capacity 64; one client (this process)
  sends packet k of channel i with ``at_ns`` = start + k x gap + i x gap / N, topping
  every channel up every 100 ms to 200 ms ahead.
- ``rtp``: paced rtp streams (``kind="rtp"``, ``direction="tx"``, capacity 64,
  ``rtcp="off"``, G.711: 160-byte payloads); the client queues 10 frames a channel,
  then every 5 ptimes (100 ms at 20 ms) tops each up to 10 + 5 a period gone (a late
  top-up catches up, and is counted).
- ``rtp_rx``: rtp receive channels (jitter buffer, latency 60 ms) fed by the C sender;
  the client reads every channel's released frames every 100 ms.  Its peers receive
  the same streams: asyncio (a datagram endpoint a stream) and C (one epoll).
- ``netflux``: Netflux channels (20-byte images) whose partner is the observer: the
  workers run the cycles; delivery and pacing are counted over a window of the run.
- ``udt``: N concurrent UDT connections, rtudp to rtudp (``scale_udt``): fair share,
  none starved; no peer (asyncio has no UDT; the libudt peer runs one connection).
- ``open``: ``--open-n`` (16,000) udp channels opened, then closed: open and close time,
  memory per channel.

The gap is 20 ms (rtp, udp; 5 ms netflux) up to 1,000 streams and grows beyond so that
the total stays 50,000 packets/s (4,000 streams: 80 ms).  ``--same-rate`` makes the
udp case send 50,000 packets/s at every N (a gap of N x 20 µs; its channels' capacity
grows to hold what the client queues ahead), so that CPU per packet compares across N.  In the cases where the
workers keep the deadlines (udp, rtp, netflux) a second rtudp row, ``exact``, is a pool
with ``tx_coalesce_us=0``: every deadline at its own time, none sent early with another
(what a group of close deadlines buys).  The sending peers, the same
streams: ``asyncio`` (one loop, a coroutine a stream, ``asyncio.sleep`` to each due
time, ``sendto``) and ``C`` (one thread, ``clock_nanosleep`` to each due time,
``send``: ``scale_peer.c``), both in processes of their own.

Figures per row: delivered / expected; pacing error p50/p99/max at the independent
observer (a plain socket in another process reading kernel arrival stamps: the
module doc of ``scale_streams`` says how the ideal schedule is found); CPU seconds per
second and CPU ms per 1,000 packets delivered (rtudp: the pool's workers + this client
process; the peers: their own process; the observer and, for ``rtp_rx``, the feeding
C sender are not counted); open time per channel; shared memory (/dev/shm sizes) and
locked memory (VmLck of the workers and this process) per channel beyond the first
(the first one's, with what a worker sets up once, is in the JSON); others' CPU
meanwhile.  A refused open (a full channel table, no file descriptors) is a row that
says so; the run goes on.  Figures only: nothing is asserted.

``--rounds K`` runs every row K times, the rounds of one N interleaved (round 1 of each
sender, then round 2 ...); the table shows each sender's worst round (most undelivered,
then highest p99) and, under it, the best and the spread.  ``--drop-caches`` empties the
page cache before every round (``sync; echo 3 > /proc/sys/vm/drop_caches``, as a boot
does: root only), so each round starts as on a freshly started machine.
"""
from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import dataclass
from typing import Any

from ..cold import add_drop_caches_argument, check_drop_caches, drop_caches
from .common import (Child, Hog, OthersMeter, add_common_arguments, bench_pool, header,
                           others_col, others_footer, pool_prefix, proc_cpu_s, run_benchmark,
                           say)
from .scale_cases import (CASES, SETTLE_NS, close_all, drive_receive, locked_bytes, open_all,
                          shm_bytes)
from .scale_peer import CReceiver, CSender, Observer, PeerUnavailable, build_peer
from .scale_streams import asyncio_receiver, asyncio_sender, raise_nofile, stream_figures
from .scale_udt import run_udt

FULL_N = (10, 100, 1000, 4000)
QUICK_N = (10, 50)
FULL_S, QUICK_S = 5.0, 1.0
OPEN_N, QUICK_OPEN_N = 16_000, 100
MAX_TOTAL_PPS = 50_000
MEM_SETTLE_S = 2.0
ALL_CASES = (*CASES, "udt", "open")
UDT_PEERS_MISSING = ("udt: no peers (asyncio has no UDT; the libudt peer, libudt_peer.cpp, "
                     "runs one connection): rtudp's rows only")
VARIANTS = ("rtudp", "spread", "exact", "late-100us", "late-1ms", "spread-100us", "spread-1ms",
            "asyncio", "C", "C-1ms", "C-100us")
#: the C sender on a tick (ns): it wakes on that grid and sends what is due by then.
#: At 1 ms it keeps asyncio's loop's schedule: the CPU any sender pays for asyncio's
#: pacing.  At 100 µs its error stays within about the issue's p99 bound: the least
#: CPU any sender pays for that bound
C_TICK_VARIANTS: dict[str, int] = {"C-1ms": 1_000_000, "C-100us": 100_000}
#: the variants that are rtudp pools, with what their pool is given: ``exact`` sends each
#: deadline at its own time (tx_coalesce_us=0), as the workers did before groups;
#: ``late-*`` pools have a lateness budget (tx_lateness_us), the peers of ``C-*``;
#: ``spread`` and ``spread-*`` are those pools with every channel on the worker that has
#: the fewest (placement="spread"), where the default packs them
RTUDP_VARIANTS: dict[str, dict[str, Any]] = {"rtudp": {}, "exact": {"tx_coalesce_us": 0},
                                              "late-100us": {"tx_lateness_us": 100},
                                              "late-1ms": {"tx_lateness_us": 1000},
                                              "spread": {"placement": "spread"},
                                              "spread-100us": {"tx_lateness_us": 100,
                                                               "placement": "spread"},
                                              "spread-1ms": {"tx_lateness_us": 1000,
                                                             "placement": "spread"}}
#: the senders that only cases whose deadlines the workers keep have (TIMED_CASES)
TIMED_ONLY_SENDERS = ("exact", "late-100us", "late-1ms", "spread-100us", "spread-1ms",
                      *C_TICK_VARIANTS)
#: the senders a run compares unless --senders says otherwise (``spread`` and the
#: ``spread-*`` budget pools, which put channels on every worker, are asked for by
#: name)
DEFAULT_SENDERS = tuple(v for v in VARIANTS if not v.startswith("spread"))


@dataclass(frozen=True)
class Neighbours:
    """What runs beside each row: ``python_reader``: the observer is an ordinary Python
    process (scale_reader.py) instead of the C one; ``busy_loop``: a SCHED_OTHER busy
    loop, placed by the kernel, whose share of a CPU the row reports."""

    python_reader: bool = False
    busy_loop: bool = False


class _BusyShare:
    """The busy loop's share of a CPU between start() and share() (None: no loop)."""

    def __init__(self, hog: Hog) -> None:
        self._hog = hog
        self._t0 = self._cpu0 = 0.0

    def start(self) -> None:
        self._t0, self._cpu0 = time.monotonic(), self._hog.cpu_s() or 0.0

    def share(self) -> float | None:
        cpu = self._hog.cpu_s()
        return None if cpu is None else (cpu - self._cpu0) / max(time.monotonic() - self._t0, 1e-3)
#: the cases in which the workers keep deadlines (only there ``exact`` and the ticked C
#: sender differ)
TIMED_CASES = ("udp", "rtp", "netflux")


#: the cases ``--same-rate`` applies to (an rtp stream's gap is its ptime: whole ms)
SAME_RATE_CASES = ("udp",)


def gap_ns(case: str, n: int, same_rate: bool = False) -> int:
    """The case's gap, widened so that N streams stay within MAX_TOTAL_PPS; with
    ``same_rate`` (udp) exactly N x 1 s / MAX_TOTAL_PPS, so every N sends the same total."""
    if same_rate and case in SAME_RATE_CASES:
        return n * 1_000_000_000 // MAX_TOTAL_PPS
    return max(CASES[case].gap_ns, n * 1_000_000_000 // MAX_TOTAL_PPS)


def _own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _cost(entry: dict[str, Any], cpu_s: float, wall_s: float) -> None:
    entry["cpu_s_per_s"] = cpu_s / wall_s if wall_s > 0 else None
    got = entry.get("delivered") or 0
    entry["cpu_ms_per_1k"] = cpu_s / got * 1e6 if got else None


# --------------------------------------------------------------------------
# rtudp
# --------------------------------------------------------------------------

def _open_measured(pool: Any, configs: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Open ``configs`` on ``pool``: the channels, and what opening them took: time a
    channel, the first channel's memory (with what a worker sets up once) and each
    further one's, the refusal if one came."""
    pids = [w["pid"] for w in pool.workers()]

    def memory() -> tuple[int, int]:
        """The pool's memory once it holds still: a worker maps and locks a channel's
        memory after the open returns (for at most MEM_SETTLE_S)."""
        now = shm_bytes(pool.name), locked_bytes([*pids, os.getpid()])
        end = time.monotonic() + MEM_SETTLE_S
        while time.monotonic() < end:
            time.sleep(0.05)
            now, before = (shm_bytes(pool.name), locked_bytes([*pids, os.getpid()])), now
            if now == before:
                break
        return now

    mem0 = memory()
    chans, refused, open_s = open_all(pool, configs[:1])
    mem1 = memory()
    if refused is None:
        more, refused, more_s = open_all(pool, configs[1:])
        chans += more
        open_s += more_s
    mem2 = memory()
    k = max(1, len(chans) - 1)
    return chans, {"opened": len(chans), "refused": refused,
                   "open_ms_per_chan": open_s * 1e3 / max(1, len(chans)),
                   "shm_first": mem1[0] - mem0[0], "locked_first": mem1[1] - mem0[1],
                   "shm_per_chan": (mem2[0] - mem1[0]) / k,
                   "locked_per_chan": (mem2[1] - mem1[1]) / k}


def _traffic(case: str, pool: Any, chans: list[Any], gap: int, count: int,
             exe: Any) -> dict[str, Any]:
    """Run the case's client over the open channels: its counters, the channels',
    CPU (workers + this process) and when it began (``t0_ns``)."""
    pids = [w["pid"] for w in pool.workers()]
    own0, wk0, t0 = _own_cpu(), sum(map(proc_cpu_s, pids)), time.monotonic()
    out: dict[str, Any] = {"t0_ns": time.monotonic_ns()}
    drive = CASES[case].drive
    if drive is None:
        out.update(_receive(chans, gap, count, exe))
    else:
        out["client"] = drive(chans, gap, count)
    wall = time.monotonic() - t0
    workers = sum(map(proc_cpu_s, pids)) - wk0
    cpu_s = _own_cpu() - own0 + workers
    # read after the CPU is: reading every channel's stats is the bench's, not the traffic's
    out.update(counters=_counters(chans), workers_cpu_s_per_s=workers / wall, cpu_s=cpu_s,
               wall_s=wall)
    return out


def run_rtudp(case: str, n: int, seconds: float, exe: Any,
              pool_args: dict[str, Any] | None = None, same_rate: bool = False,
              nb: Neighbours = Neighbours()) -> dict[str, Any]:
    """N channels of ``case`` on a fresh default pool (given ``pool_args``), driven by this
    process."""
    spec, gap = CASES[case], gap_ns(case, n, same_rate)
    count = max(1, int(seconds * 1e9 // gap))
    meter = OthersMeter()
    obs = Observer(exe, nb.python_reader) if spec.drive is not None else None
    entry: dict[str, Any] = {"channels": n, "expected": n * count, "gap_ms": gap / 1e6}
    try:
        with bench_pool(f"sc{case.replace('_', '')}{n}", **(pool_args or {})) as (pool, warns), \
                Hog(Hog.ANYWHERE if nb.busy_loop else None) as hog:
            dest = obs.addr if obs is not None else None
            chans, opened = _open_measured(
                pool, [spec.config(f"s{case}", i, gap, dest) for i in range(n)])
            entry.update(opened, pool_warnings=warns)
            if entry["refused"] is None:
                busy = _BusyShare(hog)
                busy.start()
                entry.update(_traffic(case, pool, chans, gap, count, exe))
                entry.update(busy_loop_share=busy.share(), moves=pool.channel_moves,
                             workers_used=len({ch.worker for ch in chans}))
            entry["close_ms_per_chan"] = close_all(pool, chans) * 1e3 / max(1, len(chans))
        if entry["refused"] is None:
            if obs is not None:
                window = None
                if case == "netflux":   # the channels run from open to close: a window
                    t0 = entry["t0_ns"] + SETTLE_NS
                    window = (t0, t0 + count * gap)
                arrivals, seen = obs.stop()
                entry.update(stream_figures(arrivals, spec.fmt, gap, count, window,
                                            by_time=spec.fmt == "netflux"), observer=seen)
            _cost(entry, entry.pop("cpu_s"), entry.pop("wall_s"))
    finally:
        if obs is not None:
            obs.close()
    entry["others_cpu"] = meter.others()
    return entry


def _receive(chans: list[Any], gap: int, count: int, exe: Any) -> dict[str, Any]:
    """rtp_rx: the C sender feeds every channel; this process reads the frames."""
    sender = CSender(exe, [ch.local for ch in chans], gap, count, 0, CASES["rtp_rx"].size, "rtp")
    try:
        got = drive_receive(chans, lambda: sender.proc.poll() is None, 0.5)
        fed = sender.result(10.0)
    finally:
        sender.close()
    return {"delivered": got["frames"], "client": got, "feeder": fed}


def _counters(chans: list[Any]) -> dict[str, int]:
    """The channels' counters that say whether all went out: sums over the channels."""
    keys = ("tx_packets", "tx_errors", "rx_packets", "rx_kernel_drops", "rtp_tx_underruns",
            "rtp_rx_lost", "nf_sent", "nf_missed")
    out = dict.fromkeys(keys, 0)
    for ch in chans:
        st = ch.stats()
        for key in keys:
            out[key] += int(st.get(key) or 0)
    return {k: v for k, v in out.items() if k in ("tx_packets", "tx_errors") or v}


# --------------------------------------------------------------------------
# the peers
# --------------------------------------------------------------------------

def run_sender_peer(case: str, n: int, seconds: float, variant: str, exe: Any,
                    same_rate: bool = False, nb: Neighbours = Neighbours()) -> dict[str, Any]:
    """The same N streams from asyncio or the C sender, to the observer."""
    spec, gap = CASES[case], gap_ns(case, n, same_rate)
    count = max(1, int(seconds * 1e9 // gap))
    meter = OthersMeter()
    obs = Observer(exe, nb.python_reader)
    hog = Hog(Hog.ANYWHERE if nb.busy_loop else None)
    busy = _BusyShare(hog)
    try:
        busy.start()
        t0 = time.monotonic()
        if variant == "asyncio":
            child = Child("scale-asyncio", asyncio_sender, obs.addr, n, gap, count, spec.size,
                          spec.fmt)
            try:
                child.ready(120.0)
                res = child.result(timeout=seconds + 120.0)
            finally:
                child.stop()
            cpu = res["cpu_s"]
        else:
            sender = CSender(exe, [obs.addr] * n, gap, count, 0, spec.size, spec.fmt,
                             tick_ns=C_TICK_VARIANTS.get(variant, 0))
            res = sender.result(seconds + 120.0)
            cpu = res["cpu_ns"] / 1e9
        wall = time.monotonic() - t0
        share = busy.share()
        time.sleep(0.1)
        arrivals, seen = obs.stop()
    finally:
        obs.close()
        hog.__exit__()
    entry = {"expected": n * count, "gap_ms": gap / 1e6, "sender": res, "observer": seen,
             "busy_loop_share": share, **stream_figures(arrivals, spec.fmt, gap, count)}
    _cost(entry, cpu, min(wall, count * gap / 1e9 + 0.1))
    entry["others_cpu"] = meter.others()
    return entry


def run_receiver_peer(n: int, seconds: float, variant: str, exe: Any) -> dict[str, Any]:
    """rtp_rx's peers: the C sender's streams received by asyncio or by C."""
    gap = gap_ns("rtp_rx", n)
    count = max(1, int(seconds * 1e9 // gap))
    meter = OthersMeter()
    if variant == "asyncio":
        child = Child("scale-asyncio-rx", asyncio_receiver, n, n * count, seconds + 30.0)
        try:
            addrs = child.ready(120.0)
            sender = CSender(exe, addrs, gap, count, 0, CASES["rtp_rx"].size, "rtp")
            fed = sender.result(seconds + 60.0)
            res = child.result(timeout=seconds + 60.0)
        finally:
            child.stop()
        got, cpu = res["received"], res["cpu_s"]
    else:
        rx = CReceiver(exe, n)
        try:
            sender = CSender(exe, rx.addrs, gap, count, 0, CASES["rtp_rx"].size, "rtp")
            fed = sender.result(seconds + 60.0)
            time.sleep(0.2)
        finally:
            res = rx.stop()
        got, cpu = res["received"], res["cpu_ns"] / 1e9
    entry = {"expected": n * count, "gap_ms": gap / 1e6, "delivered": got, "feeder": fed}
    _cost(entry, cpu, count * gap / 1e9)
    entry["others_cpu"] = meter.others()
    return entry


def run_open(n: int) -> dict[str, Any]:
    """Open ``n`` udp channels on a fresh default pool, then close them."""
    spec = CASES["udp"]
    with bench_pool("scopen") as (pool, warns):
        chans, opened = _open_measured(pool, [spec.config("so", i, spec.gap_ns, None)
                                              for i in range(n)])
        entry = {"expected": n, **opened, "pool_warnings": warns}
        entry["close_ms_per_chan"] = close_all(pool, chans) * 1e3 / max(1, len(chans))
    return entry


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------

def _one(case: str, n: int, seconds: float, variant: str, exe: Any,
         same_rate: bool = False, nb: Neighbours = Neighbours()) -> dict[str, Any]:
    if case == "udt":
        return run_udt(n, seconds)
    if variant in RTUDP_VARIANTS:
        return run_rtudp(case, n, seconds, exe, RTUDP_VARIANTS[variant], same_rate, nb)
    if case == "rtp_rx":
        return run_receiver_peer(n, seconds, variant, exe)
    return run_sender_peer(case, n, seconds, variant, exe, same_rate, nb)


def variants_of(case: str, senders: tuple[str, ...] = DEFAULT_SENDERS) -> tuple[str, ...]:
    """The senders a case's rows compare (of ``senders``): ``exact`` and the ticked C
    sender only where deadlines are kept (TIMED_CASES)."""
    if case == "udt":
        return ("rtudp",)
    return tuple(v for v in VARIANTS if v in senders
                 and (v not in TIMED_ONLY_SENDERS or case in TIMED_CASES))


def _badness(e: dict[str, Any]) -> tuple[float, float]:
    """How bad a round went: what it did not deliver, then its p99 (worst: largest)."""
    missed = e.get("expected", 0) - (e.get("delivered") or e.get("served") or 0)
    return float(missed), float(e.get("err_p99_us") or 0.0)


def pick_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The worst of a row's rounds, with every round's figures in ``rounds`` and the
    best one's index in ``best_round`` (one round: itself, no ``rounds``)."""
    if len(rounds) == 1:
        return rounds[0]
    order = sorted(range(len(rounds)), key=lambda i: _badness(rounds[i]))
    worst = dict(rounds[order[-1]])
    worst["rounds"] = rounds
    worst["best_round"] = order[0]
    return worst


def _round_rows(case: str, n: int, seconds: float, exe: Any, same_rate: bool, rounds: int,
                cold: bool, failed: dict[str, str], quiet: bool,
                senders: tuple[str, ...] = DEFAULT_SENDERS,
                nb: Neighbours = Neighbours()) -> dict[str, Any]:
    """Every variant of one (case, N), ``rounds`` times interleaved: the worst round of
    each (pick_rounds); a failed round is in ``failed`` and counts as no round."""
    got: dict[str, list[dict[str, Any]]] = {}
    for k in range(rounds):
        for variant in variants_of(case, senders):
            key = f"{case} N={n} {variant}" + (f" round {k + 1}" if rounds > 1 else "")
            try:
                if cold:
                    say(f"  {key}: {drop_caches()}", quiet)
                e = _one(case, n, seconds, variant, exe, same_rate, nb)
            except Exception as exc:  # noqa: BLE001 - a failed row is reported, not fatal
                failed[key] = f"{type(exc).__name__}: {exc}"
                continue
            got.setdefault(variant, []).append(e)
            if case != "udt":
                tag = f"{variant}" + (f" r{k + 1}" if rounds > 1 else "")
                say(f"  {case:8} {int(n):>5} {e['gap_ms']:>5g} {tag:8} {_row(e)}", quiet)
    return {variant: pick_rounds(es) for variant, es in got.items()}


def benchmark(quick: bool, quiet: bool, ns: tuple[int, ...] | None = None,
              cases: tuple[str, ...] = ALL_CASES, seconds: float | None = None,
              open_n: int | None = None, same_rate: bool = False, rounds: int = 1,
              cold: bool = False, senders: tuple[str, ...] = DEFAULT_SENDERS,
              nb: Neighbours = Neighbours()) -> dict[str, Any]:
    """Every (case, N, variant) row, ``rounds`` times each (the worst kept, every round in
    it); a row that fails is in ``failed`` with its error.  ``same_rate``: the udp case
    sends the same total rate at every N (gap_ns); ``cold``: the page cache dropped
    before every round."""
    ns = ns or (QUICK_N if quick else FULL_N)
    seconds = seconds or (QUICK_S if quick else FULL_S)
    open_n = open_n or (QUICK_OPEN_N if quick else OPEN_N)
    raise_nofile()
    busy = header("scale", quick, quiet, f", N = {', '.join(map(str, ns))}, {seconds:g} s a row")
    report: dict[str, Any] = {"ns": list(ns), "seconds": seconds, "busy_before": busy,
                              "same_rate": same_rate, "rounds": rounds, "drop_caches": cold,
                              "python_reader": nb.python_reader, "busy_loop": nb.busy_loop,
                              "cases": {}, "failed": {}, "skipped": {}}
    try:
        exe = build_peer()
    except PeerUnavailable as exc:
        report["skipped"]["all"] = str(exc)
        return report
    for case in (c for c in cases if c != "open"):
        table = report["cases"].setdefault(case, {})
        if case == "udt":
            report["skipped"]["udt"] = UDT_PEERS_MISSING
        for n in ns:
            table[str(n)] = _round_rows(case, n, seconds, exe, same_rate, rounds, cold,
                                        report["failed"], quiet, senders, nb)
    if "open" in cases:
        say(f"  open N={open_n} ...", quiet)
        try:
            report["open"] = run_open(open_n)
        except Exception as exc:  # noqa: BLE001
            report["failed"][f"open N={open_n}"] = f"{type(exc).__name__}: {exc}"
    return report


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------

def _num(v: float | None, width: int, fmt: str) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:{width}{fmt}}"


def _kib(v: float | None) -> str:
    return _num(None if v is None else v / 1024, 8, ".1f")


def _row(e: dict[str, Any]) -> str:
    if e.get("refused"):
        return f"opened {e['opened']:,} of {e['channels']:,}: {e['refused']}"
    got = f"{e.get('delivered', 0):,}/{e['expected']:,}"
    extra = [f"workers {e['workers_cpu_s_per_s']:.3f}"] if "workers_cpu_s_per_s" in e else []
    extra += [f"{k}={v}" for k, v in (("dup", e.get("duplicates")),
                                      ("reord", e.get("reordered"))) if v]
    extra += [f"{k}={v}" for k, v in (e.get("counters") or {}).items()
              if k in ("rtp_tx_underruns", "tx_errors", "nf_missed", "rx_kernel_drops") and v]
    extra += [f"{k}={v}" for k, v in (e.get("client") or {}).items()
              if k in ("ring_full", "late_submits", "late_topups") and v]
    if e.get("busy_loop_share") is not None:
        extra.append(f"busy_loop={e['busy_loop_share']:.2f}")
    if (e.get("observer") or {}).get("dropped"):
        extra.append(f"reader_dropped={e['observer']['dropped']}")
    if e.get("workers_used") is not None:
        extra.append(f"workers_used={e['workers_used']} moves={e.get('moves', 0)}")
    return (f"{got:>17} {_num(e.get('err_p50_us'), 8, ',.0f')} "
            f"{_num(e.get('err_p99_us'), 9, ',.0f')} {_num(e.get('err_max_us'), 10, ',.0f')} "
            f"{_num(e.get('cpu_s_per_s'), 7, '.3f')} {_num(e.get('cpu_ms_per_1k'), 8, '.1f')} "
            f"{_num(e.get('open_ms_per_chan'), 7, '.2f')} {_kib(e.get('shm_per_chan'))} "
            f"{_kib(e.get('locked_per_chan'))} {others_col(e)} {' '.join(extra)}")


def _spread(e: dict[str, Any]) -> str:
    """Under a row of several rounds: the best round, and the range of p99 and CPU."""
    rounds = e["rounds"]
    best = rounds[e["best_round"]]
    p99s = [r["err_p99_us"] for r in rounds if r.get("err_p99_us") is not None]
    cpus = [r["cpu_s_per_s"] for r in rounds if r.get("cpu_s_per_s") is not None]
    spans = [f"p99 {min(p99s):,.0f}..{max(p99s):,.0f} µs" if p99s else "",
             f"CPU {min(cpus):.3f}..{max(cpus):.3f}" if cpus else ""]
    return (f"best of {len(rounds)}: {_row(best).strip()}\n  {'':>5} {'':>5} {'':8} "
            f"{len(rounds)} rounds: {', '.join(x for x in spans if x)}")


def _print_udt(table: dict[str, dict[str, Any]]) -> None:
    print("\nUDT connections (rtudp -> rtudp, one stream each, concurrent)")
    print(f"  {'N':>5} {'served':>11} {'starved':>7} {'Jain':>5} {'MB min':>7} {'MB mean':>7} "
          f"{'MB max':>7} {'Mbit/s':>7} {'CPU-s/s':>7} {'ms/1kpkt':>8} {'open ms':>7} "
          f"{'shm KiB':>8} {'lck KiB':>8}")
    for n, rows in table.items():
        e = rows.get("rtudp") or {}
        if e.get("refused") or "served" not in e:
            print(f"  {int(n):>5} opened {e.get('opened', 0):,} of {int(n):,}: {e.get('refused')}")
            continue
        print(f"  {int(n):>5} {e['served']:>5,}/{int(n):<5,} {e['starved']:>7} "
              f"{_num(e['jain'], 5, '.2f')} {e['bytes_min'] / 1e6:7.1f} "
              f"{e['bytes_mean'] / 1e6:7.1f} {e['bytes_max'] / 1e6:7.1f} "
              f"{e['mbit_s_total']:7.0f} {_num(e['cpu_s_per_s'], 7, '.3f')} "
              f"{_num(e['cpu_ms_per_1k'], 8, '.1f')} {_num(e['open_ms_per_chan'], 7, '.2f')} "
              f"{_kib(e['shm_per_chan'])} {_kib(e['locked_per_chan'])}")


def print_report(r: dict[str, Any]) -> None:
    """One table a case: a row per N and sender; CPU ratios against the peers."""
    print("\nrtudp bench scale" + (f": N = {', '.join(map(str, r['ns']))}, {r['seconds']:g} s a row"
                                 if r["cases"] else "")
          + (f", worst of {r['rounds']} rounds" if r.get("rounds", 1) > 1 else "")
          + (", page cache dropped before each" if r.get("drop_caches") else "")
          + (", a Python reader observes" if r.get("python_reader") else "")
          + (", a busy loop beside" if r.get("busy_loop") else ""))
    entries: list[dict | None] = []
    for case, table in r["cases"].items():
        if case == "udt":
            _print_udt(table)
            continue
        print(f"\n{CASES[case].title}")
        print(f"  {'N':>5} {'gap':>5} {'sender':8} {'delivered/expected':>17} {'p50 µs':>8} "
              f"{'p99 µs':>9} {'max µs':>10} {'CPU-s/s':>7} {'ms/1kpkt':>8} {'open ms':>7} "
              f"{'shm KiB':>8} {'lck KiB':>8} {'others':>7}")
        for n, rows in table.items():
            for variant in VARIANTS:
                e = rows.get(variant)
                if e is None:
                    continue
                entries.append(e)
                print(f"  {int(n):>5} {e['gap_ms']:>5g} {variant:8} {_row(e)}")
                if "rounds" in e:
                    print(f"  {'':>5} {'':>5} {'':8} {_spread(e)}")
            ours = rows.get("rtudp") or {}
            ratios = [f"{v} {ours['cpu_s_per_s'] / rows[v]['cpu_s_per_s']:.2f}x"
                      for v in VARIANTS[1:] if rows.get(v, {}).get("cpu_s_per_s")
                      and ours.get("cpu_s_per_s") is not None]
            if ratios:
                print(f"  {'':>5} {'':>5} rtudp CPU vs {', '.join(ratios)}")
    if "open" in r:
        e = r["open"]
        print(f"\nopen only: {e['opened']:,} of {e['expected']:,} udp channels opened"
              + (f" ({e['refused']})" if e.get("refused") else "")
              + f"; {e['open_ms_per_chan']:.2f} ms a channel to open, "
              f"{e['close_ms_per_chan']:.2f} ms to close; {e['shm_per_chan'] / 1024:.1f} KiB "
              f"shared, {e['locked_per_chan'] / 1024:.1f} KiB locked a channel")
    print("\n  p50/p99/max: |arrival - the stream's ideal schedule| at the observer "
          "(kernel stamps); CPU: rtudp = workers + client, peers = their process;\n"
          "  rtudp: the default pool (channels packed on as few workers as keep up, spread "
          "and gathered live); spread: placement=\"spread\" (each channel on the worker with "
          "the fewest); spread-100us / spread-1ms: spread, with late-*'s budget;\n"
          "  exact: rtudp with tx_coalesce_us=0, every deadline at its own time; "
          "C-1ms / C-100us: the C sender waking every 1 ms (as asyncio's loop) / 100 µs")
    others_footer(entries)
    for key, why in r["failed"].items():
        print(f"failed: {key}: {why}")
    for why in r["skipped"].values():
        print(f"skipped: {why}")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v.replace("_", "")) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--n {text!r}: a comma-separated list of "
                                         f"channel counts, e.g. 10,100,1000") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--n {text!r}: every count must be >= 1")
    return values


def _names(option: str, choices: tuple[str, ...]) -> Any:
    """The argparse type of ``option``: a comma-separated list of ``choices``."""
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"{option} {text!r}: unknown {bad or text!r}; "
                                             f"choose from {', '.join(choices)}")
        return values
    return parse


_case_list = _names("--cases", ALL_CASES)
_sender_list = _names("--senders", VARIANTS)


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.1 <= v <= 3600:
        raise argparse.ArgumentTypeError(f"--seconds {text!r}: a number of seconds, 0.1..3600")
    return v


def _rounds(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError(f"--rounds {text!r}: a whole number of rounds, 1..100")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench scale``."""
    add_common_arguments(parser, f"N = {', '.join(map(str, QUICK_N))}, {QUICK_S:g} s a row, "
                                 f"{QUICK_OPEN_N} channels opened only")
    parser.add_argument("--n", type=_int_list, metavar="LIST",
                        help=f"channel counts (default {','.join(map(str, FULL_N))})")
    parser.add_argument("--cases", type=_case_list, default=ALL_CASES, metavar="LIST",
                        help=f"cases to run (default all: {','.join(ALL_CASES)})")
    parser.add_argument("--seconds", type=_seconds, metavar="S",
                        help=f"seconds of traffic a row (default {FULL_S:g}; --quick {QUICK_S:g})")
    parser.add_argument("--open-n", type=int, metavar="N",
                        help=f"channels the 'open' case opens (default {OPEN_N})")
    parser.add_argument("--same-rate", action="store_true",
                        help=f"udp: every N sends {MAX_TOTAL_PPS:,} packets/s in all (a gap of "
                             f"N x {1_000_000 // MAX_TOTAL_PPS} µs), so CPU per packet compares "
                             "across N")
    parser.add_argument("--rounds", type=_rounds, default=1, metavar="K",
                        help="run every row K times, interleaved; show the worst and the best "
                             "(default 1)")
    add_drop_caches_argument(parser, "before every round")
    parser.add_argument("--senders", type=_sender_list, default=DEFAULT_SENDERS, metavar="LIST",
                        help=f"the senders to compare (default {','.join(DEFAULT_SENDERS)}; "
                             f"also: spread, the pool with placement=\"spread\", and "
                             f"spread-100us, spread-1ms)")
    parser.add_argument("--observer", choices=("c", "python"), default="c",
                        help="who reads every datagram: the C observer (default) or an "
                             "ordinary Python process with the buffer the kernel grants "
                             "(the neighbour a pool must leave CPU to; its drops are counted)")
    parser.add_argument("--busy-loop", action="store_true",
                        help="run a SCHED_OTHER busy loop beside each row and report its "
                             "share of a CPU")


def run(args: argparse.Namespace) -> int:
    """Measure and print (a table, or JSON with --json); 1 when a row failed."""
    check_drop_caches("rtudp bench scale", args.drop_caches)
    return run_benchmark(args, lambda quick, quiet: benchmark(
        quick, quiet, args.n, args.cases, args.seconds, args.open_n, args.same_rate,
        args.rounds, args.drop_caches, args.senders,
        Neighbours(args.observer == "python", args.busy_loop)),
        print_report)


__all__ = ["ALL_CASES", "benchmark", "gap_ns", "pick_rounds", "print_report"]
