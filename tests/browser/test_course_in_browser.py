"""The course as students and teachers meet it: real JupyterLab in headless
Chromium (issue 9). One file, one JupyterLab, the steps in the order a person
takes them; each step saves a screenshot to tests/browser/screenshots/.

1. lecture: open 01-producer-consumer, Run All, no error, a plot rendered;
   then edit its `%%writefile pc_workers.py` worker cell as a student would,
   re-run that cell, its load cell and a cell that uses the worker: the
   output shows the edit took effect (the code being taught is on the page);
2. student: answer hw1 (the instructor's solution), run it, self-checks pass,
   Validate says success; then a slip: the self-check explains, Validate fails;
3. teacher: formgrader lists the assignments, and shows the scores of two hw1
   submissions graded by course-grade (started in the background at step 1);
   one of them carries student script (markdown, HTML and JavaScript outputs):
   neither formgrader's submission view nor the feedback page runs any of it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab_ui import (
    RUN_TIMEOUT,
    code_cells,
    command,
    error_outputs,
    open_notebook,
    run_all,
    save,
    set_cell_source,
    wait_cells_done,
)
from playwright.sync_api import expect

from courselib.procs import terminate_then_kill, tree

LECTURE = "notebooks/01-producer-consumer.ipynb"
# The student's edit of the lecture's worker module: produce() now puts the
# producer's name in capitals, which the cross-process demonstration prints.
WORKER_CELL = "%%writefile pc_workers.py"
WORKER_EDIT = ("item = (name, i)", "item = (name.upper(), i)")
LOAD_CELL = "import pc_workers"  # the cell right under it: writes nothing, reloads the module
DEMO_CELL = 'args=(q, "child", 3)'  # runs pc_workers.produce in a child, prints what arrived
DEMO_BEFORE, DEMO_AFTER = "('child', 0)", "('CHILD', 0)"


def _lecture_cell(page, lab, marker: str):
    """The lecture's code cell (on the page) whose source contains ``marker``."""
    sources = ["".join(c["source"]) for c in _cells(lab.root / LECTURE)]
    found = [i for i, src in enumerate(sources) if marker in src]
    assert len(found) == 1, f"{LECTURE}: {len(found)} cells contain {marker!r}"
    return page.locator(NOTEBOOK_CELLS).nth(found[0]), sources[found[0]]


def _run_cell(page, cell) -> None:
    """Click into the cell and press Shift+Enter, as a student does; wait until it ran."""
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor .cm-content").click()
    page.keyboard.press("Shift+Enter")
    wait_cells_done(page)


