"""`rtudp bench rtp --quick --json` runs end to end and reports every figure.

Figures are checked for presence and sign only: speed is never asserted.
"""
from __future__ import annotations

import importlib.util

import pytest
from bench_helpers import positive, run_quick_json

OURS = ("gen_ours", "gen_batch_into", "gen_batch_list", "jbuf_ours_inorder", "jbuf_ours_shuffled",
        "jbuf_ours_shuffled_batch", "jbuf_c_inorder", "jbuf_c_shuffled", "ulaw_enc_ours",
        "ulaw_dec_ours", "ulaw_dec_ours_bytes")
THEIRS = ("gen_rtpsynth", "jbuf_rtpsynth_inorder", "jbuf_rtpsynth_shuffled", "ulaw_enc_rtpsynth",
          "ulaw_dec_rtpsynth")


@pytest.fixture(scope="module")
def report() -> dict:
    return run_quick_json("rtp", timeout=240)[0]


def test_our_figures(report: dict) -> None:
    for key in OURS:
        assert positive(report["figures"][key]), f"{key} = {report['figures'][key]!r}"


def test_rtpsynth_figures_or_reason(report: dict) -> None:
    have = importlib.util.find_spec("rtpsynth") is not None
    for key in THEIRS:
        if have:
            assert positive(report["figures"][key]), key
        else:
            assert report["figures"][key] is None
            assert "not installed" in report["skipped"]["rtpsynth"]


def test_targets_reported(report: dict) -> None:
    assert len(report["targets"]) == 9
    for name, t in report["targets"].items():
        assert isinstance(t["pass"], bool), name
        assert positive(t["target"]), name


def test_markdown_is_the_table_with_its_command_commit_and_machine() -> None:
    """``--markdown`` prints what docs/measurements.md pastes: the command, the commit
    and the machine in a line, then the table exactly as the plain run prints it."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rtudp.tools.bench", "rtp", "--quick",
                           "--markdown"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    head, blank, fence, *table = proc.stdout.splitlines()
    assert head.startswith("`rtudp bench rtp --quick` at ") and not blank
    assert " at " in head and "CPUs" in head and "kernel" in head
    assert fence == "```text" and table[-1] == "```"
    assert any(line.startswith("jitter buffer, udp_in in order") for line in table)
