"""``rtudp bench latency``: UDP round trips on loopback, rtudp vs plain Python vs sockperf.

Each case is a ping-pong of 64-byte datagrams between this process (the pinger: send,
wait for the echo, next) and an echo process, on 127.0.0.1, for 5 s (--quick: 1 s);
the first WARMUP round trips are left out.  Cases, one after the other in the same run:

1. rtudp, both ends: Python -> loopback -> Python and back.  Two channels of one
   embedded pool ("ping" here, "pong" attached by the echo process with
   ``rtudp.attach``); the echo process does ``recv()`` then ``send()`` of the same
   bytes (one reply in LEG_EVERY carries its stamps, for the legs).  An immediate
   send finding nothing queued and the worker parked goes out on the channel socket
   from the sending process (``Channel.direct_send``), and a ``recv()`` that finds the
   RX ring empty waits on the channel socket itself (``Channel.direct_recv``); the
   "direct" columns say what share did.  The figure the targets are about.
2. The same, pinned: each end's thread runs on its channel's worker CPU
   (``Channel.pin_to_worker``).
3. The same as 1 with ``direct_send`` and ``direct_recv`` off at both ends: every
   datagram through the TX ring, a worker and the RX ring (Python -> worker -> loopback
   -> worker -> Python).
4. rtudp at this end only: channel "ping" here, the echo is a plain Python socket
   process (blocking ``recvfrom`` / ``sendto``).
5. plain Python sockets at both ends (blocking ``recvfrom`` / ``sendto``).
6. ``sockperf ping-pong`` (C, client and server on loopback, its default settings,
   ``--full-rtt``) when the ``sockperf`` binary is installed.
7. The same, pinned like case 2: the client on the pinger's CPU, the server on the
   echo's.
8. Cases 1 and 5 again beside a busy loop pinned to each CPU (a CPU hog each); case 1
   there also with both ends' threads in ``rtudp.RealtimeWaits()`` (they sleep in
   rtudp's waits at SCHED_FIFO 1, within a CPU budget), and case 5 with both ends at
   SCHED_FIFO 1 throughout (what plain Python can do, without a bound).

Figures: p50 / p99 round trip (µs), ratios against plain Python and sockperf.  Targets
(issue 43), reported PASS/MISS, never asserted: rtudp both ends p50 and p99 <= 1.0x
plain Python's; pinned p50 <= 0.8x plain Python's; beside the hogs, rtudp (with
RealtimeWaits) p99 <= 0.5x plain Python's; rtudp p50 <= 1.5x sockperf's (a goal).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from typing import Any, Callable, Iterator

from .common import (LOOPBACK, MSG_SIZE, Child, Hog, OthersMeter, pool_idle_s,
                           add_common_arguments, add_plot_argument, bench_pool, fmt_ratio, fmt_us,
                           free_udp_port, header, others_col, others_footer, percentiles_us,
                           print_table, print_workers, ratio, ratio_target_row, run_benchmark, say,
                           take_curves, target, worker_policies)

FULL_S, QUICK_S = 5.0, 1.0
WARMUP = 200                       # round trips left out at the start
MAX_PINGS = 2_000_000
RECV_TIMEOUT_S = 2.0               # a lost datagram fails the case instead of hanging it
SOCKPERF_MISSING = "sockperf: not installed (apt-get install sockperf)"
_SEQ = struct.Struct("<q")
_LEGS = struct.Struct("<qq")        # the channel echo's kernel RX stamp and recv() return
#: the byte after the stamps: 1 = the echo stamps this one (one trip in LEG_EVERY), 0 = it
#: sends it back as it came, as the plain Python echo does with every datagram
_LEG_FLAG = _SEQ.size + _LEGS.size
LEG_EVERY = 16
STOP = _SEQ.pack(-1) + bytes(MSG_SIZE - _SEQ.size)

CASES = {
    "ours": ("rtudp both ends",
             "channel send/recv here -> lo -> worker -> channel recv/send in the echo "
             "process, and back"),
    "ours_pinned": ("rtudp both ends, pinned",
                    "the same, each end's thread on its channel's worker CPU "
                    "(Channel.pin_to_worker)"),
    "ours_queued": ("rtudp via workers",
                    "the same as 'rtudp both ends' with direct_send and direct_recv off: "
                    "every datagram through the rings and the workers"),
    "ours_py_echo": ("rtudp, python echo",
                     "channel send/recv here; echo: plain socket process, blocking recvfrom"),
    "python": ("python sockets",
               "socket sendto + blocking recvfrom at both ends (two processes)"),
    "sockperf": ("sockperf ping-pong", "sockperf sr / sockperf pp -m 64 --full-rtt (C)"),
    "sockperf_pinned": ("sockperf, pinned", "the same, pp on the pinger's CPU, sr on the "
                                            "echo's (as 'rtudp both ends, pinned')"),
}
HOG_CASES = {
    "ours_hog": ("rtudp both ends, CPU hogs", "'rtudp both ends' beside a busy loop pinned "
                                              "to each CPU"),
    "ours_hog_rt": ("rtudp + RealtimeWaits, hogs", "'rtudp both ends, CPU hogs' with both "
                                                  "ends' threads in rtudp.RealtimeWaits()"),
    "python_hog": ("python sockets, CPU hogs", "'python sockets' beside the same busy loops"),
    "python_hog_fifo": ("python at SCHED_FIFO, hogs", "'python sockets, CPU hogs' with both "
                                                      "ends at SCHED_FIFO 1 throughout"),
}
CASES.update(HOG_CASES)
#: each target: (our case, the case it is compared with, percentile, goal, its label)
TARGETS = {
    "ours_p50_vs_python": ("ours", "python", "p50_us", 1.0, "rtudp p50 / python p50"),
    "ours_p99_vs_python": ("ours", "python", "p99_us", 1.0, "rtudp p99 / python p99"),
    "ours_pinned_p50_vs_python": ("ours_pinned", "python", "p50_us", 0.8,
                                  "rtudp pinned p50 / python p50"),
    "ours_hog_p99_vs_python_hog": ("ours_hog_rt", "python_hog", "p99_us", 0.5,
                                   "with CPU hogs: rtudp + RealtimeWaits p99 / python p99"),
    "ours_p50_vs_sockperf": ("ours", "sockperf", "p50_us", 1.5, "rtudp p50 / sockperf p50"),
}


def _rcvtimeo(sock: socket.socket, seconds: float) -> None:
    """A kernel receive timeout: recvfrom stays one blocking call but cannot hang."""
    sec = int(seconds)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                    struct.pack("ll", sec, int((seconds - sec) * 1e6)))


def _fifo_permitted() -> None:
    """PermissionError (the case is skipped, saying why) where this process may not use
    SCHED_FIFO, before a case starts its echo process."""
    import rtudp

    with rtudp.RealtimeWaits():
        pass


def _waits(realtime: bool) -> contextlib.AbstractContextManager[Any]:
    """rtudp.RealtimeWaits() for the calling thread, or nothing."""
    import rtudp

    return rtudp.RealtimeWaits() if realtime else contextlib.nullcontext()


@contextlib.contextmanager
def _at_fifo(on: bool) -> Iterator[None]:
    """The calling thread at SCHED_FIFO 1 throughout (`on`), its own policy back after."""
    if not on:
        yield
        return
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(1))
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)


# --------------------------------------------------------------------------
# Echo processes
# --------------------------------------------------------------------------

def socket_echo(fifo: bool, ready: Callable[[Any], None]) -> dict:
    """Echo every datagram to its source with blocking recvfrom/sendto until STOP;
    `fifo`: at SCHED_FIFO 1 throughout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((LOOPBACK, 0))
        _rcvtimeo(sock, 30.0)
        ready(sock.getsockname())
        recvfrom, sendto, n = sock.recvfrom, sock.sendto, 0
        with _at_fifo(fifo):
            while True:
                data, src = recvfrom(2048)
                if data == STOP:
                    return {"echoed": n}
                sendto(data, src)
                n += 1
    finally:
        sock.close()


