"""A tiny nbgrader course for the grader's tests and benchmark.

Assignment ``ga`` has one notebook ``ga.ipynb``: an answer cell (``square``)
and two graded test cells (2 + 1 points), the second using a spawn Pool.
``make_submission`` writes a student's copy with the answer cell replaced (and
other edits), as a student would submit it.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat

ASSIGNMENT = "ga"
MAX_SCORE = 3.0
CORRECT = "def square(x):\n    return x * x\n"


def _meta(grade_id: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook() -> nbformat.NotebookNode:
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


def make_course(root: Path, python_bin: str | None = None, extra_config: str = "") -> Path:
    """Create the course and run ``nbgrader generate_assignment``; returns root."""
    src = root / "source" / ASSIGNMENT
    src.mkdir(parents=True, exist_ok=True)
    nbformat.write(source_notebook(), src / f"{ASSIGNMENT}.ipynb")
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'fixture'\n" + extra_config)
    bindir = Path(python_bin or sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(bindir / "nbgrader"), "generate_assignment", ASSIGNMENT, "--force"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{proc.stderr[-3000:]}")
    return root


def release_notebook(root: Path) -> nbformat.NotebookNode:
    return nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def make_submission(root: Path, student: str, answer: str = CORRECT, *,
                    edit_test: str | None = None, duplicate_answer: bool = False) -> Path:
    nb = copy.deepcopy(release_notebook(root))
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "answer":
            cell.source = answer
        elif gid == "test_square" and edit_test is not None:
            cell.source = edit_test
    if duplicate_answer:
        dup = copy.deepcopy(nb.cells[1])
        dup.id = "duplicated-answer"
        nb.cells.insert(2, dup)
    dest = root / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


def write_raw(root: Path, student: str, data: bytes) -> Path:
    dest = root / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest
