"""``course-grade ASSIGNMENT --scheduler tcp://HOST:8786``: grade on a Dask cluster.

Each submission is one Dask task (:func:`.remote.grade`), run on a worker machine in
that machine's own sandbox, exactly as locally. No shared filesystem: the course's
config, the assignment's source and the assignment's structure in a gradebook of its
own (no student, no grade) go to the workers once (scattered), each task carries one
student's notebooks and that student's rows of the gradebook (earlier grades, an
extension), and brings back that student's autograded and feedback files with the
small result. This process alone
writes the gradebook, ``autograded/``, ``feedback/``, the CSV and the resume state,
one student at a time, with the local grader's own code (``cli.recorder``).

Workers are probed first (same code, sandbox works, able to start the grading slot);
the others are refused, by name, and get no task. A worker that dies mid-task: Dask
runs the task again elsewhere, and a student's result is recorded once, when its
task's result first arrives. Dask is imported only here, only with ``--scheduler``.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from tqdm import tqdm

from . import gradebook, intake, parcel, remote
from .slots import WorkerStartError
from .worker import Result

CHECK_EVERY = 5.0  # seconds between looks at the cluster's workers while grading


class ClusterError(WorkerStartError):
    """The cluster cannot grade (no scheduler, no usable worker): said in words."""


def connect(address: str, timeout: float):
    from distributed import Client

    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:  # ValueError: not an address
        raise ClusterError(f"cannot reach the Dask scheduler at {address} within "
                           f"{timeout:g} s ({type(exc).__name__}: {exc}); is it running, "
                           "and its port open from here?") from None
    # Dask logs a lost scheduler as tracebacks; the grader says it in one line
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    return client


def probe(client, sandboxed: bool, known: dict[str, str | None]) -> None:
    """Probe the workers not in ``known`` yet: ``known[address]`` = why it cannot grade
    (None: it can)."""
    new = [w for w in client.scheduler_info(n_workers=-1)["workers"] if w not in known]
    if not new:
        return
    answers = client.run(remote.probe, remote.code_version(), sandboxed, workers=new,
                         on_error="return")
    for worker in new:
        answer = answers.get(worker, "it did not answer the probe")
        if isinstance(answer, BaseException):
            answer = f"the probe failed there: {answer!r}"[:300]
        known[worker] = answer
        if answer:
            print(f"refused worker {worker}: {answer}", file=sys.stderr)


def usable(client, known: dict) -> list[str]:
    alive = set(client.scheduler_info(n_workers=-1)["workers"])
    return sorted(w for w, why in known.items() if why is None and w in alive)


def first_workers(client, sandboxed: bool, timeout: float) -> tuple[dict, list[str]]:
    """Probe the cluster's workers, waiting up to ``timeout`` s for one that can grade."""
    known: dict[str, str | None] = {}
    deadline = time.monotonic() + timeout
    while True:
        probe(client, sandboxed, known)
        good = usable(client, known)
        if good:
            return known, good
        if time.monotonic() > deadline:
            refused = "; ".join(f"{w}: {why}" for w, why in known.items()) or "none connected"
            raise ClusterError(f"no Dask worker of {client.scheduler.address} can grade "
                               f"(workers: {refused})")
        time.sleep(0.5)


def settings_of(args, notebooks: list[str]) -> dict:
    from .cli import hard_limit_of, job_options, slot_options

    disk_mb = 256 if args.disk_mb is None else args.disk_mb
    return {"slot": slot_options(args, notebooks), "job": job_options(args),
            "hard_limit": hard_limit_of(args, notebooks),
            # what one student's folder may hold: the notebooks as capped, and what the
            # kernel may write (the disk cap); feedback pages are smaller still
            "max_back_bytes": (args.max_autograded_mb * max(1, len(notebooks)) + disk_mb
                               + 16) << 20}


def what_travels(args, course: Path, db_url: str, notebooks: list[str], todo: list[str]
                 ) -> tuple[dict, dict]:
    """The run's parcel for every worker (:func:`.parcel.course_parcel`, with the
    assignment's structure for gradebook: no person in it) and, by student to grade,
    the gradebook rows of that student alone (:func:`.gradebook.own_rows`), read at
    the moment the local grader would take its snapshot."""
    a = args.assignment
    with tempfile.TemporaryDirectory(prefix="course-grade-cluster-") as tmp:
        structure = Path(tmp) / "assignment.db"
        gradebook.assignment_snapshot(db_url, a, structure)
        own = gradebook.own_rows(db_url, a, todo)
        try:
            return parcel.course_parcel(course, a, structure, settings_of(args, notebooks)), own
        except (parcel.ParcelError, OSError) as exc:
            raise ClusterError(str(exc)) from None


