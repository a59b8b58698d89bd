"""rtudp.lock_memory: a submitting process's memory resident and kept so.

Each call runs in a child process of its own: the locks (and MCL_FUTURE) last for the
life of the process that asks, and must not reach the test runner.  What is asserted is
what the kernel guarantees of locked memory (a locked page is never read back from
disk: no major fault), and counts; never a timing.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
import time

import pytest

import rtudp

#: an unprivileged process's bound on locked memory in the bounded case
SMALL_LIMIT = 1 << 20


def _run(code: str, *args: str, timeout: float = 60) -> dict:
    """Runs ``code`` in a fresh interpreter; its last stdout line, as JSON."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


#: imports first: a process that becomes nobody may no longer read root's modules
IMPORTS = """
    import json, os, resource, sys
    import rtudp
"""
LOCK_AND_REPORT = """
    r = rtudp.lock_memory()
    grown = bytearray(64 << 20)   # a mapping made after it: it must still succeed
    vmlck = [int(l.split()[1]) * 1024 for l in open("/proc/self/status")
             if l.startswith("VmLck:")][0]
    print(json.dumps(dict(locked=r.locked_bytes, vmlck=vmlck, whole=r.whole, future=r.future,
                          limit=r.limit_bytes, missed=list(r.missed), text=str(r),
                          stack=r.stack_bytes, heap=r.heap_bytes, grown=len(grown))))
"""


def test_it_locks_the_whole_process_where_nothing_bounds_it() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (or CAP_IPC_LOCK) for an unbounded lock; the bounded "
                    "case is test_under_rlimit_memlock_it_locks_code_that_fits")
    r = _run(IMPORTS + LOCK_AND_REPORT)
    assert r["whole"] and r["future"] and r["limit"] is None and r["missed"] == []
    # the 64 MiB made afterwards is locked too (MCL_FUTURE), less what the heap
    # reserve (kept, not trimmed) already held
    assert r["vmlck"] >= r["locked"] + (64 << 20) - r["heap"] - (1 << 20)
    assert r["stack"] == 256 << 10 and r["heap"] == 8 << 20
    assert "locked" in r["text"] and "no limit" in r["text"]


def test_under_rlimit_memlock_it_locks_code_that_fits() -> None:
    """Unprivileged with a 1 MiB bound: the whole space does not fit, so code is locked
    as far as it fits; later mappings are not locked (they would fail past the bound),
    so a 64 MiB allocation afterwards still succeeds; the report says what it missed."""
    code = """
        resource.setrlimit(resource.RLIMIT_MEMLOCK, ({limit}, {limit}))
        if os.geteuid() == 0:          # root bypasses the bound: be nobody
            os.setgroups([]); os.setgid(65534); os.setuid(65534)
    """.format(limit=SMALL_LIMIT)
    r = _run(textwrap.dedent(IMPORTS) + textwrap.dedent(code) + textwrap.dedent(LOCK_AND_REPORT))
    assert not r["whole"] and not r["future"]
    assert r["limit"] == SMALL_LIMIT
    assert 0 < r["locked"] <= SMALL_LIMIT
    assert r["grown"] == 64 << 20
    assert any("later mappings not locked" in m for m in r["missed"])
    assert any("RLIMIT_MEMLOCK" in m and "code locked instead" in m for m in r["missed"])
    assert "code only" in r["text"]


@pytest.mark.parametrize("kwargs, named", [
    ({"stack_bytes": -1}, "stack_bytes=-1"),
    ({"heap_bytes": 1.5}, "heap_bytes=1.5"),
    ({"heap_bytes": True}, "heap_bytes=True"),
    ({"future": "yes"}, "future='yes'"),
])
def test_bad_arguments_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        rtudp.lock_memory(**kwargs)


SUBMITTER = """
    import json, resource, struct, sys, time
    import rtudp
    ch = rtudp.attach(sys.argv[1], sys.argv[2])
    report = rtudp.lock_memory()
    print("ready", flush=True)
    sys.stdin.readline()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    sent = 0
    end = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < end:      # just in time: each record 20 ms before it is due
        ch.send(struct.pack("<I", sent), at_ns=time.monotonic_ns() + 20_000_000)
        sent += 1
        time.sleep(0.001)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults
    st = ch.stats()
    # code not resident: executable file mappings whose pages are not all mapped in
    cold, head = [], None
    for line in open("/proc/self/smaps"):
        if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
            f = line.split()
            head = f[5] if len(f) > 5 and "x" in f[1] and f[5].startswith("/") else None
        elif head and line.startswith("Size:"):
            size = int(line.split()[1])
        elif head and line.startswith("Rss:") and int(line.split()[1]) < size:
            cold.append(head)
    print(json.dumps(dict(sent=sent, majflt=faults, whole=report.whole, cold_code=cold,
                          late_arrival=st["tx_late_arrival"])))
"""


def test_a_locked_submitter_reads_nothing_back_while_the_page_cache_is_emptied(
        rtudp_pool: rtudp.Pool) -> None:
    """A just-in-time submitter that called lock_memory keeps sending while the page
    cache is emptied three times under it: all its code stays mapped in (without the
    call, what it has not run yet is dropped, to be read back at its first use), it
    takes no major fault, and every record it queued arrives once, in order."""
    if os.geteuid() != 0:
        pytest.skip("emptying the page cache needs root")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sink.settimeout(10)
    ch = rtudp_pool.open_channel("jit", remote=sink.getsockname(), direction="tx")
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SUBMITTER), "jit", rtudp_pool.name, "1.5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        for _ in range(3):
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            time.sleep(0.3)
        out, _err = child.communicate(timeout=60)
        r = json.loads(out.strip().splitlines()[-1])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    got = [struct.unpack("<I", sink.recv(64))[0] for _ in range(r["sent"])]
    sink.close()
    ch.close()
    print(f"submitter: {r}")     # late_arrival is the machine's: shown, not asserted
    assert r["whole"]
    assert r["cold_code"] == [], r
    assert r["majflt"] == 0, r
    assert got == list(range(r["sent"]))