@pytest.mark.timeout(300)
def test_lecture_runs_all_cells_and_an_edited_worker_takes_effect(lab, page, shot):
    open_notebook(page, lab, LECTURE)
    # start from no outputs, so every output checked below comes from this run
    # (the committed notebook carries outputs of its own)
    command(page, "Edit", "editmenu:clear-all")
    outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")
    expect(outputs).to_have_count(0)
    shot(page, "01-lecture-outputs-cleared")

    run_all(page)
    save(page)
    shot(page, "02-lecture-ran")

    # every code cell ran (a number in its prompt), none shows an error
    cells = code_cells(page)
    n = cells.count()
    assert n > 0, "the lecture notebook shows no code cells"
    assert error_outputs(page) == []
    prompts = cells.locator(".jp-InputPrompt").all_inner_texts()
    not_run = [i for i, p in enumerate(prompts) if not any(ch.isdigit() for ch in p)]
    assert not not_run, f"code cells {not_run} did not run (prompts: {prompts})"

    # the saved file agrees: no error output in any cell
    saved = json.loads((lab.root / LECTURE).read_text())
    errors = [
        (i, o.get("ename"), o.get("evalue"))
        for i, c in enumerate(saved["cells"])
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []

    # a plot is rendered: an image in an output area that the browser decoded
    img = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img").first
    img.scroll_into_view_if_needed()
    expect(img).to_be_visible()
    width = img.evaluate("el => el.complete ? el.naturalWidth : 0")
    assert width > 100, f"the plot image did not render (naturalWidth={width})"
    shot(page, "03-lecture-plot")

    # the worker is on the page: edit it, re-run it and its load cell, then a cell using it
    demo, _ = _lecture_cell(page, lab, DEMO_CELL)
    demo_output = demo.locator(".jp-OutputArea-output")
    expect(demo_output.first).to_contain_text(DEMO_BEFORE)
    worker, source = _lecture_cell(page, lab, WORKER_CELL)
    old, new = WORKER_EDIT
    assert source.count(old) == 1, f"{old!r} is no longer once in the {WORKER_CELL} cell"
    worker.scroll_into_view_if_needed()
    set_cell_source(page, worker, source.replace(old, new))
    expect(worker.locator(".jp-InputArea-editor")).to_contain_text(new)
    page.keyboard.press("Shift+Enter")  # run the %%writefile cell
    wait_cells_done(page)
    expect(worker.locator(".jp-OutputArea-output")).to_contain_text("Overwriting pc_workers.py")
    load, _ = _lecture_cell(page, lab, LOAD_CELL)
    _run_cell(page, load)
    _run_cell(page, demo)
    expect(demo_output.first).to_contain_text(DEMO_AFTER)
    expect(demo_output.first).not_to_contain_text(DEMO_BEFORE)
    assert error_outputs(page) == []
    shot(page, "03b-lecture-worker-edited-and-rerun")


# ---------------------------------------------------------------------------
# The student: a released homework, answered, run and validated.
# ---------------------------------------------------------------------------

HOMEWORK = "hw1"
RELEASED = f"release/{HOMEWORK}/{HOMEWORK}.ipynb"
SOURCE = f"source/{HOMEWORK}/{HOMEWORK}.ipynb"  # the instructor's version, with solutions
# A plausible slip in the correct answer: the consumer reports the item but
# forgets to say which process consumed it. (It fails every check quickly; a
# slip that loses items makes Validate wait out the checks' time limits.)
WRONG_EDIT = ("results.put((item, os.getpid()))", "results.put(item)")
# what the self-check's message must name: the cause, not just "failed"
WRONG_EXPLAINED = "(item, os.getpid())"
# the public test cells: each runs the self-check grader.check("qN"), which
# says in plain words what passed or what is wrong; the slip fails q1's
PUBLIC_CHECKS = {f"q{n}-public": f"q{n}: all" for n in (1, 2, 3)}
CHECK_CELL, CHECK_FAILS = "q1-public", "q1: not yet"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
NOTEBOOK_CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"


def _cells(path) -> list[dict]:
    return json.loads(Path(path).read_text())["cells"]


def _answer_cells(path) -> dict[int, str]:
    """{cell index: grade_id} of the cells a student writes in."""
    return {
        i: c["metadata"]["nbgrader"]["grade_id"]
        for i, c in enumerate(_cells(path))
        if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution")
    }


def _cell(page, lab, grade_id: str):
    """The notebook cell (on the page) with this nbgrader grade_id."""
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in _cells(lab.root / RELEASED)]
    assert grade_id in ids, f"{RELEASED} has no cell {grade_id!r}"
    return page.locator(NOTEBOOK_CELLS).nth(ids.index(grade_id))


def _solutions(lab) -> dict[str, str]:
    """{grade_id: the instructor's answer, without nbgrader's solution markers}."""
    out = {}
    for c in _cells(lab.root / SOURCE):
        meta = c["metadata"].get("nbgrader", {})
        if c["cell_type"] == "code" and meta.get("solution"):
            src = "".join(c["source"])
            lines = [ln for ln in src.splitlines() if ln.strip() not in SOLUTION_MARKERS]
            out[meta["grade_id"]] = "\n".join(lines)
    return out


