"""A submission built to be huge (issue 16, "Grader memory" and "Disk"): the grader's
own process stays small, the work happens in the worker slot, and what it writes for
that student (autograded notebook, feedback page) stays under the caps, with notes
where something was cut. Unit checks of the caps first, then one sandboxed run."""

from __future__ import annotations

import base64
import copy
import os
import re

import nbformat
import pytest

from course_tools.grade import worker
from course_tools.grade.execute import CapNotebook
from tests.support import course as fx
from tests.support.nbgrader_cli import course_grade, grade_rows, leftovers
from tests.support.sandboxing import sandbox_required  # noqa: F401 - fixture

pytestmark = pytest.mark.start_method_independent

MIB = 1 << 20


def stream(text: str):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def graded_cell(source: str, *outputs):
    cell = nbformat.v4.new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "grade_id": "test_x", "locked": True, "points": 1, "solution": False,
        "schema_version": 3}})
    cell.outputs = list(outputs)
    return cell


def test_cap_notebook_bounds_everything_and_keeps_errors_and_graded_sources():
    png = base64.b64encode(os.urandom(MIB)).decode()
    loud = nbformat.v4.new_code_cell("print(...)")
    loud.outputs = [stream("y" * (3 * MIB))]
    error = nbformat.v4.new_output("error", ename="AssertionError", evalue="z" * MIB,
                                   traceback=["line"] * 5000)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("m" * (3 * MIB)),
        nbformat.v4.new_markdown_cell("![a](attachment:a.png)",
                                      attachments={"a.png": {"image/png": png}}),
        loud,
        graded_cell("assert f() " + "#" * MIB, stream("w" * 500_000), error),
    ], metadata={"junk": "j" * MIB})
    nb.cells[2].metadata["junk"] = "k" * MIB
    nb, _ = CapNotebook(max_bytes=2 * MIB).preprocess(nb, {})
    assert len(nbformat.writes(nb)) < 2 * MIB + 64 * 1024
    markdown, attached, loud, test = nb.cells
    assert "[grader: the rest of this cell" in markdown.source
    assert "attachments" not in attached and "dropped-attachment:a.png" in attached.source
    assert "[grader: attachments" in attached.source
    assert "junk" not in nb.metadata and "junk" not in loud.metadata
    # the graded cell first: its source whole, its output kept, its error kept short
    assert test.source.startswith("assert f() ") and len(test.source) > MIB
    assert test.outputs[0].text == "w" * 500_000
    [err] = [o for o in test.outputs if o.output_type == "error"]
    assert err.ename == "AssertionError" and len(err.evalue) < 3000 and len(err.traceback) < 50
    assert "[grader: " in loud.outputs[-1].text and len(loud.outputs[0].text) < MIB


def test_feedback_mode_drops_attachments_and_markup_beyond_its_limit():
    html = nbformat.v4.new_output("display_data", data={"text/html": "<i>h</i>" * 50000,
                                                        "text/plain": "<HTML object>"})
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [html]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("![a](attachment:a.png)",
                                      attachments={"a.png": {"image/png": "iVBO"}}), cell])
    cap = CapNotebook(max_bytes=8 * MIB, keep_graded_sources=False, keep_attachments=False,
                      max_html_bytes=100_000)
    nb, _ = cap.preprocess(nb, {})
    assert "attachments" not in nb.cells[0] and "[grader:" not in nb.cells[0].source
    data = [o.get("data", {}) for o in nb.cells[1].outputs]
    assert {"text/plain": "<HTML object>"} in data and not any("text/html" in d for d in data)
    assert "shown as text" in nb.cells[1].outputs[0].text


def test_a_worker_over_its_memory_fails_that_student_alone(monkeypatch):
    with worker.memory_limit(256 * MIB), pytest.raises(MemoryError):
        bytearray(512 * MIB)
    bytearray(512 * MIB)  # the limit ends with the job

    def huge(job, work, kernel):
        raise MemoryError

    monkeypatch.setattr(worker, "_grade", huge)
    job = worker.Job("/course", "ga", "ada", "/snapshot", memory_bytes=1 << 30)
    result = worker.grade(job, None, None)
    assert result.status == "failed" and "more than the grader's 1024 MiB" in result.reasons[0]
    assert worker.bounded([f"r{i}" for i in range(100)])[-1] == "... and 71 more"


