"""Fair grades for homework 3 (issue 20): correct code in any reasonable style gets full
marks (design A or B, keyword arguments, partials, a blocking accept() woken another way
on stop, a pool worker serving several clients at once with threads or an event loop),
each classic mistake costs exactly its question, with feedback that says what the checks
saw (listening on every interface, a process per client instead of the pool's workers,
one answer for several lines, a server that never stops: q5 only, nothing cascades), and
the same file gets the same grade every time.

The samples are tests/submissions/fair/hw3/ and, for four stage mistakes, the stage
samples of tests/submissions/hw3/ (tests/support/fairness.py's REUSED); each is graded the verdict's way
(:func:`hwcheck.verdict.judge`), its five questions side by side.
"""

from __future__ import annotations

import shutil

import pytest

from hwcheck import checker
from hwcheck.limits import TIME_SCALE_ENV
from hwcheck.questions import QUESTIONS
from tests.support.fairness import REPEATS, cells, deserved, lost, problems, sample_path, samples
from tests.support.fairness import grade as grade_sample

OK = samples("hw3", "ok")
# sample -> {question it loses: words its feedback must contain}
BUGS = {
    "bug_no_accept_loop": {"q1": "does not go back to accept() after a client leaves"},
    "bug_recv_is_a_line": {"q2": "one recv() is not one line"},
    "bug_one_response": {"q2": "The complete lines were answered only once the buffer ended "
                               "with b'\\n' (is the whole buffer answered at once"},
    "bug_all_interfaces": {"q3": "it accepted a connection on 127.0.0.2, another address of "
                                 "this machine: it listens on every interface"},
    "bug_process_per_connection": {"q3": "a process that was not running before the clients "
                                         "connected"},
    "bug_one_at_a_time": {"q3": "seems to serve one client at a time"},
    "bug_main_process_io": {"q3": "held by the server's main process"},
    "bug_crash_utf8": {"q4": "raised UnicodeDecodeError"},
    "bug_no_idle_timeout": {"q4": "clients connected and said nothing (idle_timeout="},
    "bug_never_stops": {"q5": "clean shutdown failed: the server process did not return"},
}
# mistakes found only when a limit runs out (an answer that never comes, a stop that never
# ends, a pool that never starts): graded with the limits halved, as the suite does for
# hw1's deadlock (the questions they pass have room to spare at half their limits). Not
# bug_process_per_connection: starting a process per rude client, it answers q4's next
# client too late at half the limits on a loaded machine (4 gradings at once: q4 lost in
# 5 of 8), and at full limits it takes no longer (its q3 waits 5 s for a pool, q4 longer)
SHORTENED = {"bug_one_response", "bug_one_at_a_time", "bug_no_idle_timeout", "bug_never_stops"}

pytestmark = pytest.mark.start_method_independent


@pytest.fixture
def grade(monkeypatch):
    def graded(tmp_path, sample: str) -> dict:
        if sample in SHORTENED:
            monkeypatch.setenv(TIME_SCALE_ENV, "0.5")
        return grade_sample(tmp_path, "hw3", sample)

    return graded


def test_the_fair_set_is_complete():
    assert len(OK) >= 6
    assert sorted(BUGS) == samples("hw3", "bug")
    assert len(BUGS) >= 8


@pytest.mark.slow(6)
@pytest.mark.parametrize("sample", OK)
def test_correct_code_in_any_style_gets_full_marks(grade, tmp_path, sample):
    result = grade(tmp_path, sample)
    assert lost(result) == set(), problems(result)


@pytest.mark.slow(15)
@pytest.mark.parametrize("sample", sorted(BUGS))
def test_a_classic_mistake_costs_exactly_its_question(grade, tmp_path, sample):
    result = grade(tmp_path, sample)
    assert lost(result) == cells(result, BUGS[sample]), problems(result)
    for q, words in BUGS[sample].items():
        said = "\n".join(result[q]["problems"])
        assert words in said, f"{q}: {said}"


@pytest.mark.slow(18)
@pytest.mark.parametrize("sample", ["ok_threads_in_worker", "bug_all_interfaces",
                                    "bug_crash_utf8"])
def test_the_same_file_gets_the_same_grade(grade, tmp_path, sample):
    grades = [grade(tmp_path / str(n), sample) for n in range(REPEATS)]
    assert [lost(g) for g in grades] == [deserved(g, BUGS, sample) for g in grades], \
        [problems(g) for g in grades]


@pytest.mark.slow(8)
@pytest.mark.parametrize("sample", ["bug_all_interfaces", "bug_process_per_connection",
                                    "bug_never_stops"])
def test_the_public_check_warns_first(tmp_path, monkeypatch, sample):
    """Mistakes once caught by hidden tests only (or not at all) fail grader.check's
    smaller public run of their question too, with the same words (q5's public run too:
    a client for every worker would wake each blocking accept() and hide the mistake)."""
    monkeypatch.setenv(TIME_SCALE_ENV, "0.5")
    (question, words), = BUGS[sample].items()
    shutil.copy(sample_path("hw3", sample), tmp_path / "hw3_server.py")
    q = QUESTIONS["hw3"][question]
    found = checker.run(q, q.public[0], tmp_path)["problems"]
    assert found and words in found[0], found
