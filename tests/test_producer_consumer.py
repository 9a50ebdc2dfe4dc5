"""Lecture 01: the workers the notebook teaches (its ``%%writefile pc_workers.py``
cell, run as written) and the machinery in helpers/producer_consumer.py, in real
child processes. The demonstrations the notebook runs and prints (a truthy consumer,
a polling consumer, a child that cannot exit before its item is read, a
``queue.Queue`` under each start method, the fill levels) are checked by its own run;
``drain`` is ``courselib.procs.drain`` (tests/test_procs.py)."""

import importlib
import multiprocessing
import queue
from pathlib import Path
from types import SimpleNamespace

import notebook_cells
import pc_test_workers as tw
import pytest

from helpers import context
from helpers import producer_consumer as pc

T = 30  # every wait in these tests is bounded
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01-producer-consumer.ipynb"
MODULES = ("pc_workers", "jq_workers")  # Queue workers, JoinableQueue workers


def _start(*procs):
    for p in procs:
        p.start()
    return procs


@pytest.fixture
def nbw(tmp_path, monkeypatch):
    """The notebook's worker modules, written and imported the way the notebook does
    (spawn and forkserver children find them through sys.path, as they find the notebook's).
    One namespace with the four workers, plus ``pc_workers`` itself."""
    sources = notebook_cells.writefile_modules(NOTEBOOK, MODULES)
    with notebook_cells.importable_from(tmp_path, sources, monkeypatch):
        pcw, jqw = (importlib.import_module(name) for name in MODULES)
        yield SimpleNamespace(
            produce=pcw.produce,
            consume_until_sentinel=pcw.consume_until_sentinel,
            produce_then_join=jqw.produce_then_join,
            consume_joinable=jqw.consume_joinable,
            pc_workers=pcw,
            path=tmp_path / "pc_workers.py",
        )


# --- the notebook's workers ------------------------------------------------------


def test_notebook_teaches_the_four_workers(nbw):
    for name in ("produce", "consume_until_sentinel", "produce_then_join", "consume_joinable"):
        assert callable(getattr(nbw, name)), name
    assert not any(hasattr(pc, name) for name in ("produce", "consume_until_sentinel",
                                                  "produce_then_join", "consume_joinable"))


def test_sentinel_consumers_take_every_item_exactly_once(nbw):
    ctx = context()
    q, results = ctx.Queue(maxsize=4), ctx.Queue()
    producers = [ctx.Process(target=nbw.produce, args=(q, f"p{i}", 5)) for i in range(3)]
    consumers = [
        ctx.Process(target=nbw.consume_until_sentinel, args=(q, results, f"c{i}"))
        for i in range(2)
    ]
    _start(*consumers, *producers)
    for p in producers:
        p.join(timeout=T)
        assert p.exitcode == 0
    for _ in consumers:
        q.put(None)
    reports = [results.get(timeout=T) for _ in consumers]
    for c in consumers:
        c.join(timeout=T)
        assert c.exitcode == 0
    items = sorted(item for r in reports for item in r.items)
    assert items == sorted((f"p{i}", j) for i in range(3) for j in range(5))
    assert {r.stopped_by for r in reports} == {"sentinel"}
    for r in reports:  # one span per item, on the consumer's lane, coloured by its maker
        assert [s.label for s in r.spans] == [name for name, _ in r.items]
        assert all(s.lane == r.name and s.end >= s.start for s in r.spans)


def test_producer_logs_one_span_per_item(nbw):
    ctx = context()
    q, log = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=nbw.produce, args=(q, "p", 3, 0.01, log))
    p.start()
    report = log.get(timeout=T)
    got = [q.get(timeout=T) for _ in range(3)]
    p.join(timeout=T)
    assert got == [("p", 0), ("p", 1), ("p", 2)] == report.items
    assert len(report.spans) == 3 and all(s.duration >= 0.01 for s in report.spans)


def test_joinable_consumers_balance_task_done_including_sentinels(nbw):
    ctx = context()
    jq, results, log = ctx.JoinableQueue(), ctx.Queue(), ctx.Queue()
    consumers = [
        ctx.Process(target=nbw.consume_joinable, args=(jq, results, f"c{i}"), daemon=True)
        for i in range(2)
    ]
    producer = ctx.Process(target=nbw.produce_then_join, args=(jq, "p", 6, log))
    _start(*consumers, producer)
    report = log.get(timeout=T)  # sent only after jq.join() returned in the producer
    producer.join(timeout=T)
    assert [s.label for s in report.spans] == ["put items", "waiting in q.join()"]
    done = sorted(results.get(timeout=T)[1] for _ in range(6))
    assert done == [("p", i) for i in range(6)]
    for _ in consumers:
        jq.put(None)
    for c in consumers:
        c.join(timeout=T)
        assert c.exitcode == 0
    with pytest.raises(ValueError):  # the count is exactly zero: sentinels were task_done too
        jq.task_done()
    jq.join()


