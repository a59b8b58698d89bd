"""A cold start on demand: the page cache, dentries and inodes dropped as a boot leaves
them (``sync; echo 3 > /proc/sys/vm/drop_caches``), for ``--drop-caches`` of
``rtudp demo``, ``rtudp bench timing`` and ``rtudp bench scale``.  It takes root.

On a VM with free page reporting (virtio-balloon) the memory the drop frees goes back
to the host seconds later, and the host stops the vCPUs for 10-30 ms at a time while
it takes it: a stall of the whole machine that no program inside it can avoid (a plain
C loop sees it too), not the cost of cold memory.  So after the drop the run waits
until the guest has stopped handing memory back, and says how much went and how long
that took."""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

DROP_CACHES = "/proc/sys/vm/drop_caches"
#: what a guest with free page reporting (virtio-balloon) has handed back, KiB
REPORTED_KIB = "/sys/module/page_reporting/parameters/reported_kib"
#: the kernel reports free memory 2 s after it is freed (PAGE_REPORTING_DELAY), in
#: pieces: no growth for this long means it is over
RECLAIM_QUIET_S = 3.0
#: the longest wait for it
RECLAIM_LIMIT_S = 60.0
RECLAIM_POLL_S = 0.25


def reported_kib() -> int | None:
    """KiB of free memory this guest has handed back to its host so far (None: no free
    page reporting here)."""
    try:
        with open(REPORTED_KIB, encoding="utf-8") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class HostReclaim:
    """What the host took back after a drop, and how long the wait for it took."""

    kib: int
    seconds: float
    settled: bool  # False: still growing at RECLAIM_LIMIT_S

    def __str__(self) -> str:
        if not self.kib:
            return f"the host took back nothing in {self.seconds:.1f} s"
        ended = "" if self.settled else f", still going at the {RECLAIM_LIMIT_S:.0f} s limit"
        return (f"waited {self.seconds:.1f} s while the host took back {self.kib / 1024:,.0f} "
                f"MiB of the freed memory (free page reporting{ended})")


def wait_for_host_reclaim(quiet_s: float | None = None,
                          limit_s: float | None = None) -> HostReclaim | None:
    """Wait until the guest hands no more free memory to its host for ``quiet_s``
    (RECLAIM_QUIET_S; at most ``limit_s``, RECLAIM_LIMIT_S); None where there is no
    free page reporting."""
    quiet_s = RECLAIM_QUIET_S if quiet_s is None else quiet_s
    limit_s = RECLAIM_LIMIT_S if limit_s is None else limit_s
    first = last = reported_kib()
    if first is None:
        return None
    t0 = time.monotonic()
    quiet_since = t0
    while True:
        now = time.monotonic()
        if now - quiet_since >= quiet_s or now - t0 >= limit_s:
            return HostReclaim(max(0, last - first), now - t0, now - quiet_since >= quiet_s)
        time.sleep(RECLAIM_POLL_S)
        kib = reported_kib()
        if kib is None:
            return HostReclaim(max(0, last - first), time.monotonic() - t0, True)
        if kib != last:
            last, quiet_since = kib, time.monotonic()


def drop_caches() -> str:
    """Write back and drop the page cache, dentries and inodes, as a boot leaves them,
    then wait out the host's reclaim of the freed memory (the module docstring).
    Returns what happened, a phrase to print."""
    os.sync()
    try:
        with open(DROP_CACHES, "w") as f:
            f.write("3\n")
    except OSError as exc:
        raise RuntimeError(f"--drop-caches: cannot write {DROP_CACHES} ({exc.strerror}): "
                           "it takes root") from None
    reclaim = wait_for_host_reclaim()
    said = "the page cache was dropped, as a boot leaves it"
    return said if reclaim is None else f"{said}; {reclaim}"


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


__all__ = ["DROP_CACHES", "REPORTED_KIB", "HostReclaim", "add_drop_caches_argument",
           "check_drop_caches", "drop_caches", "reported_kib", "wait_for_host_reclaim"]
