"""What an idle pool costs, and what the first send after a long idle costs.

    python tests/idle_cost.py [--worker PATH] cpu [SECONDS]
    python tests/idle_cost.py [--worker PATH] first-send [IDLE_S [REPEATS]]

``--worker PATH`` runs the pool's workers from another ``rtudp-worker`` build
(``Pool(worker=[PATH])``), to set one commit's against another's in the same run.

``cpu``: a pool on CPUs 0 and 1 (``rtudp.Pool('idlecost', cpus=[0, 1])``) with 10 udp
channels open and nothing sent; after 3 s (the channels' opening settles) it reads
every thread's time on a CPU (``/proc/<pid>/task/*/schedstat``) of this process (the
supervisor's threads), each worker and each idle poller, twice, SECONDS apart (10),
and prints each thread's CPU-s/s, its wake-ups (voluntary context switches) and
preemptions (involuntary ones) a second, and the total.

``first-send``: the same pool with one channel that sends to a local socket and one
that receives from a plain socket, both on CPU 1's worker.  REPEATS times (5): nothing
for IDLE_S seconds (10), then one timed send due 1 ms ahead; nothing for IDLE_S again,
then one due 100 us ahead; nothing for IDLE_S again, then one datagram in.  Then
steady traffic (the same three every 20 ms for 2 s).  It prints each first send's
lateness (the worker's TX stamp against its deadline, from the channel's
``tx_lateness`` histogram) and the first datagram's receive delay (``rx_delay``: its
kernel stamp to its publication), against the steady traffic's p50 and p99.

Not a test: a measurement for docs/scheduling.md ("Resting"); it takes the CPUs for
nothing but its own pool and prints its figures.
"""
from __future__ import annotations

import glob
import os
import socket
import sys
import threading
import time
from typing import Any

import rtudp

POOL = "idlecost"
CPUS = [0, 1]
#: Pool(worker=...): None, the installed worker
WORKER: list[str] | None = None
STEADY_GAP_S = 0.02
STEADY_S = 2.0


