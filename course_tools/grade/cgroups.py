"""Per-kernel memory and process caps with cgroup v1 (where the machine offers
them): made before a kernel starts, read for the report, emptied and removed
after. Every cgroup of a grading run is named ``<run>-<slot>-<kernel>``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from courselib.procs import kill_all

ROOT = Path("/sys/fs/cgroup")
PARENT = "course-grade"
CONTROLLERS = ("memory", "pids")


def available() -> bool:
    return all(os.access(ROOT / c, os.W_OK) and (ROOT / c / "cgroup.procs").exists()
               for c in CONTROLLERS)


def make(name: str, memory_bytes: int, max_processes: int) -> list[Path]:
    """The memory and pids cgroups ``name`` with their limits set ([] without cgroups)."""
    if not available():
        return []
    made = []
    for controller, knob, value in (("memory", "memory.limit_in_bytes", memory_bytes),
                                    ("pids", "pids.max", max_processes)):
        path = ROOT / controller / PARENT / name
        path.mkdir(parents=True, exist_ok=True)
        (path / knob).write_text(str(value))
        made.append(path)
    return made


def named(prefix: str) -> list[Path]:
    """Every cgroup of ours whose name starts with ``prefix``."""
    return [cg for c in CONTROLLERS for cg in (ROOT / c / PARENT).glob(f"{prefix}*")
            if cg.is_dir()]


def _members(path: Path) -> list[psutil.Process]:
    procs = []
    try:
        pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return procs
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.Error:
            pass
    return procs


def remove(path: Path, timeout: float = 10) -> bool:
    """Kill every process in the cgroup, then remove it; False if it is still there
    after ``timeout`` s (a process in uninterruptible sleep keeps it busy)."""
    deadline = time.monotonic() + timeout
    while path.exists():
        kill_all(_members(path), timeout=max(0.1, deadline - time.monotonic()))
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            pass  # the kernel still counts an exiting process as a member
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def memory_limit_hit(paths: list[Path]) -> bool:
    for path in paths:
        try:
            if int((path / "memory.failcnt").read_text()) > 0:
                return True
        except (OSError, ValueError):
            pass
    return False


def process_limit_hits(paths: list[Path]) -> int:
    """How often a fork was refused by the pids cgroup."""
    hits = 0
    for path in paths:
        try:
            hits += int((path / "pids.events").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return hits
