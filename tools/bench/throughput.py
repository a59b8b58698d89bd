"""``rtudp bench throughput``: 64-byte datagrams per second from one Python process.

Both cases send from this process to the same receiver on 127.0.0.1 for 3 s
(--quick: 1 s), one after the other in the same run:

1. rtudp: ``Channel.send_many`` of 1000 datagrams per call on a send-only channel
   (worker on one CPU); when the ring is full, the rest of the batch is retried
   after a 50 µs sleep.
2. plain Python: a ``socket.sendto`` loop.

The receiver is a receive-only rtudp channel served by the other worker (C,
``recvmmsg``): it counts what really arrived (``rx_packets``) and what the kernel
dropped (``rx_kernel_drops``), so nothing is counted that did not travel.  The figure
is packets received / (time the last one was counted - start): delivered packets/s.

Then the cost of one call from Python (median and best of blocks of 10,000 calls,
the ring drained between blocks so that no call meets a full ring):
``Channel.send(data)``, ``Channel.send(data, at_ns)``, the RtUDP-compatible
``RtUdpSocket.send_data(data, 0)``, and ``socket.sendto`` for comparison.  These
send to a socket nobody reads (the kernel drops what overflows it), so that no
receiver runs on the caller's CPU: with the receiving channel there, its RX thread
preempted the caller and the figure was that thread's work, not the call's.

Then the receive side (tools/bench/rxbatch.py): how fast this process takes 64-byte
datagrams out of a filled RX ring, ``Channel.recv_batch`` (numpy) next to
``Channel.recv_many``.

Targets (issue 3): delivered packets/s >= 3x the sendto loop's; one ``send`` call,
and one ``send_data`` call, <= 0.5 µs (RtUDP's ``send_data`` was quoted at 1.4-3.2 µs; not measured here);
(issue 21) recv_batch >= 5 M packets/s.
Reported PASS/MISS, never asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import time
from collections.abc import Iterator
from typing import Any, Callable

from rtudp.shmring.errors import BackPressureError

from . import rxbatch
from .common import (LOOPBACK, MSG_SIZE, OthersMeter, add_common_arguments, bench_pool,
                           fmt_ratio, header, others_col, others_footer, print_table,
                           print_workers, ratio, run_benchmark, say, target, target_row,
                           worker_policies)

FULL_S, QUICK_S = 3.0, 1.0
BATCH = 1000
CAPACITY = 1 << 16                 # packets the channels' rings hold
FULL_SLEEP_S = 50e-6               # rtudp: pause when the TX ring is full
DRAIN_TIMEOUT_S = 5.0              # wait at most this for the receiver to count everything
CALL_BLOCK = 10_000
CALL_BLOCKS_FULL, CALL_BLOCKS_QUICK = 20, 5
TARGET_RATIO = 3.0
TARGET_SEND_NS = 500.0
RTUDP_SEND_DATA_QUOTED = "1.4-3.2 µs"

CASES = {
    "ours": ("rtudp send_many", f"Channel.send_many({BATCH} datagrams) -> worker sendmmsg"),
    "python": ("python sendto loop", "socket.sendto per datagram"),
}
CALLS = {
    "send": ("Channel.send(data)", "immediate"),
    "send_at": ("Channel.send(data, at_ns)", "with a deadline"),
    "send_data": ("RtUdpSocket.send_data", "RtUDP-compatible API, ts_ns=0"),
    "sendto": ("socket.sendto", "plain Python, the kernel sends it in the call"),
    "send_same_cpu": ("Channel.send(data), same CPU", "caller on the worker's CPU: a call "
                      "that queues wakes the worker, which preempts the caller; the next "
                      "finds it parked and sends directly"),
}


class Counter:
    """Reads the receiver channel's counters."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def read(self) -> tuple[int, int]:
        s = self.sink.stats()
        return s["rx_packets"], s["rx_kernel_drops"]


def _deliver(counter: Counter, sent: int, t0: int, r0: int, d0: int,
             submitted_ns: int, others: Callable[[], float | None], **extra: Any) -> dict:
    """Wait until `sent` packets were received or dropped (or DRAIN_TIMEOUT_S); the entry."""
    end = time.monotonic() + DRAIN_TIMEOUT_S
    last_count, t_last = -1, time.monotonic_ns()
    while True:
        r, d = counter.read()
        if r != last_count:
            last_count, t_last = r, time.monotonic_ns()
        if r - r0 + d - d0 >= sent or time.monotonic() > end:
            break
        time.sleep(0.0005)
    received, drops = r - r0, d - d0
    seconds = (t_last - t0) / 1e9
    return {"sent": sent, "received": received, "kernel_drops": drops,
            "seconds": seconds, "pps": received / seconds if seconds > 0 else None,
            "submit_pps": sent / ((submitted_ns - t0) / 1e9), "others_cpu": others(), **extra}


