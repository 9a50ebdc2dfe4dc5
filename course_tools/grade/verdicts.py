"""The verdict that counts: the homework's graded checks, run after the notebook in a
fresh jail of the worker's slot, where no student code has run before.

``python -I -m hwcheck.verdict`` is the checker (root inside the jail, not dumpable,
importing nothing of the student's); the student's module runs only in its children,
as the slot's unprivileged uid. It writes its verdict to a pipe only it holds. The
notebook's own test cells still run in the kernel, for the student's feedback; where
they and the verdict disagree, the verdict counts and the summary says so.

:func:`run` gets the verdict, :func:`annotate` writes it into the autograded notebook
(each grade cell says what the grading run found; a failed one shows an error, so the
notebook alone scores as the gradebook does), :func:`reasons` says in words what was
lost and where the two runs differed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from traitlets.config import Config

from courselib.procs import kill_all, marked
from hwcheck import reportfd
from hwcheck.limits import BACKSTOP, time_scale
from hwcheck.questions import QUESTIONS
from hwcheck.verdict import VerdictError, copy_answers

from . import sandbox
from .sandbox import MARKER, SandboxKernelManager

ERROR_NAME = "GradingRunFailed"
VERDICT_NOTE = "grading run (outside the notebook, the result that counts)"


def applies(assignment: str) -> bool:
    """Whether the course's checks grade ``assignment``."""
    return assignment in QUESTIONS


def time_limit(assignment: str) -> float:
    """The longest a verdict may take: every check of every question run to its limit."""
    checks = [c for q in QUESTIONS[assignment].values() for c in (*q.hidden, *q.public)]
    return sum(c.timeout * time_scale() + BACKSTOP for c in checks) + 60


def run(assignment: str, autograded: Path, work: Path, kernel: Config) -> dict:
    """Run the verdict on the module files the notebook wrote into ``autograded``.
    Returns hwcheck.verdict's JSON, or ``{"error": words}``."""
    answers = Path(tempfile.mkdtemp(prefix="answers-", dir=work))
    try:
        copy_answers(assignment, autograded, answers)
        return _run(assignment, answers, SandboxKernelManager(config=kernel))
    except VerdictError as exc:
        return {"error": str(exc)}
    finally:
        shutil.rmtree(answers, ignore_errors=True)


