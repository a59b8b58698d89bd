"""``rtudp metrics``: every pool's counters and latency histograms for Prometheus.

``--serve HOST:PORT`` serves the text exposition format on ``/metrics``;
``--textfile PATH`` writes it for node_exporter's textfile collector (atomically:
a temporary file renamed over PATH, so the collector never reads half a file),
once or every ``--interval`` seconds.

The exposition format comes from ``prometheus_client`` (the Prometheus project's
own client library: it escapes label values, appends ``_total`` to counters and
writes ``_bucket``/``_sum``/``_count`` with cumulative ``le`` buckets and
``+Inf``, and its ``write_to_textfile`` does the atomic rename), so this module
only maps rtudp's snapshots (rtudp.shmring.observe, read-only and lock-free) onto
metric families.  Latencies are in seconds, as Prometheus expects.

Every counter is described in C, next to its struct (name, type, unit, help:
rtudp.shmring.kinds): the channel block's, the TX and RX rings', a worker's and every
kind's; each becomes a family ``rtudp_channel_<name>``, ``rtudp_channel_tx_<name>``,
``rtudp_channel_rx_<name>``, ``rtudp_worker_<name>`` or ``rtudp_<kind>_<name>`` of its
type with that help, so a new counter or kind needs no line here.  A kind's rows (a udt
channel's connections) become ``rtudp_<kind>_<rows>_<name>`` families with a series per
row, labelled by the rows' label counters (``socket``, ``peer``).  What is computed
from them (pool up and uptime, heartbeat age, readers attached, TX ring fill) is.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.registry import Collector

from rtudp.shmring.errors import BadSegmentError, PoolNotRunningError, SegmentNotFoundError
from rtudp.shmring.hist import Histogram
from rtudp.shmring.kinds import COUNTER_GROUPS, Counter, Kind, kind_name, kinds, label_text
from rtudp.shmring.observe import PoolSnapshot, pool_names, snapshot_pool

from .cli_args import ranged

#: histogram bucket bounds (seconds): 1 us .. 60 s, 1-2-5 steps
BOUNDS_S = (1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2,
            2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 60.0)
_CH = ["pool", "channel"]
_WK = ["pool", "worker", "cpu"]
#: the metric name group of each of COUNTER_GROUPS (rtudp_<group>_<counter>)
METRIC_GROUPS = {"channel": "channel", "tx_ring": "channel_tx", "rx_ring": "channel_rx",
                 "worker": "worker"}


def cumulative_buckets(h: Histogram) -> list[tuple[str, float]]:
    """Prometheus ``le`` buckets of ``h``: cumulative counts, last ``+Inf`` = count.

    A value of rtudp's bucket [lower, upper] counts under the first bound >= upper,
    so a bucket never claims a value above its bound (it may place one a bucket
    late: ~0.8 % at most).
    """
    counts = [0] * len(BOUNDS_S)
    for _lower, upper, n in h.buckets():
        for i, bound in enumerate(BOUNDS_S):
            if upper <= bound * 1e9:
                counts[i] += n
                break
    out, total = [], 0
    for bound, n in zip(BOUNDS_S, counts):
        total += n
        out.append((repr(bound), float(total)))
    out.append(("+Inf", float(h.count)))
    return out


def metric_name(group: str, c: Counter) -> tuple[str, float]:
    """The Prometheus name of counter ``c`` of ``group`` ("channel": the channel block's,
    else a kind's name) and the factor its values take: ``rtudp_<group>_<name>``, in
    base units (ns as ``_seconds``; ``_bytes`` when the name does not say bytes)."""
    name, scale = c.name, 1.0
    if c.unit == "ns":
        name = (name[:-3] if name.endswith("_ns") else name) + "_seconds"
        scale = 1e-9
    elif c.unit == "bytes" and "bytes" not in name.split("_"):
        name += "_bytes"
    else:
        scale = c.scale
    return f"rtudp_{group}_{name}", scale


class CounterFamily:
    """The metric family of one described counter, for every channel that has it."""

    def __init__(self, group: str, c: Counter, labels: list[str]) -> None:
        self.c = c
        name, self.scale = metric_name(group, c)
        doc = c.help or c.name
        self.family: Metric
        if c.type == "counter":
            self.family = CounterMetricFamily(name, doc, labels=labels)
        elif c.type == "histogram":  # struct rtudp_hist holds ns
            self.family = HistogramMetricFamily(name, doc, labels=labels)
        elif c.type == "state":
            self.family = GaugeMetricFamily(name, f"{doc} (1: the state it is in)",
                                            labels=[*labels, "state"])
        else:
            self.family = GaugeMetricFamily(name, doc, labels=labels)

    def add(self, labels: list[str], value: Any) -> None:
        """One channel's value."""
        fam: Any = self.family
        if self.c.type == "histogram":
            fam.add_metric(labels, cumulative_buckets(value), sum_value=value.sum_ns * 1e-9)
        elif self.c.type == "state":
            for i, state in enumerate(self.c.values):
                fam.add_metric([*labels, state], 1 if value == i else 0)
        else:
            fam.add_metric(labels, value * self.scale if self.scale != 1.0 else value)


class RowFamilies:
    """The metric families of a kind's rows (a udt channel's connections): one per
    counter that is not a label, ``rtudp_<kind>_<rows>_<name>``, labelled by pool,
    channel and the rows' LABEL counters (socket id, peer)."""

    def __init__(self, kind: Kind) -> None:
        rows = kind.layout.rows
        assert rows is not None
        self.labels = [c for c in rows.counters if c.label]
        names = _CH + [c.name for c in self.labels]
        self.families = [CounterFamily(f"{kind.name}_{rows.name}", c, names)
                         for c in rows.counters if not c.label and c.type != "text"]

    def add(self, base: list[str], values: dict[str, Any]) -> None:
        """One row's values (of Rows.read) for the channel labelled ``base``."""
        _add_all(self.families, base + [label_text(c, values[c.name]) for c in self.labels],
                 values)


class RtudpCollector(Collector):
    """Reads the pools at every scrape (``pool`` None: every pool on the machine)."""

    def __init__(self, pool: str | None = None) -> None:
        self.pool = pool

    def _snapshots(self) -> Iterator[tuple[str, PoolSnapshot | None]]:
        names = pool_names() if self.pool is None else [self.pool]
        for name in names:
            try:
                yield name, snapshot_pool(name)
            except (PoolNotRunningError, SegmentNotFoundError):
                continue  # gone meanwhile (or never there): nothing to report
            except (BadSegmentError, ValueError, PermissionError):
                yield name, None

    def collect(self) -> Iterator[Metric]:
        """The metric families, from fresh snapshots."""
        up = GaugeMetricFamily("rtudp_pool_up", "1 if the pool's supervisor is alive, 0 if "
                               "stale or unreadable", labels=["pool"])
        uptime = GaugeMetricFamily("rtudp_pool_uptime_seconds", "time since the pool started",
                                   labels=["pool"])
        beat = GaugeMetricFamily("rtudp_worker_heartbeat_age_seconds",
                                 "time since the worker's last heartbeat", labels=_WK)
        groups = {g: [CounterFamily(METRIC_GROUPS[g], c, _WK if g == "worker" else _CH)
                      for c in counters] for g, counters in COUNTER_GROUPS.items()}
        own = {k.name: [CounterFamily(k.name, c, _CH) for c in k.layout.counters]
               for k in kinds()}
        rows = {k.name: RowFamilies(k) for k in kinds() if k.layout.rows is not None}
        readers = GaugeMetricFamily("rtudp_channel_readers", "readers attached", labels=_CH)
        fill = GaugeMetricFamily("rtudp_channel_tx_fill_ratio", "TX ring fill (0..1)",
                                 labels=_CH)
        for name, snap in self._snapshots():
            if snap is None:
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1 if snap.supervisor_alive else 0)
            uptime.add_metric([name], (snap.taken_ns - snap.started_ns) / 1e9)
            for w in snap.workers:
                lw = [name, str(w["index"]), str(w["cpu"])]
                _add_all(groups["worker"], lw, w)
                if w["heartbeat_ns"]:
                    beat.add_metric(lw, (snap.taken_ns - w["heartbeat_ns"]) / 1e9)
            for ch in snap.channels:
                if ch.error is not None:
                    continue
                lc = [name, ch.name]
                _add_all(groups["channel"], lc, {**ch.counters, **ch.histograms})
                _add_all(groups["tx_ring"], lc, ch.tx_ring)
                _add_all(groups["rx_ring"], lc, ch.rx_ring)
                _add_all(own.get(kind_name(ch.config["kind"]), ()), lc, ch.kind_values)
                row_fams = rows.get(kind_name(ch.config["kind"]))
                for r in ch.kind_rows if row_fams is not None else ():
                    row_fams.add(lc, r)
                readers.add_metric(lc, ch.readers_attached)
                cap = ch.tx_ring["capacity"]
                fill.add_metric(lc, ch.tx_ring["used_bytes"] / cap if cap else 0.0)
        yield from (up, uptime, beat, *(f.family for fams in groups.values() for f in fams),
                    readers, fill, *(f.family for fams in own.values() for f in fams),
                    *(f.family for rf in rows.values() for f in rf.families))