def _fill_answers(page, lab, answers: dict[str, str]) -> None:
    cells = page.locator(NOTEBOOK_CELLS)
    for index, grade_id in _answer_cells(lab.root / RELEASED).items():
        cell = cells.nth(index)
        cell.scroll_into_view_if_needed()
        set_cell_source(page, cell, answers[grade_id])


def _saved_answers(lab) -> dict[str, str]:
    cells = _cells(lab.root / RELEASED)
    return {
        gid: "".join(cells[i]["source"]).strip()
        for i, gid in _answer_cells(lab.root / RELEASED).items()
    }


def _validate(page):
    """Press nbgrader's Validate button; return the results dialog."""
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) jp-button.validate-button").click()
    dialog = page.locator(".jp-Dialog").filter(has_text="Validation Results")
    expect(dialog).to_be_visible(timeout=RUN_TIMEOUT)
    return dialog


def _close(dialog) -> None:
    dialog.locator("button.jp-Dialog-button").click()
    expect(dialog).to_have_count(0)


@pytest.mark.timeout(420)
def test_student_answers_runs_and_validates_homework(lab, page, shot):
    solutions = _solutions(lab)
    assert solutions, f"{SOURCE} has no solution cells"

    open_notebook(page, lab, RELEASED)
    shot(page, "04-homework-opened")

    # a correct answer: every cell runs without error, the self-check says so
    _fill_answers(page, lab, solutions)
    run_all(page)
    save(page)
    assert _saved_answers(lab) == {k: v.strip() for k, v in solutions.items()}
    assert error_outputs(page) == []
    for grade_id, passes in PUBLIC_CHECKS.items():
        expect(_cell(page, lab, grade_id).locator(".jp-OutputArea-output")).to_contain_text(passes)
    check = _cell(page, lab, CHECK_CELL)
    check.scroll_into_view_if_needed()
    shot(page, "05-homework-correct-selfcheck-passes")

    # ... and nbgrader's Validate button agrees
    dialog = _validate(page)
    expect(dialog.locator(".validation-success")).to_contain_text(
        "Success! Your notebook passes all the tests."
    )
    shot(page, "06-homework-validate-success")
    _close(dialog)

    # a wrong answer: the self-check says in plain words what is wrong
    old, new = WRONG_EDIT
    wrong = {k: v.replace(old, new, 1) for k, v in solutions.items()}
    assert wrong != solutions, f"{old!r} is no longer in the solution"
    _fill_answers(page, lab, wrong)
    run_all(page)
    check.scroll_into_view_if_needed()
    message = check.locator(".jp-OutputArea-output")
    expect(message).to_contain_text(CHECK_FAILS)
    expect(message).to_contain_text(WRONG_EXPLAINED)
    assert error_outputs(page), "the wrong answer shows no failing cell"
    save(page)  # the saved file agrees: the self-check cell failed (what nbgrader sees)
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in _cells(lab.root / RELEASED)]
    saved_check = _cells(lab.root / RELEASED)[ids.index(CHECK_CELL)]
    assert [o["output_type"] for o in saved_check["outputs"]][-1:] == ["error"], saved_check
    shot(page, "07-homework-wrong-selfcheck-explains")

    # ... and Validate fails, showing the same message
    dialog = _validate(page)
    failed = dialog.locator(".validation-failed")
    expect(failed).to_contain_text("The following cell failed:")
    expect(failed).to_contain_text(CHECK_FAILS)
    # the plain-words message is at the end of the traceback: show it
    q1_message = failed.locator("pre", has_text=CHECK_FAILS).first
    q1_message.evaluate("el => el.scrollIntoView({block: 'end'})")
    shot(page, "08-homework-validate-failed")
    _close(dialog)


# ---------------------------------------------------------------------------
# The teacher: formgrader lists the assignments; after grading, the scores.
# ---------------------------------------------------------------------------

