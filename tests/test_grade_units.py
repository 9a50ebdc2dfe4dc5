"""Fast checks of the grader's parts that need no kernel: LMS import, which
submissions are found, the refusal to grade unsandboxed, the report."""

from __future__ import annotations

import zipfile

import pytest

from course_tools.grade import cli, intake, report, sandbox

pytestmark = pytest.mark.start_method_independent

NB = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def test_lms_zip_is_imported_by_student_name(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr("alice_12345_67890_hw1.ipynb", NB)  # Canvas-style name
        zf.writestr("bob/hw1.ipynb", NB)  # one folder per student
        zf.writestr("carol.ipynb", NB)  # single-notebook assignment: the name is the student
        zf.writestr("../evil_hw1.ipynb", NB)  # path traversal: refused
        zf.writestr("__MACOSX/._alice_hw1.ipynb", b"junk")
        zf.writestr("dave_hw1.txt", b"not a notebook")
    course = tmp_path / "course"
    problems = intake.import_lms(export, course, "hw1", ["hw1"])
    got = sorted(p.relative_to(course).as_posix() for p in course.rglob("*.ipynb"))
    assert got == ["submitted/alice/hw1/hw1.ipynb", "submitted/bob/hw1/hw1.ipynb",
                   "submitted/carol/hw1/hw1.ipynb"]
    assert not (tmp_path / "evil_hw1.ipynb").exists()
    assert any("../evil_hw1.ipynb" in p for p in problems)
    assert any("dave_hw1.txt" in p for p in problems)


def test_lms_folder_with_several_notebooks_matches_by_suffix(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "erin_part1.ipynb").write_bytes(NB)
    (export / "erin_part2.ipynb").write_bytes(NB)
    (export / "frank.ipynb").write_bytes(NB)  # which notebook? cannot tell
    course = tmp_path / "course"
    problems = intake.import_lms(export, course, "hw2", ["part1", "part2"])
    assert (course / "submitted/erin/hw2/part1.ipynb").is_file()
    assert (course / "submitted/erin/hw2/part2.ipynb").is_file()
    assert [p for p in problems if p.startswith("frank.ipynb")]


def test_submissions_reject_unusable_student_folder_names(tmp_path):
    for name in ("alice", "bad name", "x*y", "bob"):
        (tmp_path / "submitted" / name / "hw1").mkdir(parents=True)
    (tmp_path / "submitted" / "carol" / "hw2").mkdir(parents=True)  # other assignment
    ok, bad = intake.submissions(tmp_path, "hw1")
    assert ok == ["alice", "bob"]
    assert sorted(bad) == ["bad name", "x*y"]


def test_fingerprint_changes_when_the_submission_changes(tmp_path):
    folder = tmp_path / "submitted" / "alice" / "hw1"
    folder.mkdir(parents=True)
    (folder / "hw1.ipynb").write_bytes(NB)
    before = intake.fingerprint(tmp_path, "hw1", "alice")
    assert intake.fingerprint(tmp_path, "hw1", "alice") == before
    (folder / "hw1.ipynb").write_bytes(NB + b" ")
    assert intake.fingerprint(tmp_path, "hw1", "alice") != before


def test_refuses_to_grade_when_the_sandbox_is_unavailable(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "probe", lambda: "no namespaces in this container")
    monkeypatch.setattr(cli.gradebook, "assignment_notebooks", lambda db, a: ["hw1"])
    (tmp_path / "submitted" / "alice" / "hw1").mkdir(parents=True)
    assert cli.main(["hw1", "--course", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "no namespaces in this container" in err and "--no-sandbox" in err
    assert not (tmp_path / "grades").exists() and not (tmp_path / "autograded").exists()


def test_summary_table_and_csv(tmp_path):
    rows = [{"student_id": "alice", "score": 3.0, "max_score": 3.0, "status": "graded",
             "reasons": []},
            {"student_id": "bob", "score": 0.0, "max_score": 3.0, "status": "failed",
             "reasons": ["timeout in cell 2 (answer) of ga.ipynb", "kernel crashed"]}]
    table = report.summary_table(rows)
    assert "alice" in table and "3/3" in table and "- timeout in cell 2" in table
    report.write_csv(tmp_path / "g.csv", rows)
    text = (tmp_path / "g.csv").read_text()
    assert text.splitlines()[0] == "student_id,score,max_score,status,reasons,seconds"
    assert "timeout in cell 2 (answer) of ga.ipynb; kernel crashed" in text
