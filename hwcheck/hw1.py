"""Homework 1 (producer–consumer) checks. The checker (:mod:`hwcheck.runner`) never
imports the student's module:

* ``hw1_workers``: the checker runs the reference orchestration itself. The
  student's producer and consumer run in child processes (:func:`hwcheck.child.call`);
  the checker reads the results from its own queue (plain data only), checks that
  each pid is one of the consumers it started, and says what it saw of consumers
  that ended before their SENTINEL (during the producers' lull, after a producer
  ended, after a falsy item) or never ended.
* ``hw1_pipeline``: the student's ``run_pipeline`` / ``run_joinable`` runs in a driver
  child (:func:`hwcheck.hw1_driver.drive_pipeline`), which sends back the pairs it
  returned and what it saw (SENTINELs put, and when; waits with no timeout; which
  processes iterated a batch: the producers, however they were built). The checker
  checks the pairs against the batches (one of them arrives late), that each pid is
  a process it saw below the driver, and that none was still running when the
  function returned.
"""

from __future__ import annotations

import ast
import os
import shutil
import threading
import time
from pathlib import Path

from courselib.procs import drain, get_or_none
from hwcheck import child, driving, source
from hwcheck.hw1_driver import marks_folder, object_sentinel_words
from hwcheck.plaindata import NotPlainData, PlainQueue
from hwcheck.recording import (
    crashed_problems,
    make_batches,
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


def sentinel_text(folder, module: str) -> str | None:
    """The source of the module's top-level ``SENTINEL = ...`` when it is not a plain
    literal (``object()``...), else None."""
    try:
        text = (Path(folder) / f"{module}.py").read_text(encoding="utf-8", errors="replace")
        tree = source.parse(text)
    except (OSError, SyntaxError, ValueError):
        return None
    found = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "SENTINEL" for t in node.targets):
            try:
                ast.literal_eval(node.value)
                found = None
            except ValueError:
                found = ast.get_source_segment(text, node.value) or "not a literal"
    return found


class Endings:
    """When the checker saw each of its consumers and producers end (polled at most
    every 0.1 s), and how long no result had come when a consumer ended."""

    AFTER = 0.5  # s: a producer seen ending this soon after a consumer ended before it

    def __init__(self, cons, prods, prods_returned):
        self.cons, self.prods = cons, prods
        self.cons_ended: dict[int, tuple[float, float]] = {}  # index -> (when, quiet s)
        self.prods_ended: dict[int, float] = {}  # index -> when
        # per producer: when its function returned (time.monotonic(); 0.0: not yet), as
        # child.call_then_stamp records it: the process's end is seen later on a busy machine
        self.prods_returned = prods_returned
        self.last_result = self._looked = time.monotonic()

    def result(self) -> None:
        self.last_result = time.monotonic()
        self.look()

    def look(self, force=False) -> None:
        now = time.monotonic()
        if not force and now - self._looked < 0.1:
            return
        self._looked = now
        for ended, procs in ((self.prods_ended, self.prods), (self.cons_ended, self.cons)):
            for i, p in enumerate(procs):
                if i not in ended and not p.is_alive():
                    ended[i] = now if ended is self.prods_ended else (now, now - self.last_result)

    def producers_ended_by(self, when: float) -> int:
        """Producers that had ended by ``when`` (a consumer that takes a producer's last
        put can end before that producer is seen ending)."""
        finished = (self._finished(i) for i in range(len(self.prods)))
        return sum(1 for t in finished if t is not None and t <= when + self.AFTER)

    def _finished(self, i: int) -> float | None:
        """When producer ``i`` was done: its function returned, or (if it never
        returned: it crashed, say) the checker saw its process end."""
        times = [t for t in (self.prods_returned[i].value, self.prods_ended.get(i)) if t]
        return min(times) if times else None

    def alive(self) -> bool:
        self.look()
        return _alive(self.cons) and _alive(self.prods)


def quitters_words(endings: Endings, quitters: list[int], missing: list, name: str,
                   gap: float) -> str:
    """What the checker saw of consumers that ended before it sent any SENTINEL, and
    the likely cause only where that evidence points to one."""
    n = len(quitters)
    head = f"{n} {name}(s) ended before any SENTINEL was sent"
    if missing and all(not item for item in missing):
        return (f"{head}; item {missing[0]!r}, which is falsy, was never reported. A test like "
                f"`if not item:` takes such an item for the end: test for the SENTINEL itself "
                "(`if item is SENTINEL:` with SENTINEL = None).")
    at = sorted(endings.cons_ended.get(i, (time.monotonic(), 0.0)) for i in quitters)
    if all(endings.producers_ended_by(when) >= k for k, (when, _) in enumerate(at, 1)):
        return (f"{head}, each after a producer had finished: does producer put SENTINEL "
                "itself? Only the parent may, one per consumer, after every producer ended "
                "(a producer cannot know whether the others still work).")
    quiet = max(q for _, q in at)
    return (f"{head}, while producers were still working (they pause {gap:g} s halfway; no "
            f"item had come for {quiet:.1f} s). A consumer that stops when the queue looks "
            "empty (q.empty(), get_nowait() or get(timeout=...) raising queue.Empty) quits "
            "too early: an empty queue only means 'nothing yet'. Block in q.get() and stop "
            "only when you take SENTINEL.")


