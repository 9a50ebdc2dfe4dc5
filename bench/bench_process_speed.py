"""Does a pool worker run lecture 04's CPU task as fast as the process that started it?

Lecture 04's speedup compares the tasks run one after another in the notebook's own
process with the same tasks on a pool. If a worker process runs the same code more
slowly, no pool can reach "speedup = number of cores" against that process, however
heavy the tasks. This script times one task in this process and in a pool worker,
alternately, for each start method and for two loops:

- ``sum_squares``, the lecture's first CPU task: it creates integer objects at every
  step, and its speed varies from process to process with the process's state (whether
  it has other threads, among others), so a worker may run it faster or slower than the
  process that started it;
- ``pearson``, the lecture's task now (a Pearson hash): every number in its loop is
  below 256, which CPython keeps ready-made, so it creates no objects.

Each is timed in a plain worker and in a worker with one idle extra thread (a pool
initializer starts it). bench/results/process_speed.txt holds a run on the course's
2-core test machine.

    .venv/bin/python bench/bench_process_speed.py [--work 600000] [--rounds 15]

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


def start_idle_thread() -> None:
    """Pool initializer: one extra thread that waits forever and never runs."""
    threading.Thread(target=threading.Event().wait, daemon=True).start()


def compare(method: str, task: str, work: int, rounds: int,
            initializer=None) -> tuple[float, float]:
    """Median seconds per task here and in a one-worker pool, timed alternately."""
    here, there = [], []
    with multiprocessing.get_context(method).Pool(1, initializer=initializer) as pool:
        pool.apply(time_task, (task, 10))  # the worker is up and has imported this module
        for _ in range(rounds):
            here.append(time_task(task, work))
            there.append(pool.apply_async(time_task, (task, work)).get(timeout=60))
    return statistics.median(here), statistics.median(there)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=int, default=500_000, help="each task's argument")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()} "
          f"({sys.executable}), {multiprocessing.cpu_count()} CPUs, task({args.work})")
    for task in TASKS:
        for method in multiprocessing.get_all_start_methods():
            for label, init in (("worker", None), ("worker + idle thread", start_idle_thread)):
                here, there = compare(method, task, args.work, args.rounds, init)
                print(f"{task:11s} {method:10s} {label:20s} here {here * 1e3:5.1f} ms, worker "
                      f"{there * 1e3:5.1f} ms: worker/here {there / here:.2f}, so a pool of 2 "
                      f"can reach at most {2 * here / there:.2f} against this process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
