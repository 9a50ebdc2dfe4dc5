"""The bounded process that runs one homework check (started by
``helpers.hwcheck_run.run_isolated``; usage: python -m helpers.hwrunner SPEC REPORT).

It imports the student's module fresh, runs the task under the requested start
method with a watchdog, turns exceptions into plain words and writes a JSON report.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import pickle
import sys
import threading
import time
import traceback
from pathlib import Path

from helpers import hwcheck
from helpers.hw1tasks import hw1_timeout_problems
from helpers.hwcheck_record import RecordingContext, State, _end_problems, kill_children

_written = threading.Lock()


def _write(path: str, report: dict, claimed: bool = False) -> bool:
    """Write the report once: whoever (task or watchdog) claims it first."""
    if not claimed and not _written.acquire(blocking=False):
        return False
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(report, default=repr))
    tmp.replace(path)
    return True


def _student_frames(exc: BaseException, module: str) -> list[traceback.FrameSummary]:
    return [fs for fs in traceback.extract_tb(exc.__traceback__) if Path(fs.filename).stem == module]


def explain(exc: BaseException, module: str) -> str:
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


def main(spec_path: str, report_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    method, timeout = spec["method"], float(spec["timeout"])
    multiprocessing.set_start_method(method, force=True)
    ctx = RecordingContext(multiprocessing.get_context(method))
    sys.path.insert(0, spec["folder"])
    facts = {"start_method": method}
    try:
        module = importlib.import_module(spec["module"])
    except Exception as exc:  # noqa: BLE001 - reported
        _write(report_path, {"problems": [f"{spec['module']}.py cannot be imported: "
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
            problems = hw1_timeout_problems(state, main_thread)
        except Exception as exc:  # noqa: BLE001
            problems = [f"Still not finished after {timeout:.0f} s ({exc!r})."]
        state.facts["timed_out"] = True
        state.facts["killed"] = len(kill_children())
        _write(report_path, {"problems": problems, "facts": state.facts}, claimed=True)
        sys.stdout.flush()
        os._exit(3)

    watchdog = threading.Timer(timeout, on_timeout)
    watchdog.daemon = True
    watchdog.start()
    try:
        problems = hwcheck.TASKS[spec["task"]](state, **spec["params"])
    except BaseException as exc:  # noqa: BLE001 - the student's error, in words
        problems = [explain(exc, spec["module"])]
        problems += _end_problems(state)[:1] if state.ctx.processes else []
    if not _written.acquire(blocking=False):
        time.sleep(60)  # the watchdog is writing its report and will end this process
    watchdog.cancel()
    state.facts["killed"] = len(kill_children())
    _write(report_path, {"problems": problems, "facts": state.facts}, claimed=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
