"""The native worker program ``rtudp-worker``, driven by a minimal supervisor.

The test plays the supervisor itself (no rtudp.workers): it creates the pool's
control segment and channel segments, binds the UDP sockets, spawns the worker
with a SOCK_SEQPACKET command socket, hands channels over with SCM_RIGHTS and
keeps the pool heartbeat fresh.  Everything it starts is killed and every segment
unlinked in teardown, pass or fail.
"""
from __future__ import annotations

import os
import random
import re
import resource
import signal
import socket
import struct
import subprocess
import threading
import time
from typing import Any

import psutil
import pytest

from rtudp.shmring._native import ffi, lib
from rtudp.shmring.channel import ChannelSegment, parse_rx_record
from rtudp.shmring.hist import Histogram
from rtudp.shmring.segment import Segment
from rtudp.workers import worker_path
from rtudp.workers.supervisor import DEFAULT_SPIN_BUDGET

from conftest import new_shm_name
from waiting import sleep_overshoot_s, wait_for

HOST = "127.0.0.1"
REPLY_SIZE = ffi.sizeof("struct rtudp_reply")
START_TIMEOUT = 5.0


class Worker:
    """One spawned rtudp-worker and the supervisor's end of its command socket."""

    def __init__(self, proc: subprocess.Popen, sock: socket.socket, wid: int, errfile: str) -> None:
        self.proc = proc
        self.sock = sock
        self.id = wid
        self.errfile = errfile

    def stderr(self) -> str:
        try:
            with open(self.errfile, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Pool:
    """A fake supervisor: control segment, heartbeat, channels, worker processes."""

    def __init__(self, tmp_path: Any, n_workers: int = 2) -> None:
        self.name = new_shm_name("wpool")
        self.tmp = tmp_path
        self.seg = Segment.create(self.name, int(lib.rtudp_control_segment_size()))
        self.ctl = ffi.cast("struct rtudp_control *", self.seg.base)
        now = time.monotonic_ns()
        self.ctl.pool.supervisor_pid = os.getpid()
        self.ctl.pool.n_workers = n_workers
        self.ctl.pool.started_ns = now
        self.ctl.pool.heartbeat_ns = now
        check = ffi.new("struct rtudp_check *")
        assert lib.rtudp_control_init(self.seg.base, self.seg.size, check) == lib.RTUDP_OK, \
            ffi.string(check.msg)
        self.workers: list[Worker] = []
        self.channels: list[ChannelSegment] = []
        self.sockets: list[socket.socket] = []
        self.beating = True
        self._stop = threading.Event()
        self._hb = threading.Thread(target=self._heartbeat, daemon=True)
        self._hb.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(0.1):
            if self.beating:
                self.ctl.pool.heartbeat_ns = time.monotonic_ns()

    # ---- workers

    def spawn(self, wid: int = 0, extra: tuple[str, ...] = (), wait: bool = True,
              cmd_fd_at: int | None = None) -> Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if cmd_fd_at is not None:  # the worker's command socket at this number
            moved = socket.socket(fileno=os.dup2(theirs.fileno(), cmd_fd_at))
            theirs.close()
            theirs = moved
        errfile = str(self.tmp / f"worker{wid}-{len(self.workers)}.err")
        with open(errfile, "wb") as err:
            proc = subprocess.Popen(
                [worker_path(), "--pool", self.name, "--worker-id", str(wid),
                 "--cmd-fd", str(theirs.fileno()), *extra],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        theirs.close()
        w = Worker(proc, ours, wid, errfile)
        self.workers.append(w)
        if wait:
            ok = wait_for(lambda: self.slot(w).state == lib.RTUDP_WORKER_RUNNING
                           or proc.poll() is not None, START_TIMEOUT)
            assert ok and proc.poll() is None, f"worker did not start: {w.stderr()}"
        return w

    def slot(self, w: Worker) -> Any:
        return self.ctl.workers[w.id]

    def ring(self, w: Worker) -> None:
        """Wake the worker: TX records wait for it."""
        lib.rtudp_bell_ring(ffi.addressof(self.ctl.workers[w.id], "bell"))

    def post(self, w: Worker) -> None:
        """Tell the worker a command waits on its socket, and wake it (the supervisor's
        way: a plain ring does not make it look at the socket)."""
        lib.rtudp_worker_post_command(ffi.addressof(self.ctl.workers[w.id]))

    def command(self, w: Worker, op: int, slot: int, name: str = "",
                fd: int | None = None) -> tuple[int, str]:
        cmd = ffi.new("struct rtudp_cmd *")
        cmd.op, cmd.slot = op, slot
        raw = name.encode()
        ffi.memmove(cmd.name, raw, len(raw))
        data = bytes(ffi.buffer(cmd))
        if fd is None:
            w.sock.send(data)
        else:
            socket.send_fds(w.sock, [data], [fd])
        self.post(w)
        w.sock.settimeout(START_TIMEOUT)
        raw_reply = w.sock.recv(REPLY_SIZE)
        assert len(raw_reply) == REPLY_SIZE, f"short reply {raw_reply!r}: {w.stderr()}"
        buf = ffi.from_buffer(bytearray(raw_reply))  # keeps the copy alive while rep is used
        rep = ffi.cast("struct rtudp_reply *", buf)
        assert rep.op == op and rep.slot == slot
        return int(rep.status), ffi.string(rep.msg).decode()

    # ---- channels

    def udp_socket(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sockets.append(s)
        s.bind((HOST, 0))
        return s

    def add_channel(self, w: Worker, slot: int, name: str, direction: int,
                    remote: tuple[str, int] | None = None, connect: bool = True,
                    capacity: int = 4096, max_datagram: int = 256) -> tuple[ChannelSegment, tuple[str, int]]:
        seg = ChannelSegment.create(f"{self.name}.{name}", capacity, max_datagram)
        self.channels.append(seg)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        if remote is not None and connect:
            s.connect(remote)
        local = s.getsockname()
        seg.configure(name, lib.RTUDP_KIND_UDP, direction, (socket.AF_INET, *local),
                      None if remote is None else (socket.AF_INET, *remote), capacity, 0, w.id,
                      max_datagram, table_slot=slot)
        # as a client does: each commit marks the channel in the worker's ready set
        seg.tx.wire_consumer(ffi.addressof(self.ctl.workers[w.id], "bell"),
                             ffi.addressof(self.ctl.ready[w.id]), slot)
        try:
            status, msg = self.command(w, lib.RTUDP_CMD_ADD, slot, name, s.fileno())
        finally:
            s.close()  # the worker has its own copy
        assert status == lib.RTUDP_OK, f"ADD failed: {msg} / {w.stderr()}"
        return seg, local

    def put(self, w: Worker, seg: ChannelSegment, data: bytes, at_ns: int = 0) -> None:
        seg.tx.put(data, at_ns, timeout=5.0)
        self.ring(w)

    # ---- teardown

    def close(self) -> None:
        self._stop.set()
        self._hb.join(2)
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
            w.proc.wait(5)
            w.sock.close()
        for s in self.sockets:
            s.close()
        for seg in self.channels:
            seg.close()
            seg.unlink()
        self.seg.close()
        self.seg.unlink()


@pytest.fixture
def pool(tmp_path):
    p = Pool(tmp_path)
    try:
        yield p
    finally:
        p.close()


def receiver(pool: Pool, rcvbuf: int = 32 << 20) -> socket.socket:
    s = pool.udp_socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return s


def lateness(seg: ChannelSegment) -> Histogram:
    return seg.tx_lateness()


# ------------------------------------------------------------------ life cycle


def test_bad_arguments_exit_2(pool):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        r = subprocess.run([worker_path(), "--pool", "no_such_pool_xyz", "--worker-id", "0",
                            "--cmd-fd", str(theirs.fileno())], pass_fds=[theirs.fileno()],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2
        assert "no_such_pool_xyz" in r.stderr and "No such file" in r.stderr
        r = subprocess.run([worker_path(), "--pool", pool.name, "--worker-id", "0"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "--cmd-fd" in r.stderr
        r = subprocess.run([worker_path(), "--pool", pool.name, "--worker-id", "0",
                            "--cmd-fd", "0"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 2 and "SOCK_SEQPACKET" in r.stderr
        r = subprocess.run([worker_path(), "--pool", pool.name, "--worker-id", "9",
                            "--cmd-fd", str(theirs.fileno())], pass_fds=[theirs.fileno()],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "worker slots" in r.stderr
        r = subprocess.run([worker_path(), "--pool", pool.name, "--worker-id", "0",
                            "--cmd-fd", str(theirs.fileno()), "--cpu", "1000"],
                           pass_fds=[theirs.fileno()], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "CPU 1000" in r.stderr
    finally:
        ours.close()
        theirs.close()


def test_running_then_stop(pool):
    w = pool.spawn(0)
    slot = pool.slot(w)
    assert slot.pid == w.proc.pid
    assert slot.policy == os.sched_getscheduler(w.proc.pid)
    hb = slot.heartbeat_ns
    assert wait_for(lambda: slot.heartbeat_ns > hb, 1.0), "worker heartbeat does not move"
    t0 = time.monotonic()
    assert pool.command(w, lib.RTUDP_CMD_STOP, 0)[0] == lib.RTUDP_OK
    assert w.proc.wait(1.0) == 0
    assert time.monotonic() - t0 < 1.0
    assert slot.state == lib.RTUDP_WORKER_DEAD


def test_the_file_table_holds_every_channels_sockets_from_the_start(pool):
    """The worker grows its file table before its threads exist: once they share it,
    growing it waits for an RCU grace period, and the TX thread receiving a channel's
    sockets stopped every deadline for milliseconds.  Room for two sockets of every
    channel a pool holds, as far as RLIMIT_NOFILE lets the worker open files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * lib.RTUDP_MAX_CHANNELS
    if soft != resource.RLIM_INFINITY:
        want = min(want, soft)
    # its command socket at the very number the table is grown to: left alone
    w = pool.spawn(0, cmd_fd_at=want - 1)
    with open(f"/proc/{w.proc.pid}/status") as f:
        fd_size = int(re.search(r"^FDSize:\s+(\d+)$", f.read(), re.M).group(1))
    assert fd_size >= want, f"file table of {fd_size} for up to {want} files"
    assert pool.command(w, lib.RTUDP_CMD_STOP, 0)[0] == lib.RTUDP_OK
    assert w.proc.wait(1.0) == 0


def test_exit_when_command_socket_closes(pool):
    w = pool.spawn(0)
    w.sock.close()
    pool.ring(w)
    assert w.proc.wait(1.0) == 0
    assert pool.slot(w).state == lib.RTUDP_WORKER_DEAD


def test_a_stale_supervisor_heartbeat_does_not_end_the_worker(pool):
    """A live supervisor that is slow to beat (a freshly booted VM, a SIGSTOP) keeps
    its workers: they exited once the pool heartbeat was 2 s old."""
    w = pool.spawn(0)
    pool.beating = False
    pool.ctl.pool.heartbeat_ns = time.monotonic_ns() - 10_000_000_000
    ticks = pool.slot(w).heartbeat_ns
    # several of the worker's 100 ms ticks, each of which used to check the heartbeat
    assert wait_for(lambda: pool.slot(w).heartbeat_ns > ticks + 300_000_000, 10)
    assert w.proc.poll() is None, w.stderr()
    status, msg = pool.command(w, lib.RTUDP_CMD_REMOVE, 7)  # it still serves commands
    assert status < 0 and "no channel" in msg
    assert pool.slot(w).state == lib.RTUDP_WORKER_RUNNING


def test_exit_when_the_supervisor_process_exits(pool):
    """The worker watches the process the pool block names (a pidfd, checked every
    100 ms): here not its parent, so no death signal comes, only that check."""
    sup = subprocess.Popen(["sleep", "60"])
    try:
        pool.ctl.pool.supervisor_pid = sup.pid
        w = pool.spawn(0)
        assert w.proc.poll() is None
        sup.kill()
        sup.wait(10)
        assert w.proc.wait(10) == 0, w.stderr()
        assert pool.slot(w).state == lib.RTUDP_WORKER_DEAD
        assert f"supervisor (pid {sup.pid}) has exited" in w.stderr()
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait(10)


def test_a_supervisor_gone_before_the_start_is_refused(pool):
    sup = subprocess.Popen(["true"])
    sup.wait(10)
    pool.ctl.pool.supervisor_pid = sup.pid  # reaped: nobody has that pid (until reused)
    w = pool.spawn(0, wait=False)
    assert w.proc.wait(10) == 2
    assert f"supervisor (pid {sup.pid}) is gone" in w.stderr()


def test_exit_on_sigterm(pool):
    w = pool.spawn(0)
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(1.0) == 0
    assert pool.slot(w).state == lib.RTUDP_WORKER_DEAD


def test_bad_commands_get_error_replies(pool):
    w = pool.spawn(0)
    status, msg = pool.command(w, lib.RTUDP_CMD_REMOVE, 7)
    assert status < 0 and "no channel" in msg
    status, msg = pool.command(w, lib.RTUDP_CMD_ADD, 3, "nonexistent")
    assert status < 0 and "socket" in msg
    s = pool.udp_socket()
    status, msg = pool.command(w, lib.RTUDP_CMD_ADD, 3, "nonexistent", s.fileno())
    assert status < 0 and "nonexistent" in msg
    status, msg = pool.command(w, 99, 0)
    assert status < 0 and "99" in msg
    assert w.proc.poll() is None


def test_idle_cpu(pool):
    w = pool.spawn(0)
    dst = receiver(pool).getsockname()
    pool.add_channel(w, 0, "idle", lib.RTUDP_DIR_BOTH, remote=dst)
    p = psutil.Process(w.proc.pid)
    p.cpu_percent(None)
    time.sleep(3.0)
    cpu = p.cpu_percent(None)
    assert cpu < 2.0, f"idle worker used {cpu}% CPU"
    assert pool.slot(w).sleeps > 0


def _idle_source_expected(cpu: int) -> int:
    """Where a worker pinned to ``cpu`` should read its CPU's idle time here."""
    if os.path.exists(f"/sys/devices/system/cpu/cpu{cpu}/cpuidle/state0/time"):
        return 1  # cpuidle's residency
    ids = ("/sys/kernel/tracing/events/sched/sched_switch/id",
           "/sys/kernel/debug/tracing/events/sched/sched_switch/id")
    if os.geteuid() == 0 and any(os.access(p, os.R_OK) for p in ids):
        return 2  # the scheduler's switches (worker/cputrace.h)
    return 0


def test_worker_finds_its_cpus_idle_time_with_or_without_a_cpuidle_driver(pool):
    """Past its real-time cap a worker goes on at SCHED_OTHER only once it has seen that
    nobody else wants its CPU, which takes that CPU's idle time: from cpuidle when the
    kernel has a driver, from the scheduler's switches when it has none (a VM booted
    without one), as root.  A worker that found neither sleeps capped pieces for nobody."""
    w = pool.spawn(0, extra=("--cpu", "0"))
    slot = pool.slot(w)
    hb = slot.heartbeat_ns
    assert wait_for(lambda: slot.heartbeat_ns > hb, 2.0), "worker heartbeat does not move"
    expected = _idle_source_expected(0)
    print(f"\nidle_source {slot.idle_source} (expected {expected}: 0 none, 1 cpuidle, "
          f"2 the scheduler's switches)")
    assert slot.idle_source == expected


# ------------------------------------------------------------------ TX


def _recv_all(sock: socket.socket, n: int, timeout: float) -> list[tuple[int, bytes]]:
    sock.settimeout(0.2)
    got: list[tuple[int, bytes]] = []
    end = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        got.append((time.monotonic_ns(), data))
    return got


@pytest.mark.parametrize("connect", [True, False], ids=["connected", "unconnected"])
def test_timed_send_in_deadline_order(pool, connect):
    w = pool.spawn(0)
    rx = receiver(pool)
    seg, _ = pool.add_channel(w, 0, "timed", lib.RTUDP_DIR_SEND, remote=rx.getsockname(),
                              connect=connect)
    base = time.monotonic_ns() + 5_000_000
    deadlines = [base + k * 1_000_000 for k in range(1, 51)]
    shuffled = deadlines[:]
    random.Random(7).shuffle(shuffled)
    for d in shuffled:
        pool.put(w, seg, struct.pack("<q", d) + b"x" * 20, d)
    got = _recv_all(rx, 50, 5.0)
    assert len(got) == 50, pool.workers[0].stderr()
    sent = [struct.unpack_from("<q", data)[0] for _, data in got]
    assert sent == deadlines, "packets left out of deadline order"
    for arrived, data in got:
        assert arrived >= struct.unpack_from("<q", data)[0], "a packet left before its deadline"
    b = seg.block
    assert wait_for(lambda: lateness(seg).count == 50, 2.0)
    assert b.tx_packets == 50 and b.tx_requested == 50 and b.tx_bytes == 50 * 28
    assert b.tx_immediate == 0 and b.tx_errors == 0
    h = lateness(seg)
    assert h.negative == 0, "departure before deadline"
    assert h.percentile(50) < 5_000_000, h.percentiles()
    # the whole ring was freed once everything left
    assert wait_for(lambda: seg.tx._ring.ring.head == seg.tx._ring.ring.tail, 1.0)


def test_send_at_zero_is_immediate(pool):
    w = pool.spawn(0)
    rx = receiver(pool)
    seg, _ = pool.add_channel(w, 0, "now", lib.RTUDP_DIR_SEND, remote=rx.getsockname())
    past = time.monotonic_ns() - 1_000_000
    for i in range(10):
        pool.put(w, seg, b"n%d" % i, 0 if i % 2 == 0 else past)
    got = _recv_all(rx, 10, 3.0)
    all_in_ns = time.monotonic_ns()
    order = [d for _, d in got]
    assert sorted(order) == [b"n%d" % i for i in range(10)], order
    # each way in submission order; a past deadline keeps its key (deadline order with
    # other late ones), a "now" takes the drain time: it never jumps ahead of what was
    # queued before it, late or not (which of a later past and an earlier "now" leaves
    # first depends on whether the worker read them in one pass)
    assert [d for d in order if int(d[1:]) % 2 == 0] == [b"n%d" % i for i in range(0, 10, 2)]
    assert [d for d in order if int(d[1:]) % 2 == 1] == [b"n%d" % i for i in range(1, 10, 2)]
    for i in range(0, 10, 2):
        assert all(order.index(b"n%d" % j) < order.index(b"n%d" % i) for j in range(i)), order
    assert wait_for(lambda: lateness(seg).count == 10, 2.0)
    assert seg.block.tx_immediate == 10
    # every one left before it was received, and none had a deadline before `past`:
    # no lateness can exceed that span (how much of it the machine's load took is not
    # the worker's guarantee)
    assert 0 <= lateness(seg).max_ns <= all_in_ns - past, lateness(seg).max_ns


def test_send_error_is_counted_and_dropped(pool):
    w = pool.spawn(0)
    rx = receiver(pool)
    dst = rx.getsockname()
    rx.close()  # nobody listens: ICMP port unreachable -> ECONNREFUSED on the next send
    seg, _ = pool.add_channel(w, 0, "refused", lib.RTUDP_DIR_SEND, remote=dst)
    for i in range(20):
        pool.put(w, seg, b"x")
        time.sleep(0.002)
    b = seg.block
    assert wait_for(lambda: b.tx_packets + b.tx_errors == 20, 3.0), (b.tx_packets, b.tx_errors)
    assert b.tx_errors > 0
    assert w.proc.poll() is None
    assert wait_for(lambda: seg.tx._ring.ring.head == seg.tx._ring.ring.tail, 1.0)


def test_remove_keeps_unsent_records_for_the_next_worker(pool):
    w = pool.spawn(0)
    rx = receiver(pool)
    seg, _ = pool.add_channel(w, 0, "keep", lib.RTUDP_DIR_SEND, remote=rx.getsockname())
    later = time.monotonic_ns() + 400_000_000
    for i in range(5):
        pool.put(w, seg, b"k%d" % i, later)
    assert wait_for(lambda: seg.block.tx_requested == 5, 1.0)
    assert pool.command(w, lib.RTUDP_CMD_REMOVE, 0)[0] == lib.RTUDP_OK
    assert pool.slot(w).channels == 0
    assert seg.block.tx_packets == 0
    assert seg.tx._ring.ring.head != seg.tx._ring.ring.tail  # still queued
    # a new socket on the same segment: the records are sent, once
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.connect(rx.getsockname())
    try:
        assert pool.command(w, lib.RTUDP_CMD_ADD, 1, "keep", s.fileno())[0] == lib.RTUDP_OK
    finally:
        s.close()
    got = _recv_all(rx, 5, 3.0)
    assert [d for _, d in got] == [b"k%d" % i for i in range(5)]
    assert all(t >= later for t, _ in got)
    assert _recv_all(rx, 1, 0.3) == []


def test_20k_packets_full_speed_tx(pool):
    w = pool.spawn(0)
    rx = receiver(pool)
    seg, _ = pool.add_channel(w, 0, "burst", lib.RTUDP_DIR_SEND, remote=rx.getsockname(),
                              connect=False, capacity=8192, max_datagram=64)
    n = 20_000
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.extend(d for _, d in _recv_all(rx, n, 20.0)))
    t.start()
    for i in range(n):
        pool.put(w, seg, struct.pack("<I", i) + b"p" * 28)
    t.join()
    assert len(got) == n, f"lost {n - len(got)}: {seg.counters()}"
    assert sorted(struct.unpack_from("<I", d)[0] for d in got) == list(range(n))
    assert wait_for(lambda: lateness(seg).count == n, 2.0)
    assert seg.block.tx_packets == n and seg.block.tx_errors == 0


# ------------------------------------------------------------------ RX


def test_rx_datagrams_reach_the_ring(pool):
    w = pool.spawn(0)
    seg, local = pool.add_channel(w, 0, "inbox", lib.RTUDP_DIR_RECV)
    reader = seg.rx.reader()
    src = pool.udp_socket()
    stamped: list[bool] = []
    sent = 0
    # the kernel turns RX stamping on asynchronously (net_enable_timestamp defers it to
    # a kworker) when the first stamping socket of the system opens: datagrams of the
    # first moments may come without a stamp (the worker then reads the clock and says
    # so), for as long as a loaded CPU keeps that kworker waiting
    deadline = time.monotonic() + 30
    while sent < 100 or (True not in stamped and time.monotonic() < deadline):
        for i in range(sent, sent + 100):
            src.sendto(b"hello %d" % i, local)
        for i in range(sent, sent + 100):
            rec = reader.get_record(timeout=2.0)
            meta, data = parse_rx_record(rec.data)
            assert data == b"hello %d" % i
            assert meta.source == src.getsockname()
            assert meta.rx_seq == i
            assert rec.time_ns == meta.rx_ns
            assert 0 <= time.monotonic_ns() - meta.rx_ns < 2_000_000_000
            stamped.append(bool(meta.flags & 2))  # RTUDP_RX_SOFTWARE_STAMP
        sent += 100
    first = stamped.index(True) if True in stamped else sent
    assert first < sent and all(stamped[first:]), f"unstamped datagrams after stamped: {stamped}"
    b = seg.block
    assert b.rx_packets == sent and b.rx_bytes == sum(len(b"hello %d" % i) for i in range(sent))
    assert wait_for(lambda: seg.rx_delay().count == sent, 10.0)
    assert seg.rx_delay().negative == 0


def test_rx_truncates_long_datagrams(pool):
    w = pool.spawn(0)
    seg, local = pool.add_channel(w, 0, "small", lib.RTUDP_DIR_RECV, max_datagram=16)
    reader = seg.rx.reader()
    pool.udp_socket().sendto(b"z" * 100, local)
    meta, data = parse_rx_record(reader.get_record(timeout=2.0).data)
    assert data == b"z" * 16 and meta.flags & 1
    # counted once the batch is published: the reader may see the record first
    assert wait_for(lambda: seg.block.rx_truncated == 1, 1.0)


def test_20k_packets_full_speed_rx(pool):
    w = pool.spawn(0)
    n = 20_000
    seg, local = pool.add_channel(w, 0, "flood", lib.RTUDP_DIR_RECV, capacity=32768,
                                  max_datagram=64)
    reader = seg.rx.reader()
    src = pool.udp_socket()
    for i in range(n):
        src.sendto(struct.pack("<I", i) + b"r" * 28, local)
    seen = 0
    while seen < n:
        rec = reader.get_record(timeout=5.0)
        assert rec.lost == 0
        meta, data = parse_rx_record(rec.data)
        assert meta.rx_seq == seen and struct.unpack_from("<I", data)[0] == seen
        seen += 1
    assert seg.block.rx_packets == n and seg.block.rx_kernel_drops == 0


def test_both_directions_on_one_channel(pool):
    w = pool.spawn(0)
    peer = receiver(pool)
    seg, local = pool.add_channel(w, 0, "duplex", lib.RTUDP_DIR_BOTH, remote=peer.getsockname())
    reader = seg.rx.reader()
    for i in range(50):
        pool.put(w, seg, b"out%d" % i)
    got = _recv_all(peer, 50, 3.0)
    assert len(got) == 50
    for i in range(50):
        peer.sendto(b"in%d" % i, local)
    for i in range(50):
        meta, data = parse_rx_record(reader.get_record(timeout=2.0).data)
        assert data == b"in%d" % i and meta.rx_seq == i


# ------------------------------------------------------------------ timing


def _pace(pool: Pool, w: Worker, rate: int, n: int) -> tuple[Histogram, dict[str, int]]:
    rx = receiver(pool)
    seg, _ = pool.add_channel(w, 0, "paced", lib.RTUDP_DIR_SEND, remote=rx.getsockname(),
                              capacity=32768, max_datagram=64)
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.extend(_recv_all(rx, n, 30.0)))
    t.start()
    gap = 1_000_000_000 // rate
    start = time.monotonic_ns() + 50_000_000
    spin0, bridge0, t0 = pool.slot(w).spin_ns, pool.slot(w).bridge_ns, time.monotonic_ns()
    items = [struct.pack("<q", start + i * gap) + b"." * 24 for i in range(n)]
    for i, data in enumerate(items):
        seg.tx.put(data, start + i * gap, timeout=5.0)
        if i % 64 == 0:
            pool.ring(w)
    pool.ring(w)
    t.join()
    assert len(got) == n
    assert wait_for(lambda: lateness(seg).count == n, 2.0)
    time.sleep(0.25)  # one more heartbeat tick publishes spin_ns
    elapsed = time.monotonic_ns() - t0
    stats = {"spin_ns": int(pool.slot(w).spin_ns - spin0), "elapsed_ns": elapsed,
             "bridge_ns": int(pool.slot(w).bridge_ns - bridge0),
             "margin_ns": int(pool.slot(w).spin_margin_ns)}
    return lateness(seg), stats


@pytest.mark.parametrize("sched", ["other", "fifo"])
def test_lateness_at_20kpps(pool, sched, capsys):
    extra: tuple[str, ...] = ()
    if sched == "fifo":
        if os.geteuid() != 0:
            pytest.skip("SCHED_FIFO needs root or CAP_SYS_NICE")
        extra = ("--rt-priority", "10", "--cpu", str(max(os.sched_getaffinity(0))))
    w = pool.spawn(0, extra)
    h, stats = _pace(pool, w, 20_000, 20_000)
    p = h.percentiles([50, 90, 99, 99.9])
    with capsys.disabled():
        print(f"\n[{sched}] 20 kpps tx_lateness: p50={p[50] / 1e3:.1f} us "
              f"p90={p[90] / 1e3:.1f} us p99={p[99] / 1e3:.1f} us p99.9={p[99.9] / 1e3:.1f} us "
              f"max={h.max_ns / 1e3:.1f} us; spin {stats['spin_ns'] / 1e6:.1f} ms in "
              f"{stats['elapsed_ns'] / 1e6:.0f} ms (bridging gaps {stats['bridge_ns'] / 1e6:.1f} ms), "
              f"margin {stats['margin_ns'] / 1e3:.1f} us")
    assert h.negative == 0
    # the spin budget (the worker's default, DEFAULT_SPIN_BUDGET of each window) holds
    # for the spinning it pays for (margins before deadlines).  Gaps spun because a sleep
    # there would cost about as much CPU and wake after the deadline (bridges) are not
    # the budget's.  The bound is the budget itself: a SCHED_OTHER worker woken late on a
    # loaded machine raises its margin past the 50 us gap (seen: 65 us, fresh-boot CI)
    # and then spins all of it, 30 % of the traffic's second (the bound was 20 % of the
    # run from when the budget was 10 %)
    assert 0 <= stats["bridge_ns"] <= stats["spin_ns"]
    assert stats["spin_ns"] - stats["bridge_ns"] < DEFAULT_SPIN_BUDGET * stats["elapsed_ns"]
    # the median over the 20 000 sends: 2 ms, plus what a plain sleep overshoots on this
    # machine now (a SCHED_OTHER worker waits for the CPU like any thread here)
    plain = sleep_overshoot_s()
    assert p[50] < 2_000_000 + 4 * plain * 1e9, (p[50], plain)
