"""cffi builder for ``rtudp.shmring._native`` (API mode, out of line).

What Python may call is exactly the ``BEGIN CDEF`` .. ``END CDEF`` blocks of the C
headers, so the layout and the functions are declared once, in C.  The channel kinds
come from ``proto/kinds.def``: their ``RTUDP_KIND_*`` codes, and each kind's own
files (its area header's CDEF block, the sources Python calls).
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

CSRC = pathlib.Path(__file__).resolve().parent
KINDS_DEF = CSRC / "proto" / "kinds.def"
#: the engine's headers and sources; the kinds' own files are added from kinds.def
#: (the benchmarks' C loops are another extension's: bench/build_ffi.py)
ENGINE_HEADERS = ("rtudp_shm.h", "ring.h", "kinds.h", "segment.h", "hist.h", "readers.h",
                  "memlock.h", "async_wait.h", "impair.h", "worker/tunables.h", "worker/mechanisms.h")
ENGINE_SOURCES = ("ring.c", "segment.c", "kinds.c", "hist.c", "readers.c", "procstat.c",
                  "memlock.c", "async_wait.c", "impair.c", "worker/tunables.c", "worker/mechanisms.c")
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]

_CDEF = re.compile(r"/\* BEGIN CDEF \*/(.*?)/\* END CDEF \*/", re.S)
_KIND = re.compile(r"^RTUDP_KIND\((.*)\)\s*$")
_ARG = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[^,]+?)\s*(?:,|$)')
_COND = re.compile(r"^#\s*(ifdef|ifndef|endif|else)\b\s*(\w*)")


def kinds(defines: tuple[str, ...] = ()) -> list[dict[str, object]]:
    """The lines of ``proto/kinds.def`` as dicts (NAME, name, code, prefix, area, ffi), the
    ones under ``#ifdef X`` only when X is in ``defines`` (as the C preprocessor would)."""
    out: list[dict[str, object]] = []
    live = [True]
    for n, line in enumerate(KINDS_DEF.read_text().splitlines(), 1):
        cond = _COND.match(line.strip())
        if cond:
            what, name = cond.groups()
            if what == "endif":
                live.pop()
            elif what == "else":
                live[-1] = not live[-1] and live[-2]
            else:
                live.append(live[-1] and ((name in defines) == (what == "ifdef")))
            continue
        m = _KIND.match(line.strip())
        if not m or not live[-1]:
            continue
        args = [a for a in _ARG.findall(m.group(1))]
        if len(args) != 6:
            raise RuntimeError(f"{KINDS_DEF}:{n}: RTUDP_KIND needs 6 arguments, got {args}")
        upper, name, code, prefix, area, ffi = args
        out.append({"NAME": upper, "name": name, "code": int(code, 0),
                    "prefix": prefix.strip('"'), "area": area,
                    "ffi": tuple(ffi.strip('"').split())})
    return out


def headers() -> tuple[str, ...]:
    """The headers whose CDEF blocks cffi is given: the engine's, then the kinds'."""
    return ENGINE_HEADERS + tuple(f for k in kinds() for f in k["ffi"] if f.endswith(".h"))


def sources() -> tuple[str, ...]:
    """The C files compiled into the extension: the engine's, then the kinds'."""
    return ENGINE_SOURCES + tuple(f for k in kinds() for f in k["ffi"] if f.endswith(".c"))


def cdef_blocks(names: tuple[str, ...]) -> list[str]:
    """The CDEF blocks of the headers ``names`` (under csrc/), in order."""
    blocks = []
    for name in names:
        found = _CDEF.findall((CSRC / name).read_text())
        if not found:
            raise RuntimeError(f"{name}: no CDEF block")
        blocks.extend(found)
    return blocks


def cdef_text() -> str:
    """The cffi declarations: every CDEF block of the headers, in order, then the kind
    codes (their values are the compiler's: the enum kinds.def makes in rtudp_shm.h)."""
    blocks = cdef_blocks(headers())
    blocks.extend(f"#define RTUDP_KIND_{k['NAME']} ..." for k in kinds())
    return "\n".join(blocks)


ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "rtudp.shmring._native",
    "".join(f'#include "{h}"\n' for h in headers()),
    # relative to the project root, where setup.py runs
    sources=[f"csrc/{s}" for s in sources()],
    include_dirs=["csrc"],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
