"""``--plot FILE.png``: what a benchmark's tables or a channel's histograms say, drawn.

matplotlib is an optional extra (``pip install 'rtudp[plot]'``), imported only when a
plot is asked for, with the Agg backend (no display needed).  :func:`plot_path` is
the argparse type of ``--plot``: it fails before a long run, not after it, when
matplotlib is missing, the format is not one it writes or the folder does not exist.

Two drawings:

* :func:`plot_cdfs`: panels of cumulative distributions (latencies, lateness) from
  rtudp :class:`~rtudp.shmring.hist.Histogram`\\ s, log x (durations), and a y axis
  stretched at both ends (logit: p1 ... p50 ... p99.99 equally readable), every
  case of a run, rtudp's bold and its peers' thinner, each target marked where a
  curve must pass to meet it;
* :func:`plot_histograms`: a channel's histograms as bars over log-spaced ranges,
  counts on a log scale, p50 / p99 / p99.9 / max marked.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from rtudp.shmring.hist import Histogram

#: what a user installs for --plot
EXTRA = "pip install 'rtudp[plot]'"
#: rtudp's cases first in this palette (bold), the peers after them
OURS_COLORS = ("#1f4e9c", "#2a9d3c", "#7b2d9c", "#0e8a8a")
PEER_COLORS = ("#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
TARGET_COLOR = "#c00000"
#: the y axis' percentiles and their labels
_PCTS = ((0.01, "p1"), (0.1, "p10"), (0.5, "p50"), (0.9, "p90"), (0.99, "p99"),
         (0.999, "p99.9"), (0.9999, "p99.99"), (0.99999, "p99.999"))


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed: the message says how to get it."""


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (PlotUnavailable naming the extra if missing)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotUnavailable(f"--plot needs matplotlib, rtudp's optional extra 'plot': "
                              f"{EXTRA}") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_path(text: str) -> str:
    """argparse type of ``--plot FILE``: a file matplotlib can write (by its extension)
    in a folder that exists; matplotlib must be installed."""
    try:
        plt = pyplot()
    except PlotUnavailable as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    ext = os.path.splitext(text)[1].lstrip(".").lower()
    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if ext not in formats:
        raise argparse.ArgumentTypeError(
            f"cannot plot to {text!r}: give a file ending in one of "
            f"{', '.join('.' + f for f in sorted(formats))} (e.g. .png)")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"cannot plot to {text!r}: no folder {folder!r}")
    return text


@dataclass
class Curve:
    """One case's distribution."""

    label: str
    hist: Histogram
    #: an rtudp case (drawn bold), or a peer
    ours: bool = False


@dataclass
class Target:
    """Where a curve must pass to meet a target: at most ``x_ns`` at percentile
    ``fraction`` (None: the maximum, a vertical line)."""

    label: str
    x_ns: float
    fraction: float | None


@dataclass
class Panel:
    """One plot of a figure: its curves and the targets they are held to."""

    title: str
    xlabel: str
    curves: list[Curve]
    targets: list[Target] = field(default_factory=list)
    #: a line under the panel's title (e.g. a figure the curves do not show)
    note: str = ""


def duration_label(ns: float) -> str:
    """A duration, three significant digits: ``100 ns``, ``1 µs``, ``2.5 ms``, ``1.36 s``."""
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def cdf_points(hist: Histogram) -> tuple[list[float], list[float]]:
    """A step CDF of ``hist``: x the upper bound of each non-empty bucket (ns, at most
    ~0.8 % above the values in it), y the share of values up to it; from (min, 0)."""
    total = hist.count
    xs: list[float] = [float(hist.min_ns or 0)]
    ys: list[float] = [0.0]
    seen = 0
    for _lo, hi, c in hist.buckets():
        seen += c
        xs.append(float(min(hi, hist.max_ns or hi)))
        ys.append(seen / total)
    return xs, ys


