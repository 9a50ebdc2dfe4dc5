"""The homework half of the grader's hostile class (issue 15): `course-grade` on real
homework, with submissions that try to forge their scores, graded in one run per
homework beside an honest and a blank one.

Every forging technique a student can use in the notebook or the module it writes:
- hides its failures in the kernel (traceback display and excepthooks silenced, every
  later cell wrapped in ``try/except``);
- patches the check code in the kernel (``grader.check``, ``hwcheck.check``...);
- shadows the check package (a ``hwcheck.py`` written next to the notebook, first);
- writes a "passed" report everywhere it can (a prologue of the answer module).

Each is applied to a blank answer (it deserves 0) and one to a partly right answer (it
deserves what the same answer gets without the forgery). The in-kernel forgeries do make
the notebook's own test cells pass; the scores come from the grading run's verdict,
outside the kernel, and the summary says where the two differed. hw1's run also has
workers defined in the notebook (not picklable under spawn): 0, said in words; hw3's
run also has a classic mistake of stages 2 to 4, which loses exactly its question (the
never-stopping server of stage 5: tests/test_fairness_hw3.py, at the verdict's level).

And a student's score does not depend on who is graded beside them (issue 16): hw1's
run starts with a submission that keeps eight busy loops running for 40 s, so the
honest and the other submissions are graded beside it; each kernel (and each grading
run) may use one core at once (a cgroup CPU quota), so they get what they deserve.
"""

from __future__ import annotations

import html

import nbformat
import pytest

from tests.notebook_cells import writefile_body
from tests.support.course import ROOT, SAMPLES, make_course, submission, submit
from tests.support.nbgrader_cli import course_grade, grade_rows, leftovers, nbgrader, strip_ansi
from tests.support.sandboxing import sandbox_required  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.start_method_independent, pytest.mark.slow(90), pytest.mark.timeout(900),
    pytest.mark.usefixtures("sandbox_required"),
]

FORGERY = SAMPLES / "forgery"
MAX = {"hw1": 10.0, "hw2": 10.0, "hw3": 15.0}
# a partly right answer of each homework and what it deserves (tests/test_verdict.py)
PARTLY = {"hw1": ("hw1/partly_right.py", 3.0), "hw2": ("hw2/unlocked.py", 4.0),
          "hw3": ("hw3/no_accept_loop.py", 12.0)}
DIFFERED = "the in-notebook check passed but the grading run failed"
HOG = """import subprocess, sys, time
spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(8)]
time.sleep(40)
"""
# fairness samples graded here too: {sample: {question it loses: words of its feedback}}
FAIR_SAMPLES = {
    "hw1": {"ok_wrapper": {},
            "bug_sentinel_per_producer": {"q2": "One SENTINEL per producer instead of one per "
                                                "consumer"}},
    "hw2": {"bug_exact_balance": {"q1": "(exactly the balance: allowed) returned False"}},
}


def _question_points(release, question: str) -> float:
    return sum(float(c.metadata["nbgrader"].get("points", 0)) for c in release.cells
               if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith(f"{question}-"))


def _is_answer(cell) -> bool:
    return cell.metadata.get("nbgrader", {}).get("solution", False) and (
        cell.source.startswith("%%writefile"))


def _answer_index(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if _is_answer(c))


def _reference(assignment: str) -> str:
    nb = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    return writefile_body(nb.cells[_answer_index(nb)].source)


def _with_answer(release, text: str):
    nb = nbformat.from_dict(release)
    cell = nb.cells[_answer_index(nb)]
    cell.source = cell.source.split("\n", 1)[0] + "\n" + text
    return nb


def _with_cell(nb, source: str, where: str):
    """A cell the student added: at the top, or right after the answer's import."""
    index = 0 if where == "top" else _answer_index(nb) + 2
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb


def _blank_text(release) -> str:
    return writefile_body(release.cells[_answer_index(release)].source)


