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


#: the C extension modules that carry a typing stub next to them
STUBBED = ("rtudp.shmring._fast", "rtudp.rtp._rtp")


def _stub_classes(path: str) -> dict[str, set[str]]:
    """Each class of a .pyi file and the names it declares (methods, properties, fields)."""
    import ast

    tree = ast.parse(open(path, encoding="utf-8").read())
    out: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body
                              if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            out[node.name] |= {n.target.id for n in node.body
                               if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    return out


@pytest.mark.parametrize("module", STUBBED)
def test_extension_stub_is_packaged(module: str) -> None:
    """pyproject.toml ships the stub as package data of the extension's package."""
    import importlib
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest's own TOML reader
        import tomli as tomllib

    package, _, name = module.rpartition(".")
    config = tomllib.load(open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml"),
                               "rb"))
    assert f"{name}.pyi" in config["tool"]["setuptools"]["package-data"][package], module
    folder = os.path.dirname(importlib.import_module(package).__file__)
    assert os.path.isfile(os.path.join(folder, f"{name}.pyi")), module
    assert os.path.isfile(os.path.join(folder, "py.typed")), package


def test_fast_stub_declares_what_the_module_exports() -> None:
    """rtudp.shmring._fast's stub names every type the built module exports and every
    method and attribute of each, and nothing it lacks."""
    import inspect

    from rtudp.shmring import _fast

    stub = _stub_classes(os.path.join(os.path.dirname(_fast.__file__), "_fast.pyi"))
    types = {n: t for n, t in vars(_fast).items() if inspect.isclass(t)}
    assert set(stub) == set(types)
    for name, t in types.items():
        names = {m for m in vars(t) if not (m.startswith("__") and m.endswith("__"))}
        assert stub[name] == names, (name, sorted(stub[name] ^ names))
