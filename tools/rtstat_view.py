"""rtstat's terminal view: a frame (tools/rtstat_model.py) as rich renderables that fit
the terminal's width (tools/rtstat_columns.py): a pool's workers, its channels, and a
table per kind of the counters its kind shows; or one channel in detail
(tools/rtstat_detail.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from rtudp.shmring.kinds import CHANNEL_COUNTERS, Counter, Kind, kinds
from rtudp.workers.tunables import settings_lines

from .rtstat_columns import Column, fit_table, hidden_note, si, si_ns

_STATE_STYLE = {"running": "bold green", "stale": "bold yellow", "vanished": "bold red",
                "corrupt": "bold red"}
SELECTED = "reverse"


@dataclass
class View:
    """How to draw a frame: the width to fit (None: every column, however wide), live or
    printed once, the selected channel ``(pool, channel)`` (live), the refresh interval,
    the lines a live screen has (None: as many as it takes)."""

    width: int | None
    live: bool = False
    selected: tuple[str, str] | None = None
    interval: float = 1.0
    height: int | None = None


def _secs(s: float | None) -> str:
    return "-" if s is None else si(s)


_WORKER_COLUMNS = (
    Column("#", "", lambda w: str(w["index"])),
    Column("pid", "", lambda w: str(w["pid"]), 1),
    Column("cpu", "", lambda w: str(w["cpu"]), 2),
    Column("state", "", lambda w: w["state"], 3, left=True),
    Column("policy (kernel)", "", lambda w: w["policy_text"], 4, left=True),
    Column("CPU", "%", lambda w: "-" if w["cpu_percent"] is None else f"{w['cpu_percent']:.1f}",
           5),
    Column("heartbeat", "s ago", lambda w: _secs(w["heartbeat_age_s"]), 6),
    Column("restarts", "", lambda w: str(w["restarts"]), 7),
    Column("loops", "", lambda w: si(w["loops"]), 8),
    Column("sleeps", "", lambda w: si(w["sleeps"]), 9),
    Column("spin margin", "s", lambda w: si_ns(w["spin_margin_ns"]), 10),
)


def _iv(key: str, fmt: Any = si) -> Any:
    """A cell of the channel's last interval (``-`` until there are two samples)."""
    def cell(ch: dict[str, Any]) -> str:
        iv = ch["interval"]
        return fmt(iv[key]) if iv["seconds"] is not None else "-"
    return cell


def _per_s(key: str) -> Any:
    """A count over the last interval as a rate (``-`` until there are two samples)."""
    def cell(ch: dict[str, Any]) -> str:
        iv = ch["interval"]
        return si(iv[key] / iv["seconds"]) if iv["seconds"] else "-"
    return cell


def _route(ch: dict[str, Any]) -> str:
    return f"{ch['local'] or '-'} → {ch['remote'] or '*'}"


#: the channel table; priorities say which go first when the width runs out
CHANNEL_COLUMNS = (
    Column("channel", "", lambda ch: ch["name"], 0, left=True),
    Column("kind", "", lambda ch: f"{ch['kind']}/{ch['direction']}", 5, left=True),
    Column("local → remote", "", _route, 20, left=True),
    Column("rd", "", lambda ch: str(ch["readers"]), 15),
    Column("TX sent", "pkt", lambda ch: si(ch["totals"]["tx_packets"]), 8),
    Column("TX rate", "pkt/s", _iv("tx_pps"), 1),
    Column("TX bytes", "B/s", _iv("tx_bytes_per_s"), 12),
    Column("RX recv", "pkt", lambda ch: si(ch["totals"]["rx_packets"]), 9),
    Column("RX rate", "pkt/s", _iv("rx_pps"), 2),
    Column("RX bytes", "B/s", _iv("rx_bytes_per_s"), 13),
    Column("at once", "pkt/s", _per_s("tx_immediate"), 18),
    # whose lateness it is: the submitter's (queued with too little lead) or the worker's
    Column("late on arrival", "rec", lambda ch: si(ch["totals"].get("tx_late_arrival", 0)), 5),
    Column("sent late", "rec", lambda ch: si(ch["totals"].get("tx_late_sent", 0)), 5),
    Column("late p50", "s", _iv("lateness_p50_ns", si_ns), 11),
    Column("late p99", "s", _iv("lateness_p99_ns", si_ns), 3),
    Column("late max", "s", _iv("lateness_max_ns", si_ns), 7),
    Column("delay p50", "s", _iv("rx_latency_p50_ns", si_ns), 17),
    Column("delay p99", "s", _iv("rx_latency_p99_ns", si_ns), 6),
    Column("drops", "pkt", lambda ch: si(ch["drops"]), 4),
    Column("reader lost", "rec", lambda ch: si(ch["overruns"]), 10),
    Column("unblocked", "claims", lambda ch: si(ch["unblocked_claims"]), 19),
    Column("TX fill", "%", lambda ch: f"{ch['tx_fill_pct']:.1f}", 16),
)

