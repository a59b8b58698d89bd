"""``rtudp doctor``: how well this machine can keep time, and what limits it.

One small function per check, each returning a :class:`Check` (data only; printing
is in :mod:`doctor_report`, the pause measurement in :mod:`doctor_measure`).  Every
check reads its files under ``root`` (``/`` here; tests pass a fake tree), and a
file that is missing or not readable gives the verdict ``unknown`` with the reason.

Verdicts: ``ok`` (does not limit timing), ``warn`` (costs latency; worth changing),
``limit`` (puts a hard bound on what real-time code can do here), ``unknown``.
A check that is not ``ok`` carries ``advice``: the sysctl, boot parameter or command
that changes it.

For other tools: :func:`verdict` returns a few lines naming what limits timing here
(``rtudp demo`` and ``rtudp bench timing`` can print it when their figures are off).
"""
from __future__ import annotations

import argparse
import os
import resource
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from .cli_args import ranged
from .doctor_read import (bracketed, cmdline_params, cpu_list, format_cpus, is_virtual,
                          kernel_config, kernel_release, kernel_version, list_dir, read_int,
                          read_text, under)

__all__ = ["Check", "OK", "WARN", "LIMIT", "UNKNOWN", "run_checks", "check_steal",
           "verdict", "doctor", "add_parser"]

OK, WARN, LIMIT, UNKNOWN = "ok", "warn", "limit", "unknown"
MIB = 1 << 20
#: socket buffer maxima below this get a warning
MIN_SOCKET_BUFFER = 4 * MIB
#: an idle state that takes longer than this to leave is a deep one
DEEP_IDLE_US = 10
#: steal above this share of the CPU time gets a warning
STEAL_WARN = 0.01
CAP_IPC_LOCK, CAP_SYS_NICE = 14, 23


