"""Ending processes for good: the one place the course kills what it started
(homework checks, the hw3 server runner, the grader, the test suite)."""

from __future__ import annotations

import psutil


def kill_all(procs: list[psutil.Process], timeout: float = 5.0) -> None:
    """SIGKILL every process in ``procs`` (gone ones are skipped) and wait up to
    ``timeout`` seconds for them to die."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout)


def terminate_then_kill(procs: list[psutil.Process], grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is left."""
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    kill_all(alive)