def task_hw1_workers(job: driving.Job, producers=3, per_producer=200, consumers=2, gap=1.5,
                     joinable=False):
    """Reference orchestration around the student's producer and consumer (or
    joinable_*): catches consumers that stop before their SENTINEL (polling, a
    timeout shorter than the producers' lull, a falsy item, a producer's own SENTINEL)
    and missing task_done()."""
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
    returned = [ctx.Value("d", 0.0, lock=False) for _ in batches]
    prods = [ctx.Process(target=child.call_then_stamp,
                         args=(job.student, producer_fn, (q, b), returned[i]), name=f"producer-{i}")
             for i, b in enumerate(batches)]
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
    endings = Endings(cons, prods, returned)
    try:
        while len(pairs) < total:
            # once the consumers have all ended, or the producers are done, a quiet queue
            # gets one more look (2 s) for stragglers, then the wait is over
            pair = get_or_none(results, job.deadline, endings.alive, last_look=2.0)
            if pair is None:
                break
            pairs.append(pair)
            endings.result()
    except NotPlainData as exc:
        problems.append(exc.words("The checker's results queue"))
    endings.look(force=True)
    quitters = [i for i, c in enumerate(cons) if not c.is_alive()]
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
    until = time.monotonic() + 5  # a consumer stops at once on its SENTINEL
    for c in cons:
        c.join(timeout=max(0.1, until - time.monotonic()))
    try:
        pairs.extend(drain(results, quiet=0.2, limit=0.5))
    except NotPlainData as exc:
        refused = exc.words("The checker's results queue")
        problems += [] if refused in problems else [refused]
    q.cancel_join_thread()  # the SENTINELs of consumers that are gone: not worth a wait
    if quitters and not problems:
        got = {item for item, _ in pairs} if _pairs_ok(pairs) else set()
        missing = sorted(x for b in batches for x in list.__iter__(b) if x not in got)
        problems.append(quitters_words(endings, quitters, missing, name, gap))
    stuck = [c for c in cons if c.is_alive()]
    if stuck:
        text = sentinel_text(job.student.folder, job.student.module)
        problems.append(
            f"{len(stuck)} {name}(s) did not end after the checker put one SENTINEL "
            f"({sentinel!r}) per consumer. " + (object_sentinel_words(text) if text else
            "Stop the loop (return) when you take SENTINEL: `if item is SENTINEL:` with "
            "SENTINEL = None (a string SENTINEL arrives as a copy: compare it with ==)."))
        if text and _pairs_ok(pairs):  # it reported the checker's SENTINELs as items
            pairs = [pair for pair in pairs if pair[0] != sentinel]
    problems += pairs_problems(pairs, batches, job.facts, {c.pid for c in cons}, os.getpid(),
                               name)
    problems += crashed_problems(cons + prods)
    return problems


def _pairs_ok(pairs) -> bool:
    try:
        return all(isinstance(i, HASHABLE) for i, _ in pairs)
    except (TypeError, ValueError):
        return False


def task_hw1_pipeline(job: driving.Job, producers=3, per_producer=200, consumers=2, gap=1.0,
                      joinable=False, late=0.0):
    """The student's own orchestration, run_pipeline (or run_joinable), in a driver."""
    fn_name = "run_joinable" if joinable else "run_pipeline"
    params = dict(producers=producers, per_producer=per_producer, consumers=consumers, gap=gap,
                  joinable=joinable, late=late)
    job.stage = f"inside your {fn_name}"
    driven = driving.run_in_driver(job, "hwcheck.hw1_driver:drive_pipeline", params, f"your {fn_name}")
    shutil.rmtree(marks_folder(driven.pid), ignore_errors=True)
    job.facts.update(driven.facts)
    if driven.result is None:
        return driven.problems
    result = driven.result
    job.facts.update(result.get("facts") or {})
    said = [p for p in result.get("problems") or [] if isinstance(p, str)]
    pairs = result.get("pairs")
    problems = said[:1] if pairs is None else []  # the driver's words for a malformed return
    if pairs is not None:
        batches = make_batches(producers, per_producer, gap, first=1)
        found = pairs_problems(pairs, batches, job.facts, driven.seen, driven.pid)
        if late and _pairs_ok(pairs):
            last = list.__iter__(batches[-1])
            *_, late_item = last
            got = {item for item, _ in pairs}
            missing = {x for b in batches for x in list.__iter__(b)} - got
            if missing == {late_item}:
                problems.append(
                    f"Your {fn_name} returned before reading every result: the one item that "
                    f"arrived {late:g} s after the others ({late_item}) is missing. Reading "
                    "until the results queue is quiet for a while stops too early when a "
                    "consumer is slow: count the results (the batches say how many items "
                    "there are) and read exactly that many, each get with a timeout.")
        problems += found
    problems += [p for p in said if p not in problems]
    problems += driving.leftover_problem(driven.leftovers, f"your {fn_name}")
    return problems
