"""The time limits, with a kernel that ignores interrupts: the per-notebook limit
ends it (cells after it fail with a message), and the hard per-submission limit
kills the worker and everything it started; a fresh worker grades the next one."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
import zipfile

import pytest
from grading_fixtures import course as fx

from tests.plugins import leftovers as course_leftovers
from course_tools.grade import sandbox

pytestmark = [
    pytest.mark.start_method_independent, pytest.mark.slow(42),
    pytest.mark.timeout(300),
    pytest.mark.skipif(sandbox.probe() is not None, reason="no sandbox here"),
]

SPIN = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
SLOW = "import time\ntime.sleep(10)\n"


def grade(root, *args):
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "course_tools.grade.cli", "ga", "--course", str(root),
         "--workers", "1", "--no-feedback", *args],
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (root / "grades" / "ga.csv").open() as fh:
        return {r["student_id"]: r for r in csv.DictReader(fh)}, time.monotonic() - start


def test_notebook_limit_and_hard_limit(tmp_path):
    root = fx.make_course(tmp_path / "course")
    fx.make_submission(root, "a_slow", SLOW + fx.CORRECT)
    # b_good hands in through the LMS: a zip named the Canvas way
    good = fx.make_submission(root, "b_good")
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.write(good, "bgood_4711_0815_ga.ipynb")  # <login>_<ids>_<file>
    shutil.rmtree(root / "submitted" / "b_good")

    # 8 s of cell time per notebook: the 10 s answer cell is stopped at 8 s and
    # the test cells after it are not run
    rows, _ = grade(root, "--cell-timeout", "30", "--notebook-timeout", "8", "--lms", str(export))
    assert float(rows["bgood"]["score"]) == fx.MAX_SCORE
    shutil.move(root / "submitted" / "bgood", root / "submitted" / "b_good")
    slow = rows["a_slow"]
    assert "timeout in cell 2 (answer)" in slow["reasons"]
    assert "notebook time limit reached: cell 3 (test_square)" in slow["reasons"]
    assert float(slow["score"]) == 0

    # a kernel that ignores interrupts, under a hard limit of 8 s: its worker and
    # everything it started are killed, and a fresh worker grades the next student
    fx.make_submission(root, "a0_spin", SPIN + fx.CORRECT)
    rows, _ = grade(root, "--force", "--student", "a0_spin", "--student", "b_good",
                    "--cell-timeout", "60", "--notebook-timeout", "60", "--hard-limit", "8")
    spin = rows["a0_spin"]
    assert spin["status"] == "failed"
    assert "hard limit of 8 s (everything killed)" in spin["reasons"]
    assert float(spin["score"]) == 0
    assert float(rows["b_good"]["score"]) == fx.MAX_SCORE
    assert leftovers() == []


def leftovers(grace: float = 5.0) -> list[str]:
    """Descendants still running after a short grace (a killed process takes a moment)."""
    return [course_leftovers.describe(p) for p in course_leftovers.leftover_processes(grace)]
