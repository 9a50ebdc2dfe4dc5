"""Throw-away nbgrader courses and the submissions students would hand in.

Two kinds of course:

- a copy of this repository's course (``make_course``) with the homework sample
  submissions: a sample in tests/submissions/hwN/<name>.py is what the student's
  answer cell writes (the module's text). The submission notebook is the release
  with its answer cell replaced by ``%%writefile hwN_solution.py`` + that text; for
  ``notebook_workers`` the magic line is left out, as a student who deleted it
  would. "correct" is the source notebook's own solution, "blank" the release
  untouched, so neither can drift from the notebooks;
- a tiny generated course (``ga_course``) for the grader's tests and benchmark:
  assignment ``ga``, one notebook with an answer cell (``square``) and two graded
  test cells (2 + 1 points), the second using a spawn Pool.

Either way ``submit`` puts a notebook where ``nbgrader collect`` would.
"""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from .nbgrader_cli import env_with_bin, nbgrader

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "submissions"
NO_MAGIC = {"notebook_workers"}  # samples whose answer cell lost its %%writefile line
TIMESTAMP = "2026-11-26 12:00:00.000000 UTC"


_EMPTY_GRADEBOOK = Path(tempfile.gettempdir()) / f"mp-course-empty-gradebook-{os.getpid()}.db"


def seed_gradebook(course: Path) -> None:
    """Give ``course`` the empty gradebook.db nbgrader would create on first use.

    nbgrader creates one by running ``alembic heads`` in a subprocess (about 1 CPU
    second); the suite builds dozens of courses, so each test process creates one
    the same way, once, and copies it."""
    if not _EMPTY_GRADEBOOK.exists():
        partial = _EMPTY_GRADEBOOK.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        subprocess.run([sys.executable, "-c", "import sys; from nbgrader.api import Gradebook; "
                        "Gradebook('sqlite:///' + sys.argv[1]).close()", str(partial)],
                       env=env_with_bin(), check=True, timeout=120, capture_output=True)
        partial.replace(_EMPTY_GRADEBOOK)
        atexit.register(_EMPTY_GRADEBOOK.unlink, missing_ok=True)
    shutil.copy(_EMPTY_GRADEBOOK, course / "gradebook.db")


def make_course(tmp: Path, *assignments: str, with_release: bool = False) -> Path:
    """A copy of the course root with only what nbgrader needs for ``assignments``."""
    course = tmp / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    seed_gradebook(course)
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
    magic = "" if name in NO_MAGIC else f"%%writefile {assignment}_solution.py\n"
    cell.source = magic + sample_text(assignment, name)
    return nb


def submit(course: Path, assignment: str, student: str, nb, notebook: str | None = None) -> Path:
    """Place a submission where `nbgrader collect` would put it (a resubmission
    replaces it); returns the notebook's path."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{notebook or assignment}.ipynb"
    nbformat.write(nb, path)
    (folder / "timestamp.txt").write_text(TIMESTAMP)
    return path


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


# The generated course ---------------------------------------------------------

GA = "ga"
GA_MAX_SCORE = 3.0
GA_CORRECT = "def square(x):\n    return x * x\n"


def _meta(grade_id: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def ga_source_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Squares (3 points)\nWrite `square(x)`."),
        nbformat.v4.new_code_cell(
            "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
            metadata=_meta("answer", solution=True)),
        nbformat.v4.new_code_cell(
            "# checks square on small numbers\nassert square(3) == 9\nassert square(-2) == 4",
            metadata=_meta("test_square", grade=True, locked=True, points=2)),
        nbformat.v4.new_code_cell(
            "# checks square runs in spawn workers\nimport multiprocessing as mp\n"
            "with mp.get_context('spawn').Pool(2) as pool:\n"
            "    assert pool.map(abs, [-1, -2]) == [1, 2]\n"
            "assert square(4) == 16",
            metadata=_meta("test_pool", grade=True, locked=True, points=1)),
    ]
    return nb


def ga_course(root: Path, extra_config: str = "") -> Path:
    """Create the generated course at ``root`` and run ``nbgrader generate_assignment``."""
    src = root / "source" / GA
    src.mkdir(parents=True, exist_ok=True)
    nbformat.write(ga_source_notebook(), src / f"{GA}.ipynb")
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'fixture'\n" + extra_config)
    if "db_url" not in extra_config:  # a gradebook elsewhere (PostgreSQL): none here
        seed_gradebook(root)
    nbgrader(["generate_assignment", GA, "--force"], root, timeout=120)
    return root


def ga_release(root: Path) -> nbformat.NotebookNode:
    return nbformat.read(root / "release" / GA / f"{GA}.ipynb", as_version=4)


def ga_submit(root: Path, student: str, answer: str = GA_CORRECT, *,
              edit_test: str | None = None, duplicate_answer: bool = False) -> Path:
    """A ``ga`` submission: the release with this answer (and other edits)."""
    nb = copy.deepcopy(ga_release(root))
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid == "answer":
            cell.source = answer
        elif gid == "test_square" and edit_test is not None:
            cell.source = edit_test
    if duplicate_answer:
        dup = copy.deepcopy(nb.cells[1])
        dup.id = "duplicated-answer"
        nb.cells.insert(2, dup)
    return submit(root, GA, student, nb)


def ga_submit_raw(root: Path, student: str, data: bytes) -> Path:
    """A ``ga`` submission whose notebook file holds exactly ``data``."""
    dest = root / "submitted" / student / GA / f"{GA}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest
