import os
import subprocess
import sys
import time

import psutil
import pytest

from courselib.procs import kill_all, kill_tree, marked, still_running, terminate_then_kill, tree

pytestmark = pytest.mark.start_method_independent

IGNORES_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def _start(code: str) -> tuple[subprocess.Popen, psutil.Process]:
    popen = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return popen, psutil.Process(popen.pid)


def test_kill_all_ends_processes_and_skips_gone_ones():
    popen, proc = _start("import time; time.sleep(60)")
    gone_popen, gone = _start("pass")
    gone_popen.wait(timeout=30)
    kill_all([proc, gone])
    # psutil reaps its own children and records how they ended
    assert not proc.is_running()
    assert proc.returncode == -9


def test_terminate_then_kill_kills_a_process_that_ignores_sigterm():
    popen, proc = _start(IGNORES_SIGTERM)
    assert popen.stdout.readline().strip() == "ready"
    terminate_then_kill([proc], grace=0.5)
    assert not proc.is_running()
    assert proc.returncode == -9


def test_terminate_then_kill_lets_a_polite_process_exit_on_sigterm():
    popen, proc = _start("import time; time.sleep(60)")
    terminate_then_kill([proc], grace=10)
    assert not proc.is_running()
    assert proc.returncode == -15


PARENT_OF_SLEEPER = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def test_kill_tree_kills_a_process_and_its_children():
    popen, proc = _start(PARENT_OF_SLEEPER)
    child = psutil.Process(int(popen.stdout.readline()))
    assert [p.pid for p in tree(proc.pid)] == [proc.pid, child.pid]
    killed = kill_tree(proc.pid)
    assert {p.pid for p in killed} == {proc.pid, child.pid}
    popen.wait(timeout=30)
    assert not child.is_running()
    assert tree(proc.pid) == [] and kill_tree(proc.pid) == []


def test_marked_finds_what_an_exited_parent_left_behind(monkeypatch):
    """The orphan can no longer be found through its parent, but its environment
    still carries the mark its parent was given."""
    monkeypatch.setenv("PROCS_TEST_MARK", "")  # this process has the name, not the value
    env = dict(os.environ, PROCS_TEST_MARK=f"mark-{os.getpid()}")
    code = PARENT_OF_SLEEPER.replace("time.sleep(60)\n", "") + "\n"
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    orphan = psutil.Process(int(parent.stdout.readline()))
    parent.wait(timeout=30)
    try:
        assert [p.pid for p in marked("PROCS_TEST_MARK", f"mark-{os.getpid()}")] == [orphan.pid]
    finally:
        kill_all([orphan])
    assert marked("PROCS_TEST_MARK", f"mark-{os.getpid()}") == []


def test_still_running_counts_a_zombie_as_ended_and_waits_for_the_rest():
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        quick_p, slow_p = psutil.Process(quick.pid), psutil.Process(slow.pid)
        deadline = time.monotonic() + 10
        while quick_p.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.02)  # it exits; nobody reaps it: a zombie
        assert quick_p.status() == psutil.STATUS_ZOMBIE
        start = time.monotonic()
        assert still_running([quick_p, slow_p], timeout=0.3) == [slow_p]
        assert time.monotonic() - start >= 0.3  # waited for the one still running
        slow.kill()
        slow.wait(timeout=10)
        assert still_running([quick_p, slow_p], timeout=5) == []
    finally:
        for p in (quick, slow):
            p.kill()
            p.wait(timeout=10)
