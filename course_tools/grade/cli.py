"""``course-grade ASSIGNMENT``: grade every submission of an assignment.

Parallel (one worker per core by default), every kernel sandboxed, every wait
bounded; grades go into nbgrader's gradebook, then ``feedback/`` (HTML), a grades
CSV and a summary table. Re-running resumes: unchanged submissions that were
graded already are skipped unless ``--force``. All the work on a submission,
feedback included, happens in a worker slot within that submission's limits; this
process only hands out jobs and writes the small results into the gradebook, so it
stays small whatever is submitted.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from . import cgroups, gradebook, intake, report, roster, sandbox, stale, verdicts
from .config import course_db_url
from .slots import SlotConfig, WorkerSlots, WorkerStartError, uid_range
from .worker import Job, Result


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="course-grade", description=__doc__.split("\n\n")[0])
    p.add_argument("assignment")
    p.add_argument("--course", default=".", help="course root (default: current directory)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="submissions graded at once (default: one per core)")
    p.add_argument("--cell-timeout", type=int,
                   help="seconds per cell (default: the course's Execute.timeout, else 30)")
    p.add_argument("--notebook-timeout", type=int, default=300,
                   help="seconds per notebook (default 300)")
    p.add_argument("--hard-limit", type=int,
                   help="seconds after which a submission's worker and everything it started "
                        "are killed (default: notebook timeout x notebooks + the "
                        "grading run's limit + 120)")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory per submission")
    p.add_argument("--max-processes", type=int, default=128, help="processes per submission")
    p.add_argument("--cpus", type=float, default=1.0,
                   help="CPU cores one submission may use at once (default 1; 0: no cap), "
                        "so that a busy neighbour cannot cost an honest student points")
    p.add_argument("--disk-mb", type=int,
                   help="what one kernel may write in its folder, in total (default: the "
                        "course's c.SandboxKernelManager.disk_bytes, else 256)")
    p.add_argument("--max-notebook-mb", type=int, default=20,
                   help="larger notebooks are reported, not run (default 20)")
    p.add_argument("--max-autograded-mb", type=int, default=32,
                   help="an autograded notebook is cut to this, with a note (default 32)")
    p.add_argument("--max-feedback-mb", type=int, default=8,
                   help="largest feedback page (default 8)")
    p.add_argument("--feedback-timeout", type=int, default=120,
                   help="seconds for one student's feedback pages (default 120)")
    p.add_argument("--worker-memory-mb", type=int, default=3072,
                   help="memory (address space) of the grader's own process for one "
                        "submission; beyond it that submission fails alone (default 3072)")
    p.add_argument("--roster", type=Path,
                   help="CSV of the class (id, first and last name, email; or an LMS's "
                        "export): the names go into the gradebook")
    p.add_argument("--force", action="store_true", help="regrade students graded already")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--lms", type=Path, help="folder or zip of notebooks named by student")
    p.add_argument("--db-url", help="gradebook URL (default: the course's nbgrader config)")
    p.add_argument("--csv", type=Path, help="grades CSV (default: grades/<assignment>.csv)")
    p.add_argument("--no-feedback", action="store_true", help="do not write feedback/")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code with YOUR rights, unconfined (not recommended)")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="grade on a Dask cluster: each submission on a worker machine, in "
                        "its sandbox; this machine writes the results (see README)")
    p.add_argument("--connect-timeout", type=float, default=10,
                   help="seconds to reach the scheduler and find a worker (default 10)")
    return p.parse_args(argv)


def make_run_dir() -> Path:
    run = Path(tempfile.mkdtemp(prefix="course-grade-", dir="/tmp"))
    run.chmod(0o711)  # kernels (other uids) need to traverse to their socket folder
    for sub, mode in (("kernels", 0o711), ("specs", 0o700), ("status", 0o700), ("work", 0o700)):
        (run / sub).mkdir(mode=mode)
        (run / sub).chmod(mode)
    return run


def main(argv=None) -> int:
    args = parse_args(argv)
    # nbgrader shells out to tools installed beside this interpreter (alembic creates
    # the gradebook), so work even when the teacher did not activate the venv.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy noise from nbgrader.api
    warnings.filterwarnings("ignore", message=".*not in session.*")
    course = Path(args.course).resolve()
    a = args.assignment
    db_url = course_db_url(course, args.db_url)
    notebooks = gradebook.assignment_notebooks(db_url, a)
    if not notebooks and (course / "source" / a).is_dir():
        # a fresh clone: the assignment exists in source/ but not yet in the gradebook
        print(f"{a} is not in the gradebook yet: registering it from source/{a} "
              f"(nbgrader generate_assignment {a})", file=sys.stderr)
        problem = gradebook.register(course, a)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        notebooks = gradebook.assignment_notebooks(db_url, a)
    if not notebooks:
        print(f"error: assignment '{a}' is neither in the gradebook ({db_url}) nor in "
              f"{course / 'source' / a}", file=sys.stderr)
        return 2
    if args.lms:
        for problem in intake.import_lms(args.lms, course, a, notebooks):
            print(f"import: {problem}", file=sys.stderr)

    if args.roster and not add_roster(args.roster, db_url, intake.submissions(course, a)[0]):
        return 2

    if args.no_sandbox:
        print("WARNING: --no-sandbox: student code runs with your rights, with network "
              "access, no limits on processes or memory.", file=sys.stderr)
    elif not args.scheduler:  # on a cluster, each worker is probed instead
        why = sandbox.probe()
        if why:
            print(f"error: cannot sandbox student code here: {why}.\nRefusing to grade. "
                  "Use --no-sandbox (make grade NO_SANDBOX=1) to grade unconfined, "
                  "at your own risk.", file=sys.stderr)
            return 3

    students, bad_names = intake.submissions(course, a)
    if args.student:
        students = [s for s in students if s in set(args.student)]
    state = report.load_state(course, a)
    for s in students:  # before the fingerprints: the file is part of the submission
        gradebook.record_file_time(course / "submitted" / s / a)
    prints = {s: intake.fingerprint(course, a, s) for s in students}
    todo = [s for s in students
            if args.force or state.get(s, {}).get("fingerprint") != prints[s]]
    skipped = len(students) - len(todo)
    print(f"{a}: {len(students)} submission(s), {len(todo)} to grade"
          + (f", {skipped} unchanged and graded already (--force regrades)" if skipped else ""),
          file=sys.stderr)

    if todo:
        peaks: list[int] = []
        try:
            if args.scheduler:
                from . import cluster  # imports Dask: only here

                cluster.grade(args, course, db_url, notebooks, todo, prints, state, peaks)
            else:
                _grade(args, course, db_url, notebooks, todo, prints, state, peaks)
        except WorkerStartError as exc:  # cluster.ClusterError too
            print(f"error: {exc}; nothing more graded", file=sys.stderr)
            return 4
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
        print(f"memory: this process peaked at {own} MiB, the largest grading worker at "
              f"{max(peaks, default=0)} MiB", file=sys.stderr)

    rows = []
    for s in students:
        st = state.get(s, {})
        rows.append({"student_id": s, "score": st.get("score", 0.0),
                     "max_score": st.get("max_score", 0.0), "status": st.get("status", "?"),
                     "reasons": st.get("reasons", []), "seconds": st.get("seconds", "")})
    for name in bad_names:
        rows.append({"student_id": name, "score": 0.0, "max_score": 0.0, "status": "rejected",
                     "reasons": ["folder name is not a usable student id; not graded"]})
    csv_path = args.csv or course / "grades" / f"{a}.csv"
    report.write_csv(csv_path, rows)
    print(report.summary_table(rows))
    print(f"\ngrades CSV: {csv_path}")
    return 0


def add_roster(path: Path, db_url: str, students: list[str]) -> bool:
    """The roster's names into the gradebook; False when it holds nobody usable."""
    people, problems = roster.read(path, set(students))
    for problem in problems:
        print(f"roster: {problem}", file=sys.stderr)
    if not people:
        print(f"error: no usable student in the roster {path}", file=sys.stderr)
        return False
    gradebook.add_students(db_url, people)
    listed = {p.id for p in people}
    unlisted = [s for s in students if s not in listed]
    print(f"roster: {len(people)} student(s) named in the gradebook"
          + (f"; {len(unlisted)} submitter(s) not in it: {', '.join(unlisted[:5])}"
             + (" ..." if len(unlisted) > 5 else "") if unlisted else ""), file=sys.stderr)
    return True


