"""Grading support for homework 1 and 2: run a student's module in a fresh,
bounded Python process and describe in plain words what went wrong.

Why a separate process: a student's deadlock must not freeze the notebook (or
the autograder), and every process the student started must be killed when time
is up. :func:`run_isolated` starts ``python -m helpers.hwrunner`` in its own
session; the runner imports the student's module *fresh from disk* (so the test
sees exactly what the ``%%writefile`` cell wrote), runs one task from this file,
and writes a JSON report. A watchdog thread in the runner stops the task after
``timeout`` seconds, says where it was stuck and which processes were still
running, and kills them. The caller kills, as a backstop, every process the runner
left behind: on Linux and macOS the runner's whole session; everywhere (Windows
too) the processes that carry the run's mark in their environment.

Test cells use :func:`require` (raises :class:`CheckFailed`, an AssertionError,
listing the problems; in a notebook it shows only those plain words).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from multiprocessing.managers import AcquirerProxy, BaseManager, ListProxy, ValueProxy
from pathlib import Path

from helpers.procs import kill_all, kill_tree, marked
from helpers.startmethod import start_method

RUNNER = "helpers.hwrunner"
# Set, with a value unique to the run, in the runner's environment: every process the
# student's code starts inherits it, so what is left behind can be found on any platform.
RUN_MARK_ENV = "HWCHECK_RUN"
# Extra seconds the caller waits for the runner beyond the task's own timeout.
_BACKSTOP = 20.0


# --------------------------------------------------------------------------
# Kernel side: locate the student's module and run a task on it, bounded.
# --------------------------------------------------------------------------


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
    """Run ``task`` (a function of this file) on the student's ``module`` in a new
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


# --------------------------------------------------------------------------
# Runner side: the context the student's code receives, and the watchdog.
# --------------------------------------------------------------------------


class RecordingContext:
    """A multiprocessing context that remembers every Process created through it,
    so a check can tell which processes the student started and whether they ended."""

    def __init__(self, ctx):
        self._ctx = ctx
        self.processes = []

    def Process(self, *args, **kwargs):  # noqa: N802 - mirrors the multiprocessing API
        proc = self._ctx.Process(*args, **kwargs)
        # start() deletes _target and _args from the parent's object: keep them
        target = kwargs.get("target", args[1] if len(args) > 1 else None)
        proc._hw_role = getattr(target, "__name__", "process")
        proc._hw_args = tuple(kwargs.get("args", args[3] if len(args) > 3 else ()))
        proc._hw_peers_at_start = None
        self.processes.append(proc)
        real_start = proc.start

        def start():
            # how many processes of the same role were running when this one started
            del proc.start  # the instance attribute must go before spawn pickles proc
            proc._hw_peers_at_start = sum(
                1 for p in self.processes
                if p is not proc and role(p) == role(proc) and p.pid is not None and p.is_alive()
            )
            real_start()

        proc.start = start
        return proc

    def __getattr__(self, name):
        return getattr(self._ctx, name)


def role(proc) -> str:
    return getattr(proc, "_hw_role", "process")


def describe(procs) -> str:
    return ", ".join(f"{role(p)} (pid {p.pid})" for p in procs) or "none"


class State:
    """What the runner knows about the task in progress (read by the watchdog)."""

    def __init__(self, ctx: RecordingContext, module, timeout: float):
        self.ctx = ctx
        self.module = module
        self.timeout = timeout
        self.stage = "starting"
        self.problems: list[str] = []
        self.facts: dict = {}
        self.sentinel_puts: list[dict] = []  # one entry per SENTINEL the parent put
        self.timeout_hint = ""

    def stuck_at(self, thread_id: int) -> str:
        """The student's source line the main thread is blocked on."""
        frame = sys._current_frames().get(thread_id)
        where = ""
        for fs in traceback.extract_stack(frame) if frame else []:
            if Path(fs.filename).stem == self.module.__name__:
                where = f"line {fs.lineno} of {Path(fs.filename).name}: `{(fs.line or '').strip()}`"
        return where


