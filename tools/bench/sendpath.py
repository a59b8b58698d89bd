"""``rtudp bench sendpath``: what each way of sending a group of datagrams due together
costs the sending thread, per datagram (issue 52: as few system calls as the kernel
allows; measure what each buys).

A group is K datagrams (K = 1, 4, 16, 64; 64 bytes each by default) that a worker would
send in one turn.  Two layouts:

- **K sockets**, one datagram on each: every channel has its own socket, the common case
  at 1,000 channels.  Paths: (a) K x ``send()``; (b) K x ``sendmmsg()`` of one, what
  the worker does today; (c) one ``io_uring_enter()`` submitting K
  ``IORING_OP_SENDMSG`` SQEs and reaping the K CQEs, also on registered files
  (``IORING_REGISTER_FILES`` + ``IOSQE_FIXED_FILE``), and with ``IORING_OP_SEND``
  (no msghdr; only without stamps: it has no room for the key).
- **one socket**, all K on it (K >= 4): one ``sendmmsg()`` of K, the worker's path
  there, against the same io_uring paths and K x ``send()``.

Each both without and with TX software stamps, set as the worker sets them
(``SOF_TIMESTAMPING_TX_SOFTWARE | RX_SOFTWARE | SOFTWARE | OPT_ID | OPT_TSONLY``, and,
where the kernel takes it, each datagram's key in an ``SCM_TS_OPT_ID`` control message,
as csrc/worker/netio.c sends them).

Method (csrc/bench/sendpath_bench.c, all in C on this thread, pinned to one CPU): each
sending socket is connected to its own receiving socket on 127.0.0.1, both with big
receive buffers (SO_RCVBUFFORCE 4 MB).  A round sends GROUPS groups by each path in
turn, one untimed round first, and each round starts one path later.  Only the sends
are timed, in windows of up to 1,024 datagrams a receiver: between windows, and outside
the timed region for every path alike, the receivers and the senders' error queues (the
TX stamps) are drained.  At the end of each path's round every datagram and every stamp
is counted; a shortfall is reported as loss and fails the run.  CPU: the thread's CPU
clock (``CLOCK_THREAD_CPUTIME_ID``) around each window; wall: CLOCK_MONOTONIC around the
same.  Figures: ns a datagram, median and best over ROUNDS rounds, and the median's
ratio to the worker's path of the layout (< 1: cheaper).

Loopback delivers each datagram to its receiver in the softirq the send raises, on the
sending thread, and a kernel without IRQ time accounting (CONFIG_IRQ_TIME_ACCOUNTING
off, as on the development VM) charges it to that thread: that delivery is in every
figure, the same for every path, so the paths differ by less than their system calls
alone would.  No SQPOLL: its kernel thread polls the ring on a CPU of its own, which a
worker that already owns its core cannot give, and the thread's clock would not show
its cost.  Where io_uring is missing (no header at build time, ENOSYS, EPERM from the
``kernel.io_uring_disabled`` sysctl or a seccomp filter) the report says so and
measures the rest.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

from .common import OthersMeter, add_common_arguments, header, run_benchmark
from ..cli_args import ranged

KS = (1, 4, 16, 64)
SIZE = 64
DATAGRAMS_FULL, DATAGRAMS_QUICK = 4096, 512    # a path's datagrams a round
ROUNDS_FULL, ROUNDS_QUICK = 15, 3

#: path key -> (C constant name, label, how)
PATHS: dict[str, tuple[str, str, str]] = {
    "send": ("RTUDP_SENDPATH_SEND", "(a) K x send()",
             "a call a datagram (sendmsg() when the key cmsg rides along)"),
    "sendmmsg1": ("RTUDP_SENDPATH_SENDMMSG1", "(b) K x sendmmsg(1)",
                  "a call a socket: the worker's path on K sockets"),
    "sendmmsgk": ("RTUDP_SENDPATH_SENDMMSGK", "sendmmsg(K)",
                  "one call: the worker's path on one socket"),
    "uring": ("RTUDP_SENDPATH_URING_SENDMSG", "(c) io_uring SENDMSG",
              "one io_uring_enter: K IORING_OP_SENDMSG, K CQEs"),
    "uring_fixed": ("RTUDP_SENDPATH_URING_FIXED", "(c) io_uring, fixed files",
                    "the same on registered files (IOSQE_FIXED_FILE)"),
    "uring_send": ("RTUDP_SENDPATH_URING_SEND", "(c) io_uring SEND",
                   "K IORING_OP_SEND (no msghdr; without stamps only)"),
}
URING_PATHS = ("uring", "uring_fixed", "uring_send")
#: layout -> (label, its paths in print order, the worker's path there)
LAYOUTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "sockets": ("K sockets, one datagram each",
                ("send", "sendmmsg1", "uring", "uring_fixed", "uring_send"), "sendmmsg1"),
    "socket": ("one socket, all K on it",
               ("send", "sendmmsgk", "uring", "uring_fixed", "uring_send"), "sendmmsgk"),
}


def case_key(layout: str, k: int, stamps: bool, path: str) -> str:
    """The name of one measured case, as the report's ``failed`` keys it."""
    return f"{layout} K={k} stamps={'on' if stamps else 'off'} {path}"


