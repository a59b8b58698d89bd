"""Permissions: segments are 0600 by default; a pool opened to a group (``group=`` /
``rtudp pool start --group``) gets that group and 0660; a process of another user
cannot attach to a private pool and gets a PermissionError that says why; names
cannot leave /dev/shm or take another program's segment."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pytest

import rtudp
from rtudp.shmring.segment import shm_path
from rtudp.workers import registry
from test_cli import kill_pool, pool_name, run_cli

OTHER_UID = OTHER_GID = 65534          # nobody / nogroup

_ATTACH = """
import sys, rtudp
try:
    ch = rtudp.attach(sys.argv[1], pool=sys.argv[2])
except PermissionError as exc:
    print("PermissionError:", exc)
    sys.exit(3)
ch.send(b"from another uid")
print("attached and sent")
ch.close()
"""


def _as_other_user(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -c _ATTACH args`` as uid/gid 65534 (setpriv, no supplementary groups)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv(1) to run a process as another uid "
                    f"(euid {os.geteuid()}, setpriv {shutil.which('setpriv')})")
    return subprocess.run(["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_GID}",
                           "--clear-groups", sys.executable, "-c", _ATTACH, *args],
                          capture_output=True, text=True, timeout=60, cwd="/")


def _modes(pool: str) -> dict[str, tuple[int, int]]:
    out = {}
    for f in registry.segment_files(pool):
        st = os.stat(os.path.join("/dev/shm", f))
        out[f] = (stat.S_IMODE(st.st_mode), st.st_gid)
    return out


@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_private_pool_refuses_another_uid_with_a_clear_error(rtudp_pool: rtudp.Pool) -> None:
    ch = rtudp_pool.open_channel("c", remote=("127.0.0.1", 9))
    modes = _modes(rtudp_pool.name)
    assert len(modes) == 2 and all(m == 0o600 for m, _ in modes.values()), modes
    out = _as_other_user("c", rtudp_pool.name)
    assert out.returncode == 3, out.stdout + out.stderr
    msg = out.stdout
    assert f"/dev/shm/rtudp.{rtudp_pool.name}" in msg and "permission denied" in msg
    assert "mode 0600" in msg and "--group" in msg, msg
    ch.close()


@pytest.mark.rtudp(rt_priority=0, cpus=[0], group=OTHER_GID)
def test_group_pool_lets_a_member_attach(rtudp_pool: rtudp.Pool) -> None:
    a = rtudp_pool.open_channel("a")
    b = rtudp_pool.open_channel("b", remote=a.local)
    modes = _modes(rtudp_pool.name)
    assert len(modes) == 3 and all(v == (0o660, OTHER_GID) for v in modes.values()), modes
    out = _as_other_user("b", rtudp_pool.name)        # the other user sends on b, to a
    assert out.returncode == 0 and "attached and sent" in out.stdout, out.stdout + out.stderr
    assert a.recv(timeout=5).data == b"from another uid"
    a.close()
    b.close()


def test_cli_pool_start_group() -> None:
    name = pool_name()
    pid = None
    try:
        out = run_cli("pool", "start", "--name", name, "--rt-priority", "0", "--group",
                      str(OTHER_GID))
        assert out.returncode == 0, out.stderr
        pid = int(out.stdout.split("supervisor pid ")[1].split()[0].rstrip(","))
        assert _modes(name) == {f"rtudp.{name}": (0o660, OTHER_GID)}
        bad = run_cli("pool", "start", "--name", pool_name(), "--group", "no-such-group-xyz")
        assert bad.returncode != 0 and "no-such-group-xyz" in bad.stderr, bad.stderr
    finally:
        run_cli("pool", "stop", "--name", name)
        kill_pool(name, pid)


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "/abs", "..", ".", "", "x" * 49,
                                 "a\0b", "a b", "ä"])
@pytest.mark.rtudp(rt_priority=0, cpus=[0])
def test_names_cannot_escape_dev_shm(rtudp_pool: rtudp.Pool, bad: str) -> None:
    """Every name becomes /dev/shm/rtudp.<name> with [A-Za-z0-9_.-] only: nothing can
    point outside /dev/shm, and the 'rtudp.' prefix keeps other programs' segments out
    of reach.  '.' and '..' are plain file names there (rtudp.., rtudp...), so they
    are allowed for channels and stay inside; pool names take no '.' at all."""
    if bad in (".", ".."):
        assert os.path.dirname(shm_path(bad)) == "/dev/shm"
        with pytest.raises(ValueError):
            rtudp.Pool(bad)
        return
    with pytest.raises((ValueError, TypeError)):
        rtudp_pool.open_channel(bad)
    with pytest.raises((ValueError, TypeError)):
        rtudp.attach(bad, pool=rtudp_pool.name)
    with pytest.raises(ValueError):
        rtudp.Pool(bad)
    assert rtudp_pool.channels() == []
