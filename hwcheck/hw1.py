"""Homework 1 (producer–consumer) checks. The checker (:mod:`hwcheck.runner`) never
imports the student's module:

* ``hw1_workers``: the checker runs the reference orchestration itself. The
  student's producer and consumer run in child processes (:func:`hwcheck.child.call`);
  the checker reads the results from its own queue (plain data only) and checks that
  each pid is one of the consumers it started.
* ``hw1_pipeline``: the student's ``run_pipeline`` / ``run_joinable`` runs in a driver
  child (:func:`drive_pipeline`), which sends back the pairs it returned and what
  it recorded (SENTINELs put early, processes started, crashed). The checker checks
  the pairs against the batches, that each pid is a process it saw below the driver,
  and that none was still running when the function returned.
"""

from __future__ import annotations

import os
import threading

from courselib.procs import drain, get_or_none
from hwcheck import child, driving, source
from hwcheck.plaindata import NotPlainData, PlainQueue
from hwcheck.recording import (
    State,
    crashed_problems,
    install_sentinel_counter,
    make_batches,
    plain,
    role,
)

HASHABLE = (type(None), bool, int, float, str, bytes)


def pairs_problems(pairs, batches, facts: dict, consumers: set[int], parent: int,
                   consumer_name="consumer") -> list[str]:
    """Compare the (item, pid) pairs reported with what was produced: every item once,
    each by a process in ``consumers``, none by ``parent``."""
    expected = [item for batch in batches for item in list.__iter__(batch)]
    try:
        pairs = [(item, pid) for item, pid in pairs]
        if not all(isinstance(i, HASHABLE) and isinstance(p, int) for i, p in pairs):
            raise TypeError
    except (TypeError, ValueError):
        return [
            f"Expected a list of (item, pid) pairs, got {type(pairs).__name__}: {str(pairs)[:120]}. "
            f"Each {consumer_name} must put (item, os.getpid()) on the results queue."
        ]
    problems = []
    got = [item for item, _ in pairs]
    missing = sorted(set(expected) - set(got))
    seen, dupes = set(), set()
    for item in got:
        (dupes if item in seen else seen).add(item)
    extra = sorted(set(got) - set(expected), key=repr)
    facts.update(items_expected=len(expected), items_reported=len(got))
    if missing:
        problems.append(
            f"{len(missing)} of {len(expected)} items were never consumed (e.g. {missing[:3]})."
        )
    if dupes:
        problems.append(
            f"{len(dupes)} items were consumed more than once (e.g. {sorted(dupes, key=repr)[:3]}): "
            "each item must be put once by its producer and taken once by one consumer."
        )
    if extra:
        problems.append(
            f"Consumers reported things no producer made (e.g. {extra[:3]}); "
            "don't report the SENTINEL as an item."
        )
    pids = {pid for _, pid in pairs}
    if parent in pids:
        problems.append(
            "Some items were consumed by the parent process itself, not by consumer processes."
        )
    if pids - consumers - {parent}:
        problems.append("Items were reported with a pid that is not one of the consumer processes.")
    facts["consumer_pids_seen"] = len(pids)
    return problems


def _alive(procs) -> bool:
    return any(p.is_alive() for p in procs)


