"""Checks of the grader's parts that need no sandbox: LMS import, which
submissions are found, the refusal to grade unsandboxed, the report, the
released form of a test cell, how failures are classified, and the executor's
bounds on a plain kernel (the nbclient/jupyter_client hooks the grader relies on)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from traitlets.config import Config

from course_tools.grade import cli, intake, outcome, precheck, report, sandbox
from course_tools.grade.execute import BoundedExecute
from course_tools.grade.records import RunRecord
from course_tools.grade.slots import SlotConfig, WorkerSlots, WorkerStartError

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


def test_released_form_drops_hidden_tests_with_the_course_markers():
    source = "assert f(1) == 1\n# BEGIN SECRET\nassert f(2) == 4\n# END SECRET\nassert f(0) == 0"
    c = Config()
    c.ClearHiddenTests.begin_test_delimeter = "BEGIN SECRET"
    c.ClearHiddenTests.end_test_delimeter = "END SECRET"
    assert precheck.released_forms(source, c) == {
        source, "assert f(1) == 1\nassert f(0) == 0"}
    # nbgrader's default markers do not match these: nothing is hidden
    assert precheck.released_forms(source, Config()) == {source}
    assert precheck.released_forms("### BEGIN HIDDEN TESTS\nx = 1", Config()) == {
        "### BEGIN HIDDEN TESTS\nx = 1"}  # never closed: only the source form


def test_failures_are_classified_by_exception_type():
    record = RunRecord()
    assert outcome.failure_reason([DeadKernelError("x"), ValueError()], record) == (
        "kernel crashed")
    assert outcome.failure_reason([CellTimeoutError("Kernel died")], record).startswith(
        "a cell kept running after its timeout")
    # the words in a message do not matter, only the type
    assert outcome.failure_reason([RuntimeError("DeadKernelError: Kernel died")], record) == (
        "grading error: RuntimeError: DeadKernelError: Kernel died")
    assert outcome.failure_reason([], record).startswith("grading error:")


@pytest.fixture
def run_dir():
    """A grading run's folder: short (ipc socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="grade-unit-", dir="/tmp"))
    (path / "kernels").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _notebook(*sources: str):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.mark.slow(12)
def test_executor_bounds_a_plain_kernel_and_reports_through_its_config(run_dir, monkeypatch):
    """Unsandboxed, so no root needed: the settings reach the kernel manager and the
    executor through the Config alone, the record comes back, and the bounds hold.
    Fails if an nbclient/jupyter_client release stops calling the hooks used."""
    monkeypatch.chdir(run_dir)
    record = RunRecord()
    c = Config()
    c.SandboxKernelManager.sandboxed = False
    c.SandboxKernelManager.run_dir = str(run_dir)
    # a slot of its own: ending a slot kills every process marked with its name, and
    # another test's WorkerSlots(run_id="unit") ended "unit-0" while this kernel ran
    slot = f"limits-{os.getpid()}"
    c.SandboxKernelManager.slot = slot
    c.SandboxKernelManager.record = record
    c.BoundedExecute.record = record
    # 12 s: room for the kernel's start and the first cells on a busy 2-core machine (4 s
    # was once not enough in a full make test: the kernel was killed before cell 3 began)
    c.BoundedExecute.notebook_timeout = 12
    c.BoundedExecute.max_output_bytes = 2000
    c.Execute.timeout = 60
    nb = _notebook("import os\nprint(os.environ['COURSE_GRADE_SLOT'])", "print('x' * 5000)",
                   "import time\ntime.sleep(90)", "1 + 1")
    started = time.monotonic()
    nb, _ = BoundedExecute(config=c).preprocess(nb, {"unique_key": "limits"})
    assert time.monotonic() - started < 60
    marker, loud, sleeper, last = ([o.get("text", "") or o.get("ename", "") for o in cell.outputs]
                                   for cell in nb.cells)
    assert marker == [f"{slot}\n"]  # the slot marker, set through the Config
    assert any("output beyond" in text for text in loud)
    assert sum(map(len, loud)) < 2000  # capped
    assert "CellTimeoutError" in sleeper  # cut at the notebook's time limit
    assert last == ["NotebookTimeoutError"]  # not run
    assert record.failures == []

    with pytest.raises(DeadKernelError):
        BoundedExecute(config=c).preprocess(_notebook("1", "import os\nos._exit(3)"),
                                            {"unique_key": "dies"})
    [failure] = record.failures  # the same record object, through traitlets' copies
    assert (failure.notebook, failure.cell_index) == ("dies", 1)
    assert isinstance(failure.error, DeadKernelError)


def test_a_worker_that_cannot_start_stops_the_run_with_a_message():
    """Not an endless restart loop: no submission could be graded anyway."""
    cfg = SlotConfig(run_dir="/proc/no-such-run", course_root="/nonexistent", sandboxed=False)
    slots = WorkerSlots(1, cfg, run_id=f"nostart-{os.getpid()}")  # its own slot names
    graded = []
    try:
        with pytest.raises(WorkerStartError, match="did not start"):
            slots.run(["job"], deadline_for=lambda job: 60, on_result=graded.append,
                      on_timeout=graded.append, on_crash=graded.append)
    finally:
        slots.close()
    assert graded == [] and not slots.slots[0].proc.is_alive()


