"""Sample submission (hw1, deadlocks): question 1 right; run_pipeline puts one SENTINEL
for several consumers and joins them without a timeout, so it hangs; question 3 not done."""

import os

SENTINEL = None  # means "no more items"; the parent puts one per consumer
TIMEOUT = 30  # seconds: the longest any single wait of yours may take


# ---- Question 1 ---------------------------------------------------------------
def producer(q, items):
    """Put every item of `items` on the queue `q`, in order. Do not put SENTINEL."""
    for item in items:
        q.put(item)


def consumer(q, results):
    """Take items from `q` until you take SENTINEL, then return. For every other
    item put the pair (item, os.getpid()) on the queue `results`."""
    while True:
        item = q.get()  # blocks until an item arrives: no polling
        if item is SENTINEL:
            return
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
    q.put(SENTINEL)  # mistake: one SENTINEL, however many consumers
    total = sum(len(batch) for batch in batches)
    pairs = [results.get(timeout=TIMEOUT) for _ in range(total)]
    for proc in consumers:
        proc.join()  # mistake: no timeout, so this waits forever
    return pairs


# ---- Question 3 ---------------------------------------------------------------
def joinable_producer(q, items):
    """Put every item of `items` on the JoinableQueue `q`, then wait (q.join())
    until every item put on `q` has been marked done."""
    # YOUR CODE HERE
    raise NotImplementedError()


def joinable_consumer(q, results):
    """Like `consumer`, for a JoinableQueue: call q.task_done() once for every
    q.get(), SENTINEL included, after handling the item."""
    # YOUR CODE HERE
    raise NotImplementedError()


def run_joinable(ctx, batches, n_consumers):
    """Like `run_pipeline`, with a `ctx.JoinableQueue()` for the items,
    `joinable_producer` processes, and `joinable_consumer` processes started
    with daemon=True. Stop the consumers with SENTINELs all the same, and join
    everything you started before returning."""
    # YOUR CODE HERE
    raise NotImplementedError()
