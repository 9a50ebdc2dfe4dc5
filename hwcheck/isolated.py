"""Run one check in a fresh, bounded Python process: the checker
(``python -I -m hwcheck --fd N SPEC``, :mod:`hwcheck.runner`).

Why a separate process: a student's deadlock must not freeze the notebook (or the
autograder), and every process the student started must be ended when time is up.
The checker never imports the student's module: it runs the student's code in its
children (freshly from disk, so the check sees exactly what the ``%%writefile``
cell wrote), with a watchdog, and writes a JSON report to a pipe whose write end
only it holds (:mod:`hwcheck.reportfd`). As a backstop, :func:`run_isolated` kills
the checker when it overruns, and afterwards every process the run left behind: on
every platform those carrying the run's mark in their environment, on Linux and
macOS also the checker's whole session (:mod:`courselib.procs`).

The checker starts with ``-I`` (isolated mode) where the course is installed: its
imports then come from the installed course only, never from the student's folder
or PYTHONPATH. Where PYTHONPATH is set on purpose (a test's guard, a teacher's
set-up) it is honoured, without the working directory on ``sys.path`` (``-P``).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from courselib.procs import is_mp_helper, kill_all, kill_session, kill_tree, marked, posix_sessions
from courselib.startmethod import start_method
from hwcheck import limits, reportfd, spec

# the package's __main__ (hwcheck/__main__.py): spawn children then skip re-importing it
RUNNER = "hwcheck"
# Set, with a value unique to the run, in the runner's environment: every process the
# student's code starts inherits it, so what is left behind can be found on any platform.
RUN_MARK_ENV = "HWCHECK_RUN"
COURSE_ROOT = Path(__file__).resolve().parents[1]


def run_isolated(
    task: str,
    module: str,
    params: dict | None = None,
    timeout: float = 30.0,
    method: str | None = None,
    folder: str | os.PathLike = ".",
    show_output: bool = True,
    uid: int | None = None,
    gid: int | None = None,
) -> dict:
    """Run ``task`` (a name in ``hwcheck.runner.TASKS``) on the student's ``module`` in
    ``folder``, in a new Python process under start method ``method`` (default: the
    course's), stopped after ``timeout`` seconds; the student's code runs as ``uid``/
    ``gid`` when given (the caller is root). Returns the report: ``problems`` (plain
    words, empty when all is well), ``facts`` (what was measured) and ``output`` (the
    tail of what the student's code printed; with ``show_output`` its last lines are
    added to the problems, if any)."""
    folder = Path(folder).resolve()
    request = {"task": task, "module": module, "params": params or {}, "timeout": timeout,
               "method": method or start_method(), "folder": str(folder), "uid": uid,
               "gid": gid}
    mark = uuid.uuid4().hex
    argv, env = runner_command()
    env.update(PYTHONUNBUFFERED="1", **{RUN_MARK_ENV: mark})
    channel = reportfd.Pipe()
    started = time.monotonic()
    proc = subprocess.Popen(
        [*argv, *channel.argv, spec.dumps(request)],
        cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, **_own_group(), **channel.popen,
    )
    channel.started()
    try:
        output, _ = proc.communicate(timeout=timeout + limits.BACKSTOP)
        killed = False
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)  # the checker and its children, while they can still be found
        kill_session(proc.pid)
        proc.kill()
        try:
            output, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # an escaped process still holds its output
            proc.stdout.close()
            output = b""
        killed = True
    end_run(proc.pid, mark)  # anything the student left behind
    elapsed = time.monotonic() - started
    text = output.decode("utf-8", "replace")
    report = channel.read(timeout=5)
    if report is None or not isinstance(report.get("problems"), list):
        why = (f"was killed after {elapsed:.0f} s" if killed
               else f"ended (exit code {proc.returncode}) without a report")
        report = {"problems": [f"The checker process {why}."], "facts": {}}
    report["output"] = text[-3000:]
    report.setdefault("facts", {})["wall_seconds"] = round(elapsed, 2)
    if show_output and report.get("problems") and _tail(text).strip():
        report["problems"].append("What your code printed (last lines):\n" + _tail(text))
    return report


def runner_command() -> tuple[list[str], dict]:
    """The command that starts the runner, and its environment (a copy of ours)."""
    env = dict(os.environ)
    if not env.get("PYTHONPATH") and _installed_runner():
        return [sys.executable, "-I", "-m", RUNNER], env
    # -s: no user site-packages; -P (3.11+): not the working directory (the student's
    # folder) on sys.path. The course root goes first, so this very copy runs.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(COURSE_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, "-s", *safe_path, "-m", RUNNER], env


@functools.lru_cache(maxsize=1)
def _installed_runner() -> bool:
    """Whether ``python -I`` imports this very copy of the runner (the course is
    installed, e.g. ``pip install -e .``). Asked once per process."""
    probe = "import hwcheck.runner as r; print(r.__file__)"
    try:
        done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True,
                              text=True, timeout=30, cwd=tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired):
        return False
    found = done.stdout.strip()
    return done.returncode == 0 and found != "" and \
        Path(found).resolve() == (COURSE_ROOT / "hwcheck" / "runner.py").resolve()


def _tail(text: str, lines: int = 12) -> str:
    # the resource tracker's note about semaphores of killed processes is our doing, not theirs
    keep = [ln for ln in text.strip().splitlines() if "resource_tracker" not in ln]
    return "\n".join("      " + ln for ln in keep[-lines:])


def _own_group() -> dict:
    """Popen arguments that start the runner in a group of its own: a new session on
    POSIX (so the session can be killed as a whole), a new process group on Windows
    (so an interrupt meant for the notebook does not reach it)."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    if posix_sessions():
        return {"start_new_session": True}
    return {}


def end_run(session: int, mark: str, grace: float = 3.0) -> None:
    """Kill what the run left: the processes carrying its ``mark``, and its POSIX
    ``session``. While only multiprocessing's helpers are left, give them up to
    ``grace`` seconds first: the resource tracker unlinks the semaphores of killed
    processes once the runner has gone."""
    deadline = time.monotonic() + grace
    left = marked(RUN_MARK_ENV, mark)
    while left and all(is_mp_helper(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.05)
        left = marked(RUN_MARK_ENV, mark)
    kill_all(left)
    kill_session(session)
