"""`course-grade` on the real homework 1 with the homework's sample submissions:
the sandboxed, parallel grader gives the scores and feedback words that plain
`nbgrader autograde` gives them (expected values shared with test_hw_roundtrip)."""

from __future__ import annotations

import html
import subprocess
import sys

import pytest
from hw_course import make_course, nbgrader, strip_ansi, submission, submit
from test_hw_roundtrip import HW1

from course_tools.grade import sandbox

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
    proc = subprocess.run(
        [sys.executable, "-m", "course_tools.grade.cli", "hw1", "--course", str(course),
         "--workers", "2"],
        capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    import csv

    with (course / "grades" / "hw1.csv").open() as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh)}
    assert {n: float(rows[n]["score"]) for n in SAMPLES} == {n: float(HW1[n][0]) for n in SAMPLES}
    assert "worker not picklable under spawn" in rows["notebook_workers"]["reasons"]
    assert rows["correct"]["reasons"] == ""
    for name in SAMPLES:
        page = course / "feedback" / name / "hw1" / "hw1.html"
        text = strip_ansi(html.unescape(page.read_text()))
        for words in HW1[name][1]:
            assert words in text, f"feedback of {name} lacks {words!r}"