def run_ours(src: Any, counter: Counter, seconds: float, meter: OthersMeter) -> dict:
    batch = [bytes(range(MSG_SIZE))] * BATCH
    send_many, now, sleep = src.send_many, time.monotonic_ns, time.sleep
    r0, d0 = counter.read()
    full_events = sent = 0
    t0 = now()
    end = t0 + int(seconds * 1e9)
    while now() < end:
        items = batch
        while items:
            try:
                sent += send_many(items)
                items = []
            except BackPressureError as exc:
                sent += exc.sent
                items = items[exc.sent:]
                full_events += 1
                sleep(FULL_SLEEP_S)
    submitted = now()
    return _deliver(counter, sent, t0, r0, d0, submitted, meter.others,
                    full_events=full_events)


def run_python(addr: tuple[str, int], counter: Counter, seconds: float,
               meter: OthersMeter) -> dict:
    msg = bytes(range(MSG_SIZE))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sendto, now = sock.sendto, time.monotonic_ns
        r0, d0 = counter.read()
        sent = 0
        t0 = now()
        end = t0 + int(seconds * 1e9)
        while now() < end:
            for _ in range(BATCH):
                sendto(msg, addr)
            sent += BATCH
        submitted = now()
    finally:
        sock.close()
    return _deliver(counter, sent, t0, r0, d0, submitted, meter.others)


# --------------------------------------------------------------------------
# Cost of one call
# --------------------------------------------------------------------------

