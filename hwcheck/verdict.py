"""The verdict that counts, for the grader: every graded (hidden) check of every
question of an assignment, run outside the student's kernel, where no student code
can reach::

    python -I -m hwcheck.verdict ASSIGNMENT FOLDER --fd N [--student-uid U --student-gid G]

FOLDER holds the module files the notebook wrote (``hw1_solution.py``...). Only
those are copied (never following a link) into a fresh folder owned by the verdict,
so nothing else next to the notebook is ever importable. For each question the
answer is read without running it (:mod:`hwcheck.source`: missing, stub, syntax
error fail at once, with the notebook's words); then each hidden check is one
bounded checker run (:func:`hwcheck.isolated.run_isolated`), the student's code as
uid U (root only), up to the first check that fails; the public checks run only when a
hidden one failed. ``cells`` says, for each nbgrader grade cell, whether its points are
earned and why not.

One JSON object is written to file descriptor N (then closed)::

    {"assignment": "hw1", "student_uid": 65534, "wall_seconds": 12.3,
     "questions": {"q1": {"passed": true, "public_cell": "q1-public",
                          "hidden_cell": "q1-hidden", "problems": [],
                          "message": "q1: passed",
                          "cells": {"q1-hidden": {"passed": true, "message": "q1: passed"},
                                    "q1-public": {"passed": true, "message": "..."}},
                          "checks": [{"task": "hw1_workers", "passed": true,
                                      "seconds": 3.1, "timed_out": false}]}, ...}}

or ``{"error": "words"}`` (exit code 2) when no verdict could be reached. Every wait
is bounded: a deadlock is a failed question, with its words.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from courselib.startmethod import start_method
from hwcheck import hardening, reportfd, source
from hwcheck.checker import failure
from hwcheck.isolated import run_isolated
from hwcheck.limits import time_scale
from hwcheck.questions import Question, questions


class VerdictError(Exception):
    """No verdict can be reached (the words say why)."""


def copy_answers(assignment: str, folder: Path, into: Path) -> None:
    """The assignment's module files of ``folder``, copied into ``into``: regular files
    only, never through a link, at most 1 MiB each."""
    for module in sorted({q.module for q in questions(assignment).values()}):
        try:
            fd = os.open(folder / f"{module}.py", os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise VerdictError(f"{module}.py cannot be read safely: {exc}") from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise VerdictError(f"{module}.py is not a regular file")
            data = fh.read(source.LARGEST + 1)
        (into / f"{module}.py").write_bytes(data)
        (into / f"{module}.py").chmod(0o644)


def _run(checks, q: Question, folder: Path, uid: int | None, gid: int | None):
    """Run ``checks`` in turn, up to the first that fails: (problems, what each did)."""
    done = []
    for check in checks:
        report = run_isolated(check.task, q.module, check.params,
                              timeout=check.timeout * time_scale(),
                              method=check.method or start_method(), folder=folder,
                              show_output=check.show_output, uid=uid, gid=gid)
        facts = report.get("facts", {})
        done.append({"task": check.task, "passed": not report["problems"],
                     "seconds": facts.get("wall_seconds"),
                     "timed_out": bool(facts.get("timed_out"))})
        if report["problems"]:
            return report["problems"], done
    return [], done


def judge(name: str, q: Question, folder: Path, uid: int | None, gid: int | None) -> dict:
    """One question: its hidden checks, up to the first that fails. The public cell's
    checks are smaller runs of the same properties: they run only when a hidden check
    failed (an answer that passes the hidden checks passes them), so an honest answer
    costs no more than the hidden tests did in the notebook."""
    problems = source.diagnose(q.module, q.names, folder)
    public_problems, checks = problems, []
    if not problems:
        problems, checks = _run(q.hidden, q, folder, uid, gid)
        public_problems = problems
        if problems and q.public_cell != q.hidden_cell:
            public_problems, public_checks = _run(q.public, q, folder, uid, gid)
            checks += public_checks
    message = failure(name, q, problems) if problems else f"{name}: passed"
    cells = {q.hidden_cell: {"passed": not problems, "message": message}}
    if q.public_cell != q.hidden_cell:
        cells[q.public_cell] = {
            "passed": not public_problems,
            "message": failure(name, q, public_problems) if public_problems
            else f"{name}: public checks passed"}
    return {"passed": not problems, "public_cell": q.public_cell, "hidden_cell": q.hidden_cell,
            "problems": problems, "checks": checks, "message": message, "cells": cells}


def _judged(name: str, q: Question, folder: Path, uid: int | None, gid: int | None) -> dict:
    try:
        return judge(name, q, folder, uid, gid)
    except Exception as exc:  # noqa: BLE001 - a failed question, never a crashed verdict
        problems = [f"The grading run could not finish: {type(exc).__name__}: {exc}"]
        message = failure(name, q, problems)
        cells = {c: {"passed": False, "message": message}
                 for c in dict.fromkeys((q.public_cell, q.hidden_cell))}
        return {"passed": False, "public_cell": q.public_cell, "hidden_cell": q.hidden_cell,
                "problems": problems, "checks": [], "message": message, "cells": cells}


def verdict(assignment: str, folder: str | os.PathLike, uid: int | None = None,
            gid: int | None = None) -> dict:
    try:
        table = questions(assignment)
    except ValueError as exc:
        raise VerdictError(str(exc)) from None
    folder = Path(folder)
    if not folder.is_dir():
        raise VerdictError(f"{folder} is not a folder")
    if uid is not None and (not hasattr(os, "geteuid") or os.geteuid() != 0):
        raise VerdictError(f"running the student's code as uid {uid} needs root")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hwcheck-verdict-") as tmp:
        answers = Path(tmp)
        answers.chmod(0o755)  # the student's uid reads the module, writes nothing here
        copy_answers(assignment, folder, answers)
        # the questions side by side: independent checker runs that mostly wait (a
        # lull, a late result, a client's pause), so a verdict takes about as long as
        # its longest question, not their sum
        with ThreadPoolExecutor(len(table)) as pool:
            running = {name: pool.submit(_judged, name, q, answers, uid, gid)
                       for name, q in table.items()}
            results = {name: job.result() for name, job in running.items()}
    return {"assignment": assignment, "student_uid": uid, "questions": results,
            "wall_seconds": round(time.monotonic() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -I -m hwcheck.verdict",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("folder")
    reportfd.add_arguments(parser)
    parser.add_argument("--student-uid", type=int, default=None)
    parser.add_argument("--student-gid", type=int, default=None)
    args = parser.parse_args(argv)
    hardening.no_dumping()
    out = reportfd.writer(args)
    gid = args.student_gid if args.student_gid is not None else args.student_uid
    try:
        result = verdict(args.assignment, args.folder, args.student_uid, gid)
    except VerdictError as exc:
        reportfd.write(out, {"error": str(exc)})
        return 2
    reportfd.write(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
