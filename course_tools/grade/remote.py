"""The worker machine's side of grading on a cluster: what a Dask task runs.

A Dask worker process keeps one :class:`Host`: a grading run of its own on this
machine (run folder, uid range, a private course made of the coordinator's parcel)
with a one-slot :class:`~.slots.WorkerSlots`. Its gradebook holds the assignment's
structure and, while a task runs, the one student that task grades. Each task grades
one submission in that slot exactly as the local grader does (same sandbox, limits
and hard deadline), so a crash or a memory bomb ends in the slot, never in the Dask
worker. The task returns the small :class:`~.worker.Result` and the student's
autograded and feedback files.

Nothing here imports Dask: the functions are plain, Dask pickles them.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import shutil
import socket
import threading
from multiprocessing.util import Finalize
from pathlib import Path

from . import cgroups, gradebook, intake, parcel, sandbox, stale
from .slots import SlotConfig, WorkerSlots, WorkerStartError, uid_range
from .worker import Job, Result

REPO_ROOT = Path(__file__).resolve().parents[2]
CODE = ("course_tools", "hwcheck", "courselib")  # what grades: the same on every machine
# a student's folders in the private course
TOPS = ("submitted", "autograded", "feedback")
DAEMON_FIX = ("its process is daemonic and cannot start the grading slot: start it with "
              "DASK_DISTRIBUTED__WORKER__DAEMON=False (or dask worker --no-nanny)")

_lock = threading.Lock()  # one submission at a time per Dask worker process
_host: Host | None = None


def code_version() -> str:
    """A digest of the grader's and the checks' code: coordinator and workers must agree."""
    digest = hashlib.sha256()
    for top in CODE:
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def probe(version: str, sandboxed: bool) -> str | None:
    """Why this worker cannot grade for a coordinator running code ``version``; None
    when it can. Runs on the worker (``Client.run``)."""
    if mp.current_process().daemon:
        return DAEMON_FIX
    if code_version() != version:
        return (f"its course code differs from the coordinator's ({code_version()} here, "
                f"{version} there): update its checkout and run make env")
    if sandboxed:
        why = sandbox.probe()
        if why:
            return f"it cannot sandbox student code: {why}"
    return None


def grade(course_parcel: dict, sub: dict) -> dict:
    """The Dask task: grade the submission ``sub`` (:func:`.parcel.pack_submission`)."""
    global _host
    with _lock:
        if _host is not None and _host.slot_settings != course_parcel["settings"]["slot"]:
            _host.close()  # other kernel limits: a fresh slot
            _host = None
        if _host is None:
            _host = Host(course_parcel)
        elif _host.key != course_parcel["key"]:
            _host.prepare(course_parcel)  # another run or assignment: same slot
        try:
            return _host.grade(sub)
        except WorkerStartError:  # its slot would not start again: a fresh one next time
            _host.close()
            _host = None
            raise


def failure(job: Job, kind: str, hard_limit: int) -> Result:
    """The local grader's words when a slot times out or crashes (cli._grade)."""
    if kind == "timeout":
        return Result(job.student, "failed", [
            f"grading exceeded the hard limit of {hard_limit} s (everything killed)"],
            seconds=hard_limit)
    return Result(job.student, "failed", [
        "the grading worker crashed (everything it started was killed)"])


class Host:
    """This machine's grading run for one coordinator's parcel."""

    def __init__(self, course_parcel: dict):
        from .cli import make_run_dir

        self.slot_settings = course_parcel["settings"]["slot"]
        stale.clean()  # what a killed worker of this machine left
        self.run = make_run_dir()
        self.alive = stale.hold(self.run)
        self.uid_lock = self.slots = None
        self._finalizer = Finalize(self, Host._cleanup, args=(self.run, self.alive, self),
                                   exitpriority=10)
        try:
            self.course = self.run / "course"
            # the run's shared gradebook, and the copy of it a task grades with
            self.structure, self.snapshot = self.run / "assignment.db", self.run / "snapshot.db"
            self.prepare(course_parcel)
            uid_base, self.uid_lock = uid_range()
            cfg = SlotConfig(run_dir=str(self.run), course_root=str(self.course),
                             uid_base=uid_base, **self.slot_settings)
            self.slots = WorkerSlots(1, cfg, run_id=self.run.name)
        except BaseException:
            self.close()
            raise

    def prepare(self, course_parcel: dict) -> None:
        """The private course and gradebook of a coordinator's run (the slot reads
        both afresh for each submission)."""
        self.key, self.assignment = course_parcel["key"], course_parcel["assignment"]
        self.settings = course_parcel["settings"]
        shutil.rmtree(self.course, ignore_errors=True)
        parcel.write_course(self.course, course_parcel)
        self.structure.write_bytes(course_parcel["snapshot"])

    def grade(self, sub: dict) -> dict:
        a, student = self.assignment, sub["student"]
        for top in TOPS:
            intake.remove_tree(self.course / top / student)  # deep trees too
        parcel.unpack_submission(self.course, a, sub)
        # this student alone (its id, its earlier grades) in a fresh copy of the shared one
        shutil.copyfile(self.structure, self.snapshot)
        gradebook.add_student(self.snapshot, student, sub["gradebook"])
        job = Job(str(self.course), a, student, str(self.snapshot), **self.settings["job"])
        hard_limit = self.settings["hard_limit"]
        got: list[Result] = []
        self.slots.run(
            [job], deadline_for=lambda j: hard_limit,
            on_result=lambda j, r: got.append(r),
            on_timeout=lambda j: got.append(failure(j, "timeout", hard_limit)),
            on_crash=lambda j: got.append(failure(j, "crash", hard_limit)))
        result = got[0]
        out = {"result": result, "host": socket.gethostname(),
               # the folders grading left, even empty (as the local grader leaves them)
               "folders": [f"{top}/{student}{tail}" for top in ("autograded", "feedback")
                           for tail in ("", f"/{a}") if (self.course / top / student /
                                                         tail.lstrip("/")).is_dir()]}
        for top in ("autograded", "feedback"):
            folder = self.course / top / student / a
            out[top], left = parcel.collect(folder, self.settings["max_back_bytes"])
            result.reasons.extend(left)
        for top in TOPS:
            intake.remove_tree(self.course / top / student)  # deep trees too
        self.snapshot.unlink(missing_ok=True)  # nothing of a student stays here
        return out

    @staticmethod
    def _cleanup(run: Path, alive, host: Host) -> None:
        if host.slots is not None:
            host.slots.close()
        for cg in cgroups.named(f"{run.name}-"):
            cgroups.remove(cg)
        shutil.rmtree(run, ignore_errors=True)
        if host.uid_lock is not None:
            host.uid_lock.close()
        alive.close()

    def close(self) -> None:
        self._finalizer()