def _run(assignment: str, answers: Path, km: SandboxKernelManager) -> dict:
    pipe = reportfd.Pipe()
    argv = [sys.executable, "-I", "-m", "hwcheck.verdict", assignment, str(answers), *pipe.argv]
    if km.sandboxed:
        if not sandbox.rootless():  # without root: one uid, the teacher's, in its own userns
            argv += ["--student-uid", str(km.uid)]
        argv, _ = km.jail(argv, f"verdict-{answers.name}", uid=0, cwd="/", writable=[],
                          readonly=[str(answers)])
    limit = time_limit(assignment)
    started = time.monotonic()
    proc = subprocess.Popen(argv, env={**os.environ, MARKER: km.slot}, cwd="/",
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, **pipe.popen)
    pipe.started()
    report = pipe.read(limit)
    try:
        proc.wait(max(1.0, limit - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        pass
    if proc.poll() is None:
        kill_all(marked(MARKER, km.slot))
        proc.kill()
        proc.wait(10)
    if report is None:
        return {"error": f"the grading run gave no verdict within {limit:.0f} s"}
    return report


def cells(verdict: dict) -> dict[str, dict]:
    """grade_id -> {"passed", "message"}: every graded cell the verdict decides (none
    when there is no verdict: see :func:`failed_everything`)."""
    if "error" in verdict:
        return {}
    return {cid: cell for q in verdict.get("questions", {}).values()
            for cid, cell in q.get("cells", {}).items()}


def failed_everything(assignment: str, why: str) -> dict[str, dict]:
    """No verdict: every question's cells earn nothing, saying why."""
    message = f"no verdict from the grading run: {why}"
    return {cid: {"passed": False, "message": message}
            for q in QUESTIONS[assignment].values()
            for cid in dict.fromkeys((q.public_cell, q.hidden_cell))}


def _in_kernel_passed(cell) -> bool:
    return not any(o.output_type == "error" for o in cell.outputs)


def compared_cells(assignment: str) -> set[str]:
    """The grade cells whose checks ran in the kernel too (the public ones: while
    grading, a hidden-test cell leaves its checks to the grading run)."""
    return {q.public_cell for q in QUESTIONS[assignment].values()}


def annotate(autograded: Path, notebooks: list[str], decided: dict[str, dict],
             compared: set[str]) -> list[str]:
    """Add the verdict to each decided grade cell of the autograded notebooks; return,
    in words, where the notebook's own run of a ``compared`` cell and the verdict
    differed."""
    differed = []
    for name in notebooks:
        path = autograded / f"{name}.ipynb"
        if not path.is_file():
            continue
        nb = nbformat.read(path, as_version=4)
        differed += annotate_notebook(nb, decided, compared)
        mode = path.stat().st_mode
        path.chmod(mode | 0o200)  # nbgrader made it read-only: root ignores that, others not
        nbformat.write(nb, path)
        path.chmod(mode)
    return differed


def annotate_notebook(nb, decided: dict[str, dict], compared: set[str],
                      scored_by_outputs: bool = False) -> list[str]:
    """:func:`annotate` for one notebook in memory. ``scored_by_outputs``: nbgrader
    will score the cells from their outputs (plain ``nbgrader autograde``), so a cell
    the verdict passes keeps no error output (its in-kernel error is shown as text)."""
    differed = []
    for cell in nb.cells:
        cid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or cid not in decided:
            continue
        verdict = decided[cid]
        kernel_passed = _in_kernel_passed(cell) or cid not in compared
        if kernel_passed and not verdict["passed"] and cid in compared:
            differed.append(f"{cid}: the in-notebook check passed but the grading run "
                            "failed (tampering, or a flaky check: worth a look)")
        elif verdict["passed"] and not kernel_passed:
            differed.append(f"{cid}: the in-notebook check failed but the grading run "
                            "passed; the grading run counts (a flaky check? worth a look)")
        if verdict["passed"] and scored_by_outputs:
            cell.outputs = [_as_text(o) for o in cell.outputs]
        cell.outputs.append(_output(verdict))
    return differed


def grouped(differed: list[str]) -> list[str]:
    """``differed`` lines ("cell: what happened") as one line per kind of difference,
    naming its cells: short enough to lead a student's reasons in the CSV."""
    cells: dict[str, list[str]] = {}
    for line in differed:
        cid, _, what = line.partition(": ")
        cells.setdefault(what, []).append(cid)
    return [f"{', '.join(ids)}: {what}" for what, ids in cells.items()]


def _as_text(output):
    if output.output_type != "error":
        return output
    return nbformat.v4.new_output(
        "stream", name="stderr",
        text=f"[in-notebook run] {output.ename}: {output.evalue}\n")


def _output(verdict: dict):
    lines = verdict["message"].splitlines() or [""]
    if verdict["passed"]:
        return nbformat.v4.new_output("stream", name="stdout",
                                      text=f"[{VERDICT_NOTE}] {lines[0]}\n")
    return nbformat.v4.new_output("error", ename=ERROR_NAME, evalue=lines[0],
                                  traceback=[f"{ERROR_NAME} ({VERDICT_NOTE}):", *lines])


def reasons(decided: dict[str, dict]) -> list[str]:
    """One line per question that lost points: the grading run's first words (a
    question's hidden cell comes first), and the cells that earned nothing."""
    lost: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for cid, verdict in decided.items():
        if verdict["passed"]:
            continue
        line = (verdict["message"].splitlines() or [""])[0]
        name = line.split(":", 1)[0]
        lost.setdefault(name, []).append(cid)
        first.setdefault(name, line)
    return [_shorten(first[name], 200) + f" [no points: {', '.join(cells)}]"
            for name, cells in lost.items()]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
