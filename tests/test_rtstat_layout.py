"""rtstat's layout without a pool: SI numbers, columns chosen by width and priority,
the keys a terminal sends, bar rows merged to fit (tests/test_rtstat.py drives the
whole thing in tmux)."""
from __future__ import annotations

import pytest
from rich.console import Console

from rtudp.tools.rtstat import parse_keys
from rtudp.tools.rtstat_columns import Column, fit_table, hidden_note, si, si_ns
from rtudp.tools.rtstat_detail import bar, merge_rows


@pytest.mark.parametrize("value, text", [
    (None, "-"), (0, "0"), (7, "7"), (999, "999"), (1000, "1.00k"), (1234567, "1.23M"),
    (999.6, "1.00k"), (12.345, "12.3"), (99.96, "100"), (0.5, "500m"), (2.5e-6, "2.50µ"),
    (-1500, "-1.50k"), (3.2e9, "3.20G"), (1e-12, "1e-12")])
def test_si(value, text):
    assert si(value) == text


def test_si_ns_is_seconds():
    assert si_ns(41_500) == "41.5µ" and si_ns(1_950_000) == "1.95m" and si_ns(None) == "-"


def _render(table, width: int = 300) -> list[str]:
    console = Console(width=width, record=True)
    with console.capture() as cap:
        console.print(table)
    return cap.get().splitlines()


def test_columns_by_priority_within_the_width():
    cols = [Column("name", "", lambda r: r[0], 0, left=True),
            Column("rate", "pkt/s", lambda r: si(r[1]), 1),
            Column("bytes", "B/s", lambda r: si(r[2]), 3),
            Column("late p99", "s", lambda r: si_ns(r[3]), 2)]
    rows = [("a-long-name", 2000, 200_000, 41_500), ("b", 0, 0, None)]
    every = fit_table(cols, rows, None)
    assert not every.hidden
    assert every.width == max(len(x) for x in _render(every.table))
    narrow = fit_table(cols, rows, every.width - 1)
    assert [c.name for c in narrow.hidden] == ["bytes"]  # the least important goes first
    lines = _render(narrow.table)
    assert max(len(x) for x in lines) <= every.width - 1
    assert lines[-2].split() == ["a-long-name", "2.00k", "41.5µ"]  # display order kept
    assert "bytes" in str(hidden_note(narrow))
    tiny = fit_table(cols, rows, 5)  # priority 0 stays however narrow
    assert [c.name for c in cols if c not in tiny.hidden] == ["name"]
    # a name wider than its figures goes on two lines, the unit on the last
    head = _render(every.table)[:3]
    assert [x.split() for x in head] == [["late"], ["rate", "bytes", "p99"],
                                         ["name", "pkt/s", "B/s", "s"]]


def test_keys():
    assert parse_keys(b"\x1b[B\x1b[Bj\r") == ["down", "down", "down", "enter"]
    assert parse_keys(b"\x1bOAk") == ["up", "up"]
    assert parse_keys(b"\x1b") == ["back"] and parse_keys(b"x q") == ["quit"]


def test_bars_and_merged_rows():
    assert bar(10, 10, 4) == "████" and bar(1, 16, 4) == "▎" and bar(0, 5, 4) == ""
    rows = [[i, i + 1, 1] for i in range(0, 20, 2)]
    merged = merge_rows(rows, 3)
    assert len(merged) <= 3 and sum(r[2] for r in merged) == 10
    assert merged[0][0] == 0 and merged[-1][1] == 19
    assert merge_rows(rows, 50) == rows
