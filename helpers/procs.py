"""Ending processes for good: the one place the course kills what it started
(homework checks, the hw3 server runner, the grader, the test suite).

Everything here works on Linux, macOS and Windows: it goes through psutil
(``Process.kill()`` is SIGKILL on POSIX, TerminateProcess on Windows), never
through POSIX-only calls such as ``os.killpg``.
"""

from __future__ import annotations

import os
import time

import psutil


def kill_all(procs: list[psutil.Process], timeout: float = 5.0) -> None:
    """Kill every process in ``procs`` (SIGKILL on POSIX; gone ones are skipped)
    and wait up to ``timeout`` seconds for them to die."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout)


def terminate_then_kill(procs: list[psutil.Process], grace: float) -> None:
    """Terminate (SIGTERM on POSIX), wait up to ``grace`` seconds, then kill
    whatever is left."""
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    kill_all(alive)


def still_running(procs: list[psutil.Process], timeout: float = 0.0) -> list[psutil.Process]:
    """The processes of ``procs`` still running after up to ``timeout`` seconds.

    A zombie counts as ended (its parent, or a subreaper, reaps it). Polls the status
    itself: ``psutil.wait_procs`` can take over a second to notice a zombie it does
    not own."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if _running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        procs = alive
        time.sleep(0.02)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants, parents first (empty if it is gone).

    Read it while ``pid`` is still running: once a parent has exited, its orphaned
    children can no longer be found through it (on Windows they never are)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def kill_tree(pid: int, timeout: float = 5.0) -> list[psutil.Process]:
    """Kill the process ``pid`` and all its descendants; return what was killed."""
    procs = tree(pid)
    kill_all(procs, timeout=timeout)
    return procs


def marked(name: str, value: str) -> list[psutil.Process]:
    """Every running process, other than this one, whose environment has
    ``name=value``. Give a process a unique value of ``name`` in its environment
    and every process it starts inherits it, so this finds what it left behind even
    after it has exited, on every platform (a POSIX session finds the same faster,
    where sessions exist). Processes of other users, which cannot be read, are
    skipped."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(name) == value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            pass
    return found
