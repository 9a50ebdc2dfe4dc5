"""Fair grades for homework 1 (issue 20): correct code in any reasonable style gets full
marks, each classic mistake costs exactly its question(s), with feedback that says what
the checks saw, and the same file gets the same grade every time.

The samples are tests/submissions/fair/hw1/ (ok_*: correct; bug_*: one classic mistake
each). Each is graded the verdict's way (:func:`hwcheck.verdict.judge`: a question's
hidden checks, under spawn, up to the first that fails), its questions side by side:
they are independent checker runs that mostly wait (the producers' 6.5 s lull, the late
result), so together they take about as long as the longest one.
"""

from __future__ import annotations

import functools

import pytest

from hwcheck.questions import questions
from hwcheck.verdict import judge
from tests.support.fairness import REPEATS, cells, deserved, lost, problems, sample_path, samples
from tests.support.fairness import grade as grade_sample

OK = samples("hw1", "ok")
grade = functools.partial(grade_sample, assignment="hw1")
# sample -> {question it loses: words its feedback must contain}
BUGS = {
    "bug_timeout5": {"q1": "while producers were still working (they pause 6.5 s halfway"},
    "bug_falsy_item": {"q1": "item 0, which is falsy, was never reported"},
    "bug_producer_sentinel": {"q1": "does producer put SENTINEL itself?"},
    "bug_object_sentinel": {q: "SENTINEL is `object()`" for q in ("q1", "q2", "q3")},
    "bug_sentinel_per_producer": {
        "q2": "One SENTINEL per producer instead of one per consumer: with 4 consumers and 2 "
              "producers you put 2, so 2 consumer(s) never stopped"},
    "bug_read_until_quiet": {"q2": "the one item that arrived 4 s after the others"},
    "bug_no_timeout": {"q2": "Every wait needs a timeout"},
    "bug_early_sentinel": {"q2": "SENTINEL was put while a producer was still running"},
    "bug_join_before_drain": {"q2": "joining a consumer before reading all its results (0 of"},
    "bug_no_task_done": {"q3": "task_done() once for every q.get(), including the one that "
                               "returns SENTINEL"},
    "bug_not_daemon": {"q3": "consumer(s) were not daemon processes"},
}
# words a mistake must not be told (they point at another cause)
NOT_SAID = {
    "bug_falsy_item": ["polling", "get_nowait", "looks empty"],
    "bug_producer_sentinel": ["polling", "get_nowait", "looks empty"],
    "bug_object_sentinel": ["if item is SENTINEL", "Stop the loop"],
}

pytestmark = pytest.mark.start_method_independent


def test_the_fair_set_is_complete():
    assert len(OK) >= 6
    assert sorted(BUGS) == samples("hw1", "bug")
    assert len(BUGS) >= 8


@pytest.mark.slow(20)
@pytest.mark.parametrize("sample", OK)
def test_correct_code_in_any_style_gets_full_marks(tmp_path, sample):
    result = grade(tmp_path, sample=sample)
    assert lost(result) == set(), problems(result)


@pytest.mark.slow(30)
@pytest.mark.parametrize("sample", sorted(BUGS))
def test_a_classic_mistake_costs_exactly_its_questions(tmp_path, sample):
    result = grade(tmp_path, sample=sample)
    assert lost(result) == cells(result, BUGS[sample]), problems(result)
    for q, words in BUGS[sample].items():
        said = "\n".join(result[q]["problems"])
        assert words in said, f"{q}: {said}"
        for wrong in NOT_SAID.get(sample, []):
            assert wrong not in said, f"{q} told {wrong!r}: {said}"


@pytest.mark.slow(35)
@pytest.mark.parametrize("sample", ["ok_partial", "bug_read_until_quiet"])
def test_the_same_file_gets_the_same_grade(tmp_path, sample):
    """The timing-sensitive parts (the lull, the late result, the stall) decide the same
    way in every run: each run loses exactly what the sample deserves."""
    grades = [grade(tmp_path / str(n), sample=sample) for n in range(REPEATS)]
    assert [lost(g) for g in grades] == [deserved(g, BUGS, sample) for g in grades], \
        [problems(g) for g in grades]
    firsts = [{q: r["problems"][:1] for q, r in g.items()} for g in grades]
    assert all(f.keys() == firsts[0].keys() for f in firsts)


# every producer's process outlives its function by 2 s: a thread it left running
LINGERING_PRODUCER = '''
import threading, time
_producer = producer

def producer(q, items):
    _producer(q, items)
    threading.Thread(target=time.sleep, args=(2.0,)).start()
'''


@pytest.mark.slow(20)
def test_a_producers_sentinel_is_named_even_when_its_process_ends_late(tmp_path):
    """On a busy machine a producer's process ends a second or more after its function
    returned (its queue flushes, its interpreter shuts down). The checker times the
    return, not the process's end: in a full CI run at 95f2cb7 the producer's own
    SENTINEL was told it was a consumer that polls."""
    folder = tmp_path / "lingering"
    folder.mkdir()
    text = sample_path("hw1", "bug_producer_sentinel").read_text()
    (folder / "hw1_solution.py").write_text(text + LINGERING_PRODUCER)
    said = "\n".join(judge("q1", questions("hw1")["q1"], folder, None, None)["problems"])
    assert BUGS["bug_producer_sentinel"]["q1"] in said, said
    for wrong in NOT_SAID["bug_producer_sentinel"]:
        assert wrong not in said, said
