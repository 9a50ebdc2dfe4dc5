"""Runner side of the checks (:mod:`hwcheck.runner`): the recording multiprocessing
context the student's code receives, what the runner knows about the task in progress
(:class:`State`, read by the watchdog, and what the watchdog says when time is up),
and the tools the hw1/hw2 tasks share: the SENTINEL counter, the batches producers
send and the end-of-run process check.

Objects here (``SlowItems``, the recorded processes) are pickled by reference into
child processes: parent and children import them from this module.
"""

from __future__ import annotations

import os
import sys
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
    """What the runner knows about the task in progress (read by the watchdog)."""

    def __init__(self, ctx: RecordingContext, module, timeout: float):
        self.ctx = ctx
        self.module = module
        self.timeout = timeout
        self.stage = "starting"
        self.problems: list[str] = []
        self.facts: dict = {}
        self.sentinel_puts: list[dict] = []  # one entry per SENTINEL the parent put
        # what the watchdog adds when time is up: words, or a function of this state
        # returning them (hw1's pipeline reasons from what it saw)
        self.timeout_hint: str | Callable[[State, str], list[str]] = ""

    def stuck_at(self, thread_id: int) -> str:
        """The student's source line the main thread is blocked on."""
        frame = sys._current_frames().get(thread_id)
        where = ""
        for fs in traceback.extract_stack(frame) if frame else []:
            if Path(fs.filename).stem == self.module.__name__:
                where = f"line {fs.lineno} of {Path(fs.filename).name}: `{(fs.line or '').strip()}`"
        return where


def install_sentinel_counter(state: State, sentinel) -> None:
    """Count the SENTINELs the parent process puts on any queue, noting whether a
    producer was still running at that moment (a sentinel sent too early)."""
    from multiprocessing import queues

    parent = os.getpid()

    def counting(original):
        def put(self, obj, block=True, timeout=None):
            if os.getpid() == parent and obj is sentinel:
                running = [p for p in state.ctx.processes
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


def end_problems(state: State) -> list[str]:
    """Every process the student's code started must have ended, cleanly."""
    problems = []
    alive = [p for p in state.ctx.processes if p.is_alive()]
    if alive:
        problems.append(
            f"When your function returned, these processes were still running: {describe(alive)}. "
            "Join every process you start (with a timeout) before returning."
        )
    crashed = [p for p in state.ctx.processes if p.exitcode not in (0, None)]
    if crashed:
        problems.append(
            "These processes crashed: "
            + ", ".join(f"{role(p)} (exit code {p.exitcode})" for p in crashed)
            + ". The error they printed is below."
        )
    state.facts["processes_started"] = len(state.ctx.processes)
    return problems


def timeout_problems(state: State, main_thread: int) -> list[str]:
    """What the watchdog says when a task ran out of time: the stage, the student's
    line the task was blocked on, the processes still running, and the task's hint."""
    alive = [p for p in state.ctx.processes if p.is_alive()]
    where = state.stuck_at(main_thread)
    msg = [f"Still not finished after {state.timeout:.0f} s ({state.stage})."]
    if where:
        msg.append(f"Your code was waiting at {where}.")
    if alive:
        msg.append(f"Processes still running: {describe(alive)}.")
    hint = state.timeout_hint
    msg += hint(state, where) if callable(hint) else [hint] if hint else []
    return [" ".join(msg)]