@dataclass
class Check:
    """One finding: ``name`` (stable key), ``value`` (what was found), ``verdict``
    (ok / warn / limit / unknown), ``note`` (what it means for timing), ``advice``
    (what to change when not ok) and ``data`` (the raw figures)."""

    name: str
    value: str
    verdict: str
    note: str = ""
    advice: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The check as JSON-ready data."""
        return asdict(self)


def _unknown(name: str, why: str) -> Check:
    return Check(name, "unknown", UNKNOWN, note=why)


# ------------------------------------------------------------------ scheduler


def check_rt_throttle(root: str = "/") -> Check:
    """kernel.sched_rt_runtime_us / sched_rt_period_us: how long real-time tasks may
    hold a CPU in each period before the kernel stops them."""
    runtime, why1 = read_int(root, "/proc/sys/kernel/sched_rt_runtime_us")
    period, why2 = read_int(root, "/proc/sys/kernel/sched_rt_period_us")
    if runtime is None or period is None:
        return _unknown("rt_throttle", why1 or why2)
    data = {"runtime_us": runtime, "period_us": period}
    value = f"{runtime}/{period} µs"
    if runtime < 0 or runtime >= period:
        return Check("rt_throttle", value, OK, "real-time tasks are never throttled", data=data)
    share = runtime / period if period else 0.0
    return Check(
        "rt_throttle", value, LIMIT,
        f"a SCHED_FIFO task that holds a CPU more than {share:.0%} of a period is stopped "
        f"for the rest of it ({(period - runtime) / 1000:g} ms); rtudp workers spin at FIFO "
        f"only up to 88 % of a CPU to stay clear of it",
        "sysctl -w kernel.sched_rt_runtime_us=-1 (persist in /etc/sysctl.d/; a runaway "
        "real-time task can then hold its CPU for good)", data)


FAIR_SERVER = "/sys/kernel/debug/sched/fair_server"


def _fair_server_values(root: str) -> tuple[dict[str, tuple[int, int]], str]:
    """{"cpu0": (runtime_ns, period_ns), ...} from debugfs, or ({}, why not)."""
    cpus, why = list_dir(root, FAIR_SERVER)
    if cpus is None:
        return {}, why
    values = {}
    for cpu in [c for c in cpus if c.startswith("cpu")]:
        runtime, why_r = read_int(root, f"{FAIR_SERVER}/{cpu}/runtime")
        period, why_p = read_int(root, f"{FAIR_SERVER}/{cpu}/period")
        if runtime is None or period is None:
            return {}, why_r or why_p
        values[cpu] = (runtime, period)
    return values, "" if values else f"{FAIR_SERVER} lists no CPU"


def check_fair_server(root: str = "/") -> Check:
    """The fair server (deadline server for normal tasks, kernels >= 6.12)."""
    release = kernel_release(root)
    version = kernel_version(release)
    if version is None:
        return _unknown("fair_server", "kernel release unknown (/proc/sys/kernel/osrelease)")
    if version < (6, 12):
        return Check("fair_server", f"absent (kernel {release})", OK,
                     "kernels before 6.12 have no fair server", data={"release": release})
    base = FAIR_SERVER
    values, why = _fair_server_values(root)
    advice = (f"echo 0 > {base}/cpuN/runtime for the workers' CPUs (a starved normal task "
              "then waits for good), or keep workers leaving their CPU often (they do)")
    effect = ("it gives normal tasks starved by real-time ones up to 50 ms per second "
              "(the default) by preempting the real-time ones")
    if not values:
        mounts = read_text(root, "/proc/mounts")[0] or ""
        if not any(line.split()[2:3] == ["debugfs"] for line in mounts.splitlines()):
            why = "debugfs is not mounted (mount -t debugfs none /sys/kernel/debug)"
        lockdown = bracketed(read_text(root, "/sys/kernel/security/lockdown")[0])
        if lockdown and lockdown != "none":
            why += f"; kernel lockdown is {lockdown}"
        return Check("fair_server", f"present (kernel {release} >= 6.12), values unreadable",
                     WARN, f"{effect}; {why}", advice, {"release": release, "why": why})
    active = {cpu: rp for cpu, rp in values.items() if rp[0] > 0}
    text = ", ".join(f"{cpu} {r / 1e6:g}/{p / 1e6:g} ms" for cpu, (r, p) in values.items())
    data = {"release": release, "cpus": {c: {"runtime_ns": r, "period_ns": p}
                                         for c, (r, p) in values.items()}}
    if not active:
        return Check("fair_server", f"off ({text})", OK, "runtime 0 on every CPU", data=data)
    return Check("fair_server", text, LIMIT, effect, advice, data)


def check_preempt(root: str = "/") -> Check:
    """The kernel's preemption model (none / voluntary / full / lazy / rt)."""
    params, _ = cmdline_params(root)
    config, _ = kernel_config(root)
    version, _ = read_text(root, "/proc/sys/kernel/version")
    debug = bracketed(read_text(root, "/sys/kernel/debug/sched/preempt")[0])
    dynamic = config.get("CONFIG_PREEMPT_DYNAMIC") == "y" or "PREEMPT_DYNAMIC" in (version or "")
    model, source = None, ""
    if config.get("CONFIG_PREEMPT_RT") == "y" or "PREEMPT_RT" in (version or ""):
        model, source = "rt", "PREEMPT_RT kernel"
    elif debug:
        model, source = debug.strip("()"), "from /sys/kernel/debug/sched/preempt"
    elif dynamic and params and params.get("preempt"):
        model, source = params["preempt"], "preempt= on the kernel command line"
    else:
        for key, name in (("CONFIG_PREEMPT", "full"), ("CONFIG_PREEMPT_LAZY", "lazy"),
                          ("CONFIG_PREEMPT_VOLUNTARY", "voluntary"), ("CONFIG_PREEMPT_NONE", "none")):
            if config.get(key) == "y":
                model, source = name, f"kernel config {key}"
                if dynamic:
                    source += "; PREEMPT_DYNAMIC, so preempt= can change it"
                break
    if model is None:
        return _unknown("preempt", "no kernel config, debugfs or PREEMPT_RT marker readable")
    data = {"model": model, "dynamic": dynamic, "source": source}
    value = f"{model} ({source})"
    if model in ("full", "lazy", "rt"):
        return Check("preempt", value, OK, "a waking real-time task preempts kernel code",
                     data=data)
    return Check("preempt", value, WARN,
                 "a task inside the kernel keeps the CPU until its next preemption point "
                 "when a real-time worker wakes (up to milliseconds)",
                 "boot with preempt=full" if dynamic else
                 "a kernel built with CONFIG_PREEMPT (or PREEMPT_RT)", data)


AUTOGROUP_FILE = "/proc/sys/kernel/sched_autogroup_enabled"


def check_autogroup(root: str = "/") -> Check:
    """Scheduler autogroups: each session (a terminal, a daemon, a ``setsid``) scheduled
    as one group."""
    on, why = read_int(root, AUTOGROUP_FILE)
    alone = "every task competes on its own, whatever its session"
    if on is None:
        if not os.path.exists(under(root, "/proc/sys/kernel")):
            return _unknown("autogroup", why)
        return Check("autogroup", "not in this kernel", OK, alone)
    if not on:
        return Check("autogroup", "off", OK, alone, data={"enabled": False})
    return Check("autogroup", f"on ({AUTOGROUP_FILE})", WARN,
                 "each session (a terminal, a daemon, a setsid process) is scheduled as one "
                 "group; a process starting a session beside busy tasks was seen to wait "
                 "seconds for its first turn, its group runnable but not run (Linux 6.18: "
                 "a monitor in a tmux pane, a worker restart). rtudp's workers start no "
                 "session of their own",
                 "sysctl -w kernel.sched_autogroup_enabled=0 (or boot with noautogroup)",
                 {"enabled": True})


DAMON_DIR = "/sys/kernel/mm/damon/admin/kdamonds"


