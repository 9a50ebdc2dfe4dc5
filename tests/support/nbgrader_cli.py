"""Bounded runs of the nbgrader command line and of the course's grader
(``course-grade``, as ``make grade`` runs it), and reading what they wrote."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.plugins import leftovers as _leftovers

BIN = Path(sys.executable).parent


def env_with_bin() -> dict[str, str]:
    """This environment with this interpreter's bin/ first on PATH: nbgrader shells
    out to tools installed there (alembic)."""
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def nbgrader(args: list[str], cwd: Path, timeout: float, env: dict | None = None) -> str:
    """Run one nbgrader command, bounded; return its combined output (fails the test
    on a non-zero exit)."""
    full_env = env_with_bin()
    full_env.update(env or {})
    proc = subprocess.run([str(BIN / "nbgrader"), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} exited {proc.returncode}:\n{out[-4000:]}"
    return out


def course_grade(course: Path, assignment: str, *args: str,
                 timeout: float = 300) -> subprocess.CompletedProcess:
    """``course-grade ASSIGNMENT --course COURSE ARGS...``, bounded; the caller checks
    the exit code (some tests expect a refusal)."""
    return subprocess.run(
        [sys.executable, "-m", "course_tools.grade.cli", assignment, "--course", str(course),
         *args], capture_output=True, text=True, timeout=timeout)


def grade_rows(course: Path, assignment: str) -> dict[str, dict]:
    """course-grade's CSV (grades/<assignment>.csv), one row per student."""
    with (course / "grades" / f"{assignment}.csv").open(newline="") as fh:
        return {r["student_id"]: r for r in csv.DictReader(fh)}


def scores(grades_csv: Path, assignment: str) -> dict[str, float]:
    """Scores of one assignment in ``nbgrader export``'s CSV."""
    with open(grades_csv, newline="") as fh:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(fh)
                if row["assignment"] == assignment}


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def leftovers(grace: float = 5.0) -> list[str]:
    """This process's descendants still running after a short grace (a killed
    process takes a moment): what a grading run must never leave."""
    return [_leftovers.describe(p) for p in _leftovers.leftover_processes(grace)]
