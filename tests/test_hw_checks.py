"""The homework checks (hwcheck/) against the hw1/hw2 sample submissions in
tests/submissions/, without nbgrader: each mistake fails with words that name it, the
correct solution passes, deadlocks end in time. And the one question table of hw1, hw2
and hw3 against the notebooks, and the runner's isolation from the student's folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from hwcheck import Checker, CheckFailed, check, require_answered
from hwcheck.diagnose import diagnose
from hwcheck.hw2 import replay_problems
from hwcheck.isolated import run_isolated, runner_command
from hwcheck.limits import BACKSTOP
from hwcheck.questions import QUESTIONS, all_checks
from hwcheck.recording import make_batches
from hwcheck.runner import TASKS
from tests.support.course import ROOT, sample_text
from tests.support.nbgrader_cli import strip_ansi

independent = pytest.mark.start_method_independent


def module_dir(tmp_path: Path, assignment: str, sample: str) -> Path:
    folder = tmp_path / sample
    folder.mkdir()
    (folder / f"{assignment}_solution.py").write_text(sample_text(assignment, sample))
    return folder


def problems(tmp_path, assignment, sample, task, params=None, timeout=30.0) -> str:
    folder = module_dir(tmp_path, assignment, sample)
    report = run_isolated(task, f"{assignment}_solution", params, timeout=timeout, folder=folder)
    return "\n".join(report["problems"])


# ---- the correct solution, under the start method of this run (make test: all three)


def test_correct_hw1_pipeline_and_joinable(tmp_path, monkeypatch):
    monkeypatch.chdir(module_dir(tmp_path, "hw1", "correct"))
    grader = Checker("hw1")
    grader.check("q2")
    grader.check("q3")


def test_correct_hw2_bank(tmp_path, monkeypatch):
    monkeypatch.chdir(module_dir(tmp_path, "hw2", "correct"))
    grader = Checker("hw2")
    grader.check("q1")
    grader.check("q2")


@independent
def test_correct_hw1_workers_and_show(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(module_dir(tmp_path, "hw1", "correct"))
    grader = Checker("hw1")
    grader.show("q1")
    shown = capsys.readouterr().out
    assert "items_reported=300" in shown and "no problems found" in shown
    grader.check("q1")  # the same code and check: answered from show()'s run
    assert "all 1 check(s) passed" in capsys.readouterr().out


# ---- each mistake, named


@independent
def test_blank_says_not_written_yet(tmp_path):
    folder = tmp_path / "blank"
    folder.mkdir()
    nb = nbformat.read(ROOT / "release" / "hw1" / "hw1.ipynb", as_version=4)
    answer = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "answer")
    (folder / "hw1_solution.py").write_text(answer.source.split("\n", 1)[1])
    started = time.monotonic()
    report = run_isolated("hw1_pipeline", "hw1_solution", timeout=30, folder=folder)
    assert "`run_pipeline` still raises NotImplementedError" in report["problems"][0]
    assert time.monotonic() - started < 25, "a stub must fail at once, not by timeout"


@independent
def test_polling_consumer_is_named(tmp_path):
    text = problems(tmp_path, "hw1", "polling_consumer", "hw1_workers",
                    dict(producers=3, per_producer=100, consumers=2, gap=1.0))
    assert "ended before any SENTINEL was sent, while producers were still working" in text
    assert "get_nowait()" in text and "never consumed" in text


def test_lull_is_in_the_producer_not_in_pickling():
    """The producers' quiet moment happens while they iterate, in their own process;
    pickling a batch (to start a producer under spawn) must not pause the parent."""
    import pickle

    batch = make_batches(1, 10, gap=0.5)[0]
    started = time.monotonic()
    copy = pickle.loads(pickle.dumps(batch))
    assert time.monotonic() - started < 0.2
    assert list.__iter__(copy) and copy.gap == 0.5 and copy == batch
    started = time.monotonic()
    assert list(copy) == list(range(10))
    assert time.monotonic() - started >= 0.5


@independent
def test_missing_sentinel_deadlock_is_stopped_and_named(tmp_path):
    started = time.monotonic()
    folder = module_dir(tmp_path, "hw1", "missing_sentinel")
    report = run_isolated("hw1_pipeline", "hw1_solution",
                          dict(producers=3, per_producer=100, consumers=2, gap=0.2),
                          timeout=6, folder=folder)
    elapsed = time.monotonic() - started
    text = "\n".join(report["problems"])
    assert "Still not finished after 6 s" in text
    assert "you put 1 SENTINEL(s) for 2 consumers" in text
    assert "`proc.join()" in text, "should quote the line it was stuck on"
    assert report["facts"]["killed"] >= 1, "the blocked consumer must be killed"
    assert elapsed < 6 + BACKSTOP


@independent
def test_early_sentinel_is_named(tmp_path):
    text = problems(tmp_path, "hw1", "early_sentinel", "hw1_pipeline",
                    dict(producers=3, per_producer=100, consumers=2, gap=1.0), timeout=6)
    assert "while a producer was still running" in text


@independent
def test_join_before_drain_is_named(tmp_path):
    text = problems(tmp_path, "hw1", "join_before_drain", "hw1_pipeline",
                    dict(producers=3, per_producer=1500, consumers=3, gap=0.0), timeout=12)
    assert "joining a consumer before reading all its results" in text


@independent
def test_missing_task_done_is_named(tmp_path):
    text = problems(tmp_path, "hw1", "no_task_done_for_sentinel", "hw1_workers",
                    dict(producers=2, per_producer=100, consumers=2, gap=0.2, joinable=True))
    assert "task_done() once for every q.get(), including the one that returns SENTINEL" in text


@independent
def test_workers_defined_in_notebook_are_named(tmp_path, monkeypatch):
    """The answer cell lost its %%writefile line: the functions live in __main__."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    exec(compile(sample_text("hw1", "notebook_workers"), "<cell>", "exec"), namespace)
    main = sys.modules["__main__"]
    for name in ("producer", "consumer"):
        monkeypatch.setattr(main, name, namespace[name], raising=False)
    found = diagnose("hw1_solution", ["producer", "consumer"])
    assert len(found) == 1 and "must start with the line `%%writefile hw1_solution.py`" in found[0]
    assert "Can't get attribute" in found[0]