def _grade(args, course: Path, db_url: str, notebooks: list[str], todo: list[str],
           prints: dict, state: dict, peaks: list[int]) -> None:
    a = args.assignment
    for gone in stale.clean():
        print(f"cleaned up what the killed grading run {gone} left", file=sys.stderr)
    run = make_run_dir()
    alive = stale.hold(run)
    print(f"grading run {run.name}", file=sys.stderr)
    if not args.no_sandbox:
        print(f"student code: {sandbox.confinement()}", file=sys.stderr)
    slots = None
    bar = tqdm(total=len(todo), unit="student", file=sys.stderr, desc=f"grading {a}")
    hard_limit = hard_limit_of(args, notebooks)
    finish = recorder(course, db_url, a, prints, state, peaks, bar)

    uid_lock = None
    try:
        gradebook.snapshot(db_url, run / "snapshot.db")
        for s in todo:
            for top in ("autograded", "feedback"):
                intake.remove_tree(course / top / s / a)
        uid_base, uid_lock = uid_range()
        cfg = SlotConfig(run_dir=str(run), course_root=str(course), uid_base=uid_base,
                         **slot_options(args, notebooks))
        slots = WorkerSlots(max(1, min(args.workers, len(todo))), cfg, run_id=run.name)
        jobs = [Job(str(course), a, s, str(run / "snapshot.db"), **job_options(args))
                for s in todo]
        slots.run(
            jobs,
            deadline_for=lambda job: hard_limit,
            on_result=finish,
            on_timeout=lambda job: finish(job, Result(job.student, "failed", [
                f"grading exceeded the hard limit of {hard_limit} s (everything killed)"],
                seconds=hard_limit)),
            on_crash=lambda job: finish(job, Result(job.student, "failed", [
                "the grading worker crashed (everything it started was killed)"])),
        )
    finally:
        if slots is not None:
            slots.close()
        for cg in cgroups.named(f"{run.name}-"):  # normally gone already
            cgroups.remove(cg)
        bar.close()
        shutil.rmtree(run, ignore_errors=True)
        if uid_lock is not None:
            uid_lock.close()  # the uid range is free for the next run
        alive.close()


