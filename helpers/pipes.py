"""Workers and measurements for lecture 02, ``Pipe`` (管道).

Everything that runs in a child process lives here, not in a notebook cell, so
that it works under spawn and forkserver (the child imports it by name).

Every wait on another process is bounded: a receive is preceded by
``poll(timeout)``, a join has a timeout, and a child that does not finish in
time is reported, then stopped, instead of hanging the caller.
"""

from __future__ import annotations

import queue

# The same measurement through a Queue, for the Pipe-vs-Queue comparison (lecture 01's).
from helpers.queue_bench import measure_queue_throughput as measure_queue_throughput
from helpers.startmethod import context
from helpers.timing import now

# Upper bound, in seconds, for any single wait on another process in this module.
WAIT = 60.0


def echo_upper(conn) -> None:
    """Child side of the duplex demo: receive strings on ``conn`` and send each
    one back upper-cased **on the same end**, until ``None`` arrives.

    One end does both jobs, receiving and sending: ``Pipe()`` is duplex.
    """
    while conn.poll(WAIT):
        text = conn.recv()
        if text is None:
            break
        conn.send(text.upper())
    conn.close()


def read_until_eof(recv_end, report, send_end_to_close=None) -> None:
    """Child side of the EOFError demo: count messages until ``recv()`` raises EOFError.

    ``recv()`` raises EOFError only once *every* copy of the sending end, in every
    process, is closed. Pass ``send_end_to_close`` to make this child close its
    own (inherited) copy first; without that, under fork, the child keeps the
    pipe open itself and waits forever. The count goes back through ``report``.
    """
    if send_end_to_close is not None:
        send_end_to_close.close()
    count = 0
    while True:
        try:
            recv_end.recv()
        except EOFError:
            break
        count += 1
    report.send(count)
    report.close()


def _send_payloads(conn, msg_bytes: int, n_msgs: int, ready) -> None:
    """Child side of the Pipe throughput measurement."""
    payload = b"x" * msg_bytes
    ready.wait(WAIT)  # start together with the parent's clock
    for _ in range(n_msgs):
        conn.send(payload)
    conn.close()


def _check_args(msg_bytes: int, n_msgs: int) -> None:
    if msg_bytes < 0 or n_msgs < 1:
        raise ValueError("need msg_bytes >= 0 and n_msgs >= 1")


def _finish(proc, what: str) -> None:
    proc.join(WAIT)
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
        raise TimeoutError(f"{what}: the child did not exit within {WAIT:.0f} s")


def measure_pipe_throughput(msg_bytes: int, n_msgs: int, ctx=None, *, duplex: bool = True) -> float:
    """Messages per second sent by one child to the parent through ``ctx.Pipe()``.

    Each message is a ``bytes`` object of ``msg_bytes`` bytes, sent with
    ``send()`` (pickled, like a Queue item). The clock starts when the parent
    releases the already-started child and stops when the parent has received
    the last message, so process start-up is not counted.

    ``duplex=False`` measures ``ctx.Pipe(duplex=False)`` instead. On POSIX the
    two are different kernel objects: a duplex Pipe is a Unix socket pair, a
    one-way Pipe an OS pipe (the same kind a ``Queue`` is built on).
    """
    _check_args(msg_bytes, n_msgs)
    ctx = ctx or context()
    if duplex:
        parent_end, child_end = ctx.Pipe()
    else:
        parent_end, child_end = ctx.Pipe(duplex=False)  # (receive end, send end)
    ready = ctx.Barrier(2)  # parent and child: the clock starts once the child is up
    proc = ctx.Process(target=_send_payloads, args=(child_end, msg_bytes, n_msgs, ready))
    proc.start()
    child_end.close()  # only the child sends; closing our copy lets EOF reach us
    try:
        ready.wait(WAIT)
        start = now()
        for i in range(n_msgs):
            if not parent_end.poll(WAIT):
                raise TimeoutError(f"message {i} of {n_msgs} did not arrive within {WAIT:.0f} s")
            parent_end.recv()
        elapsed = now() - start
    finally:
        parent_end.close()
        _finish(proc, "measure_pipe_throughput")
    return n_msgs / elapsed


# --- "a pipe is unsafe": two senders on the same end --------------------------------


