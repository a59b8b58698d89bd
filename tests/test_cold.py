"""``--drop-caches`` (rtudp.tools.cold): ``rtudp demo``, ``rtudp bench timing`` and
``rtudp bench scale`` empty the page cache as a boot leaves it, through the kernel's
knob, or refuse at once, naming the knob, where this user may not write it.  The knob
is a file the tests name, so the suite never empties the machine's page cache."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rtudp.tools import cold

#: runs the rtudp CLI with the knob at argv[1] (and no free page reporting: the
#: machine's counter is not read) and the CLI's arguments after it
WITH_KNOB = ("import sys; import rtudp.tools.cold as c; c.DROP_CACHES = sys.argv[1]; "
             "c.REPORTED_KIB = sys.argv[1] + '.no-reporting'; "
             "from rtudp.tools import cli; sys.exit(cli.main(sys.argv[2:]))")


def _cli(knob: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITH_KNOB, str(knob), *args],
                          capture_output=True, text=True, timeout=120)


def test_drop_caches_writes_3_to_the_knob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    knob = tmp_path / "drop_caches"
    knob.write_text("0\n")
    monkeypatch.setattr(cold, "DROP_CACHES", str(knob))
    monkeypatch.setattr(cold, "REPORTED_KIB", str(tmp_path / "no page reporting"))
    assert cold.drop_caches() == "the page cache was dropped, as a boot leaves it"
    assert knob.read_text() == "3\n"


def test_the_drop_waits_until_the_host_has_taken_the_freed_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Free page reporting hands freed memory to the host in pieces, seconds after the
    drop: the drop returns once the counter has stood still for the quiet time, and
    says how much went."""
    knob, reported = tmp_path / "drop_caches", tmp_path / "reported_kib"
    knob.write_text("0\n")
    reported.write_text("1000\n")
    monkeypatch.setattr(cold, "DROP_CACHES", str(knob))
    monkeypatch.setattr(cold, "REPORTED_KIB", str(reported))
    monkeypatch.setattr(cold, "RECLAIM_QUIET_S", 1.0)
    monkeypatch.setattr(cold, "RECLAIM_POLL_S", 0.02)
    pieces = threading.Event()

    def host_takes() -> None:  # two pieces of 64 MiB, 0.3 s apart
        for kib in (1000 + 65536, 1000 + 2 * 65536):
            time.sleep(0.3)
            reported.write_text(f"{kib}\n")
        pieces.set()
    taker = threading.Thread(target=host_takes)
    t0 = time.monotonic()
    taker.start()
    said = cold.drop_caches()
    waited = time.monotonic() - t0
    taker.join()
    assert pieces.is_set() and waited >= 0.6 + 1.0, (waited, said)
    assert "took back 128 MiB" in said, said
    reclaim = cold.wait_for_host_reclaim(quiet_s=0.1)
    assert reclaim is not None and reclaim.kib == 0 and reclaim.settled
    monkeypatch.setattr(cold, "REPORTED_KIB", str(tmp_path / "none"))
    assert cold.wait_for_host_reclaim() is None


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
