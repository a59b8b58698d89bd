"""``rtstat``: a live view of every rtudp pool on the machine.

Reads shared memory read-only and without locks (tools/rtstat_model.py); renders
with rich (tools/rtstat_view.py).  ``--once`` takes two samples ``--interval``
apart (rates need two) and prints one frame; ``--json`` prints frames as JSON,
one per line.  In the live view ``q`` or Ctrl-C quits and restores the terminal.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import select
import signal
import sys
import termios
import time
import tty
from typing import Any

from rich.console import Console
from rich.live import Live

from .pool_cli import parse_pool_name
from .rtstat_model import Collector
from .rtstat_view import render_frame

#: width of the printed table when stdout is not a terminal
PIPE_WIDTH = 220


def _interval(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid interval {text!r}: a number of seconds")
    if not 0.05 <= v <= 3600:
        raise argparse.ArgumentTypeError(f"interval {text!r} out of range 0.05..3600 s")
    return v


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"invalid --filter regex {text!r}: {exc}") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """rtstat's command line."""
    p = argparse.ArgumentParser(prog="rtstat", description="live view of rtudp pools: "
                                "workers, channels, rates, lateness, losses")
    p.add_argument("--pool", type=parse_pool_name, help="show only this pool (default: every pool)")
    p.add_argument("--interval", type=_interval, default=1.0, metavar="S",
                   help="seconds between refreshes (default 1)")
    p.add_argument("--once", action="store_true",
                   help="print one frame (two samples INTERVAL apart) and exit")
    p.add_argument("--json", action="store_true",
                   help="print frames as JSON, one per line (with --once: one)")
    p.add_argument("--filter", type=_regex, metavar="REGEX",
                   help="show only channels whose name matches REGEX (re.search)")
    return p


class _Keys:
    """Single keys from a terminal's stdin (cbreak mode), restored on exit."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin.isatty() else -1
        self._saved: Any = None

    def __enter__(self) -> "_Keys":
        if self.fd >= 0:
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def wait_quit(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as ``q`` is pressed."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.fd < 0:
                time.sleep(left)
                return False
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                ch = os.read(self.fd, 32)
                if not ch or b"q" in ch.lower():
                    return True


def _print_once(args: argparse.Namespace, collector: Collector, out: Console) -> int:
    collector.frame()  # the first sample: rates need a second one
    time.sleep(args.interval)
    frame = collector.frame()
    if args.json:
        print(json.dumps(frame), flush=True)
    else:
        out.print(render_frame(frame, args.interval, live=False))
    return 0 if frame["pools"] or args.pool is None else 1


def _json_stream(args: argparse.Namespace, collector: Collector) -> int:
    while True:
        print(json.dumps(collector.frame()), flush=True)
        time.sleep(args.interval)


def _live(args: argparse.Namespace, collector: Collector, console: Console) -> int:
    with _Keys() as keys, Live(console=console, screen=True, auto_refresh=False,
                               transient=True) as live:
        while True:
            # the terminal's size now (not $COLUMNS, which may be stale): resizes are followed
            console.size = os.get_terminal_size(sys.stdout.fileno())
            live.update(render_frame(collector.frame(), args.interval, live=True), refresh=True)
            if keys.wait_quit(args.interval):
                return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rtstat`` command."""
    args = build_parser().parse_args(argv)
    collector = Collector(args.pool, args.filter)
    tty_out = sys.stdout.isatty()
    console = Console(width=None if tty_out else PIPE_WIDTH, highlight=False)

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        if args.once:
            return _print_once(args, collector, console)
        if args.json or not tty_out:
            if not args.json:
                console.print("rtstat: stdout is not a terminal: printing a frame every "
                              "interval (use --once for one)")
                while True:
                    console.print(render_frame(collector.frame(), args.interval, live=False))
                    time.sleep(args.interval)
            return _json_stream(args, collector)
        return _live(args, collector, console)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
