"""The grader's verdict (issue 15): ``python -I -m hwcheck.verdict ASSIGNMENT FOLDER --fd N``
runs every hidden check of every question outside the student's kernel, where no student
code can reach, and writes one JSON object to the descriptor it was given.

Run as root, the student's code runs as uid 65534 (``--student-uid``); otherwise as this
user (the uid part is then skipped, with its reason shown). Each hostile sample of
tests/submissions/forgery/ gets exactly what its real answer deserves: the reference
solutions pass, a blank answer fails every question with the stub's words (forgery or
not), a wrong answer fails every question however it forges, a partly right answer gets
its questions and no more, and no pickle a student's process sends is ever loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from notebook_cells import writefile_source

from hwcheck import spec
from hwcheck.isolated import run_isolated, runner_command
from tests.support.course import ROOT, SAMPLES, solution_text
from tests.support.sandboxing import checkout_usable_by, unusable_checkout

FORGERY = SAMPLES / "forgery"
MODULE = {"hw1": "hw1_solution", "hw2": "hw2_solution", "hw3": "hw3_server"}
QUESTIONS = {"hw1": ["q1", "q2", "q3"], "hw2": ["q1", "q2"], "hw3": ["q1", "q2", "q3", "q4", "q5"]}
# a partly right sample of each homework, and the questions it deserves (its README)
PARTLY = {"hw1": ("hw1/partly_right.py", {"q3"}), "hw2": ("hw2/unlocked.py", {"q1"}),
          "hw3": ("hw3/no_accept_loop.py", {"q2", "q3", "q4", "q5"})}
PROLOGUES = ("writes_report", "patches_checker", "hides_failures")
STUDENT_UID = 65534
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOT_ROOT = "not root: the student's code runs as this user (no uid to drop to)"
# As root the checker runs the student's code as STUDENT_UID outside any jail here: that
# user must be able to run this checkout (not one under a 0700 folder, where only the
# jailed grading tests, which mount what the code needs, can run it). Root's student
# code left as root could forge a verdict, so these tests are skipped then, saying why.
DROP = AS_ROOT and checkout_usable_by(65534)
NO_DROP = NOT_ROOT if not AS_ROOT else unusable_checkout(65534, "the student uid")

pytestmark = [pytest.mark.start_method_independent,
              pytest.mark.skipif(AS_ROOT and not DROP, reason=NO_DROP)]


@pytest.fixture(scope="module", autouse=True)
def _forgers_markers():
    """writes_report.py leaves /tmp/hwcheck-forged-<checker pid>-<start>: one per run."""
    yield
    for mark in Path(tempfile.gettempdir()).glob("hwcheck-forged-*"):
        mark.unlink(missing_ok=True)


def reference(assignment: str) -> str:
    if assignment == "hw3":
        return writefile_source(ROOT / "source" / "hw3" / "hw3.ipynb", "hw3_server")
    return solution_text(assignment)


def blank(assignment: str) -> str:
    return writefile_source(ROOT / "release" / assignment / f"{assignment}.ipynb",
                            MODULE[assignment])


def answer(tmp_path: Path, assignment: str, text: str, prologue: str | None = None) -> Path:
    folder = tmp_path / "answer"
    folder.mkdir()
    if prologue:
        text = (FORGERY / f"{prologue}.py").read_text() + "\n\n" + text
    (folder / f"{MODULE[assignment]}.py").write_text(text)
    return folder


def run_verdict(assignment: str, folder: Path, timeout: float = 600, **env: str) -> dict:
    """The verdict command as the grader runs it; its JSON, read from the pipe."""
    argv, full_env = runner_command()
    argv = [*argv[:-1], "hwcheck.verdict", assignment, str(folder)]
    if DROP:
        argv += ["--student-uid", str(STUDENT_UID), "--student-gid", str(STUDENT_UID)]
    r, w = os.pipe()
    data = bytearray()

    def read():
        while chunk := os.read(r, 65536):
            data.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        done = subprocess.run([*argv, "--fd", str(w)], pass_fds=(w,), env={**full_env, **env},
                              cwd=tempfile.gettempdir(), capture_output=True, text=True,
                              timeout=timeout)
    finally:
        os.close(w)
    reader.join(10)
    os.close(r)
    assert done.returncode == 0, done.stderr[-3000:]
    result = spec.loads(bytes(data).decode())
    assert sorted(result["questions"]) == QUESTIONS[assignment]
    return result


def passed(result: dict) -> set[str]:
    return {q for q, r in result["questions"].items() if r["passed"]}


def assert_plain_words(result: dict) -> None:
    """Each failed question says why in words: its first problem is no traceback."""
    for name, r in result["questions"].items():
        if r["passed"]:
            assert r["problems"] == [] and r["message"] == f"{name}: passed"
            continue
        first = r["problems"][0]
        assert r["message"].startswith(f"{name}: not yet: {first.splitlines()[0]}")
        assert "Traceback (most recent call last)" not in first and 'File "' not in first, first
        assert r["public_cell"] and r["hidden_cell"]


# ---- what the honest answers get


@pytest.mark.slow(20)
@pytest.mark.parametrize("assignment", sorted(QUESTIONS))
def test_reference_passes_every_question(tmp_path, assignment):
    result = run_verdict(assignment, answer(tmp_path, assignment, reference(assignment)))
    assert passed(result) == set(QUESTIONS[assignment]), result
    assert result["student_uid"] == (STUDENT_UID if DROP else None)
    for r in result["questions"].values():
        assert r["checks"] and all(c["passed"] for c in r["checks"])


@pytest.mark.parametrize("prologue", [None, *PROLOGUES])
@pytest.mark.parametrize("assignment", sorted(QUESTIONS))
def test_blank_fails_every_question_with_the_stub_words(tmp_path, assignment, prologue):
    """A blank answer, forged or not, fails every question at once: it is read, not run."""
    result = run_verdict(assignment, answer(tmp_path, assignment, blank(assignment), prologue))
    assert passed(result) == set(), result
    for r in result["questions"].values():
        assert "still raise(s) NotImplementedError" in r["problems"][0]
        assert r["checks"] == []
    assert_plain_words(result)


# ---- each forgery gets what its answer deserves


@pytest.mark.slow(8)
@pytest.mark.parametrize("assignment", sorted(QUESTIONS))
def test_a_report_written_everywhere_counts_for_nothing(tmp_path, assignment):
    """A wrong answer that writes a "passed" report to every file and descriptor it can
    find, then exits, fails every question."""
    text = (FORGERY / f"wrong_{assignment}.py").read_text()
    result = run_verdict(assignment, answer(tmp_path, assignment, text, "writes_report"))
    assert passed(result) == set(), result
    assert_plain_words(result)


KILLED_CHECKER = """
import json, sys
from hwcheck.isolated import run_isolated
reports = [run_isolated(task, "hw1_solution", dict(producers=1, per_producer=10, consumers=1,
                        gap=0), timeout=20, method=sys.argv[2], folder=sys.argv[1])
           for task in ("hw1_workers", "hw1_pipeline")]
