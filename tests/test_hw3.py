"""Homework 3 (TCP upper-casing server on a process pool), graded in five stages.

* The question checks of hwcheck/hw3.py (built on hwcheck/respondcheck.py,
  hwcheck/tcpcheck.py, hwcheck/tcpclient.py and hwcheck/tcpserver_harness.py), run the
  way a notebook runs them (diagnosis, then the bounded runner process that starts the
  server as its child), against the reference solution, the other design, and the
  sample submissions of tests/submissions/hw3/, under every start method.
* The round trip on a copy of the course (generate_assignment, then plain nbgrader's
  autograde/generate_feedback/export): the correct solution gets every point, the blank
  release none, and the first stage's wrong sample loses exactly that stage's points,
  with its feedback saying why in words. `make grade` (course-grade) on the other
  stages' samples: tests/test_grade_hostile_homework.py's hw3 run.
* The by-hand client, the runner's own failure reports, and that release/ is what
  generate_assignment makes of source/. (nbgrader validate: tests/test_hw_release.py.)
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import json
import multiprocessing
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import nbformat
import psutil
import pytest

from courselib import lineclient
from courselib.procs import finish, is_mp_helper, tree
from courselib.startmethod import context
from helpers import upper_client
from hwcheck import (
    Checker,
    CheckFailed,
    checker,
    hw3,
    serverfacts,
    tcpcheck,
    tcpclient,
    tcpserver_harness,
)
from hwcheck.child import Student
from hwcheck.driving import Job
from hwcheck.questions import QUESTIONS
from tests.support.course import make_course, submit
from tests.support.nbgrader_cli import nbgrader, scores, strip_ansi

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "submissions" / "hw3"
SOURCE_NB = ROOT / "source" / "hw3" / "hw3.ipynb"
RELEASE_NB = ROOT / "release" / "hw3" / "hw3.ipynb"
BIN = Path(sys.executable).parent
MAGIC = "%%writefile hw3_server.py"
POINTS = {"q1": 3, "q2": 3, "q3": 5, "q4": 2, "q5": 2}

# sample -> (the question it fails, words its feedback must contain)
STAGE_SAMPLES = {
    "no_accept_loop": ("q1", "does not go back to accept() after a client leaves"),
    "recv_is_a_line": ("q2", "one recv() is not one line"),
    "one_at_a_time": ("q3", "seems to serve one client at a time"),
    "crash_utf8": ("q4", "raised UnicodeDecodeError"),
    "leak": ("q5", "clean shutdown failed: the server process did not return"),
}


def answer_cell(notebook: Path) -> str:
    """The module text the notebook's %%writefile answer cell writes."""
    nb = json.loads(notebook.read_text())
    cells = [
        "".join(c["source"])
        for c in nb["cells"]
        if c["cell_type"] == "code" and "".join(c["source"]).startswith(MAGIC)
    ]
    assert len(cells) == 1, f"{notebook} must have exactly one {MAGIC} cell"
    return cells[0].split("\n", 1)[1]


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """Every submission as an importable module (children import it by name, so it is a
    real file on sys.path, which spawn and forkserver children inherit)."""
    folder = tmp_path_factory.mktemp("hw3_modules")
    texts = {
        "correct": answer_cell(SOURCE_NB),
        "blank": answer_cell(RELEASE_NB),
        **{p.stem: p.read_text() for p in SAMPLES.glob("*.py")},
    }
    for name, text in texts.items():
        (folder / f"hw3_sample_{name}.py").write_text(text)
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))


def problems(question: str, sample: str, folder: Path, **params) -> list[str]:
    """What ``question``'s public check (its workload updated by ``params``) finds in a
    sample, run as a notebook runs it: the diagnosis, then the bounded runner process."""
    q = dataclasses.replace(QUESTIONS["hw3"][question], module=f"hw3_sample_{sample}")
    public = q.public[0]
    check = dataclasses.replace(public, params={**public.params, **params})
    return checker.run(q, check, folder)["problems"]


def run(question: str, sample: str, folder: Path, **params) -> None:
    found = problems(question, sample, folder, **params)
    assert found == [], found


def fails(question: str, sample: str, folder: Path, **params) -> str:
    found = problems(question, sample, folder, **params)
    assert found, f"{sample} passed {question}"
    return checker.failure(question, QUESTIONS["hw3"][question], found)


def in_process(question: str, sample: str, folder: Path, **params) -> list[str]:
    """The question's task run right here, not in a runner process (so a test can
    patch the harness): the same task function, this process as the checker."""
    job = Job(context(), Student(str(folder), f"hw3_sample_{sample}"), timeout=60)
    return hw3.TASKS[f"hw3_{question}"](job, **params)


# ----------------------------------------------------------------- the question checks


