"""How fast a ``multiprocessing.Queue`` moves items from one process to another.

One producer process puts ``n_items`` byte strings of ``item_bytes`` bytes; the
parent takes them off and times that. Every item is pickled by the producer's
feeder thread, written through a pipe and unpickled by the parent, so the rate
falls as items grow. Used by lecture 01 and the summary notebook.
"""

from __future__ import annotations

import queue

from courselib.procs import finish
from courselib.startmethod import context
from helpers.timing import now

TIMEOUT = 60.0  # bound on each wait for the producer (seconds)
_READY = "ready"


def send_payloads(q, item_bytes, n_items):
    """Producer: a ready marker, then ``n_items`` items of ``item_bytes`` bytes each."""
    q.put(_READY)
    payload = bytes(item_bytes)
    for _ in range(n_items):
        q.put(payload)


def measure_queue_throughput(item_bytes: int, n_items: int, ctx=None) -> float:
    """Items per second moved from one producer process to this one through ``ctx.Queue``.

    The clock starts when the producer's ready marker arrives (so process start-up
    is not counted) and stops when the last item has been received. ``ctx``
    defaults to :func:`helpers.context`. Raises TimeoutError if the producer
    stalls for ``TIMEOUT`` seconds, RuntimeError if an item arrives damaged.
    """
    if item_bytes < 0:
        raise ValueError("item_bytes must be >= 0")
    if n_items < 1:
        raise ValueError("n_items must be >= 1")
    ctx = ctx or context()
    q = ctx.Queue()
    producer = ctx.Process(target=send_payloads, args=(q, item_bytes, n_items), daemon=True)
    producer.start()
    try:
        if _get(q) != _READY:
            raise RuntimeError("the producer's first message was not the ready marker")
        start = now()
        for _ in range(n_items):
            item = _get(q)
            if len(item) != item_bytes:
                raise RuntimeError(f"received {len(item)} bytes, expected {item_bytes}")
        elapsed = now() - start
    finally:
        # Everything was read (or we are failing): the producer can flush and exit.
        # (terminated only after an error; the queue is discarded anyway)
        finish([producer], TIMEOUT)
        q.close()
        q.join_thread()
    return n_items / max(elapsed, 1e-9)


def _get(q):
    try:
        return q.get(timeout=TIMEOUT)
    except queue.Empty:
        raise TimeoutError(f"no item from the producer within {TIMEOUT} s") from None