def send_tagged(conn, tag: int, size: int, n_msgs: int, go) -> None:
    """Send ``n_msgs`` messages of ``size`` bytes, every byte equal to ``tag``.

    Two of these sharing *one* end of a pipe is the unsafe case: a large
    message is written in several pieces, and the pieces of two writers can
    interleave, so the reader gets garbage.
    """
    payload = bytes([tag]) * size
    go.wait(WAIT)  # a barrier: both senders start at the same moment
    try:
        for _ in range(n_msgs):
            conn.send_bytes(payload)
    except OSError:
        pass  # the reader gave up on the garbled stream and closed its end
    conn.close()


def put_tagged(q, tag: int, size: int, n_msgs: int, go) -> None:
    """The same as :func:`send_tagged`, onto a Queue (which locks around each write)."""
    payload = bytes([tag]) * size
    go.wait(WAIT)
    for _ in range(n_msgs):
        q.put(payload)


def is_intact(msg: bytes, size: int) -> bool:
    """A message from :func:`send_tagged` is intact if it has the right length and
    every byte carries the same tag."""
    return len(msg) == size and msg.count(msg[:1]) == size


def count_intact(conn, size: int, expected: int, counts) -> None:
    """Reader for the unsafe demo, run in a child so that the parent cannot hang.

    Reads until ``expected`` messages arrived, the pipe breaks, or nothing
    arrives for a while. ``counts`` is a shared ``Array('i', 3)``:
    ``[intact, corrupted, failed]``, updated after every message so the parent
    can read it even if this reader gets stuck and has to be stopped.
    """
    for _ in range(expected):
        try:
            if not conn.poll(5):
                break
            # maxlength: a garbled length header raises OSError instead of
            # making us wait for gigabytes that will never come
            msg = conn.recv_bytes(maxlength=size)
        except (OSError, EOFError):
            counts[2] = 1
            break
        counts[0 if is_intact(msg, size) else 1] += 1
    conn.close()


def two_senders_one_end(kind: str, size: int = 200_000, n_each: int = 20, ctx=None) -> dict:
    """Two child processes send tagged messages at the same time, either both
    on the *same end* of one ``Pipe`` (``kind="pipe"``) or onto one ``Queue``
    (``kind="queue"``). Returns ``{"sent", "intact", "corrupted", "reader_failed"}``.

    The Pipe result varies from run to run (it is a race); the Queue result is
    always every message intact.
    """
    ctx = ctx or context()
    go = ctx.Barrier(2)  # the two senders wait for each other, then send at once
    expected = 2 * n_each
    if kind == "pipe":
        reader_end, writer_end = ctx.Pipe()
        counts = ctx.Array("i", 3)
        reader = ctx.Process(target=count_intact, args=(reader_end, size, expected, counts))
        writers = [
            ctx.Process(target=send_tagged, args=(writer_end, tag, size, n_each, go))
            for tag in (1, 2)
        ]
        procs = [reader, *writers]
        for p in procs:
            p.start()
        reader_end.close()
        writer_end.close()
        reader.join(10)
        stuck = reader.is_alive()
        # A stuck reader (or a writer blocked on a full pipe nobody reads) is
        # stopped: terminating a process that uses a pipe may corrupt it, which
        # does not matter here because the pipe is thrown away.
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(5)
        intact, corrupted, failed = list(counts)
        return {
            "sent": expected,
            "intact": intact,
            "corrupted": corrupted,
            "reader_failed": bool(failed or stuck),
        }
    if kind == "queue":
        q = ctx.Queue()
        writers = [
            ctx.Process(target=put_tagged, args=(q, tag, size, n_each, go)) for tag in (1, 2)
        ]
        for p in writers:
            p.start()
        intact = corrupted = 0
        failed = False
        for _ in range(expected):
            try:
                msg = q.get(timeout=WAIT)
            except queue.Empty:
                failed = True
                break
            if is_intact(msg, size):
                intact += 1
            else:
                corrupted += 1
        for p in writers:
            _finish(p, "two_senders_one_end")
        q.close()
        q.join_thread()
        return {"sent": expected, "intact": intact, "corrupted": corrupted, "reader_failed": failed}
    raise ValueError(f"kind must be 'pipe' or 'queue', not {kind!r}")