def install_sentinel_counter(state: State, sentinel) -> None:
    """Count the SENTINELs the parent process puts on any queue, noting whether a
    producer was still running at that moment (a sentinel sent too early)."""
    from multiprocessing import queues

    parent = os.getpid()

    def counting(original):
        def put(self, obj, block=True, timeout=None):
            if os.getpid() == parent and obj is sentinel:
                running = [p for p in state.ctx.processes
                           if "producer" in role(p) and p.is_alive()]
                state.sentinel_puts.append({"producers_running": len(running)})
            return original(self, obj, block, timeout)
        return put

    queues.Queue.put = counting(queues.Queue.put)
    queues.JoinableQueue.put = counting(queues.JoinableQueue.put)


def kill_children() -> list[str]:
    import psutil

    me = psutil.Process()
    victims = []
    for child in me.children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
            if "resource_tracker" in cmd or "forkserver" in cmd:
                continue
            victims.append(child)
        except psutil.Error:
            pass
    kill_all(victims)
    return [str(v.pid) for v in victims]


# --------------------------------------------------------------------------
# Homework 1: producer–consumer
# --------------------------------------------------------------------------


class SlowItems(list):
    """A list whose iteration pauses ``gap`` seconds halfway: the producers go quiet
    for a moment, so a consumer that stops when the queue looks empty is caught."""

    def __init__(self, items, gap: float = 0.0):
        super().__init__(items)
        self.gap = gap

    def __iter__(self):
        half = len(self) // 2
        for i, item in enumerate(list.__iter__(self)):
            if i == half and self.gap:
                time.sleep(self.gap)
            yield item

    def __reduce__(self):
        # list.__iter__, not ours: pickling (to start a producer under spawn) must not
        # pause; the lull belongs in the producer process
        return (SlowItems, (list(list.__iter__(self)), self.gap))


def make_batches(producers: int, per_producer: int, gap: float = 0.0) -> list[SlowItems]:
    """Distinct integers, one batch per producer."""
    return [SlowItems(range(i * 100_000, i * 100_000 + per_producer), gap) for i in range(producers)]


def _pairs_problems(pairs, batches, state: State, consumer_name="consumer") -> list[str]:
    """Compare what the consumers reported with what was produced."""
    expected = [item for batch in batches for item in list.__iter__(batch)]
    problems = []
    try:
        pairs = [(item, pid) for item, pid in pairs]
    except (TypeError, ValueError):
        return [
            f"Expected a list of (item, pid) pairs, got {type(pairs).__name__}: {str(pairs)[:120]}. "
            f"Each {consumer_name} must put (item, os.getpid()) on the results queue."
        ]
    got = [item for item, _ in pairs]
    missing = sorted(set(expected) - set(got))
    seen, dupes = set(), set()
    for item in got:
        (dupes if item in seen else seen).add(item)
    extra = sorted(set(got) - set(expected), key=repr)
    state.facts.update(items_expected=len(expected), items_reported=len(got))
    if missing:
        problems.append(
            f"{len(missing)} of {len(expected)} items were never consumed (e.g. {missing[:3]})."
        )
    if dupes:
        problems.append(
            f"{len(dupes)} items were consumed more than once (e.g. {sorted(dupes)[:3]}): "
            "each item must be put once by its producer and taken once by one consumer."
        )
    if extra:
        problems.append(
            f"Consumers reported things no producer made (e.g. {extra[:3]}); "
            "don't report the SENTINEL as an item."
        )
    pids = {pid for _, pid in pairs}
    if os.getpid() in pids:
        problems.append(
            "Some items were consumed by the parent process itself, not by consumer processes."
        )
    child_pids = {p.pid for p in state.ctx.processes}
    if state.ctx.processes and pids - child_pids - {os.getpid()}:
        problems.append("Items were reported with a pid that is not one of the consumer processes.")
    state.facts["consumer_pids_seen"] = len(pids)
    return problems