def channel_echo(pool: str, name: str, pin: bool, direct: bool, realtime: bool,
                 ready: Callable[[Any], None]) -> dict:
    """Attach channel `name` of `pool`; recv() then send() the same bytes until STOP;
    `pin`: on the channel's worker CPU; `direct`: its direct_send and direct_recv;
    `realtime`: in rtudp.RealtimeWaits()."""
    import rtudp

    ch = rtudp.attach(name, pool=pool)
    try:
        if pin:
            ch.pin_to_worker()
        ch.direct_send = ch.direct_recv = direct
        ready(None)
        recv, send, now, pack, n = ch.recv, ch.send, time.monotonic_ns, _LEGS.pack_into, 0
        with _waits(realtime):
            while True:
                pkt = recv(timeout=30.0)
                got = now()
                data = pkt.data
                if data == STOP:
                    return {"echoed": n}
                if data[_LEG_FLAG]:
                    reply = bytearray(data)
                    pack(reply, _SEQ.size, pkt.rx_ns, got)  # for the pinger's per-leg figures
                    data = bytes(reply)
                send(data)
                n += 1
    finally:
        ch.close()


# --------------------------------------------------------------------------
# Pingers (this process)
# --------------------------------------------------------------------------

def _ping_loop(exchange: Callable[[bytes], bytes], seconds: float,
               same: Callable[[bytes, bytes], bool] = bytes.__eq__,
               after: Callable[[int, int], None] | None = None) -> list[int]:
    """Round trips (ns) of `exchange(payload) -> reply` for `seconds` after WARMUP;
    `same(reply, sent)` checks each reply; `after(t0, t1)`, if given, does a case's
    own bookkeeping for the trip from t0 to t1, outside the timed part."""
    now = time.monotonic_ns
    buf = bytearray(MSG_SIZE)
    rtts: list[int] = []
    add = rtts.append
    end = None
    i = 0
    while i < MAX_PINGS:
        if i == WARMUP:
            end = now() + int(seconds * 1e9)
        _SEQ.pack_into(buf, 0, i)
        buf[_LEG_FLAG] = i % LEG_EVERY == 0  # this one's legs (channel echo: stamped)
        msg = bytes(buf)
        t0 = now()
        reply = exchange(msg)
        t1 = now()
        if after is not None:
            after(t0, t1)
        if not same(reply, msg):
            raise RuntimeError(f"round trip {i}: got back {reply[:8]!r}..., not what was sent")
        if i >= WARMUP:
            add(t1 - t0)
            if t1 >= end:  # type: ignore[operator]
                break
        i += 1
    return rtts


