"""The lecture 01 self-checks (helpers/pc_exercises.py) tell right answers from wrong ones.

The answers below are module-level functions so spawn children can import them.
"""

import queue

import pc_test_workers as tw
from late_queue import LateContext

from helpers import context
from helpers import pc_exercises as ex

# --- exercise 1: finish(producers, q, n_consumers) ------------------------------

# the lecture's produce and consume_until_sentinel (the notebook passes its pc_workers ones)
WORKERS = (tw.produce, tw.consume_until_sentinel)


def finish_right(producers, q, n_consumers):
    for p in producers:
        p.join(timeout=30)
    for _ in range(n_consumers):
        q.put(None)


def finish_starter(producers, q, n_consumers):  # the notebook's starter code
    q.put(None)
    for p in producers:
        p.join(timeout=30)


def finish_too_many(producers, q, n_consumers):
    for p in producers:
        p.join(timeout=30)
    for _ in range(n_consumers + 2):
        q.put(None)


# --- exercise 2: consumer(q, results) -----------------------------------------


def poll_starter(q, results):
    got = []
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        got.append(item)
    results.put(got)


def poll_right(q, results):
    got = []
    while (item := q.get(timeout=30)) is not None:
        got.append(item)
    results.put(got)


def poll_keeps_sentinel(q, results):
    got = []
    while True:
        item = q.get(timeout=30)
        got.append(item)
        if item is None:
            break
    results.put(got)


def poll_silent(q, results):
    while q.get(timeout=30) is not None:
        pass


# --- exercise 3: consumer(jq, results) ----------------------------------------


def jq_starter(jq, results):
    while True:
        item = jq.get(timeout=30)
        if item is None:
            break
        results.put(item * item)
        jq.task_done()


def jq_right(jq, results):
    while True:
        item = jq.get(timeout=30)
        if item is not None:
            results.put(item * item)
        jq.task_done()
        if item is None:
            break


def jq_twice(jq, results):
    while True:
        item = jq.get(timeout=30)
        jq.task_done()
        if item is None:
            jq.task_done()  # one too many: ValueError in the child at the latest
            break
        results.put(item * item)


def test_exercise1_right_answer():
    assert ex.check_stop_consumers(finish_right, *WORKERS).startswith("Right: 3 sentinels")


def test_exercise1_starter_names_both_mistakes():
    msg = ex.check_stop_consumers(finish_starter, *WORKERS)
    assert msg.startswith("Not yet")
    assert "2 of 3 consumers would have waited for ever" in msg
    assert "1 sentinel(s) went in while a producer was still running" in msg


def test_exercise1_extra_sentinels():
    msg = ex.check_stop_consumers(finish_too_many, *WORKERS)
    assert "2 sentinel(s) were never taken" in msg


def test_exercise1_consumer_edited_to_send_no_report():
    msg = ex.check_stop_consumers(finish_right, tw.produce, tw.consume_silently)
    assert "only 0 of 3 consumers sent their report" in msg


def test_exercise2_right_answer():
    assert ex.check_polling_consumer(poll_right).startswith("Right: all 6 items")


def test_exercise2_starter_leaves_items():
    assert "some items were never consumed" in ex.check_polling_consumer(poll_starter)


def test_exercise2_sentinel_is_not_an_item():
    assert "sentinel (None) is not an item" in ex.check_polling_consumer(poll_keeps_sentinel)


def test_exercise2_consumer_that_sends_nothing():
    assert "sent nothing back" in ex.check_polling_consumer(poll_silent)


def test_exercise3_right_answer():
    assert ex.check_task_done(jq_right).startswith("Right: 10 get() calls")


def test_exercise3_reads_what_consumers_sent_before_they_exited(monkeypatch):
    monkeypatch.setattr(ex, "context", lambda: LateContext(context()))
    assert ex.check_task_done(jq_right).startswith("Right: 10 get() calls")


def test_exercise3_starter_misses_the_sentinels_task_done():
    msg = ex.check_task_done(jq_starter)
    assert "2 task_done() call(s) were missing" in msg and "crashed" not in msg


def test_exercise3_too_many_task_done_crashes_a_consumer():
    msg = ex.check_task_done(jq_twice)
    assert "crashed" in msg
