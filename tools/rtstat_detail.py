"""rtstat's detail view of one channel: where it goes, every counter of its block, its
rings and its kind (exact totals), and each of its histograms drawn as bars.

The histograms are those of the channel block and of its kind (the kind registry's
descriptions: nothing here names a kind or a counter); their bars are what was
recorded since the channel opened, log-spaced rows from min to max, with the last
interval's figures above them.
"""
from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rtudp.shmring.kinds import CHANNEL_COUNTERS, KINDS

from .rtstat_columns import fit_table, hidden_note, si, si_ns
from .rtstat_view import View, counter_cell, counter_header, head_line, kind_rows, row_columns

#: eighths of a character cell, for bars finer than a whole cell
_EIGHTHS = " ▏▎▍▌▋▊▉"
#: a histogram panel at least this wide; two side by side when the width allows
PANEL_MIN = 64


def find_detail(frame: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(pool, channel) of the first channel in ``frame`` that carries a detail."""
    for pool in frame["pools"]:
        for ch in pool["channels"]:
            if "detail" in ch:
                return pool, ch
    return None


def bar(count: int, biggest: int, width: int) -> str:
    """A bar ``width`` cells long for the biggest count, in eighths of a cell."""
    if count <= 0 or biggest <= 0:
        return ""
    eighths = max(1, round(8 * width * count / biggest))
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def _figures_line(label: str, f: dict[str, Any] | None) -> Text:
    """``  label  n 4.61k  p50 7.52µs  ...  max 1.95ms`` (dim)."""
    if f is None or not f["count"]:
        return Text(f"  {label}: nothing", style="dim")
    figs = "  ".join(f"{k} {si_ns(f[key])}s" for k, key in (
        ("min", "min_ns"), ("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"),
        ("p99.9", "p999_ns"), ("max", "max_ns")))
    return Text(f"  {label}: n {si(f['count'])}  {figs}", style="dim")


def merge_rows(rows: list[list[int]], most: int) -> list[list[int]]:
    """At most ``most`` rows: runs of neighbouring rows (lower, upper, count) joined."""
    if len(rows) <= most:
        return rows
    k = -(-len(rows) // most)
    return [[rows[i][0], rows[min(i + k, len(rows)) - 1][1], sum(r[2] for r in rows[i:i + k])]
            for i in range(0, len(rows), k)]


#: lines of a histogram panel besides its bars: name, two lines of figures, a blank
PANEL_LINES = 4


def histogram_panel(h: dict[str, Any], width: int, most: int | None = None) -> RenderableType:
    """One histogram: its name and meaning, the last interval, the totals, the bars
    (``most``: at most that many)."""
    lines: list[RenderableType] = [Text.assemble((h["name"], "bold"), f"  {h['help']}"),
                                   _figures_line("last interval", h["interval"]),
                                   _figures_line("since open", h["total"])]
    rows = h["rows"] if most is None else merge_rows(h["rows"], most)
    if not rows:
        return Group(*lines[:1], Text("  nothing recorded yet", style="dim"))
    total = sum(r[2] for r in rows)
    biggest = max(r[2] for r in rows)
    cw = max(len(str(biggest)), 5)
    t = Table.grid(padding=(0, 1), pad_edge=False)
    t.add_column(justify="right", no_wrap=True)   # lower
    t.add_column(no_wrap=True)                    # -
    t.add_column(justify="right", no_wrap=True)   # upper
    t.add_column(no_wrap=True)                    # the bar
    t.add_column(justify="right", no_wrap=True)   # count
    t.add_column(justify="right", no_wrap=True)   # cumulative %
    room = max(4, width - (2 + 6 + 1 + 1 + 1 + 6 + 1 + 1 + cw + 1 + 7))
    seen = 0
    for lower, upper, count in rows:
        seen += count
        t.add_row(f"  {si_ns(lower)}s", "-", f"{si_ns(upper)}s",
                  Text(bar(count, biggest, room).ljust(room), style="cyan"),
                  str(count), f"{100.0 * seen / total:.2f}%")
    lines.append(t)
    return Group(*lines)


def _counter_items(ch: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of everything the channel counts: block, rates, rings, kind."""
    tot, iv, det = ch["totals"], ch["interval"], ch["detail"]
    items = [(c.name.replace("_", " "), str(tot[c.name])) for c in CHANNEL_COUNTERS
             if c.type != "histogram" and c.name in tot]
    if iv["seconds"]:
        items += [("TX pkt/s", si(iv["tx_pps"])), ("TX B/s", si(iv["tx_bytes_per_s"])),
                  ("RX pkt/s", si(iv["rx_pps"])), ("RX B/s", si(iv["rx_bytes_per_s"]))]
    tx, rx = det["tx_ring"], det["rx_ring"]
    items += [("TX ring fill %", f"{ch['tx_fill_pct']:.1f}"),
              ("TX ring bytes", si(tx["capacity"])), ("TX ring full events", str(tx["full_events"])),
              ("TX unblocked claims", str(tx["unblocked_claims"])),
              ("RX ring bytes", si(rx["capacity"])),
              ("RX records written", str(rx["records_written"])),
              ("RX lapped events", str(rx["lapped_events"])),
              ("RX records lost", str(rx["records_lost"]))]
    kind = KINDS.get(ch["kind"])
    if kind is not None:
        for c in kind.layout.counters:
            if c.type == "histogram":
                continue
            name, unit = counter_header(c)
            label = f"{kind.name} {name}" + (f" {unit}" if unit and unit != "hex" else "")
            items.append((label, counter_cell(c, tot, c.key(kind.layout.prefix), exact=True)))
    return items


def _grid(items: list[tuple[str, str]], width: int) -> Table:
    """(label, value) pairs in as many columns as ``width`` holds, filled down."""
    n = grid_columns(items, width)
    per = -(-len(items) // n)
    t = Table.grid(padding=(0, 1), pad_edge=False)
    for _ in range(n):
        t.add_column(style="dim", no_wrap=True)
        t.add_column(justify="right", no_wrap=True, min_width=3)
        t.add_column(no_wrap=True, min_width=1)
    cols = [items[i * per:(i + 1) * per] for i in range(n)]
    for r in range(per):
        row: list[str] = []
        for col in cols:
            row += list(col[r]) + [""] if r < len(col) else ["", "", ""]
        t.add_row(*row)
    return t


def grid_columns(items: list[tuple[str, str]], width: int) -> int:
    """How many (label, value) columns ``width`` holds (1 to 4)."""
    cell = max(len(a) for a, _ in items) + max(len(b) for _, b in items) + 4
    return max(1, min(4, width // cell))


def _rows_part(ch: dict[str, Any], width: int) -> tuple[list[RenderableType], int]:
    """The channel's rows (a udt channel's connections) as a fitted table, if its kind
    has rows: a title, the table (or "none"), a blank line; and how many rows."""
    kind = KINDS.get(ch["kind"])
    if kind is None or kind.layout.rows is None:
        return [], 0
    rows = kind_rows(kind, [ch])
    title = Text(f"{kind.layout.rows.name} ({len(rows)})", style="bold")
    if not rows:
        return [title, Text("  none", style="dim"), Text("")], 0
    fitted = fit_table(row_columns(kind), rows, width)
    note = hidden_note(fitted)
    return [title, fitted.table] + ([note] if note else []) + [Text("")], len(rows)


def render_detail(frame: dict[str, Any], view: View, channel: str) -> RenderableType:
    """The detail screen of ``channel`` (or why it cannot be shown yet)."""
    keys = "  Esc: all channels" if view.live else ""
    head = head_line(View(None, False, interval=view.interval), keys + (
        ", q quits" if view.live else ""))
    found = find_detail(frame)
    if found is None:
        where = f"pool {frame['pool_filter']!r}" if frame["pool_filter"] else "any running pool"
        wait = " - waiting for it" if view.live else ""
        return Group(head, Text(f"no channel {channel!r} in {where}{wait}", style="yellow"))
    pool, ch = found
    width = view.width or 200
    title = Text.assemble(("channel ", "bold"), (ch["name"], "bold cyan"),
                          f"  pool {pool['name']}  {ch['kind']}/{ch['direction']}  "
                          f"{ch['local'] or '-'} → {ch['remote'] or '*'}")
    det = ch["detail"]
    sub = Text(f"  worker {ch['worker']}, capacity {det['capacity']} packets, max datagram "
               f"{det['max_datagram']} B, {ch['readers']} readers (pids "
               f"{', '.join(map(str, det['reader_pids'])) or '-'})", style="dim")
    hists = det["histograms"]
    per_row = 2 if width >= 2 * PANEL_MIN + 2 else 1
    panel_w = (width - 2 * (per_row - 1)) // per_row
    bands = -(-len(hists) // per_row)
    items = _counter_items(ch)
    counted = "counters (totals since the channel opened; rates: the last interval)"
    rows_part, n_rows = _rows_part(ch, width)
    rows_lines = 0 if not rows_part else 6 + n_rows
    most = None
    if view.height is not None:  # a live screen: the bars get what the counters leave
        left = view.height - 7 - rows_lines - -(-len(items) // grid_columns(items, width))
        if left // bands - PANEL_LINES < 4:  # short of room: counters at 0 go
            shown = [it for it in items if it[1] not in ("0", "0.0", "-")]
            counted += f"; {len(items) - len(shown)} at 0 not shown"
            items = shown or items
            left = view.height - 7 - rows_lines - -(-len(items) // grid_columns(items, width))
        most = max(6, left // bands - PANEL_LINES)  # PgDn shows the rest
    parts: list[RenderableType] = [head, Text(""), title, sub, Text(""),
                                   Text(counted, style="bold"), _grid(items, width), Text("")]
    parts += rows_part
    for i in range(0, len(hists), per_row):
        chunk = hists[i:i + per_row]
        if per_row == 1:
            parts.append(histogram_panel(chunk[0], panel_w, most))
        else:
            g = Table.grid(padding=(0, 2), pad_edge=False)
            for _ in chunk:
                g.add_column(width=panel_w, no_wrap=True)
            g.add_row(*(histogram_panel(h, panel_w, most) for h in chunk))
            parts.append(g)
        parts.append(Text(""))
    return Group(*parts)


__all__ = ["bar", "find_detail", "histogram_panel", "merge_rows", "render_detail"]
