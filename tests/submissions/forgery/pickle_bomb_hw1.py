"""Forgery (hw1, pickle bomb): objects whose unpickling runs a command, sent where the
checker reads: the consumer puts one on the results queue (the checker's own queue in
question 1), run_pipeline and run_joinable down every connection their process can
write to (the driver's channel to the checker). The checker loads plain data only:
each is refused, unloaded, and the answer fails (deserves 0 of 10)."""

import gc
import os

SENTINEL = None
TIMEOUT = 30
TARGET = os.environ.get("HWCHECK_BOMB_TARGET", "/tmp/hwcheck-pickle-bomb-went-off")


class Bomb:
    def __reduce__(self):
        return (os.system, (f"touch {TARGET}",))


def _send_down_every_connection():
    from multiprocessing.connection import Connection

    for obj in gc.get_objects():
        if isinstance(obj, Connection) and not obj.closed and obj.writable:
            try:
                obj.send(Bomb())
            except Exception:  # noqa: BLE001
                pass


def producer(q, items):
    for item in items:
        q.put(item)


def consumer(q, results):
    results.put(Bomb())
    while True:
        item = q.get()
        if item is SENTINEL:
            return
        results.put((item, os.getpid()))


def run_pipeline(ctx, batches, n_consumers):
    _send_down_every_connection()
    return [(item, os.getpid()) for batch in batches for item in batch]


joinable_producer = producer
joinable_consumer = consumer
run_joinable = run_pipeline
