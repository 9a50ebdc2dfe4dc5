"""Shared by the homework 1/2 tests: a throw-away copy of the course root, the
sample submissions built from the committed release, and bounded nbgrader calls.

A sample in tests/submissions/hwN/<name>.py is what the student's answer cell
writes (the module's text). The submission notebook is the committed release with
its answer cell replaced by ``%%writefile hwN_solution.py`` + that text; for
``notebook_workers`` the magic line is left out, as a student who deleted it would.
"correct" is the source notebook's own solution, "blank" the release untouched, so
neither can drift from the notebooks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SAMPLES = ROOT / "tests" / "submissions"
NO_MAGIC = {"notebook_workers"}  # samples whose answer cell lost its %%writefile line


def nbgrader(args: list[str], cwd: Path, timeout: float, env: dict | None = None) -> str:
    """Run one nbgrader command, bounded; return its combined output."""
    full_env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    full_env.update(env or {})
    proc = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} exited {proc.returncode}:\n{out[-4000:]}"
    return out


def make_course(tmp: Path, *assignments: str, with_release: bool = False) -> Path:
    """A copy of the course root with only what nbgrader needs for ``assignments``."""
    course = tmp / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for a in assignments:
        shutil.copytree(ROOT / "source" / a, course / "source" / a,
                        ignore=shutil.ignore_patterns("*_solution.py", "__pycache__"))
        if with_release:
            shutil.copytree(ROOT / "release" / a, course / "release" / a,
                            ignore=shutil.ignore_patterns("*_solution.py", "__pycache__"))
    return course


def _grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def solution_text(assignment: str) -> str:
    """The module text of the source notebook's answer cell (without the magic line)."""
    nb = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if _grade_id(c) == "answer")
    return cell.source.split("\n", 1)[1]


def sample_text(assignment: str, name: str) -> str:
    if name == "correct":
        return solution_text(assignment)
    return (SAMPLES / assignment / f"{name}.py").read_text()


def submission(release_nb: Path, assignment: str, name: str):
    """The notebook a student who wrote sample ``name`` would submit."""
    nb = nbformat.read(release_nb, as_version=4)
    if name == "blank":
        return nb
    cell = next(c for c in nb.cells if _grade_id(c) == "answer")
    text = sample_text(assignment, name)
    magic = "" if name in NO_MAGIC else f"%%writefile {assignment}_solution.py\n"
    cell.source = magic + text
    return nb


def submit(course: Path, assignment: str, student: str, nb) -> None:
    """Place a submission where `nbgrader collect` would put it."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")
    (folder / "timestamp.txt").write_text("2026-11-26 12:00:00.000000 UTC")


def submit_via_exchange(course: Path, assignment: str, student: str, name: str) -> None:
    """The student's own path, through nbgrader's exchange: the teacher releases, the
    student fetches, answers (sample ``name``) and submits, the teacher collects."""
    exchange = course.parent / "exchange"
    if not exchange.exists():
        exchange.mkdir(mode=0o777)
        exchange.chmod(0o777)
    opts = [f"--Exchange.root={exchange}", "--log-level=WARN"]
    nbgrader(["release_assignment", assignment, *opts], course, timeout=120)
    home = course.parent / f"student-{student}"
    home.mkdir()
    who = {"USER": student, "LOGNAME": student}
    nbgrader(["fetch_assignment", assignment, "--course", "mp-course", *opts], home, 120, who)
    fetched = home / assignment / f"{assignment}.ipynb"
    nbformat.write(submission(fetched, assignment, name), fetched)
    nbgrader(["submit", assignment, "--course", "mp-course", "--student", student, *opts],
             home, 120, who)
    nbgrader(["collect", assignment, *opts], course, timeout=120)


def scores(grades_csv: Path, assignment: str) -> dict[str, float]:
    import csv

    with open(grades_csv, newline="") as fh:
        return {
            row["student_id"]: float(row["score"])
            for row in csv.DictReader(fh)
            if row["assignment"] == assignment
        }


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