def _end_problems(state: State) -> list[str]:
    """Every process the student's code started must have ended, cleanly."""
    problems = []
    alive = [p for p in state.ctx.processes if p.is_alive()]
    if alive:
        problems.append(
            f"When your function returned, these processes were still running: {describe(alive)}. "
            "Join every process you start (with a timeout) before returning."
        )
    crashed = [p for p in state.ctx.processes if p.exitcode not in (0, None)]
    if crashed:
        problems.append(
            "These processes crashed: "
            + ", ".join(f"{role(p)} (exit code {p.exitcode})" for p in crashed)
            + ". The error they printed is below."
        )
    state.facts["processes_started"] = len(state.ctx.processes)
    return problems


def _drain(q, limit: float = 2.0) -> list:
    out, deadline = [], time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            out.append(q.get(timeout=0.2))
        except queue.Empty:
            break
        except Exception:  # noqa: BLE001 - a broken queue is reported by the caller
            break
    return out


def task_hw1_workers(state: State, producers=3, per_producer=200, consumers=2, gap=1.5,
                     joinable=False):
    """Reference orchestration around the student's producer and consumer (or
    joinable_consumer): catches polling consumers and missing task_done()."""
    mod, ctx = state.module, state.ctx
    sentinel = getattr(mod, "SENTINEL", None)
    consumer_fn = mod.joinable_consumer if joinable else mod.consumer
    producer_fn = mod.joinable_producer if joinable else mod.producer
    name = "joinable_consumer" if joinable else "consumer"
    q = ctx.JoinableQueue() if joinable else ctx.Queue()
    results = ctx.Queue()
    batches = make_batches(producers, per_producer, gap)
    total = producers * per_producer
    cons = [ctx.Process(target=consumer_fn, args=(q, results), daemon=joinable,
                        name=f"consumer-{i}") for i in range(consumers)]
    prods = [ctx.Process(target=producer_fn, args=(q, b), name=f"producer-{i}")
             for i, b in enumerate(batches)]
    state.stage = f"waiting for your {name}s to take every item"
    state.timeout_hint = (
        f"Your {name}s did not report all {total} items in time. Does {name} put "
        "(item, os.getpid()) on `results` for every item, and does producer put every item?"
    )
    for p in cons + prods:
        p.start()
    pairs = []
    deadline = time.monotonic() + state.timeout
    while len(pairs) < total and time.monotonic() < deadline:
        try:
            pairs.append(results.get(timeout=0.25))
        except queue.Empty:
            if not any(c.is_alive() for c in cons):
                break
            if not any(p.is_alive() for p in prods) and len(pairs) < total:
                # producers are done; give stragglers a moment, then stop waiting
                more = _drain(results, 2.0)
                pairs.extend(more)
                if not more:
                    break
    problems = []
    quitters = [c for c in cons if not c.is_alive()]
    if quitters:
        problems.append(
            f"{len(quitters)} {name}(s) ended before any SENTINEL was sent, while producers "
            "were still working. A consumer that stops when the queue looks empty "
            "(q.empty(), get_nowait() or get(timeout=...)) quits too early: an empty queue only "
            "means 'nothing yet'. Block in q.get() and stop only when you take SENTINEL."
        )
    for p in prods:
        p.join(timeout=10)
    if joinable:
        state.stage = "waiting for q.join() (every item and SENTINEL must be task_done())"
        state.timeout_hint = (
            "q.join() never returned: joinable_consumer must call q.task_done() once for every "
            "q.get(), including the one that returns SENTINEL."
        )
    for _ in cons:
        q.put(sentinel)
    if joinable and not problems:
        joiner = threading.Thread(target=q.join, daemon=True)
        joiner.start()
        joiner.join(timeout=5)
        if joiner.is_alive():
            problems.append(state.timeout_hint)
            state.facts["joinable_join_returned"] = False
        else:
            state.facts["joinable_join_returned"] = True
    for c in cons:
        c.join(timeout=10)
    pairs.extend(_drain(results, 0.5))
    stuck = [c for c in cons if c.is_alive()]
    if stuck:
        problems.append(
            f"{len(stuck)} {name}(s) did not end after receiving SENTINEL. Stop the loop "
            f"(return) when you take SENTINEL (`if item is SENTINEL:`)."
        )
    problems += _pairs_problems(pairs, batches, state, name)
    crashed = [p for p in cons + prods if p.exitcode not in (0, None)]
    if crashed:
        problems.append(
            "These processes crashed: "
            + ", ".join(f"{role(p)} (exit code {p.exitcode})" for p in crashed)
            + ". The error they printed is below."
        )
    return problems


