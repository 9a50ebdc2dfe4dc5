"""Props for lecture 04's demonstrations of a process pool (进程池).

The workers the lecture is about (``cpu_task``, ``fetch``) are on the page, in
the notebook's ``%%writefile pool_workers.py`` cell, so a reader can change
them. What is here only stages an effect: a task that does nothing (what a
hand-over costs), a task that sleeps (a known duration), a worker that dies,
one that tries to start a child. They live in a module, not in notebook cells,
because spawn and forkserver workers import a task by name
(``helpers.pool_tasks.trivial``); a function defined in a notebook cell cannot
be found by them.

The ``timed_*`` variants return ``(worker pid, Span)`` so the parent can draw
which worker ran which task when (a Gantt chart); stamps come from
``helpers.timing.now()``, a clock shared by all processes of the machine.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time

from courselib.procs import finish
from courselib.startmethod import context
from helpers.timing import Span, now


def trivial(x: int) -> int:
    """Almost no work: what is left to measure is the cost of handing a task over."""
    return x + 1


def sleep_task(seconds: float) -> float:
    """Waits without using the CPU, like a task blocked on I/O."""
    time.sleep(seconds)
    return seconds


def timed_sleep(label: str, seconds: float) -> tuple[int, Span]:
    """``sleep_task`` that reports which worker ran it and when."""
    start = now()
    time.sleep(seconds)
    return os.getpid(), Span(str(os.getpid()), label, start, now())


def timed_sleep_item(item: tuple[str, float]) -> tuple[int, Span]:
    """``timed_sleep`` taking one ``(label, seconds)`` tuple, for ``map``/``imap``."""
    return timed_sleep(*item)


def sleep_pid(seconds: float) -> int:
    """Sleeps, then returns the pid of the process that ran it: which workers are up."""
    time.sleep(seconds)
    return os.getpid()


def worker_info(_: object = None) -> tuple[int, str, bool]:
    """(pid, process name, daemon flag) of the process running this task."""
    me = multiprocessing.current_process()
    return os.getpid(), me.name, me.daemon


def exit_on(x: int, bad: int) -> int:
    """Returns ``x``, except that the worker dies abruptly on ``bad``.

    ``os._exit`` ends the process at once, with no exception and no cleanup:
    the same as a segfault or the operating system's out-of-memory killer,
    from the pool's view.
    """
    if x == bad:
        os._exit(1)
    return x


def start_child(_: object = None) -> int:
    """Starts and joins one child process; returns its exit code.

    Fine in an ordinary process. Inside a pool worker it raises
    ``AssertionError: daemonic processes are not allowed to have children``,
    because every pool worker is a daemon.
    """
    child = context().Process(target=sleep_task, args=(0,))
    child.start()
    finish([child], 30)
    return child.exitcode


def silence_stderr() -> None:
    """Pool ``initializer``: send this worker's stderr to /dev/null.

    Used only by demonstrations of workers that crash, so the crash tracebacks
    (printed by the dying workers, at unpredictable moments) do not land in
    whatever notebook cell happens to run next.
    """
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the worker
