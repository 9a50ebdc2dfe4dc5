"""Measurements for lecture 03, shared state (进程之间的共享内存).

The workers the lecture teaches are on its page (``%%writefile`` cells); this
module runs them (``manager_race``, ``value_race``) and measures the three kinds
of shared counter (``measure_ops_per_second``). The exercise's self-check is in
:mod:`helpers.exercises.shared_state`.

Three ways for processes to share a number, from slowest to fastest:

* a ``Manager()`` proxy: every operation is a message to the manager's server
  process and back (a round trip);
* ``multiprocessing.Value`` / ``Array``: a C value in shared memory, with a lock;
* ``multiprocessing.shared_memory.SharedMemory``: raw shared bytes, no lock at all.

Every wait on another process is bounded (``WAIT`` seconds), and everything
that is started here is also shut down, closed or unlinked here.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass
from multiprocessing import shared_memory

from courselib.procs import finish, get_or_none
from courselib.startmethod import context
from helpers.timing import now

# Upper bound, in seconds, for any single wait on another process in this module.
WAIT = 120.0


# --- running the lecture's workers: they live in the notebook, not here --------------
#
# Lecture 03 writes its workers with ``%%writefile`` (``counter_workers.py``,
# ``value_workers.py``), so a student can edit them. The machinery below takes
# a worker as a parameter and only adds what the lesson is not about: a Barrier
# so the workers start together, timing, bounded waits, and a clear error when
# a worker raises or dies.


class WorkerFailed(RuntimeError):
    """A worker raised, or its process ended without reporting back."""


def _timed(worker, start, report, args) -> None:
    """In the child: wait for the others, run ``worker(*args)``, report its span or its error."""
    try:
        try:
            start.wait(WAIT)
        except threading.BrokenBarrierError:  # another worker failed: its report says why
            report.put(("aborted", None, None))
            return
        t0 = now()
        worker(*args)
        report.put(("done", t0, now()))
    except BaseException as exc:  # sent to the parent, which raises it as WorkerFailed
        report.put(("error", f"{type(exc).__name__}: {exc}", None))
        start.abort()  # the others must not wait at the barrier for a worker that failed
        raise


def _run_workers(worker, args: tuple, n_procs: int, ctx) -> float:
    """Start ``n_procs`` children running ``worker(*args)`` together (after a Barrier);
    return the seconds from the first worker's start to the last worker's end."""
    start = ctx.Barrier(n_procs)
    report = ctx.Queue()
    procs = [ctx.Process(target=_timed, args=(worker, start, report, args)) for _ in range(n_procs)]
    for p in procs:
        p.start()
    spans, problem, aborted = [], None, 0
    deadline = time.monotonic() + WAIT

    def none_failed() -> bool:
        return all(p.exitcode in (None, 0) for p in procs)

    try:
        while len(spans) < n_procs and problem is None:
            # once a worker has died, its last words get one more second to arrive
            message = get_or_none(report, deadline, none_failed, last_look=1.0)
            if message is None:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:  # died before reporting (e.g. could not import the worker)
                    problem = (
                        f"a worker process ended with exit code {dead[0].exitcode} "
                        "before running the worker (is its module written and importable?)"
                    )
                else:
                    problem = f"no result from {n_procs - len(spans)} worker(s) within {WAIT:.0f} s"
                break
            kind, a, b = message
            if kind == "error":
                problem = f"{getattr(worker, '__name__', worker)} raised {a}"
            elif kind == "aborted":  # reports can arrive in any order: keep reading for the cause
                aborted += 1
                if aborted + len(spans) >= n_procs:
                    problem = "the workers never all reached the start line together"
            else:
                spans.append((a, b))
    finally:
        if problem is not None:
            start.abort()
        finish(procs, WAIT if problem is None else 5)
        report.close()
        report.join_thread()
    if problem is not None:
        raise WorkerFailed(problem)
    return max(e for _, e in spans) - min(s for s, _ in spans)


# --- the race: read-modify-write through a Manager proxy ----------------------------


@dataclass(frozen=True)
class RaceResult:
    expected: int
    final: int
    seconds: float  # from the first worker's start to the last worker's end

    @property
    def lost(self) -> int:
        """Updates that were overwritten by another process's write."""
        return abs(self.expected - self.final)

    @property
    def lost_percent(self) -> float:
        """Lost updates as a share of all updates made, in percent."""
        return 100 * self.lost / abs(self.expected)


