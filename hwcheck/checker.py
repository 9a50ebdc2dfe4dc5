"""Student self-check for the homework, one question at a time, in plain words
(like otter-grader's ``grader.check("q1")``)::

    from helpers.selfcheck import Checker
    grader = Checker("hw1")
    grader.check("q1")   # raises AssertionError listing what is wrong, or prints a pass line
    grader.show("q1")    # runs the same checks and prints what happened, never raises

The public test cells of hw1 and hw2 call ``grader.check``; the hidden tests that
grading adds call :mod:`helpers.hwcheck` with larger workloads and under spawn.
Every check runs your module in a fresh Python process with a time limit, so a
deadlock ends in a message instead of a frozen notebook.

hw3 (a TCP server) has its own questions in :mod:`helpers.hw3check`: each check
starts your server in a new process, talks to it with real clients (every wait
bounded) and stops it.
"""

from __future__ import annotations

import time

from helpers import hwcheck

# question -> (module, names it needs, [(task, params, timeout seconds), ...])
QUESTIONS = {
    "hw1": {
        "q1": ("hw1_solution", ["producer", "consumer"],
               [("hw1_workers", dict(producers=3, per_producer=100, consumers=2, gap=1.0), 30)]),
        "q2": ("hw1_solution", ["run_pipeline"],
               [("hw1_pipeline", dict(producers=3, per_producer=100, consumers=2, gap=0.5), 30)]),
        "q3": ("hw1_solution", ["joinable_producer", "joinable_consumer", "run_joinable"],
               [("hw1_workers", dict(producers=2, per_producer=100, consumers=2, gap=0.5,
                                     joinable=True), 30),
                ("hw1_pipeline", dict(producers=2, per_producer=100, consumers=2, gap=0.5,
                                      joinable=True), 30)]),
    },
    "hw2": {
        "q1": ("hw2_solution", ["deposit", "withdraw"], [("hw2_rules", {}, 30)]),
        "q2": ("hw2_solution", ["client", "run_bank"],
               [("hw2_bank", dict(clients=4, ops=100), 60)]),
    },
}


# assignments whose questions live in their own module (run in this process)
SERVER_ASSIGNMENTS = {"hw3"}


class Checker:
    def __init__(self, assignment: str):
        if assignment not in QUESTIONS and assignment not in SERVER_ASSIGNMENTS:
            known = sorted([*QUESTIONS, *SERVER_ASSIGNMENTS])
            raise ValueError(f"unknown assignment {assignment!r}; one of {known}")
        self.assignment = assignment

    def _run(self, question: str) -> list[tuple[str, dict]]:
        try:
            module, names, tasks = QUESTIONS[self.assignment][question]
        except KeyError:
            raise ValueError(f"{self.assignment} has no question {question!r}; "
                             f"one of {sorted(QUESTIONS[self.assignment])}") from None
        reports = []
        for task, params, timeout in tasks:
            report = hwcheck.run(task, module, names, params, timeout=timeout)
            reports.append((task, report))
            if report["problems"]:
                break  # the first failing check says enough
        return reports

    def check(self, question: str) -> None:
        """Run the public checks of ``question``; raise AssertionError if any fails."""
        if self.assignment in SERVER_ASSIGNMENTS:
            from helpers import hw3check

            start = time.monotonic()
            hw3check.run(question)
            print(f"{question}: passed ({time.monotonic() - start:.1f} s).")
            return
        reports = self._run(question)
        problems = [p for _, r in reports for p in r["problems"]]
        if problems:
            raise hwcheck.CheckFailed(
                f"{question}: not yet, {len(problems)} problem(s):\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
        secs = sum(r["facts"].get("wall_seconds", 0) for _, r in reports)
        print(f"{question}: all {len(reports)} check(s) passed ({secs:.1f} s).")

    def show(self, question: str) -> None:
        """Run the checks of ``question`` and print what happened, without raising."""
        if self.assignment in SERVER_ASSIGNMENTS:
            from helpers import hw3check

            start = time.monotonic()
            try:
                hw3check.run(question)
            except hw3check.CheckFailed as exc:
                print(exc)
            else:
                print(f"{question}: passed ({time.monotonic() - start:.1f} s), no problems found")
            return
        for task, report in self._run(question):
            facts = ", ".join(f"{k}={v}" for k, v in report["facts"].items())
            print(f"{task}: {facts}")
            for p in report["problems"]:
                print(f"  - {p}")
            if not report["problems"]:
                print("  no problems found")
