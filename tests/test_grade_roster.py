"""Names and timestamps (issue 17): a roster (plain CSV or an LMS export) fills
nbgrader's student table, and every graded submission gets a time: timestamp.txt's,
as nbgrader records it, else the notebook's file time. Unit level: no grading run
(tests/test_grade_limits.py checks both in a real one)."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course_tools.grade import cli, gradebook, precheck, roster

pytestmark = pytest.mark.start_method_independent


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    """nbgrader creates a gradebook with the alembic beside this interpreter."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def write(tmp_path, text: str, name="students.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def by_id(people):
    return {p.id: (p.first_name, p.last_name, p.email) for p in people}


def test_plain_roster_with_bom_any_case_and_order_and_bad_rows_by_line(tmp_path):
    path = write(tmp_path, "\ufeffEmail, Last_Name ,ID,First Name\n"
                 "ada@uni.edu,Lovelace,ada,Ada\n"
                 ",,,\n"  # blank: ignored
                 "bob@uni.edu,Builder,,Bob\n"  # line 4: no id
                 "eve@uni.edu,Evil,eve\nnewline,Eve\n"  # line 5: an id with a space... split
                 "x@uni.edu,X,bad id,X\n"  # line 7: unusable id
                 "ada2@uni.edu,Again,ada,Ada\n"  # line 8: listed again
                 "c@uni.edu,\x1b[2JCurie<script>,marie,Marie\x07  Sk\n")
    people, problems = roster.read(path)
    got = by_id(people)
    assert got["ada"] == ("Ada", "Lovelace", "ada@uni.edu")
    # control characters shown as ?, no markup brackets, single spaces
    assert got["marie"] == ("Marie? Sk", "?[2JCuriescript", "c@uni.edu")
    assert "bob" not in got and "bad id" not in got
    assert any(p.startswith("students.csv line 4: no student id") for p in problems)
    assert any("line 7: 'bad id' is not a usable student id" in p for p in problems)
    assert any("line 8: student ada listed again" in p for p in problems)


def test_canvas_export_names_and_the_id_column_that_matches_the_submissions(tmp_path):
    path = write(tmp_path, '"Student","ID","SIS User ID","SIS Login ID","Section","HW1 (1)"\n'
                 '"    Points Possible","","","","","3"\n'
                 '"Lovelace, Ada","4711","S001","alovelace","A","3"\n'
                 '"Student, Test","4712","","teststudent","A","0"\n'
                 '"Curie, Marie","4713","S002","mcurie","A","2"\n')
    people, problems = roster.read(path, known_ids={"alovelace", "mcurie"})
    assert by_id(people) == {"alovelace": ("Ada", "Lovelace", None),
                             "mcurie": ("Marie", "Curie", None),
                             "teststudent": ("Test", "Student", None)}
    assert problems == []
    # without submissions to match, the first id column in the course's order wins
    people, _ = roster.read(path)
    assert {p.id for p in people} == {"4711", "4712", "4713"}


def test_moodle_export_with_semicolons_in_latin1(tmp_path):
    path = write(tmp_path, "First name;Surname;ID number;Institution;Email address\n"
                 "Jos\xe9;Mart\xednez;s123;Uni;jose@uni.edu\n", encoding="latin-1")
    people, problems = roster.read(path, known_ids={"s123"})
    assert by_id(people) == {"s123": ("Jos\xe9", "Mart\xednez", "jose@uni.edu")} and not problems


def test_unusable_rosters_are_reported_never_raised(tmp_path):
    assert roster.read(tmp_path / "nope.csv")[1][0].endswith("cannot read (No such file or "
                                                             "directory)")
    assert "no id column" in roster.read(write(tmp_path, "name,mail\nA,a@b\n"))[1][0]
    assert roster.read(write(tmp_path, ""))[1] == [f"{tmp_path / 'students.csv'}: empty"]
    people, problems = roster.read(write(tmp_path, 'id,name\n"unclosed,quote\n'))
    assert people == [] and problems


def test_roster_fills_the_student_table_and_a_bad_one_stops_the_run(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db) as gb:
        gb.add_student("ada")  # graded before, without a name
    path = write(tmp_path, "id,first_name,last_name,email\nada,Ada,Lovelace,ada@uni.edu\n"
                 "bob,Bob,Builder,\n")
    assert cli.add_roster(path, db, ["ada", "zoe"])
    with Gradebook(db) as gb:
        names = {s.id: (s.first_name, s.last_name, s.email) for s in gb.students}
    assert names == {"ada": ("Ada", "Lovelace", "ada@uni.edu"), "bob": ("Bob", "Builder", None)}
    err = capsys.readouterr().err
    assert "2 student(s) named in the gradebook; 1 submitter(s) not in it: zoe" in err
    assert not cli.add_roster(write(tmp_path, "id\n\n", name="empty.csv"), db, [])
    assert "no usable student in the roster" in capsys.readouterr().err


