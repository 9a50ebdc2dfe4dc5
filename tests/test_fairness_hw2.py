"""Fair grades for homework 2 (issue 20): correct code in any reasonable style gets full
marks (functools.partial, keyword arguments, a wrapper target, acquire/release...), each
classic mistake costs exactly its question(s), with feedback that says what the checks
saw, and the same file gets the same grade every time: question 1 always tries the
exact-balance withdrawal, question 2 grades the lock and the log, not the rules.

The samples are tests/submissions/fair/hw2/; each is graded the verdict's way
(:func:`hwcheck.verdict.judge`), its questions side by side.
"""

from __future__ import annotations

import functools

import pytest

from tests.support.fairness import REPEATS, cells, deserved, lost, problems, samples
from tests.support.fairness import grade as grade_sample

OK = samples("hw2", "ok")
grade = functools.partial(grade_sample, assignment="hw2")
BUGS = {
    "bug_exact_balance": {"q1": "withdraw(account, 80, 7) with the balance at 80 before the "
                                "call (exactly the balance: allowed) returned False"},
    "bug_deposit_returns_none": {"q1": "deposit(account, 30, 7) with the balance at 50 before "
                                       "the call returned None"},
    "bug_refusal_not_logged": {"q1": "The log should be",
                               "q2": "exactly once and in that client's order"},
    "bug_no_lock": {"q2": "did not hold account['lock']"},
    "bug_misplaced_lock": {"q2": "misplaced lock"},
    "bug_log_outside_lock": {"q2": "the log was appended outside the lock"},
    "bug_one_at_a_time": {"q2": "No client was started while another was running"},
    "bug_client_ids_from_1": {"q2": "client_id = the client's index"},
    "bug_out_of_order": {"q2": "exactly once and in that client's order"},
    "bug_no_timeout": {"q2": "your run_bank joined with none at line 63 of hw2_solution.py: "
                             "`proc.join()"},
}

pytestmark = pytest.mark.start_method_independent


def test_the_fair_set_is_complete():
    assert len(OK) >= 6
    assert sorted(BUGS) == samples("hw2", "bug")
    assert len(BUGS) >= 8


@pytest.mark.slow(10)
@pytest.mark.parametrize("sample", OK)
def test_correct_code_in_any_style_gets_full_marks(tmp_path, sample):
    result = grade(tmp_path, sample=sample)
    assert lost(result) == set(), problems(result)


@pytest.mark.slow(10)
@pytest.mark.parametrize("sample", sorted(BUGS))
def test_a_classic_mistake_costs_exactly_its_questions(tmp_path, sample):
    result = grade(tmp_path, sample=sample)
    assert lost(result) == cells(result, BUGS[sample]), problems(result)
    for q, words in BUGS[sample].items():
        said = "\n".join(result[q]["problems"])
        assert words in said, f"{q}: {said}"


@pytest.mark.slow(30)
@pytest.mark.parametrize("sample", ["ok_partial", "bug_exact_balance", "bug_misplaced_lock"])
def test_the_same_file_gets_the_same_grade(tmp_path, sample):
    """The >= mistake once scored 2 in one run and 4 in another: no longer (each run
    loses exactly what the sample deserves)."""
    grades = [grade(tmp_path / str(n), sample=sample) for n in range(REPEATS)]
    assert [lost(g) for g in grades] == [deserved(g, BUGS, sample) for g in grades], \
        [problems(g) for g in grades]
