"""Every program in ``examples/`` runs as a user runs it (a subprocess, on loopback, with
its own embedded pool named by ``$RTUDP_POOL``), exits 0, prints what it promises and
leaves no segment behind.  Figures that depend on timing are checked for presence only."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import new_shm_name

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT_S = 180  # a loaded 2-CPU machine; the examples take a few seconds each


def run_example(script: str, *args: str) -> str:
    """Run ``examples/script`` with a pool of its own; its stdout (exit 0 asserted, no
    segment of the pool left)."""
    pool = new_shm_name("ex").replace(".", "_")[:24].rstrip("_-")
    env = {**os.environ, "RTUDP_POOL": pool}
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                         text=True, timeout=TIMEOUT_S, env=env, cwd=EXAMPLES)
    assert out.returncode == 0, f"{script} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    left = [e for e in os.listdir("/dev/shm") if e.startswith(f"rtudp.{pool}")]
    assert not left, f"{script} left {left}"
    return out.stdout


def test_every_example_is_tested() -> None:
    tested = set(re.findall(r'run_example\("(\w+\.py)"', Path(__file__).read_text()))
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.parametrize("impl", ["socket", "emulated"])
def test_rtudp_factory(impl: str) -> None:
    out = run_example("rtudp_factory.py", impl)
    assert re.search(r"^received b'Hello World', -?\d+ ns after it was due$", out, re.M), out
    assert "Packets sent: 1\n" in out and re.search(r"^Max latency: \d+ ns$", out, re.M), out


@pytest.mark.parametrize("impl", ["socket", "emulated"])
def test_rtudp_pair(impl: str) -> None:
    out = run_example("rtudp_pair.py", impl)
    assert f"{impl}: 100 of 100 packets received, in order: True" in out, out
    assert re.search(r"127\.0\.0\.1:24311 -> 127\.0\.0\.1:24312\), sent 100$", out, re.M), out


def test_udpcom_basic() -> None:
    out = run_example("udpcom_basic.py")
    got = re.findall(r"^received b'Hello World (\d)' at \d+ ns", out, re.M)
    assert got == ["0", "1", "2"], out
    assert re.search(r"^Packets sent: 3, max latency \d+ ns$", out, re.M), out


def test_rtpsynth_server() -> None:
    out = run_example("rtpsynth_server.py")
    got = re.search(r"^pkt_in got b'hello' from 127\.0\.0\.1:(\d+) \(rtime_ns \d+\)$", out, re.M)
    bound = re.search(r"^channel bound to 127\.0\.0\.1:(\d+), closed: False$", out, re.M)
    assert got and bound and got.group(1) == bound.group(1), out  # it sent to itself


def test_rtpsynth_synth_jbuf() -> None:
    """The jitter buffer gives every sequence number once, in order: the swapped pair
    put back, the lost packet as a one-packet erasure of 160 samples."""
    out = run_example("rtpsynth_synth_jbuf.py")
    rows = re.findall(r"^(RTP|ERASURE) +seq (\d+)(?:\.\.(\d+))?, (?:160 bytes|ts_diff 160)$",
                      out, re.M)
    assert len(rows) == 10, out
    seqs = [int(s) for _, s, _ in rows]
    assert seqs == list(range(seqs[0], seqs[0] + 10)), out
    assert [kind for kind, _, _ in rows].index("ERASURE") == 5, out
    assert [kind for kind, _, _ in rows].count("ERASURE") == 1, out


def test_rtpsynth_proc() -> None:
    out = run_example("rtpsynth_proc.py")
    assert "5 runs; first deadline 0; deadlines [20] ms apart" in out, out
    assert "every run at or after its deadline: True" in out, out


def test_rtpsynth_utils() -> None:
    out = run_example("rtpsynth_utils.py")
    assert "resampled 320 samples at 16 kHz to 160 at 8 kHz" in out, out
    worst = re.search(r"mu-law: 160 bytes; decoded back, worst error (\d+) of 8000", out)
    assert worst and int(worst.group(1)) < 8000 * 0.05, out  # G.711's quantisation, no more
    assert "linear2ulaw(1000) = 206" in out, out


def test_udt4_echo() -> None:
    out = run_example("udt4_echo.py")
    assert out.splitlines() == [f"sent {n} bytes, echo matches" for n in (10, 100, 1000)], out


def test_pyudt_socket() -> None:
    out = run_example("pyudt_socket.py")
    assert re.search(r"^client got b'answer to question' from 127\.0\.0\.1:\d+$", out, re.M), out


def test_netflux_basic() -> None:
    out = run_example("netflux_basic.py")
    assert re.search(r"^Received: NetfluxData\(value1=123\.4\d+, value2=678\.9\d*, value3=42, "
                     r"value4=1000, flags=171\)$", out, re.M), out
    assert "NETFLUX STATUS" in out and re.search(r"^RTT: [\d.]+ ms$", out, re.M), out


def test_netflux_custom_data() -> None:
    out = run_example("netflux_custom_data.py")
    assert re.search(r"^control received Measurement\(temperature=21\.5, pressure=1\.01\d*, "
                     r"status=7\)$", out, re.M), out


def test_example_bidirectional() -> None:
    """Both devices run, report, and each received the other's packets (counts only:
    whether the link is up at the very end depends on the machine's load)."""
    out = run_example("example_bidirectional.py", "--seconds", "2.5")
    for me, partner in (("A", "B"), ("B", "A")):
        assert f"DEVICE {me} STATUS" in out, out
        assert re.search(rf"^\[Device {me}\] Received from {partner}: NetfluxData\(", out,
                         re.M), out
        count = re.search(rf"^Device {me}: link (up|down), (\d+) packets received", out, re.M)
        assert count and int(count.group(2)) > 0, out