def check_kdamond(root: str = "/") -> Check:
    """A DAMON monitor (kdamond, a kernel thread: memory reclaim on VMs that give freed
    memory back to their host) that is running."""
    base = os.path.join(root, DAMON_DIR.lstrip("/"))
    try:
        names = sorted(n for n in os.listdir(base) if n.isdigit())
    except OSError:
        return Check("kdamond", "none (no DAMON in this kernel)", OK,
                     "no DAMON monitor can take a worker's CPU", data={"pids": []})
    pids = []
    for n in names:
        state, _ = read_text(root, f"{DAMON_DIR}/{n}/state")
        pid, _ = read_text(root, f"{DAMON_DIR}/{n}/pid")
        if state == "on" and pid and pid.isdigit():
            pids.append(int(pid))
    data = {"pids": pids}
    if not pids:
        return Check("kdamond", "none running", OK,
                     "no DAMON monitor can take a worker's CPU", data=data)
    listed = ", ".join(str(p) for p in pids)
    return Check("kdamond", f"running (pid {listed})", WARN,
                 "DAMON's kernel thread works in the kernel for 0.1-2.5 ms at a stretch "
                 "on whichever CPU it runs; unless the kernel preempts it (preempt=full), "
                 "a worker that wakes behind it waits that long (traced on a 2-vCPU VM: "
                 "180-300 µs after a worker's short sleep, up to 2.5 ms after it dropped "
                 "to SCHED_OTHER at its CPU cap)",
                 f"keep it off the pool's CPUs (taskset -pc <other CPUs> {pids[0]}), or "
                 "boot with preempt=full", data)


PAGE_REPORTING_DIR = "/sys/module/page_reporting/parameters"


def check_page_reporting(root: str = "/") -> Check:
    """Free page reporting (virtio-balloon): a guest that hands the memory it frees back
    to its host."""
    reported, _ = read_int(root, f"{PAGE_REPORTING_DIR}/reported_kib")
    if reported is None:
        return Check("page_reporting", "off (no free page reporting here)", OK,
                     "freed memory stays with this machine: freeing it stops nothing",
                     data={"reported_kib": None})
    order, _ = read_int(root, f"{PAGE_REPORTING_DIR}/page_reporting_order")
    value = f"on (blocks of {4 << (order or 0)} KiB and up; {reported / 2**20:,.1f} GiB " \
            f"handed back so far)"
    return Check("page_reporting", value, WARN,
                 "memory this machine frees in bulk (an emptied page cache, a large process "
                 "exiting) goes back to the host seconds later, and the host stops the vCPUs "
                 "for 10-30 ms at a time while it takes it (a plain C loop on each CPU saw "
                 "it: docs/measurements.md, \"Cold\"); sends due then leave that late",
                 "nothing inside the machine stops the host; keep bulk frees (drop_caches, "
                 "large copies) away from timed work, or ask for a host without it",
                 {"reported_kib": reported, "order": order})


# ------------------------------------------------------------------ idle, ticks, clock


def _idle_states(root: str) -> list[dict[str, Any]]:
    base = "/sys/devices/system/cpu/cpu0/cpuidle"
    states = []
    for entry in [e for e in list_dir(root, base)[0] or [] if e.startswith("state")]:
        name = read_text(root, f"{base}/{entry}/name")[0] or entry
        latency = read_int(root, f"{base}/{entry}/latency")[0]
        disabled = read_int(root, f"{base}/{entry}/disable")[0]
        states.append({"name": name, "latency_us": latency, "disabled": bool(disabled)})
    return states


