"""Workers and small measurements for lecture 00, the review (课程回顾).

Everything that runs in a child process is defined here, not in the notebook:
under spawn and forkserver a child imports its target by name
(``helpers.review.occupy``), and a notebook cell cannot be imported.

Four groups, in the order the notebook uses them:

* concurrency vs parallelism: a CPU-bound busy loop cut into small chunks, so a
  timeline shows when each task was really *running* (not just "in progress");
* process states: a child blocked in ``Queue.get()`` and children competing for
  one CPU, observed from outside with psutil;
* what a process is: a child reports its pid, ppid and what it saw of a
  module global;
* Lock / Semaphore / Event: workers record when they were inside a guarded
  section, so the parent can count how many were inside at once.

The start-method demonstrations of section 4 are in :mod:`helpers.startmethod_demos`,
the harness of the exercises' self-checks in :mod:`helpers.exercises.review`.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Collection

import psutil

from courselib.procs import finish as _finish
from courselib.procs import is_mp_helper

# the most spans open at one instant: section 5 counts the workers inside a guard with it
from courselib.procs import max_concurrency as max_concurrency
from helpers.timing import Span, now

# A module global for the "every process has its own memory" demonstration.
COUNTER = 0

# Upper bound on every wait in this module: a broken demo fails, it never hangs.
WAIT_LIMIT = 30.0


# --- concurrency vs parallelism ------------------------------------------------


def busy(n: int) -> int:
    """Pure-Python CPU work (it holds the GIL the whole time)."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def calibrate(seconds: float, probe: int = 20_000) -> int:
    """Iterations of :func:`busy` that take about ``seconds`` here (best of 3 probes)."""
    best = float("inf")
    for _ in range(3):
        start = now()
        busy(probe)
        best = min(best, now() - start)
    return max(1, round(probe * seconds / max(best, 1e-9)))


def stamps_to_spans(lane: str, stamps: list[float], slack: float = 3.0) -> list[Span]:
    """Turn chunk boundaries into the spans when the lane was really running.

    ``stamps[i]`` to ``stamps[i+1]`` is one chunk of equal work. A chunk that took
    more than ``slack`` times the median chunk was paused for part of it (another
    thread held the GIL, or the OS ran another process on that core), so it is
    left out; consecutive normal chunks are merged into one span.
    """
    if len(stamps) < 2:
        return []
    durations = [stamps[i + 1] - stamps[i] for i in range(len(stamps) - 1)]
    limit = slack * statistics.median(durations)
    spans: list[Span] = []
    run_start = None
    for i, d in enumerate(durations):
        a, b = stamps[i], stamps[i + 1]
        if d <= limit:
            if run_start is None:
                run_start = a
            run_end = b
        elif run_start is not None:
            spans.append(Span(lane, lane, run_start, run_end))
            run_start = None
    if run_start is not None:
        spans.append(Span(lane, lane, run_start, run_end))
    return spans


def run_slices(lane: str, n_chunks: int, chunk_iters: int) -> list[Span]:
    """Do ``n_chunks`` chunks of busy work, stamping the clock after each one."""
    stamps = [now()]
    for _ in range(n_chunks):
        busy(chunk_iters)
        stamps.append(now())
    return stamps_to_spans(lane, stamps)


def run_slices_to_queue(out, start_line, lane: str, n_chunks: int, chunk_iters: int) -> None:
    """Child-process version of :func:`run_slices`: wait at ``start_line`` (a Barrier),
    work, and send the spans back on ``out``."""
    start_line.wait(WAIT_LIMIT)
    out.put(run_slices(lane, n_chunks, chunk_iters))


def one_after_another(n_chunks: int, chunk_iters: int) -> list[Span]:
    """Task A, then task B, in this thread."""
    return run_slices("task A", n_chunks, chunk_iters) + run_slices("task B", n_chunks, chunk_iters)


