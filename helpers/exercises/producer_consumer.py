"""Self-checks for the ungraded exercises of lecture 01, the producer–consumer
model (生产者消费者模型).

Each ``check_*`` runs the student's code against real processes and returns a
message in plain words: what is wrong and a hint, or that it is right. They
never raise on a wrong answer (the committed notebook keeps the starter code,
and must still run top to bottom), and they clean up every process they start.
"""

from __future__ import annotations

import time

from courselib import procs
from courselib.startmethod import context
from helpers.producer_consumer import SENTINEL

TIMEOUT = 30.0  # bound on each wait for a student's process (seconds)


def call_after_signal(started, fn, *args):
    """Set the Event ``started``, then run ``fn(*args)``: lets a check know the
    student's process is running before it starts producing."""
    started.set()
    fn(*args)


class _SentinelSpy:
    """Stands in for a Queue: counts sentinels, and those put while a producer still runs."""

    def __init__(self, q, producers):
        self._q = q
        self._producers = producers
        self.sentinels = 0
        self.early = 0

    def put(self, item, *args, **kwargs):
        if item is SENTINEL:
            self.sentinels += 1
            self.early += any(p.is_alive() for p in self._producers)
        self._q.put(item, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._q, name)


def check_stop_consumers(finish, produce, consume, n_producers=2, n_items=5, n_consumers=3):
    """Exercise 1: ``finish(producers, q, n_consumers)`` must end the run cleanly.

    Starts ``n_consumers`` consumers ``consume(q, results, name)`` (the lecture's
    ``consume_until_sentinel``: stops at the sentinel, then puts a report with an
    ``items`` list on ``results``) and ``n_producers`` producers
    ``produce(q, name, n_items, delay)``, calls the student's ``finish`` once all
    are started, then checks how many sentinels it put and whether any went in
    before the producers were done.
    """
    ctx = context()
    q, results = ctx.Queue(), ctx.Queue()
    consumers = [
        ctx.Process(target=consume, args=(q, results, f"consumer {i}"))
        for i in range(n_consumers)
    ]
    producers = [
        ctx.Process(target=produce, args=(q, f"producer {i}", n_items, 0.05))
        for i in range(n_producers)
    ]
    for p in consumers + producers:
        p.start()
    spy = _SentinelSpy(q, producers)
    finish(producers, spy, n_consumers)

    # Clean up whatever the answer left undone, then judge.
    procs.finish(producers, TIMEOUT)
    missing = n_consumers - spy.sentinels
    for _ in range(max(missing, 0)):
        q.put(SENTINEL)
    reports = _collect(results, consumers, len(consumers))
    # terminates only a consumer that did not stop (an edited one): its queues are discarded
    procs.finish(consumers, TIMEOUT)
    extra = procs.drain(q, quiet=0.2)
    consumed = sum(len(getattr(r, "items", ())) for r in reports)

    problems = []
    if len(reports) < n_consumers:
        problems.append(
            f"only {len(reports)} of {n_consumers} consumers sent their report: "
            "if you changed consume_until_sentinel in pc_workers.py, it must still end "
            "with results.put(report)."
        )
    if missing > 0:
        problems.append(
            f"{missing} of {n_consumers} consumers would have waited for ever: you put "
            f"{spy.sentinels} sentinel(s) for {n_consumers} consumers. "
            "Did each consumer get its own sentinel?"
        )
    if spy.early:
        problems.append(
            f"{spy.early} sentinel(s) went in while a producer was still running: a consumer "
            "that takes one stops while items are still coming. Join the producers first."
        )
    if missing < 0 or extra:
        problems.append(
            f"{len(extra)} sentinel(s) were never taken: put exactly one per consumer."
        )
    if consumed != n_producers * n_items:
        problems.append(f"{consumed} of {n_producers * n_items} items were consumed.")
    if problems:
        return "Not yet:\n- " + "\n- ".join(problems)
    return (
        f"Right: {n_consumers} sentinels, all put after the producers had finished; "
        f"all {consumed} items were consumed and every consumer stopped."
    )


