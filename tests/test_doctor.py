"""`rtudp doctor`: every check is printed by name with a verdict, --json carries the same,
a check reads a fake /proc and /sys tree and gives the verdict and advice a user acts on,
a missing file is `unknown` (never a traceback), and the pause measurement gives sane
figures.  No timing figure is asserted tighter than a loaded 2-CPU machine can keep.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtudp.tools import doctor
from rtudp.tools.doctor import LIMIT, OK, UNKNOWN, WARN
from rtudp.tools.doctor_measure import (MAX_PAUSES, long_pauses, measure, pause_figures,
                                       pause_scan, scan_together)
from rtudp.tools.doctor_report import host_stops_busy_vcpus, verdict_paragraph

CLI = [sys.executable, "-m", "rtudp.tools.cli", "doctor"]
CHECK_NAMES = ("rt_throttle", "fair_server", "preempt", "autogroup", "kdamond", "page_reporting",
               "cpuidle", "pm_qos",
               "hz", "isolation", "clocksource", "sched_fifo", "memlock", "socket_buffers",
               "shm_hugepages", "cpus", "steal")
VERDICTS = {OK, WARN, LIMIT, UNKNOWN}


def put(root: Path, path: str, text: str) -> None:
    """Write ``text`` at ``path`` inside the fake root."""
    f = root / path.lstrip("/")
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text + "\n")


def run_doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------ the command


def test_command_prints_every_check_and_a_verdict() -> None:
    proc = run_doctor("--seconds", "0.5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name in CHECK_NAMES:
        line = next((ln for ln in lines if ln.split()[1:2] == [name]), None)
        assert line is not None, f"no line for {name}:\n{proc.stdout}"
        assert line.split()[0] in VERDICTS, line
        if line.split()[0] in (WARN, LIMIT):
            assert "-> fix:" in line, line
    for heading in ("pauses:", "C floor:", "verdict:", "At best this machine gives"):
        assert heading in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr


def test_json_has_checks_and_measurement() -> None:
    t0 = time.monotonic_ns()
    proc = run_doctor("--seconds", "0.5", "--json")
    ran_us = (time.monotonic_ns() - t0) / 1e3
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [c["name"] for c in report["checks"]] == list(CHECK_NAMES)
    for c in report["checks"]:
        assert {"name", "value", "verdict", "advice", "note", "data"} <= set(c)
        assert c["verdict"] in VERDICTS
        assert c["advice"] or c["verdict"] in (OK, UNKNOWN), c
    assert set(report["top"]) <= set(CHECK_NAMES)
    assert report["virtual"] in (True, False, None)
    m = report["measurement"]
    pauses, floor = m["pauses"], m["floor"]
    # the rate is the count over the CPU-seconds scanned (a share of the 0.5 s run)
    assert isinstance(pauses["count"], int) and 0 < pauses["seconds"] <= 0.5 * 64, pauses
    assert pauses["per_s"] == pytest.approx(pauses["count"] / pauses["seconds"]), pauses
    if pauses["count"]:
        # a pause is a gap over the threshold; its median is no longer than the longest
        assert m["over_us"] < pauses["p50_us"] <= pauses["p99_us"] <= pauses["max_us"]
    assert floor["packets"] > 0
    # every floor packet's slot and departure fall inside the doctor's run, so no
    # lateness exceeds it (how late the floor runs is the machine's, not asserted here)
    assert 0 < floor["p50_us"] <= floor["p99_us"] <= floor["p999_us"] <= floor["max_us"]
    assert floor["max_us"] < ran_us, (floor, ran_us)
    assert m["cpus"] and all(e["cpu"] in m["cpus"] for e in m["per_cpu"])


def test_no_measurement_with_zero_seconds() -> None:
    proc = run_doctor("--seconds", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["measurement"] is None
    assert report["checks"][-1]["name"] == "steal"


def test_bad_seconds_is_a_usage_error() -> None:
    proc = run_doctor("--seconds", "soon")
    assert proc.returncode == 2 and "invalid seconds 'soon'" in proc.stderr


# ------------------------------------------------------------------ checks on a fake root


@pytest.mark.parametrize("runtime, verdict", [(950000, LIMIT), (-1, OK), (1000000, OK)])
def test_rt_throttle(tmp_path: Path, runtime: int, verdict: str) -> None:
    put(tmp_path, "/proc/sys/kernel/sched_rt_runtime_us", str(runtime))
    put(tmp_path, "/proc/sys/kernel/sched_rt_period_us", "1000000")
    c = doctor.check_rt_throttle(str(tmp_path))
    assert c.verdict == verdict
    assert c.data == {"runtime_us": runtime, "period_us": 1000000}
    if verdict == LIMIT:
        assert "95%" in c.note
        assert "sysctl -w kernel.sched_rt_runtime_us=-1" in c.advice
    else:
        assert c.advice == ""


def test_cpuidle_haltpoll_warns_with_the_settings(tmp_path: Path) -> None:
    base = "/sys/devices/system/cpu/cpuidle"
    put(tmp_path, f"{base}/current_driver", "haltpoll")
    put(tmp_path, f"{base}/current_governor_ro", "haltpoll")
    put(tmp_path, "/sys/module/haltpoll/parameters/guest_halt_poll_ns", "0")
    for i, (name, lat) in enumerate((("POLL", 0), ("haltpoll idle", 1))):
        put(tmp_path, f"/sys/devices/system/cpu/cpu0/cpuidle/state{i}/name", name)
        put(tmp_path, f"/sys/devices/system/cpu/cpu0/cpuidle/state{i}/latency", str(lat))
        put(tmp_path, f"/sys/devices/system/cpu/cpu0/cpuidle/state{i}/disable", "0")
    c = doctor.check_cpuidle(str(tmp_path))
    assert c.verdict == WARN
    assert "haltpoll" in c.value and "guest_halt_poll_ns 0" in c.value
    # haltpoll never polls here: the workers' idle pollers do, and no PM QoS request
    assert "idle poller" in c.note and "hold no /dev/cpu_dma_latency" in c.note
    assert "do not hold /dev/cpu_dma_latency" in c.advice
    put(tmp_path, "/sys/module/haltpoll/parameters/guest_halt_poll_ns", "200000")
    c = doctor.check_cpuidle(str(tmp_path))
    assert "idle poller" not in c.note and "poll up to guest_halt_poll_ns" in c.note


def test_cpuidle_none_says_how_workers_see_an_idle_cpu(tmp_path: Path) -> None:
    put(tmp_path, "/sys/devices/system/cpu/cpuidle/current_driver", "none")
    put(tmp_path, "/proc/cmdline", "console=ttyS0 quiet")
    c = doctor.check_cpuidle(str(tmp_path))
    assert c.verdict == WARN and c.data["driver"] == "none"
    assert "30 µs pieces" in c.note and c.data["sched_switch_traced"] is False
    assert "cpuidle-haltpoll" in c.advice  # no haltpoll driver in this kernel
    assert "mount -t tracefs" in c.advice  # the switches' source, left unmounted at boot
    # with the scheduler's switch event, workers time the others from it instead
    put(tmp_path, "/sys/kernel/tracing/events/sched/sched_switch/id", "321")
    c = doctor.check_cpuidle(str(tmp_path))
    assert c.verdict == WARN and c.data["sched_switch_traced"] is True
    assert "tracefs" not in c.advice
    assert "scheduler's switches" in c.note and "30 µs pieces" not in c.note
    # built in (it only waits for a host hint): the boot parameter that loads it
    (tmp_path / "sys/module/cpuidle_haltpoll/parameters").mkdir(parents=True)
    c = doctor.check_cpuidle(str(tmp_path))
    assert c.advice.startswith("boot with cpuidle_haltpoll.force=1")
    assert c.data["haltpoll_built_in"] is True
    # idle=poll: idle CPUs poll, nothing to change
    put(tmp_path, "/proc/cmdline", "console=ttyS0 idle=poll")
    c = doctor.check_cpuidle(str(tmp_path))
    assert (c.verdict, c.advice) == (OK, "")


def test_pm_qos_says_when_it_changes_nothing(tmp_path: Path) -> None:
    put(tmp_path, "/dev/cpu_dma_latency", "")
    put(tmp_path, "/sys/devices/system/cpu/cpuidle/current_driver", "intel_idle")
    assert "keep idle CPUs polling" in doctor.check_pm_qos(str(tmp_path)).note
    put(tmp_path, "/sys/devices/system/cpu/cpuidle/current_driver", "none")
    c = doctor.check_pm_qos(str(tmp_path))
    assert c.verdict == OK and "changes nothing" in c.note


def test_pm_qos_on_a_virtual_machine_is_not_held(tmp_path: Path) -> None:
    put(tmp_path, "/dev/cpu_dma_latency", "")
    put(tmp_path, "/sys/devices/system/cpu/cpuidle/current_driver", "none")
    put(tmp_path, "/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n")
    c = doctor.check_pm_qos(str(tmp_path))
    assert c.verdict == OK and "do not hold the request" in c.note and "stops" in c.note
    # the KVM guest's cpuidle driver says so as well
    put(tmp_path, "/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme lahf_lm\n")
    put(tmp_path, "/sys/devices/system/cpu/cpuidle/current_driver", "haltpoll")
    assert "do not hold the request" in doctor.check_pm_qos(str(tmp_path)).note


def test_cpuidle_deep_states_warn(tmp_path: Path) -> None:
    put(tmp_path, "/sys/devices/system/cpu/cpuidle/current_driver", "intel_idle")
    put(tmp_path, "/sys/devices/system/cpu/cpuidle/current_governor", "menu")
    for i, (name, lat) in enumerate((("POLL", 0), ("C1", 2), ("C6", 133))):
        put(tmp_path, f"/sys/devices/system/cpu/cpu0/cpuidle/state{i}/name", name)
        put(tmp_path, f"/sys/devices/system/cpu/cpu0/cpuidle/state{i}/latency", str(lat))
        put(tmp_path, f"/sys/devices/system/cpu/cpu0/cpuidle/state{i}/disable", "0")
    c = doctor.check_cpuidle(str(tmp_path))
    assert c.verdict == WARN and "C6" in c.note and "133" in c.note
    assert "cpupower idle-set -D 10" in c.advice


def test_a_running_damon_monitor_is_named_with_its_pid(tmp_path: Path) -> None:
    assert doctor.check_kdamond(str(tmp_path)).verdict == OK  # no DAMON at all
    put(tmp_path, "/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds", "2")
    put(tmp_path, "/sys/kernel/mm/damon/admin/kdamonds/0/state", "off")
    put(tmp_path, "/sys/kernel/mm/damon/admin/kdamonds/0/pid", "-1")
    assert doctor.check_kdamond(str(tmp_path)).verdict == OK
    put(tmp_path, "/sys/kernel/mm/damon/admin/kdamonds/1/state", "on")
    put(tmp_path, "/sys/kernel/mm/damon/admin/kdamonds/1/pid", "77")
    c = doctor.check_kdamond(str(tmp_path))
    assert c.verdict == WARN and c.data["pids"] == [77]
    assert "taskset -pc <other CPUs> 77" in c.advice and "preempt=full" in c.advice


def test_free_page_reporting_is_named_with_what_it_handed_back(tmp_path: Path) -> None:
    c = doctor.check_page_reporting(str(tmp_path))
    assert c.verdict == OK and c.data["reported_kib"] is None   # not such a guest
    put(tmp_path, "/sys/module/page_reporting/parameters/reported_kib", str(3 << 20))
    put(tmp_path, "/sys/module/page_reporting/parameters/page_reporting_order", "9")
    c = doctor.check_page_reporting(str(tmp_path))
    assert c.verdict == WARN and c.data == {"reported_kib": 3 << 20, "order": 9}
    assert "blocks of 2048 KiB" in c.value and "3.0 GiB handed back" in c.value
    assert "stops the vCPUs" in c.note


def test_missing_files_are_unknown_never_a_traceback(tmp_path: Path) -> None:
    checks = doctor.run_checks(str(tmp_path))
    by_name = {c.name: c for c in checks}
    for name in ("rt_throttle", "fair_server", "preempt", "cpuidle", "pm_qos", "hz",
                 "isolation", "clocksource", "socket_buffers", "shm_hugepages"):
        c = by_name[name]
        assert c.verdict == UNKNOWN, c
        assert c.note, f"{name}: unknown without a reason"
    assert "not found" in by_name["rt_throttle"].note
    assert doctor.check_steal(None, None, False).verdict == UNKNOWN


def test_unreadable_file_is_unknown(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    put(tmp_path, "/proc/sys/net/core/rmem_max", "212992")
    put(tmp_path, "/proc/sys/net/core/wmem_max", "212992")
    (tmp_path / "proc/sys/net/core/rmem_max").chmod(0)
    c = doctor.check_socket_buffers(str(tmp_path))
    assert c.verdict == UNKNOWN and "permission denied" in c.note


def _fair_server_root(root: Path, release: str, runtime: int | None) -> None:
    put(root, "/proc/sys/kernel/osrelease", release)
    if runtime is not None:
        put(root, "/proc/mounts", "debugfs /sys/kernel/debug debugfs rw 0 0")
        for cpu in ("cpu0", "cpu1"):
            put(root, f"/sys/kernel/debug/sched/fair_server/{cpu}/runtime", str(runtime))
            put(root, f"/sys/kernel/debug/sched/fair_server/{cpu}/period", "1000000000")


@pytest.mark.parametrize("release, runtime, verdict", [
    ("6.6.30", None, OK), ("6.18.4", None, WARN), ("6.12.0", 50_000_000, LIMIT),
    ("6.12.0", 0, OK)])
def test_fair_server(tmp_path: Path, release: str, runtime: int | None, verdict: str) -> None:
    _fair_server_root(tmp_path, release, runtime)
    c = doctor.check_fair_server(str(tmp_path))
    assert c.verdict == verdict, c
    if verdict == WARN:                     # present by version, values unreadable
        assert "present" in c.value and "unreadable" in c.value
        assert "50 ms per second" in c.note and "debugfs is not mounted" in c.note
    if verdict == LIMIT:
        assert "cpu0 50/1000 ms" in c.value
        assert "fair_server/cpuN/runtime" in c.advice


def test_socket_buffers(tmp_path: Path) -> None:
    put(tmp_path, "/proc/sys/net/core/rmem_max", "212992")
    put(tmp_path, "/proc/sys/net/core/wmem_max", str(8 << 20))
    c = doctor.check_socket_buffers(str(tmp_path))
    assert c.verdict == WARN and "sysctl -w net.core.rmem_max=" in c.advice
    put(tmp_path, "/proc/sys/net/core/rmem_max", str(4 << 20))
    assert doctor.check_socket_buffers(str(tmp_path)).verdict == OK


@pytest.mark.parametrize("current, verdict", [("tsc", OK), ("kvm-clock", WARN)])
def test_clocksource(tmp_path: Path, current: str, verdict: str) -> None:
    base = "/sys/devices/system/clocksource/clocksource0"
    put(tmp_path, f"{base}/current_clocksource", current)
    put(tmp_path, f"{base}/available_clocksource", "tsc kvm-clock")
    c = doctor.check_clocksource(str(tmp_path))
    assert c.verdict == verdict
    if verdict == WARN:
        assert f"echo tsc > {base}/current_clocksource" in c.advice


def test_isolation(tmp_path: Path) -> None:
    put(tmp_path, "/proc/cmdline", "quiet root=/dev/vda")
    put(tmp_path, "/sys/devices/system/cpu/online", "0-3")
    c = doctor.check_isolation(str(tmp_path))
    assert c.verdict == WARN
    assert "isolcpus=domain,managed_irq,1-3 nohz_full=1-3 rcu_nocbs=1-3" in c.advice
    put(tmp_path, "/proc/cmdline", "quiet isolcpus=domain,managed_irq,2-3 rcu_nocbs=2-3")
    c = doctor.check_isolation(str(tmp_path))
    assert c.verdict == OK and c.data["isolcpus"] == [2, 3]


def test_preempt_none_on_a_dynamic_kernel(tmp_path: Path) -> None:
    put(tmp_path, "/proc/sys/kernel/osrelease", "6.18.0")
    put(tmp_path, "/boot/config-6.18.0", "CONFIG_PREEMPT_NONE=y\nCONFIG_PREEMPT_DYNAMIC=y\n"
                                         "CONFIG_HZ=250")
    put(tmp_path, "/proc/cmdline", "quiet")
    c = doctor.check_preempt(str(tmp_path))
    assert c.verdict == WARN and c.advice == "boot with preempt=full"
    put(tmp_path, "/proc/cmdline", "quiet preempt=full")
    assert doctor.check_preempt(str(tmp_path)).verdict == OK
    hz = doctor.check_hz(str(tmp_path))
    assert hz.verdict == OK and hz.data["hz"] == 250 and "4 ms" in hz.note


def test_autogroup(tmp_path: Path) -> None:
    put(tmp_path, "/proc/sys/kernel/sched_autogroup_enabled", "1")
    c = doctor.check_autogroup(str(tmp_path))
    assert c.verdict == WARN and "sched_autogroup_enabled=0" in c.advice
    put(tmp_path, "/proc/sys/kernel/sched_autogroup_enabled", "0")
    assert doctor.check_autogroup(str(tmp_path)).verdict == OK
    os.remove(tmp_path / "proc/sys/kernel/sched_autogroup_enabled")
    c = doctor.check_autogroup(str(tmp_path))
    assert c.verdict == OK and c.value == "not in this kernel"
    assert doctor.check_autogroup(str(tmp_path / "nothing")).verdict == UNKNOWN


def test_shm_hugepages(tmp_path: Path) -> None:
    put(tmp_path, "/sys/kernel/mm/transparent_hugepage/shmem_enabled",
        "always within_size advise [never] deny force")
    put(tmp_path, "/proc/mounts", "tmpfs /dev/shm tmpfs rw,relatime 0 0")
    c = doctor.check_shm_hugepages(str(tmp_path))
    assert c.verdict == WARN and "huge=within_size /dev/shm" in c.advice
    put(tmp_path, "/proc/mounts", "tmpfs /dev/shm tmpfs rw,huge=within_size 0 0")
    assert doctor.check_shm_hugepages(str(tmp_path)).verdict == OK


def test_cpus_shared_with_workers() -> None:
    c = doctor.check_cpus({0, 1}, max_workers=64)
    assert c.verdict == WARN and c.data["default_workers"] == 2
    assert "--cpus 1" in c.advice and "CPU 0" in c.advice
    assert doctor.check_cpus({0, 1, 2, 3}, max_workers=2).verdict == OK
    assert doctor.check_cpus({0}, max_workers=64).verdict == LIMIT


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to move a thread")
def test_why_names_the_pools_cpus_while_placement_holds_this_thread_on_one() -> None:
    """The demo prints the verdict while its pool runs, when the pool's thread placement
    may hold the calling thread on one CPU: the cpus check must still name the CPUs the
    process may use (it said "1 CPUs (0)" in a CI run), the pool's ``allowed_cpus``."""
    from rtudp.tools.why_late import Snapshot, explain

    allowed = frozenset(os.sched_getaffinity(0))
    snap = Snapshot(0.0, 0.0, None, allowed_cpus=allowed)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        lines = explain(snap, snap, ["A -> B p99 1 ms"])
    finally:
        os.sched_setaffinity(0, allowed)
    text = "\n".join(lines)
    assert "1 CPUs" not in text, text
    if doctor.check_cpus().verdict != OK:  # listed among what limits timing
        assert f"{len(allowed)} CPUs ({doctor.format_cpus(sorted(allowed))})" in text, text
    assert doctor.check_cpus().data["cpus"] == sorted(allowed)


