"""Plots shared by the lecture notebooks. Importing this changes no global
matplotlib setting."""

from __future__ import annotations

from typing import Iterable, Sequence

from helpers.timing import Span, Stats, machine_summary


def _title(title: str, machine: bool) -> str:
    """``title`` with the machine line under it, or ``title`` alone when ``machine`` is false
    (a figure with several subplots shows the machine once, e.g. in ``fig.suptitle``)."""
    if not machine:
        return title
    return f"{title}\n{machine_summary()}" if title else machine_summary()


def timeline(
    spans: Iterable[Span], title: str = "", ax=None, legend: bool = False, machine: bool = True
):
    """Gantt chart: one row per lane, one bar per span, time from the first start.

    Bars are coloured by label; ``legend=True`` names the colours. ``machine=False`` leaves
    the machine line out of the title."""
    import matplotlib.pyplot as plt

    spans = list(spans)
    if not spans:
        raise ValueError("timeline() needs at least one span")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len({s.lane for s in spans})))
    origin = min(s.start for s in spans)
    lanes = sorted({s.lane for s in spans})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = sorted({s.label for s in spans})
    for span in spans:
        row = lanes.index(span.lane)
        colour = colours[labels.index(span.label) % len(colours)]
        ax.broken_barh([(span.start - origin, span.duration)], (row - 0.4, 0.8), color=colour)
    if legend:
        from matplotlib.patches import Patch

        handles = [Patch(color=colours[i % len(colours)], label=lab) for i, lab in enumerate(labels)]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlabel("seconds since the first start")
    ax.set_title(_title(title, machine), fontsize=10)
    ax.set_xlim(left=0)
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
