"""Running a benchmark the way a user does, for the tests that check its report."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run_quick_json(name: str, timeout: float = 120, extra: tuple[str, ...] = ()
                   ) -> tuple[dict, int]:
    """Run ``rtudp.tools.bench NAME --quick --json [EXTRA...]``; returns (report, its pid)."""
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
    assert proc.returncode == 0, f"exit {proc.returncode}\nstderr:\n{err}\nstdout:\n{out}"
    return json.loads(out), proc.pid


def positive(value: object) -> bool:
    """A figure a benchmark reports: a number above zero."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
