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
import resource
import shutil
import signal
import sys
from contextlib import contextmanager
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

from . import gradebook, outcome, precheck, sandbox, verdicts
from .config import load_course_config, sanitize_feedback
from .execute import BoundedExecute, CapNotebook
from .records import RunRecord

MAX_REASONS = 30  # reasons sent back per student (more are summed up in one)
MAX_REASON = 500  # characters per reason
MAX_LOG = 20000  # characters of the log sent back


@dataclass
class Job:
    course: str
    assignment: str
    student: str
    snapshot: str  # path of the gradebook snapshot (SQLite) to copy
    cell_timeout: int | None = None  # None: the course's Execute.timeout (else 30)
    notebook_timeout: int = 600
    max_notebook_bytes: int = 20 << 20
    max_autograded_bytes: int = 32 << 20  # an autograded notebook is cut to this
    feedback: bool = True
    max_feedback_bytes: int = 8 << 20  # a feedback page is at most this
    feedback_seconds: int = 120  # time for the feedback pages (then: none, said why)
    memory_bytes: int = 3 << 30  # address space of this worker while it grades


@dataclass
class Result:
    student: str
    status: str = "graded"  # graded | failed | rejected
    reasons: list[str] = field(default_factory=list)
    log: str = ""
    seconds: float = 0.0  # wall time of grading this submission (set by the slots)
    # grade_id -> points earned, for the cells the grading run's verdict decides
    cells: dict[str, bool] = field(default_factory=dict)
    grades: dict | None = None  # gradebook.grades_of, when graded
    peak_mib: int = 0  # the worker's peak resident memory so far

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
        BoundedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, CapNotebook,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    c.BoundedExecute.max_notebook_output_bytes = job.max_autograded_bytes
    c.CapNotebook.max_bytes = job.max_autograded_bytes
    if job.cell_timeout is not None:
        c.Execute.timeout = job.cell_timeout
    c.Execute.interrupt_on_timeout = True
    c.BoundedExecute.notebook_timeout = job.notebook_timeout
    c.BoundedExecute.record = record
    c.SandboxKernelManager.record = record
    return c


@contextmanager
def memory_limit(nbytes: int):
    """This worker's address space capped at ``nbytes`` (soft limit, restored after):
    a submission that makes the grader itself huge fails alone, with MemoryError,
    and never takes the machine or the parent with it. The kernels' own launchers
    set their limits below the hard limit, which stays."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = nbytes if hard == resource.RLIM_INFINITY else min(nbytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def peak_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10


def bounded(reasons: list[str]) -> list[str]:
    """At most MAX_REASONS reasons of at most MAX_REASON characters: what the parent
    keeps for a student stays small whatever the submission did."""
    short = [r if len(r) <= MAX_REASON else r[:MAX_REASON - 1] + "…" for r in reasons]
    if len(short) > MAX_REASONS:
        short = short[:MAX_REASONS - 1] + [f"... and {len(short) - MAX_REASONS + 1} more"]
    return short


def grade(job: Job, work: Path, kernel: Config) -> Result:
    """Autograde one submission, store its grades in the private gradebook and write
    its feedback; everything it needs lives in ``work`` (root-only). ``kernel``: the
    slot's ``SandboxKernelManager`` settings."""
    try:
        with memory_limit(job.memory_bytes):
            result = _grade(job, work, kernel)
    except MemoryError:
        result = Result(job.student, "failed", [
            f"grading this submission needed more than the grader's "
            f"{job.memory_bytes >> 20} MiB (huge notebook or outputs): not graded"])
    result.reasons = bounded(result.reasons)
    result.log = result.log[-MAX_LOG:]
    result.peak_mib = peak_mib()
    return result


def _grade(job: Job, work: Path, kernel: Config) -> Result:
    result = Result(job.student)
    db_path = work / f"{job.student}.db"
    shutil.copyfile(job.snapshot, db_path)
    gradebook.clear_moot_extensions(db_path, job.assignment)
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
            differed = verdicts.annotate(autograded, notebooks, decided,
                                         verdicts.compared_cells(job.assignment))
            # a sign of tampering first: the CSV keeps the first 1000 characters
            result.reasons += verdicts.grouped(differed) + verdicts.reasons(decided)
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
    if result.status == "graded":
        finish(job, db_url, result)
    return result


