"""The ``rtudp`` command: ``rtudp demo``, ``rtudp pool ...``, ``rtudp bench ...``,
``rtudp metrics``, ``rtudp stats``, ``rtudp tap``, ``rtudp doctor``, ``rtudp rtstat``
(the ``rtstat`` command), ``rtudp version``."""
from __future__ import annotations

import argparse
import os
import signal
import sys


def _version(_args: argparse.Namespace, _rest: list[str]) -> int:
    import rtudp
    from rtudp.workers import worker_path, worker_version

    print(f"rtudp {rtudp.__version__}")
    print(f"worker {worker_path()}: {worker_version()}")
    return 0


def _bench(_args: argparse.Namespace, rest: list[str]) -> int:
    from . import bench

    return bench.main(rest)


def _rtstat(_args: argparse.Namespace, rest: list[str]) -> int:
    from . import rtstat

    return rtstat.main(rest, prog="rtudp rtstat")


#: subcommands that parse their own arguments (what follows them is handed on)
PASS_THROUGH = frozenset({"bench", "rtstat"})


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; subcommands hand their remaining arguments on."""
    parser = argparse.ArgumentParser(prog="rtudp", description="rtudp: real-time UDP for Python")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    b = sub.add_parser("bench", help="run a benchmark (rtudp bench --help lists them)",
                       add_help=False)
    b.set_defaults(func=_bench)
    r = sub.add_parser("rtstat", help="live view of pools, workers and channels (the rtstat "
                       "command; rtudp rtstat --help)", add_help=False)
    r.set_defaults(func=_rtstat)
    from . import demo, doctor, metrics, pool_cli, stats_cli, tap

    demo.add_parser(sub)
    doctor.add_parser(sub)
    pool_cli.add_parser(sub)
    metrics.add_parser(sub)
    stats_cli.add_parser(sub)
    tap.add_parser(sub)
    v = sub.add_parser("version", help="print the versions of the package and worker")
    v.set_defaults(func=_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rtudp`` command."""
    args, rest = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.command not in PASS_THROUGH and rest:
        build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(args.func(args, rest))
    except BrokenPipeError:
        # the reader went away (`rtudp demo | head`): stop quietly, as a shell tool does;
        # stdout goes to /dev/null so the flush at exit raises nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
