"""Harness for the self-checks of lecture 00's exercises (课程回顾).

The student writes the worker (a ``%%writefile`` module next to the notebook);
the functions here run it in child processes and report what happened, so the
notebook's self-check cell can say in plain words what is still wrong.
"""

from __future__ import annotations

import time

from courselib.procs import finish, get_or_none
from helpers.review import WAIT_LIMIT
from helpers.timing import now


def run_traffic(ctx, car, n_cars: int = 3, red_seconds: float = 0.3):
    """Exercise harness: ``n_cars`` processes run ``car(light, out, name)`` at a red light.

    A car puts ``("arrived", name, t)`` when it reaches the light and
    ``("passed", name, t)`` when it drives on. The light (an Event) turns green
    ``red_seconds`` after the last car arrived. Returns ``(green_time, passed)``,
    ``passed`` being ``{name: time}`` for the cars that drove on within the limit;
    ``green_time`` is None if some car never arrived.
    """
    light, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=car, args=(light, out, f"car {i}")) for i in range(n_cars)]
    for p in procs:
        p.start()
    arrived: set[str] = set()
    passed: dict[str, float] = {}
    green = None
    try:
        deadline = time.monotonic() + WAIT_LIMIT
        while len(passed) < n_cars or green is None:
            if green is None and len(arrived) == n_cars:
                time.sleep(red_seconds)
                green = now()
                light.set()
                continue  # the cars may all have passed already (they ran the red light)
            # None once the time is up, or every car has stopped and what each sent
            # before exiting has been read
            message = get_or_none(out, deadline, lambda: any(p.is_alive() for p in procs))
            if message is None:
                break
            kind, name, stamp = message
            if kind == "arrived":
                arrived.add(name)
            else:
                passed[name] = stamp
    finally:
        light.set()
        finish(procs, timeout=5)
    return green, passed
