"""`--start-methods` (tests/plugins/start_methods.py): one pytest session runs
every test and every notebook under each start method named, and says which."""

from __future__ import annotations

import nbformat
import pytest

pytestmark = pytest.mark.start_method_independent

PLUGIN = ["-p", "tests.plugins.start_methods", "-p", "no:cacheprovider"]

UNIT_TESTS = '''
import os
import pytest
from helpers import context

@pytest.fixture(scope="module")
def made_for(mp_start_method):
    return mp_start_method

def test_children_see_the_method(made_for):
    assert os.environ["MP_START_METHOD"] == made_for == context().get_start_method()
    p = context().Process(target=os.getpid)
    p.start(); p.join(10)
    assert p.exitcode == 0

@pytest.mark.start_method_independent
def test_once():
    pass
'''


def test_each_test_runs_under_each_method(pytester):
    pytester.makepyfile(test_m=UNIT_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n  start_method_independent: once\n")
    result = pytester.runpytest_subprocess(*PLUGIN, "--start-methods=all", "-v")
    result.assert_outcomes(passed=4)
    for method in ("spawn", "forkserver", "fork"):
        result.stdout.fnmatch_lines([f"*test_children_see_the_method[[]{method}[]] PASSED*"])
    result.stdout.fnmatch_lines(["*::test_once PASSED*"])


def test_without_the_option_mp_start_method_decides(pytester, monkeypatch):
    pytester.makepyfile(test_m=UNIT_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n  start_method_independent: once\n")
    monkeypatch.setenv("MP_START_METHOD", "fork")
    result = pytester.runpytest_subprocess(*PLUGIN, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*::test_children_see_the_method PASSED*"])


def test_a_misspelt_method_is_a_usage_error(pytester):
    pytester.makepyfile(test_m=UNIT_TESTS)
    result = pytester.runpytest_subprocess(*PLUGIN, "--start-methods=spawn,frok")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--start-methods='spawn,frok': choose from*"])


def test_each_notebook_kernel_starts_under_each_method(pytester):
    cell = nbformat.v4.new_code_cell(
        "from helpers import context\nprint(context().get_start_method())", execution_count=1,
        outputs=[nbformat.v4.new_output("stream", name="stdout", text="fork\n")])
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, pytester.path / "m.ipynb")
    result = pytester.runpytest_subprocess(*PLUGIN, "--nbval", "--nbval-current-env",
                                           "--start-methods=spawn,fork", "m.ipynb")
    # the committed output says fork: only the kernel started under fork matches
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED m.ipynb::spawn::Cell 0*"])
