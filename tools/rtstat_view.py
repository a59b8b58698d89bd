"""rtstat's terminal view: a frame (tools/rtstat_model.py) as rich renderables."""
from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rtudp.shmring.hist import format_ns
from rtudp.shmring.kinds import CHANNEL_COUNTERS, Counter, Kind, kinds

from .procinfo import fmt_age

_STATE_STYLE = {"running": "bold green", "stale": "bold yellow", "vanished": "bold red",
                "corrupt": "bold red"}


def _num(v: float | None, unit: str = "") -> str:
    """1234567 -> ``1.23M``; None -> ``-``."""
    if v is None:
        return "-"
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f}{suffix}{unit}"
    return f"{v:.0f}{unit}" if float(v).is_integer() or abs(v) >= 10 else f"{v:.1f}{unit}"


def _secs(s: float | None) -> str:
    return "-" if s is None else fmt_age(s * 1e9)


def _workers(pool: dict[str, Any]) -> Table:
    t = Table(title="workers", title_justify="left", expand=False, pad_edge=False)
    for col in ("#", "pid", "cpu", "state", "policy (kernel)", "CPU %", "heartbeat", "restarts"):
        t.add_column(col, justify="left" if col in ("state", "policy (kernel)") else "right")
    for w in pool["workers"]:
        cpu = "-" if w["cpu_percent"] is None else f"{w['cpu_percent']:.1f}"
        t.add_row(str(w["index"]), str(w["pid"]), str(w["cpu"]), w["state"], w["policy_text"],
                  cpu, _secs(w["heartbeat_age_s"]), str(w["restarts"]))
    return t


_CHANNEL_COLUMNS = ("channel", "kind", "local -> remote", "rd", "TX total", "TX pkt/s", "TX B/s",
                    "RX total", "RX pkt/s", "RX B/s", "imm", "late", "lat p50", "lat p99", "lat max", "RX p50", "RX p99",
                    "drops", "overr", "unblk", "fill%")


def _channels(pool: dict[str, Any]) -> Table:
    t = Table(title="channels (rates, imm/late and latency over the last interval)",
              title_justify="left", expand=False, pad_edge=False)
    for i, col in enumerate(_CHANNEL_COLUMNS):
        t.add_column(col, justify="left" if i < 3 else "right", no_wrap=True)
    for ch in pool["channels"]:
        if ch["error"]:
            t.add_row(ch["name"], Text(ch["error"], style="red"))
            continue
        iv = ch["interval"]
        have = iv["seconds"] is not None
        route = f"{ch['local'] or '-'} -> {ch['remote'] or '*'}"

        def rate(k: str) -> str:
            return _num(iv[k]) if have else "…"

        def ns(k: str) -> str:
            return format_ns(iv[k]) if have else "…"

        t.add_row(ch["name"], f"{ch['kind']}/{ch['direction']}", route, str(ch["readers"]),
                  str(ch["totals"]["tx_packets"]), rate("tx_pps"), rate("tx_bytes_per_s"),
                  str(ch["totals"]["rx_packets"]), rate("rx_pps"), rate("rx_bytes_per_s"), rate("tx_immediate"), rate("tx_late"),
                  ns("lateness_p50_ns"), ns("lateness_p99_ns"), ns("lateness_max_ns"),
                  ns("rx_latency_p50_ns"), ns("rx_latency_p99_ns"), _num(ch["drops"]),
                  _num(ch["overruns"]), _num(ch["unblocked_claims"]),
                  f"{ch['tx_fill_pct']:.1f}")
    return t


def _label(c: Counter) -> list[str]:
    """Column headers of a counter: its name in words (a histogram: its p99)."""
    base = (c.name[:-3] if c.name.endswith("_ns") else c.name).replace("_", " ")
    return [f"{base} p99"] if c.type == "histogram" else [base]


