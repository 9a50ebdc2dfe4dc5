"""A multiprocessing context whose Queue's first get() times out just before the
messages arrive, as happens on a busy machine: for testing harnesses that stop
waiting once every child has exited."""

import operator
import queue
import time


class LateQueue:
    """Wraps a Queue: the first get() waits 1.5 s (the children send and exit
    meanwhile), then says Empty."""

    def __init__(self, q):
        self._q, self._late = q, True

    def get(self, timeout=None):
        if self._late:
            self._late = False
            time.sleep(1.5)
            raise queue.Empty
        return self._q.get(timeout=timeout)

    def __getattr__(self, name):
        return getattr(self._q, name)

    def __reduce__(self):  # a child gets the plain queue
        return operator.itemgetter(0), ((self._q,),)


class LateContext:
    def __init__(self, ctx):
        self._ctx = ctx

    def Queue(self):  # noqa: N802 - mirrors the multiprocessing API
        return LateQueue(self._ctx.Queue())

    def __getattr__(self, name):
        return getattr(self._ctx, name)
