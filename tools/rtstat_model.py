"""What rtstat shows, as plain data: pools, workers and channels with rates and
per-interval latency, computed from two successive read-only snapshots.

:class:`Collector` keeps the previous snapshot of each channel (and psutil's CPU
samples of each worker) between calls to :meth:`Collector.frame`; a frame is a
JSON-ready dict, which the terminal view renders and ``--json`` prints as is.
"""
from __future__ import annotations

import re
import time
from typing import Any, Callable

from rtudp.shmring.errors import BadSegmentError, PoolNotRunningError, SegmentNotFoundError
from rtudp.shmring.hist import Histogram
from rtudp.shmring.kinds import COUNTER_GROUPS, kind_name, stat_keys
from rtudp.shmring.observe import (DIRECTION_NAMES, ChannelSnapshot, PoolSnapshot, pool_names,
                                   snapshot_pool)

from rtudp.workers.tunables import with_settings

from .procinfo import CpuMeter, kernel_policy, policy_text

#: a pool that disappeared stays on screen (as vanished) this long
VANISHED_KEEP_NS = 30_000_000_000
#: rows of each histogram's bar chart in a channel's detail (the view merges them when
#: the terminal has fewer lines)
DETAIL_ROWS = 16


def _addr(a: tuple[str, int] | None) -> str | None:
    return None if a is None else f"{a[0]}:{a[1]}"


def _figures(h: Histogram) -> dict[str, Any]:
    """A histogram's count, min, percentiles and max (ns; None when empty)."""
    p = h.percentiles((50, 90, 99, 99.9))
    return {"count": h.count, "min_ns": h.min_ns, "p50_ns": p[50], "p90_ns": p[90],
            "p99_ns": p[99], "p999_ns": p[99.9], "max_ns": h.max_ns}


