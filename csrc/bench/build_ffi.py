"""cffi builder for ``rtudp.tools.bench._native``: the C loops the benchmarks and
``rtudp doctor`` run as their peers (out of line, API mode).

They live in an extension of their own so the product's (``rtudp.shmring._native``)
carries no benchmark code.  What Python may call is the ``BEGIN CDEF`` .. ``END CDEF``
blocks of the headers below; a ring the C loops take is ``rtudp.shmring``'s, cast to
this module's opaque ``struct rtudp_mpsc *``.
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

BENCH = pathlib.Path(__file__).resolve().parent
#: the benchmark cores, then the engine files they call (their own copies here)
HEADERS = ("ring_bench.h", "recv_bench.h", "timing_bench.h", "sendpath_bench.h", "rtp_bench.h")
SOURCES = ("bench/ring_bench.c", "bench/recv_bench.c", "bench/timing_bench.c",
           "bench/sendpath_bench.c", "bench/rtp_bench.c",
           "ring.c", "rtp/jbuf.c", "rtp/header.c")
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]

_CDEF = re.compile(r"/\* BEGIN CDEF \*/(.*?)/\* END CDEF \*/", re.S)


def cdef_text() -> str:
    """Every CDEF block of HEADERS, in order; a ring is an opaque struct here."""
    blocks = ["struct rtudp_mpsc;"]
    for name in HEADERS:
        found = _CDEF.findall((BENCH / name).read_text())
        if not found:
            raise RuntimeError(f"{name}: no CDEF block")
        blocks.extend(found)
    return "\n".join(blocks)


ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "rtudp.tools.bench._native",
    "".join(f'#include "{h}"\n' for h in HEADERS),
    # relative to the project root, where setup.py runs
    sources=[f"csrc/{s}" for s in SOURCES],
    include_dirs=["csrc", "csrc/bench"],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
