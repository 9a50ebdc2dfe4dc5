"""Machinery for lecture 01, the producer–consumer model (生产者消费者模型).

The producers and consumers the lecture teaches (``produce``,
``consume_until_sentinel``, ``produce_then_join``, ``consume_joinable``) are
not here: the notebook shows them in an editable ``%%writefile pc_workers.py``
cell. This module holds what the lecture does *not* ask students to write:
the ``Report`` a worker sends back, the demonstrations of mistakes (a truthy
consumer, a polling consumer, joining before reading), the back-pressure
recorders and ``fill_levels``, a tool that takes a worker as a parameter
(``call_when_set``) and ``drain`` (what is left on a queue). The exercises'
self-checks are in :mod:`helpers.exercises.producer_consumer`.

Everything that runs in a child lives in an importable module: under spawn and
forkserver a child re-imports its target by name. Workers never print; they
send what they did back to the parent through a queue, so the notebook prints
it in a fixed order. Every wait is bounded by ``TIMEOUT`` seconds.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import warnings
from dataclasses import dataclass, field

# drain: everything left on a queue once its writers have exited (the notebook's pc.drain)
from courselib.procs import drain, finish
from helpers.queue_bench import measure_queue_throughput
from helpers.timing import now

__all__ = [
    "SENTINEL",
    "TIMEOUT",
    "Report",
    "call_when_set",
    "consume_truthy",
    "drain",
    "fill_levels",
    "measure_queue_throughput",
    "poll_until_empty",
    "put_and_return",
    "put_three",
    "record_gets",
    "record_puts",
    "try_thread_queue",
]

SENTINEL = None  # "no more items": one per consumer, put after all producers have finished
TIMEOUT = 60.0  # upper bound on any single wait in a worker (seconds)


@dataclass
class Report:
    """What one worker did, sent back to the parent in one message.

    ``items``: what it put on, or took off, the queue, in order (sentinels excluded).
    ``spans``: one timeline bar per item (lane = this worker, label = who made the item).
    ``stopped_by``: why it stopped: "sentinel", "empty", "falsy item" or "timeout".
    """

    name: str
    items: list = field(default_factory=list)
    spans: list = field(default_factory=list)
    stopped_by: str = ""


# --- consumers that show a mistake ------------------------------------------


def consume_truthy(q, results, name):
    """The notes' consumer test ``if info: ... else: break``: stops at ANY falsy item."""
    report = Report(name)
    while True:
        try:
            item = q.get(timeout=TIMEOUT)
        except queue.Empty:
            report.stopped_by = "timeout"
            break
        if item:
            report.items.append(item)
        else:
            report.stopped_by = "sentinel" if item is SENTINEL else "falsy item"
            break
    results.put(report)


def poll_until_empty(q, results, name, saw_empty=None):
    """A polling consumer: ``get_nowait()`` until ``queue.Empty``, then quit.

    This is the mistake the notes warn about: Empty means "nothing there right
    now", not "the producers are finished". ``saw_empty`` (an Event) is set when
    it gives up, so a test can start a late producer exactly then.
    """
    report = Report(name)
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            report.stopped_by = "empty"
            break
        report.items.append(item)
    if saw_empty is not None:
        saw_empty.set()
    results.put(report)


# --- small demonstrations -------------------------------------------------------


def put_and_return(q, nbytes, returned):
    """Put one ``nbytes`` item on ``q``, set the Event ``returned``, and return.

    The function returns at once, but the process cannot exit until its queue's
    feeder thread has written the item into the pipe, i.e. until someone reads
    it: a parent that ``join()``s before reading waits for ever.
    """
    q.put(bytes(nbytes))
    returned.set()


def put_three(q):
    """Put 1, 2, 3 on ``q`` (a ``queue.Queue``: under fork, the child's own copy)."""
    for i in (1, 2, 3):
        q.put(i)


def try_thread_queue(method):
    """Hand a ``queue.Queue`` to a child started with ``method``; say what happened.

    spawn/forkserver pickle the Process's arguments, and a ``queue.Queue``
    (it holds thread locks) cannot be pickled: ``start()`` raises TypeError and
    no child is started. fork copies the parent's memory instead: the child
    fills its own copy, and the parent's queue stays empty.
    """
    ctx = multiprocessing.get_context(method)
    thread_q = queue.Queue()
    child = ctx.Process(target=put_three, args=(thread_q,))
    try:
        with warnings.catch_warnings():
            # Python >= 3.12 warns when a process with threads (a Jupyter kernel) forks.
            warnings.simplefilter("ignore", DeprecationWarning)
            child.start()
    except TypeError:
        return f"{method:>10}: start() raised TypeError: a queue.Queue cannot be pickled"
    finish([child], TIMEOUT)
    return (
        f"{method:>10}: the child put 3 items into its own copy "
        # queue.Queue.qsize() works everywhere (multiprocessing.Queue.qsize() does not on macOS)
        f"(exit code {child.exitcode}); the parent's queue.Queue holds {thread_q.qsize()}"
    )


def call_when_set(event, fn, *args, **kwargs):
    """Wait (at most ``TIMEOUT`` s) for the Event ``event``, then run ``fn(*args, **kwargs)``.

    Makes a worker start late on cue, e.g. a producer that begins only once a
    polling consumer has given up: the unlucky timing then happens in every run.
    """
    if not event.wait(TIMEOUT):
        raise TimeoutError(f"{getattr(fn, '__name__', fn)}: the start signal never came")
    fn(*args, **kwargs)


# --- back-pressure: fill level over time -------------------------------------


def record_puts(q, n_items, log):
    """A fast producer: put ``0..n_items-1`` as fast as ``q`` allows.

    Logs ``("put", [(before, after), ...])``: when each put() was called and
    when it returned (a long gap means the queue was full: back-pressure).
    """
    stamps = []
    for i in range(n_items):
        before = now()
        q.put(i, timeout=TIMEOUT)
        stamps.append((before, now()))
    log.put(("put", stamps))


def record_gets(q, n_items, delay, log):
    """A slow consumer: ``get()`` ``n_items`` items, ``delay`` s of work each.

    Logs ``("get", [(before, after), ...])``: when each get() was called and
    when it returned.
    """
    stamps = []
    for _ in range(n_items):
        before = now()
        q.get(timeout=TIMEOUT)
        stamps.append((before, now()))
        time.sleep(delay)
    log.put(("get", stamps))


def fill_levels(puts, gets):
    """Items in a queue over time, from one producer's and one consumer's stamps.

    ``puts`` and ``gets`` are ``(called, returned)`` pairs in order (a queue is
    FIFO, so get j takes item j). A stamp is taken just *after* each call
    returns, so naively counting "puts returned minus gets returned" can read
    one above ``maxsize``: the put that a get made room for often returns
    before that get does. Instead, get j is counted at
    ``max(get j called, put j returned)``: no earlier than it was asked for or
    than its item existed, and (because get j frees a slot inside the call)
    before put ``j + maxsize`` returns. The level then stays in ``0..maxsize``.

    Returns ``(times, levels)``: one point per event in time order; at equal
    times the put is counted first (a get counted at its item's put comes after it).
    """
    if len(gets) > len(puts):
        raise ValueError(f"{len(gets)} gets of only {len(puts)} puts")
    takes = [max(called, puts[j][1]) for j, (called, _) in enumerate(gets)]
    events = sorted([(after, 1) for _, after in puts] + [(t, -1) for t in takes],
                    key=lambda event: (event[0], -event[1]))
    times, levels, level = [], [], 0
    for t, change in events:
        level += change
        times.append(t)
        levels.append(level)
    return times, levels