print(json.dumps(reports))
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_killed_checker_leaves_no_report_to_forge(method):
    """The strongest attacker short of root: the checker and the answer run as the same
    ordinary user (as in the notebook), and the answer writes a "passed" report to every
    descriptor it holds, then kills the checker. A fork child closed the report
    descriptor before importing the answer, and /proc/<checker>/fd cannot be opened (not
    dumpable): no report is read, the checks fail."""
    folder = Path(tempfile.mkdtemp(prefix="hwcheck-killer-"))  # an ordinary user reads it
    try:
        folder.chmod(0o755)
        text = (FORGERY / "writes_report.py").read_text() + (FORGERY / "wrong_hw1.py").read_text()
        (folder / "hw1_solution.py").write_text(text)
        argv, env = runner_command()
        user = ["setpriv", f"--reuid={STUDENT_UID}", f"--regid={STUDENT_UID}",
                "--clear-groups"] if DROP else []
        done = subprocess.run([*user, argv[0], *argv[1:-2], "-c", KILLED_CHECKER, str(folder),
                               method], env=env, cwd=folder, capture_output=True, text=True,
                              timeout=120)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for report in json.loads(done.stdout.strip().splitlines()[-1]):
        assert report["problems"] and "forged" not in report["facts"], report


@pytest.mark.slow(15)
@pytest.mark.parametrize("prologue", ["patches_checker", "hides_failures"])
@pytest.mark.parametrize("assignment", sorted(QUESTIONS))
def test_patching_or_hiding_gets_no_more_than_the_answer(tmp_path, assignment, prologue):
    """A partly right answer that patches the checker, or hides its failures, in every
    process that imports it gets its right questions and no more."""
    sample, deserved = PARTLY[assignment]
    text = (SAMPLES / sample).read_text()
    result = run_verdict(assignment, answer(tmp_path, assignment, text, prologue))
    assert passed(result) == deserved, result
    assert_plain_words(result)


