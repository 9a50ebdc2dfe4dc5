"""Homework 3's questions: which functions each one needs, which checks of
:mod:`helpers.respondcheck` and :mod:`helpers.tcpcheck` it runs, and the
plain-words failure a notebook shows.

    grader = helpers.selfcheck.Checker("hw3")
    grader.check("q2")                          # the public check of question 2
    hw3check.run("q2", big=True, stream=300)    # what a hidden test calls: more work

Each question tests one stage and nothing later: question 1 a one-process server
that answers line by line, question 2 framing (through the course's own accept
loop around your ``handle_client``), question 3 the pool (each line sent whole, so
wrong framing does not fail it), question 4 bad clients and a clean stop (the only
question that reports a server that does not stop; the others kill it quietly).

The checks run in this process (the notebook's): your server runs in a child
process that every check stops, with every wait bounded. Your module is imported
fresh from ``hw3_server.py`` first, so a check sees what the %%writefile cell wrote.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

from helpers import respondcheck, tcpcheck
from helpers.tcpserver_harness import describe_exception

MODULE = "hw3_server"


class CheckFailed(AssertionError):
    """A question's check failed; the message says why in plain words. A notebook
    shows the message only (``_render_traceback_``); the cell still fails."""

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


def _q1(mod, clients: int = 2, lines: int = 4, seed: int = 1) -> None:
    respondcheck.check_respond_text(mod.respond)
    tcpcheck.check_line_at_a_time(mod.serve_one, clients=clients, lines=lines, seed=seed)


def _q2(mod, big: bool = False, stream: int = 0, overlong: bool = False, seed: int = 2) -> None:
    tcpcheck.check_framing(mod.handle_client, big=big, stream=stream, overlong=overlong,
                           seed=seed)


def _q3(mod, workers: int = 3, rounds: int = 1, distinct: bool = False,
        reuse_clients: int = 0, lines: int = 10) -> None:
    tcpcheck.check_concurrent(mod.serve, workers=workers, rounds=rounds,
                              distinct_workers=distinct)
    if reuse_clients:
        tcpcheck.check_worker_reuse(mod.serve, workers=workers, clients=reuse_clients,
                                    lines=lines)


def _q4(mod, workers: int = 2, rude: int = 3, idle_timeout: float = 1.0,
        invalid: tuple = (b"caf\xc3\x28 \xff",), stop_clients: int = 1) -> None:
    respondcheck.check_respond_invalid(mod.respond)
    tcpcheck.check_bad_clients(mod.serve, workers=workers, rude=rude,
                               idle_timeout=idle_timeout, invalid=invalid)
    tcpcheck.check_shutdown(mod.serve, workers=workers, clients=stop_clients)


# question -> (what it checks, the functions it needs, the check, the public workload)
QUESTIONS = {
    "q1": ("a one-process server that answers line by line, one client after the other",
           ["respond", "handle_client", "serve_one"], _q1, {}),
    "q2": ("framing: lines sent in pieces, lines sent together, a line too long",
           ["handle_client"], _q2, {}),
    "q3": ("several clients at once, each connection served by a pool worker",
           ["serve"], _q3, {}),
    "q4": ("bad clients (invalid UTF-8, disconnecting mid-line, silent) and a clean stop",
           ["respond", "serve"], _q4, {}),
}


def load(module: str = MODULE, folder: str | Path = "."):
    """``module`` imported fresh from ``folder`` (what the %%writefile cell wrote last)."""
    path = Path(folder) / f"{module}.py"
    if not path.exists():
        raise CheckFailed(
            f"{path.name} does not exist yet. Run the cell that starts with "
            f"`%%writefile {path.name}` (it writes your code to that file), then the cell "
            "after it." + _in_cells_note(ALL_NAMES)
        )
    folder = str(Path(folder).resolve())
    here = "" in sys.path and str(Path.cwd().resolve()) == folder
    if folder not in sys.path and not here:
        sys.path.insert(0, folder)  # stays: spawn children import the module from it too
    importlib.invalidate_caches()
    try:
        mod = importlib.import_module(module)
        return importlib.reload(mod)
    except Exception as exc:  # noqa: BLE001 - the student's error, in words
        raise CheckFailed(f"{path.name} cannot be imported: "
                          f"{describe_exception(exc)}") from None


def _missing_or_stub(mod, names: list[str]) -> str | None:
    missing = [n for n in names if not callable(getattr(mod, n, None))]
    if missing:
        return (f"{Path(mod.__file__).name} has no function "
                + ", ".join(f"`{n}`" for n in missing) + " (keep the names given)")
    stubs = []
    for name in names:
        try:
            if "raise NotImplementedError" in inspect.getsource(getattr(mod, name)):
                stubs.append(name)
        except (OSError, TypeError):
            pass
    if stubs:
        return (", ".join(f"`{n}`" for n in stubs) + " still raise(s) NotImplementedError: "
                "replace `# YOUR CODE HERE` and the `raise NotImplementedError()` line in the "
                "%%writefile cell with your code, then run that cell and the next one again."
                + _in_cells_note(stubs))
    return None


ALL_NAMES = ["respond", "handle_client", "serve_one", "serve"]


def _in_cells_note(names: list[str]) -> str:
    """A hint when the student defined these functions in a notebook cell instead."""
    main = sys.modules.get("__main__")
    in_cells = [n for n in names
                if getattr(getattr(main, n, None), "__module__", "") == "__main__"]
    if not in_cells:
        return ""
    return (" " + ", ".join(f"`{n}`" for n in in_cells) + ": defined in a notebook cell, "
            "not in the file. The answer cell must start with the line `%%writefile "
            "hw3_server.py`. Under the spawn start method a child process cannot use a "
            "function defined in a notebook cell (AttributeError: Can't get attribute ... "
            "on <module '__main__'>).")


def run(question: str, module: str = MODULE, folder: str | Path = ".", **params) -> None:
    """Run ``question``'s check on ``module`` with the public workload updated by
    ``params``; raise :class:`CheckFailed` saying what is wrong. Returns None: a test
    cell whose last line gives a number would be read by nbgrader as partial credit."""
    try:
        what, names, check, public = QUESTIONS[question]
    except KeyError:
        raise ValueError(f"hw3 has no question {question!r}; one of {sorted(QUESTIONS)}") from None
    try:
        mod = load(module, folder)
    except CheckFailed as exc:
        mod, problem = None, str(exc)
    else:
        problem = _missing_or_stub(mod, names)
    if problem is None:
        try:
            check(mod, **{**public, **params})
        except AssertionError as exc:  # ServerError (tcpclient) and plain asserts
            problem = str(exc)
        except OSError as exc:
            problem = f"a client could not talk to the server: {exc!r}"
        except Exception as exc:  # noqa: BLE001 - e.g. a function that cannot be pickled
            problem = (f"the check could not start your code: "
                       f"{describe_exception(exc)}")
    if problem:
        # the problem first: graders' summaries show only the start of the message
        raise CheckFailed(f"{question} not yet: {problem}\n({question} checks {what}.)")


__all__ = ["CheckFailed", "MODULE", "QUESTIONS", "load", "run"]
