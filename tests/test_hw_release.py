"""The source notebooks pass `nbgrader validate`, and the blank releases fail every
graded cell (`validate --invert`). nbgrader validate exits 0 either way
(jupyter/nbgrader#1908), so its output is read. (That release/ is exactly what
generate_assignment makes from source/ is checked in test_hw_roundtrip.py, which
generates it anyway.)"""

from __future__ import annotations

import subprocess

import nbformat
import pytest
from hw_course import BIN, ROOT, make_course

pytestmark = [
    pytest.mark.start_method_independent, pytest.mark.slow, pytest.mark.timeout(400),
]
ASSIGNMENTS = ("hw1", "hw2")


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
