"""Per-kernel memory, process and CPU caps with cgroups (where the machine offers
them): made before a kernel starts, read for the report, emptied and removed
after. Every cgroup of a grading run is named ``<run>-<slot>-<kernel>``.

Two layouts:

- cgroup v1 (one hierarchy per controller): ``/sys/fs/cgroup/{memory,pids,cpu}/
  course-grade/<name>``, as root. ``memory.limit_in_bytes``, ``pids.max``,
  ``cpu.cfs_quota_us``. Checked on a real v1 host.
- cgroup v2 (one unified hierarchy): ``<parent>/<name>`` with ``memory.max``
  (``memory.swap.max`` 0), ``pids.max``, ``cpu.max``, ended with ``cgroup.kill``
  where the kernel has it (5.14+). The parent is ``/sys/fs/cgroup/course-grade`` as
  root; without root, a subtree delegated to the teacher (``systemd-run --user
  --scope -p Delegate=yes make grade``): the grader's own cgroup, whose processes
  move into a ``grader`` leaf so that its controllers can be handed down. Tested on
  a directory laid out like cgroupfs only: no v2 host was at hand.

The CPU cap (a quota, one core by default) keeps a student's score from depending
on who is graded beside them: a busy loop in one slot cannot take the core the
next slot's kernel needs."""

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
LEAF = "grader"  # v2 without root: where the grader's own processes move


def unified() -> bool:
    """Whether this host mounts cgroup v2 (the unified hierarchy) at ROOT."""
    return (ROOT / "cgroup.controllers").is_file()


def own_cgroup(table: str | None = None) -> Path:
    """This process's cgroup in the v2 hierarchy (``table``: /proc/self/cgroup's text)."""
    if table is None:
        table = Path("/proc/self/cgroup").read_text()
    for line in table.splitlines():
        if line.startswith("0::"):
            return ROOT / line[3:].lstrip("/")
    return ROOT


def v2_parent() -> tuple[Path, set[str]] | None:
    """Where this grader may make cgroups in the v2 hierarchy, and the controllers
    its children get (memory and pids at least, cpu where offered); None where it may
    not."""
    if os.geteuid() == 0:
        parent = ROOT / PARENT
        try:
            _hand_down(ROOT)  # the root cgroup may, with processes in it
            _mkdir(parent)
        except OSError:
            return None
    else:
        own = own_cgroup()
        parent = own.parent if own.name == LEAF else own  # a worker of the grader
        if not (os.access(parent / "cgroup.procs", os.W_OK)
                and os.access(parent / "cgroup.subtree_control", os.W_OK)):
            return None  # not delegated to this user
    controllers = _enable(parent)
    return (parent, controllers) if controllers else None


def _enable(parent: Path) -> set[str]:
    """Hand memory, pids (and cpu) down to ``parent``'s children: those handed down,
    or nothing where memory or pids cannot be."""
    try:
        offered = (parent / "cgroup.controllers").read_text().split()
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
    except OSError:
        return set()
    wanted = [c for c in (*CONTROLLERS, *OPTIONAL) if c in offered]
    if not set(CONTROLLERS) <= set(wanted):
        return set()
    if set(wanted) <= enabled:
        return set(wanted)
    if parent != ROOT / PARENT:  # no process may stay in a cgroup that hands down
        leaf = parent / LEAF
        _mkdir(leaf)
        for pid in (parent / "cgroup.procs").read_text().split():
            try:
                (leaf / "cgroup.procs").write_text(pid)
            except OSError:
                pass  # exited meanwhile
    try:
        (parent / "cgroup.subtree_control").write_text(
            " ".join(f"+{c}" for c in wanted if c not in enabled))
    except OSError:
        return set()
    return set(wanted)


def _hand_down(cgroup: Path) -> None:
    offered = (cgroup / "cgroup.controllers").read_text().split()
    enabled = (cgroup / "cgroup.subtree_control").read_text().split()
    missing = [c for c in (*CONTROLLERS, *OPTIONAL) if c in offered and c not in enabled]
    if missing:
        (cgroup / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in missing))


