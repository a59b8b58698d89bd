"""Test-only channel kinds (tests/kinds/<name>/: their C, and their Python side as
<name>_kind.py): ``make kinds`` (tests/c/Makefile) builds them into a worker and into a
shared library of the engine, whose kind tables (csrc/kinds.c) give their layouts,
as the cffi extension gives the shipped kinds'."""
from __future__ import annotations

import pathlib
import subprocess
import sys
from dataclasses import dataclass

from cffi import FFI

from rtudp.shmring.kinds import Layout, layouts_from

ROOT = pathlib.Path(__file__).resolve().parent.parent
KINDS = ROOT / "tests" / "kinds"
BUILD_TIMEOUT_S = 300


@dataclass
class BuiltKinds:
    """What ``make kinds`` built: the worker, and every kind of that build by name."""

    worker: str
    layouts: dict[str, Layout]


def build(out: pathlib.Path) -> BuiltKinds:
    """Build the test kinds into ``out``; their Python sides become importable."""
    proc = subprocess.run(["make", "-s", "-C", str(ROOT / "tests" / "c"), f"BUILD={out}",
                           "kinds"], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                          check=False)
    assert proc.returncode == 0, f"make kinds failed:\n{proc.stdout}\n{proc.stderr}"
    sys.path.insert(0, str(ROOT / "csrc"))
    try:
        import build_ffi
    finally:
        sys.path.remove(str(ROOT / "csrc"))
    ffi = FFI()
    ffi.cdef("\n".join(build_ffi.cdef_blocks(("rtudp_shm.h", "ring.h", "kinds.h"))))
    lib = ffi.dlopen(str(out / "librtudp-kinds.so"))
    for folder in sorted(p for p in KINDS.iterdir() if p.is_dir()):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    return BuiltKinds(str(out / "rtudp-worker-kinds"), layouts_from(ffi, lib))
