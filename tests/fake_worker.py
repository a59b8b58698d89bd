"""A stand-in for ``rtudp-worker`` written in Python, following the same contract.

    fake_worker.py --pool NAME --worker-id N --cmd-fd FD [--cpu N] [--idle NAME]
                   [--rt-priority P] [TUNABLES]

It pins itself and asks for SCHED_FIFO when told, maps ``/rtudp.<pool>``, fills its
worker slot (with the idle strategy and tunables it was given) and sets RUNNING; answers ADD/REMOVE/STOP on its command socket; exits
on STOP, on EOF of the command socket, when the supervisor dies (PR_SET_PDEATHSIG,
and a pidfd of the supervisor the pool block names), never because the pool heartbeat
is old (a live supervisor may be slow to beat).  It also moves data, slowly but
correctly: TX ring records go out in deadline order, received datagrams go to the RX
ring with their meta.  So the supervisor and the API can be tested before (and
independently of) the native worker.

Test knobs (environment): FAKE_WORKER_FAIL=1 exits with an error before RUNNING,
FAKE_WORKER_HANG=1 never reports RUNNING, FAKE_WORKER_NO_FIFO=1 does not ask for
SCHED_FIFO (as if it were not permitted).
"""
from __future__ import annotations

import argparse
import ctypes
import functools
import heapq
import itertools
import os
import select
import signal
import socket
import sys
import time

from rtudp.shmring._native import ffi, lib
from rtudp.shmring.channel import ChannelSegment, build_rx_record
from rtudp.shmring.control import ControlSegment
from rtudp.workers.tunables import DEFAULT_IDLE, IDLE_STRATEGIES, TUNABLES

PR_SET_PDEATHSIG = 1


def can_fifo() -> bool:
    """Whether this process may make a thread SCHED_FIFO (root, CAP_SYS_NICE or an
    RLIMIT_RTPRIO): without it workers are not real-time and there is no RT cap."""
    import os

    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


def need_fifo(pool: object, what: str) -> None:
    """Skip (saying why) where this machine denies SCHED_FIFO, probed by
    :func:`can_fifo`, not asked of the workers; where it allows it, ``pool``'s first
    worker must run at it.  ``what``: the behaviour only a real-time worker has."""
    import os

    import pytest

    if not can_fifo():
        pytest.skip("SCHED_FIFO is not permitted here (no root, CAP_SYS_NICE or "
                    f"RLIMIT_RTPRIO): {what}")
    worker = pool.workers()[0]  # type: ignore[attr-defined]
    assert worker["policy"] == os.SCHED_FIFO, \
        f"the worker is not SCHED_FIFO where it is permitted: {worker}"


def real_worker_built() -> bool:
    """True: the installed ``rtudp-worker`` starts and knows ``--cmd-fd``.

    Installing rtudp compiles the worker (setup.py), so every machine that runs this
    suite has one: a worker that is missing, does not start or lacks ``--cmd-fd`` is a
    broken build, and this fails the test that asks (raises AssertionError; at import
    time that fails the module's collection), never turns the native suite into skips.
    The answer is computed once per process."""
    broken = _check_real_worker()
    if broken:
        raise AssertionError(broken)
    return True


@functools.lru_cache(maxsize=1)
def _check_real_worker() -> str:
    """"" when the installed worker runs and knows --cmd-fd, else what is wrong."""
    import subprocess

    from rtudp.workers import worker_path
    try:
        path = worker_path()
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
    except Exception as exc:  # noqa: BLE001 - any failure here is the broken build to report
        return f"the installed rtudp-worker does not start: {type(exc).__name__}: {exc}"
    if "--cmd-fd" not in out.stdout + out.stderr:
        return (f"the installed rtudp-worker ({path}) does not know --cmd-fd: its --help "
                f"(exit {out.returncode}) says:\n{out.stdout}{out.stderr}")
    return ""


def fake_argv() -> list[str]:
    """The command that runs this fake worker (for ``Pool(worker=...)``)."""
    return [sys.executable, os.path.abspath(__file__)]


def worker_argv() -> list[str] | None:
    """For end-to-end tests: ``$RTUDP_TEST_WORKER`` if set (a worker program to try),
    else the real worker (None = the pool's default; a broken build fails the caller)."""
    if os.environ.get("RTUDP_TEST_WORKER"):
        return [os.environ["RTUDP_TEST_WORKER"]]
    real_worker_built()
    return None


