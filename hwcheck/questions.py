"""The homework's questions, all three assignments in one table: for each question
the module the answer cell writes, the functions it must define, what it checks (in
words), its public checks (``grader.check("q1")``), its hidden checks (the hidden
tests: larger workloads, under spawn for hw1 and hw2) and the notebook cells that
run them.

A check is one task of :mod:`hwcheck.runner` (its ``TASKS``) with its parameters and
time limit: every check of every assignment runs the same way, in a fresh, bounded
runner process. The table is data only (no code of the checks is imported here),
so a grader can read which checks a graded cell stands for without running any.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Check:
    """One bounded run of a runner task on the student's module."""

    task: str  # a name in hwcheck.runner.TASKS
    params: dict = field(default_factory=dict)
    timeout: float = 30.0  # seconds, before HWCHECK_TIME_SCALE
    method: str | None = None  # start method; None: the course's (MP_START_METHOD)
    # add the last lines the student's code printed to a failure's problems (hw3: no,
    # a server's output, a worker's traceback, only repeats the problem, louder)
    show_output: bool = True


@dataclass(frozen=True)
class Question:
    module: str  # what the answer cell writes: <module>.py next to the notebook
    names: tuple[str, ...]  # the functions the question needs
    what: str  # "q1 checks {what}."
    public: tuple[Check, ...]
    hidden: tuple[Check, ...]
    public_cell: str  # nbgrader grade_id of the cell that runs the public checks
    hidden_cell: str  # ... and of the one with the hidden tests (hw3: the same cell)


SPAWN = "spawn"
LULL = 6.5  # s: hw1's producers pause this long halfway
LATE = 4.0  # s: hw1's late result comes this long after the others
HW1_JOINABLE = ("joinable_producer", "joinable_consumer", "run_joinable")


def _hw1_2(module: str, q: str, names, what: str, public, hidden) -> Question:
    return Question(module, tuple(names), what, tuple(public), tuple(hidden),
                    f"{q}-public", f"{q}-hidden")


def _hw3(q: str, names, what: str, public: dict, hidden: dict, timeout: float) -> Question:
    task = f"hw3_{q}"
    return Question("hw3_server", tuple(names), what,
                    (Check(task, public, timeout, show_output=False),),
                    (Check(task, hidden, timeout * 1.5, show_output=False),),
                    f"{q}-test", f"{q}-test")


