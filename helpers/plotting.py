"""Plots shared by the lecture notebooks. Importing this changes no global
matplotlib setting."""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from helpers.timing import Span, Stats, machine_summary


def _title(title: str, machine: bool) -> str:
    """``title`` with the machine line under it, or ``title`` alone when ``machine`` is false
    (a figure with several subplots shows the machine once, e.g. in ``fig.suptitle``)."""
    if not machine:
        return title
    return f"{title}\n{machine_summary()}" if title else machine_summary()


def _natural(label: str) -> list:
    """Sort key: digit runs compare as numbers ("chunk 2" < "chunk 10")."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", label)]


def distinct_colours(n: int, cmap: str = "tab20") -> list:
    """``n`` colours from the colormap ``cmap``, no two the same: a listed colormap's own
    colours while it has enough (``tab20`` has 20; its ten dark colours, all different
    hues, come first), else evenly spaced samples of a
    continuous one (``cmap`` itself, or ``turbo`` when ``cmap`` is a qualitative one
    with too few)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    cm = colormaps[cmap]
    if isinstance(cm, ListedColormap) and cm.N < 256:  # a qualitative one: tab10, tab20, Set3...
        if cm.N >= n:
            order = list(range(cm.N))
            if cmap == "tab20":  # dark/light pairs of one hue: all dark ones first
                order = order[0::2] + order[1::2]
            return [cm(i) for i in order[:n]]
        cm = colormaps["turbo"]
    return [cm(i / max(1, n - 1)) for i in range(n)]


def timeline(
    spans: Iterable[Span],
    title: str = "",
    ax=None,
    legend: bool = False,
    machine: bool = True,
    cmap: str | None = None,
    edgecolor: str | None = None,
):
    """Gantt chart: one row per lane, one bar per span, time from the first start.

    Bars are coloured by label; ``legend=True`` names the colours. ``machine=False`` leaves
    the machine line out of the title. The colours come from matplotlib's colour cycle
    (10 colours, repeated after that), or, with ``cmap`` (e.g. ``"tab20"``), one colour per
    label from that colormap, labels in natural order ("chunk 2" before "chunk 10"), so
    no two labels share a colour. ``edgecolor`` outlines each bar (adjacent spans of one
    label stay visible as separate bars)."""
    import matplotlib.pyplot as plt

    spans = list(spans)
    if not spans:
        raise ValueError("timeline() needs at least one span")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len({s.lane for s in spans})))
    origin = min(s.start for s in spans)
    lanes = sorted({s.lane for s in spans})
    if cmap is None:
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        labels = sorted({s.label for s in spans})
    else:
        labels = sorted({s.label for s in spans}, key=_natural)
        colours = distinct_colours(len(labels), cmap)
    bar = {} if edgecolor is None else {"edgecolor": edgecolor, "linewidth": 0.6}
    for span in spans:
        row = lanes.index(span.lane)
        colour = colours[labels.index(span.label) % len(colours)]
        ax.broken_barh([(span.start - origin, span.duration)], (row - 0.4, 0.8), color=colour, **bar)
    if legend:
        from matplotlib.patches import Patch

        handles = [Patch(color=colours[i % len(colours)], label=lab) for i, lab in enumerate(labels)]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlabel("seconds since the first start")
    ax.set_title(_title(title, machine), fontsize=10)
    # from 0 to past the last end; never shrink (axes shared with another timeline keep
    # the longer of the two jobs in view)
    length = max(s.end for s in spans) - origin
    ax.set_xlim(0, max(ax.get_xlim()[1], 1.02 * length))
    return ax


def mark_idle_at_end(ax, spans: Iterable[Span], min_fraction: float = 0.1):
    """On a ``timeline`` of ``spans``: hatch each lane from its last span's end to the end of
    the whole job, labelled "idle", where that gap is at least ``min_fraction`` of the job."""
    spans = list(spans)
    origin = min(s.start for s in spans)
    finish = max(s.end for s in spans)
    lanes = sorted({s.lane for s in spans})
    for lane in lanes:
        last = max(s.end for s in spans if s.lane == lane)
        if finish - last >= min_fraction * (finish - origin):
            row = lanes.index(lane)
            ax.barh(row, finish - last, left=last - origin, height=0.8, fill=False,
                    hatch="//", edgecolor="grey", linewidth=0)
            ax.text((last + finish) / 2 - origin, row, "idle", ha="center", va="center", fontsize=8)
    return ax


def median_plot(
    xs: Sequence[float],
    series: dict[str, Sequence[Stats]],
    xlabel: str,
    ylabel: str = "seconds (median, bars: min–max)",
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    ax=None,
    machine: bool = True,
):
    """Medians of repeated measurements as lines, with the min–max spread as error bars.

    ``machine=False`` leaves the machine line out of the title."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for name, stats in series.items():
        if len(stats) != len(xs):
            raise ValueError(f"series {name!r} has {len(stats)} points for {len(xs)} x values")
        med = [s.median for s in stats]
        err = [[s.median - s.low for s in stats], [s.high - s.median for s in stats]]
        ax.errorbar(xs, med, yerr=err, marker="o", capsize=3, label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_title(title, machine), fontsize=10)
    ax.legend()
    ax.grid(True, alpha=0.3)
    return ax
