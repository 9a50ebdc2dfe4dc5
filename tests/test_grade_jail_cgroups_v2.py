"""cgroups.py on a cgroup v2 host, against a directory laid out like cgroupfs (this
machine has cgroup v1: the v2 code is checked here, not on a real v2 host).

The fake: a new cgroup gets the interface files cgroupfs would give it, with the
controllers its parent hands down; writes are plain file writes (what was written
is what the test reads back)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from course_tools.grade import cgroups

pytestmark = [pytest.mark.start_method_independent, pytest.mark.timeout(30)]


def fake_cgroup(path: Path, controllers: str, procs: str = "") -> Path:
    path.mkdir(exist_ok=True)
    for name, text in {"cgroup.controllers": controllers, "cgroup.subtree_control": "",
                       "cgroup.procs": procs, "cgroup.kill": "", "memory.events": "",
                       "pids.events": ""}.items():
        (path / name).write_text(text)
    return path


@pytest.fixture
def v2(tmp_path, monkeypatch):
    """A fake v2 hierarchy as ROOT, with memory, pids and cpu offered at the top."""
    root = fake_cgroup(tmp_path / "cgroup", "cpuset cpu io memory pids")
    monkeypatch.setattr(cgroups, "ROOT", root)

    def mkdir(path: Path) -> None:
        if not path.exists():
            handed = " ".join(sorted(
                w.lstrip("+") for w in (path.parent / "cgroup.subtree_control").read_text().split()))
            fake_cgroup(path, handed)

    monkeypatch.setattr(cgroups, "_mkdir", mkdir)
    monkeypatch.setattr(cgroups, "_rmdir", shutil.rmtree)
    return root


def read(path: Path) -> str:
    return path.read_text().strip()


def test_root_makes_a_capped_cgroup_under_course_grade(v2, monkeypatch):
    monkeypatch.setattr(cgroups.os, "geteuid", lambda: 0)
    assert cgroups.unified() and cgroups.available()
    [cg] = cgroups.make("run-0-k1", 512 << 20, 64, 0.5)
    assert cg == v2 / "course-grade" / "run-0-k1"
    assert read(v2 / "cgroup.subtree_control") == "+memory +pids +cpu"
    assert read(v2 / "course-grade" / "cgroup.subtree_control") == "+memory +pids +cpu"
    assert read(cg / "memory.max") == str(512 << 20) and read(cg / "memory.swap.max") == "0"
    assert read(cg / "pids.max") == "64"
    assert read(cg / "cpu.max") == "50000 100000"
    assert cgroups.named("run-0-") == [cg]


def test_no_cpu_controller_no_cpu_cap(v2, monkeypatch):
    monkeypatch.setattr(cgroups.os, "geteuid", lambda: 0)
    (v2 / "cgroup.controllers").write_text("memory pids")
    [cg] = cgroups.make("run-0-k1", 1 << 30, 64, 1.0)
    assert not (cg / "cpu.max").exists() and read(cg / "pids.max") == "64"


def test_memory_or_pids_missing_means_no_cgroups(v2, monkeypatch):
    monkeypatch.setattr(cgroups.os, "geteuid", lambda: 0)
    (v2 / "cgroup.controllers").write_text("cpu memory")
    assert cgroups.make("run-0-k1", 1 << 30, 64) == []
    assert not cgroups.available()


def test_without_root_the_delegated_own_cgroup_hands_down(v2, monkeypatch):
    """The grader's processes move to a leaf, the kernels' cgroups sit beside it; a
    worker (in the leaf) finds the same parent."""
    monkeypatch.setattr(cgroups.os, "geteuid", lambda: 1000)
    user = fake_cgroup(v2 / "user.slice", "cpu memory pids")
    scope = fake_cgroup(user / "grade.scope", "cpu memory pids", procs="4242\n")
    monkeypatch.setattr(cgroups, "own_cgroup", lambda: scope)
    [cg] = cgroups.make("run-1-k2", 256 << 20, 32, 1.0)
    assert cg == scope / "run-1-k2"
    assert read(scope / "grader" / "cgroup.procs") == "4242"
    assert read(scope / "cgroup.subtree_control") == "+memory +pids +cpu"
    assert read(cg / "cpu.max") == "100000 100000"
    monkeypatch.setattr(cgroups, "own_cgroup", lambda: scope / "grader")
    assert cgroups.named("run-1-") == [cg]


def test_without_root_and_no_delegation_no_cgroups(v2, monkeypatch):
    monkeypatch.setattr(cgroups.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(cgroups, "own_cgroup", lambda: v2 / "user.slice")
    fake_cgroup(v2 / "user.slice", "cpu memory pids")
    monkeypatch.setattr(cgroups.os, "access", lambda path, mode: False)
    assert cgroups.make("run-0-k1", 1 << 30, 64) == []


def test_own_cgroup_reads_the_unified_line(v2):
    table = "1:name=systemd:/x\n0::/user.slice/user-1000.slice/app.slice/grade.scope\n"
    assert cgroups.own_cgroup(table) == v2 / "user.slice/user-1000.slice/app.slice/grade.scope"
    assert cgroups.own_cgroup("4:memory:/a\n") == v2  # no v2 line: the top


def test_limits_hit_and_kill(v2, monkeypatch):
    monkeypatch.setattr(cgroups.os, "geteuid", lambda: 0)
    [cg] = cgroups.make("run-0-k1", 1 << 30, 64)
    assert not cgroups.memory_limit_hit([cg]) and cgroups.process_limit_hits([cg]) == 0
    (cg / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (cg / "pids.events").write_text("max 7\n")
    assert cgroups.memory_limit_hit([cg]) and cgroups.process_limit_hits([cg]) == 7
    kill = cg / "cgroup.kill"
    written = []
    real_write = Path.write_text
    monkeypatch.setattr(Path, "write_text",
                        lambda self, text, *a, **k: written.append((self, text))
                        or real_write(self, text, *a, **k))
    assert cgroups.remove(cg, timeout=2)
    assert (kill, "1") in written and not cg.exists()
