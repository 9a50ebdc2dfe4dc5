"""The time limits, with a kernel that ignores interrupts: the per-notebook limit
ends it (cells after it fail with a message), and the hard per-submission limit
kills the worker and everything it started; a fresh worker grades the next one.
The good student hands in through an LMS export (``--lms``); the names come from a
roster (``--roster``), and every submission gets a time in the gradebook."""

from __future__ import annotations

import shutil
import zipfile
from datetime import datetime

import pytest
from nbgrader.api import Gradebook

from tests.support import course as fx
from tests.support.nbgrader_cli import course_grade, grade_rows, leftovers
from tests.support.sandboxing import sandbox_required  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.start_method_independent, pytest.mark.slow(42),
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("sandbox_required"),
]

SPIN = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
SLOW = "import time\ntime.sleep(10)\n"


def grade(root, *args) -> dict[str, dict]:
    proc = course_grade(root, fx.GA, "--workers", "1", "--no-feedback", *args, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return grade_rows(root, fx.GA)


def test_notebook_limit_and_hard_limit(tmp_path):
    root = fx.ga_course(tmp_path / "course")
    fx.ga_submit(root, "a_slow", SLOW + fx.GA_CORRECT)
    # b_good hands in through the LMS: a zip named the Canvas way
    good = fx.ga_submit(root, "b_good")
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.write(good, "bgood_4711_0815_ga.ipynb")  # <login>_<ids>_<file>
    shutil.rmtree(root / "submitted" / "b_good")

    # the class list, as an LMS exports it (names for formgrader's student list)
    roster = tmp_path / "roster.csv"
    roster.write_text("Student,ID,SIS Login ID,Email address\n"
                      '"Good, Bea",4711,bgood,bea@uni.edu\n"Slow, Al",4712,a_slow,al@uni.edu\n')

    # 8 s of cell time per notebook: the 10 s answer cell is stopped at 8 s and
    # the test cells after it are not run
    rows = grade(root, "--cell-timeout", "30", "--notebook-timeout", "8", "--lms", str(export),
                 "--roster", str(roster))
    assert float(rows["bgood"]["score"]) == fx.GA_MAX_SCORE
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        # a time for every submission: timestamp.txt's, else (the LMS's) the file time
        when = {s.student.id: s.timestamp for s in gb.find_assignment(fx.GA).submissions}
        assert when["a_slow"] == datetime(2026, 11, 26, 12) and when["bgood"] is not None
        assert gb.find_student("bgood").first_name == "Bea"
        assert gb.find_student("a_slow").last_name == "Slow"
    shutil.move(root / "submitted" / "bgood", root / "submitted" / "b_good")
    slow = rows["a_slow"]
    assert "timeout in cell 2 (answer)" in slow["reasons"]
    assert "notebook time limit reached: cell 3 (test_square)" in slow["reasons"]
    assert float(slow["score"]) == 0

    # a kernel that ignores interrupts, under a hard limit of 12 s (b_good must fit in
    # it too, on a busy machine): its worker and everything it started are killed,
    # and a fresh worker grades the next student
    fx.ga_submit(root, "a0_spin", SPIN + fx.GA_CORRECT)
    rows = grade(root, "--force", "--student", "a0_spin", "--student", "b_good",
                 "--cell-timeout", "60", "--notebook-timeout", "60", "--hard-limit", "12")
    spin = rows["a0_spin"]
    assert spin["status"] == "failed"
    assert "hard limit of 12 s (everything killed)" in spin["reasons"]
    assert float(spin["score"]) == 0
    assert float(rows["b_good"]["score"]) == fx.GA_MAX_SCORE, rows["b_good"]["reasons"]
    assert leftovers() == []
