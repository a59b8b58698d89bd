"""``rtstat``: a live view of every rtudp pool on the machine.

Reads shared memory read-only and without locks (tools/rtstat_model.py); renders
with rich (tools/rtstat_view.py), fitted to the terminal's width: the columns that
matter most first, the rest with ``--wide``.  ``--channel NAME`` (or ``Enter`` on a
row selected with the arrow keys) shows one channel in detail, its histograms as
bars (tools/rtstat_detail.py); ``Esc`` goes back.  ``--once`` takes two samples
``--interval`` apart (rates need two) and prints one frame; ``--json`` prints frames
as JSON, one per line.  A screen taller than the terminal scrolls (PgUp/PgDn, Home,
End; the selected row stays in view).  ``q`` or Ctrl-C quits and restores the terminal.
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
from .rtstat_detail import find_detail, render_detail
from .rtstat_screen import Screen
from .rtstat_model import Collector
from .rtstat_view import View, render_frame

#: width of the printed tables when stdout is not a terminal (and $COLUMNS is not set)
PIPE_WIDTH = 220
#: room given to --wide's tables (live: cut at the terminal's edge; printed: as is)
WIDE_WIDTH = 1000


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


def build_parser(prog: str = "rtstat") -> argparse.ArgumentParser:
    """rtstat's command line (``prog``: what usage and errors call the command)."""
    p = argparse.ArgumentParser(prog=prog, description="live view of rtudp pools: "
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
    p.add_argument("--channel", metavar="NAME",
                   help="show channel NAME in detail: every counter, histograms as bars "
                        "(with --pool: of that pool; else the first pool that has one)")
    p.add_argument("--wide", action="store_true",
                   help="every column, however wide (default: what fits the terminal)")
    return p


#: key sequences a terminal sends (cbreak mode) and what rtstat does with them
KEYS = {b"\x1b[A": "up", b"\x1bOA": "up", b"k": "up", b"\x1b[B": "down", b"\x1bOB": "down",
        b"j": "down", b"\r": "enter", b"\n": "enter", b"\x1b": "back", b"\x7f": "back",
        b"q": "quit", b"Q": "quit", b"\x1b[5~": "pgup", b"\x1b[6~": "pgdn",
        b"\x1b[H": "home", b"\x1b[1~": "home", b"\x1bOH": "home", b"\x1b[F": "end",
        b"\x1b[4~": "end", b"\x1bOF": "end"}


def parse_keys(data: bytes) -> list[str]:
    """What a read of a terminal's input means, in order (unknown bytes are skipped)."""
    out = []
    i = 0
    while i < len(data):
        for seq in sorted(KEYS, key=len, reverse=True):
            if data.startswith(seq, i):
                out.append(KEYS[seq])
                i += len(seq)
                break
        else:
            i += 1
    return out


class _Keys:
    """Keys from a terminal's stdin (cbreak mode), restored on exit."""

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

    def wait(self, seconds: float) -> list[str]:
        """Sleep up to ``seconds``; the keys pressed as soon as there are some
        (``["quit"]`` at the end of the input)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            if self.fd < 0:
                time.sleep(left)
                return []
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                data = os.read(self.fd, 64)
                if not data:
                    return ["quit"]
                keys = parse_keys(data)
                if keys:
                    return keys


def _width(args: argparse.Namespace, console: Console) -> int | None:
    return None if args.wide else console.size.width


def _render(args: argparse.Namespace, frame: dict[str, Any], view: View) -> Any:
    if args.channel is not None:
        return render_detail(frame, view, args.channel)
    return render_frame(frame, view)


def _print_once(args: argparse.Namespace, collector: Collector, out: Console) -> int:
    collector.frame()  # the first sample: rates need a second one
    time.sleep(args.interval)
    frame = collector.frame()
    if args.json:
        print(json.dumps(frame), flush=True)
    else:
        out.print(_render(args, frame, View(_width(args, out), False, None, args.interval)))
    if args.channel is not None and find_detail(frame) is None:
        return 1
    return 0 if frame["pools"] or args.pool is None else 1


def _json_stream(args: argparse.Namespace, collector: Collector) -> int:
    while True:
        print(json.dumps(collector.frame()), flush=True)
        time.sleep(args.interval)


def _rows(frame: dict[str, Any]) -> list[tuple[str, str]]:
    """(pool, channel) of every channel on the screen, in its order."""
    return [(p["name"], ch["name"]) for p in frame["pools"] for ch in p["channels"]
            if not ch.get("error")]


def _live(args: argparse.Namespace, collector: Collector, console: Console) -> int:
    selected: tuple[str, str] | None = None
    pinned = args.channel is not None  # --channel: Esc does not leave it
    frame: dict[str, Any] | None = None
    next_at = 0.0
    top = 0  # the first line on screen
    follow = True  # keep the selected row in view (until the user scrolls)
    with _Keys() as keys, Live(console=console, screen=True, auto_refresh=False,
                               transient=True) as live:
        while True:
            # the terminal's size now (not $COLUMNS, which may be stale): resizes are followed
            console.size = os.get_terminal_size(sys.stdout.fileno())
            if frame is None or time.monotonic() >= next_at:  # a key alone only redraws
                frame = collector.frame()
                next_at = time.monotonic() + args.interval
            rows = _rows(frame)
            if rows and selected not in rows:
                selected = rows[0]
            height = console.size.height
            view = View(_width(args, console), True, selected, args.interval, height)
            screen = Screen(_render(args, frame, view), height, top,
                            WIDE_WIDTH if args.wide else None,  # --wide: cut at the edge
                            follow and args.channel is None)
            live.update(screen, refresh=True)
            top = screen.top
            for key in keys.wait(next_at - time.monotonic()):
                if key == "quit":
                    return 0
                if key in ("pgup", "pgdn", "home", "end"):
                    page = max(1, height - 2)
                    top = {"pgup": top - page, "pgdn": top + page, "home": 0,
                           "end": 1 << 30}[key]
                    follow = False
                elif args.channel is None and key in ("up", "down") and selected in rows:
                    i = rows.index(selected) + (1 if key == "down" else -1)
                    selected = rows[max(0, min(len(rows) - 1, i))]
                    follow = True
                elif args.channel is None and key == "enter" and selected is not None:
                    args.channel = selected[1]
                    collector.detail = selected
                    frame = None  # a sample now, with the detail in it
                    top = 0
                elif key == "back" and args.channel is not None and not pinned:
                    args.channel = None
                    collector.detail = None
                    top, follow = 0, True


def _pipe_width() -> int:
    """$COLUMNS when it is a width, else :data:`PIPE_WIDTH`."""
    text = os.environ.get("COLUMNS", "")
    return int(text) if text.isdigit() and int(text) >= 20 else PIPE_WIDTH


def main(argv: list[str] | None = None, prog: str = "rtstat") -> int:
    """Entry point of the ``rtstat`` command (and of ``rtudp rtstat``)."""
    args = build_parser(prog).parse_args(argv)
    collector = Collector(args.pool, args.filter)
    if args.channel is not None:
        collector.detail = (args.pool, args.channel)
    tty_out = sys.stdout.isatty()
    console = Console(width=None if tty_out else _pipe_width(), highlight=False)
    if args.wide and (args.once or not tty_out):
        console.width = WIDE_WIDTH  # printed: nothing is cut; as wide as it needs

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
                    console.print(_render(args, collector.frame(),
                                          View(_width(args, console), False, None,
                                               args.interval)))
                    time.sleep(args.interval)
            return _json_stream(args, collector)
        return _live(args, collector, console)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
