"""Forgery base (hw1): every function written, none right (deserves 0 of 10)."""

SENTINEL = None
TIMEOUT = 30


def producer(q, items):
    pass  # puts nothing


def consumer(q, results):
    return  # takes nothing


def run_pipeline(ctx, batches, n_consumers):
    return []


def joinable_producer(q, items):
    pass


def joinable_consumer(q, results):
    return


def run_joinable(ctx, batches, n_consumers):
    return []
