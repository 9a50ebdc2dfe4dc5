"""Per-kernel memory, process and CPU caps with cgroup v1 (where the machine offers
them): made before a kernel starts, read for the report, emptied and removed
after. Every cgroup of a grading run is named ``<run>-<slot>-<kernel>``.

The CPU cap (a CFS quota, one core by default) keeps a student's score from
depending on who is graded beside them: a busy loop in one slot cannot take the
core the next slot's kernel needs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from courselib.procs import kill_all

ROOT = Path("/sys/fs/cgroup")
PARENT = "course-grade"
CONTROLLERS = ("memory", "pids")  # required
OPTIONAL = ("cpu",)
CFS_PERIOD_US = 100_000


def available() -> bool:
    return all(_usable(c) for c in CONTROLLERS)


def _usable(controller: str) -> bool:
    return os.access(ROOT / controller, os.W_OK) and (ROOT / controller / "cgroup.procs").exists()


def make(name: str, memory_bytes: int, max_processes: int,
         cpus: float | None = 1.0) -> list[Path]:
    """The cgroups ``name`` with their limits set: memory, pids and (where the cpu
    controller is there and ``cpus`` is set) a quota of ``cpus`` cores. [] without
    cgroups."""
    if not available():
        return []
    limits = [("memory", {"memory.limit_in_bytes": memory_bytes}),
              ("pids", {"pids.max": max_processes})]
    if cpus and _usable("cpu"):
        limits.append(("cpu", {"cpu.cfs_period_us": CFS_PERIOD_US,
                               "cpu.cfs_quota_us": max(1000, int(cpus * CFS_PERIOD_US))}))
    made = []
    for controller, knobs in limits:
        path = ROOT / controller / PARENT / name
        path.mkdir(parents=True, exist_ok=True)
        for knob, value in knobs.items():
            (path / knob).write_text(str(value))
        made.append(path)
    return made


def named(prefix: str) -> list[Path]:
    """Every cgroup of ours whose name starts with ``prefix``."""
    return [cg for c in (*CONTROLLERS, *OPTIONAL) for cg in (ROOT / c / PARENT).glob(f"{prefix}*")
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
