"""A small pool of long-lived worker processes with a hard deadline per job.

Each worker imports nbgrader once and grades one submission at a time. A job
that outlives its deadline gets its worker killed, together with everything
that worker started (its kernels' PID namespaces, found by the slot marker and
the kernels' cgroups), and the slot gets a fresh worker. One broken
submission therefore costs at most its deadline and never stops the others.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from . import sandbox


@dataclass
class SlotConfig:
    run_dir: str
    course_root: str
    sandboxed: bool
    uid_base: int = 61000
    memory_bytes: int = 2 << 30
    max_processes: int = 128
    cpu_seconds: int = 600


def _worker_main(conn, slot: str, index: int, cfg: SlotConfig) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    # backstop for this root process itself (it holds a notebook's outputs)
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    from . import worker

    s = sandbox.SETTINGS
    s.enabled, s.run_dir, s.course_root, s.slot = cfg.sandboxed, cfg.run_dir, cfg.course_root, slot
    s.uid = s.gid = cfg.uid_base + index
    s.memory_bytes, s.max_processes, s.cpu_seconds = (
        cfg.memory_bytes, cfg.max_processes, cfg.cpu_seconds)
    work = Path(cfg.run_dir, "work", slot)
    work.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        s.cgroups, s.status_files = [], []
        try:
            result = worker.grade(job, work)
        except Exception as exc:  # noqa: BLE001 - reported for this student only
            result = worker.Result(job.student, "failed", [f"grading error: {exc!r}"[:300]])
        finally:
            sandbox.kill_marked(slot)
            for cg in s.cgroups:
                sandbox.kill_cgroup(cg)
        for path in s.status_files:
            try:
                report = json.loads(Path(path).read_text() or "{}")
            except (OSError, ValueError):
                continue
            for cmd in report.get("leftovers", []):
                result.reasons.append(f"process left running after the notebook (killed): {cmd}")
        conn.send(result)


class Pool:
    def __init__(self, size: int, cfg: SlotConfig, run_id: str):
        self.cfg, self.run_id = cfg, run_id
        self.ctx = mp.get_context("spawn")
        self.slots: list[dict] = [self._start(i) for i in range(size)]

    def _slot_name(self, index: int) -> str:
        return f"{self.run_id}-{index}"

    def _start(self, index: int) -> dict:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, name=f"course-grade-{index}",
                                args=(child, self._slot_name(index), index, self.cfg),
                                daemon=True)
        proc.start()
        child.close()
        return {"index": index, "proc": proc, "conn": parent, "job": None, "deadline": 0.0}

    def _kill(self, slot: dict) -> None:
        name = self._slot_name(slot["index"])
        try:
            os.kill(slot["proc"].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        slot["proc"].join(10)
        sandbox.kill_marked(name)
        for controller in ("memory", "pids"):
            parent = sandbox.CGROUP_ROOT / controller / sandbox.CGROUP_PARENT
            if parent.is_dir():
                for cg in parent.iterdir():
                    if cg.is_dir() and cg.name.startswith(f"{name}-"):
                        sandbox.kill_cgroup(cg)
        slot["conn"].close()

    def run(self, jobs: Iterable, deadline_for: Callable, on_result: Callable,
            on_timeout: Callable, on_crash: Callable) -> None:
        pending = list(jobs)
        while pending or any(s["job"] for s in self.slots):
            for slot in self.slots:
                if slot["job"] is None and pending:
                    job = pending.pop(0)
                    slot["job"], slot["started"] = job, time.monotonic()
                    slot["deadline"] = slot["started"] + deadline_for(job)
                    slot["conn"].send(job)
            busy = [s for s in self.slots if s["job"] is not None]
            next_deadline = min(s["deadline"] for s in busy)
            ready = wait([s["conn"] for s in busy],
                         timeout=max(0.0, min(1.0, next_deadline - time.monotonic())))
            for slot in busy:
                job = slot["job"]
                if slot["conn"] in ready:
                    try:
                        result = slot["conn"].recv()
                    except (EOFError, OSError):
                        self._replace(slot)
                        on_crash(job)
                        continue
                    slot["job"] = None
                    result.seconds = round(time.monotonic() - slot["started"], 1)
                    on_result(job, result)
                elif time.monotonic() > slot["deadline"]:
                    self._replace(slot)
                    on_timeout(job)

    def _replace(self, slot: dict) -> None:
        self._kill(slot)
        fresh = self._start(slot["index"])
        slot.update(fresh)

    def close(self) -> None:
        for slot in self.slots:
            try:
                slot["conn"].send(None)
            except OSError:
                pass
        for slot in self.slots:
            slot["proc"].join(15)
            if slot["proc"].is_alive():
                self._kill(slot)
