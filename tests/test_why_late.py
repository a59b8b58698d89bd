"""What ``rtudp demo`` and ``rtudp bench timing`` say when a figure missed its target:
each thing the counters show between the two snapshots of a run gets its sentence,
naming the worker and what to change; nothing detected says so."""
from __future__ import annotations

from typing import Any

from rtudp.tools.why_late import Snapshot, explain, findings

SPAN_S = 2.0


def _worker(**counters: int) -> dict[str, Any]:
    w: dict[str, Any] = {"index": 0, "cpu": 1, "capped_sleeps": 0, "cpu_contended": 0,
                         "demote_preempted": 0, "host_pauses": 0, "host_pause_ns": 0,
                         "host_pause_max_ns": 0}
    w.update(counters)
    return w


def _pair(after_worker: dict[str, Any], *, steal_s: float = 0.0, cpu_s: float = 0.5,
          throttle: int | None = 1, late: int = 0) -> tuple[Snapshot, Snapshot]:
    before = Snapshot(100.0, 10.0, 1, {0: _worker()}, {0: 1.0}, 0)
    after = Snapshot(100.0 + SPAN_S, 10.0 + steal_s, throttle, {0: after_worker},
                     {0: 1.0 + cpu_s}, late)
    return before, after


def test_quiet_run_finds_nothing() -> None:
    assert findings(*_pair(_worker())) == []
    lines = explain(*_pair(_worker()), ["p99 A->B"], with_doctor=False)
    assert lines[0].startswith("why: p99 A->B missed the target")
    assert "nothing in the counters" in lines[1]
    # nothing missed: nothing to explain
    assert explain(*_pair(_worker(host_pauses=3)), [], with_doctor=False) == []


def test_host_pauses_are_named_with_their_length() -> None:
    ms = 1_000_000
    found = findings(*_pair(_worker(host_pauses=4, host_pause_ns=19 * ms,
                                    host_pause_max_ns=int(6.4 * ms))))
    assert len(found) == 1
    assert "host stopped the vCPU of worker 0 (CPU 1) at least 4 times" in found[0]
    assert "19.0 ms in all, the longest 6.4 ms" in found[0]
    one = findings(*_pair(_worker(host_pauses=1, host_pause_ns=ms, host_pause_max_ns=ms)))
    assert "worker 0 (CPU 1) at least once for 0.25 ms or more (1.0 ms in all" in one[0]


def test_each_counter_gets_its_sentence() -> None:
    w = _worker(capped_sleeps=7, cpu_contended=2, demote_preempted=3)
    found = findings(*_pair(w, steal_s=0.1, cpu_s=1.9, throttle=2, late=5))
    text = "\n".join(found)
    assert "RT throttle fired" in text
    assert "host took 5.0 % of the CPU time (steal)" in text
    assert "worker 0 (CPU 1) used 95 % of its CPU" in text
    assert "reached its real-time CPU cap 7 times" in text
    assert "for 40 ms" in text                       # 2 contended windows of 20 ms
    assert "taken off its CPU 3 times" in text
    assert "5 packets were late on arrival, queued after their deadline" in text
    assert len(found) == 7


def test_unreadable_kernel_log_is_no_throttle() -> None:
    assert findings(*_pair(_worker(), throttle=None)) == []


def test_memory_handed_back_to_the_host_is_named() -> None:
    """A guest that reports free pages says how much went back to its host during the
    run; no report either side (not such a guest) and no change say nothing."""
    before, after = _pair(_worker())
    before.reported_kib, after.reported_kib = 1000, 1000 + 556 * 1024
    found = findings(before, after)
    assert len(found) == 1 and "handed 556 MiB of free memory back to its host" in found[0]
    after.reported_kib = 1000
    assert findings(before, after) == []
    before.reported_kib = after.reported_kib = None
    assert findings(before, after) == []
