"""Lecture 02's "a pipe is unsafe" (管道是不安全的) demonstration: two senders on
one end of a pipe, on one pipe each, and on one ``Queue``, with every message
accounted for.

:func:`two_senders` runs one way and returns a :class:`SharingResult`;
:func:`accounting_table` puts several runs side by side. The senders
(:func:`send_tagged`) and the reader (:func:`count_messages`) run in child
processes and so live in an importable module (spawn and forkserver children
import their target by name).

Every wait on another process is bounded: the reader waits at most 5 s for the
next message, a join has a timeout, and a child that does not finish in time is
reported, then stopped, instead of hanging the caller.
"""

from __future__ import annotations

import queue
import textwrap
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for_any

from courselib.procs import finish
from courselib.startmethod import context

# Upper bound, in seconds, for any single wait on another process in this module.
WAIT = 60.0

SHARED_END, PIPE_EACH, QUEUE = "shared end", "pipe each", "queue"
HOW = {
    SHARED_END: "one end shared by both",
    PIPE_EACH: "one pipe for each sender",
    QUEUE: "one Queue shared by both",
}
_READER_STOPS = {
    0: "it read every message",
    1: ("the 4 bytes it read as the next message's length were message data (they announced "
        "more bytes than any message has): the boundaries between messages are lost, so "
        "nothing after that point can be read as a message"),
    2: "every pipe was closed before every message came (EOFError)",
    3: "nothing arrived for 5 s",
    4: "it was still reading at the time limit, and was stopped",
}
_FINISHED, _BROKEN_PIPE, _OTHER_OSERROR = 1, 2, 3  # how a sender ended (0: it had not ended)
_STARTED = 4  # progress slot: how many senders are about to send


def send_tagged(dest, tag: int, size: int, n_msgs: int, go, progress) -> None:
    """Sender: ``n_msgs`` messages of ``size`` bytes, every byte equal to ``tag``
    (1 or 2), onto ``dest``: a pipe end (``send_bytes``) or a Queue (``put``).

    ``progress`` is a shared ``Array('i', 5)``: slot ``tag - 1`` counts the sends
    that returned, slot ``tag + 1`` says how this sender ended, slot 4 counts the
    senders that are about to send (the reader waits for both)."""
    send = dest.put if hasattr(dest, "put") else dest.send_bytes
    payload = bytes([tag]) * size
    go.wait(WAIT)  # a barrier: both senders start at the same moment
    with progress.get_lock():
        progress[_STARTED] += 1
    try:
        for _ in range(n_msgs):
            send(payload)
            progress[tag - 1] += 1
    except BrokenPipeError:  # the reader closed its end (it gave up) and nobody else reads
        progress[tag + 1] = _BROKEN_PIPE
        return
    except OSError:
        progress[tag + 1] = _OTHER_OSERROR
        return
    if hasattr(dest, "close"):
        dest.close()
    progress[tag + 1] = _FINISHED


def is_intact(msg: bytes, size: int) -> bool:
    """A message from :func:`send_tagged` is intact if it has the right length and
    every byte carries the same tag."""
    return len(msg) == size and msg.count(msg[:1]) == size


def _receive(sources, size: int):
    """Next message from any of ``sources`` (pipe ends or one Queue): bytes, or an int
    reason to stop (see ``_READER_STOPS``). A pipe that reaches its end of file is
    taken out of ``sources``."""
    if hasattr(sources[0], "get"):
        try:
            return sources[0].get(timeout=5)
        except queue.Empty:
            return 3
    while sources:
        ready = wait_for_any(sources, timeout=5)
        if not ready:
            return 3
        try:
            # maxlength: a garbled length header raises OSError instead of making the
            # reader wait for gigabytes that will never come
            return ready[0].recv_bytes(maxlength=size)
        except EOFError:  # this sender is done and closed its end; read the others
            sources.remove(ready[0])
        except OSError:
            return 1
    return 2


def _raw_copy(sources):
    """A duplicate file descriptor of the one pipe end in ``sources``, to read the bytes
    left in the pipe after the message boundaries are lost; None where that is not
    possible (a Queue, several pipes, or Windows, whose pipe ends are not descriptors)."""
    import os
    from multiprocessing.connection import Connection

    if len(sources) != 1 or not isinstance(sources[0], Connection) or not hasattr(os, "dup"):
        return None
    return os.dup(sources[0].fileno())


