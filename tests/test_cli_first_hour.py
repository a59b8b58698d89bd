"""What a new user meets first in the CLI: help that reads as text, a pool name that
names nothing refused, errors that name the bad value once."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rtudp

CLI = [sys.executable, "-m", "rtudp.tools.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["metrics"], ["stats"], ["pool", "list"]])
def test_help_has_a_description_without_markup(command: list[str]) -> None:
    out = cli(*command, "--help")
    assert out.returncode == 0, out.stderr
    usage, _, rest = out.stdout.partition("\n\n")
    description = rest.split("\n\n")[0]
    assert description and not description.startswith(("options:", "positional")), out.stdout
    assert "``" not in out.stdout and ":mod:" not in out.stdout, out.stdout


def test_metrics_of_a_pool_that_does_not_run_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "m.prom"
    out = cli("metrics", "--pool", "nosuch_i53", "--textfile", str(target))
    assert out.returncode == 1
    assert "no pool 'nosuch_i53'" in out.stderr
    assert not target.exists()


@pytest.mark.parametrize("name, why", [("", "is empty"), ("a b", "has other characters"),
                                       ("x" * 49, "is longer than 48")])
def test_a_bad_channel_name_is_named_as_a_channel_name(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"invalid channel name {name!r}: it {why}"):
        rtudp.ChannelConfig(name)


def test_messages_have_no_doubled_quotes(rtudp_pool) -> None:
    with pytest.raises(ValueError) as err:
        rtudp_pool.open_channel("c", local=("127.0.0.1", 0), cpu=10_000)
    assert "''" not in str(err.value) and "'s CPUs" not in str(err.value), err.value
    b = rtudp_pool.open_channel("b", local=("127.0.0.1", 0), remote=("127.0.0.1", 9))
    with pytest.raises(ValueError) as err:
        b.send(b"x" * (b.max_datagram + 1))
    assert "'s max_datagram" not in str(err.value) and "max_datagram" in str(err.value)


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`rtudp doctor | head -1`: the pipe closes under the command, which stops without
    a traceback and exits as a shell tool killed by SIGPIPE would (141)."""
    proc = subprocess.Popen([*CLI, "doctor", "--seconds", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()                       # the reader is gone before the first line
    err = proc.stderr.read()
    assert proc.wait(120) == 141, err
    assert "Traceback" not in err and "Broken pipe" not in err, err
