"""cffi builder for ``rtudp.shmring._native`` (API mode, out of line).

What Python may call is exactly the ``BEGIN CDEF`` .. ``END CDEF`` blocks of the C
headers, so the layout and the functions are declared once, in C.
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

CSRC = pathlib.Path(__file__).resolve().parent
HEADERS = ("rtudp_shm.h", "ring.h", "segment.h", "ring_bench.h", "timing_bench.h", "hist.h",
           "readers.h", "rtp/rtp_bench.h", "proto/rtp_area.h", "proto/netflux_shm.h")
SOURCES = ("ring.c", "segment.c", "ring_bench.c", "timing_bench.c", "hist.c", "readers.c",
           "rtp/rtp_bench.c", "rtp/jbuf.c", "rtp/header.c", "proto/rtp_area.c",
           "proto/netflux_image.c")
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra"]

_CDEF = re.compile(r"/\* BEGIN CDEF \*/(.*?)/\* END CDEF \*/", re.S)


def cdef_text() -> str:
    """The cffi declarations: every CDEF block of the headers, in order."""
    blocks = []
    for name in HEADERS:
        found = _CDEF.findall((CSRC / name).read_text())
        if len(found) != 1:
            raise RuntimeError(f"{name}: expected one CDEF block, found {len(found)}")
        blocks.append(found[0])
    return "\n".join(blocks)


ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "rtudp.shmring._native",
    "".join(f'#include "{h}"\n' for h in HEADERS),
    # relative to the project root, where setup.py runs
    sources=[f"csrc/{s}" for s in SOURCES],
    include_dirs=["csrc"],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
