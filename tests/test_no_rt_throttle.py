"""No real-time thread of ours triggers the RT throttle or the fair server.

Both take a CPU from a runnable SCHED_FIFO task and give it to a task that is not
real-time: the throttle once real-time tasks used 95 % of a period (the kernel log
says so once per boot), the fair server (kernels >= 6.12) when ordinary tasks starved
for most of a second.  The kernel's scheduler trace shows either as a switch away
from one of our worker threads while it was runnable (state R) and at a real-time
priority, to a task that is not real-time.  A worker must never let that happen: it
keeps its SCHED_FIFO time under its cap and leaves the CPU often enough.

The run, on a pool at the spinning budget (spin_budget=1: the most real-time CPU time
a pool may want, spun past the cap at SCHED_OTHER) and on one at the default budget
(past its pace a worker sleeps short pieces at SCHED_FIFO: spin.c, rtudp_spin_ahead_of_pace),
with an ordinary busy task on each CPU so the fair server has
someone to stand up for: channel A sends 10 s at 50 kpps on a schedule queued ahead
(steady state), channel B the same packets with every deadline already past (a
backlog: its worker has more to send than its CPU, and must still leave it).
"""
from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from fake_worker import can_fifo
from rtudp.workers.supervisor import DEFAULT_SPIN_BUDGET

TRACEFS = "/sys/kernel/tracing"
RATE = 50_000
SECONDS = 10
BACKLOG_WAIT_S = 60.0
SWITCH = re.compile(r"prev_comm=(?P<comm>\S+) prev_pid=(?P<pid>\d+) prev_prio=(?P<prio>\d+) "
                    r"prev_state=(?P<state>\S+) ==> next_comm=(?P<next>\S+) next_pid=\d+ "
                    r"next_prio=(?P<nprio>\d+)")



def _tracefs() -> str | None:
    """The tracing directory, mounted if need be; None when this machine has none."""
    if not os.path.exists(os.path.join(TRACEFS, "events/sched/sched_switch")):
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True)
    ok = os.access(os.path.join(TRACEFS, "events/sched/sched_switch/enable"), os.W_OK)
    return TRACEFS if ok else None


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _queue(ch, direction: int, n: int, t0: int) -> None:
    """Packet i of ``ch`` due at t0 + i / RATE (retried on back-pressure)."""
    from rtudp import BackPressureError
    from rtudp.tools.demo import MAGIC, PAYLOAD

    i = 0
    while i < n:
        dl = t0 + i * 1_000_000_000 // RATE
        try:
            ch.send(PAYLOAD.pack(MAGIC, direction, i, dl), max(dl, 1))
        except BackPressureError:
            time.sleep(0.001)
            continue
        i += 1


def _throttle_lines() -> int | None:
    out = subprocess.run(["dmesg"], capture_output=True, text=True)
    return out.stdout.count("RT throttling activated") if out.returncode == 0 else None


@pytest.mark.parametrize("spin_budget", [1.0, DEFAULT_SPIN_BUDGET])
def test_workers_never_trip_the_rt_throttle_or_the_fair_server(request, spin_budget) -> None:
    if not can_fifo():
        pytest.skip("SCHED_FIFO needs root or CAP_SYS_NICE: workers are not real-time here")
    tracing = _tracefs()
    if tracing is None:
        pytest.skip(f"no writable tracefs at {TRACEFS}: the scheduler trace is how this "
                    f"test sees a preempted worker")
    # the schedule is queued whole, up to ~17 s ahead: past the default 10 s horizon.
    # Spread: each end on its own worker for the whole run, as the test means them (a
    # packed pool spreads B's backlog mid-run, which is test_move's to check)
    request.applymarker(pytest.mark.rtudp(spin_budget=spin_budget, horizon_s=60,
                                          placement="spread"))
    pool = request.getfixturevalue("rtudp_pool")
    from rtudp.tools.demo import Receiver, _drain_until_done, _open_pair

    n = RATE * SECONDS
    a, b = _open_pair(pool, n)
    pids = {str(w["pid"]) for w in pool.workers()}
    threads = {t for p in pids for t in os.listdir(f"/proc/{p}/task")}
    hogs = [subprocess.Popen(["taskset", "-c", str(cpu), "bash", "-c", "while :; do :; done"])
            for cpu in pool.cpus]
    event = os.path.join(tracing, "events/sched/sched_switch")
    throttled_before = _throttle_lines()
    try:
        _write(os.path.join(tracing, "tracing_on"), "0")
        _write(os.path.join(tracing, "trace"), "")
        _write(os.path.join(event, "filter"), "prev_prio < 100 && next_prio >= 100")
        _write(os.path.join(event, "enable"), "1")
        _write(os.path.join(tracing, "tracing_on"), "1")
        t0 = time.monotonic_ns() + 500_000_000 + n * 12_000
        _queue(a, 0, n, t0)                             # on time
        _queue(b, 1, n, time.monotonic_ns() - (SECONDS + 1) * 10**9)  # all late: a backlog
        rx = [Receiver(b, 0, n), Receiver(a, 1, n)]
        _drain_until_done(rx, t0 + (n - 1) * 1_000_000_000 // RATE)
        # B's backlog leaves as fast as its worker's cap allows, which with the busy
        # tasks asking for their share can take longer than A's schedule: wait for it
        # (still traced), rather than call the slower ones lost
        backlog_end = time.monotonic() + BACKLOG_WAIT_S
        while not all(r.done for r in rx) and time.monotonic() < backlog_end:
            if not sum(r.drain() for r in rx):
                time.sleep(0.01)
        late = [ch.stats()["tx_late"] for ch in (a, b)]
        _write(os.path.join(tracing, "tracing_on"), "0")
        with open(os.path.join(tracing, "trace")) as f:
            trace = f.read()
    finally:
        _write(os.path.join(tracing, "tracing_on"), "0")
        _write(os.path.join(event, "enable"), "0")
        _write(os.path.join(event, "filter"), "0")
        for h in hogs:
            h.kill()
            h.wait()
    preempted = [m.group(0) for m in SWITCH.finditer(trace)
                 if m.group("pid") in threads and m.group("state").startswith("R")]
    lost = [n - r.received for r in rx]
    print(f"\n{SECONDS} s, 50 kpps each way, spin budget {spin_budget}, a busy task on each CPU: "
          f"received {[r.received for r in rx]}, queued late (A, B) {late}; real-time worker "
          f"threads switched away while runnable for a task that is not real-time: "
          f"{len(preempted)}")
    assert not preempted, "\n".join(preempted[:10])
    throttled_after = _throttle_lines()
    if throttled_before is not None and throttled_after is not None:
        assert throttled_after == throttled_before, "kernel log: RT throttling activated"
    assert lost == [0, 0]
    assert late[1] == n  # B really was a backlog
    for w in pool.workers():
        assert w["restarts"] == 0, w
