"""The driver's side of the checks (a child process running the student's code,
:func:`hwcheck.child.drive`): the recording multiprocessing context the student's code
receives, what the driver knows about the task in progress (:class:`State`, read by
its timer, and what it says when time is up), the student's exceptions in words, and
the tools the hw1/hw2 tasks share: the SENTINEL counter, the batches producers send.

What a driver finds only ever adds problems: the checker decides from what it saw
itself (:mod:`hwcheck.driving`). Objects here (``SlowItems``, the recorded processes)
are pickled by reference into child processes: parent and children import them from
this module.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable


class RecordingContext:
    """A multiprocessing context that remembers every Process created through it,
    so a check can tell which processes the student started and whether they ended."""

    def __init__(self, ctx):
        self._ctx = ctx
        self.processes = []

    def Process(self, *args, **kwargs):  # noqa: N802 - mirrors the multiprocessing API
        proc = self._ctx.Process(*args, **kwargs)
        # start() deletes _target and _args from the parent's object: keep them
        target = kwargs.get("target", args[1] if len(args) > 1 else None)
        proc._hw_role = getattr(target, "__name__", "process")
        proc._hw_args = tuple(kwargs.get("args", args[3] if len(args) > 3 else ()))
        proc._hw_peers_at_start = None
        self.processes.append(proc)
        real_start = proc.start

        def start():
            # how many processes of the same role were running when this one started
            del proc.start  # the instance attribute must go before spawn pickles proc
            proc._hw_peers_at_start = sum(
                1 for p in self.processes
                if p is not proc and role(p) == role(proc) and p.pid is not None and p.is_alive()
            )
            real_start()

        proc.start = start
        return proc

    def __getattr__(self, name):
        return getattr(self._ctx, name)


def role(proc) -> str:
    return getattr(proc, "_hw_role", "process")


def describe(procs) -> str:
    return ", ".join(f"{role(p)} (pid {p.pid})" for p in procs) or "none"


class State:
    """What the driver knows about the task in progress (read by its timer)."""

    def __init__(self, ctx: RecordingContext | None, module, timeout: float):
        self.ctx = ctx
        self.module = module
        self.timeout = timeout
        self.stage = "starting"
        self.facts: dict = {}
        self.sentinel_puts: list[dict] = []  # one entry per SENTINEL the parent put
        # what the timer adds when time is up: words, or a function of this state
        # returning them (hw1's pipeline reasons from what it saw)
        self.timeout_hint: str | Callable[[State, str], list[str]] = ""

    @property
    def processes(self) -> list:
        return self.ctx.processes if self.ctx is not None else []

    def stuck_at(self, thread_id: int) -> str:
        """The student's source line the main thread is blocked on."""
        frame = sys._current_frames().get(thread_id)
        name = getattr(self.module, "__name__", None)
        where = ""
        for fs in traceback.extract_stack(frame) if frame and name else []:
            if Path(fs.filename).stem == name:
                where = f"line {fs.lineno} of {Path(fs.filename).name}: `{(fs.line or '').strip()}`"
        return where


class Sender:
    """Sends the driver's one message to the checker: whoever (the task or the timer)
    comes first; plain data only (the checker loads nothing else)."""

    def __init__(self, conn):
        self._conn = conn
        self._lock = threading.Lock()
        self._sent = False

    def __call__(self, message: dict) -> bool:
        with self._lock:
            if self._sent:
                return False
            self._sent = True
            try:
                self._conn.send(message)
            except (OSError, ValueError):
                return False
            return True


def plain(value):
    """``value`` if it is plain data the checker can load, else its repr (a student's
    object is never sent as it is)."""
    if value is None or type(value) in (bool, int, float, str, bytes):
        return value
    if type(value) in (tuple, list):
        return type(value)(plain(v) for v in value)
    return repr(value)[:200]