def check_cpuidle(root: str = "/") -> Check:
    """The cpuidle driver, governor and idle states: how long a sleeping CPU takes to
    wake for a worker's deadline."""
    base = "/sys/devices/system/cpu/cpuidle"
    driver, why = read_text(root, f"{base}/current_driver")
    if driver is None:
        return _unknown("cpuidle", why)
    governor = (read_text(root, f"{base}/current_governor")[0]
                or read_text(root, f"{base}/current_governor_ro")[0] or "?")
    states = _idle_states(root)
    params, _ = cmdline_params(root)
    shown = ", ".join(f"{s['name']} {s['latency_us']} µs" + (" (off)" if s["disabled"] else "")
                      for s in states)
    value = f"driver {driver}, governor {governor}" + (f"; states {shown}" if shown else "")
    data = {"driver": driver, "governor": governor, "states": states}
    qos = ("hold /dev/cpu_dma_latency at 0 while timing matters (rtudp pools do when run "
           "as root: Pool(idle_poll=True), the default)")
    if driver == "none":
        if (params or {}).get("idle") == "poll":
            return Check("cpuidle", value, OK, "idle CPUs poll (idle=poll)", data=data)
        # the haltpoll driver registers by itself only when the host hints
        # KVM_HINTS_REALTIME; its force parameter is read at boot only
        haltpoll = os.path.isdir(under(root, "/sys/module/cpuidle_haltpoll"))
        data["haltpoll_built_in"] = haltpoll
        # without the idle time, workers time the others on their CPU from the
        # scheduler's switches (csrc/worker/cputrace.h): tracefs's event id, and root
        traced = any(os.access(under(root, f"{d}/events/sched/sched_switch/id"), os.R_OK)
                     for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"))
        data["sched_switch_traced"] = traced
        seen = ("workers time the other tasks on their CPU from the scheduler's switches "
                "instead of reading its idle time (worker idle_source 2)" if traced else
                "and with no sched_switch event in tracefs either, a worker cannot tell "
                "that nobody else wants its CPU: past its real-time cap it sleeps in 30 µs "
                "pieces even then (at 50 kpps about 1 packet in 8 up to ~40 µs late) "
                "instead of going on at SCHED_OTHER")
        return Check("cpuidle", value, WARN,
                     "no cpuidle driver: an idle CPU halts with no state that polls first "
                     "(/dev/cpu_dma_latency changes nothing), and the host wakes it tens of "
                     "µs late; rtudp workers keep their own CPUs polling while they serve "
                     "channels (an idle poller process at SCHED_IDLE: Pool(idle_poll=True), "
                     f"the default), other CPUs halt; {seen}",
                     ("boot with cpuidle_haltpoll.force=1 (the haltpoll driver is built into "
                      "this kernel)" if haltpoll else
                      "a kernel with a cpuidle driver (cpuidle-haltpoll on a KVM guest)")
                     + ("" if traced else "; meanwhile mount tracefs (mount -t tracefs nodev "
                        "/sys/kernel/tracing) so that workers see the scheduler's switches"),
                     data)
    if driver == "haltpoll":
        poll_ns = read_int(root, "/sys/module/haltpoll/parameters/guest_halt_poll_ns")[0]
        data["guest_halt_poll_ns"] = poll_ns
        if poll_ns is not None:
            value += f"; guest_halt_poll_ns {poll_ns}"
        ours = ("rtudp workers keep their own CPUs from long halts while they serve "
                "channels (an idle poller process at SCHED_IDLE: Pool(idle_poll=True), the "
                "default); other idle vCPUs halt" if poll_ns == 0 else
                "idle vCPUs poll up to guest_halt_poll_ns before they halt")
        return Check("cpuidle", value, WARN,
                     "a virtual machine: an idle vCPU halts and the host has to wake it "
                     f"again, tens of µs late; {ours}. Pools hold no /dev/cpu_dma_latency "
                     "request here: every idle vCPU would poll without end, and a host that "
                     "caps the VM's CPU time stops it for milliseconds (see pm_qos)",
                     "keep CPUs with time-critical threads busy or served by a pool; do not "
                     "hold /dev/cpu_dma_latency at 0 on a VM", data)
    deep = [s for s in states if not s["disabled"] and (s["latency_us"] or 0) > DEEP_IDLE_US]
    if not deep:
        return Check("cpuidle", value, OK, f"no enabled state takes over {DEEP_IDLE_US} µs "
                     "to leave", data=data)
    worst = max(deep, key=lambda s: s["latency_us"])
    return Check("cpuidle", value, WARN,
                 f"deep idle states: waking from {worst['name']} takes "
                 f"{worst['latency_us']} µs",
                 f"{qos}; or cpupower idle-set -D {DEEP_IDLE_US}; or boot with "
                 "intel_idle.max_cstate=1 processor.max_cstate=1", data)


def check_pm_qos(root: str = "/") -> Check:
    """Whether /dev/cpu_dma_latency (PM QoS CPU latency) exists and may be written."""
    path = "/dev/cpu_dma_latency"
    if not os.path.exists(under(root, path)):
        return _unknown("pm_qos", f"{path} not found (a kernel without PM QoS)")
    if is_virtual(root):
        # measured on the 2-vCPU VM: a C loop spinning on one CPU was stopped 8 / 3 / 4
        # times in 20 s for 1 ms or more (up to 9.6 ms) while idle vCPUs polled, 0 / 1 / 0
        # times without (csrc/worker/sched.c, rtudp_w_idle_poll)
        return Check("pm_qos", f"{path} present", OK,
                     "a virtual machine: pools do not hold the request, which would keep every "
                     "idle vCPU polling; a host that caps the VM's CPU time stops the whole VM "
                     "for it (up to ~10 ms, several times a minute, measured)")
    if os.access(under(root, path), os.W_OK):
        driver = read_text(root, "/sys/devices/system/cpu/cpuidle/current_driver")[0]
        if driver == "none":  # the idle loop asks no governor: the request is never read
            return Check("pm_qos", f"{path} writable", OK,
                         "pools hold the request while workers serve channels, but without "
                         "a cpuidle driver it changes nothing: workers run an idle poller "
                         "instead (see cpuidle)")
        return Check("pm_qos", f"{path} writable", OK,
                     "pools keep idle CPUs polling while workers serve channels")
    return Check("pm_qos", f"{path} not writable", WARN,
                 "a pool cannot keep idle CPUs polling: wake-ups from idle stay slow",
                 "run the pool as root (rtudp pool start), or give its user write access "
                 "to /dev/cpu_dma_latency (a udev rule)")


def check_hz(root: str = "/") -> Check:
    """CONFIG_HZ: how often a busy CPU takes the scheduler tick."""
    config, source = kernel_config(root)
    hz = config.get("CONFIG_HZ")
    if hz and hz.isdigit():
        how = source
    else:
        hz, how = _hz_from_timer_list(root), "estimated from /proc/timer_list"
        if hz is None:
            return _unknown("hz", f"no kernel config ({source}); /proc/timer_list unreadable")
    data = {"hz": int(hz), "source": how, "no_hz_full": config.get("CONFIG_NO_HZ_FULL") == "y"}
    return Check("hz", f"{hz} ({how})", OK,
                 f"a busy CPU takes a scheduler tick every {1000 / int(hz):g} ms (a few µs "
                 "each) unless it is nohz_full", data=data)


def _hz_from_timer_list(root: str, wait_s: float = 0.2) -> str | None:
    """HZ from the jiffies counter in /proc/timer_list, read twice ``wait_s`` apart."""
    import re
    import time

    def jiffies() -> tuple[int, float] | None:
        text = read_text(root, "/proc/timer_list")[0]
        m = re.search(r"^jiffies: (\d+)", text or "", re.M)
        return (int(m.group(1)), time.monotonic()) if m else None

    first = jiffies()
    if first is None:
        return None
    time.sleep(wait_s)
    second = jiffies()
    if second is None or second[1] <= first[1]:
        return None
    rate = (second[0] - first[0]) / (second[1] - first[1])
    return str(min((100, 250, 300, 1000), key=lambda hz: abs(hz - rate)))


def check_isolation(root: str = "/") -> Check:
    """isolcpus / nohz_full / rcu_nocbs: CPUs kept free of other work, ticks and RCU."""
    params, why = cmdline_params(root)
    if params is None:
        return _unknown("isolation", why)
    isolated = cpu_list(read_text(root, "/sys/devices/system/cpu/isolated")[0]
                        or params.get("isolcpus"))
    nohz = cpu_list(read_text(root, "/sys/devices/system/cpu/nohz_full")[0]
                    or params.get("nohz_full"))
    nocbs = cpu_list(params.get("rcu_nocbs"))
    data = {"isolcpus": isolated, "nohz_full": nohz, "rcu_nocbs": nocbs}
    if isolated or nohz:
        value = "; ".join(f"{k} {format_cpus(v)}" for k, v in data.items() if v)
        return Check("isolation", value, OK, "pin the pool to these CPUs (--cpus)", data=data)
    online = cpu_list(read_text(root, "/sys/devices/system/cpu/online")[0])
    config, _ = kernel_config(root)
    value = "none (no isolcpus, nohz_full or rcu_nocbs)"
    note = "workers share their CPUs with everything else: other tasks, ticks, RCU callbacks"
    if len(online) < 2:
        return Check("isolation", value, WARN, note, "a machine with a CPU to spare", data)
    spare = format_cpus(online[1:])
    advice = (f"boot with isolcpus=domain,managed_irq,{spare} nohz_full={spare} "
              f"rcu_nocbs={spare} and start the pool there (rtudp pool start --cpus {spare})")
    if config and config.get("CONFIG_NO_HZ_FULL") != "y":
        advice += "; nohz_full needs a kernel with CONFIG_NO_HZ_FULL (not set here)"
    return Check("isolation", value, WARN, note, advice, data)


def check_clocksource(root: str = "/") -> Check:
    """The clocksource behind CLOCK_MONOTONIC (tsc reads in ~20 ns without a syscall)."""
    base = "/sys/devices/system/clocksource/clocksource0"
    current, why = read_text(root, f"{base}/current_clocksource")
    if current is None:
        return _unknown("clocksource", why)
    available = (read_text(root, f"{base}/available_clocksource")[0] or "").split()
    data = {"current": current, "available": available}
    if current in ("tsc", "arch_sys_counter"):
        return Check("clocksource", current, OK, "clock reads are cheap and steady", data=data)
    advice = (f"echo tsc > {base}/current_clocksource (boot: clocksource=tsc tsc=reliable)"
              if "tsc" in available else
              f"none better offered here (available: {' '.join(available) or '?'}); a host "
              "that exposes an invariant TSC")
    return Check("clocksource", current, WARN,
                 "clock reads are slower or less steady than the TSC", advice, data)


# ------------------------------------------------------------------ privileges


def _capability(root: str, bit: int) -> bool | None:
    text = read_text(root, "/proc/self/status")[0]
    for line in (text or "").splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return None


def _try_fifo() -> str:
    """Try SCHED_FIFO priority 1 on a short-lived thread: "" if allowed, else why not."""
    result = ["not tried"]

    def attempt() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            result[0] = ""
        except OSError as exc:
            result[0] = exc.strerror or str(exc)

    t = threading.Thread(target=attempt, name="rtudp-doctor-fifo", daemon=True)
    t.start()
    t.join(5)
    return result[0]


def check_sched_fifo(root: str = "/", attempt: Callable[[], str] = _try_fifo) -> Check:
    """Whether this user may run SCHED_FIFO (tried on a short-lived thread)."""
    refused = attempt()
    rtprio = resource.getrlimit(resource.RLIMIT_RTPRIO)[0]
    cap = _capability(root, CAP_SYS_NICE)
    how = ", ".join(x for x in ("root" if os.geteuid() == 0 else "",
                                "CAP_SYS_NICE" if cap else "",
                                f"RLIMIT_RTPRIO {'unlimited' if rtprio < 0 else rtprio}") if x)
    data = {"allowed": not refused, "euid": os.geteuid(), "cap_sys_nice": cap, "rtprio": rtprio}
    if not refused:
        return Check("sched_fifo", f"allowed ({how})", OK, "workers get SCHED_FIFO", data=data)
    from rtudp.workers.process import fifo_privilege_hint

    return Check("sched_fifo", f"refused: {refused} ({how})", LIMIT,
                 "workers stay SCHED_OTHER: any other task can delay a send by a time slice",
                 fifo_privilege_hint(50), data)


def check_memlock(root: str = "/", limit: int | None = None) -> Check:
    """RLIMIT_MEMLOCK / CAP_IPC_LOCK: how much of a worker's memory can be locked.

    With no limit binding, a worker locks everything; under a finite limit without
    CAP_IPC_LOCK it locks its own start-up memory and each channel's rings while they
    fit (csrc/worker/sched.c, LOCK_BOUNDED): channels past the limit open and run,
    unlocked.  A pool started by this user warns once of the same
    (rtudp.workers.privileges)."""
    from rtudp.workers.privileges import memlock_fix, memlock_text

    soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0] if limit is None else limit
    cap = _capability(root, CAP_IPC_LOCK)
    limit_text = "unlimited" if soft == resource.RLIM_INFINITY else memlock_text(soft)
    data = {"rlimit_memlock": soft, "cap_ipc_lock": cap}
    if cap or soft == resource.RLIM_INFINITY:
        why = "CAP_IPC_LOCK" if cap else "RLIMIT_MEMLOCK unlimited"
        return Check("memlock", f"no limit ({why}; RLIMIT_MEMLOCK {limit_text})",
                     OK, "workers lock all their memory: no page faults on the real-time path",
                     data=data)
    return Check("memlock", f"RLIMIT_MEMLOCK {limit_text}, no CAP_IPC_LOCK", LIMIT,
                 f"workers lock their own memory and each channel's rings only while the "
                 f"total fits in {limit_text} (a channel of the default size takes about 6 "
                 f"MiB); channels past it run unlocked: a page fault (reclaim, "
                 f"swap) can then delay a send by milliseconds",
                 memlock_fix(), data)


