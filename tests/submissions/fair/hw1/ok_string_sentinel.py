"""Fairness sample (hw1): correct; SENTINEL = "STOP", consumer loops over iter(q.get, SENTINEL)."""

import os

SENTINEL = "STOP"  # a string: compared with ==, since a copy arrives
TIMEOUT = 30  # seconds: the longest any single wait of yours may take


# ---- Question 1 ---------------------------------------------------------------
def producer(q, items):
    """Put every item of `items` on the queue `q`, in order. Do not put SENTINEL."""
    for item in items:
        q.put(item)


def consumer(q, results):
    """Take items from `q` until you take SENTINEL, then return. For every other
    item put the pair (item, os.getpid()) on the queue `results`."""
    for item in iter(q.get, SENTINEL):  # iter() stops at the first item == SENTINEL
        results.put((item, os.getpid()))


# ---- Question 2 ---------------------------------------------------------------
def run_pipeline(ctx, batches, n_consumers):
    """Start one `producer` process per batch in `batches` and `n_consumers`
    `consumer` processes, all made with `ctx.Process`; return the list of all
    (item, pid) pairs the consumers reported. When it returns, every process it
    started has ended. Every wait has a timeout."""
    q, results = ctx.Queue(), ctx.Queue()
    consumers = [ctx.Process(target=consumer, args=(q, results)) for _ in range(n_consumers)]
    producers = [ctx.Process(target=producer, args=(q, batch)) for batch in batches]
    for proc in consumers + producers:
        proc.start()
    for proc in producers:
        proc.join(TIMEOUT)
    for _ in consumers:  # one SENTINEL per consumer, after every producer has finished
        q.put(SENTINEL)
    total = sum(len(batch) for batch in batches)
    pairs = [results.get(timeout=TIMEOUT) for _ in range(total)]  # read results first,
    for proc in consumers:  # then join the consumers
        proc.join(TIMEOUT)
    return pairs


# ---- Question 3 ---------------------------------------------------------------
def joinable_producer(q, items):
    """Put every item of `items` on the JoinableQueue `q`, then wait (q.join())
    until every item put on `q` has been marked done."""
    for item in items:
        q.put(item)
    q.join()


def joinable_consumer(q, results):
    """Like `consumer`, for a JoinableQueue: call q.task_done() once for every
    q.get(), SENTINEL included, after handling the item."""
    while True:
        item = q.get()
        try:
            if item == SENTINEL:
                return
            results.put((item, os.getpid()))
        finally:
            q.task_done()


def run_joinable(ctx, batches, n_consumers):
    """Like `run_pipeline`, with a `ctx.JoinableQueue()` for the items,
    `joinable_producer` processes, and `joinable_consumer` processes started
    with daemon=True. Stop the consumers with SENTINELs all the same, and join
    everything you started before returning."""
    q, results = ctx.JoinableQueue(), ctx.Queue()
    consumers = [
        ctx.Process(target=joinable_consumer, args=(q, results), daemon=True)
        for _ in range(n_consumers)
    ]
    producers = [ctx.Process(target=joinable_producer, args=(q, batch)) for batch in batches]
    for proc in consumers + producers:
        proc.start()
    total = sum(len(batch) for batch in batches)
    pairs = [results.get(timeout=TIMEOUT) for _ in range(total)]
    for proc in producers:  # each returns once every item is done
        proc.join(TIMEOUT)
    for _ in consumers:
        q.put(SENTINEL)
    for proc in consumers:
        proc.join(TIMEOUT)
    return pairs