def _mkdir(path: Path) -> None:
    """A new cgroup (cgroupfs fills it with its interface files)."""
    path.mkdir(exist_ok=True)


def available() -> bool:
    if unified():
        return v2_parent() is not None
    return all(_usable(c) for c in CONTROLLERS)


def _usable(controller: str) -> bool:
    return os.access(ROOT / controller, os.W_OK) and (ROOT / controller / "cgroup.procs").exists()


def make(name: str, memory_bytes: int, max_processes: int,
         cpus: float | None = 1.0) -> list[Path]:
    """The cgroups ``name`` with their limits set: memory, pids and (where the cpu
    controller is there and ``cpus`` is set) a quota of ``cpus`` cores. [] without
    cgroups. A kernel joins each by writing its pid to ``cgroup.procs``."""
    quota = max(1000, int(cpus * CFS_PERIOD_US)) if cpus else None
    if unified():
        found = v2_parent()
        if found is None:
            return []
        parent, controllers = found
        knobs = {"memory.max": memory_bytes, "memory.swap.max": 0, "pids.max": max_processes}
        if quota and "cpu" in controllers:
            knobs["cpu.max"] = f"{quota} {CFS_PERIOD_US}"
        return [_made(parent / name, knobs)]
    if not available():
        return []
    limits = [("memory", {"memory.limit_in_bytes": memory_bytes}),
              ("pids", {"pids.max": max_processes})]
    if quota and _usable("cpu"):
        limits.append(("cpu", {"cpu.cfs_period_us": CFS_PERIOD_US, "cpu.cfs_quota_us": quota}))
    return [_made(ROOT / controller / PARENT / name, knobs) for controller, knobs in limits]


def _made(path: Path, knobs: dict) -> Path:
    if unified():
        _mkdir(path)
    else:
        path.mkdir(parents=True, exist_ok=True)
    for knob, value in knobs.items():
        try:
            (path / knob).write_text(str(value))
        except FileNotFoundError:
            if knob != "memory.swap.max":  # no swap accounting: nothing to cap
                raise
    return path


def named(prefix: str) -> list[Path]:
    """Every cgroup of ours whose name starts with ``prefix``."""
    if unified():
        parents = [found[0] for found in (v2_parent(),) if found is not None]
    else:
        parents = [ROOT / c / PARENT for c in (*CONTROLLERS, *OPTIONAL)]
    return [cg for p in parents for cg in p.glob(f"{prefix}*") if cg.is_dir()]


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
    kill = path / "cgroup.kill"  # v2, Linux 5.14+: the kernel kills them all at once
    while path.exists():
        if kill.exists():
            try:
                kill.write_text("1")
            except OSError:
                pass
        kill_all(_members(path), timeout=max(0.1, deadline - time.monotonic()))
        try:
            _rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            pass  # the kernel still counts an exiting process as a member
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _rmdir(path: Path) -> None:
    path.rmdir()


def memory_limit_hit(paths: list[Path]) -> bool:
    for path in paths:
        try:
            if (path / "memory.events").exists():  # v2: times the limit was hit
                events = _events(path / "memory.events")
                if events.get("max", 0) > 0 or events.get("oom_kill", 0) > 0:
                    return True
            elif int((path / "memory.failcnt").read_text()) > 0:
                return True
        except (OSError, ValueError):
            pass
    return False


def process_limit_hits(paths: list[Path]) -> int:
    """How often a fork was refused by the pids cgroup (``pids.events``, v1 and v2)."""
    return sum(_events(path / "pids.events").get("max", 0) for path in paths)


def _events(path: Path) -> dict[str, int]:
    try:
        pairs = (line.split() for line in path.read_text().splitlines())
        return {p[0]: int(p[1]) for p in pairs if len(p) == 2}
    except (OSError, ValueError):
        return {}
