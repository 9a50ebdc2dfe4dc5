"""Homework 3 (an upper-casing TCP server on a process pool) checks, run inside the
runner process (:mod:`hwcheck.runner`) like those of hw1 and hw2: one task per
question, each combining checks of :mod:`hwcheck.respondcheck` (``respond()`` alone)
and :mod:`hwcheck.tcpcheck` (a running server).

The runner is the parent: it starts the student's server as its child process, is
its only client, and stops it, every wait bounded. Each question tests one stage and
nothing later: question 1 a one-process server that answers line by line, question 2
framing (through the course's own accept loop around the student's ``handle_client``),
question 3 the pool (each line sent whole, so wrong framing does not fail it),
question 4 bad clients and a clean stop (the only question that reports a server that
does not stop; the others kill it quietly).

A task returns at most one problem, the first thing found wrong, in plain words.
The task functions take the student's module from ``state.module`` and nothing else
of the runner's, so they run the same wherever that module was loaded.
"""

from __future__ import annotations

from typing import Callable

from hwcheck import respondcheck, tcpcheck
from hwcheck.recording import State
from hwcheck.tcpserver_harness import describe_exception


def _q1(mod, ctx, clients: int = 2, lines: int = 4, seed: int = 1) -> None:
    respondcheck.check_respond_text(mod.respond)
    tcpcheck.check_line_at_a_time(mod.serve_one, clients=clients, lines=lines, seed=seed,
                                  ctx=ctx)


def _q2(mod, ctx, big: bool = False, stream: int = 0, overlong: bool = False,
        seed: int = 2) -> None:
    tcpcheck.check_framing(mod.handle_client, big=big, stream=stream, overlong=overlong,
                           seed=seed, ctx=ctx)


def _q3(mod, ctx, workers: int = 3, rounds: int = 1, distinct: bool = False,
        reuse_clients: int = 0, lines: int = 10) -> None:
    tcpcheck.check_concurrent(mod.serve, workers=workers, rounds=rounds,
                              distinct_workers=distinct, ctx=ctx)
    if reuse_clients:
        tcpcheck.check_worker_reuse(mod.serve, workers=workers, clients=reuse_clients,
                                    lines=lines, ctx=ctx)


def _q4(mod, ctx, workers: int = 2, rude: int = 3, idle_timeout: float = 1.0,
        invalid=(b"caf\xc3\x28 \xff",), stop_clients: int = 1) -> None:
    invalid = tuple(invalid)
    respondcheck.check_respond_invalid(mod.respond)
    tcpcheck.check_bad_clients(mod.serve, workers=workers, rude=rude,
                               idle_timeout=idle_timeout, invalid=invalid, ctx=ctx)
    tcpcheck.check_shutdown(mod.serve, workers=workers, clients=stop_clients, ctx=ctx)


def _task(check: Callable) -> Callable:
    """A runner task: ``check`` on the student's module, its failure as one problem."""

    def task(state: State, **params) -> list[str]:
        state.stage = "talking to your server"
        state.timeout_hint = ("Every wait of this check has its own limit, so running out "
                              "of time means a very busy machine: run the check again.")
        try:
            check(state.module, state.ctx, **params)
        except AssertionError as exc:  # ServerError: the server misbehaved
            return [str(exc)]
        except OSError as exc:
            return [f"a client could not talk to the server: {exc!r}"]
        except Exception as exc:  # noqa: BLE001 - e.g. a function that cannot be pickled
            return [f"the check could not start your code: {describe_exception(exc)}"]
        return []

    task.__name__ = task.__qualname__ = f"task_hw3_{check.__name__.strip('_')}"
    return task


TASKS = {"hw3_q1": _task(_q1), "hw3_q2": _task(_q2), "hw3_q3": _task(_q3),
         "hw3_q4": _task(_q4)}