def hard_limit_of(args, notebooks: list[str]) -> int:
    """Seconds after which a submission's worker and all it started are killed."""
    verdict = verdicts.time_limit(args.assignment) if verdicts.applies(args.assignment) else 0
    feedback = 0 if args.no_feedback else args.feedback_timeout
    return args.hard_limit or int(
        args.notebook_timeout * len(notebooks) + verdict + feedback + 120)


def slot_options(args, notebooks: list[str]) -> dict:
    """The kernels' limits (``SlotConfig`` less its run's folders and uids)."""
    return dict(sandboxed=not args.no_sandbox,
                memory_bytes=args.memory_mb << 20, max_processes=args.max_processes,
                cpus=args.cpus,
                disk_bytes=None if args.disk_mb is None else args.disk_mb << 20,
                cpu_seconds=args.notebook_timeout * len(notebooks))


def job_options(args) -> dict:
    """A ``Job``'s settings (less its course, assignment, student and snapshot)."""
    return dict(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                max_notebook_bytes=args.max_notebook_mb << 20,
                max_autograded_bytes=args.max_autograded_mb << 20,
                feedback=not args.no_feedback, max_feedback_bytes=args.max_feedback_mb << 20,
                feedback_seconds=args.feedback_timeout,
                memory_bytes=args.worker_memory_mb << 20)


def recorder(course: Path, db_url: str, a: str, prints: dict, state: dict, peaks: list[int],
             bar):
    """``finish(job, result)``: one student's result into the gradebook, the resume
    state and the progress bar (in this process, one student at a time)."""

    def finish(job: Job, result: Result) -> None:
        """Only numbers and short words from the worker: never a notebook."""
        graded = result.status == "graded"
        peaks.append(result.peak_mib)
        stamp = (result.grades or {}).get("timestamp")
        when = (datetime.fromisoformat(stamp) if stamp else
                gradebook.submission_time(course / "submitted" / job.student / a))
        try:
            gradebook.store(db_url, a, job.student, result.grades if graded else None, when)
        except Exception as exc:  # noqa: BLE001 - reported; the other students go on
            result.status = "failed"
            result.reasons.append(f"could not record grades in the gradebook: {exc!r}"[:300])
        try:
            score, max_score = gradebook.scores(db_url, a, job.student)
        except Exception:  # noqa: BLE001 - same as above
            score, max_score = 0.0, 0.0
        state[job.student] = {"fingerprint": prints[job.student], "status": result.status,
                              "reasons": result.reasons, "score": score, "max_score": max_score,
                              "seconds": result.seconds,
                              "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        report.save_state(course, a, state)
        bar.update(1)

    return finish


if __name__ == "__main__":
    sys.exit(main())