@pytest.mark.slow(20)
def test_first_grading_registers_an_assignment_that_is_only_in_source(tmp_path):
    """A fresh clone has no gradebook: `make grade` registers the assignment from
    source/ (as nbgrader generate_assignment would) and says so."""
    from course_tools.grade import gradebook
    from tests.support import course as fx
    from tests.support.nbgrader_cli import course_grade

    root = fx.ga_course(tmp_path / "course")
    (root / "gradebook.db").unlink()
    proc = course_grade(root, fx.GA, "--no-sandbox", timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "registering it from source/ga" in proc.stderr
    assert gradebook.assignment_notebooks(f"sqlite:///{root / 'gradebook.db'}", fx.GA) == [fx.GA]
    missing = course_grade(root, "nope", "--no-sandbox", timeout=120)
    assert missing.returncode == 2 and "neither in the gradebook" in missing.stderr


@pytest.mark.slow(20)
def test_a_late_submission_is_penalised_as_the_course_says(tmp_path):
    """The course's LateSubmissionPlugin decides the penalty, on the scores that count:
    with penalty_method "zero", a correct notebook handed in a day late scores 0, as
    plain nbgrader autograde would store it (course-grade once ignored the setting)."""
    from datetime import datetime

    from nbgrader.api import Gradebook

    from tests.support import course as fx
    from tests.support.nbgrader_cli import course_grade, grade_rows

    root = fx.ga_course(tmp_path / "course", 'c.LateSubmissionPlugin.penalty_method = "zero"\n')
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(fx.GA, duedate=datetime(2026, 11, 25, 12))
    fx.ga_submit(root, "late")  # handed in at fx.TIMESTAMP, a day after the due date
    fx.ga_submit(root, "wrong", "def square(x):\n    return x + x\n")
    proc = course_grade(root, fx.GA, "--no-sandbox", timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        late = gb.find_submission_notebook(fx.GA, fx.GA, "late")
        assert (late.score, late.late_submission_penalty) == (fx.GA_MAX_SCORE, fx.GA_MAX_SCORE)
    assert float(grade_rows(root, fx.GA)["late"]["score"]) == 0.0


def test_an_extension_on_an_assignment_without_a_due_date_changes_nothing(tmp_path):
    """nbgrader adds an extension to the due date, even a missing one (None +
    timedelta): the student with the extension got "grading error: TypeError". Now
    both are graded in full, and the teacher's gradebook keeps the extension."""
    from nbgrader.api import Gradebook

    from tests.support import course as fx
    from tests.support.nbgrader_cli import course_grade, grade_rows

    root = fx.ga_course(tmp_path / "course")
    for student in ("extended", "plain"):
        fx.ga_submit(root, student)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(fx.GA)  # no due date
        gb.update_or_create_student("extended")
        gb.update_or_create_submission(fx.GA, "extended")
        gb.grant_extension(fx.GA, "extended", days=2)
    proc = course_grade(root, fx.GA, "--no-sandbox", timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = grade_rows(root, fx.GA)
    for student in ("extended", "plain"):
        assert (rows[student]["status"], float(rows[student]["score"])) == (
            "graded", fx.GA_MAX_SCORE), rows[student]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert gb.find_submission(fx.GA, "extended").extension.days == 2


def test_sandboxed_tests_fail_without_a_sandbox_unless_opted_out(pytester, monkeypatch):
    """No silent skips: where the sandbox cannot work, a grader test fails saying why;
    SANDBOX_TESTS=skip skips it, with the reason."""
    pytester.makepyfile(test_graded="""
        import pytest
        from course_tools.grade import sandbox
        from tests.support.sandboxing import sandbox_required

        sandbox.probe = lambda: "no namespaces in this container"
        pytestmark = pytest.mark.usefixtures("sandbox_required")

        def test_grading():
            pass
    """)
    monkeypatch.delenv("SANDBOX_TESTS", raising=False)
    failed = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    failed.assert_outcomes(errors=1)
    assert "no namespaces in this container" in failed.stdout.str()
    monkeypatch.setenv("SANDBOX_TESTS", "skip")
    skipped = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-rs")
    skipped.assert_outcomes(skipped=1)
    assert "SANDBOX_TESTS=skip" in skipped.stdout.str()


def test_the_next_run_cleans_what_a_killed_run_left(tmp_path):
    """A run killed outright leaves its launchers, cgroups and folder; the next run
    removes them, and never touches a run that is alive."""
    import subprocess
    import sys

    from course_tools.grade import cgroups, stale

    gone = Path(tempfile.mkdtemp(prefix=stale.PREFIX, dir=stale.RUNS))
    (gone / stale.LOCK).touch()
    alive = Path(tempfile.mkdtemp(prefix=stale.PREFIX, dir=stale.RUNS))
    # a sandbox probe killed halfway, and one running now
    old_probe = Path(tempfile.mkdtemp(prefix=f"{stale.PREFIX}probe-", dir=stale.RUNS))
    os.utime(old_probe, (time.time() - stale.PROBE_AGE - 60,) * 2)
    new_probe = Path(tempfile.mkdtemp(prefix=f"{stale.PREFIX}probe-", dir=stale.RUNS))
    held = stale.hold(alive)
    env = {**os.environ, sandbox.MARKER: f"{gone.name}-0"}
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    caps = cgroups.make(f"{gone.name}-0-k", 1 << 30, 16)
    try:
        assert gone.name in stale.clean()
        assert launcher.wait(10) is not None
        assert not gone.exists() and alive.exists()
        assert all(not c.exists() for c in caps)
        assert not old_probe.exists() and new_probe.exists()
    finally:
        shutil.rmtree(new_probe, ignore_errors=True)
        shutil.rmtree(old_probe, ignore_errors=True)
        launcher.kill()
        held.close()
        shutil.rmtree(alive, ignore_errors=True)
        shutil.rmtree(gone, ignore_errors=True)
        for c in caps:
            cgroups.remove(c)
