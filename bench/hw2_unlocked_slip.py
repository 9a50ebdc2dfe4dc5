"""How often does a wrong homework-2 bank slip through the grader?

Runs the first hidden question-2 check of hw2 (8 clients × 250 operations, spawn;
from the question table, hwcheck/questions.py, as the hidden test cell does) RUNS times on the sample
submissions tests/submissions/hw2/unlocked.py and misplaced_lock.py, and, for
comparison, the naive checks a test without lock tracking would make on the
student's own Manager account: "final balance = opening + accepted deposits −
accepted withdrawals" and "the log replays to the balance". Prints how many
runs each check let through (target for the grader: 0).

    .venv/bin/python bench/hw2_unlocked_slip.py --runs 100
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.timing import machine_summary  # noqa: E402
from hwcheck.isolated import run_isolated  # noqa: E402
from hwcheck.questions import QUESTIONS  # noqa: E402

HIDDEN_CHECK = QUESTIONS["hw2"]["q2"].hidden[0]
HIDDEN = dict(HIDDEN_CHECK.params)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--samples", nargs="+", default=["unlocked", "misplaced_lock"])
    parser.add_argument("--clients", type=int, default=HIDDEN["clients"],
                        help="fewer/smaller than the hidden test's shows where naive checks fail")
    parser.add_argument("--ops", type=int, default=HIDDEN["ops"])
    args = parser.parse_args()
    workload = dict(HIDDEN, clients=args.clients, ops=args.ops)
    print(f"workload: {args.clients} clients × {args.ops} operations, {args.runs} runs per sample")
    print(machine_summary("spawn"))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sample in args.samples:
            folder = Path(tmp, sample)
            folder.mkdir()
            src = ROOT / "tests" / "submissions" / "hw2" / f"{sample}.py"
            (folder / "hw2_solution.py").write_text(src.read_text())
            slipped = {"grader": 0, "naive_sum": 0, "naive_replay": 0}
            started = time.monotonic()
            for i in range(args.runs):
                seed = HIDDEN["seed"] + i
                graded = run_isolated(HIDDEN_CHECK.task, "hw2_solution", dict(workload, seed=seed),
                                      timeout=HIDDEN_CHECK.timeout, method=HIDDEN_CHECK.method,
                                      folder=folder)
                slipped["grader"] += not graded["problems"]
                naive = run_isolated(HIDDEN_CHECK.task, "hw2_solution",
                                     dict(workload, seed=seed, plain=True),
                                     timeout=HIDDEN_CHECK.timeout, method=HIDDEN_CHECK.method,
                                     folder=folder)
                slipped["naive_sum"] += bool(naive["facts"].get("naive_sum_ok"))
                slipped["naive_replay"] += bool(naive["facts"].get("naive_replay_ok"))
                if (i + 1) % 10 == 0:
                    print(f"  {sample}: {i + 1} runs, slipped through so far {slipped}", flush=True)
            results[sample] = dict(slipped, runs=args.runs,
                                   seconds=round(time.monotonic() - started, 1))
            print(f"{sample}: passed the grader {slipped['grader']}/{args.runs}; "
                  f"naive final-sum check {slipped['naive_sum']}/{args.runs}; "
                  f"naive log replay {slipped['naive_replay']}/{args.runs}", flush=True)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = f"hw2_slip_{args.clients}x{args.ops}.json"
    (out / name).write_text(json.dumps(results, indent=2))
    return 0 if all(r["grader"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
