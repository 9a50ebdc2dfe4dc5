"""Homework 1's driver side: :func:`drive_pipeline` runs in the driver child (the
student's uid, :func:`hwcheck.child.drive`), calls the student's ``run_pipeline`` /
``run_joinable`` on a recording context and watches it (:class:`hwcheck.recording.PipelineWatch`):
the producers are the processes that iterated a batch, the consumers the others,
however the student built them. What it finds only adds problems; the checker's side
is :mod:`hwcheck.hw1`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading

from hwcheck.recording import PipelineWatch, State, crashed_problems, make_batches, plain, running


def drive_pipeline(state: State, producers, per_producer, consumers, gap, joinable,
                   late=0.0) -> dict:
    """In the driver child: call the student's run_pipeline / run_joinable on a
    recording context; return the pairs (plain data) and what was recorded."""
    mod, ctx = state.module, state.ctx
    fn_name = "run_joinable" if joinable else "run_pipeline"
    marks = marks_folder(os.getpid())
    os.mkdir(marks, 0o700)
    state.fn_name, state.total = fn_name, producers * per_producer
    state.main_thread = threading.get_ident()
    state.watch = PipelineWatch(state, getattr(mod, "SENTINEL", None), marks,
                                lambda: stall_words(state))
    batches = make_batches(producers, per_producer, gap, first=1, late=late, marks=marks)
    state.stage = f"inside your {fn_name}"
    state.timeout_hint = pipeline_timeout_hint
    try:
        returned = getattr(mod, fn_name)(ctx, batches, consumers)
        watch = state.watch
        watch.stop()
        prods, cons = watch.label()
    finally:
        shutil.rmtree(marks, ignore_errors=True)
    problems = []
    try:
        pairs = [plain(tuple(pair)) for pair in returned]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError
    except (TypeError, ValueError):
        pairs = None
        problems.append(
            f"Expected a list of (item, pid) pairs, got {type(returned).__name__}: "
            f"{str(returned)[:120]}. Each consumer must put (item, os.getpid()) on the results "
            "queue.")
    early = watch.early_sentinels()
    if early:
        problems.append(
            f"{early} SENTINEL(s) were put while a producer was still running. Join all "
            "producers first, then put one SENTINEL per consumer; otherwise a consumer can stop "
            "before the last items arrive."
        )
    nsent = len(watch.sentinel_puts)
    facts = dict(consumers_started=len(cons), producers_started=len(prods), sentinels_put=nsent,
                 processes_started=len(state.processes))
    if state.processes and (len(cons) != consumers or len(prods) != producers):
        problems.append(
            f"Expected {producers} producer and {consumers} consumer processes "
            f"(one producer per batch), your {fn_name} started {len(prods)} processes that "
            f"iterated a batch and {len(cons)} others."
        )
    elif nsent < len(cons) and not early:
        problems.append(sentinel_count_words(nsent, len(cons), len(prods)))
    if watch.unbounded:
        problems.append(
            f"Every wait needs a timeout (a deadlock must end with an error, not hang): your "
            f"{fn_name} waited with none at {watch.unbounded[0]}"
            + (f" (and {len(watch.unbounded) - 1} more)" if len(watch.unbounded) > 1 else "")
            + ". Use join(TIMEOUT) and get(timeout=TIMEOUT).")
    if joinable:
        problems += _joinable_problems(state, cons)
    problems += crashed_problems(state.processes)
    return {"pairs": pairs, "problems": problems, "facts": facts}


def object_sentinel_words(text: str) -> str:
    return (f"SENTINEL is `{text}`, not a plain value: every process has its own copy of such "
            "an object (a child imports your module anew, and what crosses a queue is a "
            "pickled copy), so no item a consumer takes is ever that object and "
            "`item is SENTINEL` never holds: the consumers never stop. Use a plain value, "
            "`SENTINEL = None`, and test `item is None` (or a string compared with ==).")


def marks_folder(driver_pid: int) -> str:
    """Where the producers of the driver ``driver_pid`` leave their marks; the checker
    removes it after the run (a driver killed at a stall or a timeout cannot)."""
    return os.path.join(tempfile.gettempdir(), f"hwcheck-batches-{driver_pid}")


def sentinel_count_words(nsent: int, ncons: int, nprod: int) -> str:
    if nsent == nprod < ncons:
        return (f"One SENTINEL per producer instead of one per consumer: with {ncons} consumers "
                f"and {nprod} producers you put {nsent}, so {ncons - nsent} consumer(s) never "
                "stopped (they wait in q.get() forever).")
    return (f"Likely mistake: you put {nsent} SENTINEL(s) for {ncons} consumers, so "
            f"{ncons - nsent} consumer(s) never got one and wait in q.get() forever. Put one "
            "SENTINEL per consumer, after joining all producers.")


def _joinable_problems(state: State, cons) -> list[str]:
    problems = []
    not_daemon = [p for p in cons if not p.daemon]
    if not_daemon:
        problems.append(
            f"{len(not_daemon)} consumer(s) were not daemon processes: start them with "
            "daemon=True (a safety net: daemon children are killed when the parent exits)."
        )
    if not state.ctx.joinable_queues:
        problems.append("run_joinable should hand the consumers a ctx.JoinableQueue().")
    return problems


def stall_words(state: State) -> str:
    """The watch's words when the pipeline stalled after its SENTINELs."""
    where = state.stuck_at(state.main_thread)
    watch = state.watch
    watch.label()  # the roles, for the words
    return (f"Still not finished: your {state.fn_name} made no progress for "
            f"{watch.STALL:g} s after its SENTINELs were put"
            + (f" (waiting at {where})" if where else "") + ". "
            + " ".join(pipeline_timeout_hint(state, where)))


def pipeline_timeout_hint(state: State, where: str) -> list[str]:
    """The likely mistake when the student's run_pipeline / run_joinable ran out of
    time, reasoned from what the watch saw: the SENTINELs put and when, the results
    read, the processes still running."""
    watch = state.watch
    msg = []
    if watch.early_sentinels():
        msg.append(
            "A SENTINEL was put while a producer was still running, so a consumer stopped "
            "before the last items arrived. Join all producers first, then put one SENTINEL "
            "per consumer."
        )
    prods, cons = watch.label()
    nsent, ncons = len(watch.sentinel_puts), len(cons)
    alive = [p for p in cons if running(p.pid)]
    sentinel = watch.sentinel
    if alive:
        if nsent < ncons:
            msg.append(sentinel_count_words(nsent, ncons, len(prods)))
        elif watch.waiting == "join" and watch.results_read < state.total:
            msg.append(
                "Likely mistake: joining a consumer before reading all its results "
                f"({watch.results_read} of {state.total} read). A process that put items on a "
                "queue cannot end until they are read: take all results first, then join the "
                "consumers."
            )
        elif nsent and type(sentinel) not in (type(None), str, int, bytes, float, bool, tuple):
            msg.append(object_sentinel_words(f"{type(sentinel).__name__}()"))
        elif nsent:
            msg.append(f"{len(alive)} consumer(s) still running after {nsent} SENTINEL(s) were "
                       "put: does consumer return when it takes SENTINEL?")
    elif "get" in where:
        msg.append(
            "Likely mistake: waiting for more results than the consumers produce (some items "
            "never consumed), or a wait without a timeout."
        )
    return msg