def _same_but_stamps(reply: bytes, sent: bytes) -> bool:
    """The channel echo's reply is what was sent but for its stamps (bytes 8..24, in
    the trips whose legs are measured)."""
    stamps = slice(_SEQ.size, _SEQ.size + _LEGS.size)
    return len(reply) == len(sent) and reply[:stamps.start] == sent[:stamps.start] \
        and reply[stamps.stop:] == sent[stamps.stop:]


LEGS = (("send here -> kernel RX stamp there", "direct: send, loopback; queued: ring, worker "
                                               "wake-up, send, loopback"),
        ("stamp there -> echo's recv() returns", "direct: the reader's wake-up, read, publish; "
                                                 "else worker RX wake-up, read, publish, "
                                                 "reader wake-up"),
        ("echo's recv() -> kernel RX stamp here", "the same as the first, the other way"),
        ("stamp here -> recv() returns here", "the same as the second, the other way"))


def _legs(legs: list[tuple[int, ...]]) -> list[dict]:
    """p50 / p90 (µs) of each leg of the round trip, one clock (CLOCK_MONOTONIC)."""
    out = []
    for k, (name, how) in enumerate(LEGS):
        p = percentiles_us([leg[k] for leg in legs])
        out.append({"leg": name, "how": how, "p50_us": p["p50"], "p90_us": p["p90"]})
    return out


def _entry(rtts: list[int], others: float | None, **extra: Any) -> dict:
    from rtudp.shmring.hist import Histogram

    p = percentiles_us(rtts)
    return {"round_trips": len(rtts), "p50_us": p["p50"], "p90_us": p["p90"],
            "p99_us": p["p99"], "p999_us": p["p999"], "max_us": p["max"],
            "mean_us": p["mean"], "min_us": p["min"], "others_cpu": others,
            "hist": Histogram.from_values(rtts), **extra}