def test_reference_passes_every_question(modules):
    """The reference solution passes the public check of every question."""
    for question in POINTS:
        run(question, "correct", modules)


def test_design_a_passes(modules):
    """The other design lecture 06 teaches (the main process accepts and hands each
    connection to the pool with apply_async) passes the pool questions too: they test
    behaviour, not one design."""
    run("q3", "design_a", modules, workers=3)
    run("q4", "design_a", modules)
    run("q5", "design_a", modules)


def test_main_process_io_fails_q3_only_in_words(modules):
    """A server whose main process holds every connection answers all clients but fails
    question 3, which says that a pool worker must hold each connection."""
    assert "held by the server's main process" in fails("q3", "main_process_io", modules)
    run("q4", "main_process_io", modules)
    run("q5", "main_process_io", modules)


def test_leaking_server_is_stopped_and_reported(modules, monkeypatch):
    """A server that ignores stop is reported (question 5 only), killed with all its
    workers, and its port is closed afterwards: no process and no listening socket left."""
    monkeypatch.setattr(tcpserver_harness, "STOP_TIMEOUT", 2.0)
    monkeypatch.setattr(tcpserver_harness, "QUIET_STOP_TIMEOUT", 1.0)
    pids, addresses = [], []
    original = tcpserver_harness.RunningServer.remember_descendants

    def spy(self):
        original(self)
        pids.extend([self.process.pid, *self.descendants])
        addresses.append(self.address)

    monkeypatch.setattr(tcpserver_harness.RunningServer, "remember_descendants", spy)
    (message,) = in_process("q5", "leak", modules)
    assert "did not return within 2 s" in message
    assert "still running" in message and "killed now" in message
    # the server and its two workers were seen (under forkserver also the server's own
    # forkserver process, the workers' parent) ...
    assert len(set(pids)) >= 3, pids
    # ... and the earlier questions stop it by force without failing
    assert in_process("q3", "leak", modules) == []
    alive = [p for p in set(pids) if psutil.pid_exists(p) and _not_zombie(p)]
    assert not alive, f"still running after the checks: {alive}"
    assert addresses and not any(tcpserver_harness.port_accepts(a) for a in addresses)


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.mark.start_method_independent
def test_blank_fails_every_question_at_once(modules):
    """The released stubs fail each question at once, saying which functions are not
    written yet (no runner, no server is started, no timeout waited for)."""
    start = time.monotonic()
    for question in POINTS:
        message = fails(question, "blank", modules)
        assert message.startswith(f"{question}: not yet: `"), message
        assert "still raise(s) NotImplementedError" in message
    assert time.monotonic() - start < 5


@pytest.mark.start_method_independent
def test_failures_render_as_plain_words(modules):
    """In a notebook a failed check shows its message, not a traceback through the
    checker (IPython's _render_traceback_); it is still an exception, so the cell fails."""
    message = fails("q1", "blank", modules)
    err = CheckFailed(message)
    assert err._render_traceback_() == f"CheckFailed: {message}".splitlines()
    assert isinstance(err, AssertionError)
    # the demo cells' harness, run in the kernel itself, fails the same way
    lines = tcpclient.ServerError("one\ntwo")._render_traceback_()
    assert lines[1:] == ["one", "two"] and "Traceback" not in "".join(lines)


