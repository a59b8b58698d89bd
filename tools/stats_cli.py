"""``rtudp stats CHANNEL``: a channel's counters and latency histograms, read-only.

Without ``--hdr`` it prints the counters and both histograms (``--json``: the keys
of ``Channel.stats()`` that the pool keeps).  ``--hdr FILE`` exports one histogram
(``--hist``, default tx_lateness) in HdrHistogram's formats (tools/hdr_export.py):
a ``.hlog`` interval log (``--every S --count N``: N intervals S seconds apart,
each what was recorded during it; default one interval since the pool started),
any other name the ``.hgrm`` percentile distribution of everything so far.
``--plot FILE.png`` draws every histogram of the channel (its block's and its kind's)
as bars (tools/plot.py; matplotlib, the ``plot`` extra).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rtudp.shmring.channel import BLOCK_HISTOGRAMS
from rtudp.shmring.errors import PoolNotRunningError, SegmentNotFoundError
from rtudp.shmring.observe import ChannelSnapshot, snapshot_channel, snapshot_pool

from .cli_args import plain_doc
from .cli_errors import attach, cli_error

#: the channel block's histograms (tx_lateness, rx_delay)
HISTS = tuple(c.name for c in BLOCK_HISTOGRAMS)


def _err(msg: str) -> int:
    return cli_error("stats", msg)


def positive(kind: type, what: str) -> Any:
    """An argparse type: a number of ``kind`` > 0 (``what`` names it in errors)."""
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be > 0, got {text!r}")
        return v
    return parse


def add_parser(sub: Any) -> None:
    """``rtudp stats`` on the CLI's subparsers."""
    from .pool_cli import default_pool, parse_pool_name

    p = sub.add_parser("stats", help="a channel's counters and histograms (HdrHistogram "
                       "export with --hdr)", description=plain_doc(__doc__))
    p.add_argument("channel", help="channel name")
    p.add_argument("--pool", type=parse_pool_name, default=default_pool(),
                   help="pool name (default: $RTUDP_POOL or 'default')")
    p.add_argument("--json", action="store_true", help="print the stats as JSON")
    p.add_argument("--hdr", metavar="FILE",
                   help="write a histogram: FILE.hlog = interval log, else .hgrm percentiles")
    p.add_argument("--hist", choices=HISTS, default="tx_lateness",
                   help="which histogram --hdr writes (default tx_lateness)")
    p.add_argument("--every", type=positive(float, "--every seconds"), metavar="S",
                   help="with a .hlog: one interval every S seconds")
    p.add_argument("--count", type=positive(int, "--count"), default=1, metavar="N",
                   help="with --every: how many intervals (default 1)")
    p.add_argument("--plot", type=_plot_path, metavar="FILE.png",
                   help="draw the channel's histograms into FILE (.png, .svg, .pdf; needs "
                        "matplotlib: pip install 'rtudp[plot]')")
    p.set_defaults(func=run)


def _plot_path(text: str) -> str:
    """``--plot``'s type (tools/plot.py), imported only when the option is given."""
    from .plot import plot_path

    return plot_path(text)


def _plot(args: argparse.Namespace, ch: ChannelSnapshot) -> int:
    from rtudp.shmring.kinds import kind_name

    from .plot import plot_histograms

    title = (f"rtudp stats: channel {args.channel!r} of pool {args.pool!r} "
             f"({kind_name(ch.config['kind'])}), everything since it opened")
    try:
        plot_histograms(args.plot, title, ch.named_histograms())
    except OSError as exc:
        return _err(f"cannot write --plot {args.plot!r}: {exc}")
    print(f"plot: {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def channel_stats(ch: ChannelSnapshot) -> dict[str, Any]:
    """What the pool keeps of ``Channel.stats()`` (not a reader's own losses)."""
    out = ch.stats()
    out["readers_attached"] = ch.readers_attached
    return out


def _export(args: argparse.Namespace, first: ChannelSnapshot) -> int:
    try:  # an optional dependency where no wheel of it exists (aarch64)
        from .hdr_export import write_hgrm, write_hlog
    except ImportError as exc:
        return _err(f"--hdr needs the hdrhistogram package ({exc}): pip install 'rtudp[hdr]' "
                    "(on aarch64 it builds from source, with a C compiler)")
    if not args.hdr.endswith(".hlog"):
        if args.every is not None:
            return _err("--every makes an interval log: give --hdr a FILE ending in .hlog")
        with open(args.hdr, "wb") as f:
            write_hgrm(f, first.histograms[args.hist])
        return 0
    started = snapshot_pool(args.pool).started_ns
    intervals = []
    if args.every is None:
        intervals.append((started, first.taken_ns, first.histograms[args.hist]))
    else:
        prev = first
        for _ in range(args.count):
            time.sleep(args.every)
            cur = snapshot_channel(args.pool, args.channel)
            intervals.append((prev.taken_ns, cur.taken_ns,
                              cur.histograms[args.hist] - prev.histograms[args.hist]))
            prev = cur
        started = first.taken_ns
    with open(args.hdr, "w") as f:
        write_hlog(f, intervals, f"rtudp {args.hist} of channel {args.channel!r} in pool "
                                 f"{args.pool!r} (values in ns)", started)
    return 0


def _print_rows(ch: ChannelSnapshot) -> None:
    """The kind's rows (a udt channel's connections), one line each."""
    from rtudp.shmring.kinds import find

    kind = find(ch.config["kind"])
    rows = kind.layout.rows if kind is not None else None
    if rows is None:
        return
    out = rows.stats(ch.kind_rows)
    print(f"\n{rows.name}: {len(out)}")
    for r in out:
        print("  " + "  ".join(f"{k}={v}" for k, v in r.items()))


def run(args: argparse.Namespace, _rest: list[str]) -> int:
    """Run ``rtudp stats``."""
    ch = attach("stats", args, snapshot_channel)
    if ch is None:
        return 1
    try:
        if args.hdr is not None:
            return _export(args, ch)
    except OSError as exc:
        return _err(f"cannot write --hdr {args.hdr!r}: {exc}")
    except (SegmentNotFoundError, PoolNotRunningError):
        return _err(f"channel {args.channel!r} of pool {args.pool!r} went away")
    stats = channel_stats(ch)
    if args.json:
        print(json.dumps(stats))
        return _plot(args, ch) if args.plot else 0
    for k, v in ch.counters.items():
        print(f"{k:<22} {v}")
    print(f"{'readers_attached':<22} {stats['readers_attached']}")
    for k, v in ch.kind_counters.items():
        print(f"{k:<22} {v}")
    _print_rows(ch)
    for name in HISTS:
        print(f"\n{name}:\n{ch.histograms[name].text_histogram()}")
    return _plot(args, ch) if args.plot else 0


__all__ = ["add_parser", "channel_stats", "positive", "run"]
