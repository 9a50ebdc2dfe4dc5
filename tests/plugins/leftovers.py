"""What a test, notebook or grading run left behind: descendant processes and
shared-memory segments. Used by the repository's conftest.py and the grader's
tests, so "nothing left running" means the same thing everywhere."""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path

import psutil

from courselib.procs import kill_all

PR_SET_CHILD_SUBREAPER = 36
SHM_DIR = Path("/dev/shm")
# Long-lived helpers multiprocessing starts once per parent process (the resource
# tracker, the forkserver). They belong to the calling process itself, live as
# long as it does, and are not something a test left behind.
_MP_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def become_subreaper() -> None:
    """Orphans of our descendants are re-parented to us (Linux), so they stay visible."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def shm_segments() -> set[str]:
    """Names in /dev/shm that multiprocessing creates: shared_memory segments
    (``psm_``) and, under spawn and forkserver, the named semaphores behind every
    Lock, Semaphore, Event and Queue (``sem.mp-``), which outlive their process
    when it is killed before its resource tracker can unlink them."""
    if not SHM_DIR.is_dir():
        return set()
    return {n for n in os.listdir(SHM_DIR) if n.startswith(("psm_", "wnsm_", "sem.mp-"))}


def shm_in_use() -> set[str]:
    """Names in /dev/shm that some live process has mapped (an open Lock, Queue or
    SharedMemory). Only unmapped names are leaks: a mapped one belongs to a process
    still running, perhaps another test run on the same machine. Matched by inode:
    glibc maps a semaphore under a temporary name before linking it to its own."""
    inodes = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            text = maps.read_text()
        except OSError:
            continue  # the process ended, or is not ours to read
        for line in text.splitlines():
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith(f"{SHM_DIR}/"):
                inodes.add(int(fields[4]))
    used = set()
    for name in shm_segments():
        try:
            if (SHM_DIR / name).stat().st_ino in inodes:
                used.add(name)
        except OSError:
            pass
    return used


def leaked_shm(before: set[str], grace: float = 5.0) -> set[str]:
    """Names created since ``before`` that no process maps, still there after ``grace``
    seconds (a resource tracker may be unlinking them right now)."""
    deadline = time.monotonic() + grace
    while True:
        leaked = shm_segments() - before - shm_in_use()
        if not leaked or time.monotonic() >= deadline:
            return leaked
        time.sleep(0.2)


def _is_own_mp_helper(proc: psutil.Process) -> bool:
    try:
        if proc.ppid() != os.getpid():
            return False
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return True  # already gone
    return any(marker in cmdline for marker in _MP_HELPERS)


def reap_zombies() -> None:
    """Collect exit statuses of orphans re-parented to us (we are their subreaper)."""
    for proc in psutil.Process().children():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(proc.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            pass


def leftover_processes(grace: float = 5.0) -> list[psutil.Process]:
    """Descendants of this process still running after ``grace`` seconds, not
    counting this process's own multiprocessing helpers."""
    deadline = time.monotonic() + grace
    while True:
        reap_zombies()
        alive = []
        for proc in psutil.Process().children(recursive=True):
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and not _is_own_mp_helper(proc):
                    alive.append(proc)
            except psutil.Error:
                pass
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {' '.join(proc.cmdline())[:150]}"
    except psutil.Error:
        return f"{proc.pid}"


def kill(procs: list[psutil.Process]) -> None:
    kill_all(procs)
    reap_zombies()