QUESTIONS: dict[str, dict[str, Question]] = {
    "hw1": {
        # q1: the producers pause LULL s halfway, longer than any timeout a consumer may
        # reasonably stop at; item 0 (falsy) comes first
        "q1": _hw1_2(
            "hw1_solution", "q1", ["producer", "consumer"],
            "every item consumed exactly once, by consumer processes that stop only at SENTINEL "
            f"(the producers pause {LULL:g} s halfway)",
            [Check("hw1_workers", dict(producers=3, per_producer=100, consumers=2, gap=LULL), 30)],
            [Check("hw1_workers", dict(producers=4, per_producer=400, consumers=3, gap=LULL), 45,
                   SPAWN)]),
        # q2: more results than a pipe holds; then more consumers than producers, one
        # result LATE s after the others
        "q2": _hw1_2(
            "hw1_solution", "q2", ["run_pipeline"],
            "run_pipeline returns every item once (one arrives late), one SENTINEL per consumer "
            "(more consumers than producers), every wait with a timeout, all processes ended",
            [Check("hw1_pipeline", dict(producers=2, per_producer=2500, consumers=3, gap=0.5,
                                        late=LATE), 30)],
            [Check("hw1_pipeline", dict(producers=2, per_producer=2250, consumers=2, gap=0.5),
                   45, SPAWN),
             Check("hw1_pipeline", dict(producers=2, per_producer=3000, consumers=4, gap=0.5,
                                        late=LATE), 45, SPAWN)]),
        "q3": _hw1_2(
            "hw1_solution", "q3", HW1_JOINABLE,
            "task_done() for every get (SENTINEL too), daemon consumers, every item once, "
            "every wait with a timeout, all processes ended",
            [Check("hw1_workers", dict(producers=2, per_producer=100, consumers=2, gap=0.5,
                                       joinable=True), 30),
             Check("hw1_pipeline", dict(producers=2, per_producer=100, consumers=3, gap=0.5,
                                        joinable=True), 30)],
            [Check("hw1_workers", dict(producers=3, per_producer=600, consumers=3, gap=1.0,
                                       joinable=True), 45, SPAWN),
             Check("hw1_pipeline", dict(producers=2, per_producer=900, consumers=3, gap=0.5,
                                        joinable=True), 45, SPAWN)]),
    },
    "hw2": {
        # q1 grades the rules, the exact-balance withdrawal every time; q2 lock
        # discipline and a log that replays (not the rules: no cascade from q1)
        "q1": _hw1_2(
            "hw2_solution", "q1", ["deposit", "withdraw"],
            "deposits accepted, overdrafts refused and logged, an exact-balance withdrawal allowed",
            [Check("hw2_rules", {}, 30), Check("hw2_rules", dict(opening=20, random_ops=60), 30)],
            [Check("hw2_rules", {}, 30, SPAWN),
             Check("hw2_rules", dict(opening=20, random_ops=500), 60, SPAWN)]),
        "q2": _hw1_2(
            "hw2_solution", "q2", ["client", "run_bank"],
            "clients at once: every balance change and log entry under the lock, a log that "
            "replays to the balance, each client's operations once and in order",
            [Check("hw2_bank", dict(clients=4, ops=100), 60)],
            [Check("hw2_bank", dict(clients=8, ops=250, seed=11), 60, SPAWN),
             Check("hw2_bank", dict(clients=12, ops=200, opening=0, seed=12), 60, SPAWN)]),
    },
    "hw3": {
        # each hidden property has a smaller public run: grader.check warns first
        "q1": _hw3("q1", ["respond", "handle_client", "serve_one"],
                   "a one-process server that answers line by line, one client after the other, "
                   "listening only on the host it is given",
                   {}, dict(clients=3, lines=60), 60),
        "q2": _hw3("q2", ["handle_client"],
                   "framing: lines sent in pieces, lines sent together, a line too long",
                   dict(big=True, stream=30, overlong=128 * 1024),
                   dict(big=True, stream=300, overlong=1024 * 1024), 60),
        "q3": _hw3("q3", ["serve"],
                   "several clients at once, each connection served by one of the pool's "
                   "workers (started once, reused), listening only on the host it is given",
                   dict(workers=3, reuse_clients=5, lines=3),
                   dict(workers=4, rounds=3, reuse_clients=8, lines=10), 60),
        # q4 and q5: each its own property (issue 20), so a server that handles bad
        # clients but never stops loses q5 only, and one that stops but crashes q4 only
        "q4": _hw3("q4", ["respond", "serve"],
                   "bad clients (invalid UTF-8, disconnecting mid-line, silent) do not hurt "
                   "the others",
                   {},
                   dict(workers=3, rude=5,
                        invalid=(b"\xff\xfe", b"caf\xc3", b"\xed\xa0\x80", b"ok \x80")), 60),
        "q5": _hw3("q5", ["serve"],
                   "a clean stop: with clients connected (idle, mid-line), serve returns soon "
                   "after stop is set, leaving no process and no listening socket",
                   # fewer clients than workers: one worker still waits in accept()
                   dict(workers=3, clients=2), dict(workers=4, clients=3), 60),
    },
}


def questions(assignment: str) -> dict[str, Question]:
    """The questions of ``assignment``; ValueError naming the choices."""
    if assignment not in QUESTIONS:
        raise ValueError(f"unknown assignment {assignment!r}; one of {sorted(QUESTIONS)}")
    return QUESTIONS[assignment]


def question(assignment: str, name: str) -> Question:
    """The question ``name`` of ``assignment``; ValueError naming the choices."""
    try:
        return questions(assignment)[name]
    except KeyError:
        raise ValueError(f"{assignment} has no question {name!r}; "
                         f"one of {sorted(QUESTIONS[assignment])}") from None


def checks(assignment: str, name: str, hidden: bool = False) -> tuple[Check, ...]:
    q = question(assignment, name)
    return q.hidden if hidden else q.public


def all_checks() -> list[Check]:
    return [c for qs in QUESTIONS.values() for q in qs.values() for c in (*q.public, *q.hidden)]