# ------------------------------------------------------------------ memory, network, CPUs


def check_socket_buffers(root: str = "/") -> Check:
    """net.core.rmem_max / wmem_max: the most a socket may ask for."""
    rmem, why1 = read_int(root, "/proc/sys/net/core/rmem_max")
    wmem, why2 = read_int(root, "/proc/sys/net/core/wmem_max")
    if rmem is None or wmem is None:
        return _unknown("socket_buffers", why1 or why2)
    value = f"rmem_max {rmem / MIB:g} MiB, wmem_max {wmem / MIB:g} MiB"
    data = {"rmem_max": rmem, "wmem_max": wmem}
    if min(rmem, wmem) >= MIN_SOCKET_BUFFER:
        return Check("socket_buffers", value, OK, "room for bursts", data=data)
    return Check("socket_buffers", value, WARN,
                 f"below {MIN_SOCKET_BUFFER // MIB} MiB: a burst or a slow reader overflows "
                 "the socket and packets are dropped",
                 "sysctl -w net.core.rmem_max=8388608 net.core.wmem_max=8388608 (persist in "
                 "/etc/sysctl.d/)", data)


def check_shm_hugepages(root: str = "/") -> Check:
    """Transparent huge pages for /dev/shm (where the rings live)."""
    enabled, why = read_text(root, "/sys/kernel/mm/transparent_hugepage/shmem_enabled")
    if enabled is None:
        return _unknown("shm_hugepages", why)
    setting = bracketed(enabled) or "?"
    mounts = read_text(root, "/proc/mounts")[0] or ""
    huge = "never"
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[1] == "/dev/shm":
            huge = next((o.split("=", 1)[1] for o in fields[3].split(",")
                         if o.startswith("huge=")), "never")
    value = f"shmem_enabled {setting}, /dev/shm huge={huge}"
    data = {"shmem_enabled": setting, "dev_shm_huge": huge}
    if setting == "force" or (setting != "deny" and huge in ("always", "within_size")):
        return Check("shm_hugepages", value, OK, "rings of 2 MiB and more use huge pages",
                     data=data)
    return Check("shm_hugepages", value, WARN,
                 "rings use 4 KiB pages: more TLB misses on big rings (a small cost)",
                 "mount -o remount,huge=within_size /dev/shm", data)