def finish(job: Job, db_url: str, result: Result) -> None:
    """The grades into the private gradebook (the verdict's cells decided), what
    they are for the parent, and the feedback pages from them."""
    try:
        gradebook.record(job.course, db_url, job.assignment, job.student, use_outputs=True,
                         decided=result.cells, config=load_course_config(job.course))
        result.grades = gradebook.grades_of(db_url, job.assignment, job.student)
    except Exception as exc:  # noqa: BLE001 - reported for this student only
        result.status = "failed"
        result.reasons.append(f"could not record grades: {type(exc).__name__}: {exc}"[:300])
        return
    if job.feedback:
        problem = with_time_limit(job.feedback_seconds, generate_feedback, Path(job.course),
                                  db_url, job.assignment, job.student, job.max_feedback_bytes)
        if problem:
            result.reasons.append(problem)


class _TimeUp(BaseException):  # not an Exception: nbgrader's handlers let it through
    pass


def with_time_limit(seconds: int, fn, *args):
    """``fn(*args)``, or the words of why it did not finish within ``seconds`` (a
    page made of a huge notebook must not cost the student's grade its deadline)."""
    def alarm(signum, frame):
        raise _TimeUp

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(max(1, seconds))
    try:
        return fn(*args)
    except _TimeUp:
        return f"feedback not generated: it took longer than {seconds} s"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def graded_outside(assignment: str, autograded: Path, work: Path, kernel: Config) -> dict:
    """The verdict's grade cells (grade_id -> passed, message); all failed, saying
    why, when the grading run reached no verdict."""
    verdict = verdicts.run(assignment, autograded, work, kernel)
    decided = verdicts.cells(verdict)
    if not decided:
        decided = verdicts.failed_everything(assignment, verdict.get("error", "no questions"))
    return decided


def generate_feedback(course: Path, db_url: str, assignment: str, student: str,
                      max_bytes: int) -> str | None:
    """nbgrader's feedback pages for one student, from the gradebook at ``db_url``;
    each page at most ``max_bytes`` (notebooks cut with a note first; a page that is
    still too large is made again from a notebook cut further, then replaced by a
    short page saying so). The words of a failure, or None."""
    folder = course / "feedback" / student / assignment
    budget = max_bytes // 4  # HTML is larger than the notebook it shows (escapes, markup)
    for _ in range(2):
        problem = _feedback(course, db_url, assignment, student, budget)
        if problem:
            return problem
        sizes = {p: p.stat().st_size for p in folder.glob("*.html")}
        largest = max(sizes.values(), default=0)
        if largest <= max_bytes:
            return None
        budget = int(budget * max_bytes / largest * 0.8)
    for page, size in sizes.items():
        if size > max_bytes:
            page.write_text(TOO_LARGE.format(name=page.stem, size=size >> 20,
                                             limit=max_bytes >> 20))
    return f"feedback page cut: larger than {max_bytes >> 20} MiB"


TOO_LARGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{name}</title></head><body>
<p>[grader: the feedback page of this notebook was {size} MiB, more than the grader's
{limit} MiB limit, and is not shown. Your grades are in the gradebook.]</p>
</body></html>
"""


def _feedback(course: Path, db_url: str, assignment: str, student: str,
              budget: int) -> str | None:
    from nbgrader.converters import GenerateFeedback

    c = Config()
    c.merge(load_course_config(course))
    c.CourseDirectory.root = str(course)
    c.CourseDirectory.db_url = db_url
    c.CourseDirectory.assignment_id = assignment
    c.CourseDirectory.student_id = student
    c.HTMLExporter.template_name = "feedback"
    sanitize_feedback(c)  # cut (FeedbackCap), then sanitized
    c.FeedbackCap.max_bytes = budget
    cwd = os.getcwd()
    try:
        conv = GenerateFeedback(coursedir=CourseDirectory(config=c), config=c)
        conv.force = True
        conv.start()
    except Exception as exc:  # noqa: BLE001 - reported for this student only
        return f"feedback not generated: {type(exc).__name__}"
    finally:
        os.chdir(cwd)
    return None
