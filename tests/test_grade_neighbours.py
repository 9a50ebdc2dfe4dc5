"""A student's score does not depend on who is graded beside them (issue 16): an
honest homework 1, graded at the same time as a submission that keeps eight busy
loops running for a minute, gets the full marks it gets alone. Each kernel (and
each grading run) may use one core at once (a cgroup CPU quota), so the busy
neighbour cannot take the core the honest student's checks need."""

from __future__ import annotations

import nbformat
import pytest

from course_tools.grade import cgroups
from tests.support.course import make_course, submission, submit
from tests.support.nbgrader_cli import course_grade, grade_rows, leftovers, nbgrader
from tests.support.sandboxing import sandbox_required  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.start_method_independent, pytest.mark.slow(70), pytest.mark.timeout(600),
    pytest.mark.usefixtures("sandbox_required"),
    pytest.mark.skipif(not cgroups.available(), reason="no cgroups here: CPU shares unenforced"),
]

HOG = """import subprocess, sys, time
spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(8)]
time.sleep(60)
"""


def test_honest_student_beside_a_cpu_hog_gets_full_marks(tmp_path):
    course = make_course(tmp_path, "hw1")
    nbgrader(["generate_assignment", "hw1", "--force"], course, timeout=180)
    release_nb = course / "release" / "hw1" / "hw1.ipynb"
    submit(course, "hw1", "honest", submission(release_nb, "hw1", "correct"))
    hog = submission(release_nb, "hw1", "blank")
    hog.cells.insert(0, nbformat.v4.new_code_cell(HOG))
    submit(course, "hw1", "hog", hog)
    proc = course_grade(course, "hw1", "--workers", "2", "--no-feedback", timeout=540)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = grade_rows(course, "hw1")
    assert float(rows["honest"]["score"]) == 10.0, rows["honest"]["reasons"]
    assert float(rows["hog"]["score"]) == 0.0
    assert "left running after the notebook (killed)" in rows["hog"]["reasons"]
    assert leftovers() == []