def huge_submission(root):
    """Within a 3 MiB intake limit: a big markdown cell, an attachment, outputs already
    in the file, cells that print and display far more than the caps, and an error
    with a huge message."""
    nb = copy.deepcopy(fx.ga_release(root))
    nb.cells[1].source = fx.GA_CORRECT
    png = base64.b64encode(os.urandom(600_000)).decode()
    prefilled = nbformat.v4.new_code_cell("")
    prefilled.outputs = [stream("p" * 400_000)]
    printers = [nbformat.v4.new_code_cell(
        "import sys\nfrom IPython.display import HTML, display\n"
        "for _ in range(4):\n    sys.stdout.write('<z>' * 200_000 + '\\n')\n"
        "display(HTML('<i>h</i>' * 60_000))") for _ in range(8)]
    many = [nbformat.v4.new_code_cell(f"print({i})") for i in range(150)]
    nb.cells[2:2] = [nbformat.v4.new_markdown_cell("<b>big</b> " + "x" * 700_000),
                     nbformat.v4.new_markdown_cell("![a](attachment:a.png)",
                                                   attachments={"a.png": {"image/png": png}}),
                     prefilled, *printers, *many,
                     nbformat.v4.new_code_cell("raise ValueError('v' * 3_000_000)")]
    return nb


# the answer prints megabytes each time it is called, then is wrong: the tests' errors
# must survive the output caps (a dropped error would be a passed test)
LOUD_WRONG = "def square(x):\n    print('y' * 3_000_000)\n    return x + 1\n"


@pytest.mark.slow(30)
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("sandbox_required")
def test_huge_submission_leaves_the_parent_small_and_its_files_capped(tmp_path):
    root = fx.ga_course(tmp_path / "course")
    fx.ga_submit(root, "good")
    fx.submit(root, fx.GA, "huge", huge_submission(root))
    fx.ga_submit(root, "loud", LOUD_WRONG)
    beyond = fx.ga_release(root)
    beyond.cells.append(nbformat.v4.new_markdown_cell("x" * (4 * MIB)))
    fx.ga_submit_raw(root, "beyond", nbformat.writes(beyond).encode())
    assert (root / "submitted/huge/ga/ga.ipynb").stat().st_size < 3 * MIB

    proc = course_grade(root, fx.GA, "--workers", "2", "--max-notebook-mb", "3",
                        "--max-autograded-mb", "4", "--max-feedback-mb", "2",
                        "--notebook-timeout", "90", timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = grade_rows(root, fx.GA)
    assert float(rows["good"]["score"]) == fx.GA_MAX_SCORE and rows["good"]["reasons"] == ""
    assert float(rows["huge"]["score"]) == fx.GA_MAX_SCORE, rows["huge"]["reasons"]
    assert float(rows["loud"]["score"]) == 0
    assert "test failed in cell 3 (test_square)" in rows["loud"]["reasons"]
    assert rows["beyond"]["status"] == "rejected" and "too large" in rows["beyond"]["reasons"]

    parent, largest = map(int, re.search(
        r"this process peaked at (\d+) MiB, the largest grading worker at (\d+) MiB",
        proc.stderr).groups())
    print(f"peak resident memory: parent {parent} MiB, largest worker {largest} MiB")
    assert parent < 1024 and 0 < largest

    for student in ("huge", "loud"):
        autograded = root / "autograded" / student / "ga" / "ga.ipynb"
        page = root / "feedback" / student / "ga" / "ga.html"
        print(f"{student}: autograded {autograded.stat().st_size} bytes, "
              f"feedback {page.stat().st_size} bytes")
        assert autograded.stat().st_size < 4 * MIB + 256 * 1024
        assert page.stat().st_size <= 2 * MIB
        assert "[grader: " in autograded.read_text() and "[grader: " in page.read_text()
    assert leftovers() == []