def check_polling_consumer(consumer, n_items=6, gap=0.15):
    """Exercise 2: ``consumer(q, results)`` must take every item, then put its list on results.

    A producer (this process) puts ``0..n_items-1`` with a ``gap`` s pause before
    each, then one sentinel: a consumer that stops at the first ``queue.Empty``
    quits during a pause and leaves items behind.
    """
    ctx = context()
    q, results, started = ctx.Queue(), ctx.Queue(), ctx.Event()
    child = ctx.Process(target=call_after_signal, args=(started, consumer, q, results))
    child.start()
    if not started.wait(TIMEOUT):
        procs.finish([child], 0)
        return "Your consumer process did not start: is the module importable?"
    for i in range(n_items):
        time.sleep(gap)  # the producer needs time to make each item
        q.put(i)
    q.put(SENTINEL)

    got = procs.get_or_none(results, time.monotonic() + TIMEOUT, child.is_alive)
    procs.finish([child], TIMEOUT)
    if got is None:
        return (
            f"Your consumer sent nothing back within {TIMEOUT:.0f} s "
            f"(exit code {child.exitcode}): it must end with results.put(list_of_items)."
        )
    left = [x for x in procs.drain(q, quiet=0.2) if x is not SENTINEL]
    if left:
        return (
            "Not yet: some items were never consumed (they are still in the queue). Your "
            "consumer stopped the first time the queue was empty, while the producer was "
            "still working. queue.Empty means 'nothing there right now', not 'finished': "
            "stop at the sentinel (None) instead."
        )
    if SENTINEL in got:
        return "Not yet: the sentinel (None) is not an item; do not add it to the list."
    if list(got) != list(range(n_items)):
        return f"Not yet: expected the items {list(range(n_items))}, got {list(got)}."
    return f"Right: all {n_items} items consumed, in order, and the consumer stopped at the sentinel."


def check_task_done(consumer, n_items=8, n_consumers=2):
    """Exercise 3: ``consumer(jq, results)`` on a JoinableQueue must balance task_done().

    Puts ``0..n_items-1`` and one sentinel per consumer, collects the squares
    the consumers send back, then counts the ``task_done()`` calls still
    missing (calling it from here until it raises ValueError) so that
    ``jq.join()`` can be shown to return.
    """
    ctx = context()
    jq, results = ctx.JoinableQueue(), ctx.Queue()
    consumers = [ctx.Process(target=consumer, args=(jq, results)) for _ in range(n_consumers)]
    for c in consumers:
        c.start()
    for i in range(n_items):
        jq.put(i)
    for _ in consumers:
        jq.put(SENTINEL)

    squares = _collect(results, consumers, n_items)
    hung = procs.finish(consumers, TIMEOUT)
    crashed = [c.exitcode for c in consumers if c not in hung and c.exitcode != 0]

    missing = 0  # every consumer has exited: no task_done() can come any more
    while True:
        try:
            jq.task_done()
        except ValueError:
            break
        missing += 1
    jq.join()  # the count is zero now, so this returns at once

    problems = []
    if hung:
        problems.append(
            f"{len(hung)} consumer(s) did not stop within {TIMEOUT:.0f} s: "
            "stop at the sentinel (None)."
        )
    if crashed:
        problems.append(
            f"{len(crashed)} consumer(s) crashed (exit code {crashed[0]}); the error is above. "
            "ValueError 'task_done() called too many times' means one get() got two task_done()."
        )
    if missing:
        problems.append(
            f"{missing} task_done() call(s) were missing: jq.join() would have waited for ever. "
            "Every get() needs exactly one task_done(), the sentinel's included."
        )
    if sorted(squares) != [i * i for i in range(n_items)]:
        problems.append(f"the consumers sent back {sorted(squares)}, not the squares of 0..{n_items - 1}.")
    if problems:
        return "Not yet:\n- " + "\n- ".join(problems)
    return (
        f"Right: {n_items + n_consumers} get() calls (items and sentinels), "
        f"{n_items + n_consumers} task_done() calls: jq.join() returns."
    )


def _collect(results, children, n):
    """Up to ``n`` messages from ``results``, read until they have all arrived or no
    child is left to send one (what a child sent just before exiting included)."""
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < n:
        item = procs.get_or_none(results, deadline, lambda: any(c.is_alive() for c in children))
        if item is None:
            break
        got.append(item)
    return got