def task_hw1_pipeline(state: State, producers=3, per_producer=200, consumers=2, gap=1.0,
                      joinable=False):
    """The student's own orchestration: run_pipeline (or run_joinable)."""
    mod, ctx = state.module, state.ctx
    fn_name = "run_joinable" if joinable else "run_pipeline"
    install_sentinel_counter(state, getattr(mod, "SENTINEL", None))
    batches = make_batches(producers, per_producer, gap)
    state.stage = f"inside your {fn_name}"
    state.timeout_hint = "hw1_pipeline"
    pairs = getattr(mod, fn_name)(ctx, batches, consumers)
    problems = _pairs_problems(pairs, batches, state)
    early = [s for s in state.sentinel_puts if s["producers_running"]]
    if early:
        problems.append(
            f"{len(early)} SENTINEL(s) were put while a producer was still running. Join all "
            "producers first, then put one SENTINEL per consumer; otherwise a consumer can stop "
            "before the last items arrive."
        )
    ncons = sum(1 for p in ctx.processes if "consumer" in role(p))
    nprod = sum(1 for p in ctx.processes if "producer" in role(p))
    state.facts.update(consumers_started=ncons, producers_started=nprod,
                       sentinels_put=len(state.sentinel_puts))
    if ctx.processes and (ncons != consumers or nprod != producers):
        problems.append(
            f"Expected {producers} producer and {consumers} consumer processes "
            f"(one producer per batch), your {fn_name} started {nprod} and {ncons}."
        )
    if joinable:
        not_daemon = [p for p in ctx.processes if "consumer" in role(p) and not p.daemon]
        if not_daemon:
            problems.append(
                f"{len(not_daemon)} consumer(s) were not daemon processes: start them with "
                "daemon=True (a safety net: daemon children are killed when the parent exits)."
            )
        from multiprocessing.queues import JoinableQueue

        if not any(isinstance(a, JoinableQueue)
                   for p in ctx.processes for a in getattr(p, "_hw_args", ())):
            problems.append("run_joinable should hand the consumers a ctx.JoinableQueue().")
    problems += _end_problems(state)
    return problems


def hw1_timeout_problems(state: State, main_thread: int) -> list[str]:
    """What the watchdog says when a hw1 task ran out of time."""
    ctx = state.ctx
    alive = [p for p in ctx.processes if p.is_alive()]
    where = state.stuck_at(main_thread)
    msg = [f"Still not finished after {state.timeout:.0f} s ({state.stage})."]
    if where:
        msg.append(f"Your code was waiting at {where}.")
    if alive:
        msg.append(f"Processes still running: {describe(alive)}.")
    if state.timeout_hint == "hw1_pipeline":
        if any(s["producers_running"] for s in state.sentinel_puts):
            msg.append(
                "A SENTINEL was put while a producer was still running, so a consumer stopped "
                "before the last items arrived. Join all producers first, then put one SENTINEL "
                "per consumer."
            )
        ncons = sum(1 for p in ctx.processes if "consumer" in role(p))
        nsent = len(state.sentinel_puts)
        if any("consumer" in role(p) for p in alive):
            if nsent < ncons:
                msg.append(
                    f"Likely mistake: you put {nsent} SENTINEL(s) for {ncons} consumers, so a "
                    "consumer waits forever in q.get(). Put one SENTINEL per consumer, after "
                    "joining all producers."
                )
            else:
                msg.append(
                    "Likely mistake: joining a consumer before reading all its results. A process "
                    "that put items on a queue cannot end until they are read: take all results "
                    "first, then join the consumers."
                )
        elif "get" in where:
            msg.append(
                "Likely mistake: waiting for more results than the consumers produce (some items "
                "never consumed), or a wait without a timeout."
            )
    elif state.timeout_hint:
        msg.append(state.timeout_hint)
    return [" ".join(msg)]


