"""Grade one student's submission in a worker process.

nbgrader's own ``Autograde`` converter does the work (sanitising, restoring
test cells from the gradebook, executing, writing ``autograded/``), with two
changes: the kernel runs in the sandbox (``BoundedExecute``, configured by the
``kernel`` settings of the worker's slot), and the gradebook it writes is a
private copy of a snapshot, so parallel workers never touch the teacher's
gradebook. The parent then records the grades into the real gradebook from the
autograded notebook (``gradebook.record``), one student at a time.

Steps: ``precheck`` (before running), nbgrader, ``verdicts`` (the graded checks run
again outside the kernel: their verdict is the score that counts), ``outcome``
(reasons in words).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)
from traitlets.config import Config

from . import outcome, precheck, sandbox, verdicts
from .config import load_course_config
from .execute import BoundedExecute
from .records import RunRecord


@dataclass
class Job:
    course: str
    assignment: str
    student: str
    snapshot: str  # path of the gradebook snapshot (SQLite) to copy
    cell_timeout: int | None = None  # None: the course's Execute.timeout (else 30)
    notebook_timeout: int = 600
    max_notebook_bytes: int = 20 << 20


@dataclass
class Result:
    student: str
    status: str = "graded"  # graded | failed | rejected
    reasons: list[str] = field(default_factory=list)
    log: str = ""
    seconds: float = 0.0  # wall time of grading this submission (set by the slots)
    # grade_id -> points earned, for the cells the grading run's verdict decides
    cells: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class _Errors(logging.Handler):
    """nbgrader logs a student's failure from inside its ``except`` block and then
    raises a generic NbGraderException: keep the exception being handled."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.caught: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        if exc is not None and exc not in self.caught:
            self.caught.append(exc)


def autograde_config(job: Job, course_config: Config, kernel: Config, db_url: str,
                     submitted: Path, record: RunRecord) -> Config:
    c = Config()
    c.merge(course_config)
    c.merge(kernel)
    c.CourseDirectory.root = job.course
    c.CourseDirectory.submitted_directory = str(submitted)
    c.CourseDirectory.db_url = db_url
    c.CourseDirectory.assignment_id = job.assignment
    c.CourseDirectory.student_id = job.student
    c.CourseDirectory.notebook_id = "*"
    c.Autograde.force = True
    c.Autograde.create_student = True
    c.Autograde.autograde_preprocessors = [
        BoundedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    if job.cell_timeout is not None:
        c.Execute.timeout = job.cell_timeout
    c.Execute.interrupt_on_timeout = True
    c.BoundedExecute.notebook_timeout = job.notebook_timeout
    c.BoundedExecute.record = record
    c.SandboxKernelManager.record = record
    return c


def grade(job: Job, work: Path, kernel: Config) -> Result:
    """Autograde one submission; everything it needs lives in ``work`` (root-only).
    ``kernel``: the slot's ``SandboxKernelManager`` settings."""
    result = Result(job.student)
    db_path = work / f"{job.student}.db"
    shutil.copyfile(job.snapshot, db_path)
    db_url = f"sqlite:///{db_path}"
    course_config = load_course_config(job.course)
    notebooks, cells = precheck.source_cells(db_url, job.assignment, course_config)
    folder = Path(job.course, "submitted", job.student, job.assignment)
    reasons, runnable = precheck.precheck(folder, notebooks, cells, job.max_notebook_bytes)
    result.reasons.extend(reasons)
    if not runnable:
        result.status = "rejected"
        return result
    if not any((folder / f"{n}.ipynb").is_file() for n in notebooks):
        result.status = "failed"
        return result

    record = RunRecord()
    submitted = precheck.private_copy(folder, work / "submitted", job.student, job.assignment)
    c = autograde_config(job, course_config, kernel, db_url, submitted, record)
    stream = io.StringIO()
    text = logging.StreamHandler(stream)
    text.setLevel(logging.WARNING)
    text.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    errors = _Errors()
    logger = logging.getLogger("traitlets")
    logger.addHandler(text)
    logger.addHandler(errors)
    cwd = os.getcwd()
    autograded = Path(job.course, "autograded", job.student, job.assignment)
    decided: dict[str, dict] = {}
    try:
        Autograde(coursedir=CourseDirectory(config=c), config=c).start()
        if verdicts.applies(job.assignment):
            decided = graded_outside(job.assignment, autograded, work, kernel)
            result.cells = {cid: v["passed"] for cid, v in decided.items()}
            result.reasons += verdicts.reasons(decided)
            result.reasons += verdicts.annotate(autograded, notebooks, decided,
                                                verdicts.compared_cells(job.assignment))
    except Exception as exc:  # noqa: BLE001 - nbgrader reports per-student failures this way
        result.status = "failed"
        caught = [f.error for f in record.failures] + errors.caught + [exc]
        result.reasons.append(outcome.failure_reason(caught, record))
    finally:
        os.chdir(cwd)
        logger.removeHandler(text)
        logger.removeHandler(errors)
        result.log = stream.getvalue()[-20000:]
        try:
            result.reasons += outcome.notebook_reasons(autograded, notebooks, set(decided))
            result.reasons += outcome.limit_reasons(record, result.reasons)
        finally:
            slot = kernel.SandboxKernelManager.get("slot")
            if slot:
                sandbox.end_slot(slot)
    result.reasons += outcome.leftover_reasons(record)
    return result


def graded_outside(assignment: str, autograded: Path, work: Path, kernel: Config) -> dict:
    """The verdict's grade cells (grade_id -> passed, message); all failed, saying
    why, when the grading run reached no verdict."""
    verdict = verdicts.run(assignment, autograded, work, kernel)
    decided = verdicts.cells(verdict)
    if not decided:
        decided = verdicts.failed_everything(assignment, verdict.get("error", "no questions"))
    return decided
