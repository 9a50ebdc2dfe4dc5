"""Measurements for lecture 02, ``Pipe`` (管道): messages per second through a
``Pipe()``, a ``Pipe(duplex=False)`` and a ``Queue``, the bar chart of those rates,
and a warning when the machine is too busy to measure.

The workers the lecture teaches (``echo_upper``, ``read_until_eof``) are not
here: the notebook writes them with ``%%writefile`` so a reader can edit them.
The sending child of the measurement runs in a child process and so lives in
an importable module (spawn and forkserver children import their target by
name). The "two senders on one end" demonstration is in
:mod:`helpers.pipe_sharing`, the exercise self-checks in
:mod:`helpers.exercises.pipes`.

Every wait on another process is bounded: a receive is preceded by
``poll(timeout)``, a join has a timeout, and a child that does not finish in
time is reported, then stopped, instead of hanging the caller.
"""

from __future__ import annotations

from courselib.procs import finish
from courselib.startmethod import context

# The same measurement through a Queue, for the Pipe-vs-Queue comparison (lecture 01's).
from helpers.queue_bench import measure_queue_throughput as measure_queue_throughput
from helpers.timing import Stats, machine_summary, now

# Upper bound, in seconds, for any single wait on another process in this module.
WAIT = 60.0


# --- throughput: one child sends, the parent receives ---------------------------------


def _send_payloads(conn, msg_bytes: int, n_msgs: int, ready) -> None:
    """Child side of the Pipe throughput measurement."""
    payload = b"x" * msg_bytes
    ready.wait(WAIT)  # start together with the parent's clock
    for _ in range(n_msgs):
        conn.send(payload)
    conn.close()


def _check_args(msg_bytes: int, n_msgs: int) -> None:
    if msg_bytes < 0 or n_msgs < 1:
        raise ValueError("need msg_bytes >= 0 and n_msgs >= 1")




def measure_pipe_throughput(msg_bytes: int, n_msgs: int, ctx=None, *, duplex: bool = True) -> float:
    """Messages per second sent by one child to the parent through ``ctx.Pipe()``.

    Each message is a ``bytes`` object of ``msg_bytes`` bytes, sent with
    ``send()`` (pickled, like a Queue item). The clock starts when the parent
    releases the already-started child and stops when the parent has received
    the last message, so process start-up is not counted.

    ``duplex=False`` measures ``ctx.Pipe(duplex=False)`` instead. On POSIX the
    two are different operating-system objects: a duplex Pipe is a Unix socket
    pair, a one-way Pipe an OS pipe (the same kind a ``Queue`` is built on).
    """
    _check_args(msg_bytes, n_msgs)
    ctx = ctx or context()
    if duplex:
        parent_end, child_end = ctx.Pipe()
    else:
        parent_end, child_end = ctx.Pipe(duplex=False)  # (receive end, send end)
    ready = ctx.Barrier(2)  # parent and child: the clock starts once the child is up
    proc = ctx.Process(target=_send_payloads, args=(child_end, msg_bytes, n_msgs, ready))
    proc.start()
    child_end.close()  # only the child sends; closing our copy lets EOF reach us
    try:
        ready.wait(WAIT)
        start = now()
        for i in range(n_msgs):
            if not parent_end.poll(WAIT):
                raise TimeoutError(f"message {i} of {n_msgs} did not arrive within {WAIT:.0f} s")
            parent_end.recv()
        elapsed = now() - start
    finally:
        parent_end.close()
        if finish([proc], WAIT):
            raise TimeoutError(f"measure_pipe_throughput: the child did not exit within {WAIT:.0f} s")
    return n_msgs / elapsed


def rate_bars(sizes, rates: dict[str, list[Stats]], baseline: str):
    """One panel per message size: a bar per way of sending (messages/s, median of the
    runs, linear axis from 0, min–max as error bars), with each bar's speed relative
    to ``baseline`` written on it. The machine line appears once, over the figure.

    ``rates[name][i]`` holds the rates (messages/s) measured for ``sizes[i]``."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import StrMethodFormatter

    names = list(rates)
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.2 * len(sizes), 3.6), squeeze=False)
    for i, (size, ax) in enumerate(zip(sizes, axes[0], strict=True)):
        stats = [rates[name][i] for name in names]
        med = [s.median for s in stats]
        err = [[m - s.low for m, s in zip(med, stats, strict=True)], [s.high - m for m, s in zip(med, stats, strict=True)]]
        colours = [f"C{k}" for k in range(len(names))]
        bars = ax.bar(range(len(names)), med, yerr=err, capsize=3, color=colours)
        base = rates[baseline][i].median
        labels = [f"{m / base:.2f}×" for m in med]
        ax.bar_label(bars, labels, label_type="center", fontsize=9, fontweight="bold",
                     bbox=dict(boxstyle="round,pad=0.2", facecolor="white", alpha=0.8, lw=0))
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.set_title(f"{size_label(size)} per message", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].set_ylabel("messages/s (median, bars: min–max)")
    fig.suptitle(f"One child sends to the parent; on each bar: speed ÷ {baseline}'s\n"
                 f"{machine_summary()}", fontsize=10)
    fig.tight_layout()
    return fig


def size_label(size: int) -> str:
    """``16 B``, ``1 KiB``, ``64 KiB``, ``1 MiB``: a message size for a label."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def busy_warning() -> str:
    """A warning when the machine is already busy (load average above the core count),
    or "" (also where the operating system offers no load average, e.g. Windows)."""
    import os

    if not hasattr(os, "getloadavg"):
        return ""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load <= cores:
        return ""
    return (f"Warning: the machine is busy (load {load:.1f} on {cores} cores): the numbers "
            "below are noisy; rerun when it is quiet.")