# --------------------------------------------------------------------------
# Homework 2: bank account shared through a Manager
# --------------------------------------------------------------------------


class _Ledger:
    """Server-side state shared by the checked lock, balance and log."""

    def __init__(self, opening: int):
        self.balance = opening
        self.owner = None  # ident of the manager server thread holding the lock
        self.generation = 0  # bumped at every acquire
        self.last_read: dict[int, int] = {}
        self.violations: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def flag(self, kind: str, example: str) -> None:
        self.violations[kind] = self.violations.get(kind, 0) + 1
        self.examples.setdefault(kind, example)


class CheckedLock:
    """A lock that knows which client holds it. The manager serves each client
    connection in its own server thread, so the server thread's ident names the client."""

    def __init__(self, ledger: _Ledger):
        self._lock = threading.Lock()
        self._ledger = ledger

    def acquire(self, blocking=True, timeout=-1):
        got = self._lock.acquire(blocking, timeout)
        if got:
            self._ledger.owner = threading.get_ident()
            self._ledger.generation += 1
        return got

    def release(self):
        self._ledger.owner = None
        self._lock.release()


class CheckedBalance:
    """The balance (a manager Value look-alike). Flags every write not made by
    the lock's holder, or whose value was read before the lock was taken."""

    def __init__(self, ledger: _Ledger):
        self._ledger = ledger

    def get(self):
        led = self._ledger
        me = threading.get_ident()
        if led.owner == me:
            led.last_read[me] = led.generation
        else:
            led.last_read.pop(me, None)
        return led.balance

    def set(self, value):
        led = self._ledger
        me = threading.get_ident()
        if led.owner != me:
            led.flag("unlocked write", f"balance set to {value!r} without holding the lock")
        elif led.last_read.get(me) != led.generation:
            led.flag("stale write", f"balance set to {value!r} from a value read before locking")
        if isinstance(value, (int, float)) and value < 0:
            led.flag("negative", f"balance set to {value!r}")
        led.balance = value


class CheckedLog(list):
    """The transaction log; appending without holding the lock is flagged."""

    def __init__(self, ledger: _Ledger):
        super().__init__()
        self._ledger = ledger

    def _check(self, what):
        if self._ledger.owner != threading.get_ident():
            self._ledger.flag("unlocked log", f"log {what} without holding the lock")

    def append(self, item):
        self._check("append")
        super().append(item)

    def extend(self, items):
        self._check("extend")
        super().extend(items)

    def insert(self, i, item):
        self._check("insert")
        super().insert(i, item)

    def snapshot(self):
        return list(self)


class Bank:
    def __init__(self, opening: int):
        self._ledger = _Ledger(opening)
        self._lock = CheckedLock(self._ledger)
        self._balance = CheckedBalance(self._ledger)
        self._log = CheckedLog(self._ledger)

    def lock(self):
        return self._lock

    def balance(self):
        return self._balance

    def log(self):
        return self._log

    def report(self):
        led = self._ledger
        return {"violations": dict(led.violations), "examples": dict(led.examples),
                "balance": led.balance, "log": list(self._log)}


class LogProxy(ListProxy):
    _exposed_ = ListProxy._exposed_ + ("snapshot",)


class CheckedManager(BaseManager):
    pass


CheckedManager.register("Bank", Bank, method_to_typeid={
    "lock": "CheckedLock", "balance": "CheckedBalance", "log": "CheckedLog"})
CheckedManager.register("CheckedLock", proxytype=AcquirerProxy, create_method=False)
CheckedManager.register("CheckedBalance", proxytype=ValueProxy, create_method=False)
CheckedManager.register("CheckedLog", proxytype=LogProxy, create_method=False)


