"""The teacher's gradebook: a read-only snapshot for the workers, and the one
place (the parent process, one student at a time) where grades are written.

Grades are written by nbgrader's own ``SaveAutoGrades`` and
``AssignLatePenalties`` preprocessors, run on the autograded notebook, so the
scores are exactly what ``nbgrader autograde`` would have stored.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import sqlalchemy
from nbgrader.api import Base, Gradebook, MissingEntry
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
from nbgrader.utils import parse_utc


def _sqlite_path(db_url: str) -> str | None:
    prefix = "sqlite:///"
    return db_url[len(prefix):] if db_url.startswith(prefix) else None


def snapshot(db_url: str, dest: Path) -> None:
    """Copy the gradebook into a new SQLite file (works for any db_url)."""
    src = _sqlite_path(db_url)
    if src is not None:
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dest) as b:
            a.backup(b)
        return
    with Gradebook(f"sqlite:///{dest}"):
        pass  # creates nbgrader's schema
    src_engine = sqlalchemy.create_engine(db_url)
    dst_engine = sqlalchemy.create_engine(f"sqlite:///{dest}")
    tables = Base.metadata.sorted_tables
    with src_engine.connect() as s, dst_engine.begin() as d:
        for table in reversed(tables):
            d.execute(table.delete())
        for table in tables:
            rows = [dict(r) for r in s.execute(sqlalchemy.select(table)).mappings()]
            if rows:
                d.execute(table.insert(), rows)
    src_engine.dispose()
    dst_engine.dispose()


def register(course: Path, assignment: str, timeout: float = 300) -> str | None:
    """Put ``source/<assignment>`` into the gradebook the way a teacher would
    (``nbgrader generate_assignment``, which also writes ``release/``); the words of
    the failure, or None."""
    nbgrader = Path(sys.executable).with_name("nbgrader")
    try:
        done = subprocess.run([str(nbgrader), "generate_assignment", assignment, "--force"],
                              cwd=course, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nbgrader generate_assignment {assignment} failed: {exc}"
    if done.returncode != 0:
        return (f"nbgrader generate_assignment {assignment} failed: "
                + (done.stderr or done.stdout).strip()[-500:])
    return None


def assignment_notebooks(db_url: str, assignment: str) -> list[str]:
    with Gradebook(db_url) as gb:
        try:
            return [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            return []


def submitted_timestamp(folder: Path):
    """The submission's ``timestamp.txt``, read safely (the student's folder may hold a
    FIFO, a link to /dev/zero or a huge file there): a small regular file only,
    never blocking; None otherwise."""
    try:
        fd = os.open(folder / "timestamp.txt", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        text = fh.read(200).decode("utf-8", "replace").strip()
    try:
        return parse_utc(text) if text else None
    except ValueError:
        return None


def record(course: str, db_url: str, assignment: str, student: str, use_outputs: bool,
           decided: dict[str, bool] | None = None) -> None:
    """Store one student's autograde result in the gradebook.

    With ``use_outputs`` the grades come from ``autograded/<student>/<assignment>``;
    a notebook that is absent there (missing, invalid, grading killed) scores 0. The
    grade cells in ``decided`` (the grading run's verdict: grade_id -> passed) get
    full points or none, whatever their outputs in the notebook say.
    """
    decided = decided or {}
    timestamp = submitted_timestamp(Path(course, "submitted", student, assignment))
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        kwargs = {"timestamp": timestamp} if timestamp else {}
        gb.update_or_create_submission(assignment, student, **kwargs)
        notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
    autograded = Path(course, "autograded", student, assignment)
    for name in notebooks:
        path = autograded / f"{name}.ipynb"
        present: set[str] = set()
        if use_outputs and path.is_file():
            nb = nbformat.read(path, as_version=4)
            resources = {"nbgrader": {"db_url": db_url, "assignment": assignment,
                                      "notebook": name, "student": student}}
            nb, resources = SaveAutoGrades().preprocess(nb, resources)
            AssignLatePenalties().preprocess(nb, resources)
            present = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                       if c.metadata.get("nbgrader", {}).get("grade")}
        with Gradebook(db_url) as gb:
            sub_nb = gb.find_submission_notebook(name, assignment, student)
            for grade in sub_nb.grades:
                if grade.name in present and grade.name in decided:
                    grade.auto_score = grade.max_score if decided[grade.name] else 0
                elif grade.name not in present:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
            gb.db.commit()


def scores(db_url: str, assignment: str, student: str) -> tuple[float, float]:
    with Gradebook(db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return 0.0, float(gb.find_assignment(assignment).max_score)
        return float(sub.score), float(sub.max_score)
