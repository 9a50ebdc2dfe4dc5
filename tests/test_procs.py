import subprocess
import sys

import psutil
import pytest

from helpers.procs import kill_all, terminate_then_kill

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