def make_plans(clients: int, ops: int, seed: int = 1) -> list[list[tuple[str, int]]]:
    """Each client's operations: slightly more withdrawn than deposited, so the
    balance hovers near zero and many withdrawals must be refused."""
    rng = random.Random(seed)
    return [
        [("deposit", rng.randint(1, 40)) if rng.random() < 0.5 else ("withdraw", rng.randint(1, 50))
         for _ in range(ops)]
        for _ in range(clients)
    ]


VIOLATION_WORDS = {
    "unlocked write": "the balance was changed by a client that did not hold account['lock'] "
                      "(missing lock: two clients can read the same balance and one update is lost)",
    "stale write": "the balance was written inside the lock but computed from a value read before "
                   "the lock was taken (misplaced lock: read AND write inside one `with lock:`)",
    "unlocked log": "the log was appended outside the lock, so its order need not match the order "
                    "in which the balance changed",
    "negative": "the balance went below zero",
}


def replay_problems(log, opening, balance, plans) -> list[str]:
    """The log must tell the account's story: each entry's balance_after follows
    from the previous one, refusals are exactly the overdrafts, and every client's
    operations appear once, in order."""
    problems, bal = [], opening
    per_client: dict = {}
    for n, entry in enumerate(log):
        if not isinstance(entry, (tuple, list)) or len(entry) != 5:
            return [f"Log entry {n} is {entry!r}; expected (client_id, kind, amount, accepted, "
                    "balance_after)."]
        per_client.setdefault(entry[0], []).append((entry[1], entry[2]))
    for n, (_client, kind, amount, accepted, after) in enumerate(log):
        if kind == "deposit":
            if not accepted:
                problems.append(f"Log entry {n}: a deposit was refused; deposits are always accepted.")
                break
            bal += amount
        elif kind == "withdraw":
            if accepted and amount > bal:
                problems.append(f"Log entry {n}: withdrew {amount} from a balance of {bal} "
                                "(an overdraft must be refused).")
                break
            if not accepted and amount <= bal:
                problems.append(f"Log entry {n}: refused to withdraw {amount} from a balance of "
                                f"{bal}; only withdrawals larger than the balance are refused.")
                break
            if accepted:
                bal -= amount
        else:
            problems.append(f"Log entry {n}: kind {kind!r} is neither 'deposit' nor 'withdraw'.")
            break
        if after != bal:
            problems.append(f"Log entry {n} says the balance became {after}, but replaying the log "
                            f"gives {bal}.")
            break
    if not problems and bal != balance:
        problems.append(f"The final balance is {balance}, but opening balance + accepted deposits "
                        f"− accepted withdrawals in the log gives {bal}.")
    if plans is not None:
        expected = {i: list(map(tuple, p)) for i, p in enumerate(plans)}
        got = {k: v for k, v in per_client.items()}
        if got != expected:
            n_exp, n_got = sum(map(len, expected.values())), len(log)
            problems.append(
                f"The log should hold every client's operations exactly once and in that client's "
                f"order ({n_exp} entries, client_id = the client's index); it holds {n_got} "
                "entries that do not match."
            )
    return problems


