"""Kernel side of the homework 1/2 checks: locate the student's module, say what
is wrong with it before anything runs, and run one task on it in a fresh, bounded
Python process.

Why a separate process: a student's deadlock must not freeze the notebook (or
the autograder), and every process the student started must be killed when time
is up. :func:`run_isolated` starts ``python -m helpers.hwrunner`` in its own
session; the runner imports the student's module *fresh from disk* (so the test
sees exactly what the ``%%writefile`` cell wrote), runs one task of
``helpers.hwcheck.TASKS`` and writes a JSON report. The caller kills, as a backstop,
every process the runner left behind: on Linux and macOS the runner's whole
session; everywhere (Windows too) the processes that carry the run's mark in their
environment.

Test cells use :func:`require` (raises :class:`CheckFailed`, an AssertionError,
listing the problems; in a notebook it shows only those plain words).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from courselib.procs import kill_all, kill_tree, marked
from courselib.startmethod import start_method

RUNNER = "helpers.hwrunner"
# Set, with a value unique to the run, in the runner's environment: every process the
# student's code starts inherits it, so what is left behind can be found on any platform.
RUN_MARK_ENV = "HWCHECK_RUN"
# Extra seconds the caller waits for the runner beyond the task's own timeout.
_BACKSTOP = 20.0


class CheckFailed(AssertionError):
    """A check found problems; the message lists them in plain words.

    In IPython (Jupyter, nbgrader) the error shows only that message: the checker's
    own frames would tell a student nothing about their code. The cell still fails
    (its output is an error), so nbgrader gives no points for it."""

    def _render_traceback_(self) -> list[str]:
        return f"{type(self).__name__}: {self}".splitlines()


def require(report: dict) -> dict:
    """Raise :class:`CheckFailed` unless ``report`` has no problems; return it."""
    problems = report.get("problems", [])
    if problems:
        lines = [f"{len(problems)} problem(s) found:"]
        lines += [f"  - {p}" for p in problems]
        raise CheckFailed("\n".join(lines))
    return report


def diagnose_module(module: str, names: list[str], folder: str | os.PathLike = ".") -> list[str]:
    """Problems a student can fix before anything runs: the module file is missing,
    does not import, or a required function is still the stub while a function of
    that name was defined in a notebook cell (which spawn children cannot use)."""
    path = Path(folder) / f"{module}.py"
    main = sys.modules.get("__main__")
    in_cells = [n for n in names if getattr(getattr(main, n, None), "__module__", "") == "__main__"]
    if not path.exists() and in_cells:
        return [
            f"{path.name} does not exist, but {', '.join(in_cells)} are defined in the notebook "
            "itself: the answer cell must start with the line `%%writefile "
            f"{path.name}`. Under the spawn start method a child process cannot import a "
            "function defined in a notebook cell (AttributeError: Can't get attribute ... on "
            "<module '__main__'>), so your functions must live in that file."
        ]
    if not path.exists():
        return [
            f"{path.name} does not exist. Run the cell that starts with `%%writefile {path.name}` "
            "(it writes your functions to that file)."
        ]
    sys.path.insert(0, str(Path(folder).resolve()))
    try:
        mod = importlib.import_module(module)
        mod = importlib.reload(mod)
    except Exception as exc:  # noqa: BLE001 - reported to the student
        return [f"{path.name} cannot be imported: {type(exc).__name__}: {exc}"]
    finally:
        sys.path.pop(0)
    problems = []
    for name in names:
        fn = getattr(mod, name, None)
        if fn is None:
            problems.append(f"{path.name} has no function `{name}` (keep the names given).")
            continue
        in_cell = getattr(main, name, None)
        if _is_stub(fn) and callable(in_cell) and getattr(in_cell, "__module__", "") == "__main__":
            problems.append(
                f"`{name}` is defined in a notebook cell, but {path.name} still has the stub. "
                "Under the spawn start method a child process cannot import a function defined "
                "in a notebook (it fails with AttributeError: Can't get attribute "
                f"'{name}' on <module '__main__'>). Write it in the %%writefile cell instead."
            )
    return problems


def _is_stub(fn) -> bool:
    try:
        return "raise NotImplementedError" in inspect.getsource(fn)
    except (OSError, TypeError):
        return False


def run_isolated(
    task: str,
    module: str,
    params: dict | None = None,
    timeout: float = 30.0,
    method: str | None = None,
    folder: str | os.PathLike = ".",
) -> dict:
    """Run ``task`` (a name in ``helpers.hwcheck.TASKS``) on the student's ``module`` in a new
    Python process under start method ``method`` (default: the course's), stopped
    after ``timeout`` seconds. Returns the report: ``problems`` (plain words, empty
    when all is well), ``facts`` (what was measured) and ``output`` (the tail of
    what the student's code printed)."""
    folder = Path(folder).resolve()
    spec = {
        "task": task,
        "module": module,
        "params": params or {},
        "timeout": timeout,
        "method": method or start_method(),
        "folder": str(folder),
    }
    with tempfile.TemporaryDirectory(prefix="hwcheck-") as tmp:
        spec_path, report_path = Path(tmp, "spec.json"), Path(tmp, "report.json")
        spec_path.write_text(json.dumps(spec))
        mark = uuid.uuid4().hex
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{RUN_MARK_ENV: mark})
        env["PYTHONPATH"] = os.pathsep.join(
            [str(folder), str(Path(__file__).resolve().parents[1])]
            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", RUNNER, str(spec_path), str(report_path)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **_own_group(),
        )
        try:
            output, _ = proc.communicate(timeout=timeout + _BACKSTOP)
            killed = False
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)  # the runner and its children, while they can still be found
            _killpg(proc.pid)
            proc.kill()
            output, _ = proc.communicate(timeout=10)
            killed = True
        _end_session(proc.pid, mark)  # anything the student left behind
        elapsed = time.monotonic() - started
        text = output.decode("utf-8", "replace")
        if report_path.exists():
            report = json.loads(report_path.read_text())
        else:
            why = (
                f"was killed after {elapsed:.0f} s"
                if killed
                else f"ended (exit code {proc.returncode}) without a report"
            )
            report = {"problems": [f"The checker process {why}."], "facts": {}}
    report["output"] = text[-3000:]
    report.setdefault("facts", {})["wall_seconds"] = round(elapsed, 2)
    if report.get("problems") and _tail(text).strip():
        report["problems"].append("What your code printed (last lines):\n" + _tail(text))
    return report


