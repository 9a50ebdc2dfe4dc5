"""Measurements behind lecture 04's timing plots (process pool, 进程池).

Every function returns raw measurements (``helpers.timing.Stats``: repeated
runs, median and spread, or ``Span`` lists for timelines); the notebook plots
them and prints the conclusions of *that* run. Nothing here asserts a speed:
the machine decides.

The workers being measured (``cpu_task``, ``fetch``) are the notebook's own,
passed in as parameters: a reader who edits them on the page measures the edit.

What is measured:

* ``start_cost``: start + join one trivial ``Process`` under a start method.
* ``handover_cost``: one task round trip to a pool worker that is already up.
* ``pool_vs_process``: N trivial tasks as N ``Process`` objects, as one
  ``Pool.map`` (pool start-up included), and sequentially.
* ``apply_vs_apply_async``: a loop of ``apply`` against ``apply_async`` for all.
* ``spans_*``: which worker ran which task when, for Gantt charts.
* ``fetch_comparison``: the notes' I/O-bound example against a local server.

The CPU-bound speedup against pool size is measured in ``helpers.speedup``.
"""

from __future__ import annotations

import math
import multiprocessing
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from courselib.procs import finish

# the most spans running at one moment (lecture 04: did tasks overlap?)
from courselib.procs import max_concurrency as max_concurrency
from courselib.startmethod import context
from helpers.pool_tasks import sleep_pid, timed_sleep, timed_sleep_item, trivial
from helpers.timing import Span, Stats, measure, now

# A bound for every wait on a pool: a broken pool fails instead of hanging.
TIMEOUT = 60.0


def default_chunksize(n_tasks: int, workers: int) -> int:
    """The chunk size ``Pool.map`` picks when none is given: ceil(n / (4 × workers)).

    (CPython's ``Pool._map_async``; ``imap`` and ``imap_unordered`` default to 1.)
    """
    if n_tasks == 0:
        return 0
    return math.ceil(n_tasks / (4 * workers))


def run_processes(n_tasks: int, ctx=None) -> list[int]:
    """One ``Process`` per task: start them all, then join them all. Returns exit codes."""
    ctx = ctx or context()
    procs = [ctx.Process(target=trivial, args=(i,)) for i in range(n_tasks)]
    for p in procs:
        p.start()
    finish(procs, TIMEOUT)
    return [p.exitcode for p in procs]


def run_pool(n_tasks: int, ctx=None, processes: int | None = None) -> list[int]:
    """Start a pool, ``map`` the tasks over it, shut it down: the whole cost."""
    ctx = ctx or context()
    with ctx.Pool(processes) as pool:
        result = pool.map_async(trivial, range(n_tasks)).get(timeout=TIMEOUT)
        pool.close()
        pool.join()
    return result


def run_sequential(n_tasks: int) -> list[int]:
    """The same tasks in this process, one after another: the baseline."""
    return [trivial(i) for i in range(n_tasks)]


def start_cost(method: str, repeats: int = 3) -> Stats:
    """Start and join one trivial ``Process`` under ``method`` (spawn | forkserver | fork).

    One untimed warm-up run first (for forkserver it starts the fork server).
    """
    ctx = multiprocessing.get_context(method)
    with warnings.catch_warnings():
        # Python >= 3.12 warns when a process with threads forks (a notebook's
        # process, the Jupyter kernel, always has threads). The measurement is the point here.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")
        return measure(lambda: run_processes(1, ctx), repeats=repeats, warmup=1)


def handover_cost(pool, repeats: int = 20) -> Stats:
    """One ``apply`` round trip to a waiting worker: hand a task over, get the result."""
    return measure(lambda: pool.apply(trivial, (0,)), repeats=repeats, warmup=2)


def pool_vs_process(
    counts: Sequence[int],
    max_process_tasks: int,
    repeats: int = 3,
    processes: int | None = None,
    ctx=None,
) -> dict[str, tuple[list[int], list[Stats]]]:
    """Time N trivial tasks three ways, for each N in ``counts``.

    Returns ``{name: (task counts, [Stats])}``. One ``Process`` per task is
    measured only for counts up to ``max_process_tasks`` (it is the slow one).
    The pool series includes starting and stopping the pool every time, as the
    lecture notes' comparison does.
    """
    ctx = ctx or context()
    counts = sorted(counts)
    proc_counts = [n for n in counts if n <= max_process_tasks]
    result: dict[str, tuple[list[int], list[Stats]]] = {}
    result["sequential"] = (counts, [measure(lambda n=n: run_sequential(n), repeats) for n in counts])
    if proc_counts:
        run_processes(1, ctx)  # warm-up: first start pays for imports and caches
        result["one Process per task"] = (
            proc_counts,
            [measure(lambda n=n: run_processes(n, ctx), repeats, warmup=0) for n in proc_counts],
        )
    run_pool(1, ctx, processes)  # warm-up, as above
    result["Pool.map (start-up included)"] = (
        counts,
        [measure(lambda n=n: run_pool(n, ctx, processes), repeats, warmup=0) for n in counts],
    )
    return result


