"""The teacher's gradebook: read-only copies for the workers (the whole of it for
the local ones; for a cluster's, the assignment's structure and, per task, the one
student graded), and the one place (the parent process, one student at a time)
where grades are written.

A worker grades into its private copy of the snapshot: nbgrader's own
``SaveAutoGrades`` and ``AssignLatePenalties`` preprocessors, run on the autograded
notebook (``record``), so the scores are exactly what ``nbgrader autograde`` would
have stored. What they stored comes back to the parent as a few numbers
(``grades_of``), and the parent writes those into the teacher's gradebook
(``store``): it never reads a student's notebook, whatever its size.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from datetime import datetime, timezone
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
    """Copy the whole gradebook into a new SQLite file (works for any db_url): what the
    local grader's workers copy, on this machine."""
    src = _sqlite_path(db_url)
    if src is not None:
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dest) as b:
            a.backup(b)
        return
    _copy(db_url, dest, {t.name: sqlalchemy.select(t) for t in Base.metadata.sorted_tables})


# What a worker machine gets (:mod:`.cluster`): the assignment's structure, shared by
# every task of a run, in which no person appears; and, with each task, the rows of
# the student it grades: what nbgrader's Autograde reads of them (the extension and
# earlier grades decide the late penalty and needs_manual_grade, the manual scores
# and comments the feedback pages), the student's id alone, never a name or email.
STRUCTURE = ("course", "assignment", "notebook", "base_cell", "grade_cells",
             "solution_cells", "task_cells", "source_cell")
OWN = ("submitted_assignment", "submitted_notebook", "grade", "comment")


def assignment_snapshot(db_url: str, assignment: str, dest: Path) -> None:
    """A new SQLite gradebook at ``dest`` holding ``assignment`` (its due date, its
    notebooks and their cells) and the course ids alone: no student, no other
    assignment, no submission, no grade (works for any db_url)."""
    t = Base.metadata.tables
    a, nb, cell = t["assignment"], t["notebook"], t["base_cell"]

    def of_notebooks(query, notebook_id):
        return (query.join(nb, notebook_id == nb.c.id).join(a, nb.c.assignment_id == a.c.id)
                .where(a.c.name == assignment))

    select = sqlalchemy.select
    queries = {"course": select(t["course"]),
               "assignment": select(a).where(a.c.name == assignment),
               "notebook": select(nb).join(a, nb.c.assignment_id == a.c.id)
                                     .where(a.c.name == assignment),
               "base_cell": of_notebooks(select(cell), cell.c.notebook_id),
               "source_cell": of_notebooks(select(t["source_cell"]),
                                           t["source_cell"].c.notebook_id)}
    for name in ("grade_cells", "solution_cells", "task_cells"):
        kind = t[name]
        queries[name] = of_notebooks(select(kind).join(cell, kind.c.id == cell.c.id),
                                     cell.c.notebook_id)
    _copy(db_url, dest, queries)


def own_rows(db_url: str, assignment: str, students) -> dict[str, dict[str, list[dict]]]:
    """For each of ``students`` with a submission of ``assignment`` in the gradebook,
    its rows of the OWN tables: {student: {table: [row]}}."""
    t = Base.metadata.tables
    a, sa, sn = t["assignment"], t["submitted_assignment"], t["submitted_notebook"]
    who = sa.c.student_id.label("_student")

    def of_submissions(query):
        return query.join(a, sa.c.assignment_id == a.c.id).where(a.c.name == assignment)

    select = sqlalchemy.select
    queries = {"submitted_assignment": of_submissions(select(sa, who)),
               "submitted_notebook": of_submissions(
                   select(sn, who).join(sa, sn.c.assignment_id == sa.c.id))}
    for name in ("grade", "comment"):
        queries[name] = of_submissions(
            select(t[name], who).join(sn, t[name].c.notebook_id == sn.c.id)
                                .join(sa, sn.c.assignment_id == sa.c.id))
    wanted, out = set(students), {}
    engine = sqlalchemy.create_engine(db_url)
    try:
        with engine.connect() as conn:
            for name, query in queries.items():
                for row in conn.execute(query).mappings():
                    row = dict(row)
                    student = row.pop("_student")
                    if student in wanted:
                        out.setdefault(student, {n: [] for n in OWN})[name].append(row)
    finally:
        engine.dispose()
    return out


def add_student(db_path: Path, student: str, rows: dict[str, list[dict]]) -> None:
    """The worker's side: ``student`` (its id alone) and its rows (:func:`own_rows`)
    into its private copy of :func:`assignment_snapshot`, so that grading finds it on
    the roster whatever ``Autograde.create_student`` says."""
    if any(r["student_id"] != student for r in rows.get("submitted_assignment", [])):
        raise ValueError(f"another student's submission in the rows of {student!r}")
    engine = sqlalchemy.create_engine(f"sqlite:///{db_path}")
    try:
        with engine.begin() as conn:
            conn.execute(Base.metadata.tables["student"].insert(), [{"id": student}])
            for name in OWN:
                if rows.get(name):
                    conn.execute(Base.metadata.tables[name].insert(), rows[name])
    finally:
        engine.dispose()


def clear_moot_extensions(db_path: Path, assignment: str) -> None:
    """In a worker's private copy: an extension moves the due date, so on an assignment
    without one it changes nothing; but nbgrader adds it to the missing date
    (``SubmittedAssignment.duedate``: None + timedelta), and the TypeError failed that
    student's grading. Cleared in the copy only: the teacher's gradebook keeps it."""
    engine = sqlalchemy.create_engine(f"sqlite:///{db_path}")
    submitted = Base.metadata.tables["submitted_assignment"]
    assignments = Base.metadata.tables["assignment"]
    undated = sqlalchemy.select(assignments.c.id).where(
        assignments.c.name == assignment, assignments.c.duedate.is_(None))
    try:
        with engine.begin() as conn:
            conn.execute(submitted.update().where(submitted.c.assignment_id.in_(undated))
                         .values(extension=None))
    finally:
        engine.dispose()