FILE_TIME = datetime.fromtimestamp(1_780_000_000, timezone.utc).replace(tzinfo=None)


def submitted(tmp_path, student="ada"):
    folder = tmp_path / "course" / "submitted" / student / "hw1"
    folder.mkdir(parents=True)
    (folder / "hw1.ipynb").write_text("{}")
    os.utime(folder / "hw1.ipynb", (1_780_000_000, 1_780_000_000))
    return folder


def test_submission_time_is_timestamp_txt_else_the_file_time(tmp_path):
    with_stamp = submitted(tmp_path, "ada")
    (with_stamp / "timestamp.txt").write_text("2026-11-26 12:00:00.000000 UTC")
    assert gradebook.submission_time(with_stamp) == datetime(2026, 11, 26, 12)
    bare = submitted(tmp_path, "bob")
    assert gradebook.submission_time(bare) == FILE_TIME
    broken = submitted(tmp_path, "eve")
    (broken / "timestamp.txt").write_text("not a time")
    assert gradebook.submission_time(broken) == FILE_TIME
    assert gradebook.submission_time(tmp_path / "nowhere") is None

    # what nbgrader reads in the worker: the same time, in nbgrader's format (a bad or
    # huge timestamp.txt would otherwise stop nbgrader for that student)
    (broken / "timestamp.txt").write_bytes(b"9" * (1 << 20))
    top = precheck.private_copy(broken, tmp_path / "work", "eve", "hw1")
    stamp = (top / "eve" / "hw1" / "timestamp.txt").read_text()
    assert gradebook.parse_utc(stamp) == FILE_TIME


def test_grades_travel_as_numbers_and_every_submission_gets_its_time(tmp_path):
    """The worker's private gradebook -> grades_of -> store into the teacher's: the
    same scores, comments, penalty and time; not graded: zeros, still with a time."""
    private, teacher = (f"sqlite:///{tmp_path / n}.db" for n in ("private", "teacher"))
    for db in (private, teacher):
        with Gradebook(db) as gb:
            gb.add_assignment("hw1")
            gb.add_notebook("hw1", "hw1")
            gb.add_solution_cell("answer", "hw1", "hw1")
            gb.add_grade_cell("test_a", "hw1", "hw1", max_score=2, cell_type="code")
            gb.add_grade_cell("test_b", "hw1", "hw1", max_score=1, cell_type="code")
    when = datetime(2026, 11, 26, 12)
    with Gradebook(private) as gb:
        gb.add_student("ada")
        nb = gb.update_or_create_submission("hw1", "ada", timestamp=when).notebooks[0]
        for g in nb.grades:
            g.auto_score, g.needs_manual_grade = (2, False) if g.name == "test_a" else (0, False)
        nb.comments[0].auto_comment = "No response."
        nb.late_submission_penalty = 0.5
        gb.db.commit()
    grades = gradebook.grades_of(private, "hw1", "ada")
    assert grades["timestamp"] == "2026-11-26T12:00:00"
    gradebook.store(teacher, "hw1", "ada", grades, datetime.fromisoformat(grades["timestamp"]))
    gradebook.store(teacher, "hw1", "bob", None, datetime(2026, 11, 27))  # not graded
    with Gradebook(teacher) as gb:
        ada, bob = gb.find_submission("hw1", "ada"), gb.find_submission("hw1", "bob")
        assert (ada.score, ada.timestamp, ada.notebooks[0].late_submission_penalty) == (
            2, when, 0.5)
        assert ada.notebooks[0].comments[0].auto_comment == "No response."
        assert (bob.score, bob.timestamp) == (0, datetime(2026, 11, 27))
        assert not any(g.needs_manual_grade for g in bob.notebooks[0].grades)


def test_a_submission_placed_by_hand_gets_the_timestamp_file_collect_would_write(tmp_path):
    """formgrader takes a submission as autograded only when the gradebook's time equals
    its timestamp.txt's: one placed by hand gets that file, with its file time."""
    from course_tools.grade.gradebook import file_time, record_file_time, submitted_timestamp

    by_hand = tmp_path / "by_hand"
    by_hand.mkdir()
    (by_hand / "hw1.ipynb").write_text("{}")
    os.utime(by_hand / "hw1.ipynb", (1_780_000_000, 1_780_000_000))
    record_file_time(by_hand)
    assert submitted_timestamp(by_hand) == file_time(by_hand) == FILE_TIME
    collected = tmp_path / "collected"
    collected.mkdir()
    (collected / "hw1.ipynb").write_text("{}")
    (collected / "timestamp.txt").write_text("2026-11-26 12:00:00.000000 UTC")
    record_file_time(collected)
    assert (collected / "timestamp.txt").read_text() == "2026-11-26 12:00:00.000000 UTC"
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "hw1.ipynb").write_text("{}")
    (linked / "timestamp.txt").symlink_to(tmp_path / "elsewhere")
    record_file_time(linked)
    assert not (tmp_path / "elsewhere").exists()
