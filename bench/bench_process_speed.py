"""Does a pool worker run lecture 04's CPU task as fast as the process that started it?

Lecture 04's speedup compares the tasks run one after another in the notebook's own
process with the same tasks on a pool. If a worker process runs the same code more
slowly, no pool can reach "speedup = number of cores" against that process, however
heavy the tasks. This script times two loops:

- ``sum_squares``, the lecture's first CPU task: it creates integer objects at every
  step. In some runs on the course's machine a plain spawn worker ran it about 10%
  slower, relative to ``pearson``, than every other process did; in others it did not
  (the saved results hold several runs, to show both);
- ``pearson``, the lecture's task now (a Pearson hash): every number in its loop is
  below 256, which CPython keeps ready-made, so it creates no objects.

Both loops are timed alternately in the same process (a slow or fast spell of the
machine, which on a shared virtual machine can last seconds, falls on both), and the
ratio of their times is compared across processes: this one (with one thread until
the last line, which has an idle extra thread), and a one-worker pool under each start method, plain and
with an idle extra thread (a pool initializer starts it). The whole table is measured
``--runs`` times. bench/results/process_speed.txt holds a run on the course's 2-core
test machine.

    .venv/bin/python bench/bench_process_speed.py [--work 300000] [--pairs 21] [--runs 3]

Run it under other interpreters too (``python3.13 bench/bench_process_speed.py``):
it needs only the standard library. Nothing is asserted; the machine decides.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import sys
import threading
import time

TABLE = tuple((i * 167 + 13) % 256 for i in range(256))
BLOCK = bytes(range(256))


def sum_squares(n: int) -> int:
    """Lecture 04's first CPU task: a new integer object at every step."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def pearson(n: int) -> int:
    """Lecture 04's CPU task (notebooks/04-pool.ipynb, pool_workers.cpu_task)."""
    h = 0
    for byte in (BLOCK * (n // len(BLOCK) + 1))[:n]:
        h = TABLE[h ^ byte]
    return h


TASKS = {"sum_squares": sum_squares, "pearson": pearson}


def time_task(name: str, n: int) -> float:
    """Seconds one ``TASKS[name](n)`` takes in the process that runs this."""
    start = time.perf_counter()
    TASKS[name](n)
    return time.perf_counter() - start


def time_both(n: int, pairs: int) -> dict[str, float]:
    """Median seconds of each task in the process that runs this, the two timed
    alternately: a slower or faster spell of the machine falls on both."""
    seen: dict[str, list[float]] = {name: [] for name in TASKS}
    for _ in range(pairs):
        for name in TASKS:
            seen[name].append(time_task(name, n))
    return {name: statistics.median(times) for name, times in seen.items()}


def start_idle_thread() -> None:
    """Pool initializer: one extra thread that waits forever and never runs."""
    threading.Thread(target=threading.Event().wait, daemon=True).start()


def report(where: str, medians: dict[str, float]) -> None:
    sq, pe = medians["sum_squares"], medians["pearson"]
    print(f"{where:38s} sum_squares {sq * 1e3:5.1f} ms, pearson {pe * 1e3:5.1f} ms, "
          f"ratio {sq / pe:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=int, default=300_000, help="each task's argument")
    parser.add_argument("--pairs", type=int, default=21)
    parser.add_argument("--runs", type=int, default=3, help="times the whole table is measured")
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()} "
          f"({sys.executable}), {multiprocessing.cpu_count()} CPUs, task({args.work}); "
          "the ratio is sum_squares' time over pearson's in the same process")
    started = time.perf_counter()
    for run in range(1, args.runs + 1):
        print(f"run {run}")
        report("this process", time_both(args.work, args.pairs))
        for method in multiprocessing.get_all_start_methods():
            for label, init in (("worker", None), ("worker + idle thread", start_idle_thread)):
                with multiprocessing.get_context(method).Pool(1, initializer=init) as pool:
                    medians = pool.apply_async(time_both, (args.work, args.pairs)).get(
                        timeout=300)
                report(f"{method} {label}", medians)
    start_idle_thread()
    report("this process, with an idle thread", time_both(args.work, args.pairs))
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