@independent
def test_unlocked_bank_is_caught(tmp_path):
    text = problems(tmp_path, "hw2", "unlocked", "hw2_bank", dict(clients=4, ops=100))
    assert "did not hold account['lock']" in text


@independent
def test_unlocked_bank_passes_the_single_process_rules(tmp_path):
    assert problems(tmp_path, "hw2", "unlocked", "hw2_rules") == ""


@independent
def test_misplaced_lock_is_caught(tmp_path):
    text = problems(tmp_path, "hw2", "misplaced_lock", "hw2_bank", dict(clients=4, ops=100))
    assert "misplaced lock" in text


def test_clients_one_at_a_time_are_caught(tmp_path):
    text = problems(tmp_path, "hw2", "one_at_a_time", "hw2_bank", dict(clients=3, ops=50))
    assert "No client was started while another was running" in text


@independent
def test_lock_never_released_is_stopped(tmp_path):
    started = time.monotonic()
    text = problems(tmp_path, "hw2", "lock_not_released", "hw2_rules", timeout=6)
    assert "Still not finished after 6 s" in text
    assert "acquire()" in text, "should quote the line it was stuck on"
    assert time.monotonic() - started < 6 + BACKSTOP


# ---- the pieces


@independent
def test_replay_finds_each_kind_of_wrong_log():
    ok = [(0, "deposit", 5, True, 15), (0, "withdraw", 20, False, 15), (0, "withdraw", 15, True, 0)]
    plans = [[("deposit", 5), ("withdraw", 20), ("withdraw", 15)]]
    assert replay_problems(ok, 10, 0, plans) == []
    overdraft = [(0, "withdraw", 20, True, -10)]
    assert "must be refused" in replay_problems(overdraft, 10, -10, None)[0]
    wrong_refusal = [(0, "withdraw", 5, False, 10)]
    assert "only withdrawals larger" in replay_problems(wrong_refusal, 10, 10, None)[0]
    lost = [(0, "deposit", 5, True, 15), (1, "deposit", 5, True, 15)]
    assert "replaying the log gives 20" in replay_problems(lost, 10, 15, None)[0]
    assert "exactly once" in replay_problems(ok[:2], 10, 15, plans)[0]