def _per_datagram(ns: list[int], sent_a_round: int) -> tuple[float, float]:
    """(median, best) ns a datagram of per-round totals."""
    per = [v / sent_a_round for v in ns]
    return statistics.median(per), min(per)


def _entry(out: object, i: int, k: int) -> dict:
    """Path i's figures in the C result `out` (groups of k datagrams)."""
    n, sent = int(out.ran[i]), int(out.sent[i])
    a_round = sent // n
    cpu_med, cpu_best = _per_datagram([out.cpu_ns[i][r] for r in range(n)], a_round)
    wall_med, wall_best = _per_datagram([out.wall_ns[i][r] for r in range(n)], a_round)
    received = int(out.received[i])
    return {"cpu_ns_median": cpu_med, "cpu_ns_best": cpu_best,
            "wall_ns_median": wall_med, "wall_ns_best": wall_best, "rounds": n,
            "sent": sent, "received": received, "lost": sent - received,
            "stamped": int(out.stamped[i]) if out.stamps_on else None,
            "calls_per_group": int(out.calls[i]) / (sent / k)}


def _shortfall(e: dict) -> str | None:
    """What did not arrive (datagrams, then TX stamps), or None."""
    if e["lost"]:
        return f"lost {e['lost']} of {e['sent']} datagrams"
    if e["stamped"] is not None and e["stamped"] != e["sent"]:
        return f"{e['sent'] - e['stamped']} of {e['sent']} TX stamps missing"
    return None


