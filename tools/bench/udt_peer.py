"""A real UDT 4.11 peer (Debian's libudt), for the udt tests and ``rtudp bench udt``.

:func:`build_libudt_peer` compiles ``libudt_peer.cpp`` (shipped next to this file)
with ``c++ -ludt``; :class:`LibudtPeer` runs it.  The impairment relay is
:mod:`rtudp.tools.bench.udt_relay` (C, built the same way by :func:`build_cached`);
:class:`Relay` here is a slower one in Python whose ``watch`` sees (and may drop)
every datagram: the tests that check or filter what is on the wire use it.
"""
from __future__ import annotations

import hashlib
import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_SRC = HERE / "libudt_peer.cpp"
PEER_HDRS = (HERE / "udt_peer_util.h", HERE / "libudt_peer_scenario.h")


class PeerUnavailable(RuntimeError):
    """The libudt peer cannot be built here (what is missing, and how to install it)."""


def build_libudt_peer(out_dir: Path | None = None) -> Path:
    """The peer program, built once per source version (in ``out_dir``, default a
    folder of the temporary directory); PeerUnavailable without libudt-dev or c++."""
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        raise PeerUnavailable("no C++ compiler to build the libudt peer (apt-get install g++)")
    if not Path("/usr/include/udt/udt.h").exists():
        raise PeerUnavailable("libudt-dev is not installed (apt-get install libudt-dev)")
    return build_cached("libudt_peer", [PEER_SRC, *PEER_HDRS],
                        [cxx, "-O2", "-std=c++11", str(PEER_SRC), "-ludt", "-lpthread"], out_dir)


def build_cached(name: str, sources: list[Path], command: list[str],
                 out_dir: Path | None = None) -> Path:
    """The program ``name`` built by ``command`` (given ``-o OUT`` at its end) once per
    version of ``sources``, in ``out_dir`` (default a folder of the temporary
    directory); PeerUnavailable with the compiler's message when the build fails."""
    tag = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    out = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "rtudp-udt-peer"
    out.mkdir(parents=True, exist_ok=True)
    exe = out / f"{name}-{tag}"
    if exe.exists():
        return exe
    tmp = out / f".{name}-{tag}.{os.getpid()}"
    r = subprocess.run([*command, "-o", str(tmp)], capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise PeerUnavailable(f"building {name} failed:\n{r.stderr}")
    tmp.replace(exe)
    return exe


class LibudtPeer:
    """A running libudt_peer; its stdout lines as they come."""

    def __init__(self, exe: Path, *args: str) -> None:
        self.proc = subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, text=True)

    def line(self, timeout: float = 30.0, allow_error: bool = False) -> str:
        """The next line of output (AssertionError after ``timeout`` s, or on an
        "error ..." line unless ``allow_error``)."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"libudt peer said nothing for {timeout} s"
        line = self.proc.stdout.readline().strip()
        assert line, f"libudt peer exited ({self.proc.wait(5)}) without a result"
        assert allow_error or not line.startswith("error"), f"libudt peer: {line}"
        return line

    def wait(self, timeout: float = 60.0) -> int:
        """Its exit code."""
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Kill it if it still runs (by its pid)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


__all__ = ["LibudtPeer", "PeerUnavailable", "build_cached", "build_libudt_peer"]