def _drain(fd: int, counts, progress) -> None:
    """Read everything left in the pipe as plain bytes (counted in ``counts[8]``) until
    end of file, or until both senders have ended and nothing came for 0.2 s."""
    import os
    import select
    import time

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break  # end of file: every copy of the sending end is closed
            counts[8] += len(chunk)
        elif progress[2] and progress[3]:
            break  # both senders have ended, and the pipe is empty


def count_messages(sources, size: int, expected: int, counts, progress) -> None:
    """Reader, run in a child so that the parent cannot hang.

    Once both senders are about to send, waits a moment so that both are in the
    middle of sending before it reads (this makes the race show every time), then
    reads until ``expected`` messages came or it cannot go on. If it stops because
    the message boundaries are lost, it reads the rest of the pipe as plain bytes,
    so the senders can finish and every byte is accounted for.

    ``counts`` is a shared ``Array('q', 9)``: ``[intact, garbled, why it stopped
    (a key of _READER_STOPS), the first garbled message's bytes from sender 1, from
    sender 2 and other bytes, bytes taken out of the pipe in messages (4-byte length
    included), bytes taken as a bad length, bytes read after that]``, updated as it
    goes so the parent can read it even if this reader has to be stopped."""
    import os
    import time

    deadline = time.monotonic() + WAIT
    while progress[_STARTED] < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # both senders are now writing, or blocked on the full pipe
    raw = _raw_copy(sources)
    stop, open_sources = 0, list(sources)
    for _ in range(expected):
        msg = _receive(open_sources, size)
        if isinstance(msg, int):
            stop = msg
            break
        counts[6] += len(msg) + 4  # its 4-byte length, then its bytes
        if is_intact(msg, size):
            counts[0] += 1
            continue
        if counts[1] == 0:
            ones, twos = msg.count(1), msg.count(2)
            counts[3], counts[4], counts[5] = ones, twos, len(msg) - ones - twos
        counts[1] += 1
    counts[2] = stop
    if stop == 1:
        counts[7] = 4  # recv_bytes read the 4-byte length, found it too large, and gave up
    for s in sources:
        s.close()  # (recv_bytes closes a connection whose length was bad: no harm done)
    if raw is not None:
        if stop == 1:
            _drain(raw, counts, progress)
        os.close(raw)


@dataclass(frozen=True)
class SharingResult:
    """What happened to every message of one :func:`two_senders` run."""

    how: str  # SHARED_END, PIPE_EACH or QUEUE
    n_each: int  # messages each of the two senders tried to send
    size: int  # bytes per message
    intact: int  # received with the right length, all bytes from one sender
    garbled: int  # received, but the wrong length or bytes of both senders mixed
    reader_stop: int  # why the reader stopped, a key of _READER_STOPS
    first_garbled: tuple[int, int, int]  # its bytes from sender 1, from sender 2, other
    sends_done: tuple[int, int]  # send() / put() calls that returned, per sender
    sender_ends: tuple[str, str]  # how each sender ended, in words
    bytes_read: tuple[int, int, int] = (0, 0, 0)  # in messages, as a bad length, after that

    @property
    def tried(self) -> int:
        """Messages the two senders set out to send."""
        return 2 * self.n_each

    @property
    def not_received(self) -> int:
        """Messages the reader never got as a message of their own: their bytes are
        inside a garbled message, or still unread in the pipe, or were never sent."""
        return self.tried - self.intact - self.garbled

    @property
    def all_intact(self) -> bool:
        return self.intact == self.tried

    def details(self) -> str:
        """The reader's and the senders' side of the run, in words."""
        why = f"the reader stopped because {_READER_STOPS[self.reader_stop]}"
        lines = [f"{HOW[self.how]}:", textwrap.fill(why, 96, initial_indent="  ",
                                                     subsequent_indent="    ")]
        if self.garbled:
            ones, twos, other = self.first_garbled
            lines.append(f"  the first garbled message: {ones + twos + other:,} bytes = {ones:,} from "
                         f"sender 1 + {twos:,} from sender 2 + {other:,} other bytes")
        in_msgs, bad, after = self.bytes_read
        if after:
            lines.append(f"  after that it read the rest of the pipe as plain bytes: {after:,} bytes "
                         "it could not split into messages")
        if self.how == SHARED_END and self.reader_stop == 1:
            written = sum(self.sends_done) * (self.size + 4)
            taken = in_msgs + bad + after
            balance = ("every byte written came out of the pipe" if taken == written
                       else f"{written - taken:,} bytes not taken out")
            lines.append(textwrap.fill(
                f"bytes: the senders wrote {written:,} ({sum(self.sends_done)} sends of a 4-byte "
                f"length + {self.size:,}); the reader took out {in_msgs:,} in messages + {bad} as "
                f"the bad length + {after:,} it could not split = {taken:,}: {balance}",
                96, initial_indent="  ", subsequent_indent="    "))
        for tag, (done, end) in enumerate(zip(self.sends_done, self.sender_ends, strict=True), start=1):
            said = f"sender {tag}: {done} of {self.n_each} sends returned; {end}"
            lines.append(textwrap.fill(said, 96, initial_indent="  ", subsequent_indent="    "))
        return "\n".join(lines)