_UNITS = {"packets": "pkt", "records": "rec", "bytes": "B", "ns": "s", "id": "hex",
          "packets/s": "pkt/s"}


def counter_header(c: Counter) -> tuple[str, str]:
    """A kind counter's header: its name in words (a histogram: its p99), its unit."""
    base = (c.name[:-3] if c.name.endswith("_ns") else c.name).replace("_", " ")
    if c.type == "histogram":
        return f"{base} p99", "s"
    unit = "" if c.type == "state" or base.endswith(c.unit) else _UNITS.get(c.unit, c.unit)
    return base, unit


def counter_cell(c: Counter, totals: dict[str, Any], key: str, exact: bool = False) -> str:
    """A kind counter's value from its stats() key(s): a duration, an id in hex, a number
    (``exact``: the integer itself, not SI)."""
    if c.type == "histogram":
        return si_ns(totals.get(f"{key}_p99_ns"))
    v = totals.get(key)
    if v is None or c.type in ("state", "text"):
        return "-" if v is None or v == "" else str(v)
    if c.unit == "ns":
        return si_ns(v or None)
    if c.unit == "id":
        return f"{v:08x}"
    return str(v) if exact else si(v)


def _counter_columns(title: str, counters: Any, prefix: str) -> list[Column]:
    """Columns of the counters to show (their stats() keys), after the
    channel's name; their order is their priority."""
    cols = [Column(f"{title} channel", "", lambda ch: ch["name"], 0, left=True)]
    for i, c in enumerate(x for x in counters if x.show):
        name, unit = counter_header(c)
        key = c.key(prefix)
        cols.append(Column(name, unit, lambda ch, c=c, key=key: counter_cell(c, ch["totals"],
                                                                             key),
                           i + 1, left=c.type == "state"))
    return cols


def row_columns(kind: Kind) -> list[Column]:
    """Columns of a kind's rows (a udt channel's connections): the first label (the
    row's id), the channel, then the counters to show, their order their priority.
    A table row is ``{"channel": name, "values": the row's stats()}``."""
    assert kind.layout.rows is not None
    shown = [c for c in kind.layout.rows.counters if c.show]
    cols = []
    for i, c in enumerate(shown):
        name, unit = counter_header(c)
        cell = (lambda r, c=c: counter_cell(c, r["values"], c.name))
        if i == 0:
            cols.append(Column(f"{kind.name} {name}", unit, cell, 0, left=True))
            cols.append(Column("channel", "", lambda r: r["channel"], 0, left=True))
        else:
            cols.append(Column(name, unit, cell, i, left=c.type in ("state", "text")))
    return cols


