"""The homework notebooks through `nbgrader validate` (what a student's Validate
button runs): under the start method of the run (`make test` runs this under
forkserver and fork; spawn is the round trips'), each release notebook answered
with the reference solution passes its public checks, and homework 3's source
notebook passes, hidden checks included (they run under the course's start method;
those of hw1 and hw2 always run under spawn, so the round trips' spawn run already
covers them: test_hw_roundtrip and test_hw3 autograde the reference answers with the
source's hidden tests). Every blank release fails each of its graded cells
(`validate --invert`). nbgrader validate exits 0 either way (jupyter/nbgrader#1908),
so its output is read. (That release/ is exactly what generate_assignment makes from
source/ is checked in test_hw_roundtrip.py and test_hw3.py.)"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.plugins.start_methods import selected_methods
from tests.support.course import ROOT, make_course, submission
from tests.support.nbgrader_cli import nbgrader

pytestmark = pytest.mark.timeout(400)
ASSIGNMENTS = ("hw1", "hw2", "hw3")


def _graded_cells(path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(1 for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))


def validate(course: Path, paths: list[Path], home: Path, *options: str) -> str:
    """`nbgrader validate` over ``paths`` in the course copy, bounded; its combined output."""
    return nbgrader(["validate", *options, *map(str, paths)], course, timeout=360,
                    env={"HOME": str(home)})


def _answered_release(course: Path, assignment: str) -> Path:
    """The release notebook with the reference answer, where a student would have it."""
    path = course / "answered" / assignment / f"{assignment}.ipynb"
    path.parent.mkdir(parents=True)
    release_nb = course / "release" / assignment / f"{assignment}.ipynb"
    nbformat.write(submission(release_nb, assignment, "correct"), path)
    return path


@pytest.mark.slow(30)
def test_reference_answers_pass_under_this_start_method(tmp_path, mp_start_method, request):
    if mp_start_method == "spawn" and len(selected_methods(request.config)) > 1:
        pytest.skip("spawn is covered by the round trips (test_hw_roundtrip, test_hw3): they "
                    "autograde the reference answers with the source's hidden tests under spawn")
    course = make_course(tmp_path, *ASSIGNMENTS, with_release=True)
    paths = [_answered_release(course, "hw1"), _answered_release(course, "hw2"),
             course / "source" / "hw3" / "hw3.ipynb"]
    out = validate(course, paths, tmp_path)
    assert out.count("Success! Your notebook passes all the tests.") == len(paths), \
        f"under {mp_start_method}:\n{out[-4000:]}"
    assert "VALIDATION FAILED" not in out


@pytest.mark.start_method_independent
@pytest.mark.slow(12)
def test_blank_releases_fail_every_graded_cell(tmp_path):
    course = make_course(tmp_path, *ASSIGNMENTS, with_release=True)
    paths = [course / "release" / a / f"{a}.ipynb" for a in ASSIGNMENTS]
    out = validate(course, paths, tmp_path, "--invert")
    assert out.count("Success! The notebook does not pass any tests.") == len(ASSIGNMENTS), \
        out[-4000:]
    assert "passed" not in out.replace("does not pass", ""), out[-4000:]
    assert all(_graded_cells(ROOT / "release" / a / f"{a}.ipynb") >= 4 for a in ASSIGNMENTS)
