"""Build and run the C unit tests of the shared-memory rings (tests/c/).

* every ``test_*`` program (test_ring: csrc/ring.c's MPSC and broadcast rings, threads,
  corruption; ...) must exit 0 and end with "N passed, 0 failed, K skipped".  A program
  whose tests skipped (what this machine lacks, each named with its reason on a
  "skipped NAME: REASON" line) is reported skipped here with those reasons, after its
  other tests passed; in CI the program itself fails on a skip RTUDP_EXPECTED_SKIPS does
  not name, and the suite's skip policy (conftest.py) holds for this skip too.
* ``test_layout`` prints the C compiler's sizeof/offsetof of every struct in the
  headers' CDEF blocks; each number must equal what cffi (the Python side) uses.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CDIR = ROOT / "tests" / "c"
CSRC = ROOT / "csrc"
# headers whose CDEF blocks cffi is given (csrc/build_ffi.py), minus the bench one
LAYOUT_HEADERS = ("rtudp_shm.h", "ring.h", "impair.h", "proto/rtp_area.h", "proto/netflux_shm.h",
                  "proto/udt_area.h")

BUILD_TIMEOUT_S = 300
RING_TIMEOUT_S = 120  # the program itself should take well under 60 s
LAYOUT_TIMEOUT_S = 30

_CDEF = re.compile(r"/\* BEGIN CDEF \*/(.*?)/\* END CDEF \*/", re.S)
_STRUCT = re.compile(r"^struct\s+(rtudp_\w+)\s*\{", re.M)
_SUMMARY = re.compile(r"^(\d+) passed, 0 failed, (\d+) skipped$")


def cdef_structs() -> list[str]:
    """Names of the structs defined in the CDEF blocks of the layout headers."""
    names: list[str] = []
    for header in LAYOUT_HEADERS:
        for block in _CDEF.findall((CSRC / header).read_text()):
            names.extend(_STRUCT.findall(block))
    return names


STRUCTS = cdef_structs()


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run cmd, capturing text output; a hang fails the test instead of blocking it."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{cmd[0]} did not finish within {timeout} s:\n{exc.stdout}\n{exc.stderr}")


@pytest.fixture(scope="module")
def c_build(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Build both test programs out of tree; skip only when there is no C compiler."""
    if shutil.which("cc") is None:
        reason = "no C compiler: `cc` is not on PATH, the C unit tests cannot be built"
        print(reason, file=sys.stderr)
        pytest.skip(reason)
    build = tmp_path_factory.mktemp("ctest")
    jobs = str(len(os.sched_getaffinity(0)))
    proc = _run(["make", "-j", jobs, "-C", str(CDIR), f"BUILD={build}", "all"], BUILD_TIMEOUT_S)
    assert proc.returncode == 0, f"building the C tests failed:\n{proc.stdout}\n{proc.stderr}"
    return build


C_TESTS = sorted(p.stem for p in CDIR.glob("test_*.c") if p.stem != "test_layout")


@pytest.mark.parametrize("program", C_TESTS)
def test_c_program(c_build: pathlib.Path, program: str) -> None:
    """Every test of a C test program passes or is skipped for a named reason (its last
    line is 'N passed, 0 failed, K skipped'); the skips are this test's skip reason."""
    proc = _run([str(c_build / program)], RING_TIMEOUT_S)
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, report
    lines = proc.stdout.strip().splitlines()
    assert lines, report
    match = _SUMMARY.match(lines[-1])
    assert match, f"last line is not 'N passed, 0 failed, K skipped':\n{report}"
    passed, skipped = int(match.group(1)), int(match.group(2))
    assert passed + skipped > 0, report
    assert passed == sum(1 for line in lines if line.startswith("ok ")), report
    assert skipped == sum(1 for line in lines if line.startswith("skip ")), report
    reasons = [line[len("skipped "):] for line in lines if line.startswith("skipped ")]
    assert len(reasons) == skipped, report
    if reasons:
        pytest.skip(f"{program}: {skipped} of {passed + skipped} tests skipped, the others "
                    f"passed: " + "; ".join(reasons))


@pytest.fixture(scope="module")
def c_layout(c_build: pathlib.Path) -> dict[str, Any]:
    """The C compiler's layout table, as printed by test_layout."""
    proc = _run([str(c_build / "test_layout")], LAYOUT_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_layout_lists_every_struct(c_layout: dict[str, Any]) -> None:
    """test_layout.c covers exactly the structs of the CDEF blocks."""
    assert STRUCTS, "no structs found in the CDEF blocks"
    assert sorted(c_layout) == sorted(STRUCTS)


@pytest.mark.parametrize("name", STRUCTS)
def test_layout_matches_cffi(c_layout: dict[str, Any], name: str) -> None:
    """sizeof and every field offset agree between the C compiler and cffi."""
    from rtudp.shmring._native import ffi

    ctype = f"struct {name}"
    entry = c_layout[name]
    assert entry["sizeof"] == ffi.sizeof(ctype), f"sizeof({ctype})"
    # every field cffi knows is in the C table, and no other
    cffi_fields = [field for field, _ in ffi.typeof(ctype).fields]
    assert sorted(entry["fields"]) == sorted(cffi_fields), f"fields of {ctype}"
    for field, offset in entry["fields"].items():
        assert offset == ffi.offsetof(ctype, field), f"offsetof({ctype}, {field})"