def test_sched_fifo_refused_names_the_fix() -> None:
    c = doctor.check_sched_fifo(attempt=lambda: "Operation not permitted")
    assert c.verdict == LIMIT and "refused" in c.value
    assert "RLIMIT_RTPRIO" in c.advice or "cpu.rt_runtime_us" in c.advice
    assert doctor.check_sched_fifo(attempt=lambda: "").verdict == OK


def test_memlock(tmp_path: Path) -> None:
    put(tmp_path, "/proc/self/status", "Name:\tx\nCapEff:\t0000000000000000")
    c = doctor.check_memlock(str(tmp_path), limit=8 << 20)
    # an ordinary user's limit: what it costs and every way to lift it
    assert c.verdict == LIMIT and "8 MiB" in c.value and "run unlocked" in c.note
    for fix in ("ulimit -l unlimited", "memlock unlimited", "LimitMEMLOCK=infinity",
                "CAP_IPC_LOCK"):
        assert fix in c.advice, fix
    put(tmp_path, "/proc/self/status", f"CapEff:\t{1 << 14:016x}")      # CAP_IPC_LOCK
    assert doctor.check_memlock(str(tmp_path), limit=8 << 20).verdict == OK


def test_steal() -> None:
    before = {"cpu": [100, 0, 50, 800, 0, 0, 0, 0]}
    after = {"cpu": [200, 0, 100, 1600, 0, 0, 0, 100]}           # 100 of 1050 ticks stolen
    c = doctor.check_steal(before, after, during=True)
    assert c.verdict == WARN and "during the measurement" in c.value and "9.52%" in c.value
    assert doctor.check_steal(None, {"cpu": [100, 0, 50, 800, 0, 0, 0, 0]}, False).verdict == OK