def measure_one(layout: str, k: int, stamps: bool, datagrams: int, rounds: int,
                size: int = SIZE) -> dict:
    """Run one (layout, K, stamps) configuration in C; its paths' figures and the
    ring's state: {"paths": {path: entry | None}, "failed": {...}, "uring": {...}, ...}."""
    from rtudp.tools.bench._native import ffi, lib

    paths = tuple(p for p in LAYOUTS[layout][1] if not (stamps and p == "uring_send"))
    cfg = ffi.new("struct rtudp_sendpath_config *")
    cfg.k, cfg.sockets, cfg.size, cfg.stamps = k, (k if layout == "sockets" else 1), size, stamps
    cfg.groups, cfg.rounds = max(1, datagrams // k), rounds
    cfg.paths = sum(1 << getattr(lib, PATHS[p][0]) for p in paths)
    out = ffi.new("struct rtudp_sendpath_result *")
    meter = OthersMeter()
    rc = lib.rtudp_sendpath_measure(cfg, out)
    others = meter.others()
    if rc < 0:
        why = f"failed: {os.strerror(-rc)}"
        return {"paths": dict.fromkeys(paths), "others_cpu": others,
                "failed": {case_key(layout, k, stamps, p): why for p in paths},
                "uring": None, "stamps_on": False, "key_cmsg": False}
    uring_why = None if out.uring_errno == 0 else (
        os.strerror(out.uring_errno) if out.uring_built
        else "built without <linux/io_uring.h>")
    entries: dict[str, dict | None] = {}
    failed: dict[str, str] = {}
    for p in paths:
        i = getattr(lib, PATHS[p][0])
        key = case_key(layout, k, stamps, p)
        n = out.ran[i]
        if out.error[i]:
            failed[key] = f"failed: {os.strerror(-out.error[i])}"
        if n == 0:
            entries[p] = None
            if p in URING_PATHS and uring_why and key not in failed:
                continue  # the report says once why io_uring is not measured
            if p == "uring_fixed" and out.files_errno and key not in failed:
                continue  # nor why registered files are not
            failed.setdefault(key, "failed: not measured")
            continue
        entries[p] = _entry(out, i, k)
        why = _shortfall(entries[p])
        if why:
            failed.setdefault(key, why)  # an error that stopped it says more
    base = (entries.get(LAYOUTS[layout][2]) or {}).get("cpu_ns_median")
    for e in entries.values():
        if e:
            e["vs_worker"] = e["cpu_ns_median"] / base if base else None
    return {"paths": entries, "failed": failed, "others_cpu": others,
            "stamps_on": bool(out.stamps_on), "key_cmsg": bool(out.key_cmsg),
            "window_groups": int(out.window), "rcvbuf": int(out.rcvbuf),
            "uring": {"available": out.uring_errno == 0, "errno": int(out.uring_errno),
                      "why": uring_why,
                      "fixed_files_why": (os.strerror(out.files_errno) if out.files_errno
                                          else None),
                      "setup": ffi.string(out.uring_mode).decode() or None}}


def _pin(cpu: int | None) -> set[int]:
    """Pin this thread to `cpu` (None: the last CPU it may use; < 0: leave it); returns
    the CPUs it had."""
    old = os.sched_getaffinity(0)
    if cpu is None or cpu >= 0:
        os.sched_setaffinity(0, {max(old) if cpu is None else cpu})
    return old


def benchmark(quick: bool, quiet: bool, cpu: int | None = None, size: int = SIZE,
              rounds: int | None = None) -> dict:
    """Every configuration, one after the other; the report."""
    datagrams = DATAGRAMS_QUICK if quick else DATAGRAMS_FULL
    rounds = rounds or (ROUNDS_QUICK if quick else ROUNDS_FULL)
    header("sendpath", quick, quiet, f", {size}-byte datagrams, {datagrams} a path a round, "
           f"{rounds} rounds")
    old = _pin(cpu)
    pinned = sorted(os.sched_getaffinity(0))
    tables: dict[str, dict[str, dict]] = {}
    failed: dict[str, str] = {}
    uring: dict | None = None
    stamps: dict | None = None
    meter = OthersMeter()
    try:
        for stamped in (False, True):
            for layout in LAYOUTS:
                for k in KS:
                    if layout == "socket" and k == 1:
                        continue  # one datagram on one socket: the K-sockets case
                    r = measure_one(layout, k, stamped, datagrams, rounds, size)
                    tables.setdefault(table_key(layout, stamped), {})[str(k)] = r
                    failed.update(r["failed"])
                    uring = uring or r["uring"]
                    if stamped and stamps is None:
                        stamps = {"on": r["stamps_on"], "key_cmsg": r["key_cmsg"]}
    finally:
        os.sched_setaffinity(0, old)
    return {"quick": quick, "size": size, "datagrams_a_round": datagrams, "rounds": rounds,
            "cpus": pinned, "tables": tables, "uring": uring, "stamps": stamps,
            "failed": failed, "others_cpu": meter.others()}


def table_key(layout: str, stamps: bool) -> str:
    """The report's key of one table: ``sockets/plain``, ``socket/stamps``, ..."""
    return f"{layout}/{'stamps' if stamps else 'plain'}"


CELL = 24


def _cell(e: dict | None) -> str:
    """'CPU median/best (wall median) ratio' of one path at one K."""
    if not e:
        return f"{'-':>{CELL}}"
    ratio = "" if e.get("vs_worker") is None else f"{e['vs_worker']:.2f}x"
    return (f"{e['cpu_ns_median']:.0f}/{e['cpu_ns_best']:.0f} ({e['wall_ns_median']:.0f})"
            f"{ratio:>6}").rjust(CELL)


def _print_table(r: dict, layout: str, stamps: bool) -> None:
    """One layout and stamps setting: a row a path, a column a K."""
    label, paths, worker = LAYOUTS[layout]
    t = r["tables"].get(table_key(layout, stamps), {})
    if not t:
        return
    others = [v["others_cpu"] for v in t.values() if v.get("others_cpu") is not None]
    print(f"\n{label}, TX stamps {'on' if stamps else 'off'}"
          + (f" (others: up to {max(others):.2f} CPU)" if others else ""))
    print(f"  {'path':<29}" + "".join(f"{'K=' + k:>{CELL}}" for k in t))
    for p in paths:
        cells = [v["paths"].get(p) for v in t.values()]
        if stamps and p == "uring_send":
            continue
        name = PATHS[p][1] + (" [worker]" if p == worker else "")
        if any(cells):
            print(f"  {name:<29}" + "".join(_cell(c) for c in cells))
        elif p in URING_PATHS and r.get("uring") and not r["uring"]["available"]:
            print(f"  {name:<29} io_uring: not available ({r['uring']['why']})")
        elif p == "uring_fixed" and (r.get("uring") or {}).get("fixed_files_why"):
            print(f"  {name:<29} registered files: not available "
                  f"({r['uring']['fixed_files_why']})")
        else:
            print(f"  {name:<29} not measured")


def print_report(r: dict) -> None:
    """The tables, then how to read them."""
    u = r.get("uring") or {}
    if u.get("available"):
        print(f"\nio_uring: measured (ring setup flags {u.get('setup') or 'none'}; no SQPOLL)")
    else:
        print(f"\nio_uring: not available ({u.get('why') or 'unknown'})")
    s = r.get("stamps") or {}
    if s and not s.get("on"):
        print("TX stamps: the kernel refused SO_TIMESTAMPING; the 'on' tables are without them")
    elif s:
        print("TX stamps: SO_TIMESTAMPING as the worker sets it, "
              + ("each datagram's key in an SCM_TS_OPT_ID cmsg" if s.get("key_cmsg")
                 else "keys counted by the kernel (no SCM_TS_OPT_ID here)"))
    print(f"each cell: CPU ns a datagram, median/best of {r['rounds']} rounds (wall ns, "
          "median), then median / the [worker] path's median")
    for stamps in (False, True):
        for layout in LAYOUTS:
            _print_table(r, layout, stamps)
    print(f"\n  pinned to CPU {','.join(map(str, r['cpus']))}; only the sends are timed "
          "(receivers and error queues drained\n  between windows, for every path alike); "
          "loopback delivery to the receiver runs in the sender's\n  softirq and is charged "
          "to the sending thread, the same for every path; ratio < 1: cheaper than\n  the "
          "worker's path.  System calls a group: K for (a) and (b), 1 for sendmmsg(K) and "
          "io_uring")
    print("  paths:")
    for name, how in {PATHS[p][1]: PATHS[p][2] for p in PATHS}.items():
        print(f"    {name:<27} {how}")
    if r["failed"]:
        print("\nfailed:")
        for k, v in r["failed"].items():
            print(f"  {k}: {v}")
    else:
        print("  delivered: every datagram of every path arrived"
              + (", every TX stamp came back" if s.get("on") else ""))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench sendpath``."""
    from rtudp.tools.bench._native import lib

    max_rounds = lib.RTUDP_SENDPATH_MAX_ROUNDS
    add_common_arguments(parser, f"{DATAGRAMS_QUICK} datagrams a path a round and "
                                 f"{ROUNDS_QUICK} rounds instead of {DATAGRAMS_FULL} and "
                                 f"{ROUNDS_FULL}")
    parser.add_argument("--cpu", type=ranged(int, "--cpu", -1, 4095), default=None,
                        metavar="N", help="run on CPU N (default: the last CPU this process "
                                          "may use; -1: not pinned)")
    parser.add_argument("--rounds", type=ranged(int, "--rounds", 1, max_rounds), default=None,
                        metavar="R", help=f"timed rounds (1..{max_rounds}; default "
                                          f"{ROUNDS_FULL}, --quick {ROUNDS_QUICK})")
    parser.add_argument("--size", type=ranged(int, "--size", 16, 1472), default=SIZE,
                        metavar="BYTES", help=f"payload bytes (16..1472, default {SIZE})")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench sendpath``: 0 when every path that could run delivered everything."""
    if args.cpu is not None and args.cpu >= 0 and args.cpu not in os.sched_getaffinity(0):
        print(f"rtudp bench sendpath: --cpu {args.cpu} is not one this process may use "
              f"({sorted(os.sched_getaffinity(0))})", file=sys.stderr)
        return 2
    return run_benchmark(args, lambda quick, quiet: benchmark(quick, quiet, args.cpu,
                                                              args.size, args.rounds),
                         print_report)
