"""The trampoline: the course's code at the start of every process that runs student
code. The checker (:mod:`hwcheck.runner`) never imports the student's module; it
starts a child whose target is one of these functions, and the child, before it
touches anything of the student's:

1. closes the checker's report descriptor, if it inherited it (fork);
2. if the check runs as root with a student uid, drops to that uid and gid for good,
   and forgets the checker's multiprocessing helpers (its resource tracker, its
   temporary directory), which run as root;
3. puts the student's folder last on ``sys.path`` (the course's packages stay
   first, so a file named like one of them is not imported instead) and imports
   the module;
4. calls the function: :func:`call` a student's function (hw1's producers and
   consumers; :func:`call_then_stamp` also records when it returned), :func:`drive`
   a course driver that calls the student's functions and sends what it saw to the
   checker (:mod:`hwcheck.driving`);
   :class:`StudentFunction` is the same for a function hw3's server harness runs.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import multiprocessing
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hwcheck import hardening

REPORT_FD: int | None = None  # set by the runner; a fork child closes it first thing


@dataclass(frozen=True)
class Student:
    """Where the student's module is and whom its code runs as."""

    folder: str
    module: str
    uid: int | None = None
    gid: int | None = None


def enter(student: Student):
    """Steps 1-3 above; returns the student's module."""
    if REPORT_FD is not None:
        try:
            os.close(REPORT_FD)
        except OSError:
            pass
    if student.uid is not None:
        _forget_root_helpers()
        hardening.drop_privileges(student.uid, student.gid if student.gid is not None
                                  else student.uid)
    hardening.dumpable_again()
    for package in ("hwcheck", "courselib"):
        # found (not imported: a child needs little of them) before the student's folder
        # is on sys.path, so this is the course's own copy
        root = str(Path(importlib.util.find_spec(package).origin).resolve().parents[1])
        if root not in sys.path:
            sys.path.append(root)
    if student.folder not in sys.path:
        sys.path.append(student.folder)
    importlib.invalidate_caches()
    return importlib.import_module(student.module)


def _forget_root_helpers() -> None:
    """The checker's resource tracker runs as root and unlinks the names written to
    its pipe; its temporary directory is root's. The student's processes start their
    own when they need them."""
    from multiprocessing import process, resource_tracker

    tracker = resource_tracker._resource_tracker
    if getattr(tracker, "_fd", None) is not None:
        try:
            os.close(tracker._fd)
        except OSError:
            pass
        tracker._fd, tracker._pid = None, None
    process.current_process()._config.pop("tempdir", None)


def share_with(student: Student, *objects, depth: int = 3) -> None:
    """Let the student's uid open the named semaphores of the checker's ``objects``
    (a queue, an event): a student's process that hands them on to its own spawn
    children (hw3's ``stop``, given to the pool's workers) opens them by name, and the
    checker, as root, created them for root only (Linux: ``/dev/shm/sem.*``)."""
    from multiprocessing.synchronize import SemLock

    if student.uid is None or depth < 0:
        return
    for obj in objects:
        if isinstance(obj, SemLock):
            name = getattr(obj._semlock, "name", None)
            if name:
                try:
                    os.chmod(f"/dev/shm/sem.{name.lstrip('/')}", 0o666)
                except OSError:
                    pass
        elif hasattr(obj, "__dict__"):
            share_with(student, *vars(obj).values(), depth=depth - 1)


def course_function(path: str):
    """The course's function ``"package.module:name"`` (never the student's)."""
    module, name = path.split(":")
    if module.split(".")[0] not in ("hwcheck", "courselib"):
        raise ValueError(f"not a course function: {path}")
    return getattr(importlib.import_module(module), name)


def call(student: Student, name: str, args: tuple = (), kwargs: dict | None = None):
    """Process target: the student's function ``name`` with ``args``."""
    return getattr(enter(student), name)(*args, **(kwargs or {}))


def call_then_stamp(student: Student, name: str, args: tuple, returned) -> None:
    """Process target: :func:`call`, then ``returned.value = time.monotonic()``, the
    moment the student's function returned. The process is seen ending later, by up
    to a second on a busy machine (its queues flush, its interpreter shuts down)."""
    call(student, name, args)
    returned.value = time.monotonic()


def drive(student: Student, driver: str, params: dict, conn, deadline: float) -> None:
    """Process target: the course's ``driver`` (``"hwcheck.hw1:drive_pipeline"``) on the
    student's module; see :func:`hwcheck.driving.run_in_driver` for what it sends."""
    from hwcheck.recording import RecordingContext, Sender, State, explain, timeout_problems

    fn = course_function(driver)  # imported before the student's folder is on sys.path
    state = State(RecordingContext(multiprocessing.get_context(params.get("method"))), None,
                  params.get("timeout", 30.0))
    state.stage = f"importing {student.module}.py"
    send = Sender(conn)
    main = threading.get_ident()

    def on_timeout():
        try:
            words = timeout_problems(state, main)[0]
        except Exception as exc:  # noqa: BLE001 - the checker says it ran out of time anyway
            words = f"Still not finished after {state.timeout:.0f} s ({exc!r})."
        send({"timed_out": words})

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), on_timeout)
    timer.daemon = True
    timer.start()
    try:
        state.module = enter(student)
        result = fn(state, **{k: v for k, v in params.items() if k not in ("timeout", "method")})
        send({"result": result})
    except BaseException as exc:  # noqa: BLE001 - the student's error, in words
        send({"error": explain(exc, student.module), "facts": state.facts})
    finally:
        timer.cancel()


@dataclass(frozen=True)
class StudentFunction:
    """A function of the student's module, named, not imported: what hw3's harness
    runs in the server process (:func:`load` there, through :func:`enter`). ``via``:
    a course function the student's function is handed to (``"module:name"``)."""

    student: Student
    name: str
    via: str | None = None

    def wrapped(self, via: str) -> StudentFunction:
        return StudentFunction(self.student, self.name, via)

    def load(self):
        fn = getattr(enter(self.student), self.name)
        return functools.partial(course_function(self.via), fn) if self.via else fn


class StudentModule:
    """``module.respond`` is ``StudentFunction(student, "respond")``: the hw3 checks
    take a module and never import it."""

    def __init__(self, student: Student):
        self._student = student

    def __getattr__(self, name: str) -> StudentFunction:
        if name.startswith("_"):
            raise AttributeError(name)
        return StudentFunction(self._student, name)
