"""Lecture 04's CPU-bound speedup against pool size (加速比), measured honestly.

``speedup_vs_pool_size`` times the same tasks one after another in this process and
on warm pools of several sizes, round by round; every task also records the
processor time it used where it ran. ``Sweep`` turns one run into per-round
speedups, the workers' pace and each pool's ceiling; ``best_size``,
``machine_load`` and ``load_report`` turn them into the sentences the notebook
prints. Nothing here asserts a speed: the machine decides.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from courselib.startmethod import context
from helpers.pool_bench import TIMEOUT, wait_for_workers
from helpers.timing import Stats, now


@dataclass(frozen=True)
class Sweep:
    """One run of ``speedup_vs_pool_size``: all times in seconds. Sample ``i`` of every
    series was taken in the same round, one right after the other."""

    sequential: Stats  # the tasks one after another in this process
    per_size: dict[int, Stats]  # the same tasks on a warm pool of each size
    startup: dict[int, float]  # starting each pool until every worker had answered
    # processor time of one task, in the process that ran it: here, and in each pool's workers
    task_here: Stats | None = None
    task_in_pool: dict[int, Stats] = field(default_factory=dict)

    def speedups(self) -> dict[int, Stats]:
        """Per round: the sequential time divided by each pool's time in that round.

        Pairing the samples of one round means a burst of load from other programs
        slows both sides of a ratio, instead of only one."""
        return {
            size: Stats(tuple(q / t for q, t in zip(self.sequential.samples, s.samples, strict=True)))
            for size, s in self.per_size.items()
        }

    def paces(self) -> dict[int, Stats]:
        """Per round: the processor time the round's tasks used in the workers of each
        pool, divided by what the same tasks used here (1.0: the workers computed as
        fast as this process). Round by round, as ``speedups``: the host's speed may
        change between rounds. NaN for a round whose tasks used no measurable processor
        time here (tasks that only wait)."""
        here = _per_round(self.task_here, len(self.sequential.samples))
        return {size: Stats(tuple(p / h if h > 0 else math.nan
                                  for h, p in zip(here, _per_round(s, len(here)), strict=True)))
                for size, s in self.task_in_pool.items()}

    def ceilings(self, cores: int) -> dict[int, Stats]:
        """Per round: the speedup each pool would have reached if its workers had never
        waited, with their processor time spread evenly over ``min(size, cores)`` cores:
        the round's time here divided by that. A pool takes at least that long, so a
        round's speedup never exceeds its ceiling, and neither does the median."""
        rounds = len(self.sequential.samples)
        return {size: Stats(tuple(q / (p / min(size, cores)) if p > 0 else math.nan
                                  for q, p in zip(self.sequential.samples,
                                                  _per_round(s, rounds), strict=True)))
                for size, s in self.task_in_pool.items()}


def _per_round(tasks: Stats, rounds: int) -> list[float]:
    """The processor time of each round's tasks (the samples are in round order)."""
    n = len(tasks.samples) // rounds
    return [sum(tasks.samples[r * n:(r + 1) * n]) for r in range(rounds)]


def timed_call(worker: Callable[[object], object], arg: object) -> float:
    """``worker(arg)``: the processor time it used (seconds), in the thread that ran it.

    Processor time, not elapsed time, so that a worker waiting for its turn on a
    core (more workers than cores) does not count as a slow worker."""
    start = time.thread_time()
    worker(arg)
    return time.thread_time() - start


def _seconds(fn: Callable[[], object]) -> float:
    start = now()
    fn()
    return now() - start


def speedup_vs_pool_size(
    worker: Callable[[object], object],
    arg: object,
    sizes: Sequence[int],
    n_tasks: int,
    repeats: int = 3,
    ctx=None,
) -> Sweep:
    """``worker(arg)`` × ``n_tasks``: sequentially here, and on a pool of each size.

    Every pool is started first, and every worker has answered (``wait_for_workers``),
    before any clock starts: the speedup measures how the work spreads over warm
    workers; the start-up is timed on its own (``Sweep.startup``). Then ``repeats``
    rounds each time the sequential run and every pool once, so the runs a speedup
    compares are seconds apart. Every task's processor time is also taken where it
    runs (``Sweep.task_here``, ``Sweep.task_in_pool``): workers that need more of it
    per task than this process cannot reach the core count, however well the pool
    spreads the work. ``worker`` must be importable by the pool's workers (a
    module-level function of a module).
    """
    ctx = ctx or context()
    pools: dict[int, object] = {}  # size -> Pool
    startup: dict[int, float] = {}
    try:
        for size in sizes:
            start = now()
            pools[size] = ctx.Pool(size)
            if wait_for_workers(pools[size], size) < size:
                raise RuntimeError(f"not every worker of a pool of {size} started within {TIMEOUT} s")
            startup[size] = now() - start
        timed = functools.partial(timed_call, worker)  # each task times itself where it runs
        sequential: list[float] = []
        per_size: dict[int, list[float]] = {size: [] for size in sizes}
        task_here: list[float] = []
        task_in_pool: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(repeats):
            sequential.append(_seconds(lambda: task_here.extend([timed(arg) for _ in range(n_tasks)])))
            for size, pool in pools.items():

                def run(pool=pool, into=task_in_pool[size]):
                    into.extend(pool.map_async(timed, [arg] * n_tasks, chunksize=1).get(timeout=TIMEOUT))

                per_size[size].append(_seconds(run))
    finally:
        for pool in pools.values():
            pool.terminate()
            pool.join()
    return Sweep(Stats(tuple(sequential)), {k: Stats(tuple(v)) for k, v in per_size.items()}, startup,
                 Stats(tuple(task_here)), {k: Stats(tuple(v)) for k, v in task_in_pool.items()})


def best_size(speedups: dict[int, Stats], margin: float = 0.05) -> int:
    """The smallest pool size whose median speedup is within ``margin`` of the highest.

    Sizes whose speedups differ by less than the noise are "about the same"; among
    those the smallest wins, since more workers cost more memory and start-up.
    """
    top = max(s.median for s in speedups.values())
    return min(size for size, s in speedups.items() if s.median >= (1 - margin) * top)


def machine_load() -> tuple[float | None, int]:
    """(load average over the last minute, logical CPUs); the load is None where the
    operating system does not report one (Windows).

    The load average counts the processes running or waiting for a CPU: near the
    number of cores, every core is already busy with something else.
    """
    cores = os.cpu_count() or 1
    if not hasattr(os, "getloadavg"):
        return None, cores
    return os.getloadavg()[0], cores


def load_report(load: float | None, cores: int, busy_fraction: float = 0.5) -> str:
    """One plain sentence about ``machine_load()``, starting with WARNING when the
    load is at least ``busy_fraction`` of the cores (then measured speedups come out
    lower than on an idle machine)."""
    if load is None:
        return "load average: not reported on this system; close other programs before measuring"
    line = f"load average over the last minute: {load:.1f}, on {cores} cores"
    if load >= busy_fraction * cores:
        return (f"WARNING: the machine is busy ({line}): other programs share the cores, "
                "so the speedups below come out lower than on an idle machine")
    return f"{line}: quiet enough to measure"
