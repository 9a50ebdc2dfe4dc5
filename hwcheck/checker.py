"""The notebook's side of the checks: what ``grader.check("q1")``, ``grader.show("q1")``
and the hidden tests run. Each check of a question (:mod:`hwcheck.questions`) is
diagnosed here first (:mod:`hwcheck.diagnose`: missing file, stub, ... said at once),
then run in a fresh, bounded runner process (:mod:`hwcheck.isolated`); a failure
raises :class:`CheckFailed` saying in plain words what is wrong.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from courselib.startmethod import start_method
from hwcheck.diagnose import diagnose
from hwcheck.isolated import run_isolated
from hwcheck.limits import time_scale
from hwcheck.questions import Check, Question, question, questions

# Set by the course's grader in the kernels it grades: the hidden checks are run (and
# scored) by the grading run outside the kernel, where student code cannot reach the
# verdict (:mod:`hwcheck.verdict`); running them in the kernel too would only cost time.
GRADED_OUTSIDE_ENV = "HWCHECK_GRADED_OUTSIDE"


class CheckFailed(AssertionError):
    """A check found problems; the message lists them in plain words.

    In IPython (Jupyter, nbgrader) the error shows only that message: the checker's
    own frames would tell a student nothing about their code. The cell still fails
    (its output is an error), so nbgrader gives no points for it."""

    def _render_traceback_(self) -> list[str]:
        return f"{type(self).__name__}: {self}".splitlines()


def failure(name: str, q: Question, problems: list[str]) -> str:
    """The message of a failed question: the first problem first (graders' summaries
    show only the start of a message), then the others, then what the question checks."""
    first, *rest = problems
    lines = [f"{name}: not yet: {first}", *(f"  - {p}" for p in rest)]
    return "\n".join([*lines, f"({name} checks {q.what}.)"])


# Reports by (module source, check): the same code and check is not run twice (show()
# then check()); and a part whose run timed out is not waited for again by the hidden
# test of the same part.
_DONE: dict[tuple, dict] = {}
_TIMED_OUT: dict[tuple, dict] = {}


def run(q: Question, check: Check, folder: str | os.PathLike = ".") -> dict:
    """Diagnosis first, then the bounded run of ``check``; returns the report."""
    problems = diagnose(q.module, q.names, folder)
    if problems:
        return {"problems": problems, "facts": {}}
    timeout = check.timeout * time_scale()
    method = check.method or start_method()
    source = (Path(folder) / f"{q.module}.py").read_bytes()
    exact = (source, check.task, json.dumps(check.params, sort_keys=True, default=repr),
             timeout, method)
    part = (source, check.task, bool(check.params.get("joinable")), method)
    if exact in _DONE:
        return _copy(_DONE[exact])
    if part in _TIMED_OUT:
        report = _copy(_TIMED_OUT[part])
        report["problems"].insert(0, "(Not run again: the same code already ran out of time "
                                     "in an earlier check of this part.)")
        return report
    report = run_isolated(check.task, q.module, check.params, timeout=timeout, method=method,
                          folder=folder, show_output=check.show_output)
    _DONE[exact] = _copy(report)
    if report.get("facts", {}).get("timed_out"):
        _TIMED_OUT[part] = _copy(report)
    return report


def _copy(report: dict) -> dict:
    return json.loads(json.dumps(report))


def _reports(assignment: str, name: str, hidden: bool) -> list[tuple[str, dict]]:
    """Each check of the question in turn, up to the first that fails (it says enough)."""
    q = question(assignment, name)
    reports = []
    for check in q.hidden if hidden else q.public:
        report = run(q, check)
        reports.append((check.task, report))
        if report["problems"]:
            break
    return reports


def check(assignment: str, name: str, hidden: bool = False) -> None:
    """Run the public (or, with ``hidden``, the hidden) checks of question ``name``:
    raise :class:`CheckFailed` saying what is wrong, or print one pass line. Returns
    None, so a test cell shows no value (nbgrader would read it as partial credit)."""
    if hidden and os.environ.get(GRADED_OUTSIDE_ENV) == "1":
        question(assignment, name)  # ValueError for a name that is no question
        print(f"{name}: the hidden checks run in the grading run, outside this notebook; "
              "its verdict, shown below, is the one that counts.")
        return
    start = time.monotonic()
    reports = _reports(assignment, name, hidden)
    problems = [p for _, r in reports for p in r["problems"]]
    if problems:
        raise CheckFailed(failure(name, question(assignment, name), problems))
    print(f"{name}: all {len(reports)} check(s) passed ({time.monotonic() - start:.1f} s).")


def show(assignment: str, name: str, hidden: bool = False) -> None:
    """Run the same checks as :func:`check` and print what happened, without raising."""
    for task, report in _reports(assignment, name, hidden):
        facts = ", ".join(f"{k}={v}" for k, v in report["facts"].items())
        print(f"{task}: {facts}")
        for p in report["problems"]:
            print(f"  - {p}")
        if not report["problems"]:
            print("  no problems found")


def require_answered(assignment: str, name: str) -> None:
    """Fail fast, in the notebook, while the question's answer is missing or still the
    stub: the visible line of each hidden-test cell, so that a blank notebook fails it."""
    q = question(assignment, name)
    problems = diagnose(q.module, q.names)
    if problems:
        raise CheckFailed(failure(name, q, problems))


class Checker:
    """Student self-check, one question at a time, in plain words (like otter-grader's
    ``grader.check("q1")``)::

        grader = Checker("hw1")
        grader.check("q1")   # raises CheckFailed listing what is wrong, or prints a pass line
        grader.show("q1")    # runs the same checks and prints what happened, never raises
    """

    def __init__(self, assignment: str):
        questions(assignment)  # ValueError for an unknown assignment
        self.assignment = assignment

    def check(self, name: str) -> None:
        check(self.assignment, name)

    def show(self, name: str) -> None:
        show(self.assignment, name)