def in_threads(n_chunks: int, chunk_iters: int) -> list[Span]:
    """Task A and task B in two threads of this process."""
    results: dict[str, list[Span]] = {}

    def work(lane: str) -> None:
        results[lane] = run_slices(lane, n_chunks, chunk_iters)

    threads = [threading.Thread(target=work, args=(lane,)) for lane in ("thread A", "thread B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT_LIMIT)
    if len(results) != 2:
        raise RuntimeError("a thread did not finish its work")
    return results["thread A"] + results["thread B"]


def in_processes(ctx, n_chunks: int, chunk_iters: int) -> list[Span]:
    """Task A and task B in two child processes started from ``ctx``.

    Both children wait at a start line (a Barrier) before working, so the time
    one of them takes to start does not shift the two tasks apart.
    """
    out, start_line = ctx.Queue(), ctx.Barrier(2)
    procs = [
        ctx.Process(target=run_slices_to_queue, args=(out, start_line, lane, n_chunks, chunk_iters))
        for lane in ("process A", "process B")
    ]
    for p in procs:
        p.start()
    try:
        # Drain the queue *before* joining: a child that put data stays alive
        # until its queue's feeder thread has flushed it.
        spans = [s for _ in procs for s in out.get(timeout=WAIT_LIMIT)]
    finally:
        finish(procs)
    return spans


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def running_seconds(spans: list[Span], lane: str) -> float:
    """How long ``lane`` was running (sum of its merged spans)."""
    return sum(b - a for a, b in _union([(s.start, s.end) for s in spans if s.lane == lane]))


def overlap_seconds(spans: list[Span], lane_a: str, lane_b: str) -> float:
    """How long both lanes were running *at the same instant* (parallelism)."""
    a = _union([(s.start, s.end) for s in spans if s.lane == lane_a])
    b = _union([(s.start, s.end) for s in spans if s.lane == lane_b])
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def window_overlap(spans: list[Span], lane_a: str, lane_b: str) -> float:
    """How long both lanes were *in progress* (first start to last end) at once (concurrency)."""

    def window(lane: str) -> tuple[float, float]:
        mine = [s for s in spans if s.lane == lane]
        return min(s.start for s in mine), max(s.end for s in mine)

    (a0, a1), (b0, b1) = window(lane_a), window(lane_b)
    return max(0.0, min(a1, b1) - max(a0, b0))


# --- process states --------------------------------------------------------------


def wait_then_spin(inbox, outbox, stop) -> None:
    """Block in ``inbox.get()``, then spin on the CPU until ``stop`` is set."""
    outbox.put("waiting")
    item = inbox.get(timeout=WAIT_LIMIT)
    outbox.put(("got", item))
    deadline = time.monotonic() + WAIT_LIMIT
    while not stop.is_set() and time.monotonic() < deadline:
        busy(20_000)
    outbox.put("done")


def spin_pinned(cpu: int, stop, outbox) -> None:
    """Pin this process to one CPU (Linux), say so, then spin until ``stop`` is set."""
    os.sched_setaffinity(0, {cpu})
    outbox.put(("spinning", os.getpid()))
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        # stop.is_set() takes the Event's lock: a spinner paused while holding it would
        # block its pinned twin (psutil: 'sleeping'), so look at it only every 50 ms
        next_look = time.monotonic() + 0.05
        while time.monotonic() < next_look:
            busy(20_000)
        if stop.is_set():
            return


def status_of(pid: int) -> str:
    """psutil's name for the state of ``pid``: 'running', 'sleeping', ..."""
    return psutil.Process(pid).status()


def wait_for_status(pid: int, wanted: str | Collection[str], timeout: float = 10.0) -> str:
    """Poll ``pid`` until its state is ``wanted`` (a name or several names) or the
    timeout passes; return the last state seen."""
    names = {wanted} if isinstance(wanted, str) else set(wanted)
    deadline = time.monotonic() + timeout
    while True:
        seen = status_of(pid)
        if seen in names or time.monotonic() >= deadline:
            return seen
        time.sleep(0.005)


# psutil's names for "blocked, waiting for an event": Linux says 'sleeping' (or
# 'disk-sleep' while waiting for the disk); macOS and the BSDs also use 'idle' and 'waiting'.
BLOCKED_STATES = ("sleeping", "disk-sleep", "idle", "waiting")

NO_BLOCKED_STATE_ON_WINDOWS = (
    "(not shown: on Windows psutil reports every live process as 'running', blocked or not)"
)


def blocked_status(pid: int, timeout: float = 10.0) -> str:
    """The state psutil reports for ``pid`` once it shows as blocked.

    On Windows psutil cannot tell a blocked process from a running one (every live
    process is 'running'), so this returns a plain note at once instead of waiting.
    """
    if not psutil_sees_blocked():
        return NO_BLOCKED_STATE_ON_WINDOWS
    return wait_for_status(pid, BLOCKED_STATES, timeout)


def psutil_sees_blocked() -> bool:
    """Whether psutil can tell a blocked process from a running one here (not on Windows)."""
    return sys.platform != "win32"


def cpu_seconds(pid: int) -> float:
    """CPU time ``pid`` has used so far (user + system)."""
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


# --- what a process is ------------------------------------------------------------


def introspect(out) -> None:
    """Report pid, ppid, the program file it runs, and COUNTER as found; then change COUNTER."""
    global COUNTER
    seen = COUNTER
    COUNTER = seen + 100
    out.put(
        {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "exe": psutil.Process().exe(),
            "seen": seen,
            "after": COUNTER,
        }
    )


def describe_parent(ppid: int) -> str:
    """Name the process ``ppid`` as seen from this (the parent's) process."""
    if ppid == os.getpid():
        return "this process"
    try:
        parent = psutil.Process(ppid)
    except psutil.Error:
        return "a process that has exited"
    if is_mp_helper(parent):  # a child's parent can only be the fork server
        return "the fork server (a helper process this process started)"
    return "another process" if parent.is_running() else "a process that has exited"


# --- Lock, Semaphore, Event ------------------------------------------------------


def occupy(guard, start_line, out, name: str, hold: float) -> None:
    """Wait at the start line, enter the section ``guard`` protects, stay ``hold`` s, leave.

    The times are stamped *inside* the guarded section (after acquire, before
    release), so the recorded spans can only overlap if the guard let several
    workers in at once. ``guard=None`` means no guard at all.
    """
    start_line.wait(WAIT_LIMIT)
    if guard is not None and not guard.acquire(timeout=WAIT_LIMIT):
        out.put(None)
        return
    try:
        enter = now()
        time.sleep(hold)
        leave = now()
    finally:
        if guard is not None:
            guard.release()
    out.put(Span(name, "inside", enter, leave))


def measure_occupancy(ctx, guard, n_workers: int, hold: float) -> list[Span]:
    """Run ``n_workers`` :func:`occupy` workers against one guard; return their spans.

    A Barrier makes them all reach the door at about the same moment, so the
    result does not depend on how long each child took to start.
    """
    out = ctx.Queue()
    start_line = ctx.Barrier(n_workers)
    procs = [
        ctx.Process(target=occupy, args=(guard, start_line, out, f"worker {i}", hold))
        for i in range(n_workers)
    ]
    for p in procs:
        p.start()
    try:
        spans = [out.get(timeout=WAIT_LIMIT) for _ in procs]
    finally:
        finish(procs)
    if any(s is None for s in spans):
        raise RuntimeError("a worker could not acquire the guard within the time limit")
    return sorted(spans, key=lambda s: s.lane)


def wait_for_event(event, out, timeout: float) -> None:
    """Say "waiting", wait for ``event`` at most ``timeout`` s, report (what wait() returned, seconds)."""
    out.put("waiting")
    start = now()
    flag = event.wait(timeout)
    out.put((flag, now() - start))


# --- housekeeping ------------------------------------------------------------------


def finish(processes, timeout: float = WAIT_LIMIT) -> None:
    """Join every process (bounded); terminate any that is still alive after that.
    (:func:`courselib.procs.finish` with this module's time limit.)"""
    _finish(processes, timeout)
