"""A cold start on demand: the page cache, dentries and inodes dropped as a boot leaves
them (``sync; echo 3 > /proc/sys/vm/drop_caches``), for ``--drop-caches`` of
``rtudp demo``, ``rtudp bench timing`` and ``rtudp bench scale``.  It takes root."""
from __future__ import annotations

import argparse
import os

DROP_CACHES = "/proc/sys/vm/drop_caches"


def drop_caches() -> None:
    """Write back and drop the page cache, dentries and inodes, as a boot leaves them."""
    os.sync()
    try:
        with open(DROP_CACHES, "w") as f:
            f.write("3\n")
    except OSError as exc:
        raise RuntimeError(f"--drop-caches: cannot write {DROP_CACHES} ({exc.strerror}): "
                           "it takes root") from None


def add_drop_caches_argument(parser: argparse.ArgumentParser, when: str) -> None:
    """``--drop-caches``: empty the page cache ``when`` (e.g. "before every round")."""
    parser.add_argument("--drop-caches", action="store_true",
                        help=f"empty the page cache {when}, as a boot does (root)")


def check_drop_caches(command: str, asked: bool) -> None:
    """Exit with a clear message if ``--drop-caches`` was ``asked`` for and this user
    may not write the kernel's knob."""
    if asked and not os.access(DROP_CACHES, os.W_OK):
        raise SystemExit(f"{command}: --drop-caches writes {DROP_CACHES}, which this user "
                         "may not (it takes root)")


__all__ = ["DROP_CACHES", "add_drop_caches_argument", "check_drop_caches", "drop_caches"]
