"""Plain ``nbgrader autograde`` (what formgrader's Autograde button runs) grades as
``make grade`` does (issue 17): student code runs in the grader's sandbox, and the
grade cells are scored by the grading run outside the kernel, so an in-kernel forgery
earns nothing (issue 15). Where the sandbox cannot work, autograding refuses, saying
why, unless the teacher opts out."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from course_tools.grade import plain
from tests.support.course import make_course, submit
from tests.support.nbgrader_cli import leftovers, nbgrader, scores
from tests.support.sandboxing import sandbox_required  # noqa: F401 - fixture
from tests.test_grade_hostile_homework import (
    FORGERY,
    _blank_text,
    _reference,
    _with_answer,
    _with_cell,
)

# A student's extra cell: what can this kernel see and who is it? (printed, then read
# back from the autograded notebook)
PROBE = """import os
import subprocess
import sys
def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError as exc:
        return type(exc).__name__
print("UID", os.getuid())
print("HOST", _read({secret!r}))
print("LINKED", _read("linked.txt"))
"""
# What formgrader's Autograde button calls (nbgrader.server_extensions.formgrader's
# handler -> NbGraderAPI.autograde), with the course's config, as the server loads it.
FORMGRADER_BUTTON = """import sys
from nbgrader.apps import NbGrader
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
app = NbGrader()
app.load_config_file()
api = NbGraderAPI(coursedir=CourseDirectory(config=app.config), config=app.config)
result = api.autograde(sys.argv[1], sys.argv[2], force=True, create=True)
print("success", result["success"])
print(result.get("log", ""), result.get("error", ""))
"""


@pytest.mark.start_method_independent
@pytest.mark.slow(60)
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("sandbox_required")
def test_plain_autograde_runs_students_in_the_sandbox_and_scores_by_the_verdict(tmp_path):
    secret = tmp_path / "teacher-notes.txt"
    secret.write_text("the teacher's private notes")
    secret.chmod(0o644)  # readable by anyone on the host: only the jail hides it
    course = make_course(tmp_path, "hw2")
    nbgrader(["generate_assignment", "hw2", "--force"], course, timeout=180)
    release = nbformat.read(course / "release" / "hw2" / "hw2.ipynb", as_version=4)
    blank = _blank_text(release)
    hides = (FORGERY / "hides_failures.py").read_text() + "\n\n" + (
        FORGERY / "swallows_errors.py").read_text()
    probe = PROBE.format(secret=str(secret))
    cases = {
        "honest": (_with_cell(_with_answer(release, _reference("hw2")), probe, "after"), 10.0),
        "hides": (_with_cell(_with_answer(release, blank), hides, "after"), 0.0),
        "patches": (_with_cell(_with_answer(release, blank),
                               (FORGERY / "patches_checker.py").read_text(), "after"), 0.0),
    }
    for student, (nb, _) in cases.items():
        submit(course, "hw2", student, nb)
    # a link among the submitted files: nbgrader copies what it points to
    os.symlink(secret, course / "submitted" / "honest" / "hw2" / "linked.txt")

    out = nbgrader(["autograde", "hw2"], course, timeout=480)
    nbgrader(["export"], course, timeout=120)

    assert scores(course / "grades.csv", "hw2") == {s: d for s, (_, d) in cases.items()}, out
    # the forgery made the notebook's own checks pass; the log says the grading run differed
    assert "the in-notebook check passed but the grading run failed" in out
    graded = nbformat.read(course / "autograded" / "honest" / "hw2" / "hw2.ipynb", as_version=4)
    seen = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "UID 0\n" not in seen and "UID " in seen, seen[-2000:]
    assert "HOST FileNotFoundError" in seen, "the kernel read a host file outside its folder"
    assert "LINKED FileNotFoundError" in seen, "a submitted link's target reached the kernel"
    assert "teacher's private notes" not in seen
    assert not list((course / "autograded").glob("*/hw2/linked.txt"))

    # formgrader's Autograde button: nbgrader's API, in the server's process
    button = subprocess.run([sys.executable, "-c", FORMGRADER_BUTTON, "hw2", "hides"],
                            cwd=course, capture_output=True, text=True, timeout=300)
    assert button.returncode == 0, button.stderr[-3000:]
    assert "success True" in button.stdout, button.stdout[-3000:]
    assert "the in-notebook check passed but the grading run failed" in button.stdout
    nbgrader(["export"], course, timeout=120)
    assert scores(course / "grades.csv", "hw2")["hides"] == 0.0
    assert not leftovers()


def test_refuses_without_a_sandbox_and_says_why(monkeypatch):
    monkeypatch.delenv(plain.UNSANDBOXED_ENV, raising=False)
    monkeypatch.setattr(plain.sandbox, "probe", lambda: "bubblewrap is missing")
    with pytest.raises(plain.SandboxUnavailable, match="bubblewrap is missing.*Refusing"):
        plain.sandboxed()
    monkeypatch.setenv(plain.UNSANDBOXED_ENV, "1")
    assert plain.sandboxed() is False


def test_the_course_config_sandboxes_autograde_only():
    from nbgrader.preprocessors import Execute
    from traitlets.config.loader import PyFileConfigLoader

    from tests.support.course import ROOT

    c = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    steps = c.Autograde.autograde_preprocessors
    assert steps[0] is plain.SandboxedAutograde and Execute not in steps
    assert "Validate" not in c and "ValidateApp" not in c  # students' validate runs plainly


def test_without_the_course_tools_autograde_and_feedback_refuse(monkeypatch):
    import sys

    from traitlets.config.loader import PyFileConfigLoader

    from tests.support.course import ROOT

    monkeypatch.setitem(sys.modules, "course_tools.grade.config", None)  # import fails
    c = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    [step] = c.Autograde.autograde_preprocessors
    assert c.GenerateFeedback.preprocessors == [step]
    with pytest.raises(RuntimeError, match="refusing to run: the course's tools cannot be"):
        step().preprocess(None, {})