def kind_rows(kind: Kind, channels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of ``kind`` of every channel in ``channels`` (frame entries), in order."""
    if kind.layout.rows is None:
        return []
    name = kind.layout.rows.name
    return [{"channel": ch["name"], "values": r} for ch in channels
            if ch.get("kind") == kind.name for r in ch["totals"].get(name, ())]


def _styles(pool: dict[str, Any], rows: list[dict[str, Any]], view: View) -> list[str | None]:
    return [SELECTED if view.selected == (pool["name"], ch["name"]) else None for ch in rows]


def _fitted(title: str, columns: Any, rows: list[Any], view: View,
            styles: list[str | None] = ()) -> list[RenderableType]:
    fitted = fit_table(columns, rows, view.width, styles)
    note = hidden_note(fitted)
    return [Text(title, style="bold"), fitted.table] + ([note] if note else [])


def render_pool(pool: dict[str, Any], view: View) -> RenderableType:
    """One pool: a title line, its workers, its channels and a table per kind with
    counters to show (or why it cannot be shown)."""
    title = Text.assemble(("pool ", "bold"), (pool["name"], "bold cyan"), "  ",
                          (pool["state"].upper(), _STATE_STYLE.get(pool["state"], "bold")))
    if "supervisor" in pool:
        sup = pool["supervisor"]
        title.append(f"  supervisor pid {sup['pid']}  up {_secs(sup['uptime_s'])}s  "
                     f"heartbeat {_secs(sup['heartbeat_age_s'])}s ago  "
                     f"channel moves {sup.get('channel_moves', 0)}")
    parts: list[RenderableType] = [title]
    if pool.get("error"):
        parts.append(Text(f"  {pool['error']}", style="red"))
    if pool["workers"]:
        parts += _fitted("workers", _WORKER_COLUMNS, pool["workers"], view)
        # wrapped between settings, not cut: each is a name=value a user may look for
        parts += [Text(f"  settings: {line}", style="dim", overflow="fold")
                  for line in settings_lines(pool["workers"])]
    if "supervisor" not in pool:
        return Group(*parts)
    good = [ch for ch in pool["channels"] if not ch["error"]]
    if good:
        parts += _fitted("channels (rates and latency: the last interval)", CHANNEL_COLUMNS,
                         good, view, _styles(pool, good, view))
    for ch in pool["channels"]:
        if ch["error"]:
            parts.append(Text.assemble(f"  {ch['name']}: ", (ch["error"], "red")))
    if not pool["channels"]:
        parts.append(Text("  no channels open (or none match --filter)", style="dim"))
    for kind in kinds():
        rows = [ch for ch in good if ch.get("kind") == kind.name]
        if rows and any(c.show for c in kind.layout.counters):
            parts += _fitted(f"{kind.name} (totals)",
                             _counter_columns(kind.name, kind.layout.counters,
                                              kind.layout.prefix),
                             rows, view, _styles(pool, rows, view))
        conns = kind_rows(kind, good)
        if conns and kind.layout.rows is not None:
            parts += _fitted(f"{kind.name} {kind.layout.rows.name}", row_columns(kind), conns,
                             view, [SELECTED if view.selected == (pool["name"], r["channel"])
                                    else None for r in conns])
    # the channel block's counters it shows (the impairment's), for the channels that
    # have any
    shown = [c for c in CHANNEL_COUNTERS if c.show]
    rows = [ch for ch in good if any(ch["totals"].get(c.name) for c in shown)]
    if rows and shown:
        parts += _fitted("impaired (totals)", _counter_columns("impaired", shown, ""), rows,
                         view, _styles(pool, rows, view))
    return Group(*parts)


def head_line(view: View, extra: str = "") -> Text:
    """rtstat's first line: the interval and, live, the keys."""
    keys = "  ↑↓ select, Enter: detail, q quits" if view.live else ""
    return Text(f"rtstat  every {view.interval:g} s{extra}{keys}", style="bold")


def render_frame(frame: dict[str, Any], view: View) -> RenderableType:
    """The whole screen."""
    head = head_line(view)
    if not frame["pools"]:
        which = (f"pool {frame['pool_filter']!r} is not running" if frame["pool_filter"]
                 else "no rtudp pool is running on this machine")
        wait = " - waiting for one" if view.live else ""
        return Group(head, Text(f"{which}{wait}", style="yellow"))
    return Group(head, *(x for p in frame["pools"] for x in (Text(""), render_pool(p, view))))


__all__ = ["CHANNEL_COLUMNS", "SELECTED", "View", "counter_cell", "counter_header",
           "head_line", "kind_rows", "render_frame", "render_pool", "row_columns"]