def task_hw1_workers(job: driving.Job, producers=3, per_producer=200, consumers=2, gap=1.5,
                     joinable=False):
    """Reference orchestration around the student's producer and consumer (or
    joinable_*): catches polling consumers and missing task_done()."""
    ctx = job.ctx
    sentinel = source.sentinel(job.student.folder, job.student.module)
    consumer_fn = "joinable_consumer" if joinable else "consumer"
    producer_fn = "joinable_producer" if joinable else "producer"
    name = consumer_fn
    q = ctx.JoinableQueue() if joinable else ctx.Queue()
    results = PlainQueue(ctx=ctx)
    child.share_with(job.student, q, results)
    batches = make_batches(producers, per_producer, gap)
    total = producers * per_producer
    cons = [ctx.Process(target=child.call, args=(job.student, consumer_fn, (q, results)),
                        daemon=joinable, name=f"consumer-{i}") for i in range(consumers)]
    prods = [ctx.Process(target=child.call, args=(job.student, producer_fn, (q, b)),
                         name=f"producer-{i}") for i, b in enumerate(batches)]
    for p in cons + prods:
        p._hw_role = p.name.split("-")[0]
    job.processes += cons + prods
    job.stage = f"waiting for your {name}s to take every item"
    job.timeout_hint = (
        f"Your {name}s did not report all {total} items in time. Does {name} put "
        "(item, os.getpid()) on `results` for every item, and does producer put every item?"
    )
    for p in cons + prods:
        p.start()
    pairs, problems = [], []
    try:
        while len(pairs) < total:
            # once the consumers have all ended, or the producers are done, a quiet queue
            # gets one more look (2 s) for stragglers, then the wait is over
            pair = get_or_none(results, job.deadline, lambda: _alive(cons) and _alive(prods),
                               last_look=2.0)
            if pair is None:
                break
            pairs.append(pair)
    except NotPlainData as exc:
        problems.append(exc.words("The checker's results queue"))
    quitters = [c for c in cons if not c.is_alive()]
    if quitters and not problems:
        problems.append(
            f"{len(quitters)} {name}(s) ended before any SENTINEL was sent, while producers "
            "were still working. A consumer that stops when the queue looks empty "
            "(q.empty(), get_nowait() or get(timeout=...)) quits too early: an empty queue only "
            "means 'nothing yet'. Block in q.get() and stop only when you take SENTINEL."
        )
    for p in prods:
        p.join(timeout=10)
    if joinable:
        job.stage = "waiting for q.join() (every item and SENTINEL must be task_done())"
        job.timeout_hint = (
            "q.join() never returned: joinable_consumer must call q.task_done() once for every "
            "q.get(), including the one that returns SENTINEL."
        )
    for _ in cons:
        q.put(sentinel)
    if joinable and not problems:
        joiner = threading.Thread(target=q.join, daemon=True)
        joiner.start()
        joiner.join(timeout=5)
        job.facts["joinable_join_returned"] = not joiner.is_alive()
        if joiner.is_alive():
            problems.append(job.timeout_hint)
    for c in cons:
        c.join(timeout=10)
    try:
        pairs.extend(drain(results, quiet=0.2, limit=0.5))
    except NotPlainData as exc:
        refused = exc.words("The checker's results queue")
        problems += [] if refused in problems else [refused]
    q.cancel_join_thread()  # the SENTINELs of consumers that are gone: not worth a wait
    stuck = [c for c in cons if c.is_alive()]
    if stuck:
        problems.append(
            f"{len(stuck)} {name}(s) did not end after receiving SENTINEL. Stop the loop "
            f"(return) when you take SENTINEL (`if item is SENTINEL:`)."
        )
    problems += pairs_problems(pairs, batches, job.facts, {c.pid for c in cons}, os.getpid(),
                               name)
    problems += crashed_problems(cons + prods)
    return problems


def task_hw1_pipeline(job: driving.Job, producers=3, per_producer=200, consumers=2, gap=1.0,
                      joinable=False):
    """The student's own orchestration, run_pipeline (or run_joinable), in a driver."""
    fn_name = "run_joinable" if joinable else "run_pipeline"
    params = dict(producers=producers, per_producer=per_producer, consumers=consumers, gap=gap,
                  joinable=joinable)
    job.stage = f"inside your {fn_name}"
    driven = driving.run_in_driver(job, "hwcheck.hw1:drive_pipeline", params, f"your {fn_name}")
    job.facts.update(driven.facts)
    if driven.result is None:
        return driven.problems
    result = driven.result
    job.facts.update(result.get("facts") or {})
    said = [p for p in result.get("problems") or [] if isinstance(p, str)]
    pairs = result.get("pairs")
    problems = said[:1] if pairs is None else []  # the driver's words for a malformed return
    if pairs is not None:
        batches = make_batches(producers, per_producer, gap)
        problems += pairs_problems(pairs, batches, job.facts, driven.seen, driven.pid)
    problems += [p for p in said if p not in problems]
    problems += driving.leftover_problem(driven.leftovers, f"your {fn_name}")
    return problems


