"""Homework 3 (an upper-casing TCP server on a process pool) checks, run by the
runner (:mod:`hwcheck.runner`) like those of hw1 and hw2: one task per question, each
combining checks of :mod:`hwcheck.respondcheck` (``respond()`` alone) and
:mod:`hwcheck.tcpcheck` (a running server).

The checker is the parent and never imports the student's module: it names the
student's functions (:class:`hwcheck.child.StudentModule`), starts the student's
server as its child process (loaded there, as the student's uid), is its only
client, and stops it, every wait bounded; ``respond()`` runs in a driver child and
the checker compares the bytes it returned. The verdict comes from what the
checker's own clients received, and what the server is, seen from outside
(:mod:`hwcheck.serverfacts`: where it listens, which processes hold the connections).
Each question tests one stage and nothing later: question 1 a one-process server that
answers line by line and listens only on the host it is given, question 2 framing
(through the course's own accept loop around the student's ``handle_client``),
question 3 the pool (each line sent whole, so wrong framing does not fail it; each
connection held by one of the pool's workers, started before the clients came, which
may serve several at once; only on the host given), question 4 bad clients, question
5 a clean stop (the only question that reports a server that does not stop, however it
makes its waits notice ``stop``; the others kill it quietly, so a server that serves
well but never stops loses question 5 only).

A task returns at most one problem, the first thing found wrong, in plain words.
"""

from __future__ import annotations

from typing import Callable

from hwcheck import respondcheck, tcpcheck
from hwcheck.child import StudentModule
from hwcheck.driving import Job
from hwcheck.tcpserver_harness import describe_exception


def _q1(mod, job: Job, clients: int = 2, lines: int = 4, seed: int = 1) -> None:
    respondcheck.check_respond_text(mod.respond, job=job)
    tcpcheck.check_line_at_a_time(mod.serve_one, clients=clients, lines=lines, seed=seed,
                                  ctx=job.ctx)


def _q2(mod, job: Job, big: bool = False, stream: int = 0, overlong: int = 0,
        seed: int = 2) -> None:
    tcpcheck.check_framing(mod.handle_client, big=big, stream=stream, overlong=overlong,
                           seed=seed, ctx=job.ctx)


def _q3(mod, job: Job, workers: int = 3, rounds: int = 1, reuse_clients: int = 0,
        lines: int = 10) -> None:
    tcpcheck.check_concurrent(mod.serve, workers=workers, rounds=rounds, ctx=job.ctx)
    if reuse_clients:
        tcpcheck.check_worker_reuse(mod.serve, workers=workers, clients=reuse_clients,
                                    lines=lines, ctx=job.ctx)


def _q4(mod, job: Job, workers: int = 2, rude: int = 3, idle_timeout: float = 1.0,
        invalid=(b"caf\xc3\x28 \xff",)) -> None:
    respondcheck.check_respond_invalid(mod.respond, job=job)
    tcpcheck.check_bad_clients(mod.serve, workers=workers, rude=rude,
                               idle_timeout=idle_timeout, invalid=tuple(invalid), ctx=job.ctx)


def _q5(mod, job: Job, workers: int = 2, clients: int = 1) -> None:
    tcpcheck.check_shutdown(mod.serve, workers=workers, clients=clients, ctx=job.ctx)


def _task(check: Callable) -> Callable:
    """A runner task: ``check`` on the student's module, its failure as one problem."""

    def task(job: Job, **params) -> list[str]:
        job.stage = "talking to your server"
        job.timeout_hint = ("Every wait of this check has its own limit, so running out "
                            "of time means a very busy machine: run the check again.")
        try:
            check(StudentModule(job.student), job, **params)
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
         "hw3_q4": _task(_q4), "hw3_q5": _task(_q5)}