@independent
def test_replay_for_question_2_leaves_the_rules_to_question_1():
    """A refusal of exactly the balance (the >= mistake) is question 1's: question 2's
    replay follows the log's own decisions, and still catches a log that does not add up."""
    exact_refused = [(0, "withdraw", 10, False, 10)]
    assert "only withdrawals larger" in replay_problems(exact_refused, 10, 10, None)[0]
    assert replay_problems(exact_refused, 10, 10, None, rules=False) == []
    wrong_after = [(0, "withdraw", 4, True, 5)]
    assert "replaying the log gives 6" in replay_problems(wrong_after, 10, 5, None,
                                                          rules=False)[0]


@independent
def test_the_random_rules_plan_withdraws_exactly_the_balance():
    """hw2 q1's random plan is known in advance (one process): it withdraws exactly the
    balance many times, so a >= mistake fails in every run, not by chance."""
    from hwcheck.hw2 import rules_plan

    plan = rules_plan(500, 20, seed=3)
    assert plan == rules_plan(500, 20, seed=3)
    bal, exact = 20, 0
    for kind, amount in plan:
        if kind == "deposit":
            bal += amount
        elif amount <= bal:
            exact += amount == bal
            bal -= amount
    assert exact >= 40


@independent
def test_the_late_item_is_an_int_that_waits_only_in_a_consumer():
    """hw1's late result: a copy made in the driver (pickled there, for a producer
    under spawn) does not wait; what the checker receives is a plain int."""
    import pickle

    from hwcheck.recording import LateInt, plain

    batches = make_batches(2, 5, first=1, late=3.0)
    late = batches[-1][-1]
    assert isinstance(late, LateInt) and late == 100_005
    started = time.monotonic()
    copy = pickle.loads(pickle.dumps(batches[-1]))
    assert time.monotonic() - started < 1.0 and copy[-1] == late
    assert type(plain((late, 7))[0]) is int
    assert 0 not in list.__iter__(batches[0]), "pipelines start at 1: a falsy item is q1's"


@independent
def test_nbgrader_cell_timeout_outlasts_every_check():
    """nbgrader must not interrupt a check before the check's own watchdog explains the
    failure: the per-cell limit exceeds the longest check limit plus the backstop."""
    config = (ROOT / "nbgrader_config.py").read_text()
    cell_limit = int(re.search(r"c\.Execute\.timeout = (\d+)", config).group(1))
    assert max(c.timeout for c in all_checks()) + BACKSTOP < cell_limit


# ---- one question table for hw1, hw2 and hw3; the runner's isolation


@independent
@pytest.mark.parametrize("assignment", sorted(QUESTIONS))
def test_question_table_matches_the_notebook(assignment):
    """Every graded cell of the source notebook is a question's public or hidden cell
    (a grader can read from the table which checks a cell stands for); the public cell
    calls grader.check, the hidden tests call check(..., hidden=True); every check names
    a task of the runner; the reference answer defines every function a question needs."""
    nb = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    graded = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade")}
    table = QUESTIONS[assignment]
    assert set(graded) == {cell for q in table.values()
                           for cell in (q.public_cell, q.hidden_cell)}
    answer = sample_text(assignment, "correct") if assignment != "hw3" else next(
        c.source for c in nb.cells if c.source.startswith("%%writefile hw3_server.py"))
    for name, q in table.items():
        assert f'grader.check("{name}")' in graded[q.public_cell]
        hidden = graded[q.hidden_cell].split("### BEGIN HIDDEN TESTS", 1)[1]
        assert f'check("{assignment}", "{name}", hidden=True)' in hidden
        assert q.public and q.hidden
        assert all(c.task in TASKS for c in (*q.public, *q.hidden))
        assert all(f"def {n}(" in answer for n in q.names), (name, q.names)


@independent
def test_unknown_assignment_or_question_is_named():
    with pytest.raises(ValueError, match="unknown assignment 'hw9'"):
        Checker("hw9")
    with pytest.raises(ValueError, match="hw2 has no question 'q3'"):
        check("hw2", "q3")


@independent
def test_runner_imports_the_course_not_the_students_folder(tmp_path, monkeypatch):
    """Files named like the course's packages next to the student's module do not replace
    them in the runner (started with -I where the course is installed; the student's
    folder last on its sys.path), and require_answered passes a written answer."""
    folder = module_dir(tmp_path, "hw1", "correct")
    for name in ("hwcheck", "courselib", "psutil"):
        (folder / f"{name}.py").write_text("raise ImportError('shadowed by the student')\n")
    report = run_isolated("hw1_workers", "hw1_solution",
                          dict(producers=2, per_producer=50, consumers=2, gap=0.2),
                          timeout=30, folder=folder)
    assert report["problems"] == [], report
    argv, _ = runner_command()
    if not os.environ.get("PYTHONPATH"):
        assert argv[1] == "-I", argv
    monkeypatch.chdir(folder)
    require_answered("hw1", "q1")


