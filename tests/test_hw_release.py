"""release/hw1 and release/hw2 are exactly what `nbgrader generate_assignment`
makes from source/, the source notebooks pass `nbgrader validate`, and the blank
releases fail every graded cell (`validate --invert`). nbgrader validate exits 0
either way (jupyter/nbgrader#1908), so its output is read."""

from __future__ import annotations

import subprocess

import nbformat
import pytest
from hw_course import BIN, ROOT, make_course, nbgrader

pytestmark = [pytest.mark.start_method_independent, pytest.mark.timeout(400)]
ASSIGNMENTS = ("hw1", "hw2")


def test_release_is_generated_from_source(tmp_path):
    course = make_course(tmp_path, *ASSIGNMENTS)
    for a in ASSIGNMENTS:
        nbgrader(["generate_assignment", a, "--force"], course, timeout=180)
        made = sorted(p.relative_to(course / "release" / a)
                      for p in (course / "release" / a).rglob("*"))
        committed = sorted(p.relative_to(ROOT / "release" / a)
                           for p in (ROOT / "release" / a).rglob("*")
                           if not p.name.endswith("_solution.py") and "__pycache__" not in p.parts)
        assert made == committed, f"release/{a} files differ: {made} vs {committed}"
        new = (course / "release" / a / f"{a}.ipynb").read_text()
        old = (ROOT / "release" / a / f"{a}.ipynb").read_text()
        assert new == old, (
            f"release/{a} is out of date: run `make release` (nbgrader generate_assignment {a})"
        )


def _graded_cells(path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(1 for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))


def test_validate_source_passes_and_release_fails(tmp_path):
    course = make_course(tmp_path, *ASSIGNMENTS, with_release=True)
    env_path = f"{BIN}:/usr/bin:/bin"
    runs = {
        "source": [str(course / "source" / a / f"{a}.ipynb") for a in ASSIGNMENTS],
        "release": [str(course / "release" / a / f"{a}.ipynb") for a in ASSIGNMENTS],
    }
    procs = {
        kind: subprocess.Popen(
            [str(BIN / "nbgrader"), "validate", *(["--invert"] if kind == "release" else []),
             *paths],
            cwd=course, env={"PATH": env_path, "HOME": str(tmp_path)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for kind, paths in runs.items()
    }
    out = {}
    for kind, proc in procs.items():
        try:
            out[kind], _ = proc.communicate(timeout=360)
        except subprocess.TimeoutExpired:
            for p in procs.values():
                p.kill()
            raise
    assert out["source"].count("Success! Your notebook passes all the tests.") == 2, \
        out["source"][-4000:]
    assert "VALIDATION FAILED" not in out["source"]
    assert out["release"].count("Success! The notebook does not pass any tests.") == 2, \
        out["release"][-4000:]
    assert "passed" not in out["release"].replace("does not pass", ""), out["release"][-4000:]
    assert all(_graded_cells(ROOT / "release" / a / f"{a}.ipynb") >= 4 for a in ASSIGNMENTS)