GRADE_TIMEOUT = 400  # s: two hw1 submissions, sandboxed, on 2 busy cores
# alice hands in the instructor's solution, bob the slip above
STUDENTS = {"alice": "solution", "bob": "wrong"}


# Student script that must never run in the teacher's browser: each piece, if it
# runs, marks the page (<html data-pwned=...>); the visible text must still show.
SCRIPT_MARK = "document.documentElement.dataset.pwned"
HOSTILE_MARKDOWN = f'''Student notes <img src="x" onerror="{SCRIPT_MARK}='markdown-img'">'''
HOSTILE_OUTPUTS = f'''from IPython.display import HTML, Javascript, display
display(HTML("<b>student html</b><script>{SCRIPT_MARK}='html-script'</script>"
             "<img src=x onerror=\\"{SCRIPT_MARK}='html-img'\\">"))
display(Javascript("{SCRIPT_MARK}='javascript-output'"))
'''
HOSTILE_STUDENT = "bob"


def _submit(lab, student: str, answers: dict[str, str]) -> None:
    """Put a student's hw1 (the release with ``answers`` filled in) in submitted/."""
    nb = json.loads((lab.root / RELEASED).read_text())
    for i, gid in _answer_cells(lab.root / RELEASED).items():
        nb["cells"][i]["source"] = answers[gid]
    if student == HOSTILE_STUDENT:
        nb["cells"][1:1] = [
            {"cell_type": "markdown", "metadata": {}, "source": HOSTILE_MARKDOWN},
            {"cell_type": "code", "metadata": {}, "source": HOSTILE_OUTPUTS,
             "outputs": [], "execution_count": None},
        ]
    dest = lab.root / "submitted" / student / HOMEWORK / f"{HOMEWORK}.ipynb"
    dest.parent.mkdir(parents=True)
    dest.write_text(json.dumps(nb, indent=1))


