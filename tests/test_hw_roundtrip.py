"""The whole nbgrader round trip for homework 1 and 2, on a copy of the course:
generate_assignment (its output must equal the committed release/) → submissions
(hw2's correct one through nbgrader's exchange: release_assignment, fetch_assignment,
submit, collect; the others placed where collect places them, to keep the suite
fast) → autograde → generate_feedback →
export, then every sample's score and the words its feedback gives. The
deadlocking sample is graded on its own, with the check limits shortened
(HWCHECK_TIME_SCALE), and must be failed, not hang."""

from __future__ import annotations

import html
import time

import pytest

from tests.support.course import ROOT, make_course, submission, submit, submit_via_exchange
from tests.support.nbgrader_cli import nbgrader, scores, strip_ansi

pytestmark = [
    pytest.mark.start_method_independent, pytest.mark.slow(40), pytest.mark.timeout(600),
]

# sample -> (expected score, words its feedback must contain). The blank answer and the
# workers defined in the notebook go through course-grade in
# tests/test_grade_hostile_homework.py, with the same words checked.
HW1 = {
    "correct": (10, []),
    "partly_right": (3, ["ended before any SENTINEL was sent"]),
}
# graded on its own (its own course copy, so xdist can run it beside the others), with
# the check limits shortened by HWCHECK_TIME_SCALE: 30 s -> 9 s
HW1_DEADLOCKING = {
    "missing_sentinel": (3, ["Still not finished", "1 SENTINEL(s) for 3 consumers"]),
}
HW2 = {
    "correct": (10, []),
    "blank": (0, ["still raise(s) NotImplementedError"]),
    "unlocked": (4, ["did not hold account['lock']"]),
}


def round_trip(tmp_path, assignment: str, samples: dict, env: dict | None = None,
               via_exchange: str | None = None) -> dict:
    course = make_course(tmp_path, assignment)
    timings = {}
    start = time.monotonic()
    nbgrader(["generate_assignment", assignment, "--force"], course, timeout=180)
    release_nb = course / "release" / assignment / f"{assignment}.ipynb"
    made = sorted(p.name for p in release_nb.parent.iterdir())
    assert made == [release_nb.name], f"release/{assignment} should hold only the notebook: {made}"
    assert release_nb.read_text() == (ROOT / "release" / assignment / release_nb.name).read_text(), (
        f"release/{assignment} is out of date: run `make release` and commit it"
    )
    for name in samples:
        if name == via_exchange:
            submit_via_exchange(course, assignment, name, name)
        else:
            submit(course, assignment, name, submission(release_nb, assignment, name))
    timings["submitted"] = time.monotonic() - start
    t = time.monotonic()
    nbgrader(["autograde", assignment], course, timeout=540, env=env)
    timings["autograde"] = time.monotonic() - t
    nbgrader(["generate_feedback", assignment], course, timeout=240)
    nbgrader(["export"], course, timeout=120)
    timings["total"] = time.monotonic() - start
    got = scores(course / "grades.csv", assignment)
    print(f"{assignment} {sorted(samples)}: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    assert got == {name: float(points) for name, (points, _) in samples.items()}, got
    for name, (_, words) in samples.items():
        page = course / "feedback" / name / assignment / f"{assignment}.html"
        assert page.exists(), f"no feedback for {name}"
        text = strip_ansi(html.unescape(page.read_text()))
        for w in words:
            assert w in text, f"feedback of {name} lacks {w!r}"
    return timings


@pytest.mark.slow(80)
def test_hw1_round_trip(tmp_path):
    round_trip(tmp_path, "hw1", HW1)


@pytest.mark.slow(75)
def test_hw1_deadlocking_submission_is_failed_in_time(tmp_path):
    timings = round_trip(tmp_path, "hw1", HW1_DEADLOCKING, env={"HWCHECK_TIME_SCALE": "0.3"})
    # failed by the checker's own watchdog (q2: 30 s × 0.3; the hidden q2 is not waited
    # for again), well inside nbgrader's per-cell limit of 120 s: it did not hang
    assert timings["autograde"] < 120


@pytest.mark.slow(60)
def test_hw2_round_trip(tmp_path):
    # one student takes nbgrader's own path: release_assignment, fetch, submit, collect
    round_trip(tmp_path, "hw2", HW2, via_exchange="correct")