@pytest.mark.slow(6)
@pytest.mark.parametrize("assignment", sorted(QUESTIONS))
def test_modules_next_to_the_answer_are_never_imported(tmp_path, assignment):
    """hwcheck.py, psutil.py and courselib/ next to a wrong answer change nothing."""
    folder = answer(tmp_path, assignment, (FORGERY / f"wrong_{assignment}.py").read_text())
    shutil.copytree(FORGERY / "shadow", folder, dirs_exist_ok=True)
    result = run_verdict(assignment, folder)
    assert passed(result) == set(), result
    assert_plain_words(result)


@pytest.mark.slow(8)
def test_shadowing_files_do_not_break_an_honest_answer(tmp_path):
    folder = answer(tmp_path, "hw2", reference("hw2"))
    shutil.copytree(FORGERY / "shadow", folder, dirs_exist_ok=True)
    assert passed(run_verdict("hw2", folder)) == {"q1", "q2"}


@pytest.mark.slow(10)
@pytest.mark.parametrize("assignment", sorted(QUESTIONS))
def test_pickle_bombs_are_refused_unloaded(tmp_path, assignment):
    """Objects whose unpickling would run a command in the checker, put on its queues,
    sent down its channels and to its manager: refused, never loaded; the answer fails."""
    marks = Path(tempfile.mkdtemp(prefix="hwcheck-bomb-"))
    try:
        marks.chmod(0o755)  # as root: only the checker itself could create the mark
        target = marks / "went-off"
        text = (FORGERY / f"pickle_bomb_{assignment}.py").read_text()
        result = run_verdict(assignment, answer(tmp_path, assignment, text),
                             HWCHECK_BOMB_TARGET=str(target))
        assert not target.exists(), "a pickle bomb went off"
    finally:
        shutil.rmtree(marks, ignore_errors=True)
    assert passed(result) == set(), result
    words = " ".join(p for r in result["questions"].values() for p in r["problems"])
    assert "not plain data (it would have loaded posix.system)" in words, result
    assert_plain_words(result)


# ---- the verdict command itself


def test_student_code_runs_as_the_student_uid():
    if not DROP:
        pytest.skip(NO_DROP)
    folder = Path(tempfile.mkdtemp(prefix="hwcheck-uid-"))  # not under pytest's 0700 tmp
    try:
        folder.chmod(0o755)
        (folder / "hw1_solution.py").write_text(
            "import os\nprint('uid', os.getuid(), os.geteuid(), os.getgroups(), flush=True)\n"
            + solution_text("hw1"))
        report = run_isolated("hw1_pipeline", "hw1_solution", dict(
            producers=1, per_producer=5, consumers=1, gap=0), timeout=30, folder=folder,
            uid=STUDENT_UID, gid=STUDENT_UID)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert report["problems"] == [], report
    lines = [ln for ln in report["output"].splitlines() if ln.startswith("uid ")]
    assert lines and all(ln == f"uid {STUDENT_UID} {STUDENT_UID} []" for ln in lines), lines


def test_unknown_assignment_is_an_error_in_words(tmp_path):
    argv, env = runner_command()
    r, w = os.pipe()
    done = subprocess.run([*argv[:-1], "hwcheck.verdict", "hw9", str(tmp_path), "--fd", str(w)],
                          pass_fds=(w,), env=env, capture_output=True, timeout=60)
    os.close(w)
    result = spec.loads(os.read(r, 65536).decode())
    os.close(r)
    assert done.returncode == 2 and "unknown assignment 'hw9'" in result["error"]


def test_verdict_is_started_isolated():
    argv, _ = runner_command()
    if os.environ.get("PYTHONPATH"):
        pytest.skip("PYTHONPATH is set on purpose: -s -P instead of -I")
    assert argv[:2] == [sys.executable, "-I"], argv
