"""The course's process toolkit: the one place that waits for, reads from and
ends the processes the course starts (lecture helpers, homework checks, the
grader, the test suite), in the spirit of CPython's ``multiprocessing/util.py``.

Two kinds of handle appear here:

- ``psutil.Process`` (any process, ours or not): :func:`kill_all`,
  :func:`terminate_then_kill`, :func:`still_running`, :func:`tree`,
  :func:`kill_tree`, :func:`marked`, :func:`is_mp_helper`,
  :func:`kill_descendants`, :func:`kill_session`;
- ``multiprocessing`` processes and queues we started: :func:`finish` (join with a
  deadline, then terminate), :func:`get_or_none` and :func:`drain` (read a queue
  until a deadline, noticing a writer that died).

And one measurement: :func:`max_concurrency` over (start, end) spans.

Everything works on Linux, macOS and Windows through psutil (``Process.kill()``
is SIGKILL on POSIX, TerminateProcess on Windows); the one POSIX-only call,
:func:`kill_session`, does nothing where sessions do not exist.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from collections.abc import Callable, Iterable, Sequence

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
    """Kill the process ``pid`` and all its descendants; return what was killed.
    For a ``multiprocessing`` child of this process use :func:`kill_started`: psutil
    would reap it here, behind multiprocessing's back."""
    procs = tree(pid)
    kill_all(procs, timeout=timeout)
    return procs


def marked(name: str, value: str, prefix: bool = False) -> list[psutil.Process]:
    """Every running process, other than this one, whose environment has
    ``name=value`` (with ``prefix``: a value that starts with ``value``). Give a
    process a unique value of ``name`` in its environment and every process it starts
    inherits it, so this finds what it left behind even after it has exited, on every
    platform (a POSIX session finds the same faster, where sessions exist). Processes
    of other users, which cannot be read, are skipped."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            seen = proc.environ().get(name)
            matches = seen is not None and (seen.startswith(value) if prefix else seen == value)
            if matches and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            pass
    return found


# Processes multiprocessing starts for itself, not for the user's code: they end on
# their own once their last client has gone.
_MP_HELPER_MARKS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def is_mp_helper(proc: psutil.Process) -> bool:
    """Whether ``proc`` is multiprocessing's resource tracker or fork server.

    A process the fork server forks for the user keeps the server's command line
    (fork without exec): it is the user's, recognised by its parent being a fork
    server, or (forked again, e.g. by a fork-context child) by its parent's command
    line being the same as its own. A fork server that such a process starts for
    itself (a forkserver ``Pool`` inside a forkserver ``Process``) is exec'd with a
    command line of its own: a helper again."""
    cmd = _cmdline(proc)
    if _MP_HELPER_MARKS[0] in cmd:
        return True
    return _is_fork_server(proc, cmd)


def _is_fork_server(proc: psutil.Process, cmd: str) -> bool:
    if _MP_HELPER_MARKS[1] not in cmd:
        return False
    try:
        parent = proc.parent()
    except psutil.Error:
        parent = None
    if parent is None:
        return True
    parent_cmd = _cmdline(parent)
    if _MP_HELPER_MARKS[1] not in parent_cmd:
        return True
    return parent_cmd != cmd and not _is_fork_server(parent, parent_cmd)


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def kill_descendants(keep_mp_helpers: bool = True, timeout: float = 5.0) -> list[psutil.Process]:
    """Kill every descendant of this process; return what was killed. The resource
    tracker and fork server are kept by default: they end by themselves, and the
    tracker still has named semaphores of the killed processes to unlink."""
    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    victims = [p for p in kids if not (keep_mp_helpers and is_mp_helper(p))]
    kill_all(victims, timeout=timeout)
    return victims


def posix_sessions() -> bool:
    """Whether this platform can kill a whole session at once (Linux, macOS; not Windows)."""
    return all(hasattr(os, f) for f in ("killpg", "getpgid", "setsid")) and hasattr(signal, "SIGKILL")


def kill_session(pgid: int) -> None:
    """SIGKILL the process group ``pgid`` (POSIX only; elsewhere, or where it is
    gone, nothing to do)."""
    if not posix_sessions():
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def finish(procs: Iterable, timeout: float, grace: float = 5.0) -> list:
    """Join ``multiprocessing`` processes within one shared ``timeout``; terminate
    (then join for up to ``grace`` s) each one still alive. Returns those that had
    to be terminated: "join, then terminate", the last resort for a process that
    will not stop (queues it was writing to are unusable afterwards)."""
    procs = list(procs)
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    stuck = [p for p in procs if p.is_alive()]
    for p in stuck:
        p.terminate()
    for p in stuck:
        p.join(grace)
    return stuck


def get_or_none(q, deadline: float, writers_alive: Callable[[], bool], poll: float = 0.2,
                last_look: float = 0.5):
    """One item from ``q`` before the ``time.monotonic()`` ``deadline``, or None.

    While waiting, asks ``writers_alive()``; once it says no, looks once more (for
    ``last_look`` s), because a writer can put its last item and exit between a
    ``get`` timing out and that question: the race behind "results lost on a busy
    machine"."""
    while time.monotonic() < deadline:
        try:
            return q.get(timeout=min(poll, max(0.001, deadline - time.monotonic())))
        except queue.Empty:
            if not writers_alive():
                try:
                    return q.get(timeout=last_look)
                except queue.Empty:
                    return None
    return None


def drain(q, quiet: float = 0.5, limit: float = 2.0) -> list:
    """Everything ``q`` delivers until it has been quiet for ``quiet`` s (at most
    ``limit`` s in all). For reading what finished writers left behind; a broken
    queue ends the reading."""
    out, deadline = [], time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            out.append(q.get(timeout=min(quiet, max(0.001, deadline - time.monotonic()))))
        except queue.Empty:
            break
        except (OSError, EOFError, ValueError):
            break
    return out


def max_concurrency(spans: Sequence) -> int:
    """The most spans running at one moment (1 means strictly one after another).
    A span is anything with ``start`` and ``end``, or a (start, end) pair; a span
    ending as another starts is not overlap."""
    edges = []
    for s in spans:
        start, end = (s.start, s.end) if hasattr(s, "start") else s
        edges += [(start, 1), (end, -1)]
    running = peak = 0
    for _, step in sorted(edges):  # at equal times -1 sorts first
        running += step
        peak = max(peak, running)
    return peak


def kill_started(proc, timeout: float = 10.0) -> list[psutil.Process]:
    """Kill a ``multiprocessing`` process this process started, and all its
    descendants; return the descendants killed. Unlike :func:`kill_tree`, it leaves
    reaping ``proc`` to multiprocessing: psutil would reap its own child with
    ``os.waitpid``, and ``proc.is_alive()`` would then stay True for ever."""
    kids = tree(proc.pid)[1:] if proc.pid is not None else []
    proc.kill()
    # the descendants first: under fork they hold a copy of the pipe whose end tells
    # multiprocessing that ``proc`` has exited, so joining first would wait in vain
    kill_all(kids, timeout=timeout)
    proc.join(timeout)
    return kids
