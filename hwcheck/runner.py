"""The bounded process that runs one homework check (started by
:func:`hwcheck.isolated.run_isolated`; usage: ``python -I -m hwcheck.runner SPEC REPORT``).

It loads the student's module fresh, runs one task of :data:`TASKS` on it under the
requested start method with a watchdog, turns exceptions into plain words and writes
a JSON report (:mod:`hwcheck.spec`).

Where the student's module comes from is decided in one place, :func:`load_student`;
the tasks only receive it (``state.module``).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import pickle
import sys
import threading
import time
import traceback
from pathlib import Path

from courselib.procs import kill_descendants
from hwcheck import hw1, hw2, hw3, spec
from hwcheck.recording import RecordingContext, State, end_problems, timeout_problems

# every check a question of hwcheck.questions can name
TASKS = {
    "hw1_workers": hw1.task_hw1_workers,
    "hw1_pipeline": hw1.task_hw1_pipeline,
    "hw2_rules": hw2.task_hw2_rules,
    "hw2_bank": hw2.task_hw2_bank,
    **hw3.TASKS,
}

_written = threading.Lock()


def _write(path: str, report: dict, claimed: bool = False) -> bool:
    """Write the report once: whoever (task or watchdog) claims it first."""
    if not claimed and not _written.acquire(blocking=False):
        return False
    spec.write(path, report)
    return True


def _student_frames(exc: BaseException, module: str) -> list[traceback.FrameSummary]:
    return [fs for fs in traceback.extract_tb(exc.__traceback__) if Path(fs.filename).stem == module]


def explain(exc: BaseException, module: str) -> str:
    """The student's exception in words: which function, which line, what to do."""
    frames = _student_frames(exc, module)
    where = (
        f" in `{frames[-1].name}` (line {frames[-1].lineno} of {module}.py: "
        f"`{(frames[-1].line or '').strip()}`)"
        if frames
        else ""
    )
    if isinstance(exc, NotImplementedError):
        name = frames[-1].name if frames else "a function"
        return (f"`{name}` still raises NotImplementedError: replace `# YOUR CODE HERE` and the "
                f"`raise NotImplementedError()` line in the %%writefile cell with your code, "
                "run that cell and the next one again.")
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (pickle.PicklingError, AttributeError, TypeError)) and (
        "pickle" in str(exc) or "Can't get attribute" in str(exc)
    ):
        return (f"{text}{where}. Under the spawn start method every process target and argument is "
                "pickled: a worker must be a top-level function of the module (no lambda, no "
                "function defined inside another function or in a notebook cell).")
    if type(exc).__name__ == "Empty":
        return (f"queue.Empty{where}: a get(timeout=...) waited in vain, so something that should "
                "have been put on that queue never was (an item not consumed, or a consumer that "
                "stopped or crashed).")
    return f"Your code raised {text}{where}."


def load_student(folder: str, module: str):
    """The student's module, imported fresh from ``folder``. The folder goes last on
    ``sys.path``, and stays there: spawn and forkserver children import the module by
    name through it. The course's own packages go before it, so a file named like one
    of them in the folder is not imported instead, in this process or in a child
    (which imports them again through ``sys.path``; an editable install's finder is
    asked only after every ``sys.path`` entry)."""
    for package in ("hwcheck", "courselib"):
        root = str(Path(sys.modules[package].__file__).resolve().parents[1])
        if root not in sys.path:
            sys.path.append(root)
    if folder not in sys.path:
        sys.path.append(folder)
    importlib.invalidate_caches()
    return importlib.import_module(module)


def main(spec_path: str, report_path: str) -> int:
    request = spec.read(spec_path)
    method, timeout = request["method"], float(request["timeout"])
    multiprocessing.set_start_method(method, force=True)
    ctx = RecordingContext(multiprocessing.get_context(method))
    facts = {"start_method": method}
    try:
        module = load_student(request["folder"], request["module"])
    except Exception as exc:  # noqa: BLE001 - reported
        _write(report_path, {"problems": [f"{request['module']}.py cannot be imported: "
                                          f"{type(exc).__name__}: {exc}"], "facts": facts})
        return 0
    state = State(ctx, module, timeout)
    state.facts.update(facts)
    main_thread = threading.get_ident()

    def on_timeout():
        if not _written.acquire(blocking=False):
            return  # the task finished just in time
        # claimed before killing anything: the task, unblocked by the kills, must not
        # report the resulting EOFError/BrokenPipe as the student's mistake
        try:
            problems = timeout_problems(state, main_thread)
        except Exception as exc:  # noqa: BLE001
            problems = [f"Still not finished after {timeout:.0f} s ({exc!r})."]
        state.facts["timed_out"] = True
        state.facts["killed"] = len(kill_descendants())
        _write(report_path, {"problems": problems, "facts": state.facts}, claimed=True)
        sys.stdout.flush()
        os._exit(3)

    watchdog = threading.Timer(timeout, on_timeout)
    watchdog.daemon = True
    watchdog.start()
    try:
        problems = TASKS[request["task"]](state, **request["params"])
    except BaseException as exc:  # noqa: BLE001 - the student's error, in words
        problems = [explain(exc, request["module"])]
        problems += end_problems(state)[:1] if state.ctx.processes else []
    if not _written.acquire(blocking=False):
        time.sleep(60)  # the watchdog is writing its report and will end this process
    watchdog.cancel()
    state.facts["killed"] = len(kill_descendants())
    _write(report_path, {"problems": problems, "facts": state.facts}, claimed=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