def _threads(pid: int, names: dict[int, str]) -> dict[int, tuple[str, int, list[int]]]:
    """tid -> (name, ns on a CPU, [voluntary, involuntary context switches]) of process
    ``pid``'s threads."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        tid = int(task.rsplit("/", 1)[1])
        try:
            with open(task + "/schedstat") as f:
                ns = int(f.read().split()[0])
            with open(task + "/comm") as f:
                comm = f.read().strip()
            with open(task + "/status") as f:  # (voluntary: wake-ups; the others: preempted)
                switches = [int(line.split()[1]) for line in f if "ctxt_switches" in line]
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
        out[tid] = (names.get(tid, comm), ns, switches)
    return out


def _processes(pool: rtudp.Pool) -> dict[str, int]:
    procs = {"supervisor": os.getpid()}
    for w in pool.workers():
        procs[f"worker{w['cpu']}"] = w["pid"]
        if w["idle_poller_pid"]:
            procs[f"poller{w['cpu']}"] = w["idle_poller_pid"]
    return procs


def cpu(seconds: float) -> None:
    with rtudp.Pool(POOL, cpus=CPUS, worker=WORKER) as pool:
        chans = [pool.open_channel(f"c{i}", local=("127.0.0.1", 0), remote=("127.0.0.1", 9))
                 for i in range(10)]
        time.sleep(3.0)
        names = {t.native_id: t.name for t in threading.enumerate() if t.native_id}
        procs = _processes(pool)
        before = {k: _threads(pid, names) for k, pid in procs.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        took = time.monotonic() - t0
        after = {k: _threads(pid, names) for k, pid in procs.items()}
        total = 0.0
        print(f"{'process':11s} {'tid':>7s} {'thread':24s} {'CPU-s/s':>9s} {'wake-ups/s':>10s} "
              f"{'preempted/s':>11s}")
        for k in procs:
            for tid, (name, ns, sw) in sorted(after[k].items()):
                if tid not in before[k]:
                    continue
                share = (ns - before[k][tid][1]) / 1e9 / took
                total += share
                vol, invol = (a - b for a, b in zip(sw, before[k][tid][2]))
                print(f"{k:11s} {tid:7d} {name[:24]:24s} {share:9.5f} {vol / took:10.1f} "
                      f"{invol / took:11.1f}")
        print(f"total {total:.5f} CPU-s/s over {took:.1f} s "
              f"(channels per worker: {[w['channels'] for w in pool.workers()]})")
        for ch in chans:
            ch.close()


def _one_lateness(ch: Any, send: Any) -> int | None:
    """The lateness (ns) of the one datagram ``send()`` queues, once its stamp is in."""
    before = ch.lateness()
    send()
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        diff = ch.lateness() - before
        if diff.count:
            return diff.max_ns
        time.sleep(0.002)
    return None


def _one_delay(rx: Any, peer: socket.socket) -> int | None:
    before = rx.rx_delay()
    peer.send(b"in")
    got = rx.recv(timeout=2.0)
    assert got.data == b"in"
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        diff = rx.rx_delay() - before
        if diff.count:
            return diff.max_ns
        time.sleep(0.002)
    return None


def _us(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.1f}"


def first_send(idle_s: float, repeats: int) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    with sink, peer, rtudp.Pool(POOL, cpus=CPUS, worker=WORKER) as pool:
        tx = pool.open_channel("tx", local=("127.0.0.1", 0), remote=sink.getsockname(),
                               cpu=CPUS[-1])
        rx = pool.open_channel("rx", local=("127.0.0.1", 0), remote=peer.getsockname(),
                               cpu=CPUS[-1])
        peer.connect(rx.local)

        def timed(lead_ns: int) -> Any:
            return lambda: tx.send(b"t", at_ns=time.monotonic_ns() + lead_ns)

        def drain() -> None:
            try:
                while True:
                    sink.recv(64)
            except BlockingIOError:
                pass

        print(f"{'after':>8s} {'1 ms ahead':>12s} {'100 us ahead':>13s} {'rx_delay':>10s}  (us)")
        for _ in range(repeats):
            time.sleep(idle_s)  # each one the first thing after idle_s
            late_1ms = _one_lateness(tx, timed(1_000_000))
            time.sleep(idle_s)
            late_100us = _one_lateness(tx, timed(100_000))
            time.sleep(idle_s)
            delay = _one_delay(rx, peer)
            drain()
            print(f"{idle_s:6.0f} s {_us(late_1ms):>12s} {_us(late_100us):>13s} {_us(delay):>10s}")
        time.sleep(0.5)
        lat_1ms, lat_100us = [], []
        rx_before = rx.rx_delay()
        end = time.monotonic() + STEADY_S
        while time.monotonic() < end:
            lat_1ms.append(_one_lateness(tx, timed(1_000_000)))
            lat_100us.append(_one_lateness(tx, timed(100_000)))
            peer.send(b"in")
            rx.recv(timeout=2.0)
            drain()
            time.sleep(STEADY_GAP_S)
        delays = rx.rx_delay() - rx_before

        def pct(values: list[int | None], p: float) -> int | None:
            got = sorted(v for v in values if v is not None)
            return got[min(len(got) - 1, int(p / 100 * len(got)))] if got else None

        print(f"steady p50 {_us(pct(lat_1ms, 50)):>8s} {_us(pct(lat_100us, 50)):>13s} "
              f"{_us(delays.percentile(50)):>10s}")
        print(f"steady p99 {_us(pct(lat_1ms, 99)):>8s} {_us(pct(lat_100us, 99)):>13s} "
              f"{_us(delays.percentile(99)):>10s}   ({len(lat_1ms)} of each)")


def main() -> int:
    global WORKER
    args = sys.argv[1:]
    if args[:1] == ["--worker"] and len(args) > 1:
        WORKER = [os.path.abspath(args[1])]
        args = args[2:]
    what = args[0] if args else ""
    if what == "cpu":
        cpu(float(args[1]) if len(args) > 1 else 10.0)
    elif what == "first-send":
        first_send(float(args[1]) if len(args) > 1 else 10.0,
                   int(args[2]) if len(args) > 2 else 5)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
