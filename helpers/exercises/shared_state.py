"""Self-check for lecture 03's exercise "a counter that loses nothing" (进程之间的共享内存).

It runs the student's ``add_many`` in several processes at once and says, in plain
words, what is wrong with the result or that it is right. It never raises on a
wrong answer, and every wait on a child has a timeout.
"""

from __future__ import annotations

from courselib.procs import finish
from courselib.startmethod import context


def check_counter_exercise(add_many, workers: int = 4, each: int = 300, ctx=None, wait: float = 30.0) -> str:
    """Run ``add_many(counter, lock, each, start)`` in ``workers`` processes at once,
    with a ``manager.Value('i', 0)``, one ``manager.Lock()`` and a Barrier; say in
    plain words what is wrong with the result, or that it is right."""
    ctx = ctx or context()
    with ctx.Manager() as m:
        counter, lock = m.Value("i", 0), m.Lock()
        start = ctx.Barrier(workers)
        procs = [ctx.Process(target=add_many, args=(counter, lock, each, start)) for _ in range(workers)]
        for p in procs:
            p.start()
        stuck = finish(procs, wait)
        crashed = [p.exitcode for p in procs if p not in stuck and p.exitcode != 0]
        final = counter.value
    expected = workers * each
    if crashed:
        return f"A worker crashed (exit codes {crashed}): call add_many in a cell to see the error."
    if stuck:
        return (
            f"{len(stuck)} worker(s) still ran after {wait:.0f} s: "
            "is something waiting forever (a lock never released)?"
        )
    if final == 0:
        return "The counter is still 0: add_many did not add anything yet."
    if final < expected:
        return (
            f"{expected - final} of {expected} additions were lost: "
            "is each 'counter.value += 1' inside 'with lock:'?"
        )
    if final > expected:
        return f"The counter is {final}, more than the {expected} additions made: does each call add exactly n?"
    return f"Right: all {expected} additions arrived."
