"""The README's Python examples run as pasted, in order, in one interpreter on one
machine: a user who pastes them one after the other gets no error (docs/guarantees.md,
"No root needed"; .ci/run runs this as nobody too).

Two blocks are servers that run until stopped (a ``while True`` loop, an ``async for``
over a channel): they are left out here, with the reason printed; the asyncio one runs
(and is stopped by a signal) in test_send_liveness.py.  The pool names the README uses
are made unique, so a run beside other tests touches no pool of theirs.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from rtudp.workers.registry import segment_files

README = Path(__file__).resolve().parent.parent / "README.md"
SERVERS = ("while True:", "async for ")

RUNNER = r"""
import json, sys
blocks = json.loads(sys.argv[1])
ns = {"__name__": "__readme__"}
for i, code in blocks:
    exec(compile(code, f"README block {i}", "exec"), ns)
    print(f"README block {i}: ok", flush=True)
"""


def python_blocks() -> list[tuple[int, str]]:
    """(index, code) of each ```python block of the README, in order."""
    return [(i, m.group(1)) for i, m in
            enumerate(re.finditer(r"```python\n(.*?)```", README.read_text(), re.S))]


def test_readme_python_blocks_run_in_order(shm_name):
    suffix = shm_name.replace(".", "_")[-12:]
    names = {n: f"{n}{suffix}" for n in ("lab", "shared", "voice")}
    run, left_out = [], []
    for i, code in python_blocks():
        if any(s in code for s in SERVERS):
            left_out.append(i)
            continue
        for old, new in names.items():
            code = code.replace(f'"{old}"', f'"{new}"')
        run.append((i, code))
    print(f"README blocks left out (servers that run until stopped): {left_out}")
    assert len(left_out) == 2, left_out
    rtudp = [sys.executable, "-m", "rtudp.tools.cli"]
    env = {**os.environ, "RTUDP_POOL": f"dflt{suffix}"}
    started = subprocess.run([*rtudp, "pool", "start", "--name", names["shared"]],
                             capture_output=True, text=True, timeout=120, env=env)
    assert started.returncode == 0, started.stderr
    try:
        out = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(run)],
                             capture_output=True, text=True, timeout=300, env=env)
    finally:
        subprocess.run([*rtudp, "pool", "stop", "--name", names["shared"]],
                       capture_output=True, timeout=120, env=env)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    assert out.stdout.count(": ok") == len(run), out.stdout
    for name in (*names.values(), f"dflt{suffix}"):
        assert segment_files(name) == [], name
