"""The repository-wide leftover check (../conftest.py) must actually fail a
test file or notebook that leaves a process or shared-memory segment behind."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.start_method_independent

ROOT_CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text()

LEAK_PROCESS = """
import subprocess, sys
def test_leaks():
    # a new session, like a daemonised server: not killed with our process group
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                     start_new_session=True)
"""


def _run(pytester, *args):
    pytester._monkeypatch.setenv("COURSE_LEFTOVER_GRACE", "2")
    pytester.makeconftest(ROOT_CONFTEST)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=90)


def test_leftover_process_fails_the_file(pytester):
    pytester.makepyfile(test_leak=LEAK_PROCESS)
    result = _run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_leak.py left 1 process(es) running*"])


def test_clean_file_passes(pytester):
    pytester.makepyfile(test_ok="def test_ok():\n    assert True\n")
    _run(pytester).assert_outcomes(passed=1)


def test_orphan_of_a_notebook_kernel_is_caught(pytester):
    cell = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True);"
    )
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": cell,
            }
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (pytester.path / "leak.ipynb").write_text(json.dumps(nb))
    result = _run(pytester, "--nbval", "--nbval-current-env", "leak.ipynb")
    result.stdout.fnmatch_lines(["*leak.ipynb left 1 process(es) running*"])
    assert result.ret != 0


def test_leftover_shared_memory_fails_the_session(pytester):
    pytester.makepyfile(
        test_shm="""
from multiprocessing import shared_memory, resource_tracker
def test_leaks_segment():
    shm = shared_memory.SharedMemory(create=True, size=64)
    resource_tracker.unregister(shm._name, "shared_memory")  # keep it after exit
    shm.close()
    open("leaked_name", "w").write(shm.name)
"""
    )
    result = _run(pytester)
    name = (pytester.path / "leaked_name").read_text().lstrip("/")
    try:
        result.stdout.fnmatch_lines([f"*shared-memory segments or semaphores left*{name}*"])
        assert result.ret != 0
    finally:
        Path("/dev/shm", name).unlink(missing_ok=True)


def test_leftover_named_semaphore_fails_the_session(pytester):
    pytester.makepyfile(
        test_sem='''
import subprocess, sys
CHILD = """
import multiprocessing, os
from multiprocessing import resource_tracker
lock = multiprocessing.get_context("spawn").Lock()
name = lock._semlock.name
resource_tracker.unregister(name, "semaphore")  # as if the tracker had been killed too
open("leaked_name", "w").write("sem." + name.lstrip("/"))
os._exit(0)  # killed: nobody unlinks the semaphore
"""
def test_leaks_semaphore():
    subprocess.run([sys.executable, "-c", CHILD], check=True, timeout=60)
'''
    )
    result = _run(pytester)
    name = (pytester.path / "leaked_name").read_text()
    try:
        result.stdout.fnmatch_lines([f"*semaphores left*{name}*"])
        assert result.ret != 0
    finally:
        Path("/dev/shm", name).unlink(missing_ok=True)
