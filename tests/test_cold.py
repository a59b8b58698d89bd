"""``--drop-caches`` (rtudp.tools.cold): ``rtudp demo``, ``rtudp bench timing`` and
``rtudp bench scale`` empty the page cache as a boot leaves it, through the kernel's
knob, or refuse at once, naming the knob, where this user may not write it.  The knob
is a file the tests name, so the suite never empties the machine's page cache."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rtudp.tools import cold

#: runs the rtudp CLI with the knob at argv[1] and the CLI's arguments after it
WITH_KNOB = ("import sys; import rtudp.tools.cold as c; c.DROP_CACHES = sys.argv[1]; "
             "from rtudp.tools import cli; sys.exit(cli.main(sys.argv[2:]))")


def _cli(knob: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITH_KNOB, str(knob), *args],
                          capture_output=True, text=True, timeout=120)


def test_drop_caches_writes_3_to_the_knob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    knob = tmp_path / "drop_caches"
    knob.write_text("0\n")
    monkeypatch.setattr(cold, "DROP_CACHES", str(knob))
    cold.drop_caches()
    assert knob.read_text() == "3\n"


def test_a_knob_this_user_may_not_write_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    knob = tmp_path / "no such dir" / "drop_caches"
    monkeypatch.setattr(cold, "DROP_CACHES", str(knob))
    cold.check_drop_caches("rtudp demo", False)   # not asked for: nothing to check
    with pytest.raises(SystemExit, match=r"rtudp demo: --drop-caches writes .*no such dir"):
        cold.check_drop_caches("rtudp demo", True)
    with pytest.raises(RuntimeError, match="no such dir"):
        cold.drop_caches()


@pytest.mark.parametrize("command", [["demo"], ["bench", "timing"], ["bench", "scale"]])
def test_each_command_refuses_a_knob_it_cannot_write_before_it_starts(
        tmp_path: Path, command: list[str]) -> None:
    out = _cli(tmp_path / "missing" / "drop_caches", *command, "--drop-caches")
    assert out.returncode != 0
    assert f"rtudp {' '.join(command)}: --drop-caches writes" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr, out.stderr


def test_the_demo_drops_the_cache_then_runs(tmp_path: Path) -> None:
    knob = tmp_path / "drop_caches"
    knob.write_text("0\n")
    out = _cli(knob, "demo", "--packets", "2000", "--drop-caches")
    assert out.returncode == 0, out.stderr
    assert knob.read_text() == "3\n"
    assert "the page cache was dropped" in out.stdout
    assert "send lateness" in out.stdout, out.stdout