class Chan:
    def __init__(self, pool: str, name: str, fd: int) -> None:
        self.seg = ChannelSegment.open(f"{pool}.{name}")
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.heap: list[tuple[int, int, bytes, bool]] = []
        self.rx_seq = 0
        self.direction = int(self.seg.block.direction)

    def close(self) -> None:
        self.sock.close()
        self.seg.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", required=True)
    ap.add_argument("--worker-id", type=int, required=True)
    ap.add_argument("--cmd-fd", type=int, required=True)
    ap.add_argument("--cpu", type=int)
    ap.add_argument("--idle", choices=list(IDLE_STRATEGIES), default=DEFAULT_IDLE)
    ap.add_argument("--rt-priority", type=int, default=0)
    ap.add_argument("--spin-budget", type=int, default=100)
    ap.add_argument("--idle-poll", type=int, default=1)
    ap.add_argument("--rx-coalesce-us", type=int, default=50)
    ap.add_argument("--tx-coalesce-us", type=int, default=50)
    ap.add_argument("--tx-lateness-us", type=int, default=0)
    a = ap.parse_args()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    if a.rt_priority and not os.environ.get("FAKE_WORKER_NO_FIFO"):
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(a.rt_priority))
        except PermissionError:
            pass
    if os.environ.get("FAKE_WORKER_FAIL"):
        print(f"fake worker {a.worker_id}: failing on purpose", file=sys.stderr)
        return 3
    ctl = ControlSegment.open(a.pool)
    try:
        supervisor = os.pidfd_open(ctl.supervisor_pid)  # readable once it has exited
    except ProcessLookupError:
        print(f"fake worker {a.worker_id}: the supervisor is gone", file=sys.stderr)
        return 2
    slot = ctl.worker(a.worker_id)
    slot.pid = os.getpid()
    slot.policy = os.sched_getscheduler(0)
    slot.priority = os.sched_getparam(0).sched_priority
    slot.heartbeat_ns = time.monotonic_ns()
    slot.idle_strategy = list(IDLE_STRATEGIES).index(a.idle)
    for i, name in enumerate(TUNABLES):
        slot.tunables[i] = getattr(a, name)
    if os.environ.get("FAKE_WORKER_HANG"):
        time.sleep(60)
        return 0
    slot.state = lib.RTUDP_WORKER_RUNNING
    cmd = socket.socket(fileno=a.cmd_fd)
    chans: dict[int, Chan] = {}
    order = itertools.count()
    while True:
        slot.heartbeat_ns = time.monotonic_ns()
        slot.loops += 1
        busy = any(c.heap for c in chans.values())
        rx = [c.sock for c in chans.values() if c.direction != lib.RTUDP_DIR_SEND]
        ready, _, _ = select.select([cmd, supervisor] + rx, [], [], 0.0005 if busy else 0.002)
        if supervisor in ready:
            return 0
        if cmd in ready:
            msg, fds, _flags, _addr = socket.recv_fds(cmd, 64, 1)
            if not msg:
                return 0
            c = ffi.cast("struct rtudp_cmd *", ffi.from_buffer(msg))
            op, s, name = int(c.op), int(c.slot), ffi.string(c.name).decode()
            status, text = 0, b""
            if op == lib.RTUDP_CMD_ADD:
                if s in chans:
                    chans.pop(s).close()
                chans[s] = Chan(a.pool, name, fds[0])
            elif op == lib.RTUDP_CMD_REMOVE:
                if s in chans:
                    chans.pop(s).close()
                else:
                    status, text = -7, b"no such channel"
            rep = ffi.new("struct rtudp_reply *")
            rep.op, rep.slot, rep.status = op, s, status
            ffi.memmove(rep.msg, text, len(text))
            cmd.send(bytes(ffi.buffer(rep)))
            if op == lib.RTUDP_CMD_STOP:
                return 0
        slot.channels = len(chans)
        now = time.monotonic_ns()
        for c in chans.values():
            b = c.seg.block
            while True:
                rec = c.seg.tx.try_get_record()
                if rec is None:
                    break
                b.tx_requested += 1
                if rec.send_at_ns <= now:
                    b.tx_immediate += 1
                # late on arrival: past when taken (the fake never spins: no margin)
                arrived_late = 0 < rec.send_at_ns <= now
                b.tx_late += arrived_late
                heapq.heappush(c.heap, (rec.send_at_ns, next(order), rec.data, arrived_late))
            while c.heap and c.heap[0][0] <= time.monotonic_ns():
                at, _, data, arrived_late = heapq.heappop(c.heap)
                try:
                    c.sock.send(data)
                    b.tx_packets += 1
                    b.tx_bytes += len(data)
                    late_ns = max(0, time.monotonic_ns() - at) if at else 0
                    lib.rtudp_hist_record(ffi.addressof(b, "tx_lateness"), late_ns)
                    if late_ns > lib.RTUDP_TX_LATE_NS:
                        cause = "arrival" if arrived_late else "sent"
                        setattr(b.late, cause, getattr(b.late, cause) + 1)
                        setattr(b.late, cause + "_ns", getattr(b.late, cause + "_ns") + late_ns)
                        top = max(getattr(b.late, cause + "_max_ns"), late_ns)
                        setattr(b.late, cause + "_max_ns", top)
                except OSError:
                    b.tx_errors += 1
            if c.sock in ready:
                while True:
                    try:
                        data, src = c.sock.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    rx_ns = time.monotonic_ns()
                    c.seg.rx.write(build_rx_record(src[:2], rx_ns, c.rx_seq, data), rx_ns)
                    c.rx_seq += 1
                    b.rx_packets += 1
                    b.rx_bytes += len(data)


if __name__ == "__main__":
    sys.exit(main())