def task_hw2_rules(state: State, opening=50, random_ops=0, seed=3):
    """deposit/withdraw in one process, on the student's own make_account: fixed
    cases (an exact-balance withdrawal is accepted), then ``random_ops`` random ones."""
    mod = state.module
    problems = []
    with state.ctx.Manager() as manager:
        if random_ops:
            account = mod.make_account(manager, opening)
            plan = make_plans(1, random_ops, seed)[0]
            for kind, amount in plan:
                getattr(mod, kind)(account, amount, 0)
            log = list(account["log"])
            state.facts.update(operations=random_ops, log_entries=len(log),
                               refused=sum(1 for e in log if len(e) == 5 and not e[3]))
            return replay_problems(log, opening, account["balance"].value, [plan])
        account = mod.make_account(manager, opening)
        steps = [("deposit", 30, True), ("withdraw", 100, False), ("withdraw", 80, True),
                 ("withdraw", 1, False), ("deposit", 5, True)]
        bal = opening
        for kind, amount, want in steps:
            got = getattr(mod, kind)(account, amount, 7)
            if want and kind == "withdraw":
                bal -= amount
            elif kind == "deposit":
                bal += amount
            now = account["balance"].value
            if got is not want:
                problems.append(f"{kind}(account, {amount}, 7) returned {got!r} with the balance at "
                                f"{now if got else bal}; expected {want} "
                                "(True when done, False when refused).")
                break
            if now != bal:
                problems.append(f"After {kind} of {amount} the balance is {now}, expected {bal}.")
                break
        log = list(account["log"])
        if not problems:
            expected = [(7, k, a, w) for k, a, w in steps]
            got = [tuple(e)[:4] if isinstance(e, (tuple, list)) else e for e in log]
            if got != expected:
                problems.append(f"The log should be {expected} (plus balance_after), it is {log}.")
            else:
                problems += replay_problems(log, opening, account["balance"].value, None)
    state.facts["log"] = log
    return problems


def task_hw2_bank(state: State, clients=8, ops=250, opening=100, seed=1, plain=False):
    """Many clients at once through the student's run_bank, on a checked account."""
    mod, ctx = state.module, state.ctx
    plans = make_plans(clients, ops, seed)
    state.timeout_hint = (
        "Likely mistake: a client waiting for a lock that is never released (use `with lock:`), "
        "or run_bank joining processes it never started."
    )
    if plain:  # the naive check the bench compares against: the student's own account
        with ctx.Manager() as manager:
            account = mod.make_account(manager, opening)
            state.stage = "inside your run_bank"
            mod.run_bank(ctx, account, plans)
            report = {"violations": {}, "balance": account["balance"].value,
                      "log": list(account["log"])}
        # what a naive test sees: does the final balance match the accepted totals?
        accepted = [e for e in report["log"] if len(e) == 5 and e[3]]
        total = opening + sum(e[2] if e[1] == "deposit" else -e[2] for e in accepted)
        state.facts["naive_sum_ok"] = total == report["balance"] and len(report["log"]) == clients * ops
        state.facts["naive_replay_ok"] = not replay_problems(report["log"], opening,
                                                             report["balance"], plans)
    else:
        manager = CheckedManager(ctx=ctx._ctx)
        manager.start()
        try:
            bank = manager.Bank(opening)
            account = {"balance": bank.balance(), "lock": bank.lock(), "log": bank.log()}
            state.stage = "inside your run_bank"
            mod.run_bank(ctx, account, plans)
            state.stage = "reading the account"
            report = bank.report()
        finally:
            manager.shutdown()
    problems = [f"{VIOLATION_WORDS[k]} ({n} times; e.g. {report['examples'][k]})."
                for k, n in report["violations"].items()]
    problems += replay_problems(report["log"], opening, report["balance"], plans)
    started = [p for p in ctx.processes if "client" in role(p)]
    if ctx.processes and len(started) != clients:
        problems.append(f"run_bank should start one client process per plan ({clients}); "
                        f"it started {len(started)}.")
    overlap = max((p._hw_peers_at_start or 0 for p in started), default=0)
    state.facts["most_clients_running_at_a_start"] = overlap
    if len(started) > 1 and overlap == 0:
        problems.append("No client was started while another was running: start all the "
                        "clients first, then join them (one after another never shares the "
                        "account, so it tests nothing).")
    log = report["log"]
    refused = sum(1 for e in log if isinstance(e, (list, tuple)) and len(e) == 5 and not e[3])
    state.facts.update(clients=clients, operations=clients * ops, refused=refused,
                       final_balance=report["balance"], violations=report["violations"])
    problems += _end_problems(state)
    return problems


TASKS = {
    "hw1_workers": task_hw1_workers,
    "hw1_pipeline": task_hw1_pipeline,
    "hw2_rules": task_hw2_rules,
    "hw2_bank": task_hw2_bank,
}