# ------------------------------------------------------------------ verdict() and the measurement


def test_verdict_names_what_limits(tmp_path: Path) -> None:
    put(tmp_path, "/proc/sys/kernel/sched_rt_runtime_us", "950000")
    put(tmp_path, "/proc/sys/kernel/sched_rt_period_us", "1000000")
    text = doctor.verdict(0.0, root=str(tmp_path))
    assert text.splitlines()[0] == "what limits timing here (rtudp doctor):"
    assert "limit rt_throttle: 950000/1000000 µs" in text
    put(tmp_path, "/proc/sys/kernel/sched_rt_runtime_us", "-1")
    assert "rt_throttle" not in doctor.verdict(0.0, root=str(tmp_path))


def test_verdict_with_a_measurement() -> None:
    text = doctor.verdict(0.3)
    assert "C floor here: p99 " in text and "pauses > 10 µs" in text


def test_pause_scan_reports_pauses_over_the_threshold() -> None:
    scan = pause_scan(0.2)
    assert scan["reads"] > 1000
    # every pause counted is kept (up to MAX_PAUSES), each with its start
    assert len(scan["lengths_ns"]) == len(scan["starts_ns"]) == min(scan["count"], MAX_PAUSES)
    assert all(x > 10_000 for x in scan["lengths_ns"])
    assert all(0 <= t < 0.2e9 for t in scan["starts_ns"])
    # pauses are gaps between clock reads: in order, none overlapping the next
    ends = [t + x for t, x in zip(scan["starts_ns"], scan["lengths_ns"])]
    assert all(end <= nxt for end, nxt in zip(ends, scan["starts_ns"][1:])), scan["starts_ns"]