def check_cpus(allowed: set[int] | None = None, max_workers: int | None = None) -> Check:
    """The CPUs this process may use and what a default pool starts on them."""
    cpus = sorted(os.sched_getaffinity(0) if allowed is None else allowed)
    if max_workers is None:
        from rtudp.shmring._native import lib

        max_workers = int(lib.RTUDP_MAX_WORKERS)
    workers = min(len(cpus), max_workers)
    value = f"{len(cpus)} CPUs ({format_cpus(cpus)}); a default pool starts {workers} workers"
    data = {"cpus": cpus, "default_workers": workers}
    if len(cpus) == 1:
        return Check("cpus", value, LIMIT,
                     "one CPU: the worker, the Python caller and everything else share it",
                     "a machine (or affinity) with more CPUs", data)
    if workers < len(cpus):
        return Check("cpus", value, OK, "CPUs left over for callers", data=data)
    return Check("cpus", value, WARN,
                 f"one SCHED_FIFO worker on each of the {len(cpus)} CPUs: a Python caller "
                 "always shares a CPU with a real-time worker, which takes it whenever it "
                 "has work",
                 f"for the lowest timed-send p99, give the pool fewer CPUs "
                 f"(rtudp.Pool(cpus=[{format_cpus(cpus[1:])}]), rtudp pool start --cpus "
                 f"{format_cpus(cpus[1:])}) and keep callers on CPU {cpus[0]} "
                 "(os.sched_setaffinity); the default, a worker on each CPU, keeps round "
                 "trips between channels fast and gives netflux its standby worker "
                 "(rtudp bench placement measures both here)", data)