def test_an_edit_to_the_written_module_reaches_the_child(nbw):
    """What the notebook's load cell promises: rewrite the file, reload, and a child
    (under any start method) runs the edited code."""
    edited = notebook_cells.edit_and_reload(nbw.pc_workers, "item = (name, i)",
                                            "item = (name.upper(), i)")
    ctx = context()
    q = ctx.Queue()
    child = ctx.Process(target=edited.produce, args=(q, "child", 2))
    child.start()
    got = [q.get(timeout=T) for _ in range(2)]
    child.join(timeout=T)
    assert got == [("CHILD", 0), ("CHILD", 1)]


# --- the machinery in helpers ------------------------------------------------------


@pytest.mark.start_method_independent
def test_fill_levels_counts_puts_minus_gets_in_time_order():
    puts = [(0.9, 1.0), (1.9, 2.0), (2.9, 3.0)]
    gets = [(1.5, 2.5), (3.5, 4.0), (4.5, 5.0)]
    times, levels = pc.fill_levels(puts, gets)
    assert times == [1.0, 1.5, 2.0, 3.0, 3.5, 4.5]  # each get counted when it was called
    assert levels == [1, 0, 1, 2, 1, 0]


@pytest.mark.start_method_independent
def test_fill_levels_never_counts_a_get_before_its_item_was_put():
    # the consumer was already waiting in get() (called at 0.0) when item 0 arrived at 1.0
    times, levels = pc.fill_levels([(0.5, 1.0)], [(0.0, 1.2)])
    assert times == [1.0, 1.0] and levels == [1, 0]


@pytest.mark.start_method_independent
def test_fill_levels_stays_within_maxsize_despite_late_get_stamps():
    # maxsize 1: put 1 returned (2.05) before get 0 did (2.1), as happens for real
    puts = [(0.0, 0.1), (0.2, 2.05)]
    gets = [(2.0, 2.1), (2.2, 2.3)]
    _, levels = pc.fill_levels(puts, gets)
    assert max(levels) == 1 and levels[-1] == 0


@pytest.mark.start_method_independent
def test_fill_levels_rejects_more_gets_than_puts():
    with pytest.raises(ValueError):
        pc.fill_levels([(0, 1)], [(1, 2), (2, 3)])


def test_call_when_set_waits_for_the_event_then_runs_the_worker():
    ctx = context()
    q, go = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=pc.call_when_set, args=(go, tw.produce, q, "late", 2))
    child.start()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.5)  # nothing before the signal
    go.set()
    assert [q.get(timeout=T) for _ in range(2)] == [("late", 0), ("late", 1)]
    child.join(timeout=T)
    assert child.exitcode == 0


# --- the notebook's qsize() guard (macOS raises NotImplementedError) --------------


class _NoQsizeQueue:
    """A Queue as on macOS: qsize() raises NotImplementedError, the rest works."""

    def __init__(self, q):
        self._q = q

    def qsize(self):
        raise NotImplementedError

    def __getattr__(self, name):
        return getattr(self._q, name)


@pytest.mark.start_method_independent
@pytest.mark.parametrize("macos", [False, True])
def test_notebook_qsize_race_cell_runs_where_qsize_is_missing(macos, capsys):
    """The student's path through the qsize()/empty() cell works on macOS too."""
    ctx = multiprocessing.get_context("spawn")  # the cell starts no process
    queue_type = (lambda: _NoQsizeQueue(ctx.Queue())) if macos else ctx.Queue
    ns = {"ctx": SimpleNamespace(Queue=queue_type), "T": T, "queue": queue}
    exec(notebook_cells.code_cell_containing(NOTEBOOK, "def qsize_or_none"), ns)
    exec(notebook_cells.code_cell_containing(NOTEBOOK, "TRIES = "), ns)
    out = capsys.readouterr().out
    assert ("not available on this operating system" in out) is macos
    assert "get_nowait() raised queue.Empty right after put()" in out