def test_pause_scan_rejects_bad_arguments() -> None:
    from rtudp.tools.bench._native import ffi, lib

    reads = ffi.new("uint64_t *")
    assert lib.rtudp_bench_pause_scan(-1, 10_000, 0, ffi.NULL, ffi.NULL, reads) < 0
    assert lib.rtudp_bench_pause_scan(1000, 10_000, 4, ffi.NULL, ffi.NULL, reads) < 0


def test_pause_figures_of_a_periodic_pause() -> None:
    """A 30 µs pause every 4 ms for 1 s: 250/s, spacing 4 ms, all periodic."""
    starts = [i * 4_000_000 for i in range(250)]
    figures = pause_figures([{"starts_ns": starts, "lengths_ns": [30_000] * 250, "count": 250,
                              "seconds": 1.0, "switched": 0}])
    assert figures["count"] == 250 and figures["per_s"] == pytest.approx(250)
    assert figures["spacing_ms"] == pytest.approx(4.0) and figures["periodic_share"] == 1.0
    assert figures["p50_us"] == figures["p99_us"] == figures["max_us"] == 30.0
    assert figures["lost_share"] == pytest.approx(250 * 30e3 / 1e9)


def _scan(lengths_ns: list[int], seconds: float = 1.0) -> dict:
    return {"starts_ns": [i * 10_000_000 for i in range(len(lengths_ns))],
            "lengths_ns": lengths_ns, "count": len(lengths_ns), "seconds": seconds,
            "switched": 0}