def check_steal(before: dict[str, list[int]] | None, after: dict[str, list[int]] | None,
                during: bool) -> Check:
    """Steal time (the hypervisor running something else on our vCPUs) between two
    /proc/stat readings (``before`` None: since boot)."""
    if after is None or "cpu" not in after:
        return _unknown("steal", "/proc/stat unreadable")
    shares = {}
    for cpu, now in after.items():
        then = (before or {}).get(cpu, [0] * len(now))
        total = sum(now) - sum(then)
        shares[cpu] = ((now[7] - then[7]) / total if total > 0 and len(now) > 7 else 0.0)
    # per CPU with the total's precision: "0.00% (cpu0 0.0%, cpu1 0.4%)" reads as a sum
    per_cpu = ", ".join(f"{c} {s:.2%}" for c, s in shares.items() if c != "cpu")
    when = "during the measurement" if during else "since boot"
    value = f"{shares['cpu']:.2%} of CPU time {when}" + (f" ({per_cpu})" if per_cpu else "")
    data = {"share": shares, "during_measurement": during}
    if shares["cpu"] <= STEAL_WARN:
        return Check("steal", value, OK,
                     "the hypervisor rarely ran others on these vCPUs (short host pauses are "
                     "not counted as steal: see the pauses)", data=data)
    return Check("steal", value, WARN, "the hypervisor ran other work on these vCPUs",
                 "ask the host for dedicated (pinned) vCPUs; nothing in the guest changes it",
                 data)


#: the checks that read the machine, in the order they are printed (steal comes after
#: the measurement, which it brackets)
CHECKS: tuple[Callable[[str], Check], ...] = (
    check_rt_throttle, check_fair_server, check_preempt, check_autogroup, check_kdamond,
    check_page_reporting,
    check_cpuidle, check_pm_qos,
    check_hz, check_isolation, check_clocksource, check_sched_fifo, check_memlock,
    check_socket_buffers, check_shm_hugepages)


def run_checks(root: str = "/", cpus: Iterable[int] | None = None) -> list[Check]:
    """Every machine check (without steal and the measurement); a check that fails in
    an unforeseen way is reported ``unknown`` with the error, never raised.  ``cpus``:
    the CPUs this process may use (default: this thread's affinity)."""
    out = []
    allowed = None if cpus is None else set(cpus)
    for fn in (*CHECKS, lambda _root: check_cpus(allowed)):
        try:
            out.append(fn(root))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the rest
            name = getattr(fn, "__name__", "check").removeprefix("check_")
            out.append(_unknown(name, f"{type(exc).__name__}: {exc}"))
    return out


