"""The installed package: its layers, the worker program inside it, the CLI."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import rtudp
from rtudp.shmring._native import lib
from rtudp.workers import worker_path, worker_version


def test_layers_import_one_way() -> None:
    """rtudp re-exports the ring API and its errors share one base class."""
    for name in ("BackPressureError", "BadSegmentError", "SegmentNotFoundError",
                 "ClaimExpiredError"):
        assert issubclass(getattr(rtudp, name), rtudp.RtUdpError)
    assert issubclass(rtudp.SegmentNotFoundError, FileNotFoundError)


def test_worker_is_installed_inside_the_package() -> None:
    path = worker_path()
    assert os.path.isabs(path) and os.access(path, os.X_OK)
    assert os.path.dirname(path) == os.path.dirname(sys.modules["rtudp.workers"].__file__)
    assert worker_version() == f"rtudp-worker layout {lib.RTUDP_LAYOUT_VERSION}"


@pytest.mark.parametrize("args, needle", [
    ([], "--pool and --worker-id are required"),
    (["--pool", "a/b", "--worker-id", "0"], "pool name 'a/b'"),
    (["--pool", "p", "--worker-id", "x"], "got 'x'"),
    (["--pool", "p", "--worker-id", "-1"], "got '-1'"),
    (["--pool", "p", "--worker-id", "0", "--cpu", "99999"], "got '99999'"),
    (["--pool", "p", "--worker-id", "0", "--bogus", "1"], "unknown option '--bogus'"),
    (["--pool"], "--pool needs a value"),
])
def test_worker_rejects_bad_arguments(args: list[str], needle: str) -> None:
    out = subprocess.run([worker_path(), *args], capture_output=True, text=True, timeout=10)
    assert out.returncode == 2
    assert needle in out.stderr


def test_worker_requires_a_command_socket() -> None:
    out = subprocess.run([worker_path(), "--pool", "p.1", "--worker-id", "3", "--cpu", "1"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2
    assert "--cmd-fd is required" in out.stderr


def test_cli_version_and_bench_help() -> None:
    out = subprocess.run([sys.executable, "-m", "rtudp.tools.cli", "version"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"rtudp {rtudp.__version__}" in out.stdout and "rtudp-worker layout" in out.stdout
    out = subprocess.run([sys.executable, "-m", "rtudp.tools.bench", "--help"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "ring" in out.stdout
