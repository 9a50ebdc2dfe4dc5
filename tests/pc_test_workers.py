"""Producers and consumers for the tests of lecture 01's machinery.

The lecture's own workers live in the notebook (its ``%%writefile pc_workers.py``
cell), not in ``helpers``; these are the tests' versions with the same
signatures and reports. A module of their own, so spawn children can import them.
"""

import queue
import time

from helpers.producer_consumer import SENTINEL, TIMEOUT, Report
from helpers.timing import Span, now


def produce(q, name, n_items, delay=0.0, log=None):
    """Put ``(name, 0) .. (name, n_items - 1)`` on ``q``; a Report on ``log`` at the end."""
    report = Report(name)
    for i in range(n_items):
        start = now()
        time.sleep(delay)
        q.put((name, i))
        report.items.append((name, i))
        report.spans.append(Span(name, name, start, now()))
    if log is not None:
        log.put(report)


def consume_until_sentinel(q, results, name, delay=0.0):
    """Take items until the sentinel; one Report on ``results`` at the end."""
    report = Report(name)
    while True:
        try:
            item = q.get(timeout=TIMEOUT)
        except queue.Empty:
            report.stopped_by = "timeout"
            break
        if item is SENTINEL:
            report.stopped_by = "sentinel"
            break
        start = now()
        time.sleep(delay)
        report.items.append(item)
        report.spans.append(Span(name, str(item[0]), start, now()))
    results.put(report)


def consume_silently(q, results, name):
    """A consumer that stops at the sentinel but never sends its report."""
    while q.get(timeout=TIMEOUT) is not SENTINEL:
        pass

