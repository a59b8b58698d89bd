"""rtstat's tables that fit the terminal: columns chosen by width in priority order,
units in the headers, numbers with SI prefixes.

A :class:`Column` says what its header is (a name, and a unit on the header's last
line), how to make its cell from a row, and how much it matters (its priority: 0
is always shown).  :func:`fit_table` measures every column, keeps the most
important ones that fit in the width, and builds a rich table of them in their
display order, with as many columns as fit never cut to ``…``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rich import box
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

#: no lines but an underline under each column's header, runs split by the divider (a
#: space): a terminal's width goes to figures, and the runs mark each column's extent
HEAD_RULE = box.Box("    \n    \n ─  \n    \n    \n    \n    \n    \n")
#: characters between two columns (a left padding and the divider)
GAP = 2

_BIG = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_SMALL = ((1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def _three(x: float) -> str:
    """x (1 <= x < 1000) with three significant digits."""
    return f"{x:.0f}" if x >= 99.95 else f"{x:.1f}" if x >= 9.995 else f"{x:.2f}"


def si(v: float | None) -> str:
    """A number with an SI prefix and three significant digits: ``1234567`` -> ``1.23M``,
    ``0.0000123`` -> ``12.3µ``, an integer below 1000 as is; None -> ``-``."""
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if v < 0:
        return "-" + si(-v)
    if v == 0:
        return "0"
    if v < 1000 and (isinstance(v, int) or float(v).is_integer()):
        return str(int(v))
    for scale, prefix in _BIG:
        if v >= scale * 0.9995:
            return _three(v / scale) + prefix
    if v >= 0.9995:
        return _three(v)
    for scale, prefix in _SMALL:
        if v >= scale * 0.9995:
            return _three(v / scale) + prefix
    return f"{v:.2g}"


def si_ns(ns: float | None) -> str:
    """A duration in ns as seconds with an SI prefix (``12.3µ``); the header says ``s``."""
    return "-" if ns is None else si(ns / 1e9)


@dataclass(frozen=True)
class Column:
    """One column of a fitted table."""

    #: what it shows (may be split over two header lines to be narrower)
    name: str
    #: its unit, the header's last line ("" for none)
    unit: str
    #: its cell from a row (a str, or a rich Text for a styled one)
    cell: Callable[[Any], str | Text]
    #: 0: always shown; larger: dropped first when the width runs out
    priority: int = 0
    left: bool = False


def _name_lines(name: str, room: int) -> list[str]:
    """``name`` on one line, or on two (split at a space) when it is wider than ``room``."""
    if len(name) <= room or " " not in name:
        return [name]
    words = name.split(" ")
    splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
    return list(min(splits, key=lambda ab: max(len(ab[0]), len(ab[1]))))


@dataclass
class Fitted:
    """What :func:`fit_table` made: the table and the columns it left out."""

    table: Table
    hidden: list[Column]
    width: int


def fit_table(columns: Sequence[Column], rows: Sequence[Any], width: int | None,
              styles: Sequence[str | None] = (), title: str | None = None) -> Fitted:
    """A table of ``rows`` with the columns that fit in ``width`` (None: all of them),
    the most important first; ``styles[i]`` styles row i (e.g. the selected one)."""
    cells = [[c.cell(r) for c in columns] for r in rows]
    body = [max((cell_len(str(row[i])) for row in cells), default=1)
            for i in range(len(columns))]
    heads = [_name_lines(c.name, max(body[i], len(c.unit))) + ([c.unit] if c.unit else [])
             for i, c in enumerate(columns)]
    widths = [max(body[i], *(len(x) for x in heads[i])) for i in range(len(columns))]
    order = sorted(range(len(columns)), key=lambda i: columns[i].priority)
    keep: set[int] = set()
    used = -GAP
    for i in order:
        need = widths[i] + GAP
        if width is None or columns[i].priority == 0 or used + need <= width:
            keep.add(i)
            used += need
    shown = [i for i in range(len(columns)) if i in keep]
    height = max((len(heads[i]) for i in shown), default=1)
    t = Table(box=HEAD_RULE, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1),
              header_style="bold", title=title, title_justify="left", title_style="bold",
              expand=False)
    for i in shown:
        lines = [""] * (height - len(heads[i])) + heads[i]
        head = Text("\n".join(lines[:-1]) + "\n") if len(lines) > 1 else Text()
        last = lines[-1]
        head.append(last, style="dim" if columns[i].unit and last == columns[i].unit else "")
        t.add_column(head, justify="left" if columns[i].left else "right", no_wrap=True,
                     min_width=widths[i])
    for r, row in enumerate(cells):
        style = styles[r] if r < len(styles) else None
        t.add_row(*(row[i] for i in shown), style=style)
    return Fitted(t, [columns[i] for i in range(len(columns)) if i not in keep], used)


def hidden_note(fitted: Fitted) -> Text | None:
    """A dim line naming the columns left out for want of width (None: none were)."""
    if not fitted.hidden:
        return None
    names = ", ".join(c.name for c in fitted.hidden)
    return Text(f"  {len(fitted.hidden)} more (--wide, or a wider terminal): {names}",
                style="dim")


__all__ = ["Column", "Fitted", "GAP", "HEAD_RULE", "fit_table", "hidden_note", "si", "si_ns"]