def grade(args, course: Path, db_url: str, notebooks: list[str], todo: list[str],
          prints: dict, state: dict, peaks: list[int]) -> None:
    from distributed.client import CancelledError

    from .cli import recorder

    a = args.assignment
    client = connect(args.scheduler, args.connect_timeout)
    bar = None
    try:
        known, good = first_workers(client, not args.no_sandbox, args.connect_timeout)
        print(f"grading on {client.scheduler.address}: {len(good)} worker(s) "
              f"({', '.join(good)})", file=sys.stderr)
        shared, own = what_travels(args, course, db_url, notebooks, todo)
        for s in todo:
            for top in ("autograded", "feedback"):
                intake.remove_tree(course / top / s / a)
        [shared_future] = client.scatter([shared], workers=good, broadcast=True,
                                          hash=False)
        del shared
        bar = tqdm(total=len(todo), unit="student", file=sys.stderr, desc=f"grading {a}")
        run = Run(client, args, course, notebooks, shared_future, known, good,
                  recorder(course, db_url, a, prints, state, peaks, bar))
        run.queue, run.own = list(todo), own
        try:
            run.loop()
        except (CancelledError, OSError) as exc:  # the scheduler is gone
            raise ClusterError(f"lost the Dask scheduler while grading ({type(exc).__name__}); "
                               f"{len(run.queue) + len(run.pending)} submission(s) not graded "
                               "(run again to grade them: the others are kept)") from None
    finally:
        if bar is not None:
            bar.close()
        client.close(timeout=10)


class Run:
    """One grading run's tasks: the queue of students, the tasks in flight (at most a
    few per worker: each holds a student's notebooks), the workers they may run on."""

    def __init__(self, client, args, course: Path, notebooks: list[str], shared, known: dict,
                 good: list[str], finish):
        self.client, self.args, self.course, self.notebooks = client, args, course, notebooks
        self.shared, self.known, self.good, self.finish = shared, known, good, finish
        self.queue: list[str] = []
        self.own: dict = {}  # student -> its gradebook rows (gradebook.own_rows)
        self.pending: dict = {}  # future -> student

    def submit(self, student: str) -> None:
        a = self.args.assignment
        sub = parcel.pack_submission(self.course, a, student, self.notebooks,
                                     self.args.max_notebook_mb << 20,
                                     self.own.get(student, {}))
        future = self.client.submit(remote.grade, self.shared, sub, pure=False,
                                    key=f"grade-{a}-{student}-{time.time_ns()}",
                                    workers=self.good, allow_other_workers=False)
        self.pending[future] = student

    def loop(self) -> None:
        from distributed import wait

        lost_since = None
        while self.queue or self.pending:
            while self.queue and len(self.pending) < max(4, 2 * len(self.good)):
                self.submit(self.queue.pop(0))
            try:
                wait(list(self.pending), timeout=CHECK_EVERY, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            for future in [f for f in self.pending if f.done()]:
                student = self.pending.pop(future)  # recorded once, whatever ran twice
                self.finish(SimpleNamespace(student=student),
                            received(self.course, self.args.assignment, student, future))
            probe(self.client, not self.args.no_sandbox, self.known)
            now_good = usable(self.client, self.known)
            if set(now_good) & set(self.good):
                self.good, lost_since = sorted(set(self.good) | set(now_good)), None
                continue
            # every worker the tasks may run on is gone: give them to the new ones
            lost_since = lost_since or time.monotonic()
            if now_good:
                self.good, lost_since = now_good, None
                stuck = [f for f in self.pending if not f.done()]
                self.queue = [self.pending.pop(f) for f in stuck] + self.queue
                self.client.cancel(stuck)  # a late result of theirs is never read
            elif time.monotonic() - lost_since > self.args.connect_timeout * 6:
                raise ClusterError(f"no usable Dask worker left for "
                                   f"{time.monotonic() - lost_since:.0f} s; "
                                   f"{len(self.queue) + len(self.pending)} submission(s) "
                                   "not graded (run again to grade them)")


def received(course: Path, a: str, student: str, future) -> Result:
    """The result of a finished task, its files written into the course. A task that
    failed (e.g. KilledWorker: its workers kept dying) fails this student alone; a
    cancelled one (the scheduler is gone) raises CancelledError."""
    if future.status == "error":
        exc = future.exception()
        return Result(student, "failed", [f"grading on the cluster failed: {exc!r}"[:300]])
    out = future.result()
    result = out["result"]
    for top in ("autograded", "feedback"):
        folder = course / top / student / a
        intake.remove_tree(folder)
        if out[top]:
            try:
                parcel.write_tree(folder, out[top])
            except (parcel.ParcelError, OSError) as exc:
                result.reasons.append(f"could not write {top}/ from the worker: {exc}"[:300])
    for name in out["folders"]:  # as grading left them there, even empty
        top, who, *rest = name.split("/")
        if top in ("autograded", "feedback") and who == student and rest in ([], [a]):
            (course / top / who).joinpath(*rest).mkdir(parents=True, exist_ok=True)
    return result