@pytest.mark.start_method_independent
def test_checker_glue(modules, monkeypatch, capsys):
    """Checker("hw3") checks ./hw3_server.py as hw1 and hw2 are checked: a pass line, or
    CheckFailed with the problem first."""
    monkeypatch.chdir(modules)
    shutil.copy(modules / "hw3_sample_correct.py", modules / "hw3_server.py")
    grader = Checker("hw3")
    grader.check("q1")
    assert "q1: all 1 check(s) passed" in capsys.readouterr().out
    (modules / "hw3_server.py").write_text((modules / "hw3_sample_blank.py").read_text())
    with pytest.raises(CheckFailed, match="q2: not yet: `handle_client` still raise"):
        grader.check("q2")
    grader.show("q2")  # prints, never raises
    assert "`handle_client` still raise(s) NotImplementedError" in capsys.readouterr().out
    (modules / "hw3_server.py").unlink()
    with pytest.raises(CheckFailed, match="q3: not yet: hw3_server.py does not exist"):
        grader.check("q3")
    # a student who deleted the %%writefile line defined serve in the notebook itself
    notebook = types.ModuleType("__main__")
    exec("def serve(address, workers, stop, ready, idle_timeout=5.0): pass", notebook.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    with pytest.raises(CheckFailed, match="`serve`: defined in a notebook cell"):
        grader.check("q3")
    with pytest.raises(ValueError, match="no question"):
        grader.check("q9")


@pytest.mark.start_method_independent
def test_one_answer_for_several_lines_fails_framing(modules, monkeypatch):
    """A handler that answers a buffer only when it ends with a newline, as one line, gets
    three lines sent together right by luck, but not two and a half: question 2 says so."""
    monkeypatch.setattr(tcpclient, "IO_TIMEOUT", 3.0)
    fakes = importlib.import_module("hw3_sample_fakes")
    with pytest.raises(tcpcheck.ServerError, match="as soon as it is in the buffer"):
        tcpcheck.check_framing(fakes.answer_buffer_at_once)


def test_runner_reports_server_that_never_gets_ready(modules):
    fakes = importlib.import_module("hw3_sample_fakes")
    with pytest.raises(tcpclient.ServerError, match="did not put its address"):
        with tcpserver_harness.running_server(fakes.never_ready, start_timeout=1.0):
            pass


def test_runner_reports_exceptions_and_bad_ready(modules):
    fakes = importlib.import_module("hw3_sample_fakes")
    with pytest.raises(tcpclient.ServerError, match="RuntimeError: boom in serve"):
        with tcpserver_harness.running_server(fakes.raises):
            pass
    with pytest.raises(tcpclient.ServerError, match="expected \\(host, port\\)"):
        with tcpserver_harness.running_server(fakes.bad_ready):
            pass
    with pytest.raises(tcpclient.ServerError, match="still raises NotImplementedError"):
        with tcpserver_harness.running_server(fakes.not_implemented):
            pass


def test_by_hand_clients(modules):
    """The by-hand client, as a function (`courselib.lineclient.ask`, also
    `helpers.upper_client.ask`) and in a terminal (`python -m courselib.lineclient`, the
    lectures' `python -m helpers.upper_client`), on a server started as the notebook's
    demo cells do (`hwcheck.tcpserver_harness.running_server`)."""
    module = importlib.import_module("hw3_sample_correct")
    with tcpserver_harness.running_server(module.serve, workers=2) as server:
        assert lineclient.ask(server.address, ["hello", "abc汉字ß"]) == ["HELLO", "ABC汉字SS"]
        assert upper_client.ask(server.address, ["ß"]) == ["SS"]
        for cli in ("courselib.lineclient", "helpers.upper_client"):
            done = subprocess.run(
                [sys.executable, "-m", cli, *map(str, server.address)],
                input="one\n汉字 two\n",
                capture_output=True,
                text=True,
                timeout=30,
                cwd=ROOT,
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout == "ONE\n汉字 TWO\n"


# ----------------------------------------------------------------- the notebook


@pytest.mark.start_method_independent
def test_notebook_shape():
    """Five graded cells, one per question: points as the table says, the first line
    says what it checks, a public grader.check and hidden tests; no test markers."""
    nb = nbformat.read(SOURCE_NB, as_version=4)
    graded = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade")}
    assert sorted(graded) == [f"{q}-test" for q in POINTS]
    for q, points in POINTS.items():
        cell = graded[f"{q}-test"]
        assert cell.metadata["nbgrader"]["points"] == points
        first, second = cell.source.splitlines()[:2]
        assert first.startswith('"""Question') and f"({points} points)" in first
        assert second == f'grader.check("{q}")'
        hidden = cell.source.split("### BEGIN HIDDEN TESTS", 1)[1]
        assert f'check("hw3", "{q}", hidden=True)' in hidden
    text = "\n".join(c.source for c in nb.cells)
    assert "NBVAL" not in text
    headings = [c.source for c in nb.cells if c.cell_type == "markdown"]
    for q, points in POINTS.items():
        assert any(f"## Question {q[1]} ({points} points)" in h for h in headings)
    assert "06-sockets-and-a-pool-server.ipynb" in headings[0]


@pytest.mark.start_method_independent
@pytest.mark.timeout(300)
def test_release_is_generated_from_source(tmp_path):
    """Regenerating release/hw3 from source/hw3 changes nothing."""
    course = make_course(tmp_path, "hw3")
    nbgrader(["generate_assignment", "hw3", "--force"], course, timeout=240)
    generated = sorted(
        p.relative_to(course / "release") for p in (course / "release").rglob("*") if p.is_file()
    )
    assert generated == [Path("hw3/hw3.ipynb")], generated
    assert (course / "release" / "hw3" / "hw3.ipynb").read_text() == RELEASE_NB.read_text(), (
        "release/hw3 is out of date: regenerate it with nbgrader generate_assignment hw3"
    )


# ----------------------------------------------------------------- the round trip


def submission(name: str):
    """The notebook a student who wrote sample ``name`` would submit."""
    nb = nbformat.read(RELEASE_NB, as_version=4)
    if name == "blank":
        return nb
    text = answer_cell(SOURCE_NB) if name == "correct" else (SAMPLES / f"{name}.py").read_text()
    (cell,) = [c for c in nb.cells if c.source.startswith(MAGIC)]
    cell.source = f"{MAGIC}\n{text}"
    return nb


def round_trip(tmp_path: Path, expected: dict[str, tuple[float, list[str]]]) -> None:
    """generate_assignment → submit → grade (hidden tests, spawn) → feedback on a copy of
    the course, by plain nbgrader (autograde, generate_feedback, export); check every
    sample's score and feedback words."""
    course = make_course(tmp_path, "hw3")
    nbgrader(["generate_assignment", "hw3", "--force"], course, timeout=180)
    for name in expected:
        submit(course, "hw3", name, submission(name))
    start = time.monotonic()
    nbgrader(["autograde", "hw3"], course, timeout=600)
    nbgrader(["generate_feedback", "hw3"], course, timeout=240)
    nbgrader(["export"], course, timeout=120)
    got = scores(course / "grades.csv", "hw3")
    print(f"hw3 graded {sorted(expected)} in {time.monotonic() - start:.0f} s")
    assert got == {name: points for name, (points, _) in expected.items()}, got
    for name, (_, words) in expected.items():
        page = course / "feedback" / name / "hw3" / "hw3.html"
        text = strip_ansi(html.unescape(page.read_text()))
        for w in words:
            assert w in text, f"feedback of {name} lacks {w!r}"
        assert "Traceback (most recent call last)" not in text, f"{name}: a traceback shown"


def _lost(question: str, words: str) -> tuple[float, list[str]]:
    return float(sum(POINTS.values()) - POINTS[question]), [f"{question}: not yet: ", words]


@pytest.mark.start_method_independent
@pytest.mark.slow(65)
@pytest.mark.timeout(900)
def test_round_trip_correct_blank_and_q1(tmp_path):
    round_trip(tmp_path, {
        "correct": (15.0, []),
        "blank": (0.0, ["still raise(s) NotImplementedError"]),
        "no_accept_loop": _lost(*STAGE_SAMPLES["no_accept_loop"]),
    })


# `make grade` (course-grade) on the other stages' mistakes: in the homework hostile
# class's hw3 run (tests/test_grade_hostile_homework.py), one grading run for both.


@pytest.mark.start_method_independent
def test_checker_uses_no_posix_only_api():
    """The student-facing checker code ends processes through courselib.procs (psutil,
    and a POSIX session only where there is one), never with POSIX-only APIs itself."""
    paths = [*sorted((ROOT / "hwcheck").glob("*.py")), ROOT / "courselib" / "lineclient.py",
             ROOT / "helpers" / "upper_client.py"]
    for path in paths:
        text = path.read_text()
        for name in ("killpg", "SIGKILL", "os.fork(", "setsid", "os.kill("):
            assert name not in text, f"{path.name} uses {name}"


@pytest.mark.start_method_independent
def test_checks_do_not_depend_on_assert_statements(modules, tmp_path):
    """Under `python -O` (assert statements removed) a wrong server still fails: the
    checks raise their errors themselves, in the runner process."""
    shutil.copy(SAMPLES / "recv_is_a_line.py", tmp_path / "hw3_server.py")
    code = ("from hwcheck import CheckFailed, check\n"
            "try:\n    check('hw3', 'q2')\nexcept CheckFailed as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-O", "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("q2: not yet: ") and "one recv() is not one line" in done.stdout


@pytest.mark.start_method_independent
def test_too_few_answered_at_once_is_said_as_seen():
    """2 of 3 clients served at once is not "one client at a time" (issue 20: a
    ctx.Pool() with no size was told so); the cause is offered only where the count fits."""
    two = tcpcheck._too_few_at_once(2, 3, 10.0)
    assert "only 2 of 3 clients" in two and "at most 2 clients at a time" in two
    assert "one client at a time" not in two and "apply()" not in two
    assert "one client at a time" in tcpcheck._too_few_at_once(1, 3, 10.0)
    none = tcpcheck._too_few_at_once(0, 3, 10.0)
    assert "one client at a time" not in none and "no client got an answer" in none


@pytest.mark.start_method_independent
@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                    reason="no fork server here")
def test_pool_processes_waits_for_workers_not_for_the_fork_server():
    """A forkserver server's own fork server runs below it before its workers do: it
    must not count as a worker, or the workers started later are taken for processes
    started per client."""
    from socket_test_servers import pool_then_late_worker

    ctx = multiprocessing.get_context("forkserver")
    started, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=pool_then_late_worker, args=(started, done))
    proc.start()
    try:
        assert started.wait(60)
        server = types.SimpleNamespace(processes=lambda: tree(proc.pid))
        seen = serverfacts.pool_processes(server, workers=2, limit=20)
        workers = [p.pid for p in tree(proc.pid)[1:] if not is_mp_helper(p)]
        assert len(workers) == 2 and set(workers) <= seen, (workers, seen)
    finally:
        done.set()
        finish([proc], 30)