def _wait_drained(src: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while src.stats()["tx_queued_bytes"] and time.monotonic() < end:
        time.sleep(0.001)


def call_cost(call: Callable[[], Any], blocks: int, drain: Callable[[], None],
              pids: Callable[[], list[int]] = list) -> dict:
    """ns per call: median and best of `blocks` blocks of CALL_BLOCK calls."""
    meter = OthersMeter(pids)
    per_call = []
    clock = time.perf_counter_ns
    for _ in range(blocks):
        drain()
        t0 = clock()
        for _ in range(CALL_BLOCK // 10):  # unrolled a little: the loop's own cost is tiny
            call(); call(); call(); call(); call()  # noqa: E702
            call(); call(); call(); call(); call()  # noqa: E702
        per_call.append((clock() - t0) / CALL_BLOCK)
    return {"median_ns": statistics.median(per_call), "best_ns": min(per_call),
            "calls": blocks * CALL_BLOCK, "others_cpu": meter.others()}


def measure_calls(pool: Any, blocks: int, failed: dict, worker_cpu: int,
                  other_cpu: int | None, pids: Callable[[], list[int]]) -> dict:
    """Cost of one call of each kind, this process pinned to `other_cpu` (not the
    sending channel's worker's); Channel.send also pinned to `worker_cpu`.  Every
    call sends to a socket nobody reads (see the module's docstring)."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        hole.bind((LOOPBACK, 0))
        src = pool.open_channel("calls", local=(LOOPBACK, 0), remote=hole.getsockname(),
                                direction=0, capacity=CAPACITY, max_datagram=MSG_SIZE,
                                cpu=worker_cpu)
        try:
            return _measure_calls(pool, src, hole.getsockname(), blocks, failed, worker_cpu,
                                  other_cpu, pids)
        finally:
            src.close()
    finally:
        hole.close()


def _measure_calls(pool: Any, src: Any, sink_addr: tuple[str, int], blocks: int,
                   failed: dict, worker_cpu: int, other_cpu: int | None,
                   pids: Callable[[], list[int]]) -> dict:
    msg = bytes(range(MSG_SIZE))
    send = src.send
    drain = lambda: _wait_drained(src)  # noqa: E731
    out: dict[str, dict | None] = dict.fromkeys(CALLS)
    out["send"] = call_cost(lambda: send(msg), blocks, drain, pids)
    holder = [0]  # the deadline: 1 ms after the start of each block

    def drain_at() -> None:
        drain()
        holder[0] = time.monotonic_ns() + 1_000_000

    out["send_at"] = call_cost(lambda: send(msg, holder[0]), blocks, drain_at, pids)
    try:
        out["send_data"] = _send_data_cost(pool, sink_addr, msg, blocks, worker_cpu, pids)
    except Exception as exc:  # noqa: BLE001 - report it and go on
        failed["send_data"] = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sendto = sock.sendto
        out["sendto"] = call_cost(lambda: sendto(msg, sink_addr), blocks,
                                  lambda: time.sleep(0.002), pids)
    finally:
        sock.close()
    if other_cpu is not None:
        with pinned(worker_cpu):
            out["send_same_cpu"] = call_cost(lambda: send(msg), blocks, drain, pids)
    return out


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run this process (its calling thread) on `cpu` only (None: leave it); restored after."""
    if cpu is None:
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def _send_data_cost(pool: Any, sink_addr: tuple[str, int], msg: bytes, blocks: int,
                    cpu: int, pids: Callable[[], list[int]]) -> dict:
    from rtudp.compat import create_rtudp

    ep = create_rtudp("socket", LOOPBACK, 0, sink_addr[0], sink_addr[1], pool=pool,
                      capacity=CAPACITY, direction=0, max_datagram=MSG_SIZE, cpu=cpu)
    ep.init_socket()
    try:
        ep.start()
        send_data = ep.send_data

        def drain() -> None:
            end = time.monotonic() + 5.0
            while ep.get_send_length() and time.monotonic() < end:
                time.sleep(0.001)

        return call_cost(lambda: send_data(msg, 0), blocks, drain, pids)
    finally:
        ep.stop()
        ep.close_socket()


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def benchmark(quick: bool, quiet: bool) -> dict:
    seconds = QUICK_S if quick else FULL_S
    blocks = CALL_BLOCKS_QUICK if quick else CALL_BLOCKS_FULL
    busy = header("throughput", quick, quiet, f", {seconds:g} s a case")
    results: dict[str, dict | None] = dict.fromkeys(CASES)
    calls: dict[str, dict | None] = dict.fromkeys(CALLS)
    failed: dict[str, str] = {}
    facts: dict = {}
    rx: dict = {"failed": {}}
    with bench_pool("throughput") as (pool, pool_warnings):
        for w in pool_warnings:
            say(f"  warning: {w}", quiet)
        cpus = pool.cpus
        sink = pool.open_channel("sink", local=(LOOPBACK, 0), direction=1, capacity=CAPACITY,
                                 max_datagram=MSG_SIZE, cpu=cpus[-1])
        src = None
        try:
            src = pool.open_channel("source", local=(LOOPBACK, 0), remote=sink.local,
                                    direction=0, capacity=CAPACITY, max_datagram=MSG_SIZE,
                                    cpu=cpus[0])
            facts = {"policies": worker_policies(pool), "pool_warnings": pool_warnings,
                     "source_cpu": pool.workers()[src.worker]["cpu"],
                     "sink_cpu": pool.workers()[sink.worker]["cpu"]}
            counter = Counter(sink)
            pids = lambda: [w["pid"] for w in pool.workers()]  # noqa: E731
            worker_cpu = facts["source_cpu"]
            others = sorted(os.sched_getaffinity(0) - {worker_cpu})
            other_cpu = others[0] if others else None
            facts["python_cpu"] = other_cpu
            with pinned(other_cpu):
                for key, fn in (("ours", lambda m: run_ours(src, counter, seconds, m)),
                                ("python",
                                 lambda m: run_python(sink.local, counter, seconds, m))):
                    try:
                        results[key] = fn(OthersMeter(pids))
                    except Exception as exc:  # noqa: BLE001 - report it and go on
                        failed[key] = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
                        say(f"{key}: {exc}", quiet)
                        continue
                    say(f"  ... {CASES[key][0]}: {results[key]['pps'] / 1e3:.0f} k packets/s "
                        f"delivered", quiet)
                try:
                    calls = measure_calls(pool, blocks, failed, worker_cpu, other_cpu, pids)
                except Exception as exc:  # noqa: BLE001
                    failed["calls"] = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
                    say(f"calls: {exc}", quiet)
                try:
                    rx = rxbatch.measure(pool, cpus, quick)
                except Exception as exc:  # noqa: BLE001
                    why = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
                    rx = {"failed": dict.fromkeys(rxbatch.CASES, why)}
                    say(f"receive: {exc}", quiet)
        finally:
            if src is not None:
                src.close()
            sink.close()
    pps = {k: (e or {}).get("pps") for k, e in results.items()}
    for e in results.values():
        if e:
            e["vs_python"] = ratio(e["pps"], pps["python"])
    sendto_ns = (calls.get("sendto") or {}).get("median_ns")
    for c in calls.values():
        if c:
            c["vs_sendto"] = ratio(c["median_ns"], sendto_ns)
    send_ns = (calls.get("send") or {}).get("median_ns")
    send_data_ns = (calls.get("send_data") or {}).get("median_ns")
    return {"quick": quick, "seconds": seconds, "msg_size": MSG_SIZE, "batch": BATCH,
            "cpu_busy_before": busy, **facts, "results": results, "calls": calls,
            "failed": failed, "rx": rx,
            "targets": {"ours_vs_python": target(ratio(pps["ours"], pps["python"]),
                                                 TARGET_RATIO, True),
                        "send_call_ns": target(send_ns, TARGET_SEND_NS, False),
                        "send_data_call_ns": target(send_data_ns, TARGET_SEND_NS, False),
                        "recv_batch_pps": target((rx.get("recv_batch") or {}).get("pps_median"),
                                                 rxbatch.TARGET_PPS, True),
                        "recv_vs_python_socket": target(
                            ratio((rx.get("recv") or {}).get("pps_median"),
                                  (rx.get("python_socket") or {}).get("pps_median")),
                            1.0, True)}}


def print_report(r: dict) -> None:
    print_workers(r.get("policies", []), r.get("pool_warnings", []))
    if "source_cpu" in r:
        print(f"  sending channel on the worker of CPU {r['source_cpu']}, receiving channel "
              f"(the counter) on the worker of CPU {r['sink_cpu']}; this process pinned to "
              f"CPU {r['python_cpu']} for every case and call below unless said otherwise")
    print_table(f"packets/s, {r['msg_size']}-byte datagrams from this process to a receiving "
                f"rtudp channel on {LOOPBACK}, {r['seconds']:g} s a case",
                f"{'delivered/s':>12} {'vs py':>7} {'queued/s':>10} {'sent':>9} "
                f"{'received':>9} {'k.drops':>8} {'others':>7}   how", CASES, r["results"],
                lambda e, how: (f"{e['pps'] / 1e3:10.0f} k {fmt_ratio(e['vs_python']):>7} "
                                f"{e['submit_pps'] / 1e3:8.0f} k {e['sent']:>9} "
                                f"{e['received']:>9} {e['kernel_drops']:>8} {others_col(e)}   "
                                f"{how}"),
                lambda key: r["failed"].get(key, "failed"), 22)
    ours = r["results"].get("ours")
    if ours:
        print(f"  rtudp: the TX ring was full {ours['full_events']} times (the worker sets "
              f"the pace); queued/s = datagrams handed over per second of the send loop")
    print_table(f"cost of one call from Python (ns; median / best of blocks of {CALL_BLOCK} "
                f"calls)", f"{'median':>8} {'best':>8} {'vs sendto':>10} {'others':>7}   note",
                CALLS, r["calls"],
                lambda c, note: (f"{c['median_ns']:8.0f} {c['best_ns']:8.0f} "
                                 f"{fmt_ratio(c['vs_sendto']):>10} {others_col(c)}   {note}"),
                lambda key: r["failed"].get(key, r["failed"].get("calls", "failed")), 28, "call")
    print(f"  (RtUDP's own send_data: {RTUDP_SEND_DATA_QUOTED} per call, as quoted in issue 3; "
          "not measured here)")
    rxbatch.print_report(r["rx"], print_table, fmt_ratio, ratio)
    others_footer([*r["results"].values(), *r["calls"].values()])
    print("\ntargets")
    print(target_row("rtudp send_many / python sendto, pkt/s", r["targets"]["ours_vs_python"],
                     ">=", "x", lambda v: f"{v:.2f}"))
    print(target_row("one Channel.send call", r["targets"]["send_call_ns"], "<=", " ns",
                     lambda v: f"{v:.0f}"))
    print(target_row("one RtUdpSocket.send_data call", r["targets"]["send_data_call_ns"], "<=",
                     " ns", lambda v: f"{v:.0f}"))
    print(target_row("recv_batch, packets/s (median)", r["targets"]["recv_batch_pps"], ">=",
                     " M", lambda v: f"{v / 1e6:.2f}"))
    print(target_row("Channel.recv / python socket.recv, pkt/s", r["targets"]["recv_vs_python_socket"],
                     ">=", "x", lambda v: f"{v:.2f}"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench throughput``."""
    add_common_arguments(parser, f"{QUICK_S:g} s a case instead of {FULL_S:g} s, fewer "
                                 "call blocks")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench throughput``: 0 when every case ran (targets met or not)."""
    return run_benchmark(args, benchmark, print_report)
