"""What a grading run that was killed left behind, cleaned by the next run.

Each run holds a lock on ``<run dir>/active.lock`` for as long as it lives (the
kernel drops the lock when the process dies, however it dies). A run folder whose
lock can be taken belongs to a run that is gone: its launchers (found by the slot
marker in their environment), its cgroups and its folder are removed.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from pathlib import Path

from courselib.procs import kill_all, marked

from . import cgroups
from .sandbox import MARKER

RUNS = Path("/tmp")
PREFIX = "course-grade-"
LOCK = "active.lock"
PROBE_AGE = 600  # s: a sandbox probe folder older than this was left by a killed probe


def hold(run: Path):
    """Mark ``run`` as alive until the returned file is closed (or the process dies)."""
    fh = open(run / LOCK, "a")  # noqa: SIM115 - held for the whole run
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


def clean() -> list[str]:
    """Remove what runs that are gone left behind; the names of those runs."""
    cleaned = []
    for run in sorted(RUNS.glob(f"{PREFIX}*")):
        if not run.is_dir() or run.is_symlink():
            continue
        if run.name.startswith(f"{PREFIX}probe-"):
            # a probe takes seconds; one this old was killed halfway (it holds no lock)
            if time.time() - run.stat().st_mtime > PROBE_AGE:
                shutil.rmtree(run, ignore_errors=True)
            continue
        if not (run / LOCK).exists():
            continue  # starting up, or not a run of this grader: not ours to judge
        try:
            fh = open(run / LOCK, "a")  # noqa: SIM115
        except OSError:
            continue
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # alive
            kill_all(marked(MARKER, f"{run.name}-", prefix=True))
            for cg in cgroups.named(f"{run.name}-"):
                cgroups.remove(cg)
            shutil.rmtree(run, ignore_errors=True)
        cleaned.append(run.name)
    return cleaned
