"""Plain ``nbgrader autograde``, and so formgrader's Autograde button, graded as
``make grade`` grades: the student's notebook runs in the grader's sandbox with the
same limits, and the grade cells are scored by the grading run outside the kernel.

The course's ``nbgrader_config.py`` calls :func:`configure`, which puts
:class:`SandboxedAutograde` in place of nbgrader's ``Execute`` for autograding only
(``nbgrader validate``, which students run, is untouched). ``course-grade`` sets its
own preprocessors and is not affected.

One :class:`PlainRun` per process (an ``nbgrader autograde`` command, or the
formgrader server) holds what ``course-grade`` holds per run: a root-only run folder
under /tmp (alive while the process lives, cleaned by the next run if it is killed)
and a reserved range of unprivileged uids. Each notebook gets its own slot in it
(marker, cgroups, uid), ended as soon as its verdict is in, so that two notebooks
graded at once by formgrader never end each other's processes.

Where the sandbox cannot work, autograding refuses, saying why, unless the teacher
sets ``COURSE_GRADE_UNSANDBOXED=1`` (student code then runs with the teacher's rights).
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
import threading
from pathlib import Path

from nbgrader.coursedir import CourseDirectory
from traitlets import Integer
from traitlets.config import Config

from courselib.procs import kill_all, marked

from . import cgroups, sandbox, stale, verdicts
from .execute import BoundedExecute
from .slots import UIDS_PER_RUN, uid_range

UNSANDBOXED_ENV = "COURSE_GRADE_UNSANDBOXED"


class SandboxUnavailable(RuntimeError):
    pass


class PlainRun:
    """This process's grading run: its folder, its uids, and a slot per notebook."""

    _lock = threading.Lock()
    _current: PlainRun | None = None

    def __init__(self):
        from .cli import make_run_dir

        for gone in stale.clean():
            print(f"cleaned up what the killed grading run {gone} left")
        self.dir = make_run_dir()
        self._alive = stale.hold(self.dir)
        self.uid_base, self._uid_lock = uid_range()
        self._numbers = itertools.count()
        atexit.register(self.close)

    @classmethod
    def current(cls) -> PlainRun:
        with cls._lock:
            if cls._current is None:
                cls._current = cls()
            return cls._current

    def new_slot(self) -> tuple[str, int]:
        """A fresh slot marker and the uid its student code runs as."""
        n = next(self._numbers)
        return f"{self.dir.name}-p{n}", self.uid_base + n % UIDS_PER_RUN

    def close(self) -> None:
        # normally every slot has ended already
        kill_all(marked(sandbox.MARKER, f"{self.dir.name}-", prefix=True))
        for cg in cgroups.named(f"{self.dir.name}-"):
            cgroups.remove(cg)
        shutil.rmtree(self.dir, ignore_errors=True)
        self._uid_lock.close()
        self._alive.close()


def sandboxed() -> bool:
    """Whether student code runs in the sandbox (else: refuse, unless opted out)."""
    if os.environ.get(UNSANDBOXED_ENV) == "1":
        return False
    why = sandbox.probe()
    if why:
        raise SandboxUnavailable(
            f"cannot sandbox student code here: {why}. Refusing to autograde. Set "
            f"{UNSANDBOXED_ENV}=1 to run student code unconfined, with your rights, at your "
            "own risk.")
    return True


class SandboxedAutograde(BoundedExecute):
    """nbgrader's Execute for autograding: the notebook runs in a sandboxed kernel, then
    the course's checks decide its grade cells (:mod:`.verdicts`), before nbgrader's
    SaveAutoGrades scores the notebook from its outputs."""

    memory_bytes = Integer(2 << 30, help="Memory cap per kernel.").tag(config=True)
    max_processes = Integer(128, help="Process cap per kernel.").tag(config=True)

    def preprocess(self, nb, resources, km=None):
        is_sandboxed = sandboxed()
        run = PlainRun.current()
        slot, uid = run.new_slot()
        kernel = self._kernel_config(run, slot, uid, is_sandboxed)
        self._kernel_settings = dict(kernel.SandboxKernelManager)
        folder = Path(resources["metadata"]["path"])
        try:
            drop_linked_copies(self.config, resources, folder)
            nb, resources = super().preprocess(nb, resources, km=km)
            assignment = resources["nbgrader"]["assignment"]
            if verdicts.applies(assignment) and _has_graded_checks(nb):
                self._apply_verdict(nb, assignment, folder, run, kernel)
            return nb, resources
        finally:
            sandbox.end_slot(slot)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        for name, value in self._kernel_settings.items():
            setattr(km, name, value)
        return km

    def _kernel_config(self, run: PlainRun, slot: str, uid: int, is_sandboxed: bool) -> Config:
        c = Config()
        km = c.SandboxKernelManager
        km.sandboxed, km.run_dir, km.slot, km.uid = is_sandboxed, str(run.dir), slot, uid
        km.course_root = str(Path(CourseDirectory(config=self.config).root).resolve())
        km.memory_bytes, km.max_processes = self.memory_bytes, self.max_processes
        km.cpu_seconds = self.notebook_timeout
        return c

    def _apply_verdict(self, nb, assignment: str, folder: Path, run: PlainRun,
                       kernel: Config) -> None:
        work = Path(tempfile.mkdtemp(prefix="plain-", dir=run.dir / "work"))
        try:
            verdict = verdicts.run(assignment, folder, work, kernel)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        decided = verdicts.cells(verdict) or verdicts.failed_everything(
            assignment, verdict.get("error", "no questions"))
        differed = verdicts.annotate_notebook(nb, decided, verdicts.compared_cells(assignment),
                                              scored_by_outputs=True)
        for line in verdicts.grouped(differed) + verdicts.reasons(decided):
            self.log.warning("%s", line)


def _has_graded_checks(nb) -> bool:
    return any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells)


def drop_linked_copies(config: Config, resources: dict, folder: Path) -> None:
    """nbgrader copied the submission's other files into ``folder``, following links:
    remove each copy whose original is a link or not a regular file (a link to a
    teacher's file would otherwise put its content where the kernel can read it)."""
    coursedir = CourseDirectory(config=config)
    info = resources["nbgrader"]
    submitted = Path(coursedir.format_path(coursedir.submitted_directory, info["student"],
                                           info["assignment"]))
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            copy = Path(dirpath, name)
            original = submitted / copy.relative_to(folder)
            if copy.suffix == ".ipynb" or not os.path.lexists(original):
                continue
            if original.is_symlink() or not original.is_file():
                copy.unlink()
