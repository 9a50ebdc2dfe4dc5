"""The driver's side of the checks (a child process running the student's code,
:func:`hwcheck.child.drive`): the recording multiprocessing context the student's code
receives, what the driver knows about the task in progress (:class:`State`, read by
its timer, and what it says when time is up), the student's exceptions in words, and
the tools the hw1/hw2 tasks share: the batches producers send (and the item that arrives
late), what a hw1 driver sees of the student's pipeline (:class:`PipelineWatch`).

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
    """A multiprocessing context that remembers every Process created through it (and
    how many JoinableQueues), so a check can tell which processes the student started
    and whether they ended, however each was built (keyword arguments, a wrapper or
    functools.partial target): what each process is, a check learns from what it did."""

    def __init__(self, ctx):
        self._ctx = ctx
        self.processes = []
        self.joinable_queues = 0

    def Process(self, *args, **kwargs):  # noqa: N802 - mirrors the multiprocessing API
        proc = self._ctx.Process(*args, **kwargs)
        self.processes.append(proc)
        return proc

    def JoinableQueue(self, *args, **kwargs):  # noqa: N802
        self.joinable_queues += 1
        return self._ctx.JoinableQueue(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._ctx, name)


def role(proc) -> str:
    return getattr(proc, "_hw_role", None) or "process"


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

    current: Sender | None = None  # this driver's sender (a watch thread may speak first)

    def __init__(self, conn):
        self._conn = conn
        self._lock = threading.Lock()
        self._sent = False
        Sender.current = self

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
    if isinstance(value, LateInt):
        return int(value)
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


class SlowItems(list):
    """A list whose iteration pauses ``gap`` seconds halfway: the producers go quiet
    for a moment, so a consumer that stops when the queue looks empty is caught. With
    ``marks`` (a folder), the process that iterates it leaves a file there
    (``<pid>-<index>-start``, then ``-end``): that is how a driver knows its producers,
    whatever target or wrapper started them."""

    def __init__(self, items, gap: float = 0.0, marks: str | None = None, index: int = 0):
        super().__init__(items)
        self.gap, self.marks, self.index = gap, marks, index

    def _mark(self, what: str) -> None:
        if self.marks:
            try:
                Path(self.marks, f"{os.getpid()}-{self.index}-{what}").touch()
            except OSError:
                pass

    def __iter__(self):
        self._mark("start")
        half = len(self) // 2
        for i, item in enumerate(list.__iter__(self)):
            if i == half and self.gap:
                time.sleep(self.gap)
            yield item
        self._mark("end")

    def __reduce__(self):
        # list.__iter__, not ours: pickling (to start a producer under spawn) must not
        # pause; the lull belongs in the producer process
        return (SlowItems, (list(list.__iter__(self)), self.gap, self.marks, self.index))


class LateInt(int):
    """An item that arrives late: unpickled in a process other than the one that
    made it (the driver) and other than the one that pickled it, i.e. in a consumer
    taking it from a producer, it sleeps ``delay`` s first. Its result reaches the
    driver that much later than the others: reading results "until quiet" misses it."""

    origin: int = 0
    delay: float = 0.0

    def __reduce__(self):
        return (_late_int, (int(self), self.origin, os.getpid(), self.delay))


def late_int(value: int, delay: float) -> LateInt:
    item = LateInt(value)
    item.origin, item.delay = os.getpid(), delay
    return item


def _late_int(value, origin, pickled_in, delay):
    item = LateInt(value)
    item.origin, item.delay = origin, delay
    if pickled_in != origin and os.getpid() not in (origin, pickled_in):
        time.sleep(delay)  # a consumer, taking it from a producer
    return item


def make_batches(producers: int, per_producer: int, gap: float = 0.0, first: int = 0,
                 late: float = 0.0, marks: str | None = None) -> list[SlowItems]:
    """Distinct integers from ``first`` on (0 is falsy: a consumer that stops at
    `if not item:` stops there), one batch per producer; with ``late``, the last item
    of the last batch is a :class:`LateInt`."""
    batches = [SlowItems(range(i * 100_000 + first, i * 100_000 + first + per_producer), gap,
                         marks, i) for i in range(producers)]
    if late and batches and batches[-1]:
        batches[-1][-1] = late_int(batches[-1][-1], late)
    return batches


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
    where = state.stuck_at(main_thread)
    hint = state.timeout_hint  # first: hw1's names the processes' roles
    hints = hint(state, where) if callable(hint) else [hint] if hint else []
    # asked without reaping: the main thread may be joining them
    alive = [p for p in state.processes if running(p.pid)]
    msg = [f"Still not finished after {state.timeout:.0f} s ({state.stage})."]
    if where:
        msg.append(f"Your code was waiting at {where}.")
    if alive:
        msg.append(f"Processes still running: {describe(alive)}.")
    return [" ".join(msg + hints)]


def running(pid: int | None) -> bool:
    """Whether ``pid`` runs and has not ended (a zombie has), asked without reaping
    it: a watch thread must not take a child's exit status from the main thread."""
    import psutil  # here, not at the top: every child a check starts imports this module

    try:
        return bool(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def student_line(module: str) -> str:
    """The student's line the calling thread is on (innermost), in words."""
    for fs in reversed(traceback.extract_stack()):
        if Path(fs.filename).stem == module:
            return f"line {fs.lineno} of {module}.py: `{(fs.line or '').strip()}`"
    return ""


class PipelineWatch:
    """What a hw1 driver sees of the student's run_pipeline, from the driver's side:
    each SENTINEL the parent puts (and which processes were running then), each wait
    it makes with no timeout, how many results it has read, which processes are the
    producers (those that iterated a batch: :class:`SlowItems` marks), and a stall:
    SENTINELs put, then nothing happening for ``STALL`` s, which the
    watch reports at once (in the check's words) instead of waiting for the deadline."""

    STALL = 8.0  # s: twice the longest quiet moment of a correct run (the late item)

    def __init__(self, state: State, sentinel, marks: str, on_stall: Callable[[], str]):
        from multiprocessing import process, queues

        self.state, self.sentinel, self.marks = state, sentinel, marks
        self.parent, self.module = os.getpid(), getattr(state.module, "__name__", "")
        self.sentinel_puts: list[set[int]] = []  # running recorded pids at each put
        self.unbounded: list[str] = []  # the student's lines that waited with no timeout
        self.results_read = 0
        self.waiting = ""  # "join" or "get" while the parent waits in one
        self.last_progress = time.monotonic()
        self._stop = threading.Event()
        watch = self

        def put(original):
            def wrapped(q, obj, block=True, timeout=None):
                if os.getpid() == watch.parent and watch.is_sentinel(obj):
                    watch.sentinel_puts.append(watch.running_pids())
                    watch.progress()
                return original(q, obj, block, timeout)
            return wrapped

        def get(original):
            def wrapped(q, block=True, timeout=None):
                if os.getpid() != watch.parent:
                    return original(q, block, timeout)
                watch.unbounded_wait(block and timeout is None)
                watch.waiting = "get"
                try:
                    item = original(q, block, timeout)
                finally:
                    watch.waiting = ""
                watch.results_read += 1
                watch.progress()
                return item
            return wrapped

        def join(original):
            def wrapped(proc, timeout=None):
                if os.getpid() == watch.parent:
                    watch.unbounded_wait(timeout is None)
                watch.waiting = "join"
                try:
                    return original(proc, timeout)
                finally:
                    watch.waiting = ""
            return wrapped

        queues.Queue.put = put(queues.Queue.put)
        queues.JoinableQueue.put = put(queues.JoinableQueue.put)
        queues.Queue.get = get(queues.Queue.get)
        process.BaseProcess.join = join(process.BaseProcess.join)
        self._on_stall = on_stall
        threading.Thread(target=self._run, daemon=True).start()

    def is_sentinel(self, obj) -> bool:
        return obj is self.sentinel or (type(obj) is str and obj == self.sentinel)

    def unbounded_wait(self, unbounded: bool) -> None:
        line = student_line(self.module) if unbounded else ""
        if line and line not in self.unbounded:
            self.unbounded.append(line)

    def progress(self) -> None:
        self.last_progress = time.monotonic()

    def running_pids(self) -> set[int]:
        return {p.pid for p in self.state.processes if running(p.pid)}

    def producers(self) -> set[int]:
        """The processes that iterated a batch."""
        try:
            names = os.listdir(self.marks)
        except OSError:
            return set()
        return {int(n.split("-")[0]) for n in names if n.endswith("-start")}

    def early_sentinels(self) -> int:
        """SENTINELs put while a producer was still running."""
        prods = self.producers()
        return sum(1 for alive in self.sentinel_puts if alive & prods)

    def label(self) -> tuple[list, list]:
        """The recorded processes as (producers, the others: consumers)."""
        prods = self.producers()
        for p in self.state.processes:
            p._hw_role = "producer" if p.pid in prods else "consumer"
        return ([p for p in self.state.processes if p.pid in prods],
                [p for p in self.state.processes if p.pid not in prods])

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        seen = None
        while not self._stop.wait(0.25):
            now = (self.running_pids(), len(os.listdir(self.marks)) if os.path.isdir(
                self.marks) else 0)
            if now != seen:
                seen = now
                self.progress()
            # a correct run puts its SENTINELs once every producer has ended, then only
            # reads results and joins: nothing at all happening for STALL s is a hang
            stalled = (self.sentinel_puts
                       and time.monotonic() - self.last_progress > self.STALL)
            if stalled and Sender.current is not None:
                Sender.current({"timed_out": self._on_stall()})
                return
