"""`course-grade` on the real homework 1 with the homework's sample submissions:
the sandboxed, parallel grader gives the scores and feedback words that plain
`nbgrader autograde` gives them (expected values shared with test_hw_roundtrip)."""

from __future__ import annotations

import html

import pytest
from test_hw_roundtrip import HW1

from course_tools.grade import sandbox
from tests.support.course import make_course, submission, submit
from tests.support.nbgrader_cli import course_grade, grade_rows, nbgrader, strip_ansi

pytestmark = [
    pytest.mark.start_method_independent, pytest.mark.slow(25),
    pytest.mark.timeout(400),
    pytest.mark.skipif(sandbox.probe() is not None, reason="no sandbox here"),
]

# the deadlocking and slow samples are left to test_hw_roundtrip (each costs the
# checker's full 30-60 s wait); these three cover pass, blank and spawn failure
SAMPLES = ["correct", "blank", "notebook_workers"]


def test_hw1_samples_graded_in_the_sandbox(tmp_path):
    course = make_course(tmp_path, "hw1")
    nbgrader(["generate_assignment", "hw1", "--force"], course, timeout=180)
    release_nb = course / "release" / "hw1" / "hw1.ipynb"
    for name in SAMPLES:
        submit(course, "hw1", name, submission(release_nb, "hw1", name))
    proc = course_grade(course, "hw1", "--workers", "2", timeout=360)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    rows = grade_rows(course, "hw1")
    assert {n: float(rows[n]["score"]) for n in SAMPLES} == {n: float(HW1[n][0]) for n in SAMPLES}
    assert "worker not picklable under spawn" in rows["notebook_workers"]["reasons"]
    assert rows["correct"]["reasons"] == ""
    for name in SAMPLES:
        page = course / "feedback" / name / "hw1" / "hw1.html"
        text = strip_ansi(html.unescape(page.read_text()))
        for words in HW1[name][1]:
            assert words in text, f"feedback of {name} lacks {words!r}"