def _copy(db_url: str, dest: Path, queries: dict) -> None:
    """A new SQLite gradebook at ``dest`` with nbgrader's schema, holding what each
    query (by table name) selects from the gradebook at ``db_url``."""
    with Gradebook(f"sqlite:///{dest}"):
        pass  # creates nbgrader's schema (and a course row: replaced below)
    src_engine = sqlalchemy.create_engine(db_url)
    dst_engine = sqlalchemy.create_engine(f"sqlite:///{dest}")
    tables = Base.metadata.sorted_tables
    try:
        with src_engine.connect() as s, dst_engine.begin() as d:
            for table in reversed(tables):
                d.execute(table.delete())
            for table in tables:
                if table.name not in queries:
                    continue
                rows = [dict(r) for r in s.execute(queries[table.name]).mappings()]
                if rows:
                    d.execute(table.insert(), rows)
    finally:
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
    except (ValueError, OverflowError):  # "99999...": dateutil overflows
        return None


def file_time(folder: Path) -> datetime | None:
    """When the newest submitted notebook was written (naive UTC, as nbgrader stores
    times); None without one. Only stats regular files, never reads them."""
    newest = None
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".ipynb") and entry.is_file(follow_symlinks=False):
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                    newest = mtime if newest is None else max(newest, mtime)
    except OSError:
        return None
    if newest is None:
        return None
    return datetime.fromtimestamp(newest, timezone.utc).replace(tzinfo=None)


def record_file_time(folder: Path) -> None:
    """A submission with no ``timestamp.txt`` (placed by hand, not by nbgrader's
    collect) gets one with its file time, as collect would write it: formgrader takes a
    submission as autograded only when the gradebook's time equals this file's."""
    when = None if os.path.lexists(folder / "timestamp.txt") else file_time(folder)
    if when is None:
        return
    try:
        fd = os.open(folder / "timestamp.txt",
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError:
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


def submission_time(folder: Path) -> datetime | None:
    """The time nbgrader would record (``timestamp.txt``), else the file time: every
    graded submission shows a time in formgrader."""
    return submitted_timestamp(folder) or file_time(folder)


def add_students(db_url: str, people) -> None:
    """Names and emails of a roster (:mod:`.roster`) into nbgrader's student table."""
    with Gradebook(db_url) as gb:
        for p in people:
            gb.update_or_create_student(p.id, first_name=p.first_name,
                                        last_name=p.last_name, email=p.email)


def record(course: str, db_url: str, assignment: str, student: str, use_outputs: bool,
           decided: dict[str, bool] | None = None, config=None) -> None:
    """Store one student's autograde result in the gradebook.

    With ``use_outputs`` the grades come from ``autograded/<student>/<assignment>``;
    a notebook that is absent there (missing, invalid, grading killed) scores 0. The
    grade cells in ``decided`` (the grading run's verdict: grade_id -> passed) get
    full points or none, whatever their outputs in the notebook say. The late penalty
    comes last, from those final scores, by the course's ``config`` (its
    ``LateSubmissionPlugin``: a ``penalty_method = "zero"`` takes the whole score).
    """
    decided = decided or {}
    timestamp = submission_time(Path(course, "submitted", student, assignment))
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
        if present:  # on the scores that count, as the course's settings say
            AssignLatePenalties(config=config).preprocess(nb, resources)


def grades_of(db_url: str, assignment: str, student: str) -> dict:
    """What grading stored for one student, small enough to send to the parent:
    per notebook, each grade's (auto score, needs manual grade), each comment's auto
    comment and the late penalty; the submission's timestamp (ISO)."""
    with Gradebook(db_url) as gb:
        sub = gb.find_submission(assignment, student)
        out = {"timestamp": sub.timestamp.isoformat() if sub.timestamp else None,
               "notebooks": {}}
        for nb in sub.notebooks:
            out["notebooks"][nb.name] = {
                "grades": {g.name: [g.auto_score, bool(g.needs_manual_grade)] for g in nb.grades},
                "comments": {c.name: c.auto_comment for c in nb.comments},
                "late_penalty": nb.late_submission_penalty,
            }
    return out


def store(db_url: str, assignment: str, student: str, grades: dict | None,
          timestamp: datetime | None) -> None:
    """Write one student's result into the teacher's gradebook: ``grades`` as
    ``grades_of`` returned them from the worker's copy, or None (not graded: every
    grade 0). Grades missing from ``grades`` score 0."""
    graded = (grades or {}).get("notebooks", {})
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        kwargs = {"timestamp": timestamp} if timestamp else {}
        sub = gb.update_or_create_submission(assignment, student, **kwargs)
        for nb in sub.notebooks:
            mine = graded.get(nb.name, {})
            scored, comments = mine.get("grades", {}), mine.get("comments", {})
            for grade in nb.grades:
                auto, manual = scored.get(grade.name, (0, False))
                grade.auto_score, grade.needs_manual_grade = auto, manual
            for comment in nb.comments:
                if comment.name in comments:
                    comment.auto_comment = comments[comment.name]
            nb.late_submission_penalty = mine.get("late_penalty")
        gb.db.commit()


def scores(db_url: str, assignment: str, student: str) -> tuple[float, float]:
    """(score, max score), the late penalty taken off as ``nbgrader export`` does."""
    with Gradebook(db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return 0.0, float(gb.find_assignment(assignment).max_score)
        penalty = float(sub.late_submission_penalty or 0.0)
        return max(0.0, float(sub.score) - penalty), float(sub.max_score)
