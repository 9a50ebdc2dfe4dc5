"""Checks that apply to every test run in this repository, unit tests and
notebooks (nbval) alike: nothing a test or notebook started may outlive it.

* Child processes: pytest makes itself a *child subreaper* (Linux), so a process
  orphaned by a notebook's kernel is re-parented to pytest instead of init and is
  still visible here. After the last test of each file (for a notebook: after its
  kernel was shut down) any remaining descendant fails that file's teardown and
  is killed so it cannot disturb the next file.
* Shared memory: a ``multiprocessing.shared_memory`` segment that appears in
  /dev/shm during the run and is still there at the end fails the session.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

PR_SET_CHILD_SUBREAPER = 36
SHM_DIR = Path("/dev/shm")
# Long-lived helpers multiprocessing starts once per parent process; they belong
# to the pytest process itself (unit tests under forkserver), not to a test.
_MP_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
# How long a finished file's processes get to exit on their own (kernel shutdown
# takes a moment); tests of this check shorten it.
_GRACE_SECONDS = float(os.environ.get("COURSE_LEFTOVER_GRACE", "10"))
_SHM_KEY = pytest.StashKey[set]()


def _become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _shm_segments() -> set[str]:
    if not SHM_DIR.is_dir():
        return set()
    return {n for n in os.listdir(SHM_DIR) if n.startswith(("psm_", "wnsm_"))}


def _is_mp_helper(proc: psutil.Process) -> bool:
    try:
        if proc.ppid() != os.getpid():
            return False
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return True  # already gone
    return any(marker in cmdline for marker in _MP_HELPERS)


def _reap_zombies() -> None:
    """Collect exit statuses of orphans re-parented to us (we are their subreaper)."""
    for proc in psutil.Process().children():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(proc.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            pass


def leftover_processes(grace: float = _GRACE_SECONDS) -> list[psutil.Process]:
    """Descendants of this process still running after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while True:
        _reap_zombies()
        alive = []
        for proc in psutil.Process().children(recursive=True):
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and not _is_mp_helper(proc):
                    alive.append(proc)
            except psutil.Error:
                pass
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())[:200]}"
    except psutil.Error:
        return f"pid {proc.pid}"


def _kill(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)
    _reap_zombies()


def pytest_configure(config: pytest.Config) -> None:
    _become_subreaper()
    config.stash[_SHM_KEY] = _shm_segments()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    result = yield
    if nextitem is None or nextitem.path != item.path:
        leftovers = leftover_processes()
        if leftovers:
            listing = "\n  ".join(_describe(p) for p in leftovers)
            _kill(leftovers)
            raise AssertionError(
                f"{item.path.name} left {len(leftovers)} process(es) running "
                f"(killed now):\n  {listing}"
            )
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: another worker may still hold a live segment
    new = _shm_segments() - session.config.stash.get(_SHM_KEY, set())
    if new:
        session.config.get_terminal_writer().line(
            f"FAILED: shared-memory segments left in {SHM_DIR}: {', '.join(sorted(new))}",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
