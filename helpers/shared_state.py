"""Workers and measurements for lecture 03, shared state (进程之间的共享内存).

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
from dataclasses import dataclass
from multiprocessing import shared_memory

from helpers.startmethod import context
from helpers.timing import now

# Upper bound, in seconds, for any single wait on another process in this module.
WAIT = 120.0


# --- recap: processes do not share memory -------------------------------------------


def append_and_report(numbers: list, item, report) -> None:
    """Append ``item`` to this process's copy of ``numbers``; send the copy back."""
    numbers.append(item)
    report.send(numbers)
    report.close()


def decrement_first(num) -> None:
    """The lecture notes' worker: ``num[0] -= 1`` on a Manager list proxy."""
    num[0] -= 1


# --- the race: read-modify-write through a proxy ------------------------------------


def decrement_many(num, n: int, start, lock=None, report=None) -> None:
    """``num[0] -= 1``, ``n`` times, optionally holding ``lock`` for each one.

    ``num[0] -= 1`` is two round trips to the manager (``__getitem__``, then
    ``__setitem__``); another process can write in between, and then one of the
    two decrements is lost. ``start`` is a Barrier: all workers begin together,
    so their loops really overlap. The loop's (start, end) times go to ``report``.
    """
    start.wait(WAIT)
    t0 = now()
    for _ in range(n):
        if lock is None:
            num[0] -= 1
        else:
            with lock:
                num[0] -= 1
    if report is not None:
        report.put((t0, now()))


@dataclass(frozen=True)
class RaceResult:
    expected: int
    final: int
    seconds: float  # from the first worker's start to the last worker's end

    @property
    def lost(self) -> int:
        """Decrements that were overwritten by another process's write."""
        return self.final - self.expected


def manager_race(manager, n_procs: int, n_each: int, use_lock: bool, ctx=None) -> RaceResult:
    """Start ``n_procs`` workers that each decrement a shared counter ``n_each`` times
    through proxies of ``manager``; return what the counter should be and what it is."""
    ctx = ctx or context()
    num = manager.list([0])
    lock = manager.Lock() if use_lock else None
    start = ctx.Barrier(n_procs)
    report = ctx.Queue()
    procs = [
        ctx.Process(target=decrement_many, args=(num, n_each, start, lock, report))
        for _ in range(n_procs)
    ]
    for p in procs:
        p.start()
    spans = [report.get(timeout=WAIT) for _ in procs]
    for p in procs:
        p.join(WAIT)
    report.close()
    report.join_thread()
    alive = [p for p in procs if p.is_alive()]
    if alive:
        raise TimeoutError(f"{len(alive)} worker(s) still running after {WAIT:.0f} s")
    seconds = max(e for _, e in spans) - min(s for s, _ in spans)
    return RaceResult(expected=-n_procs * n_each, final=num[0], seconds=seconds)


# --- multiprocessing.Value: its lock guards each get and each set, not "+=" ------------


def add_many_value(v, n: int, start, use_lock: bool) -> None:
    """``v.value += 1``, ``n`` times; with ``use_lock`` inside ``with v.get_lock():``."""
    start.wait(WAIT)
    for _ in range(n):
        if use_lock:
            with v.get_lock():
                v.value += 1
        else:
            v.value += 1  # a locked read, then a locked write: not one step


def value_race(n_procs: int, n_each: int, use_lock: bool, ctx=None) -> int:
    """Final value of a ``ctx.Value('q', 0)`` after ``n_procs`` workers each added 1
    ``n_each`` times (the right answer is ``n_procs * n_each``)."""
    ctx = ctx or context()
    v = ctx.Value("q", 0)
    start = ctx.Barrier(n_procs)
    procs = [
        ctx.Process(target=add_many_value, args=(v, n_each, start, use_lock))
        for _ in range(n_procs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(WAIT)
    if any(p.is_alive() for p in procs):
        for p in procs:
            p.terminate()
            p.join(5)
        raise TimeoutError(f"value_race workers still running after {WAIT:.0f} s")
    return v.value


def square_in_place(arr) -> None:
    """Square every item of a shared ``Array``, holding its lock for the whole loop."""
    with arr.get_lock():
        for i in range(len(arr)):
            arr[i] = arr[i] * arr[i]


# --- bank account preview (the homework builds on it) --------------------------------


def move_money(account, amount: int, times: int, start) -> None:
    """Change ``account["balance"]`` by ``amount``, ``times`` times, with no lock.

    Deliberately unsafe: read the balance, then write the new one. This is the
    starting point of homework 2, not its solution.
    """
    start.wait(WAIT)
    for _ in range(times):
        balance = account["balance"]
        account["balance"] = balance + amount


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
        proc.join(WAIT)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