def accounting_table(results: list[SharingResult]) -> str:
    """Every message of each run, accounted for: tried = intact + garbled + not received."""
    head = f"{'':26}{'tried':>6}{'intact':>8}{'garbled':>9}{'not received':>14}"
    rows = [head]
    for r in results:
        rows.append(f"{HOW[r.how]:26}{r.tried:>6}{r.intact:>8}{r.garbled:>9}{r.not_received:>14}")
    return "\n".join(rows)


def _sender_end(code: int, stopped: bool) -> str:
    if code == _FINISHED:
        return "it sent everything and ended"
    if code == _BROKEN_PIPE:
        return "then its send raised BrokenPipeError: the reader had closed its end"
    if code == _OTHER_OSERROR:
        return "then its send raised an OSError"
    if stopped:
        return ("then it was stuck in send() (the pipe was full and nobody read it any more) "
                "and was stopped")
    return "it ended without finishing"


def two_senders(how: str, size: int = 200_000, n_each: int = 20, ctx=None) -> SharingResult:
    """Two child processes send ``n_each`` tagged messages each at the same moment,
    and a third child reads them:

    * ``SHARED_END``: both send on the *same* end of one ``Pipe(duplex=False)``
      (the kind of pipe a Queue is built on);
    * ``PIPE_EACH``: each sender has a pipe of its own; the reader waits on both;
    * ``QUEUE``: both put onto one ``Queue`` (which holds a lock around each write).

    The shared end is a race; the reader waits until both senders are sending
    before it reads, so that the race shows every time. Once the message
    boundaries are lost, the reader reads the rest of the pipe as plain bytes
    (where a pipe end is a file descriptor: Linux, macOS), so the senders finish
    and every byte written is accounted for in ``bytes_read``.
    """
    if how not in HOW:
        raise ValueError(f"how must be one of {', '.join(map(repr, HOW))}, not {how!r}")
    ctx = ctx or context()
    go = ctx.Barrier(2)  # the two senders wait for each other, then send at once
    counts, progress = ctx.Array("q", 9), ctx.Array("i", 5)
    to_close = []  # the parent's copies of the pipe ends
    if how == SHARED_END:
        receive_end, send_end = ctx.Pipe(duplex=False)
        sources, dests, to_close = [receive_end], [send_end, send_end], [receive_end, send_end]
    elif how == PIPE_EACH:
        pipes = [ctx.Pipe(duplex=False) for _ in range(2)]
        sources, dests = [r for r, _ in pipes], [s for _, s in pipes]
        to_close = sources + dests
    else:
        q = ctx.Queue()
        sources, dests = [q], [q, q]
    reader = ctx.Process(target=count_messages,
                         args=(sources, size, 2 * n_each, counts, progress))
    senders = [ctx.Process(target=send_tagged, args=(dest, tag, size, n_each, go, progress))
               for tag, dest in enumerate(dests, start=1)]
    for p in (reader, *senders):
        p.start()
    for conn in to_close:
        conn.close()  # the children have their ends now
    reader.join(WAIT)
    stuck = reader.is_alive()
    # Stop what is stuck (a sender still running 2 s after the reader ended, a reader
    # still reading): terminating a process that uses a pipe may corrupt it, which
    # does not matter here because the pipe is thrown away.
    stuck_senders = finish(senders, 2.0)
    stopped = [p in stuck_senders for p in senders]
    finish([reader], 0)
    if how == QUEUE:
        q.close()
        q.join_thread()
    return SharingResult(
        how=how,
        n_each=n_each,
        size=size,
        intact=counts[0],
        garbled=counts[1],
        reader_stop=4 if stuck else counts[2],
        first_garbled=(counts[3], counts[4], counts[5]),
        sends_done=(progress[0], progress[1]),
        sender_ends=tuple(_sender_end(progress[2 + i], stopped[i]) for i in range(2)),
        bytes_read=(counts[6], counts[7], counts[8]),
    )