def _tail(text: str, lines: int = 12) -> str:
    # the resource tracker's note about semaphores of killed processes is our doing, not theirs
    keep = [ln for ln in text.strip().splitlines() if "resource_tracker" not in ln]
    return "\n".join("      " + ln for ln in keep[-lines:])


_MP_HELPERS = ("resource_tracker", "forkserver")


def _posix_sessions() -> bool:
    """Whether this platform can kill a whole session at once (Linux, macOS; not Windows)."""
    return all(hasattr(os, f) for f in ("killpg", "getpgid", "setsid")) and hasattr(signal, "SIGKILL")


def _own_group() -> dict:
    """Popen arguments that start the runner in a group of its own: a new session on
    POSIX (so the session can be killed as a whole), a new process group on Windows
    (so an interrupt meant for the notebook does not reach it)."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    if _posix_sessions():
        return {"start_new_session": True}
    return {}


def _session_members(pgid: int, mark: str | None = None) -> list:
    """The processes still running from the run: those carrying its mark in their
    environment and, on POSIX, the members of its session."""
    import psutil

    members = marked(RUN_MARK_ENV, mark) if mark else []
    if not _posix_sessions():
        return members
    seen = {p.pid for p in members}
    for p in psutil.process_iter(["pid"]):
        try:
            if p.pid not in seen and os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                members.append(p)
        except (OSError, psutil.Error):
            pass
    return members


def _end_session(pgid: int, mark: str | None = None, grace: float = 3.0) -> None:
    """Give multiprocessing's resource tracker a moment to unlink the semaphores of
    killed processes (it does so when the runner has gone), then kill what is left."""
    deadline = time.monotonic() + grace
    members = _session_members(pgid, mark)
    while members and time.monotonic() < deadline:
        try:
            helpers_only = all(any(h in " ".join(m.cmdline()) for h in _MP_HELPERS)
                               for m in members)
        except Exception:  # noqa: BLE001 - gone meanwhile
            helpers_only = True
        if not helpers_only:
            break
        time.sleep(0.05)
        members = _session_members(pgid, mark)
    if members:
        kill_all(members)
    _killpg(pgid)


def _killpg(pgid: int) -> None:
    """Kill the session (POSIX only; elsewhere, or where it is gone, nothing to do)."""
    if not _posix_sessions():
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# Reports of runs that timed out, by (module source, task, kind): a deadlock found by
# the public test is not waited for a second time by the hidden test of the same part.
_TIMED_OUT: dict[tuple, dict] = {}


def run(task: str, module: str, names: list[str], params: dict | None = None,
        timeout: float = 30.0, method: str | None = None) -> dict:
    """Module diagnosis first, then the bounded run; returns the report."""
    problems = diagnose_module(module, names)
    if problems:
        return {"problems": problems, "facts": {}}
    params = params or {}
    timeout = timeout * time_scale()
    source = Path(f"{module}.py").read_bytes()
    method = method or start_method()
    exact = (source, task, json.dumps(params, sort_keys=True), timeout, method)
    part = (source, task, bool(params.get("joinable")), method)
    if exact in _DONE:  # the same code, the same check: e.g. show() then check()
        return _copy(_DONE[exact])
    if part in _TIMED_OUT:
        report = _copy(_TIMED_OUT[part])
        report["problems"].insert(0, "(Not run again: the same code already ran out of time "
                                     "in an earlier check of this part.)")
        return report
    report = run_isolated(task, module, params, timeout=timeout, method=method)
    _DONE[exact] = _copy(report)
    if report.get("facts", {}).get("timed_out"):
        _TIMED_OUT[part] = _copy(report)
    return report


_DONE: dict[tuple, dict] = {}
TIME_SCALE_ENV = "HWCHECK_TIME_SCALE"


def time_scale() -> float:
    """Factor applied to every check's time limit: a teacher grading on a slow or
    busy machine sets HWCHECK_TIME_SCALE=2; the test suite shortens the wait for
    its deadlocking sample with 0.3."""
    try:
        return max(0.05, float(os.environ.get(TIME_SCALE_ENV, "1")))
    except ValueError:
        return 1.0


def _copy(report: dict) -> dict:
    return json.loads(json.dumps(report))


def check(task: str, module: str, names: list[str], params: dict | None = None,
          timeout: float = 30.0, method: str | None = None) -> None:
    """What a test cell calls: raises CheckFailed listing the problems, if any.
    Returns None, so the cell shows no output (nbgrader would try to read a
    returned value as partial credit)."""
    require(run(task, module, names, params, timeout, method))


def require_answered(module: str, names: list[str]) -> None:
    """Fail fast, in the kernel, while the answer is missing or still the stub.
    The visible line of each hidden-test cell, so that a blank notebook fails them."""
    problems = diagnose_module(module, names)
    if not problems:
        mod = sys.modules[module]
        stubs = [n for n in names if _is_stub(getattr(mod, n))]
        if stubs:
            problems.append(f"{', '.join(stubs)} in {module}.py still raise NotImplementedError: "
                            "write your code in the %%writefile cell and run it.")
    require({"problems": problems})
