"""Task functions that lecture 04 hands to a process pool (进程池).

They live in a module, not in notebook cells, because spawn and forkserver
workers import a task by name (``helpers.pool_tasks.cpu_task``); a function
defined in a notebook cell cannot be found by them. Each function is tiny and
does one thing, so the notebook can show one effect at a time.

The ``timed_*`` variants return ``(worker pid, Span)`` so the parent can draw
which worker ran which task when (a Gantt chart); stamps come from
``helpers.timing.now()``, a clock shared by all processes of the machine.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time

from helpers.startmethod import context
from helpers.timing import Span, now


def trivial(x: int) -> int:
    """Almost no work: what is left to measure is the cost of handing a task over."""
    return x + 1


def cpu_task(n: int) -> int:
    """CPU-bound work that scales with ``n`` (pure Python, so it holds the GIL)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


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


def timed_cpu(label: str, n: int) -> tuple[int, Span]:
    """``cpu_task`` that reports which worker ran it and when."""
    start = now()
    cpu_task(n)
    return os.getpid(), Span(str(os.getpid()), label, start, now())


def worker_info(_: object = None) -> tuple[int, str, bool]:
    """(pid, process name, daemon flag) of the process running this task."""
    me = multiprocessing.current_process()
    return os.getpid(), me.name, me.daemon


def exit_on(x: int, bad: int) -> int:
    """Returns ``x``, except that the worker dies abruptly on ``bad``.

    ``os._exit`` ends the process at once, with no exception and no cleanup:
    the same as a segfault or the kernel's OOM killer from the pool's view.
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
    child.join(timeout=30)
    return child.exitcode


def silence_stderr() -> None:
    """Pool ``initializer``: send this worker's stderr to /dev/null.

    Used only by demonstrations of workers that crash, so the crash tracebacks
    (printed by the dying workers, at unpredictable moments) do not land in
    whatever notebook cell happens to run next.
    """
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the worker