def manager_race(manager, worker, n_procs: int, n_each: int, *, lock: bool = False, ctx=None) -> RaceResult:
    """Run ``worker(num, n_each)`` in ``n_procs`` processes at once, where ``num`` is a
    ``manager.list([0])`` proxy; with ``lock=True`` call ``worker(num, n_each, lock)``
    with one ``manager.Lock()`` shared by all of them.

    The workers decrement ``num[0]``; the result says what it should end at
    (``-n_procs * n_each``), what it ends at, and how long the workers ran."""
    ctx = ctx or context()
    num = manager.list([0])
    args = (num, n_each, manager.Lock()) if lock else (num, n_each)
    seconds = _run_workers(worker, args, n_procs, ctx)
    return RaceResult(expected=-n_procs * n_each, final=num[0], seconds=seconds)


# --- multiprocessing.Value: its lock guards each get and each set, not "+=" ------------


def value_race(worker, n_procs: int, n_each: int, ctx=None) -> RaceResult:
    """Run ``worker(v, n_each)`` in ``n_procs`` processes at once, where ``v`` is a
    ``ctx.Value('q', 0)``; the workers add 1 to ``v.value`` ``n_each`` times each."""
    ctx = ctx or context()
    v = ctx.Value("q", 0)
    seconds = _run_workers(worker, (v, n_each), n_procs, ctx)
    return RaceResult(expected=n_procs * n_each, final=v.value, seconds=seconds)


# --- operations per second: Manager vs Value vs shared_memory ------------------------

KINDS = ("manager", "value", "shared_memory")


def _ops_manager(value, lock, n_ops: int, report) -> None:
    t0 = now()
    for _ in range(n_ops):
        with lock:  # acquire + get + set + release: four round trips
            value.value += 1
    report.send(now() - t0)
    report.close()


def _ops_value(value, n_ops: int, report) -> None:
    t0 = now()
    for _ in range(n_ops):
        with value.get_lock():
            value.value += 1
    report.send(now() - t0)
    report.close()


def _ops_shared_memory(shm, lock, n_ops: int, report) -> None:
    counter = shm.buf.cast("q")  # the segment's first 8 bytes as one signed 64-bit int
    try:
        t0 = now()
        for _ in range(n_ops):
            with lock:
                counter[0] += 1
        elapsed = now() - t0
    finally:
        counter.release()  # a view still open would make close() fail
        shm.close()
    report.send(elapsed)
    report.close()


def measure_ops_per_second(kind: str, n_ops: int, ctx=None) -> float:
    """Increment operations per second done by one child process on a shared counter.

    One "op" is one correctly synchronised increment of a shared 64-bit integer,
    written the way it must be written once several processes share it:

    * ``"manager"``: ``with lock: value.value += 1`` with ``manager.Value`` and
      ``manager.Lock`` proxies (four round trips to the manager's server process);
    * ``"value"``: ``with v.get_lock(): v.value += 1`` on ``ctx.Value('q')``;
    * ``"shared_memory"``: ``with lock: counter[0] += 1`` on a ``SharedMemory``
      segment viewed as an int, with a ``ctx.Lock()``.

    Only the child's loop is timed (start-up excluded). The final counter is
    checked to equal ``n_ops``. The manager is shut down and the segment
    closed and unlinked before returning.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if n_ops < 1:
        raise ValueError("n_ops must be at least 1")
    ctx = ctx or context()
    result, report = ctx.Pipe(duplex=False)
    if kind == "manager":
        with ctx.Manager() as m:
            value, lock = m.Value("q", 0), m.Lock()
            elapsed = _run(ctx, _ops_manager, (value, lock, n_ops, report), result, report)
            final = value.value
    elif kind == "value":
        value = ctx.Value("q", 0)
        elapsed = _run(ctx, _ops_value, (value, n_ops, report), result, report)
        final = value.value
    else:
        # A new segment is all zero bytes. The parent holds no memoryview on it
        # while the child runs: under fork the child would inherit that view, and
        # an open view makes the child's shm.close() fail.
        shm = shared_memory.SharedMemory(create=True, size=8)
        try:
            args = (shm, ctx.Lock(), n_ops, report)
            elapsed = _run(ctx, _ops_shared_memory, args, result, report)
            (final,) = struct.unpack_from("q", shm.buf)
        finally:
            shm.close()
            shm.unlink()
    if final != n_ops:
        raise RuntimeError(f"{kind}: counter is {final} after {n_ops} increments")
    return n_ops / elapsed


def _run(ctx, target, args, result, report) -> float:
    """Run ``target(*args)`` in a child; return the seconds it sends back."""
    proc = ctx.Process(target=target, args=args)
    proc.start()
    report.close()  # our copy of the child's sending end
    try:
        if not result.poll(WAIT):
            raise TimeoutError(f"{target.__name__} sent no result within {WAIT:.0f} s")
        return result.recv()
    finally:
        result.close()
        finish([proc], WAIT)