def test_long_pauses_are_the_ones_of_a_ms_or_more() -> None:
    ms = 1_000_000
    p = long_pauses([_scan([30_000, ms, 6 * ms]), _scan([999_999, 2 * ms])])
    assert p == {"count": 3, "per_s": 1.5, "max_ms": 6.0, "lost_ms": 9.0}
    assert long_pauses([_scan([50_000])])["count"] == 0


def test_the_scan_on_every_cpu_at_once_runs_one_loop_a_cpu() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    scans = scan_together(0.2, cpus)
    assert len(scans) == len(cpus)
    assert all(s["reads"] > 1000 and s["seconds"] == 0.2 for s in scans)
    assert sorted(os.sched_getaffinity(0)) == cpus  # the caller's own affinity untouched
    m = measure(0.8, cpus)
    if len(cpus) > 1:
        t = m["together"]
        assert t["seconds"] == pytest.approx(0.2) and len(t["per_cpu"]) == len(cpus)
        assert m["each_s"] == pytest.approx(0.6 / len(cpus) / 2)
        assert t["long"]["count"] == sum(e["long"]["count"] for e in t["per_cpu"])
    else:
        assert m["together"] is None and m["each_s"] == pytest.approx(0.4)


def test_verdict_says_when_the_host_stops_busy_vcpus() -> None:
    ms = 1_000_000
    m = {"floor": {"p99_us": 20.0, "p999_us": 300.0, "max_us": 6000.0},
         "pauses": {"per_s": 500.0, "p50_us": 30.0, "p99_us": 300.0, "count": 10,
                    "switched": 5},
         "long_alone": long_pauses([_scan([2 * ms], 2.0)]),                    # 0.5/s
         "together": {"seconds": 1.0, "long": long_pauses([_scan([6 * ms] * 4), _scan([])]),
                      "per_cpu": []}}                                         # 2.0/s a CPU
    result = {"measurement": m, "top": [], "virtual": True}
    assert host_stops_busy_vcpus(m)
    text = "\n".join(verdict_paragraph(result))
    assert "With every CPU busy at once the host stopped a vCPU for 1 ms or more 2.0 times " \
           "a second a CPU (longest 6.0 ms), against 0.5 one CPU at a time" in text
    # about as often alone: not the host's answer to busy vCPUs
    m["long_alone"] = long_pauses([_scan([2 * ms] * 3, 2.0)])                  # 1.5/s
    assert not host_stops_busy_vcpus(m)
    assert "With every CPU busy" not in "\n".join(verdict_paragraph(result))
    m["together"] = None
    assert not host_stops_busy_vcpus(m)


def test_a_failed_measurement_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from rtudp.tools import doctor_measure

    def fail(seconds: float) -> dict:
        raise OSError(99, "Cannot assign requested address")

    monkeypatch.setattr(doctor_measure, "measure", fail)
    result = doctor.doctor(0.1)
    assert result["measurement"] is None
    assert "Cannot assign requested address" in result["measurement_error"]
    assert [c.name for c in result["checks"]] == list(CHECK_NAMES)


def test_is_virtual(tmp_path: Path) -> None:
    from rtudp.tools.doctor_read import is_virtual

    assert is_virtual(str(tmp_path)) is None
    put(tmp_path, "/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu tsc hypervisor avx")
    assert is_virtual(str(tmp_path)) is True
    put(tmp_path, "/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu tsc avx")
    assert is_virtual(str(tmp_path)) is False
