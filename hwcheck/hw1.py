"""Homework 1 (producer–consumer) checks, run inside the runner process
(:mod:`hwcheck.runner`): the reference orchestration around the student's workers,
the student's own pipeline, the problem finders and what the watchdog adds when the
pipeline runs out of time.
"""

from __future__ import annotations

import os
import threading
import time

from courselib.procs import drain, get_or_none
from hwcheck.recording import (
    State,
    end_problems,
    install_sentinel_counter,
    make_batches,
    role,
)


def _pairs_problems(pairs, batches, state: State, consumer_name="consumer") -> list[str]:
    """Compare what the consumers reported with what was produced."""
    expected = [item for batch in batches for item in list.__iter__(batch)]
    problems = []
    try:
        pairs = [(item, pid) for item, pid in pairs]
    except (TypeError, ValueError):
        return [
            f"Expected a list of (item, pid) pairs, got {type(pairs).__name__}: {str(pairs)[:120]}. "
            f"Each {consumer_name} must put (item, os.getpid()) on the results queue."
        ]
    got = [item for item, _ in pairs]
    missing = sorted(set(expected) - set(got))
    seen, dupes = set(), set()
    for item in got:
        (dupes if item in seen else seen).add(item)
    extra = sorted(set(got) - set(expected), key=repr)
    state.facts.update(items_expected=len(expected), items_reported=len(got))
    if missing:
        problems.append(
            f"{len(missing)} of {len(expected)} items were never consumed (e.g. {missing[:3]})."
        )
    if dupes:
        problems.append(
            f"{len(dupes)} items were consumed more than once (e.g. {sorted(dupes)[:3]}): "
            "each item must be put once by its producer and taken once by one consumer."
        )
    if extra:
        problems.append(
            f"Consumers reported things no producer made (e.g. {extra[:3]}); "
            "don't report the SENTINEL as an item."
        )
    pids = {pid for _, pid in pairs}
    if os.getpid() in pids:
        problems.append(
            "Some items were consumed by the parent process itself, not by consumer processes."
        )
    child_pids = {p.pid for p in state.ctx.processes}
    if state.ctx.processes and pids - child_pids - {os.getpid()}:
        problems.append("Items were reported with a pid that is not one of the consumer processes.")
    state.facts["consumer_pids_seen"] = len(pids)
    return problems


def _alive(procs) -> bool:
    return any(p.is_alive() for p in procs)


