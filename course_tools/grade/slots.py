"""A few long-lived worker processes (slots) with a hard deadline per submission.

Each worker imports nbgrader once and grades one submission at a time. A job
that outlives its deadline gets its worker killed, together with everything
that worker started (its kernels' PID namespaces, found by the slot marker, and
the kernels' cgroups), and the slot gets a fresh worker. One broken submission
therefore costs at most its deadline and never stops the others. A worker
says when it is ready (nbgrader imported): its start-up is not charged to the
submission it grades first.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from traitlets.config import Config

from courselib.procs import kill_started

from . import sandbox


@dataclass
class SlotConfig:
    """The limits every kernel of a grading run gets."""

    run_dir: str
    course_root: str
    sandboxed: bool
    uid_base: int = 61000  # slot i runs its kernels as uid_base + i
    memory_bytes: int = 2 << 30
    max_processes: int = 128
    cpu_seconds: int = 600
    cpus: float = 1.0  # cores per kernel at once (cgroup quota)
    disk_bytes: int | None = None  # what a kernel may write in its folder (None: the
    # course's c.SandboxKernelManager.disk_bytes, else its default)

    def kernel_config(self, slot: str, index: int) -> Config:
        """The ``SandboxKernelManager`` settings of one slot."""
        c = Config()
        km = c.SandboxKernelManager
        km.sandboxed, km.run_dir, km.course_root = self.sandboxed, self.run_dir, self.course_root
        km.slot, km.uid = slot, self.uid_base + index
        km.memory_bytes, km.max_processes = self.memory_bytes, self.max_processes
        km.cpu_seconds, km.cpus = self.cpu_seconds, self.cpus
        if self.disk_bytes is not None:
            km.disk_bytes = self.disk_bytes
        return c


UID_BASE, UIDS_PER_RUN, RUNS_AT_ONCE = 61000, 100, 40
LOCKS = "/tmp/course-grade-uids-{}.lock"


class _NoLock:
    def close(self) -> None:
        pass


def uid_range() -> tuple[int, object]:
    """A uid range no other grading run on this machine uses now: (its first uid,
    the open lock that reserves it until the run ends). Two runs sharing uids could
    signal each other's students' processes. Without root there is nothing to
    reserve: each jail is a user namespace of its own, with the teacher's uid only."""
    import fcntl

    if sandbox.rootless():
        return UID_BASE, _NoLock()
    for n in range(RUNS_AT_ONCE):
        try:
            fh = open(LOCKS.format(n), "a")  # noqa: SIM115 - held for the whole run
        except OSError:  # another user's lock file
            continue
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            continue
        return UID_BASE + n * UIDS_PER_RUN, fh
    raise WorkerStartError(f"{RUNS_AT_ONCE} grading runs already run on this machine")


READY = "ready"
STARTUP_LIMIT = 180  # seconds for a worker to start (import nbgrader) on a busy machine


class WorkerStartError(RuntimeError):
    pass


@dataclass
class Slot:
    index: int
    name: str  # the slot marker: <run id>-<index>
    proc: BaseProcess
    conn: Connection  # the parent's end of the pipe to the worker
    started: float  # when the worker, then its current job, started
    ready: bool = False  # the worker has started up and waits for jobs
    job: object | None = None  # the worker.Job being graded, if any
    deadline: float = 0.0


def _worker_main(conn, slot: str, index: int, cfg: SlotConfig) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    # backstop for this root process itself (it holds a notebook's outputs)
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    from . import worker

    kernel = cfg.kernel_config(slot, index)
    work = Path(cfg.run_dir, "work", slot)
    work.mkdir(parents=True, exist_ok=True)
    conn.send(READY)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            result = worker.grade(job, work, kernel)
        except Exception as exc:  # noqa: BLE001 - reported for this student only
            result = worker.Result(job.student, "failed", [f"grading error: {exc!r}"[:300]])
        conn.send(result)


class WorkerSlots:
    def __init__(self, size: int, cfg: SlotConfig, run_id: str):
        self.cfg, self.run_id = cfg, run_id
        self.ctx = mp.get_context("spawn")
        self.slots = [self._start(i) for i in range(size)]

    def _start(self, index: int) -> Slot:
        name = f"{self.run_id}-{index}"
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, name=f"course-grade-{index}",
                                args=(child, name, index, self.cfg), daemon=True)
        proc.start()
        child.close()
        return Slot(index, name, proc, parent, time.monotonic())

    def _kill(self, slot: Slot) -> None:
        kill_started(slot.proc)
        sandbox.end_slot(slot.name)  # the kernels' launchers, orphaned or not
        slot.conn.close()

    def _replace(self, slot: Slot) -> None:
        self._kill(slot)
        self.slots[slot.index] = self._start(slot.index)

    def run(self, jobs: Iterable, deadline_for: Callable, on_result: Callable,
            on_timeout: Callable, on_crash: Callable) -> None:
        pending = list(jobs)
        while pending or any(s.job for s in self.slots):
            for slot in self.slots:
                if slot.ready and slot.job is None and pending:
                    try:
                        slot.conn.send(pending[0])
                    except OSError:  # the idle worker died: a fresh one takes the job
                        self._replace(slot)
                        continue
                    slot.job, slot.started = pending.pop(0), time.monotonic()
                    slot.deadline = slot.started + deadline_for(slot.job)
            watched = [s for s in self.slots if s.job is not None or not s.ready]
            deadlines = [s.deadline for s in watched if s.job is not None]
            timeout = min(deadlines, default=time.monotonic() + 1) - time.monotonic()
            ready = wait([s.conn for s in watched], timeout=max(0.0, min(1.0, timeout)))
            for slot in watched:
                if slot.job is None:
                    self._starting(slot, slot.conn in ready)
                elif slot.conn in ready:
                    job = slot.job
                    try:
                        result = slot.conn.recv()
                    except (EOFError, OSError):
                        self._replace(slot)
                        on_crash(job)
                        continue
                    slot.job = None
                    result.seconds = round(time.monotonic() - slot.started, 1)
                    on_result(job, result)
                elif time.monotonic() > slot.deadline:
                    job = slot.job
                    self._replace(slot)
                    on_timeout(job)

    def _starting(self, slot: Slot, readable: bool) -> None:
        """A worker still starting: ready, or failed to start (no use retrying)."""
        try:
            if readable and slot.conn.recv() == READY:
                slot.ready = True
                return
        except (EOFError, OSError):
            pass
        if readable or time.monotonic() - slot.started > STARTUP_LIMIT:
            self._kill(slot)
            raise WorkerStartError(f"grading worker {slot.index} did not start "
                                   f"(exit code {slot.proc.exitcode})")

    def close(self) -> None:
        for slot in self.slots:
            try:
                slot.conn.send(None)
            except OSError:
                pass
        for slot in self.slots:
            slot.proc.join(15)
            if slot.proc.is_alive():
                self._kill(slot)
