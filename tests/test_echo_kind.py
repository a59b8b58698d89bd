"""A kind is its own files plus its kinds.def line and its registry line: the test-only
echo kind (tests/kinds/echo/: C hooks and area, a handle) shows up in stats(), rtstat
(its table, --json), ``rtudp stats`` and ``rtudp metrics`` with no edit to any of them,
and is not in what ships (docs/adding-a-kind.md)."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import socket
from typing import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

import rtudp
from kind_helpers import ROOT, BuiltKinds, build
from rtstat_helpers import table
from waiting import wait_for
from rtudp.shmring import kinds
from rtudp.shmring._native import lib
from rtudp.testing import check_pool_gone, unique_pool_name
from rtudp.tools import cli, rtstat

pytestmark = pytest.mark.skipif(shutil.which("cc") is None or shutil.which("make") is None,
                                reason="no C compiler or make: the test kinds cannot be built")

#: the shared files a kind may touch besides its own (the C and Python registries,
#: packaging); none of the tools that show it
TOOLS = ("tools/rtstat.py", "tools/rtstat_model.py", "tools/rtstat_view.py",
         "tools/rtstat_columns.py", "tools/rtstat_detail.py", "tools/rtstat_screen.py",
         "tools/plot.py", "tools/metrics.py",
         "tools/stats_cli.py", "shmring/observe.py", "shmring/channel.py", "api/channel.py",
         "api/handles.py", "workers/kinds.py", "csrc/kinds.c", "csrc/proto/registry.c")


@pytest.fixture(scope="module")
def test_kinds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltKinds]:
    """The test build, with the echo kind registered in this process for the module."""
    built = build(tmp_path_factory.mktemp("kinds"))
    # the line a shipped kind has at the end of rtudp/shmring/kinds.py
    kinds.register("echo", handle="echo_kind:EchoChannel", layout=built.layouts["echo"])
    try:
        yield built
    finally:
        kinds.unregister("echo")


@pytest.fixture
def echo_pool(test_kinds: BuiltKinds) -> Iterator[rtudp.Pool]:
    """A pool whose workers are the test build (they serve the echo kind too)."""
    pool = rtudp.Pool(unique_pool_name(), cpus=sorted(os.sched_getaffinity(0))[:1],
                      rt_priority=0, worker=[test_kinds.worker]).start()
    pids = {w["pid"] for w in pool.workers()}
    try:
        yield pool
    finally:
        pool.stop()
        assert not check_pool_gone(pool.name, pids)


def _echo(pool: rtudp.Pool, n: int) -> tuple[rtudp.Channel, socket.socket]:
    """An echo channel that has echoed ``n`` datagrams back to a plain socket."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    ch = pool.open_channel("e", kind="echo", remote=peer.getsockname())
    for i in range(n):
        peer.sendto(b"ping %d" % i, ch.local)
        assert peer.recvfrom(100) == (b"ping %d" % i, ch.local)
    return ch, peer


def _counts(ch: rtudp.Channel) -> tuple[int, int, int]:
    st = ch.stats()
    return st["echo_echoed"], st["rx_packets"], st["tx_requested"]


def test_echo_kind_everywhere_without_a_line_of_its_own(echo_pool, capsys, tmp_path):
    layout = kinds.get("echo").layout
    assert [(c.name, c.type, c.show) for c in layout.counters] == [("echoed", "counter", True)]
    ch, peer = _echo(echo_pool, 3)
    with ch, peer:
        assert type(ch).__name__ == "EchoChannel"
        # the worker counts an echo once it has sent it: the peer may have it first
        assert wait_for(lambda: _counts(ch) == (3, 3, 3), 10.0), _counts(ch)
        assert ch.recv(timeout=1).data == b"ping 0"  # published to readers too

        assert rtstat.main(["--pool", echo_pool.name, "--once", "--json",
                            "--interval", "0.1"]) == 0
        (pool,) = json.loads(capsys.readouterr().out)["pools"]
        (row,) = pool["channels"]
        assert row["kind"] == "echo" and row["totals"]["echo_echoed"] == 3

        assert rtstat.main(["--pool", echo_pool.name, "--once", "--interval", "0.1"]) == 0
        screen = capsys.readouterr().out
        echo = table(screen, "echo channel")  # the kind's own table, after the channels
        assert echo.names == ["echo channel", "echoed pkt"] and echo.cell("e", "echoed pkt") == "3"
        assert rtstat.main(["--pool", echo_pool.name, "--channel", "e", "--once",
                            "--interval", "0.1"]) == 0
        detail = capsys.readouterr().out
        assert "channel e " in detail and re.search(r"echo echoed pkt +3 ", detail), detail

        assert cli.main(["stats", "e", "--pool", echo_pool.name, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["echo_echoed"] == 3

        prom = tmp_path / "rtudp.prom"
        assert cli.main(["metrics", "--pool", echo_pool.name, "--textfile", str(prom)]) == 0
        fams = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
        fam = fams["rtudp_echo_echoed"]
        assert fam.type == "counter" and fam.documentation == layout.counter("echoed").help
        assert [(s.name, s.labels["channel"], s.value) for s in fam.samples] == \
            [("rtudp_echo_echoed_total", "e", 3.0)]
    for path in TOOLS:
        assert "echo" not in (ROOT / path).read_text(), path


def test_echo_kind_is_not_shipped(test_kinds, rtudp_pool):
    """The shipped extension and worker know no echo kind: registered in Python, it is
    refused by the worker, naming its code."""
    assert "echo" not in kinds.C_LAYOUTS and not hasattr(lib, "RTUDP_KIND_ECHO")
    assert "echo" in test_kinds.layouts
    code = test_kinds.layouts["echo"].code
    with pytest.raises(rtudp.RtUdpError, match=f"channel kind {code} is not one this worker"):
        rtudp_pool.open_channel("e", kind="echo", remote=("127.0.0.1", 9))
    assert rtudp_pool.channels() == []


def test_test_kinds_stay_in_tests() -> None:
    """kinds.def keeps test kinds under RTUDP_TEST_KINDS, their files under tests/kinds/."""
    text = (ROOT / "csrc" / "proto" / "kinds.def").read_text()
    assert "RTUDP_KIND(ECHO, echo," in text.split("#ifdef RTUDP_TEST_KINDS")[1]
    assert not list(pathlib.Path(ROOT / "csrc").rglob("echo*"))
