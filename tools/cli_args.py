"""Number arguments of the ``rtudp`` commands: parsed, range-checked, and refused with
an argparse error that names the option, the bad value and the range."""
from __future__ import annotations

import argparse
import math
import re
from typing import Callable, Union

Number = Union[int, float]


def _fmt(v: Number) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:g}"


def ranged(kind: type, what: str, lo: Number, hi: Number = math.inf, *,
           above_lo: bool = False, hint: str = "") -> Callable[[str], Number]:
    """An argparse ``type=``: the text as ``kind`` (an int may have ``_`` separators) in
    ``lo..hi`` (with ``above_lo``, lo itself excluded); ``what`` names it in the error,
    ``hint`` (if any) follows the range there."""
    expect = "an integer" if kind is int else "a number"
    span = f"({_fmt(lo)}, {_fmt(hi)}]" if above_lo else f"{_fmt(lo)}..{_fmt(hi)}"
    tail = f" ({hint})" if hint else ""

    def parse(text: str) -> Number:
        try:
            value = kind(text.replace("_", "")) if kind is int else kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: {expect}, {span}{tail}") \
                from None
        if not (lo < value if above_lo else lo <= value) or value > hi:
            raise argparse.ArgumentTypeError(f"{what} {_fmt(value)} is out of range {span}{tail}")
        return value

    parse.__name__ = what  # argparse names the type in its own errors
    return parse


__all__ = ["ranged"]


def plain_doc(doc: str | None) -> str:
    """A module docstring's first paragraph as ``--help`` text: the RST markup
    (````literal````, ``:mod:`x```) left out, the lines joined."""
    first = (doc or "").strip().split("\n\n")[0]
    first = re.sub(r":\w+:`([^`]*)`", r"\1", first).replace("``", "")
    return " ".join(first.split())