def _channel_pair(pool: Any) -> tuple[Any, Any]:
    """Channels "ping" and "pong" of `pool` on loopback, each aimed at the other."""
    for attempt in range(5):
        port = free_udp_port()  # pong's port, so that ping can be aimed at it
        ping = pool.open_channel("ping", local=(LOOPBACK, 0), remote=(LOOPBACK, port),
                                 direction=2, max_datagram=MSG_SIZE)
        try:
            return ping, pool.open_channel("pong", local=(LOOPBACK, port), remote=ping.local,
                                           direction=2, max_datagram=MSG_SIZE)
        except OSError:  # the port was taken meanwhile: try another
            ping.close()
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def run_ours(seconds: float, python_echo: bool, quiet: bool,
             pinned: bool = False, direct: bool = True, realtime: bool = False,
             pool_args: dict[str, Any] | None = None) -> tuple[dict, dict]:
    """The rtudp cases: (entry, pool facts); `pinned`: each end on its worker's CPU;
    `direct`: the channels' direct_send and direct_recv; `realtime`: both ends in
    rtudp.RealtimeWaits(); `pool_args`: the Pool's (default: none)."""
    if realtime:
        _fifo_permitted()
    # the echo runs where this process may, not where the pool's placement holds
    # this thread while its channels are new
    cpus = frozenset(os.sched_getaffinity(0))
    with bench_pool("latency" + ("p" if python_echo else ""), **(pool_args or {})) as (
            pool, pool_warnings):
        for w in pool_warnings:
            say(f"  warning: {w}", quiet)
        child: Child | None = None
        chans: list[Any] = []
        try:
            if python_echo:
                child = Child("bench-latency-socket-echo", socket_echo, False, cpus=cpus)
                echo_addr = tuple(child.ready())
                ping = pool.open_channel("ping", local=(LOOPBACK, 0), remote=echo_addr,
                                         direction=2, max_datagram=MSG_SIZE)
                chans.append(ping)
            else:
                ping, pong = _channel_pair(pool)
                chans += [ping, pong]
                pong.receives = False  # the echo process is pong's one reader
                child = Child("bench-latency-channel-echo", channel_echo, pool.name, "pong",
                              pinned, direct, realtime, cpus=cpus)
                child.ready()
            placement = {ch.name: pool.workers()[ch.worker]["cpu"] for ch in chans}
            ping.direct_send = ping.direct_recv = direct
            send, recv = ping.send, ping.recv
            legs: list[tuple[int, ...]] = []
            last: list[Any] = [None]  # the reply packet, for the legs

            def exchange(msg: bytes) -> bytes:
                send(msg)
                pkt = last[0] = recv(timeout=RECV_TIMEOUT_S)
                return pkt.data

            def add_legs(sent: int, got: int) -> None:
                pkt = last[0]
                if not pkt.data[_LEG_FLAG]:
                    return
                far_rx, far_got = _LEGS.unpack_from(pkt.data, _SEQ.size)
                legs.append((far_rx - sent, far_got - far_rx, pkt.rx_ns - far_got,
                             got - pkt.rx_ns))


            meter = OthersMeter(lambda: [w["pid"] for w in pool.workers()] +
                                ([child.proc.pid] if child else []), pool_idle_s(pool))
            same = bytes.__eq__ if python_echo else _same_but_stamps
            affinity = os.sched_getaffinity(0)
            if pinned:
                ping.pin_to_worker()
            try:
                with _waits(realtime):
                    rtts = _ping_loop(exchange, seconds, same, None if python_echo else add_legs)
            finally:
                os.sched_setaffinity(0, affinity)
            others = meter.others()
            sent = [ch.stats() for ch in chans]
            direct_share = ratio(sum(st["tx_direct"] for st in sent),
                                 sum(st["tx_packets"] for st in sent))
            direct_rx_share = ratio(sum(st["rx_direct"] for st in sent),
                                    sum(st["rx_packets"] for st in sent))
            send(STOP)
            child.result(timeout=10.0)
            facts = {"policies": worker_policies(pool), "pool_warnings": pool_warnings,
                     "channel_cpus": placement, "legs": _legs(legs[WARMUP // LEG_EVERY:])}
        finally:
            for ch in chans:
                ch.close()
            if child is not None:
                child.stop(grace=2.0)
    return _entry(rtts, others, channel_cpus=placement, direct_share=direct_share,
                  direct_rx_share=direct_rx_share), facts


def run_python(seconds: float, fifo: bool = False) -> dict:
    """Plain Python sockets at both ends; `fifo`: both at SCHED_FIFO 1 throughout."""
    if fifo:
        _fifo_permitted()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    child: Child | None = None
    try:
        sock.bind((LOOPBACK, 0))
        _rcvtimeo(sock, RECV_TIMEOUT_S)
        child = Child("bench-latency-python-echo", socket_echo, fifo)
        addr = tuple(child.ready())
        sendto, recvfrom = sock.sendto, sock.recvfrom

        def exchange(msg: bytes) -> bytes:
            sendto(msg, addr)
            return recvfrom(2048)[0]

        meter = OthersMeter(lambda: [child.proc.pid] if child else [])
        with _at_fifo(fifo):
            rtts = _ping_loop(exchange, seconds)
        others = meter.others()
        sendto(STOP, addr)
        child.result(timeout=10.0)
    finally:
        sock.close()
        if child is not None:
            child.stop(grace=2.0)
    return _entry(rtts, others)


_PCT = re.compile(r"percentile\s+([\d.]+)\s*=\s*([\d.]+)")
_OBS = re.compile(r"Total\s+(\d+)\s+observations")
_AVG = re.compile(r"avg-(?:rtt|lat)\s*=\s*([\d.]+)")
_MAX = re.compile(r"<MAX> observation\s*=\s*([\d.]+)")
_MIN = re.compile(r"<MIN> observation\s*=\s*([\d.]+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_sockperf(text: str) -> dict:
    """Figures (µs, round trips with --full-rtt) from ``sockperf ping-pong`` output."""
    text = _ANSI.sub("", text)
    pct = {float(p): float(v) for p, v in _PCT.findall(text)}
    obs, avg, mx, mn = (_OBS.search(text), _AVG.search(text), _MAX.search(text),
                        _MIN.search(text))
    if 50.0 not in pct or 99.0 not in pct or obs is None:
        raise RuntimeError(f"cannot read sockperf's output:\n{text[-2000:]}")
    return {"round_trips": int(obs.group(1)), "p50_us": pct[50.0], "p90_us": pct.get(90.0),
            "p99_us": pct[99.0], "p999_us": pct.get(99.9), "max_us": mx and float(mx.group(1)),
            "mean_us": avg and float(avg.group(1)), "min_us": mn and float(mn.group(1))}


_LOG_HEAD = re.compile(r"^packet,\s*txTime\(sec\),\s*rxTime\(sec\),\s*rtt\(usec\)", re.M)


def parse_sockperf_log(text: str) -> list[int]:
    """Every round trip (ns) of a ``sockperf pp --full-rtt --full-log`` file: the CSV
    ``packet, txTime(sec), rxTime(sec), rtt(usec)`` after its summary."""
    head = _LOG_HEAD.search(text)
    if head is None:
        raise RuntimeError("sockperf's --full-log has no 'packet, txTime, rxTime, rtt' table")
    out = []
    for line in text[head.end():].splitlines():
        fields = line.split(",")
        if len(fields) == 4:
            out.append(round(float(fields[3]) * 1000))
    return out


def _on_cpu(cpu: int | None) -> Callable[[], None] | None:
    """A subprocess preexec_fn that pins the child to `cpu` (None: nothing to do)."""
    return None if cpu is None else lambda: os.sched_setaffinity(0, {cpu})


def run_sockperf(seconds: float, client_cpu: int | None = None,
                 server_cpu: int | None = None) -> dict:
    exe = shutil.which("sockperf")
    if exe is None:
        raise FileNotFoundError(SOCKPERF_MISSING)
    port = free_udp_port()
    meter = OthersMeter()
    server = subprocess.Popen([exe, "sr", "-i", LOOPBACK, "-p", str(port)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, preexec_fn=_on_cpu(server_cpu))
    try:
        time.sleep(0.3)
        if server.poll() is not None:
            raise RuntimeError(f"sockperf server exited with code {server.returncode}")
        secs = max(1, round(seconds))
        with tempfile.NamedTemporaryFile("r", prefix="rtudp-sockperf-", suffix=".csv") as log:
            client = subprocess.run([exe, "pp", "-i", LOOPBACK, "-p", str(port), "-t",
                                     str(secs), "-m", str(MSG_SIZE), "--full-rtt",
                                     "--full-log", log.name],
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                    timeout=secs + 30, preexec_fn=_on_cpu(client_cpu))
            if client.returncode != 0:
                raise RuntimeError(f"sockperf pp exited with code {client.returncode}: "
                                   f"{(client.stderr or client.stdout)[-500:]}")
            figures = parse_sockperf(client.stdout + client.stderr)
            # every round trip, for --plot (the table keeps sockperf's own figures)
            rtts = parse_sockperf_log(log.read())
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    from rtudp.shmring.hist import Histogram

    return {**figures, "others_cpu": meter.others(),  # after the wait: the server is ours
            "hist": Histogram.from_values(rtts)}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

@contextlib.contextmanager
def _idle_poll_held() -> Iterator[None]:
    """Hold a PM QoS CPU latency request of 0 µs (as rtudp's workers do while serving)."""
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
        os.write(fd, (0).to_bytes(4, "little"))
    except OSError:
        fd = -1  # not permitted: every case runs with whatever idle states the machine has
    try:
        yield
    finally:
        if fd >= 0:
            os.close(fd)


def _run_cases(runs: list[tuple[str, Callable[[], Any]]], results: dict[str, dict | None],
               failed: dict[str, str], skipped: dict[str, str], quiet: bool,
               facts: dict) -> None:
    for key, fn in runs:
        try:
            out = fn()
        except (FileNotFoundError, PermissionError) as exc:
            skipped[key] = str(exc)
            say(str(exc), quiet)
            continue
        except Exception as exc:  # noqa: BLE001 - report the case failed and go on
            failed[key] = f"failed: {(str(exc).splitlines() or [repr(exc)])[0]}"
            say(f"{key}: {exc}", quiet)
            continue
        if isinstance(out, tuple):
            out, case_facts = out
            if key == "ours":
                facts.update(case_facts)
            elif key == "ours_pinned":
                facts["legs_pinned"] = case_facts["legs"]
            elif key == "ours_queued":
                facts["legs_queued"] = case_facts["legs"]
            elif key in ("ours_hog", "ours_hog_rt"):
                facts["legs_" + key[5:]] = case_facts["legs"]
        results[key] = out
        say(f"  ... {CASES[key][0]}: p50 {fmt_us(out['p50_us'], 0)} µs", quiet)


def benchmark(quick: bool, quiet: bool) -> dict:
    seconds = QUICK_S if quick else FULL_S
    busy = header("latency", quick, quiet, f", {seconds:g} s a case")
    results: dict[str, dict | None] = dict.fromkeys(CASES)
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    facts: dict = {"policies": [], "pool_warnings": [], "channel_cpus": {}, "legs": []}
    facts["legs_pinned"] = facts["legs_queued"] = facts["legs_hog"] = facts["legs_hog_rt"] = []

    def pinned_cpus() -> tuple[int, int]:
        """(pinger's, echo's) CPU as the pinned rtudp case had them."""
        cpus = (results.get("ours_pinned") or {}).get("channel_cpus") or {}
        first = sorted(os.sched_getaffinity(0))
        return cpus.get("ping", first[0]), cpus.get("pong", first[-1])

    runs: list[tuple[str, Callable[[], Any]]] = [
        ("ours", lambda: run_ours(seconds, False, quiet)),
        ("ours_pinned", lambda: run_ours(seconds, False, quiet, pinned=True)),
        ("ours_queued", lambda: run_ours(seconds, False, quiet, direct=False)),
        ("ours_py_echo", lambda: run_ours(seconds, True, quiet)),
        ("python", lambda: run_python(seconds)),
        ("sockperf", lambda: run_sockperf(seconds)),
        ("sockperf_pinned", lambda: run_sockperf(seconds, *pinned_cpus())),
        ("ours_hog", lambda: _beside_hogs(lambda: run_ours(seconds, False, quiet))),
        ("ours_hog_rt", lambda: _beside_hogs(lambda: run_ours(seconds, False, quiet,
                                                               realtime=True))),
        ("python_hog", lambda: _beside_hogs(lambda: run_python(seconds))),
        ("python_hog_fifo", lambda: _beside_hogs(lambda: run_python(seconds, fifo=True))),
    ]
    # every case on the same footing: the pool's workers keep idle CPUs polling (PM
    # QoS) while they serve channels; hold the same request for the peers' cases, or
    # they would pay the deep-idle wake-ups rtudp does not
    with _idle_poll_held():
        _run_cases(runs, results, failed, skipped, quiet, facts)
    curves = take_curves({"rtt": results})
    p50 = {k: (e or {}).get("p50_us") for k, e in results.items()}

    p99 = {k: (e or {}).get("p99_us") for k, e in results.items()}
    for key, e in results.items():
        if e:
            e["p50_vs_python"] = ratio(p50[key], p50["python"])
            e["p50_vs_sockperf"] = ratio(p50[key], p50["sockperf"])
            e["p99_vs_sockperf"] = ratio(p99[key], p99["sockperf"])
    targets = {}
    for name, (ours, peer, pct, goal, _label) in TARGETS.items():
        mine, theirs = ((results.get(k) or {}).get(pct) for k in (ours, peer))
        targets[name] = tgt = target(ratio(mine, theirs), goal, False)
        if peer in skipped:
            tgt["pass"] = None  # nothing to compare with: neither PASS nor MISS
    return {"quick": quick, "seconds": seconds, "msg_size": MSG_SIZE, "warmup": WARMUP,
            "cpu_busy_before": busy, **facts, "results": results, "failed": failed,
            "skipped": skipped, "targets": targets, "curves": curves}


def _beside_hogs(case: Callable[[], Any]) -> Any:
    """case() run beside a busy loop pinned to each CPU this process may use."""
    with contextlib.ExitStack() as hogs:
        for cpu in sorted(os.sched_getaffinity(0)):
            hogs.enter_context(Hog(cpu))
        time.sleep(0.2)  # the loops running before the case starts
        return case()


def _share_col(e: dict) -> str:
    shares = [e.get("direct_share"), e.get("direct_rx_share")]
    if shares == [None, None]:
        return f"{'-':>9}"
    return f"{'/'.join('-' if v is None else format(v * 100, '.0f') for v in shares) + '%':>9}"


#: the first columns of a round-trip table, and rtt_cols() their values
RTT_HEAD = f"{'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8}"


def rtt_cols(e: dict) -> str:
    """p50, p90, p99 and p99.9 (µs) of a round-trip entry (:func:`_entry`)."""
    return (f"{fmt_us(e['p50_us'])} {fmt_us(e['p90_us'])} {fmt_us(e['p99_us'])} "
            f"{fmt_us(e['p999_us'])}")


def print_placement(r: dict, prefix: str = "") -> None:
    """The workers' line of a round-trip report and the CPU of each channel's worker."""
    print_workers(r.get("policies", []), r.get("pool_warnings", []))
    if r.get("channel_cpus"):
        print(f"  {prefix}" + ", ".join(f"channel {n!r} on the worker of CPU {c}"
                                        for n, c in r["channel_cpus"].items()))


def print_report(r: dict) -> None:
    print_placement(r, "rtudp both ends: ")
    print_table(f"round trip (µs), {r['msg_size']}-byte datagrams on {LOOPBACK}, "
                f"{r['seconds']:g} s a case after {r['warmup']} warm-up round trips",
                f"{RTT_HEAD} {'max':>8} {'trips':>8} "
                f"{'vs py':>7} {'vs sp':>7} {'others':>7} {'direct':>9}   how", CASES, r["results"],
                lambda e, how: (f"{rtt_cols(e)} "
                                f"{fmt_us(e['max_us'])} {e['round_trips']:>8} "
                                f"{fmt_ratio(e['p50_vs_python']):>7} "
                                f"{fmt_ratio(e['p50_vs_sockperf']):>7} {others_col(e)} "
                                f"{_share_col(e)}   {how}"),
                lambda key: r["skipped"].get(key) or r["failed"].get(key, "failed"), 22)
    print("  vs py / vs sp: p50 divided by plain Python's / sockperf's p50 (< 1: faster)")
    print("  direct: share of the channels' sends made on the socket by the sending process "
          "(Channel.direct_send) / of their receives read from the socket by the reader "
          "(Channel.direct_recv); the rest by a worker")
    for title, legs in (("rtudp both ends", r["legs"]),
                        ("rtudp both ends, pinned", r.get("legs_pinned") or []),
                        ("rtudp via workers", r.get("legs_queued") or []),
                        ("rtudp both ends, CPU hogs", r.get("legs_hog") or []),
                        ("rtudp + RealtimeWaits, hogs", r.get("legs_hog_rt") or [])):
        if not legs:
            continue
        print(f"\n{title}, where a round trip goes (µs; the echo stamps one reply in "
              f"{LEG_EVERY}; one clock)")
        for leg in legs:
            print(f"  {leg['leg']:<40} p50 {fmt_us(leg['p50_us'])}  p90 {fmt_us(leg['p90_us'])}"
                  f"   {leg['how']}")
    others_footer([*r["results"].values()])
    print("\ntargets")
    for name, (_ours, peer, _pct, _goal, label) in TARGETS.items():
        print(ratio_target_row(label, r["targets"][name],
                               SOCKPERF_MISSING if peer.startswith("sockperf") else
                               r["failed"].get(peer, "no figure")))
    hog = {k: (r["results"].get(k) or {}).get("p99_us") for k in ("ours_hog", "python_hog",
                                                                    "python_hog_fifo")}
    print(f"  beside the hogs, p99 / python's: rtudp without RealtimeWaits "
          f"{fmt_ratio(ratio(hog['ours_hog'], hog['python_hog']))}, python at SCHED_FIFO "
          f"{fmt_ratio(ratio(hog['python_hog_fifo'], hog['python_hog']))}")


def plot_report(r: dict, curves: dict, path: str) -> None:
    """--plot: the round-trip CDF of every case, the targets against sockperf marked."""
    from ..plot import Curve, Panel, Target, plot_cdfs

    rtt = curves.get("rtt", {})
    targets = []
    for _ours, peer, pct, goal, label in TARGETS.values():
        base = (r["results"].get(peer) or {}).get(pct)
        if base:
            share = {"p50_us": 0.5, "p99_us": 0.99}[pct]
            targets.append(Target(f"target: {label.split(' / ')[0]} ≤ {goal:g}× "
                                  f"{label.split(' / ')[1]}", goal * base * 1e3, share))
    missing = [f"{CASES[k][0]}: {r['skipped'].get(k) or r['failed'].get(k) or 'no curve'}"
               for k in CASES if k not in rtt]
    panel = Panel(f"round trip, {r['msg_size']}-byte datagrams on {LOOPBACK}", "round trip (log)",
                  [Curve(CASES[k][0], rtt[k], k.startswith("ours")) for k in CASES if k in rtt],
                  targets, "; ".join(missing))
    plot_cdfs(path, f"rtudp bench latency: UDP ping-pong, {r['seconds']:g} s a case", [panel],
              "a curve that passes left of and above a red star meets that target")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench latency``."""
    add_common_arguments(parser, f"{QUICK_S:g} s a case instead of {FULL_S:g} s")
    add_plot_argument(parser, "the round-trip CDFs of every case")


def run(args: argparse.Namespace) -> int:
    """``rtudp bench latency``: 0 when every case ran (targets met or not; a missing
    sockperf is not a failure)."""
    return run_benchmark(args, benchmark, print_report, plot=plot_report)


__all__ = ["add_arguments", "run", "parse_sockperf", "socket_echo", "channel_echo"]