class Grading:
    """``course-grade hw1`` (what ``make grade ASSIGNMENT=hw1`` runs) on the
    temporary course, started in the background as the first test begins: it
    takes longer than anything else here, and runs while the browser works."""

    def __init__(self, lab, log: Path):
        self.log = log
        self.cmd = [sys.executable, "-m", "course_tools.grade.cli", HOMEWORK]
        self.cmd += ["--course", str(lab.root)]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=lab.root, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.deadline = time.monotonic() + GRADE_TIMEOUT

    def result(self) -> str:
        """Wait (bounded) for the grader to finish; its output."""
        try:
            self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"grading took longer than {GRADE_TIMEOUT} s:\n{self.output()}")
        out = self.output()
        assert self.proc.returncode == 0, f"{self.cmd} exited {self.proc.returncode}:\n{out}"
        return out

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate_then_kill(tree(self.proc.pid), grace=10)
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def grading(lab, tmp_path_factory):
    """Release hw1 (nbgrader generate_assignment: it enters the gradebook), hand
    in two submissions, and start grading them."""
    nbgrader = Path(sys.executable).parent / "nbgrader"
    gen = subprocess.run(
        [str(nbgrader), "generate_assignment", HOMEWORK, "--force"],
        cwd=lab.root, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert gen.returncode == 0, f"generate_assignment failed:\n{gen.stdout}\n{gen.stderr}"
    solutions = _solutions(lab)
    old, new = WRONG_EDIT
    answers = {
        "solution": solutions,
        "wrong": {k: v.replace(old, new, 1) for k, v in solutions.items()},
    }
    for student, which in STUDENTS.items():
        _submit(lab, student, answers[which])
    job = Grading(lab, tmp_path_factory.mktemp("grading") / "course-grade.log")
    try:
        yield job
    finally:
        job.stop()


def _open_formgrader(page, lab):
    """Nbgrader menu > Formgrader: the page opens in a tab of JupyterLab."""
    page.goto(lab.url("lab?reset"), timeout=90_000)
    command(page, "Nbgrader", "nbgrader:open-formgrader")
    frame = page.frame_locator("iframe[src*='formgrader']")
    expect(frame.locator(".breadcrumb")).to_contain_text("Assignments", timeout=60_000)
    return frame


@pytest.mark.timeout(GRADE_TIMEOUT + 180)
def test_teacher_sees_assignments_and_autograded_scores(lab, page, shot, grading):
    assignments = sorted(p.name for p in (lab.root / "source").iterdir() if p.is_dir())
    assert HOMEWORK in assignments

    # formgrader lists every assignment of source/
    frame = _open_formgrader(page, lab)
    names = frame.locator("#main-table td.name")
    expect(names).to_have_count(len(assignments))
    assert sorted(t.strip() for t in names.all_inner_texts()) == assignments
    shot(page, "09-formgrader-assignments")

    # the grader's summary: "alice   10/10  graded"
    out = grading.result()
    scores = {}
    for line in out.splitlines():
        m = re.match(r"(\w+)\s+([\d.]+)/([\d.]+)\s+graded\b", line)
        if m and m[1] in STUDENTS:
            scores[m[1]] = (float(m[2]), float(m[3]))
    assert set(scores) == set(STUDENTS), f"not every submission was graded:\n{out}"
    got, total = scores["alice"]
    assert got == total > 0, f"the solution did not get full marks:\n{out}"
    assert scores["bob"][0] < total, f"the wrong answer got full marks:\n{out}"

    # formgrader: hw1's submissions, each graded, with the grader's scores
    frame = _open_formgrader(page, lab)
    row = frame.locator("#main-table tr").filter(
        has=frame.locator("td.name", has_text=re.compile(f"^\\s*{HOMEWORK}\\s*$"))
    )
    row.locator("td.num-submissions a").click()
    expect(frame.locator(".breadcrumb")).to_contain_text(HOMEWORK, timeout=60_000)
    rows = frame.locator("#main-table tr")
    expect(rows).to_have_count(len(STUDENTS))
    for student, (got, total) in scores.items():
        srow = rows.filter(has=frame.locator("td.student-id", has_text=student))
        expect(srow.locator("td.status")).to_have_text("graded")
        shown = srow.locator("td.score").inner_text()
        assert [float(x) for x in shown.split("/")] == [got, total], (student, shown)
    shot(page, "10-formgrader-autograded-scores")


def _no_student_script(target, where: str) -> None:
    """The page (or frame) shows the student's text but ran none of its script."""
    expect(target.locator("b", has_text="student html").first).to_be_visible()
    ran = target.evaluate(f"() => {SCRIPT_MARK} || null")
    assert ran is None, f"{where}: student script ran ({ran})"


@pytest.mark.timeout(GRADE_TIMEOUT + 180)
def test_student_script_never_runs_in_the_teachers_pages(lab, page, shot, grading):
    grading.result()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # formgrader's view of the submission (manual grading), in the lab's own origin
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{lab.root / 'gradebook.db'}") as gb:
        nb_id = gb.find_submission_notebook(HOMEWORK, HOMEWORK, HOSTILE_STUDENT).id
    page.goto(lab.url(f"formgrader/submissions/{nb_id}/"), timeout=90_000)
    expect(page.locator("body")).to_contain_text("Student notes", timeout=60_000)
    page.wait_for_timeout(1000)  # an onerror handler fires once the image failed
    _no_student_script(page, "formgrader's submission view")
    shot(page, "11-formgrader-submission-no-script")
    # the feedback page the student (and teacher) open
    feedback = lab.root / "feedback" / HOSTILE_STUDENT / HOMEWORK / f"{HOMEWORK}.html"
    page.goto(feedback.as_uri())
    page.wait_for_timeout(1000)
    _no_student_script(page, "the feedback page")
    assert not dialogs, dialogs