def task_hw1_workers(state: State, producers=3, per_producer=200, consumers=2, gap=1.5,
                     joinable=False):
    """Reference orchestration around the student's producer and consumer (or
    joinable_consumer): catches polling consumers and missing task_done()."""
    mod, ctx = state.module, state.ctx
    sentinel = getattr(mod, "SENTINEL", None)
    consumer_fn = mod.joinable_consumer if joinable else mod.consumer
    producer_fn = mod.joinable_producer if joinable else mod.producer
    name = "joinable_consumer" if joinable else "consumer"
    q = ctx.JoinableQueue() if joinable else ctx.Queue()
    results = ctx.Queue()
    batches = make_batches(producers, per_producer, gap)
    total = producers * per_producer
    cons = [ctx.Process(target=consumer_fn, args=(q, results), daemon=joinable,
                        name=f"consumer-{i}") for i in range(consumers)]
    prods = [ctx.Process(target=producer_fn, args=(q, b), name=f"producer-{i}")
             for i, b in enumerate(batches)]
    state.stage = f"waiting for your {name}s to take every item"
    state.timeout_hint = (
        f"Your {name}s did not report all {total} items in time. Does {name} put "
        "(item, os.getpid()) on `results` for every item, and does producer put every item?"
    )
    for p in cons + prods:
        p.start()
    pairs = []
    deadline = time.monotonic() + state.timeout
    while len(pairs) < total:
        # once the consumers have all ended, or the producers are done, a quiet queue
        # gets one more look (2 s) for stragglers, then the wait is over
        pair = get_or_none(results, deadline, lambda: _alive(cons) and _alive(prods),
                           last_look=2.0)
        if pair is None:
            break
        pairs.append(pair)
    problems = []
    quitters = [c for c in cons if not c.is_alive()]
    if quitters:
        problems.append(
            f"{len(quitters)} {name}(s) ended before any SENTINEL was sent, while producers "
            "were still working. A consumer that stops when the queue looks empty "
            "(q.empty(), get_nowait() or get(timeout=...)) quits too early: an empty queue only "
            "means 'nothing yet'. Block in q.get() and stop only when you take SENTINEL."
        )
    for p in prods:
        p.join(timeout=10)
    if joinable:
        state.stage = "waiting for q.join() (every item and SENTINEL must be task_done())"
        state.timeout_hint = (
            "q.join() never returned: joinable_consumer must call q.task_done() once for every "
            "q.get(), including the one that returns SENTINEL."
        )
    for _ in cons:
        q.put(sentinel)
    if joinable and not problems:
        joiner = threading.Thread(target=q.join, daemon=True)
        joiner.start()
        joiner.join(timeout=5)
        if joiner.is_alive():
            problems.append(state.timeout_hint)
            state.facts["joinable_join_returned"] = False
        else:
            state.facts["joinable_join_returned"] = True
    for c in cons:
        c.join(timeout=10)
    pairs.extend(drain(results, quiet=0.2, limit=0.5))
    stuck = [c for c in cons if c.is_alive()]
    if stuck:
        problems.append(
            f"{len(stuck)} {name}(s) did not end after receiving SENTINEL. Stop the loop "
            f"(return) when you take SENTINEL (`if item is SENTINEL:`)."
        )
    problems += _pairs_problems(pairs, batches, state, name)
    crashed = [p for p in cons + prods if p.exitcode not in (0, None)]
    if crashed:
        problems.append(
            "These processes crashed: "
            + ", ".join(f"{role(p)} (exit code {p.exitcode})" for p in crashed)
            + ". The error they printed is below."
        )
    return problems


def task_hw1_pipeline(state: State, producers=3, per_producer=200, consumers=2, gap=1.0,
                      joinable=False):
    """The student's own orchestration: run_pipeline (or run_joinable)."""
    mod, ctx = state.module, state.ctx
    fn_name = "run_joinable" if joinable else "run_pipeline"
    install_sentinel_counter(state, getattr(mod, "SENTINEL", None))
    batches = make_batches(producers, per_producer, gap)
    state.stage = f"inside your {fn_name}"
    state.timeout_hint = pipeline_timeout_hint
    pairs = getattr(mod, fn_name)(ctx, batches, consumers)
    problems = _pairs_problems(pairs, batches, state)
    early = [s for s in state.sentinel_puts if s["producers_running"]]
    if early:
        problems.append(
            f"{len(early)} SENTINEL(s) were put while a producer was still running. Join all "
            "producers first, then put one SENTINEL per consumer; otherwise a consumer can stop "
            "before the last items arrive."
        )
    ncons = sum(1 for p in ctx.processes if "consumer" in role(p))
    nprod = sum(1 for p in ctx.processes if "producer" in role(p))
    state.facts.update(consumers_started=ncons, producers_started=nprod,
                       sentinels_put=len(state.sentinel_puts))
    if ctx.processes and (ncons != consumers or nprod != producers):
        problems.append(
            f"Expected {producers} producer and {consumers} consumer processes "
            f"(one producer per batch), your {fn_name} started {nprod} and {ncons}."
        )
    if joinable:
        not_daemon = [p for p in ctx.processes if "consumer" in role(p) and not p.daemon]
        if not_daemon:
            problems.append(
                f"{len(not_daemon)} consumer(s) were not daemon processes: start them with "
                "daemon=True (a safety net: daemon children are killed when the parent exits)."
            )
        from multiprocessing.queues import JoinableQueue

        if not any(isinstance(a, JoinableQueue)
                   for p in ctx.processes for a in getattr(p, "_hw_args", ())):
            problems.append("run_joinable should hand the consumers a ctx.JoinableQueue().")
    problems += end_problems(state)
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
    procs = state.ctx.processes
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