def submissions(assignment: str, release) -> dict[str, tuple[object, float]]:
    """student -> (notebook, the score it deserves)."""
    blank = _blank_text(release)
    forge = {p: (FORGERY / f"{p}.py").read_text() for p in (
        "hides_failures", "swallows_errors", "patches_checker", "writes_report")}
    hides = forge["hides_failures"] + "\n\n" + forge["swallows_errors"]
    shadow = "%%writefile hwcheck.py\n" + (FORGERY / "shadow" / "hwcheck.py").read_text()
    partly, deserved = PARTLY[assignment]
    return {
        "honest": (_with_answer(release, _reference(assignment)), MAX[assignment]),
        "blank": (_with_answer(release, blank), 0.0),
        "hides": (_with_cell(_with_answer(release, blank), hides, "after"), 0.0),
        "patches": (_with_cell(_with_answer(release, blank), forge["patches_checker"], "after"),
                    0.0),
        "shadows": (_with_cell(_with_answer(release, blank), shadow, "top"), 0.0),
        "reports": (_with_answer(release, forge["writes_report"] + "\n\n" + blank), 0.0),
        "partly_hides": (_with_cell(_with_answer(release, (SAMPLES / partly).read_text()),
                                    hides, "after"), deserved),
    }


@pytest.mark.parametrize("assignment", ["hw1", "hw2", "hw3"])
def test_forged_submissions_get_what_their_answer_deserves(tmp_path, assignment):
    course = make_course(tmp_path, assignment)
    nbgrader(["generate_assignment", assignment, "--force"], course, timeout=180)
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb",
                            as_version=4)
    cases = submissions(assignment, release)
    words = {}  # student -> what its feedback must say
    if assignment == "hw3":
        # each stage's classic mistake loses exactly its question (tests/test_hw3.py)
        from test_hw3 import STAGE_SAMPLES, _lost

        for name in ("recv_is_a_line", "one_at_a_time", "crash_utf8"):
            score, words[name] = _lost(*STAGE_SAMPLES[name])
            cases[name] = (_with_answer(release, (SAMPLES / "hw3" / f"{name}.py").read_text()),
                           score)
    if assignment == "hw1":
        release_nb = course / "release" / "hw1" / "hw1.ipynb"
        cases["notebook_workers"] = (submission(release_nb, "hw1", "notebook_workers"), 0.0)
        hog = submission(release_nb, "hw1", "blank")
        hog.cells.insert(0, nbformat.v4.new_code_cell(HOG))
        cases["a0_hog"] = (hog, 0.0)  # graded first: the others are graded beside it
    for sample, lost in FAIR_SAMPLES.get(assignment, {}).items():
        # issue 20's fairness set, end to end: another correct style gets full marks, a
        # classic mistake loses exactly its question, with its words in the feedback
        text = (SAMPLES / "fair" / assignment / f"{sample}.py").read_text()
        cases[sample] = (_with_answer(release, text), MAX[assignment] - sum(
            _question_points(release, q) for q in lost))
        words[sample] = list(lost.values())
    for student, (nb, _) in cases.items():
        submit(course, assignment, student, nb)
    proc = course_grade(course, assignment, "--workers", "2", timeout=840)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = grade_rows(course, assignment)
    got = {s: float(rows[s]["score"]) for s in cases}
    assert got == {s: deserved for s, (_, deserved) in cases.items()}
    assert rows["honest"]["reasons"] == ""
    assert "still raise(s) NotImplementedError" in rows["blank"]["reasons"]
    for student in ("hides", "patches", "shadows"):
        # the forgery worked in the kernel, and the summary says so
        assert DIFFERED in rows[student]["reasons"], (student, rows[student]["reasons"])
    assert DIFFERED not in rows["honest"]["reasons"] + rows["blank"]["reasons"]
    if assignment == "hw1":
        assert "left running after the notebook (killed)" in rows["a0_hog"]["reasons"]
        assert "worker not picklable under spawn" in rows["notebook_workers"]["reasons"]
        page = course / "feedback" / "notebook_workers" / "hw1" / "hw1.html"
        assert "the answer cell must start with the line `%%writefile" in strip_ansi(
            html.unescape(page.read_text()))
    for student, said in words.items():
        page = course / "feedback" / student / assignment / f"{assignment}.html"
        text = strip_ansi(html.unescape(page.read_text()))
        assert all(w in text for w in said), (student, said)
    feedback = course / "feedback" / "hides" / assignment / f"{assignment}.html"
    text = strip_ansi(html.unescape(feedback.read_text()))
    assert "GradingRunFailed" in text and "still raise(s) NotImplementedError" in text
    honest = course / "autograded" / "honest" / assignment / f"{assignment}.ipynb"
    outputs = "".join(o.get("text", "") for c in nbformat.read(honest, as_version=4).cells
                      if c.cell_type == "code" for o in c.get("outputs", []))
    assert "grading run (outside the notebook, the result that counts)" in outputs
    assert leftovers() == []