def wait_for_workers(pool, size: int, timeout: float = TIMEOUT) -> int:
    """Block until each of the pool's ``size`` workers has run a task; return how many did.

    ``Pool()`` returns as soon as it has *started* its workers; under spawn each one
    still has to start Python and import modules before it can take a task. Short
    sleeps are handed out until ``size`` different pids have answered (or ``timeout``).
    """
    seen: set[int] = set()
    deadline = now() + timeout
    while len(seen) < size and now() < deadline:
        pending = pool.map_async(sleep_pid, [0.01] * (2 * size), chunksize=1)
        seen.update(pending.get(timeout=max(0.1, deadline - now())))
    return len(seen)


def apply_loop(pool, n_tasks: int) -> list[int]:
    """``apply`` in a loop: each call waits for its result before the next starts."""
    return [pool.apply(trivial, (i,)) for i in range(n_tasks)]


def apply_async_all(pool, n_tasks: int) -> list[int]:
    """Submit every task with ``apply_async`` first, then collect the results."""
    pending = [pool.apply_async(trivial, (i,)) for i in range(n_tasks)]
    return [r.get(timeout=TIMEOUT) for r in pending]


def apply_vs_apply_async(pool, counts: Sequence[int], repeats: int = 3) -> dict[str, list[Stats]]:
    """Time ``apply_loop`` and ``apply_async_all`` on ``pool`` for each task count."""
    return {
        "apply in a loop": [measure(lambda n=n: apply_loop(pool, n), repeats, warmup=0) for n in counts],
        "apply_async, then get": [
            measure(lambda n=n: apply_async_all(pool, n), repeats, warmup=0) for n in counts
        ],
    }


def name_lanes(results: Sequence[tuple[int, Span]]) -> list[Span]:
    """Rename each span's lane from a pid to "worker 1", "worker 2", ... in order of first start.

    Pids change from run to run; the names do not, so plots and printed text are stable.
    """
    first_start: dict[int, float] = {}
    for pid, span in results:
        first_start[pid] = min(first_start.get(pid, span.start), span.start)
    order = sorted(first_start, key=first_start.get)
    names = {pid: f"worker {i + 1}" for i, pid in enumerate(order)}
    return [Span(names[pid], span.label, span.start, span.end) for pid, span in results]


def spans_apply(pool, n_tasks: int, seconds: float) -> list[Span]:
    """Timeline of ``n_tasks`` sleep tasks submitted with ``apply`` in a loop."""
    return name_lanes([pool.apply(timed_sleep, (f"task {i}", seconds)) for i in range(n_tasks)])


def spans_apply_async(pool, n_tasks: int, seconds: float) -> list[Span]:
    """Timeline of the same tasks submitted with ``apply_async``."""
    pending = [pool.apply_async(timed_sleep, (f"task {i}", seconds)) for i in range(n_tasks)]
    return name_lanes([r.get(timeout=TIMEOUT) for r in pending])


def spans_map(pool, durations: Sequence[float], chunksize: int | None = None) -> list[Span]:
    """Timeline of ``map`` over sleep tasks of the given ``durations``; each span is
    labelled with its chunk ("chunk 0", "chunk 1", ...). ``chunksize=None`` lets
    ``map`` choose (``default_chunksize``)."""
    # the size map picks itself: Pool._map_async divides by len(self._pool) too
    size = chunksize or default_chunksize(len(durations), len(pool._pool))
    items = [(f"chunk {i // size}", seconds) for i, seconds in enumerate(durations)]
    results = pool.map_async(timed_sleep_item, items, chunksize=chunksize).get(timeout=TIMEOUT)
    return name_lanes(results)


def messages_sent(n_tasks: int, chunksize: int) -> int:
    """Task batches ``map`` sends to the workers: one message per chunk."""
    return math.ceil(n_tasks / chunksize)


def idle_at_end(spans: Sequence[Span]) -> dict[str, float]:
    """For each lane: seconds between its last task's end and the end of the whole job."""
    finish = max(s.end for s in spans)
    last: dict[str, float] = {}
    for s in spans:
        last[s.lane] = max(last.get(s.lane, s.end), s.end)
    return {lane: finish - end for lane, end in sorted(last.items())}


def fetch_comparison(
    pool, fetch: Callable[[str], object], urls: Sequence[str], threads: int, repeats: int = 3
) -> dict[str, Stats]:
    """``fetch`` each of ``urls``: sequentially, with ``apply`` in a loop, with
    ``apply_async``, and with threads. ``fetch`` must be importable by the workers."""

    def sequential():
        return [fetch(u) for u in urls]

    def apply():
        return [pool.apply(fetch, (u,)) for u in urls]

    def apply_async():
        pending = [pool.apply_async(fetch, (u,)) for u in urls]
        return [r.get(timeout=TIMEOUT) for r in pending]

    def with_threads():
        with ThreadPoolExecutor(threads) as ex:
            return list(ex.map(fetch, urls))

    return {
        "sequential": measure(sequential, repeats, warmup=0),
        "Pool.apply loop": measure(apply, repeats, warmup=0),
        "Pool.apply_async": measure(apply_async, repeats, warmup=0),
        f"{threads} threads": measure(with_threads, repeats, warmup=0),
    }
