"""What a student's files can do to the grader's own process (issue 16), checked
without grading: none of these may crash, block or flood the parent."""

from __future__ import annotations

import csv
import json
import os
import threading
from pathlib import Path

import pytest

from course_tools.grade import gradebook, intake, outcome, report
from course_tools.grade.records import KernelRun, RunRecord

pytestmark = pytest.mark.start_method_independent


def submitted(tmp_path: Path, student: str = "alice") -> Path:
    folder = tmp_path / "course" / "submitted" / student / "hw1"
    folder.mkdir(parents=True)
    return folder


def deep_tree(top: Path, depth: int) -> None:
    """``depth`` nested folders under ``top``, made without Python's recursion."""
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            new = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)


DEPTH = 1200  # deeper than Python's default recursion limit (1000)


@pytest.fixture
def deep(tmp_path):
    """Where to make a deep tree; removed afterwards (pytest's own clean-up of old
    temporary folders recurses, and would crash on it in a later session)."""
    yield tmp_path
    intake.remove_tree(tmp_path)


def test_fingerprint_survives_names_that_are_not_utf8_and_deep_trees(deep):
    folder = submitted(deep)
    (folder / "hw1.ipynb").write_text("{}")
    before = intake.fingerprint(deep / "course", "hw1", "alice")
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.py"), "w") as fh:
        fh.write("x")
    deep_tree(folder, DEPTH)
    after = intake.fingerprint(deep / "course", "hw1", "alice")
    assert after != before


def test_a_deep_tree_left_in_autograded_is_removed(deep):
    top = deep / "autograded" / "alice" / "hw1"
    top.mkdir(parents=True)
    deep_tree(top, DEPTH)
    intake.remove_tree(top)
    assert not top.exists()


def test_student_ids_with_a_trailing_newline_are_refused(tmp_path):
    submitted(tmp_path, "bob\n")
    submitted(tmp_path, "carol")
    students, bad = intake.submissions(tmp_path / "course", "hw1")
    assert students == ["carol"] and bad == ["bob\n"]


@pytest.mark.timeout(20)
def test_timestamp_that_is_a_fifo_or_a_link_to_dev_zero_is_ignored(tmp_path):
    fifo = submitted(tmp_path, "fifo")
    os.mkfifo(fifo / "timestamp.txt")
    zero = submitted(tmp_path, "zero")
    (zero / "timestamp.txt").symlink_to("/dev/zero")
    good = submitted(tmp_path, "good")
    (good / "timestamp.txt").write_text("2026-11-26 12:00:00.000000 UTC")
    done = {}
    reader = threading.Thread(target=lambda: done.update(
        {p.parent.name: gradebook.submitted_timestamp(p) for p in (fifo, zero, good)}),
        daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a student's timestamp.txt blocked"
    assert done["fifo"] is None and done["zero"] is None
    assert done["good"].year == 2026


def test_terminal_escapes_never_reach_the_summary_or_the_csv(tmp_path):
    rows = [{"student_id": "alice", "score": 0.0, "max_score": 3.0, "status": "graded",
             "reasons": ["process left running after the notebook (killed): \x1b[2J\x1b]0;pwn\x07x"],
             "seconds": 1.0}]
    table = report.summary_table(rows)
    report.write_csv(tmp_path / "g.csv", rows)
    written = (tmp_path / "g.csv").read_text()
    for text in (table, written):
        assert "\x1b" not in text and "\x07" not in text
    with (tmp_path / "g.csv").open() as fh:
        assert "?[2J" in next(csv.DictReader(fh))["reasons"]


def test_hundreds_of_leftovers_make_one_short_reason(tmp_path):
    status = tmp_path / "status.json"
    status.write_text(json.dumps({"leftovers": ["python -c spin"] * 200}))
    reasons = outcome.leftover_reasons(RunRecord(kernels=[KernelRun([], str(status))]))
    assert len(reasons) == 1 and reasons[0].startswith("200 processes left running")
    assert len(reasons[0]) <= 400
    rows = [{"student_id": "flood", "score": 0, "max_score": 3, "status": "graded",
             "reasons": ["x" * 5000], "seconds": 1}]
    report.write_csv(tmp_path / "g.csv", rows)
    with (tmp_path / "g.csv").open() as fh:
        assert len(next(csv.DictReader(fh))["reasons"]) <= report.MAX_CSV_REASONS
