"""The checker: the bounded process that runs one homework check.

Usage (what :func:`hwcheck.isolated.run_isolated` and the verdict command start)::

    python -I -m hwcheck --fd N SPEC_JSON

(:mod:`hwcheck.__main__`: started that way, the check's spawn children do not
re-import this module.)

It is the parent of everything the check runs and imports nothing of the student's:
the student's code runs only in its child processes, through the trampoline
(:mod:`hwcheck.child`: the student's uid when the spec names one). It makes itself
non-dumpable, runs one task of :data:`TASKS` under the requested start method with
a watchdog, and writes one JSON report (``problems`` in plain words, ``facts``) to
the file descriptor it was given, which no child holds (:mod:`hwcheck.reportfd`).
What passes is decided from what it observed itself (:mod:`hwcheck.driving`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time

from courselib.procs import kill_descendants
from hwcheck import child, hardening, hw1, hw2, hw3, reportfd, spec
from hwcheck.driving import HINT_WAIT, Job
from hwcheck.recording import timeout_problems

# every check a question of hwcheck.questions can name
TASKS = {
    "hw1_workers": hw1.task_hw1_workers,
    "hw1_pipeline": hw1.task_hw1_pipeline,
    "hw2_rules": hw2.task_hw2_rules,
    "hw2_bank": hw2.task_hw2_bank,
    **hw3.TASKS,
}
# The tasks bound their own waits by the job's deadline; the watchdog answers for a
# task that is stuck all the same, this long after it.
WATCHDOG_GRACE = HINT_WAIT + 3.0

_written = threading.Lock()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -I -m hwcheck")
    reportfd.add_arguments(parser)
    parser.add_argument("spec", help="the check, as JSON (hwcheck.spec)")
    args = parser.parse_args(argv)
    hardening.no_dumping()
    out = reportfd.writer(args)
    child.REPORT_FD = out  # a fork child closes it before it runs any student code
    request = spec.loads(args.spec)
    method, timeout = request["method"], float(request["timeout"])
    multiprocessing.set_start_method(method, force=True)
    student = child.Student(str(request["folder"]), str(request["module"]),
                            request.get("uid"), request.get("gid"))
    job = Job(multiprocessing.get_context(method), student, timeout)
    job.facts["start_method"] = method
    main_thread = threading.get_ident()

    def on_timeout():
        if not _written.acquire(blocking=False):
            return  # the task finished just in time
        # claimed before killing anything: the task, unblocked by the kills, must not
        # report the resulting EOFError/BrokenPipe as the student's mistake
        try:
            problems = job.said or timeout_problems(job, main_thread)
        except Exception as exc:  # noqa: BLE001
            problems = [f"Still not finished after {timeout:.0f} s ({exc!r})."]
        job.facts["timed_out"] = True
        job.facts["killed"] = job.facts.get("killed", 0) + len(kill_descendants())
        reportfd.write(out, {"problems": problems, "facts": job.facts})
        sys.stdout.flush()
        os._exit(3)

    watchdog = threading.Timer(timeout + WATCHDOG_GRACE, on_timeout)
    watchdog.daemon = True
    watchdog.start()
    try:
        if student.uid is not None and os.geteuid() != 0:
            raise PermissionError(f"the checker must run as root to run the student's code "
                                  f"as uid {student.uid}")
        problems = TASKS[request["task"]](job, **request["params"])
        problems = [str(p) for p in problems]
    except Exception as exc:  # noqa: BLE001 - the checker's own failure: never a pass
        problems = [f"The check could not finish: {type(exc).__name__}: {exc}"]
    if any(p.startswith("Still not finished") for p in problems):
        job.facts["timed_out"] = True
    if not _written.acquire(blocking=False):
        time.sleep(60)  # the watchdog is writing its report and will end this process
    watchdog.cancel()
    job.facts["killed"] = job.facts.get("killed", 0) + len(kill_descendants())
    reportfd.write(out, {"problems": problems, "facts": job.facts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