def _cells(c: Counter, totals: dict[str, Any], key: str) -> list[str]:
    """A counter's cells from its stats() key(s): a duration, an id in hex, a number."""
    if c.type == "histogram":
        return [format_ns(totals.get(f"{key}_p99_ns"))]
    v = totals.get(key)
    if v is None or c.type == "state":
        return ["-" if v is None else str(v)]
    if c.unit == "ns":
        return [format_ns(v or None)]
    if c.unit == "id":
        return [f"{v:08x}"]
    return [_num(v)]


def _counter_table(title: str, shown: list[Counter], rows: list[dict[str, Any]],
                   prefix: str) -> Table | None:
    """The counters ``shown`` (stats() keys ``<prefix><name>``), one row a channel;
    None when there is nothing to show."""
    if not shown or not rows:
        return None
    t = Table(title=f"{title} (totals)", title_justify="left", expand=False, pad_edge=False)
    t.add_column(f"{title} channels", justify="left", no_wrap=True)
    for c in shown:
        for label in _label(c):
            t.add_column(label, justify="left" if c.type == "state" else "right", no_wrap=True)
    for ch in rows:
        cells = [x for c in shown for x in _cells(c, ch["totals"], prefix + c.name)]
        t.add_row(ch["name"], *cells)
    return t


def _kind_table(kind: Kind, chans: list[dict[str, Any]]) -> Table | None:
    """A kind's own counters (its area), the ones it shows, one row a channel of it;
    None when it shows none or has no channel here."""
    shown = [c for c in kind.layout.counters if c.show]
    rows = [ch for ch in chans if not ch["error"] and ch.get("kind") == kind.name]
    return _counter_table(kind.name, shown, rows, kind.layout.prefix)


def _impaired_table(chans: list[dict[str, Any]]) -> Table | None:
    """The channel block's counters it shows (the impairment's), one row a channel
    whose counters are not all 0; None when no channel has any."""
    shown = [c for c in CHANNEL_COUNTERS if c.show]
    rows = [ch for ch in chans if not ch["error"] and
            any(ch["totals"].get(c.name) for c in shown)]
    return _counter_table("impaired", shown, rows, "")


def render_pool(pool: dict[str, Any]) -> RenderableType:
    """One pool: a title line, then its workers and channels (or why it cannot be shown)."""
    title = Text.assemble(("pool ", "bold"), (pool["name"], "bold cyan"), "  ",
                          (pool["state"].upper(), _STATE_STYLE.get(pool["state"], "bold")))
    if "supervisor" in pool:
        sup = pool["supervisor"]
        title.append(f"  supervisor pid {sup['pid']}  up {_secs(sup['uptime_s'])}  "
                     f"heartbeat {_secs(sup['heartbeat_age_s'])} ago")
    parts: list[RenderableType] = [title]
    if pool.get("error"):
        parts.append(Text(f"  {pool['error']}", style="red"))
    if pool["workers"]:
        parts.append(_workers(pool))
    if "supervisor" in pool:
        if pool["channels"]:
            parts.append(_channels(pool))
            tables = [_kind_table(kind, pool["channels"]) for kind in kinds()]
            tables.append(_impaired_table(pool["channels"]))
            parts.extend(t for t in tables if t is not None)
        else:
            parts.append(Text("  no channels open (or none match --filter)", style="dim"))
    return Group(*parts)


def render_frame(frame: dict[str, Any], interval: float, live: bool) -> RenderableType:
    """The whole screen."""
    head = Text(f"rtstat  every {interval:g} s" + ("  (q or Ctrl-C quits)" if live else ""),
                style="bold")
    if not frame["pools"]:
        which = (f"pool {frame['pool_filter']!r} is not running" if frame["pool_filter"]
                 else "no rtudp pool is running on this machine")
        wait = " - waiting for one" if live else ""
        return Group(head, Text(f"{which}{wait}", style="yellow"))
    return Group(head, *(x for p in frame["pools"] for x in (Text(""), render_pool(p))))


__all__ = ["render_frame", "render_pool"]
