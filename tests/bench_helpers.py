"""Running a benchmark the way a user does, for the tests that check its report."""
from __future__ import annotations

import json
import subprocess
import sys

from typing import Any, Callable

import pytest


def run_quick_json(name: str, timeout: float = 120, extra: tuple[str, ...] = (),
                   failed_ok: bool = False) -> tuple[dict, int]:
    """Run ``rtudp.tools.bench NAME --quick --json [EXTRA...]``; returns (report, its pid).
    It must exit 0, unless ``failed_ok``: then a non-zero exit is the caller's to judge
    from the report's ``failed`` section (a peer that is not installed), as long as the
    report came."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtudp.tools.bench", name, "--quick", "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"bench {name} --quick took over {timeout:.0f} s\nstderr:\n{err}")
    if failed_ok and proc.returncode != 0:
        try:
            report = json.loads(out)
        except ValueError:
            report = None
        if isinstance(report, dict) and report.get("failed"):
            return report, proc.pid
    assert proc.returncode == 0, f"exit {proc.returncode}\nstderr:\n{err}\nstdout:\n{out}"
    return json.loads(out), proc.pid


def positive(value: object) -> bool:
    """A figure a benchmark reports: a number above zero."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def case_entry(report: dict, entries: dict, key: str, installed: bool = True) -> dict | None:
    """Case ``key`` of ``entries`` (a section of ``report``): its figures, or None when
    the peer it measures is not ``installed`` (then the report must say so, and nothing
    else may have kept the case from running)."""
    entry = entries[key]
    if not installed:
        assert entry is None
        assert "not installed" in report["skipped"][key]
        return None
    assert entry is not None, f"{key}: {report['skipped'].get(key)}"
    return entry


def report_fixture(name: str, run: Callable[..., tuple[dict, int]] = run_quick_json,
                   **kwargs: Any) -> Any:
    """A module-scoped fixture: ``run(name, **kwargs)`` once, its (report, pid) shared by
    every test of the module (a quick run of benchmark ``name``)."""

    @pytest.fixture(scope="module")
    def report() -> tuple[dict, int]:
        return run(name, **kwargs)

    return report