def doctor(seconds: float = 0.0, root: str = "/",
           on_checks: Callable[[list[Check]], None] | None = None,
           cpus: Iterable[int] | None = None) -> dict[str, Any]:
    """All checks, steal time and (``seconds`` > 0) the pause measurement, as data:
    ``checks`` (list of :class:`Check`, steal last), ``measurement`` (dict or None),
    ``measurement_error`` (why it failed, or ""), ``top`` (the checks worth changing
    first), ``virtual`` (True in a virtual machine, None if unknown).  ``on_checks`` gets the machine checks
    before the measurement starts; ``cpus``: as :func:`run_checks`."""
    from . import doctor_measure

    checks = run_checks(root, cpus)
    if on_checks:
        on_checks(checks)
    before = doctor_measure.read_cpu_times(root)
    measurement, error = None, ""
    if seconds > 0:
        try:
            measurement = doctor_measure.measure(seconds)
        except Exception as exc:  # noqa: BLE001 - the checks are still worth printing
            error = f"{type(exc).__name__}: {exc}"
    after = doctor_measure.read_cpu_times(root)
    checks.append(check_steal(before if seconds > 0 else None, after, seconds > 0))
    return {"checks": checks, "measurement": measurement, "measurement_error": error,
            "top": top_checks(checks), "virtual": is_virtual(root)}


#: how much each check's fix tends to buy, most first (for the top of the list); the RT
#: throttle comes after what costs every deadline, since workers stay below it by design
RANK = ("sched_fifo", "cpus", "steal", "cpuidle", "preempt", "rt_throttle", "fair_server",
        "isolation", "clocksource", "pm_qos", "memlock", "socket_buffers", "hz",
        "shm_hugepages")


def top_checks(checks: list[Check], n: int = 5) -> list[Check]:
    """The checks that are not ok (warn or limit), in the order of :data:`RANK`."""
    rank = {name: i for i, name in enumerate(RANK)}
    bad = [c for c in checks if c.verdict in (LIMIT, WARN)]
    return sorted(bad, key=lambda c: rank.get(c.name, len(rank)))[:n]


def verdict(measure_seconds: float = 0.0, root: str = "/",
            cpus: Iterable[int] | None = None) -> str:
    """A few lines naming what limits timing on this machine (for ``rtudp demo`` and
    ``rtudp bench timing`` when their figures are off): the checks that are not ok,
    most important first, and with ``measure_seconds`` > 0 the C floor's p99 / p99.9
    and pause rate.  Never raises for an unreadable file; takes ~0.1 s plus
    ``measure_seconds``.  ``cpus``: as :func:`run_checks` (a pool's
    ``allowed_cpus`` while its thread placement may have moved this thread)."""
    from .doctor_report import verdict_lines

    return "\n".join(verdict_lines(doctor(measure_seconds, root, cpus=cpus)))


def what_it_measures(seconds: float) -> str:
    """The first lines of the report: what is read and measured, for whom."""
    user = f"uid {os.geteuid()}" + (" (root)" if os.geteuid() == 0 else "")
    text = (f"rtudp doctor: reads the kernel's scheduling, idle, clock, timer and network "
            f"settings and this user's limits ({user}: RLIMIT_RTPRIO, RLIMIT_MEMLOCK, "
            f"capabilities), rates each (ok / warn / limit / unknown) and says what to "
            f"change")
    if seconds > 0:
        text += (f"; then, for {seconds:g} s, spins a C loop on each CPU to time the pauses "
                 f"the CPUs are taken away for, and runs a C sender that busy-waits to each "
                 f"deadline (50 kpps on loopback): the best send lateness here.  Figures are "
                 f"this run's; other load on the machine shows in them")
    return text + "."


def _run(args: argparse.Namespace, _rest: list[str]) -> int:
    from .doctor_report import print_checks, print_json, print_rest

    if args.json:
        print_json(doctor(args.seconds, args.root))
        return 0
    print(what_it_measures(args.seconds) + "\n", flush=True)

    def early(checks: list[Check]) -> None:
        print_checks(checks)
        if args.seconds > 0:
            print(f"measuring this machine's pauses for {args.seconds:g} s ...", flush=True)

    print_rest(doctor(args.seconds, args.root, on_checks=early))
    return 0


def add_parser(sub: Any) -> None:
    """Register ``rtudp doctor`` on the top-level subparsers."""
    d = sub.add_parser(
        "doctor", help="how well this machine keeps time, and what limits it",
        description="Checks what limits real-time timing here (RT throttle, fair server, "
                    "preemption, cpuidle, ticks, isolation, clocksource, privileges, socket "
                    "buffers, huge pages, CPUs, steal), each with a verdict (ok / warn / "
                    "limit / unknown) and what to change; then measures how often and how "
                    "long the CPU is taken away (a C spin on the clock) and the best send "
                    "lateness a C busy-wait sender gets at 50 kpps.")
    d.add_argument("--seconds", type=ranged(float, "seconds", 0, 600.0), default=5.0, metavar="S",
                   help="length of the measurement (default 5; 0 skips it)")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.add_argument("--root", default="/", metavar="DIR",
                   help="read /proc, /sys, /boot and /dev under DIR (default /; for tests)")
    d.set_defaults(func=_run)