def _add_all(families: Any, labels: list[str], values: dict[str, Any]) -> None:
    """Each family's value for one channel or worker, of those ``values`` has."""
    for f in families:
        if f.c.name in values:
            f.add(labels, values[f.c.name])


def registry_for(pool: str | None) -> CollectorRegistry:
    """A registry holding only rtudp's metrics."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RtudpCollector(pool))
    return reg


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT`` or ``:PORT`` (all addresses)."""
    host, sep, port_s = text.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"invalid --serve address {text!r}: use HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {port_s!r} in --serve {text!r}") \
            from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} in --serve {text!r} is out of 0..65535")
    return host, port


def _serve(reg: CollectorRegistry, host: str, port: int) -> int:
    stop = threading.Event()
    try:
        server, thread = start_http_server(port, addr=host, registry=reg)
    except OSError as exc:
        print(f"rtudp metrics: error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"serving Prometheus metrics on http://{host}:{server.server_port}/metrics "
          f"(Ctrl-C stops)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    server.shutdown()
    server.server_close()
    thread.join(5)
    return 0


def _textfile(reg: CollectorRegistry, path: str, interval: float | None) -> int:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        print(f"rtudp metrics: error: --textfile {path!r}: folder {folder!r} does not exist",
              file=sys.stderr)
        return 1
    try:
        while True:
            write_to_textfile(path, reg)
            if interval is None:
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def add_parser(sub: Any) -> None:
    """``rtudp metrics`` on the CLI's subparsers."""
    from .cli_args import plain_doc
    from .pool_cli import parse_pool_name

    p = sub.add_parser("metrics", help="export pool metrics for Prometheus",
                       description=plain_doc(__doc__))
    p.add_argument("--pool", type=parse_pool_name, help="only this pool (default: all)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--serve", type=parse_listen, metavar="HOST:PORT",
                     help="serve /metrics over HTTP (PORT 0: any free port, printed)")
    out.add_argument("--textfile", metavar="PATH",
                     help="write the metrics to PATH (atomically) for node_exporter")
    p.add_argument("--interval", type=ranged(float, "interval", 0.1, 86400.0, hint="seconds"),
                   metavar="S",
                   help="with --textfile: rewrite every S seconds (default: once)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, _rest: list[str]) -> int:
    """Run ``rtudp metrics``."""
    if args.pool is not None and args.pool not in pool_names():
        # a scrape of a pool that never ran is a typo, not an empty page
        known = ", ".join(pool_names()) or "none"
        print(f"rtudp metrics: error: no pool {args.pool!r} on this machine (pools: {known})",
              file=sys.stderr)
        return 1
    reg = registry_for(args.pool)
    if args.serve is not None:
        if args.interval is not None:
            print("rtudp metrics: error: --interval goes with --textfile (a scrape reads "
                  "the pools when it comes)", file=sys.stderr)
            return 2
        return _serve(reg, *args.serve)
    return _textfile(reg, args.textfile, args.interval)


__all__ = ["BOUNDS_S", "CounterFamily", "RowFamilies", "RtudpCollector", "add_parser", "cumulative_buckets",
           "metric_name", "parse_listen", "registry_for", "run"]
