"""An ordinary user's limits: channels of the default size open under an 8 MiB
RLIMIT_MEMLOCK without CAP_IPC_LOCK, and the pool warns once, naming each limit and
its fix (docs/guarantees.md, "No root needed").

The pool runs in a child process whose RLIMIT_MEMLOCK is lowered to 8 MiB; as root its
worker is started through ``setpriv --bounding-set=-ipc_lock`` (it then lacks
CAP_IPC_LOCK as an ordinary user's would).  .ci/run also runs the demo and a smoke subset
of the suite as the user ``nobody``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from rtudp.workers.privileges import CAP_IPC_LOCK, has_capability, privilege_message
from rtudp.workers.registry import segment_files

SCRIPT = textwrap.dedent("""
    import json, resource, sys, warnings
    import rtudp
    from rtudp.workers import worker_path
    pool_name, setpriv = sys.argv[1], sys.argv[2]
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (8 << 20, 8 << 20))
    # as root, the worker without CAP_IPC_LOCK, as an ordinary user's (no setpriv: we are one)
    argv = ([setpriv, "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock"] if setpriv else []) \
        + [worker_path()]
    out = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with rtudp.Pool(pool_name, cpus=[0], worker=argv, rt_priority=0) as pool:
            # three channels of the default size and a big one: far past 8 MiB
            chans = [pool.open_channel(n, local=("127.0.0.1", 0)) for n in "abc"]
            big = pool.open_channel("big", local=("127.0.0.1", 0), remote=chans[0].local,
                                    capacity=16384)
            big.send(b"through")
            out["got"] = chans[0].recv(timeout=10).data.decode()
            with open(f"/proc/{pool.workers()[0]['pid']}/status") as f:
                out["vmlck_kib"] = [int(l.split()[1]) for l in f if l.startswith("VmLck")][0]
    out["warnings"] = [[w.category.__name__, str(w.message)] for w in caught]
    print(json.dumps(out))
""")


def test_default_channels_open_under_an_8_mib_memlock_limit(shm_name):
    setpriv = shutil.which("setpriv") or ""
    if not setpriv and has_capability(CAP_IPC_LOCK):
        pytest.skip("setpriv (util-linux) is not installed: cannot drop CAP_IPC_LOCK")
    pool = shm_name.replace(".", "_")[:30]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, pool, setpriv], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["got"] == "through"
    # locked while it fit, never past the limit
    assert 0 < out["vmlck_kib"] <= 8 * 1024, out
    mem = [m for cat, m in out["warnings"] if cat == "MemoryLockWarning"]
    assert len(mem) == 1, out["warnings"]
    for word in ("RLIMIT_MEMLOCK", "8 MiB", "ulimit -l unlimited", "LimitMEMLOCK=infinity",
                 "CAP_IPC_LOCK"):
        assert word in mem[0], word
    assert not any("RtPriorityWarning" == cat for cat, _ in out["warnings"])
    assert segment_files(pool) == []


def test_one_message_names_each_limit_and_its_fix():
    both = privilege_message("p", 50, "RLIMIT_RTPRIO is 0, no CAP_SYS_NICE", 8 << 20)
    assert both is not None
    for word in ("SCHED_OTHER", "RLIMIT_RTPRIO is 0", "ulimit -r 50", "LimitRTPRIO=50",
                 "CAP_SYS_NICE", "RLIMIT_MEMLOCK (8 MiB", "ulimit -l unlimited",
                 "LimitMEMLOCK=infinity", "CAP_IPC_LOCK"):
        assert word in both, word
    assert privilege_message("p", 50, None, None) is None
    only_mem = privilege_message("p", 50, None, 64 << 20)
    assert only_mem is not None and "SCHED" not in only_mem and "64 MiB" in only_mem
