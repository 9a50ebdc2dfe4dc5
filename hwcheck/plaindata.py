"""Reading what a student's process sent, without running any of it.

``multiprocessing`` queues and connections unpickle what they receive, and a pickle
can name any function to call while it loads (``__reduce__``): a student's process
that puts a crafted object on a queue the checker reads would run code in the
checker. So everything the checker reads from a channel a student's process can
write to is loaded by :func:`loads`, which builds plain data only (None, bool, int,
float, str, bytes, tuple, list, dict, set): it refuses every class and function a
pickle names, before calling anything.

:class:`PlainQueue` is a ``multiprocessing`` queue whose ``get()`` does that;
:func:`recv_plain` reads one message from a ``Connection`` the same way.
"""

from __future__ import annotations

import io
import pickle
import queue
import time
from multiprocessing import queues

MAX_MESSAGE = 16 << 20  # bytes: no honest message of a check comes near this
NOTHING = object()  # recv_plain: no message within the time given


class NotPlainData(pickle.UnpicklingError):
    """What a student's process sent is not plain data (it names a class or function)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what

    def __str__(self) -> str:
        return f"not plain data ({self.what})"

    def words(self, where: str) -> str:
        return (f"{where} received something that is {self}; it was refused, not loaded. "
                "Send only numbers, strings, bytes, tuples, lists and dicts.")


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):  # every class and function a pickle names
        raise NotPlainData(f"it would have loaded {module}.{name}")

    def persistent_load(self, pid):
        raise NotPlainData("it holds a persistent id")


def loads(data) -> object:
    """The plain data in the pickle ``data``; :class:`NotPlainData` for anything else."""
    try:
        return _PlainUnpickler(io.BytesIO(bytes(data))).load()
    except NotPlainData:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated or malformed: not data either
        raise NotPlainData(f"unreadable: {type(exc).__name__}") from None


def recv_plain(conn, timeout: float):
    """One message from the ``multiprocessing`` Connection ``conn`` within ``timeout``
    seconds, loaded by :func:`loads`; :data:`NOTHING` if none came. EOFError once the
    other end is closed."""
    if not conn.poll(max(0.0, timeout)):
        return NOTHING
    try:
        data = conn.recv_bytes(MAX_MESSAGE)
    except OSError as exc:  # longer than MAX_MESSAGE: the connection is unusable now
        raise NotPlainData(f"unreadable: {exc}") from None
    return loads(data)


class PlainQueue(queues.Queue):
    """A ``multiprocessing`` queue whose ``get()`` loads plain data only (``put`` is the
    usual one). Create it with ``PlainQueue(ctx=ctx)``; children receive it like any
    queue. :class:`NotPlainData` from ``get()`` when an item is not plain data."""

    def __init__(self, maxsize: int = 0, *, ctx):
        super().__init__(maxsize, ctx=ctx)

    def get(self, block=True, timeout=None):
        # multiprocessing.queues.Queue.get, with loads() instead of pickle.loads
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        if block and timeout is None:
            with self._rlock:
                res = self._recv_bounded()
            self._sem.release()
            return loads(res)
        deadline = time.monotonic() + (timeout or 0.0)
        if not self._rlock.acquire(block, timeout):
            raise queue.Empty
        try:
            if not self._poll(max(0.0, deadline - time.monotonic()) if block else 0.0):
                raise queue.Empty
            res = self._recv_bounded()
            self._sem.release()
        finally:
            self._rlock.release()
        return loads(res)

    def _recv_bounded(self) -> bytes:
        try:
            return self._reader.recv_bytes(MAX_MESSAGE)
        except OSError as exc:  # a length no put() wrote: bytes written into the pipe
            raise NotPlainData(f"unreadable: {exc}") from None
