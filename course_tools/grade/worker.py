"""Grade one student's submission in a worker process.

nbgrader's own ``Autograde`` converter does the work (sanitising, restoring
test cells from the gradebook, executing, writing ``autograded/``), with two
changes: the kernel runs in the sandbox (``BoundedExecute``), and the gradebook
it writes is a private copy of a snapshot, so parallel workers never touch the
teacher's gradebook. The parent then records the grades into the real gradebook
from the autograded notebook (``gradebook.record``), one student at a time.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)
from traitlets.config import Config

from . import sandbox
from .config import load_course_config


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
    seconds: float = 0.0  # wall time of grading this submission (set by the pool)

    def to_dict(self) -> dict:
        return asdict(self)


def _cell_label(index: int, cell) -> str:
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    return f"cell {index + 1}" + (f" ({grade_id})" if grade_id else "")


def precheck(job: Job, notebooks: list[str], source_cells: dict) -> tuple[list[str], bool]:
    """Problems found before running anything, and whether grading can go on."""
    reasons, runnable = [], True
    folder = Path(job.course, "submitted", job.student, job.assignment)
    for name in notebooks:
        path = folder / f"{name}.ipynb"
        if not path.is_file():
            reasons.append(f"missing notebook {name}.ipynb (scored 0)")
            continue
        size = path.stat().st_size
        if size > job.max_notebook_bytes:
            reasons.append(f"notebook {name}.ipynb too large ({size >> 20} MiB > "
                           f"{job.max_notebook_bytes >> 20} MiB limit); not graded")
            runnable = False
            continue
        try:
            nb = nbformat.read(path, as_version=4)
            nbformat.validate(nb)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the student's file
            reasons.append(f"invalid notebook file {name}.ipynb ({type(exc).__name__}); not graded")
            runnable = False
            continue
        seen: dict[str, int] = {}
        dups = set()
        for index, cell in enumerate(nb.cells):
            meta = cell.metadata.get("nbgrader", {})
            grade_id = meta.get("grade_id")
            if not grade_id or not (meta.get("grade") or meta.get("solution") or meta.get("locked")):
                continue
            if grade_id in seen and grade_id not in dups:
                dups.add(grade_id)
                reasons.append(f"duplicated grade cell '{grade_id}' in {name}.ipynb "
                               "(only the last copy is graded)")
            seen[grade_id] = index
            src = source_cells.get((name, grade_id))
            if src and src["locked"] and _normal(cell.source) not in src["released"]:
                reasons.append(f"edited test cell '{grade_id}' in {name}.ipynb "
                               "(restored from source before grading)")
        for (nb_name, grade_id), src in source_cells.items():
            if nb_name == name and src["grade"] and grade_id not in seen:
                reasons.append(f"deleted grade cell '{grade_id}' in {name}.ipynb (scored 0)")
    return reasons, runnable


def private_copy(job: Job, work: Path) -> Path:
    """Copy the submission into the worker's own ``submitted/`` for nbgrader to read:
    regular files only (a symlink would make nbgrader, as root, copy whatever it
    points to next to the kernel), and in notebooks every duplicated grade cell
    but the last made a plain cell (nbgrader would abort that student)."""
    top = work / "submitted"
    shutil.rmtree(top, ignore_errors=True)
    src = Path(job.course, "submitted", job.student, job.assignment)
    dest = top / job.student / job.assignment

    def skip(folder, names):
        return [n for n in names if os.path.islink(os.path.join(folder, n))
                or not (os.path.isfile(os.path.join(folder, n))
                        or os.path.isdir(os.path.join(folder, n)))]

    shutil.copytree(src, dest, ignore=skip)
    for path in dest.glob("*.ipynb"):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - prechecked; nbgrader reports it
            continue
        last = {}
        for index, cell in enumerate(nb.cells):
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid:
                last[gid] = index
        changed = False
        for index, cell in enumerate(nb.cells):
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid and last[gid] != index:
                del cell.metadata["nbgrader"]
                changed = True
        if changed:
            nbformat.write(nb, path)
    return top


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _released_forms(source: str) -> set[str]:
    """A locked cell as the source has it, and as released (hidden tests removed)."""
    cell = nbformat.v4.new_code_cell(source)
    try:
        ClearHiddenTests()._remove_hidden_test_region(cell)
    except RuntimeError:
        pass
    return {_normal(source), _normal(cell.source)}


def _source_cells(db_url: str, assignment: str) -> tuple[list[str], dict]:
    cells = {}
    with Gradebook(db_url) as gb:
        a = gb.find_assignment(assignment)
        notebooks = [nb.name for nb in a.notebooks]
        for nb in a.notebooks:
            grade_ids = {g.name for g in nb.grade_cells}
            for sc in nb.source_cells:
                cells[(nb.name, sc.name)] = {
                    "released": _released_forms(sc.source), "locked": sc.locked,
                    "grade": sc.name in grade_ids,
                }
    return notebooks, cells


def outcome_reasons(autograded: Path, notebooks: list[str]) -> list[str]:
    """Why points were lost, read from the executed notebooks."""
    reasons = []
    for name in notebooks:
        path = autograded / f"{name}.ipynb"
        if not path.is_file():
            continue
        nb = nbformat.read(path, as_version=4)
        unpicklable = []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            errors = [o for o in cell.outputs if o.output_type == "error"]
            if sandbox.UNPICKLABLE_PATTERN in text or any(
                sandbox.UNPICKLABLE_PATTERN in str(o.get("evalue", "")) for o in errors
            ):
                unpicklable.append(_cell_label(index, cell))
            for o in errors:
                label = _cell_label(index, cell)
                if o.ename == "CellTimeoutError":
                    reasons.append(f"timeout in {label} of {name}.ipynb")
                elif o.ename == "NotebookTimeoutError":
                    reasons.append(f"notebook time limit reached: {label} of {name}.ipynb not run")
                elif utils.is_grade(cell):
                    first = " ".join(str(o.evalue).split())[:100]
                    reasons.append(f"test failed in {label} of {name}.ipynb: {o.ename}"
                                   + (f": {first}" if first else ""))
        if unpicklable:
            more = f" and {len(unpicklable) - 1} more cell(s)" if len(unpicklable) > 1 else ""
            reasons.append(f"worker not picklable under spawn ({unpicklable[0]} of {name}.ipynb"
                           f"{more}): define worker functions in an importable module, "
                           "not a notebook cell")
    return reasons


def grade(job: Job, work: Path) -> Result:
    """Autograde one submission; everything it needs lives in ``work`` (root-only)."""
    result = Result(job.student)
    db_path = work / f"{job.student}.db"
    shutil.copyfile(job.snapshot, db_path)
    db_url = f"sqlite:///{db_path}"
    notebooks, source_cells = _source_cells(db_url, job.assignment)
    reasons, runnable = precheck(job, notebooks, source_cells)
    result.reasons.extend(reasons)
    if not runnable:
        result.status = "rejected"
        return result
    if not any(Path(job.course, "submitted", job.student, job.assignment, f"{n}.ipynb").is_file()
               for n in notebooks):
        result.status = "failed"
        return result

    c = Config()
    c.merge(load_course_config(job.course))
    c.CourseDirectory.root = job.course
    c.CourseDirectory.submitted_directory = str(private_copy(job, work))
    c.CourseDirectory.db_url = db_url
    c.CourseDirectory.assignment_id = job.assignment
    c.CourseDirectory.student_id = job.student
    c.CourseDirectory.notebook_id = "*"
    c.Autograde.force = True
    c.Autograde.create_student = True
    c.Autograde.autograde_preprocessors = [
        sandbox.BoundedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    if job.cell_timeout is not None:
        c.Execute.timeout = job.cell_timeout
    c.Execute.interrupt_on_timeout = True
    c.BoundedExecute.notebook_timeout = job.notebook_timeout

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("traitlets")
    logger.addHandler(handler)
    cwd = os.getcwd()
    try:
        Autograde(coursedir=CourseDirectory(config=c), config=c).start()
    except Exception:  # noqa: BLE001 - nbgrader reports per-student failures this way
        result.status = "failed"
        log = stream.getvalue()
        if "DeadKernelError" in log or "Kernel died" in log:
            hit = sandbox.memory_limit_hit(sandbox.SETTINGS.cgroups)
            result.reasons.append("kernel crashed" + (" (memory limit exceeded)" if hit else ""))
        elif "CellTimeoutError" in log or "UnresponsiveKernelError" in log:
            result.reasons.append("a cell kept running after its timeout and ignored the "
                                  "interrupt: kernel killed, notebook scored 0")
        else:
            lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
            errors = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): ", ln)]
            last = errors[-1:] or lines[-1:] or [traceback.format_exc()]
            result.reasons.append(f"grading error: {last[0][:200]}")
    finally:
        os.chdir(cwd)
        logger.removeHandler(handler)
        result.log = stream.getvalue()[-20000:]
    autograded = Path(job.course, "autograded", job.student, job.assignment)
    result.reasons.extend(outcome_reasons(autograded, notebooks))
    if sandbox.memory_limit_hit(sandbox.SETTINGS.cgroups) and not any(
        "memory" in r for r in result.reasons
    ):
        result.reasons.append("memory limit reached")
    refused = sandbox.process_limit_hits(sandbox.SETTINGS.cgroups)
    if refused:
        result.reasons.append(f"process limit reached ({refused} process creations refused)")
    return result
