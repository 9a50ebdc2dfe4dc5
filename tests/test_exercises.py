"""The self-checks of the lectures' exercises (helpers/exercises/) tell right answers
from wrong ones, and stop every process they start, under every start method.

The answers are module-level functions (here, in tests/pipe_test_workers.py and in
tests/shared_state_workers.py) so spawn children can import them.
"""

import queue

import pc_test_workers as tw
import pipe_test_workers as pw
import pytest
import shared_state_workers as sw
from late_queue import LateContext

from helpers import context
from helpers.exercises import producer_consumer as ex
from helpers.exercises.pipes import check_square_server, check_sum_until_eof
from helpers.exercises.review import run_traffic
from helpers.exercises.shared_state import check_counter_exercise
from helpers.timing import now

# --- lecture 00: cars at a red light (run_traffic) --------------------------------------


def car_waits(light, out, name):
    out.put(("arrived", name, now()))
    light.wait(10)
    out.put(("passed", name, now()))


def car_runs_red(light, out, name):
    out.put(("arrived", name, now()))
    out.put(("passed", name, now()))


def car_crashes(light, out, name):
    raise RuntimeError("engine failure")


def test_traffic_cars_that_wait_pass_after_green(ctx):
    green, passed = run_traffic(ctx, car_waits, n_cars=3, red_seconds=0.2)
    assert green is not None and sorted(passed) == ["car 0", "car 1", "car 2"]
    assert all(t >= green for t in passed.values())


def test_traffic_cars_that_run_the_red_light_are_caught(ctx):
    green, passed = run_traffic(ctx, car_runs_red, n_cars=2, red_seconds=0.2)
    assert green is not None and len(passed) == 2
    assert all(t < green for t in passed.values())


def test_traffic_reads_what_cars_sent_before_they_exited(ctx):
    green, passed = run_traffic(LateContext(ctx), car_runs_red, n_cars=3, red_seconds=0.1)
    assert green is not None, "every car arrived: the messages were still in the queue"
    assert len(passed) == 3 and all(t < green for t in passed.values())


def test_traffic_with_crashing_cars_returns_instead_of_hanging(ctx):
    green, passed = run_traffic(ctx, car_crashes, n_cars=2, red_seconds=0.1)
    assert green is None and passed == {}


# --- lecture 01, exercise 1: finish(producers, q, n_consumers) --------------------------

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


# --- lecture 01, exercise 2: consumer(q, results) ------------------------------------


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


# --- lecture 01, exercise 3: consumer(jq, results) -----------------------------------


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


# --- lecture 02: a square server, reading until EOF ---------------------------------------


def test_square_server_check_accepts_a_right_answer_and_explains_the_starter():
    assert check_square_server(pw.square_server).startswith("Right:")
    assert check_square_server(pw.square_server_starter).startswith("No reply came back")


def test_sum_until_eof_check_accepts_a_right_answer_and_explains_the_missing_close():
    assert check_sum_until_eof(pw.sum_until_eof).startswith("Right:")
    msg = check_sum_until_eof(pw.sum_until_eof_keeps_send_end, patience=1)
    assert msg.startswith("No total after 1 s"), msg


# --- lecture 03: a counter that loses nothing -----------------------------------------------


@pytest.mark.parametrize(
    "answer, message",
    [
        (sw.add_many_starter, "still 0"),
        (sw.add_many_right, "Right: all 1200"),
        (sw.add_many_never_releases, "waiting forever"),
        (sw.add_many_get_lock, "crashed"),
    ],
)
def test_counter_exercise_check_says_what_is_wrong(answer, message):
    wait = 5 if answer is sw.add_many_never_releases else 30  # the right ones finish well before
    assert message in check_counter_exercise(answer, wait=wait)


def test_counter_exercise_check_sees_lost_additions():
    said = check_counter_exercise(sw.add_many_unlocked, each=300)
    assert "were lost" in said or said.startswith("Right")  # a race may, rarely, lose nothing
