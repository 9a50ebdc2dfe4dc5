"""After a submission ran: why it lost points, in words.

From the autograded notebooks (failed tests, timeouts, unpicklable workers),
from the exceptions that stopped grading (classified by type, never by the log's
text), from the kernels' cgroups (limits hit) and from their inits' status files
(processes left running).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader import utils
from nbgrader.preprocessors.execute import UnresponsiveKernelError

from . import cgroups
from .execute import UNPICKLABLE_PATTERN
from .records import RunRecord

SHOWN_LEFTOVERS = 3  # more leftover processes than this are summed up in one reason


def _cell_label(index: int, cell) -> str:
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    return f"cell {index + 1}" + (f" ({grade_id})" if grade_id else "")


def notebook_reasons(autograded: Path, notebooks: list[str],
                     decided: set[str] = frozenset()) -> list[str]:
    """Why points were lost, read from the executed notebooks; a failed test is not
    repeated for the grade cells in ``decided`` (the grading run's verdict said why)."""
    reasons = []
    for name in notebooks:
        path = autograded / f"{name}.ipynb"
        if path.is_file():
            reasons += _reasons_in(nbformat.read(path, as_version=4), name, decided)
    return reasons


def _reasons_in(nb, name: str, decided: set[str]) -> list[str]:
    reasons, unpicklable = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        label = _cell_label(index, cell)
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if UNPICKLABLE_PATTERN in text or any(
                UNPICKLABLE_PATTERN in str(o.get("evalue", "")) for o in errors):
            unpicklable.append(label)
        for o in errors:
            if o.ename == "CellTimeoutError":
                reasons.append(f"timeout in {label} of {name}.ipynb")
            elif o.ename == "NotebookTimeoutError":
                reasons.append(f"notebook time limit reached: {label} of {name}.ipynb not run")
            elif utils.is_grade(cell) and cell.metadata["nbgrader"].get("grade_id") not in decided:
                first = " ".join(str(o.evalue).split())[:100]
                reasons.append(f"test failed in {label} of {name}.ipynb: {o.ename}"
                               + (f": {first}" if first else ""))
    if unpicklable:
        more = f" and {len(unpicklable) - 1} more cell(s)" if len(unpicklable) > 1 else ""
        reasons.append(f"worker not picklable under spawn ({unpicklable[0]} of {name}.ipynb"
                       f"{more}): define worker functions in an importable module, "
                       "not a notebook cell")
    return reasons


def failure_reason(errors: list[BaseException], record: RunRecord) -> str:
    """Why grading stopped, from the exceptions raised (the executor's first)."""
    for exc in errors:
        if isinstance(exc, MemoryError):
            return ("grading this submission needed more memory than the grader allows "
                    "(huge notebook or outputs)")
        if isinstance(exc, DeadKernelError):
            hit = cgroups.memory_limit_hit(record.cgroups)
            return "kernel crashed" + (" (memory limit exceeded)" if hit else "")
        if isinstance(exc, (CellTimeoutError, UnresponsiveKernelError)):
            return ("a cell kept running after its timeout and ignored the interrupt: "
                    "kernel killed, notebook scored 0")
    if not errors:
        return "grading error: nbgrader failed without an exception (see the log)"
    exc = errors[0]
    text = " ".join(str(exc).split())
    return (f"grading error: {type(exc).__name__}" + (f": {text}" if text else ""))[:200]


def limit_reasons(record: RunRecord, reasons_so_far: list[str]) -> list[str]:
    """The memory and process caps the kernels ran into (read before their cgroups go)."""
    reasons = []
    if cgroups.memory_limit_hit(record.cgroups) and not any(
            "memory" in r for r in reasons_so_far):
        reasons.append("memory limit reached")
    refused = cgroups.process_limit_hits(record.cgroups)
    if refused:
        reasons.append(f"process limit reached ({refused} process creations refused)")
    for report in _init_reports(record):
        scratch = report.get("scratch") or {}
        if scratch.get("full"):
            reasons.append("folder size cap reached (what the notebook wrote in its folder "
                           "filled it; later writes failed)")
        elif scratch.get("error"):
            reasons.append(f"the notebook's folder could not be copied back: "
                           f"{scratch['error']}"[:200])
    return reasons


def _init_reports(record: RunRecord) -> list[dict]:
    """What each kernel's sandbox init reported when it ended."""
    reports = []
    for kernel in record.kernels:
        try:
            report = json.loads(Path(kernel.status_file).read_text() or "{}")
        except (OSError, ValueError):
            continue
        if isinstance(report, dict):
            reports.append(report)
    return reports


def leftover_reasons(record: RunRecord) -> list[str]:
    """Processes the submission left running after its notebook (killed by its init)."""
    left = []
    for report in _init_reports(record):
        left += report.get("leftovers", [])
    if len(left) <= SHOWN_LEFTOVERS:
        return [f"process left running after the notebook (killed): {cmd}" for cmd in left]
    # a fork flood leaves hundreds: one line, with a few examples
    examples = "; ".join(dict.fromkeys(cmd[:80] for cmd in left))
    return [f"{len(left)} processes left running after the notebook (killed), "
            f"e.g. {examples}"[:400]]
