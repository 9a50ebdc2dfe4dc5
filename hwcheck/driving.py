"""The checker's side of running student code: the job in progress (:class:`Job`),
a driver child (:func:`run_in_driver`) and the processes the checker saw below it
(:class:`hwcheck.watching.Watcher`).

A driver is a child process (:func:`hwcheck.child.drive`, the student's uid) that
imports the student's module, calls the student's function the way the question
says (``run_pipeline``, ``run_bank``, ``deposit``...) and sends one message back:
``{"result": {...}}``, ``{"error": words}`` (the student's code raised) or
``{"timed_out": words}`` (its timer fired first; the words say where the student's
code was waiting). The message is loaded as plain data (:mod:`hwcheck.plaindata`),
and it can only make the verdict worse: a driver's problems are added; what passes
is decided from what the checker saw itself (its own queues, its own manager, the
processes it watched, the bytes its own sockets received).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from courselib.procs import kill_started
from hwcheck import child, plaindata
from hwcheck.watching import Watcher

# The driver's timer fires HINT_MARGIN s before the checker's deadline, so its words
# (where the student's code was waiting) arrive in time; the checker waits for them
# up to HINT_WAIT s after its deadline (a busy machine may be slow to send them).
HINT_MARGIN = 0.5
HINT_WAIT = 2.0


@dataclass
class Job:
    """What the checker knows about the task in progress (read by the runner's watchdog)."""

    ctx: object  # the multiprocessing context of the check's start method
    student: child.Student
    timeout: float
    started: float = field(default_factory=time.monotonic)
    stage: str = "starting"
    facts: dict = field(default_factory=dict)
    timeout_hint: str = ""
    processes: list = field(default_factory=list)  # the children the checker started itself
    said: list = field(default_factory=list)  # a driver's words, once it timed out or raised

    @property
    def method(self) -> str:
        return self.ctx.get_start_method()

    @property
    def deadline(self) -> float:
        return self.started + self.timeout

    def stuck_at(self, thread_id: int) -> str:
        return ""  # no student code runs in the checker


@dataclass
class Driven:
    """What the checker saw of one driver run."""

    result: dict | None = None  # the driver's result, when the student's function returned
    problems: list[str] = field(default_factory=list)  # the checker's words for what went wrong
    timed_out: bool = False
    pid: int = 0
    seen: set[int] = field(default_factory=set)  # pids seen below the driver
    together: set = field(default_factory=set)  # pairs of them seen running at once
    leftovers: list[str] = field(default_factory=list)  # running when the result came
    facts: dict = field(default_factory=dict)


def run_in_driver(job: Job, driver: str, params: dict, what: str,
                  deadline: float | None = None) -> Driven:
    """Run the course's ``driver`` on the student's module in a child; wait for its
    message until ``deadline`` (default: the job's). ``what`` names the student's
    function in the words ("your run_pipeline")."""
    timeout = job.timeout if deadline is None else round(deadline - time.monotonic(), 1)
    deadline = job.deadline if deadline is None else deadline
    reader, writer = job.ctx.Pipe(duplex=False)
    params = dict(params, timeout=timeout, method=job.method)
    proc = job.ctx.Process(target=child.drive, name="driver", daemon=False,
                           args=(job.student, driver, params, writer, deadline - HINT_MARGIN))
    proc.start()
    writer.close()
    watcher = Watcher(proc.pid)
    out = Driven(pid=proc.pid)
    message = _wait_message(proc, reader, deadline + HINT_WAIT, out, what)
    if isinstance(message, dict) and "result" in message and isinstance(message["result"], dict):
        out.result = message["result"]
        out.leftovers = [f"pid {p.pid}" for p in watcher.running()]
    elif isinstance(message, dict) and isinstance(message.get("error"), str):
        out.problems.append(message["error"])
        if isinstance(message.get("facts"), dict):
            out.facts.update(message["facts"])
    elif isinstance(message, dict) and "timed_out" in message:
        out.timed_out = True
        text = message["timed_out"]
        out.problems.append(text if isinstance(text, str) and text.startswith("Still not")
                            else f"Still not finished after {timeout:.0f} s ({what}).")
    elif message is not None and not out.problems:
        out.problems.append(f"The process that ran {what} sent a result the checker cannot "
                            "read (not a result of the course's check).")
    job.said = list(out.problems)  # for the runner's watchdog, should the kills take long
    if out.result is None and not out.problems:
        if proc.is_alive():
            out.timed_out = True
            out.problems.append(f"Still not finished after {timeout:.0f} s ({what}).")
        else:
            out.problems.append(f"The process that ran {what} ended (exit code {proc.exitcode}) "
                                "before it returned: did your code exit or crash the process?")
    # a driver that returned exits at once; one whose children still run does not
    proc.join(2.0 if out.result is not None else 0.2)
    watcher.stop()
    out.seen, out.together = set(watcher.seen), set(watcher.together)
    if proc.is_alive():
        job.facts["killed"] = job.facts.get("killed", 0) + _kill_driver(proc)
    reader.close()
    return out


def _kill_driver(proc) -> int:
    """Kill the driver and everything below it; returns how many."""
    return 1 + len(kill_started(proc, timeout=5))


def _wait_message(proc, reader, until: float, out: Driven, what: str):
    """The driver's one message, or None: it exited without one, or time ran out."""
    gone_since = None
    while time.monotonic() < until:
        try:
            message = plaindata.recv_plain(reader, min(0.2, max(0.0, until - time.monotonic())))
        except EOFError:
            return None
        except plaindata.NotPlainData as exc:
            out.problems.append(exc.words(f"The checker, reading what {what} returned,"))
            return None
        if message is not plaindata.NOTHING:
            return message
        if not proc.is_alive():  # a message may still be in the pipe: one more look
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > 0.5:
                return None
    return None


def leftover_problem(leftovers: list[str], what: str) -> list[str]:
    if not leftovers:
        return []
    return [f"When {what} returned, these processes it started were still running: "
            f"{', '.join(leftovers)}. Join every process you start (with a timeout) before "
            "returning."]