class Collector:
    """Builds frames; remembers what it needs to turn totals into rates."""

    def __init__(self, pool: str | None = None, channel_filter: str | None = None) -> None:
        self.pool = pool
        self.filter: Callable[[str], bool] | None = None
        if channel_filter is not None:
            rx = re.compile(channel_filter)  # re.error names the bad pattern
            self.filter = lambda name: rx.search(name) is not None
        self._prev: dict[tuple[str, str], ChannelSnapshot] = {}
        #: the channel ``(pool, name)`` whose frame entry gets a ``detail`` (histograms);
        #: pool None: the first pool that has a channel of that name
        self.detail: tuple[str | None, str] | None = None
        self._seen: dict[str, int] = {}  # pool -> last time it was there
        self._cpu = CpuMeter()

    # ------------------------------------------------------------ frames

    def frame(self) -> dict[str, Any]:
        """Every pool (or the one asked for) as it is now."""
        now = time.monotonic_ns()
        names = pool_names()
        if self.pool is not None:
            names = [n for n in names if n == self.pool]
        pools = [self._pool(name, now) for name in names]
        for name, last in sorted(self._seen.items()):
            if name not in names and now - last < VANISHED_KEEP_NS:
                pools.append({"name": name, "state": "vanished", "workers": [], "channels": [],
                              "error": f"pool {name!r} vanished "
                                       f"{(now - last) / 1e9:.0f} s ago (segment removed)"})
        for name in names:
            self._seen[name] = now
        self._cpu.forget_others({w["pid"] for p in pools for w in p["workers"]})
        return {"time_ns": now, "pool_filter": self.pool, "pools": pools}

    def _pool(self, name: str, now: int) -> dict[str, Any]:
        try:
            snap = snapshot_pool(name, self.filter)
            workers = [with_settings(w) for w in snap.workers]  # their settings named
        except (PoolNotRunningError, SegmentNotFoundError):
            return {"name": name, "state": "vanished", "workers": [], "channels": [],
                    "error": f"pool {name!r} vanished (segment removed while reading)"}
        except (BadSegmentError, ValueError, PermissionError, OSError) as exc:
            return {"name": name, "state": "corrupt", "workers": [], "channels": [],
                    "error": f"pool {name!r}: {exc}"}
        state = "running" if snap.supervisor_alive else "stale"
        out: dict[str, Any] = {
            "name": name, "state": state,
            "error": None if state == "running" else
            f"supervisor pid {snap.supervisor_pid} is gone or silent: `rtudp pool clean`",
            "supervisor": {"pid": snap.supervisor_pid,
                           "uptime_s": (snap.taken_ns - snap.started_ns) / 1e9,
                           "heartbeat_age_s": (snap.taken_ns - snap.heartbeat_ns) / 1e9,
                           "channel_moves": snap.channel_moves},
            "workers": [self._worker(w, snap) for w in workers],
            "channels": [self._channel(snap, ch) for ch in snap.channels],
        }
        return out

    def _worker(self, w: dict[str, Any], snap: PoolSnapshot) -> dict[str, Any]:
        pid = w["pid"]
        pp = kernel_policy(pid) if pid > 0 else None
        return {
            "index": w["index"], "pid": pid, "cpu": w["cpu"], "state": w["state"],
            "policy": None if pp is None else pp[0], "priority": None if pp is None else pp[1],
            "policy_text": policy_text(pp),
            "cpu_percent": self._cpu.percent(pid) if pid > 0 else None,
            "heartbeat_age_s": (snap.taken_ns - w["heartbeat_ns"]) / 1e9
            if w["heartbeat_ns"] else None,
            **{c.name: w[c.name] for c in COUNTER_GROUPS["worker"]},
            "idle": w["idle"], "tunables": w["tunables"],
        }

    def _channel(self, snap: PoolSnapshot, ch: ChannelSnapshot) -> dict[str, Any]:
        key = (snap.name, ch.name)
        if ch.error is not None:
            self._prev.pop(key, None)
            return {"name": ch.name, "error": ch.error}
        prev = self._prev.get(key)
        self._prev[key] = ch
        c, cfg = ch.counters, ch.config
        totals = ch.stats()  # the block's counters and histograms, the kind's own, TX ring's
        totals.update(stat_keys(COUNTER_GROUPS["rx_ring"], ch.rx_ring, "rx_"))
        cap = ch.tx_ring["capacity"]
        out = {
            "name": ch.name, "error": None,
            "kind": kind_name(cfg["kind"]),
            "direction": DIRECTION_NAMES.get(cfg["direction"], str(cfg["direction"])),
            "local": _addr(cfg["local"]), "remote": _addr(cfg["remote"]),
            "worker": cfg["worker"], "readers": ch.readers_attached,
            "drops": c["rx_kernel_drops"] + c["tx_errors"],
            "overruns": ch.rx_ring["records_lost"],
            "unblocked_claims": ch.tx_ring["unblocked_claims"],
            "tx_fill_pct": 100.0 * ch.tx_ring["used_bytes"] / cap if cap else 0.0,
            "interval": self._interval(prev, ch),
            "totals": totals,
        }
        if self.detail is not None and self.detail[1] == ch.name \
                and self.detail[0] in (None, snap.name):
            out["detail"] = self._detail(prev, ch)
        return out

    def _detail(self, prev: ChannelSnapshot | None, ch: ChannelSnapshot) -> dict[str, Any]:
        """What a channel's detail view adds: its rings, each histogram of its block and
        of its kind (totals as bar-chart rows, and the last interval's summary)."""
        before = dict((name, h) for name, _, h in prev.named_histograms()) if prev else {}
        hists = [(name, help_, h, before.get(name)) for name, help_, h in ch.named_histograms()]
        return {
            "tx_ring": dict(ch.tx_ring), "rx_ring": dict(ch.rx_ring),
            "capacity": ch.config["capacity"], "max_datagram": ch.config["max_datagram"],
            "reader_pids": list(ch.reader_pids),
            "histograms": [{"name": name, "help": help_, "total": _figures(h),
                            "interval": None if old is None else _figures(h - old),
                            "rows": [list(r) for r in h.rows(DETAIL_ROWS)]}
                           for name, help_, h, old in hists],
        }

    @staticmethod
    def _interval(prev: ChannelSnapshot | None, cur: ChannelSnapshot) -> dict[str, Any]:
        """Rates and latency between ``prev`` and ``cur`` (None on the first sample)."""
        if prev is None or cur.taken_ns <= prev.taken_ns:
            return {"seconds": None}
        dt = (cur.taken_ns - prev.taken_ns) / 1e9

        def delta(k: str) -> int:
            a, b = prev.counters[k], cur.counters[k]
            return b - a if b >= a else b  # a reset (channel reopened): all of it is new

        late = cur.tx_lateness - prev.tx_lateness
        rx = cur.rx_delay - prev.rx_delay
        return {
            "seconds": dt,
            "tx_pps": delta("tx_packets") / dt, "tx_bytes_per_s": delta("tx_bytes") / dt,
            "rx_pps": delta("rx_packets") / dt, "rx_bytes_per_s": delta("rx_bytes") / dt,
            "tx_packets": delta("tx_packets"), "rx_packets": delta("rx_packets"),
            "tx_immediate": delta("tx_immediate"), "tx_late": delta("tx_late"),
            "lateness_count": late.count, "lateness_p50_ns": late.percentile(50),
            "lateness_p99_ns": late.percentile(99), "lateness_max_ns": late.max_ns,
            "rx_latency_count": rx.count, "rx_latency_p50_ns": rx.percentile(50),
            "rx_latency_p99_ns": rx.percentile(99),
        }


__all__ = ["Collector", "VANISHED_KEEP_NS"]