def explain(exc: BaseException, module: str) -> str:
    """The student's exception in words: which function, which line, what to do."""
    frames = [fs for fs in traceback.extract_tb(exc.__traceback__)
              if Path(fs.filename).stem == module]
    where = (f" in `{frames[-1].name}` (line {frames[-1].lineno} of {module}.py: "
             f"`{(frames[-1].line or '').strip()}`)" if frames else "")
    if isinstance(exc, NotImplementedError):
        name = frames[-1].name if frames else "a function"
        return (f"`{name}` still raises NotImplementedError: replace `# YOUR CODE HERE` and the "
                f"`raise NotImplementedError()` line in the %%writefile cell with your code, "
                "run that cell and the next one again.")
    if type(exc).__name__ == "RemoteError":  # a manager's traceback says nothing to them
        lines = [ln for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("---")]
        kind, _, why = (lines[-1] if lines else "RemoteError").partition(": ")
        return (f"A manager refused a request of your code{where}: "
                f"{kind.rsplit('.', 1)[-1]}: {why}.")
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (pickle.PicklingError, AttributeError, TypeError)) and (
        "pickle" in str(exc) or "Can't get attribute" in str(exc)
    ):
        return (f"{text}{where}. Under the spawn start method every process target and argument is "
                "pickled: a worker must be a top-level function of the module (no lambda, no "
                "function defined inside another function or in a notebook cell).")
    if type(exc).__name__ == "Empty":
        return (f"queue.Empty{where}: a get(timeout=...) waited in vain, so something that should "
                "have been put on that queue never was (an item not consumed, or a consumer that "
                "stopped or crashed).")
    return f"Your code raised {text}{where}."


def install_sentinel_counter(state: State, sentinel) -> None:
    """Count the SENTINELs the parent process puts on any queue, noting whether a
    producer was still running at that moment (a sentinel sent too early)."""
    from multiprocessing import queues

    parent = os.getpid()

    def counting(original):
        def put(self, obj, block=True, timeout=None):
            if os.getpid() == parent and obj is sentinel:
                running = [p for p in state.processes
                           if "producer" in role(p) and p.is_alive()]
                state.sentinel_puts.append({"producers_running": len(running)})
            return original(self, obj, block, timeout)
        return put

    queues.Queue.put = counting(queues.Queue.put)
    queues.JoinableQueue.put = counting(queues.JoinableQueue.put)


class SlowItems(list):
    """A list whose iteration pauses ``gap`` seconds halfway: the producers go quiet
    for a moment, so a consumer that stops when the queue looks empty is caught."""

    def __init__(self, items, gap: float = 0.0):
        super().__init__(items)
        self.gap = gap

    def __iter__(self):
        half = len(self) // 2
        for i, item in enumerate(list.__iter__(self)):
            if i == half and self.gap:
                time.sleep(self.gap)
            yield item

    def __reduce__(self):
        # list.__iter__, not ours: pickling (to start a producer under spawn) must not
        # pause; the lull belongs in the producer process
        return (SlowItems, (list(list.__iter__(self)), self.gap))


def make_batches(producers: int, per_producer: int, gap: float = 0.0) -> list[SlowItems]:
    """Distinct integers, one batch per producer."""
    return [SlowItems(range(i * 100_000, i * 100_000 + per_producer), gap) for i in range(producers)]


def crashed_problems(procs, what: str = "These processes crashed") -> list[str]:
    """The processes of ``procs`` that ended with an error (the driver's word for it:
    exit codes of grandchildren are known only to their parent)."""
    crashed = [p for p in procs if p.exitcode not in (0, None)]
    if not crashed:
        return []
    return [f"{what}: " + ", ".join(f"{role(p)} (exit code {p.exitcode})" for p in crashed)
            + ". The error they printed is below."]


def timeout_problems(state, main_thread: int) -> list[str]:
    """What a timer says when a task ran out of time: the stage, the student's line
    the task was blocked on, the processes still running, and the task's hint.
    ``state``: a driver's :class:`State` or the checker's job."""
    alive = [p for p in state.processes if p.is_alive()]
    where = state.stuck_at(main_thread)
    msg = [f"Still not finished after {state.timeout:.0f} s ({state.stage})."]
    if where:
        msg.append(f"Your code was waiting at {where}.")
    if alive:
        msg.append(f"Processes still running: {describe(alive)}.")
    hint = state.timeout_hint
    msg += hint(state, where) if callable(hint) else [hint] if hint else []
    return [" ".join(msg)]
