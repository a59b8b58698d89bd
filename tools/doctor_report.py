"""Printing ``rtudp doctor``'s findings: one line a check, the measurement, the verdict
paragraph; the same as JSON; and the short lines of :func:`rtudp.tools.doctor.verdict`."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .doctor_measure import LONG_PAUSE_NS

if TYPE_CHECKING:
    from .doctor import Check

__all__ = ["fmt_us", "check_line", "measurement_lines", "host_stops_busy_vcpus",
           "verdict_paragraph", "print_checks", "print_rest", "print_report", "print_json",
           "verdict_lines"]


def fmt_us(v: float | None) -> str:
    """µs as a short figure: ``4.2 µs``, ``180 µs``, ``2.1 ms``, ``-``."""
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v / 1000:.1f} ms"
    return f"{v:.1f} µs" if v < 10 else f"{v:.0f} µs"


def check_line(c: Check) -> str:
    """``verdict  name  value: note`` and, when not ok, ``-> fix: advice``."""
    line = f"{c.verdict:<7} {c.name:<15} {c.value}" + (f": {c.note}" if c.note else "")
    if c.verdict != "ok" and c.advice:
        line += f" -> fix: {c.advice}"
    return line


def _hz(checks: list[Check]) -> int | None:
    return next((c.data.get("hz") for c in checks if c.name == "hz"), None)


def _pause_text(p: dict[str, Any], hz: int | None) -> str:
    if not p["count"]:
        return "none"
    spacing = p["spacing_ms"]
    periodic = ""
    if spacing and (p["periodic_share"] or 0) >= 0.5:
        periodic = f", periodic ({p['periodic_share']:.0%} of spacings within 2 %)"
    if spacing and hz and abs(spacing - 1000 / hz) <= 0.05 * 1000 / hz:
        periodic += f": the scheduler tick (HZ {hz})"
    return (f"{p['count']} ({p['per_s']:.0f}/s), typical spacing "
            f"{'-' if spacing is None else f'{spacing:.2f} ms'}{periodic}; length p50 "
            f"{fmt_us(p['p50_us'])}, p99 {fmt_us(p['p99_us'])}, max {fmt_us(p['max_us'])}; "
            f"away {p['lost_share']:.2%} of the time; {p['switched']} involuntary switches "
            "to other tasks")


def _floor_text(f: dict[str, Any]) -> str:
    return (f"p50 {fmt_us(f['p50_us'])}, p90 {fmt_us(f['p90_us'])}, p99 {fmt_us(f['p99_us'])}, "
            f"p99.9 {fmt_us(f['p999_us'])}, max {fmt_us(f['max_us'])} ({f['packets']} packets)")


def measurement_lines(m: dict[str, Any], checks: list[Check]) -> list[str]:
    """The pause and C floor figures, over all CPUs and per CPU."""
    hz = _hz(checks)
    each = m["each_s"]
    lines = [f"pauses: the CPU taken away for more than {m['over_us']:g} µs (a C loop "
             f"spinning on the clock, SCHED_OTHER, {each:.2g} s on each of CPUs "
             f"{', '.join(map(str, m['cpus']))})",
             f"  all   {_pause_text(m['pauses'], hz)}"]
    if len(m["per_cpu"]) > 1:
        lines += [f"  cpu{e['cpu']:<2} {_pause_text(e['pauses'], hz)}" for e in m["per_cpu"]]
    lines += [f"C floor: send lateness of a C loop that spins to each deadline and sends "
              f"({m['floor_rate_pps'] // 1000} kpps on loopback, {each:.2g} s a CPU)",
              f"  all   {_floor_text(m['floor'])}"]
    if len(m["per_cpu"]) > 1:
        lines += [f"  cpu{e['cpu']:<2} {_floor_text(e['floor'])}" for e in m["per_cpu"]]
    together = m.get("together")
    if together:
        lines += [f"long pauses ({LONG_MS:g} ms or more: the host stopped the vCPU)",
                  f"  one CPU at a time       {_long_text(m['long_alone'])}",
                  f"  every CPU busy at once  {_long_text(together['long'])} "
                  f"({together['seconds']:.2g} s, a loop on each of CPUs "
                  f"{', '.join(map(str, m['cpus']))})"]
        lines += [f"    cpu{e['cpu']:<2} {_long_text(e['long'])}" for e in together["per_cpu"]]
    return lines


#: a long pause, in ms (for the text)
LONG_MS = LONG_PAUSE_NS / 1e6


def _long_text(p: dict[str, Any]) -> str:
    if not p["count"]:
        return "none"
    return (f"{p['count']} ({p['per_s']:.1f}/s a CPU), longest {p['max_ms']:.1f} ms, "
            f"{p['lost_ms']:.1f} ms in all")


def host_stops_busy_vcpus(m: dict[str, Any]) -> bool:
    """True when the scan on every CPU at once saw long pauses at least twice, and at
    three times the rate of the scans one CPU at a time (or more)."""
    together = m.get("together")
    if not together:
        return False
    t, alone = together["long"], m["long_alone"]
    return t["count"] >= 2 and t["per_s"] >= 3 * alone["per_s"]


def verdict_paragraph(result: dict[str, Any]) -> list[str]:
    """What send lateness this machine gives at best, and the top things to change."""
    m = result["measurement"]
    lines = ["verdict:"]
    if m:
        f, p = m["floor"], m["pauses"]
        lines.append(
            f"  At best this machine gives a send lateness of p99 {fmt_us(f['p99_us'])} and "
            f"p99.9 {fmt_us(f['p999_us'])} (max {fmt_us(f['max_us'])}): that is what a C "
            "loop doing nothing but spin and send got here; rtudp's workers add their "
            "wake-ups on top (rtudp bench timing measures both).")
        lines.append(
            f"  The CPU was taken away {p['per_s']:.0f} times a second (p50 "
            f"{fmt_us(p['p50_us'])}, p99 {fmt_us(p['p99_us'])}); a pause longer than a "
            "packet gap makes every packet due in it late.")
        if p["count"] and p["switched"] < p["count"] / 10:
            rest = ("interrupts or the host stopping the vCPU, which no setting in this "
                    "machine removes (dedicated host cores would)" if result.get("virtual")
                    else "interrupts (isolcpus=managed_irq,... and irqaffinity= move them "
                    "off the workers' CPUs)")
            lines.append(f"  Only {p['switched']} of the {p['count']} pauses were another "
                         f"task: the rest were {rest}.")
        if host_stops_busy_vcpus(m):
            t, alone = m["together"]["long"], m["long_alone"]
            lines.append(
                f"  With every CPU busy at once the host stopped a vCPU for {LONG_MS:g} ms or "
                f"more {t['per_s']:.1f} times a second a CPU (longest {t['max_ms']:.1f} ms), "
                f"against {alone['per_s']:.1f} one CPU at a time: this host stops a VM's vCPUs "
                "when all of them are busy, as a pool's are under load.  Those pauses decide "
                "rtudp's p99.9 and max here (the workers count them: host_pauses in "
                "Pool.workers(), rtstat --json, rtudp metrics and the demo's 'why'); nothing inside the VM removes them, a host that "
                "gives each vCPU a core of its own does.")
    elif result.get("measurement_error"):
        lines.append(f"  (the measurement failed: {result['measurement_error']})")
    else:
        lines.append("  (no measurement: --seconds 0)")
    top = result["top"]
    if not top:
        lines.append("  Nothing found here that limits timing.")
        return lines
    lines.append("  Top things to change:")
    lines += [f"  {i}. {c.name} ({c.verdict}): {c.advice or c.note}"
              for i, c in enumerate(top, 1)]
    return lines


def print_checks(checks: list[Check]) -> None:
    """One line a check."""
    for c in checks:
        print(check_line(c), flush=True)


def print_rest(result: dict[str, Any]) -> None:
    """What follows the machine checks: steal, the measurement, the verdict."""
    checks = result["checks"]
    print_checks([c for c in checks if c.name == "steal"])
    if result["measurement"]:
        print()
        for line in measurement_lines(result["measurement"], checks):
            print(line)
    print()
    for line in verdict_paragraph(result):
        print(line)


def print_report(result: dict[str, Any]) -> None:
    """The whole human-readable report."""
    print_checks([c for c in result["checks"] if c.name != "steal"])
    print_rest(result)


def print_json(result: dict[str, Any]) -> None:
    """The report as one JSON object: ``checks`` (name, value, verdict, note, advice,
    data), ``measurement`` (or null), ``measurement_error`` ("" unless it failed),
    ``top`` (names of the checks to change first), ``virtual`` (a VM: true/false/null)."""
    print(json.dumps({"checks": [c.to_dict() for c in result["checks"]],
                      "measurement": result["measurement"],
                      "measurement_error": result.get("measurement_error", ""),
                      "top": [c.name for c in result["top"]],
                      "virtual": result.get("virtual")}, indent=2))


def verdict_lines(result: dict[str, Any]) -> list[str]:
    """A few lines for :func:`rtudp.tools.doctor.verdict`."""
    lines = ["what limits timing here (rtudp doctor):"]
    lines += [f"  {c.verdict} {c.name}: {c.value}" + (f" - {c.note}" if c.note else "")
              for c in result["top"]]
    if len(lines) == 1:
        lines.append("  nothing found")
    m = result["measurement"]
    if m:
        f, p = m["floor"], m["pauses"]
        lines.append(f"  C floor here: p99 {fmt_us(f['p99_us'])}, p99.9 {fmt_us(f['p999_us'])}; "
                     f"pauses > {m['over_us']:g} µs: {p['per_s']:.0f}/s, p50 "
                     f"{fmt_us(p['p50_us'])}, max {fmt_us(p['max_us'])}")
    return lines