def _y_range(panels: Sequence[Panel]) -> tuple[float, float]:
    """The logit axis' ends: p1, and the finest percentile the biggest sample resolves."""
    n = max((c.hist.count for p in panels for c in p.curves), default=0)
    top = 1 - 1 / max(n, 100)
    return 0.01, min(0.99999, max(0.999, top))


def _x_range(panels: Sequence[Panel]) -> tuple[float, float]:
    xs = [x for p in panels for c in p.curves if c.hist.count for x in
          (c.hist.min_ns or 0, c.hist.max_ns or 0) if x > 0]
    xs += [t.x_ns for p in panels for t in p.targets if t.x_ns > 0]
    if not xs:
        return 1e3, 1e6
    return 10 ** math.floor(math.log10(min(xs) * 0.9)), 10 ** math.ceil(math.log10(max(xs) * 1.1))


def _time_axis(ax: Any, lo: float, hi: float) -> None:
    """A log x axis in ns with duration labels at each power of ten."""
    from matplotlib.ticker import FixedLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    decades = range(round(math.log10(lo)), round(math.log10(hi)) + 1)
    step = 1 if len(decades) <= 7 else 2  # labels that do not run into each other
    ticks = [10.0 ** e for e in decades if (e - decades[-1]) % step == 0]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([duration_label(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _draw_panel(ax: Any, panel: Panel, xr: tuple[float, float], yr: tuple[float, float]) -> None:
    ylo, yhi = yr
    # values past an end of the axis are drawn just beyond it: the curve runs off the edge
    below, above = ylo / 2, 1 - (1 - yhi) / 2
    ours = peers = 0
    for curve in panel.curves:
        if not curve.hist.count:
            continue
        xs, ys = cdf_points(curve.hist)
        xs = [max(x, xr[0]) for x in xs]
        ys = [min(max(y, below), above) for y in ys]
        if curve.ours:
            color, width, style = OURS_COLORS[ours % len(OURS_COLORS)], 2.6, "-"
            ours += 1
        else:
            color, width, style = PEER_COLORS[peers % len(PEER_COLORS)], 1.5, "--"
            peers += 1
        ax.plot(xs, ys, drawstyle="steps-post", color=color, linewidth=width, linestyle=style,
                label=f"{curve.label} (n={curve.hist.count:,})", zorder=3 if curve.ours else 2)
    level: dict[float | None, int] = {}  # labels at one level stack downwards
    for t in panel.targets:
        k = level[t.fraction] = level.get(t.fraction, -1) + 1
        if t.fraction is None:
            ax.axvline(t.x_ns, color=TARGET_COLOR, linestyle=":", linewidth=1.4, zorder=4)
            ax.annotate(t.label, (t.x_ns, yhi), xytext=(-4 - 12 * k, -4),
                        textcoords="offset points",
                        rotation=90, ha="right", va="top", fontsize=8, color=TARGET_COLOR)
            continue
        ax.plot([xr[0], t.x_ns], [t.fraction, t.fraction], color=TARGET_COLOR, linestyle=":",
                linewidth=1.2, zorder=4)
        ax.plot([t.x_ns, t.x_ns], [below, t.fraction], color=TARGET_COLOR, linestyle=":",
                linewidth=1.2, zorder=4)
        ax.plot([t.x_ns], [t.fraction], marker="*", markersize=15, color=TARGET_COLOR,
                markeredgecolor="white", zorder=6, linestyle="none")
        # the label on the side of the star with room for it
        right = math.log(t.x_ns / xr[0]) / math.log(xr[1] / xr[0]) > 0.6
        ax.annotate(t.label, (t.x_ns, t.fraction), xytext=(-7 if right else 7, -3 - 13 * k),
                    textcoords="offset points",
                    ha="right" if right else "left", va="top", fontsize=8.5, color=TARGET_COLOR, fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none",
                          "alpha": 0.8}, zorder=7)
    _time_axis(ax, *xr)
    ax.set_yscale("logit")
    ax.set_ylim(ylo, yhi)
    ticks = [(p, label) for p, label in _PCTS if ylo <= p <= yhi]
    ax.set_yticks([p for p, _ in ticks])
    ax.set_yticklabels([label for _, label in ticks])
    ax.minorticks_off()
    ax.grid(True, which="major", color="#d0d0d0", linewidth=0.7)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel("share of values at most x (percentile)")
    ax.set_title(panel.title + (f"\n{panel.note}" if panel.note else ""), fontsize=11)
    if ours + peers:  # under the plot: inside, it would hide the curves it names
        longest = max(len(c.label) for c in panel.curves)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2 if longest <= 30 else 1,
                  fontsize=8.5, frameon=False)
    else:
        ax.text(0.5, 0.5, "no case measured", transform=ax.transAxes, ha="center")


def plot_cdfs(path: str, title: str, panels: Sequence[Panel], footer: str = "") -> None:
    """Draw ``panels`` side by side (one x and y range for all: they compare) into
    ``path``; the target stars say: a curve left of and above a star meets it."""
    plt = pyplot()
    xr, yr = _x_range(panels), _y_range(panels)
    n = len(panels)
    rows = max((len(p.curves) * (1 if max(len(c.label) for c in p.curves) > 30 else 0.5)
                for p in panels if p.curves), default=1)
    fig, axes = plt.subplots(1, n, figsize=(7.6 * n, 6.4 + 0.2 * rows), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        _draw_panel(ax, panel, xr, yr)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    if footer:
        fig.text(0.01, 0.01, footer, fontsize=8, color="#505050", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03 if footer else 0, 1, 1))
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def plot_histograms(path: str, title: str, hists: Sequence[tuple[str, str, Histogram]],
                    rows: int = 48) -> None:
    """Each ``(name, meaning, histogram)`` as bars over ``rows`` log-spaced ranges
    (counts on a log scale), its p50 / p99 / p99.9 / max marked, into ``path``."""
    plt = pyplot()
    n = len(hists)
    cols = 1 if n == 1 else 2
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(7.6 * cols, 4.4 * nrows), squeeze=False)
    marks = ((50, "p50", "#2a9d3c"), (99, "p99", "#ff7f0e"), (99.9, "p99.9", "#d62728"))
    for ax, (name, meaning, h) in zip(axes.flat, hists):
        ax.set_title(f"{name}: {meaning}", fontsize=10.5)
        if not h.count:
            ax.text(0.5, 0.5, "nothing recorded", transform=ax.transAxes, ha="center",
                    color="#707070")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        table = h.rows(rows)
        lows = [max(lo, 1) for lo, _, _ in table]
        widths = [max(hi + 1, low + 1) - low for low, (_, hi, _) in zip(lows, table)]
        ax.bar(lows, [c for _, _, c in table], width=widths, align="edge", color="#1f4e9c",
               edgecolor="white", linewidth=0.4, label=f"n={h.count:,}")
        ax.set_yscale("log")
        for p, label, color in marks:
            v = h.percentile(p)
            ax.axvline(max(v, 1), color=color, linestyle="--", linewidth=1.3,
                       label=f"{label} {duration_label(v)}")
        ax.axvline(max(h.max_ns or 1, 1), color="black", linestyle=":", linewidth=1.3,
                   label=f"max {duration_label(h.max_ns or 0)}")
        lo = max(min(lows), 1)
        hi = max(table[-1][1], lo * 10)
        _time_axis(ax, 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi * 1.01)))
        ax.set_ylabel("values in the range")
        ax.grid(True, which="major", axis="y", color="#e0e0e0", linewidth=0.7)
        ax.legend(fontsize=8, loc="upper right", framealpha=0.92)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


__all__ = ["Curve", "EXTRA", "Panel", "PlotUnavailable", "Target", "cdf_points",
           "duration_label", "plot_cdfs", "plot_histograms", "plot_path", "pyplot"]
