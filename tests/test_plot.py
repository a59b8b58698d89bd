"""``--plot``: the drawings (tools/plot.py) from histograms, ``rtudp stats CHANNEL
--plot`` on a live channel, bad files refused before anything runs, and a clear error
naming the ``plot`` extra when matplotlib is missing (the bench runs' own plots are
checked in tests/test_bench_net.py and tests/test_bench_netflux.py)."""
from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time

import pytest
from plot_helpers import check_png, needs_matplotlib

from rtudp.shmring.hist import Histogram
from rtudp.tools import cli

#: runs Python with matplotlib made unimportable (as on a machine without the extra)
NO_MATPLOTLIB = """
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
sys.meta_path.insert(0, _Hide())
from rtudp.tools import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def _lognormal(rng: random.Random, mu: float, n: int = 5000) -> Histogram:
    return Histogram.from_values([int(rng.lognormvariate(mu, 0.5)) for _ in range(n)])


@needs_matplotlib
def test_cdfs_every_curve_and_target(tmp_path):
    from rtudp.tools.plot import Curve, Panel, Target, cdf_points, plot_cdfs

    rng = random.Random(7)
    ours, peer = _lognormal(rng, 8), _lognormal(rng, 11)
    xs, ys = cdf_points(ours)
    assert ys[0] == 0 and ys[-1] == 1 and xs == sorted(xs) and ys == sorted(ys)
    assert xs[0] == ours.min_ns and xs[-1] == ours.max_ns
    panels = [Panel("a", "lateness", [Curve("rtudp", ours, True), Curve("python", peer)],
                    [Target("target p99 ≤ 10 µs", 10_000, 0.99),
                     Target("target max ≤ 1 ms", 1e6, None)], "a note"),
              Panel("b", "lateness", [Curve("rtudp", ours, True), Curve("empty", Histogram())])]
    path = str(tmp_path / "cdf.png")
    plot_cdfs(path, "title", panels, "footer")
    check_png(path, colours=5, width=1400)


@needs_matplotlib
def test_histograms_bars_and_an_empty_one(tmp_path):
    from rtudp.tools.plot import plot_histograms

    rng = random.Random(3)
    path = str(tmp_path / "h.svg")  # any format matplotlib writes
    plot_histograms(path, "t", [("a", "x", _lognormal(rng, 9)), ("b", "y", Histogram())])
    assert open(path).read(200).lstrip().startswith("<?xml")
    png = str(tmp_path / "h.png")
    plot_histograms(png, "t", [("a", "x", _lognormal(rng, 9)), ("b", "y", Histogram()),
                               ("c", "z", _lognormal(rng, 12))])
    check_png(png, colours=5)


@needs_matplotlib
@pytest.mark.rtudp(rt_priority=0)
def test_stats_plot_of_a_live_channel(rtudp_pool, tmp_path, capsys):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        ch = rtudp_pool.open_channel("tx", remote=sink.getsockname(), direction=0)
        with ch:
            now = time.monotonic_ns()
            for i in range(200):  # spread: the lateness histogram gets many values
                ch.send(b"x" * 64, now + 1_000_000 + i * 50_000)
            deadline = time.monotonic() + 10
            while ch.stats()["tx_packets"] < 200 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert ch.stats()["tx_packets"] == 200
            path = str(tmp_path / "tx.png")
            assert cli.main(["stats", "tx", "--pool", rtudp_pool.name, "--json",
                             "--plot", path]) == 0
    finally:
        sink.close()
    captured = capsys.readouterr()
    assert f"plot: {path}" in captured.err  # stdout stays JSON
    check_png(path, colours=5)


@needs_matplotlib
def test_bad_plot_files_are_refused_before_anything_runs(tmp_path, capsys):
    for argv, want in ((["bench", "timing", "--plot", str(tmp_path / "x.nope")],
                        "give a file ending in one of"),
                       (["bench", "netflux", "--plot", str(tmp_path / "no" / "x.png")],
                        "no folder"),
                       (["stats", "c", "--plot", str(tmp_path / "x.nope")],
                        "give a file ending in one of")):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "argument --plot" in err and want in err and "x." in err, err


def test_without_matplotlib_the_error_names_the_extra(tmp_path):
    """No matplotlib: --plot fails at once (exit 2) saying how to get it; without --plot
    nothing needs it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for argv in (["bench", "latency", "--quick", "--plot", str(tmp_path / "l.png")],
                 ["stats", "nosuch", "--plot", str(tmp_path / "s.png")]):
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-c", NO_MATPLOTLIB, *argv], capture_output=True,
                             text=True, timeout=60, env=env)
        assert out.returncode == 2, (argv, out.stdout, out.stderr)
        assert "--plot needs matplotlib" in out.stderr and "rtudp[plot]" in out.stderr
        assert time.monotonic() - started < 30  # refused, not run
        assert not (tmp_path / "l.png").exists()
    out = subprocess.run([sys.executable, "-c", NO_MATPLOTLIB, "stats", "nosuch", "--pool",
                          "nopool"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1 and "matplotlib" not in out.stderr, out.stderr