# --------------------------------------------------------------------- the driver's side


def drive_pipeline(state: State, producers, per_producer, consumers, gap, joinable) -> dict:
    """In the driver child: call the student's run_pipeline / run_joinable on a
    recording context; return the pairs (plain data) and what was recorded."""
    mod, ctx = state.module, state.ctx
    fn_name = "run_joinable" if joinable else "run_pipeline"
    install_sentinel_counter(state, getattr(mod, "SENTINEL", None))
    batches = make_batches(producers, per_producer, gap)
    state.stage = f"inside your {fn_name}"
    state.timeout_hint = pipeline_timeout_hint
    returned = getattr(mod, fn_name)(ctx, batches, consumers)
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
    early = [s for s in state.sentinel_puts if s["producers_running"]]
    if early:
        problems.append(
            f"{len(early)} SENTINEL(s) were put while a producer was still running. Join all "
            "producers first, then put one SENTINEL per consumer; otherwise a consumer can stop "
            "before the last items arrive."
        )
    procs = state.processes
    ncons = sum(1 for p in procs if "consumer" in role(p))
    nprod = sum(1 for p in procs if "producer" in role(p))
    facts = dict(consumers_started=ncons, producers_started=nprod,
                 sentinels_put=len(state.sentinel_puts), processes_started=len(procs))
    if procs and (ncons != consumers or nprod != producers):
        problems.append(
            f"Expected {producers} producer and {consumers} consumer processes "
            f"(one producer per batch), your {fn_name} started {nprod} and {ncons}."
        )
    if joinable:
        problems += _joinable_problems(procs)
    problems += crashed_problems(procs)
    return {"pairs": pairs, "problems": problems, "facts": facts}


def _joinable_problems(procs) -> list[str]:
    from multiprocessing.queues import JoinableQueue

    problems = []
    not_daemon = [p for p in procs if "consumer" in role(p) and not p.daemon]
    if not_daemon:
        problems.append(
            f"{len(not_daemon)} consumer(s) were not daemon processes: start them with "
            "daemon=True (a safety net: daemon children are killed when the parent exits)."
        )
    if not any(isinstance(a, JoinableQueue) for p in procs for a in getattr(p, "_hw_args", ())):
        problems.append("run_joinable should hand the consumers a ctx.JoinableQueue().")
    return problems


def pipeline_timeout_hint(state: State, where: str) -> list[str]:
    """The likely mistake when the student's run_pipeline / run_joinable ran out of
    time, reasoned from the SENTINELs it put and the processes still running."""
    msg = []
    if any(s["producers_running"] for s in state.sentinel_puts):
        msg.append(
            "A SENTINEL was put while a producer was still running, so a consumer stopped "
            "before the last items arrived. Join all producers first, then put one SENTINEL "
            "per consumer."
        )
    procs = state.processes
    ncons = sum(1 for p in procs if "consumer" in role(p))
    nsent = len(state.sentinel_puts)
    if any("consumer" in role(p) and p.is_alive() for p in procs):
        if nsent < ncons:
            msg.append(
                f"Likely mistake: you put {nsent} SENTINEL(s) for {ncons} consumers, so a "
                "consumer waits forever in q.get(). Put one SENTINEL per consumer, after "
                "joining all producers."
            )
        else:
            msg.append(
                "Likely mistake: joining a consumer before reading all its results. A process "
                "that put items on a queue cannot end until they are read: take all results "
                "first, then join the consumers."
            )
    elif "get" in where:
        msg.append(
            "Likely mistake: waiting for more results than the consumers produce (some items "
            "never consumed), or a wait without a timeout."
        )
    return msg