@independent
def test_hidden_check_runs_the_tables_hidden_workload(tmp_path, monkeypatch, capsys):
    """check(..., hidden=True), a hidden test's call, runs the question's hidden checks;
    a wrong answer fails with CheckFailed, its first problem first."""
    monkeypatch.chdir(module_dir(tmp_path, "hw2", "unlocked"))
    check("hw2", "q1", hidden=True)
    assert "q1: all 2 check(s) passed" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"^q2: not yet: the balance was changed by a client"):
        check("hw2", "q2")


@independent
def test_runner_works_when_started_from_anywhere(tmp_path):
    """The checker as the grader would start it: `python -I -m hwcheck --fd N SPEC`
    from a neutral folder, its report on the pipe it was given and nowhere else."""
    from hwcheck import spec

    folder = module_dir(tmp_path, "hw2", "correct")
    request = {"task": "hw2_rules", "module": "hw2_solution", "params": {}, "timeout": 30,
               "method": "spawn", "folder": str(folder)}
    argv, env = runner_command()
    r, w = os.pipe()
    try:
        done = subprocess.run([*argv, "--fd", str(w), spec.dumps(request)], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60,
                              pass_fds=(w,))
        os.close(w)
        report = spec.loads(os.read(r, 1 << 20).decode())
    finally:
        os.close(r)
    assert done.returncode == 0, done.stderr
    assert report["problems"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["correct"], "no report file"


@independent
def test_a_checks_spawn_children_import_only_what_they_run(tmp_path):
    """The checker runs as ``python -m hwcheck`` (a package's __main__), so its spawn
    children do not re-import it as ``__mp_main__`` (CPython's spawn.py skips a
    ``__main__`` module): each child pays for its own target's imports only, not for
    every homework's tasks and psutil."""
    folder = module_dir(tmp_path, "hw1", "correct")
    module = folder / "hw1_solution.py"
    module.write_text(module.read_text().replace(
        "def producer(", "import sys as _sys\n"
        "print('child imported:', sorted(m for m in _sys.modules if m.startswith(('hwcheck', "
        "'psutil'))), _sys.modules['__main__'].__name__)\n\n\ndef producer(", 1))
    report = run_isolated("hw1_workers", "hw1_solution", dict(producers=1, per_producer=5,
                          consumers=1, gap=0.1), timeout=30, method="spawn", folder=folder)
    assert report["problems"] == []
    seen = [ln for ln in report["output"].splitlines() if ln.startswith("child imported:")]
    assert seen, report["output"]
    for line in seen:
        assert "hwcheck.runner" not in line and "psutil" not in line, line
        assert "hwcheck.child" in line, line


# ---- what a student sees when a check fails


@independent
@pytest.mark.slow(10)
def test_failed_check_shows_plain_words_and_still_fails_the_cell(tmp_path):
    """IPython shows a CheckFailed as its message alone (``_render_traceback_``), not
    the checker's frames; the cell's output is still an error, so nbgrader gives it
    no points."""
    from nbclient import NotebookClient
    from nbgrader.utils import determine_grade

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from hwcheck import Checker\n\ngrader = Checker('hw1')"),
        nbformat.v4.new_code_cell("grader.check('q1')"),  # no hw1_solution.py in this folder
        nbformat.v4.new_code_cell("from hwcheck import require_answered\n\n"
                                  "require_answered('hw1', 'q1')"),
    ]
    for cell in nb.cells[1:]:
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                     "points": 1, "grade_id": f"c{cell.source[:4]}"}
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in nb.cells[1:]:
        (out,) = cell.outputs
        assert out.output_type == "error" and out.ename == "CheckFailed"
        shown = strip_ansi("\n".join(out.traceback))
        assert "hw1_solution.py does not exist" in shown, shown
        assert shown.startswith("CheckFailed: q1: not yet: ")
        assert "hwcheck" not in shown and "File " not in shown
        assert determine_grade(cell) == (0, 1)
